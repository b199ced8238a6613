//! The webhook outbox (PROTOCOL.md §13): events written in the transaction of what caused
//! them, claimed by one node at a time under a lease, and finished as delivered, retried
//! or dead. A conversation's events go one at a time, in seq order: only the earliest
//! pending event of a conversation can be claimed.
//!
//! A `message.offline` row is written with its candidate receivers; the dispatcher
//! decides who was offline when it claims it ([`decide_offline`]), and, with coalescing
//! on, folds them into `webhook_offline` windows that [`flush_offline`] turns into
//! events when they close.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use diesel::prelude::*;

use super::conn::{take_write_lock, DbConn};
use super::schema::{webhook_events, webhook_offline};
use crate::protocol::webhook::{OfflineData, MAX_OFFLINE_UIDS, MESSAGE_OFFLINE};

pub const PENDING: i32 = 0;
pub const DELIVERED: i32 = 1;
pub const DEAD: i32 = 2;
/// Nothing to send: every receiver was connected, or they were folded into a window.
pub const DROPPED: i32 = 3;

/// Unix milliseconds: the outbox's clock for due times and leases.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Which events are written: none while webhooks are off. Cheap to clone.
#[derive(Clone, Default)]
pub struct Outbox(Option<Arc<Option<HashSet<String>>>>);

impl Outbox {
    /// On, for `events` (empty: all of them).
    pub fn on(events: &[String]) -> Outbox {
        let only = match events.is_empty() {
            true => None,
            false => Some(events.iter().cloned().collect()),
        };
        Outbox(Some(Arc::new(only)))
    }

    pub fn wants(&self, kind: &str) -> bool {
        match &self.0 {
            None => false,
            Some(only) => only.as_ref().as_ref().is_none_or(|k| k.contains(kind)),
        }
    }
}

/// An event to write.
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = webhook_events)]
pub struct NewEvent {
    pub kind: &'static str,
    pub conv: String,
    pub data: String,
    /// For `message.offline`: the candidate receivers (JSON), until decided.
    pub receivers: Option<String>,
    pub created_at: i64,
    pub next_at: i64,
}

impl NewEvent {
    pub fn new(kind: &'static str, conv: &str, data: &impl serde::Serialize) -> NewEvent {
        NewEvent {
            kind,
            conv: conv.to_string(),
            // unwrap_or_default: the data types are plain structs, which always serialize.
            data: serde_json::to_string(data).unwrap_or_default(),
            receivers: None,
            created_at: crate::clock::unix_now() as i64,
            next_at: 0,
        }
    }
}

/// Writes `events` (inside the caller's transaction).
pub fn insert(conn: &mut DbConn, events: &[NewEvent]) -> QueryResult<()> {
    for e in events {
        diesel::insert_into(webhook_events::table)
            .values(e)
            .execute(conn)?;
    }
    Ok(())
}

/// One claimed event.
#[derive(Queryable, Selectable, Debug, Clone, serde::Serialize)]
#[diesel(table_name = webhook_events)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub conv: String,
    pub data: String,
    pub receivers: Option<String>,
    pub created_at: i64,
    pub state: i32,
    pub attempts: i32,
    pub next_at: i64,
    pub last_error: String,
}

diesel::alias!(webhook_events as earlier: EarlierEvents);

/// Pending events looked at per step of a claim, in id order.
const CLAIM_WINDOW: i64 = 1024;
/// Steps a claim takes at most: what one claim costs is bounded by these, not by the
/// backlog (a conversation whose head waits for a retry can hold thousands behind it).
const CLAIM_STEPS: usize = 8;

/// Claims up to `limit` due events for `owner` (unique per claim) until `now + lease`:
/// the earliest pending event of each conversation, if it is due and nobody holds it.
/// Of two nodes claiming at once, each event goes to one: the lease is taken by a
/// compare-and-set.
pub fn claim(
    conn: &mut DbConn,
    owner: &str,
    now: i64,
    lease: i64,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    use webhook_events::dsl as e;
    let mut due: Vec<i64> = Vec::new();
    let mut after = 0;
    for _ in 0..CLAIM_STEPS {
        // A window of pending events in id order, on the (state, id) index.
        let window: Vec<i64> = e::webhook_events
            .filter(e::state.eq(PENDING))
            .filter(e::id.gt(after))
            .order(e::id)
            .limit(CLAIM_WINDOW)
            .select(e::id)
            .load(conn)?;
        let Some(last) = window.last().copied() else {
            break;
        };
        let ahead = earlier
            .filter(earlier.field(e::conv).eq(e::conv))
            .filter(earlier.field(e::state).eq(PENDING))
            .filter(earlier.field(e::id).lt(e::id));
        let heads: Vec<i64> = e::webhook_events
            .filter(e::id.between(window[0], last))
            .filter(e::state.eq(PENDING))
            .filter(e::next_at.le(now))
            .filter(e::lease_until.le(now))
            .filter(diesel::dsl::not(diesel::dsl::exists(ahead)))
            .order(e::id)
            .limit(limit - due.len() as i64)
            .select(e::id)
            .load(conn)?;
        due.extend(heads);
        if due.len() as i64 >= limit || (window.len() as i64) < CLAIM_WINDOW {
            break;
        }
        after = last;
    }
    if due.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(
        e::webhook_events
            .filter(e::id.eq_any(&due))
            .filter(e::state.eq(PENDING))
            .filter(e::lease_until.le(now)),
    )
    .set((e::lease_owner.eq(owner), e::lease_until.eq(now + lease)))
    .execute(conn)?;
    e::webhook_events
        .filter(e::id.eq_any(&due))
        .filter(e::lease_owner.eq(owner))
        .filter(e::state.eq(PENDING))
        .order(e::id)
        .select(EventRow::as_select())
        .load(conn)
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered,
    /// Failed; try again at `next_at` (unix ms), or never (`dead`).
    Failed {
        error: String,
        next_at: i64,
        dead: bool,
    },
    /// Not tried (its decision could not be made): try again at `next_at`.
    Later {
        next_at: i64,
    },
}

/// Records how the attempt on event `id` (held by `owner`) ended; false if the lease was
/// lost meanwhile (another node has it now).
pub fn finish(
    conn: &mut DbConn,
    id: i64,
    owner: &str,
    outcome: &Outcome,
    now: i64,
) -> QueryResult<bool> {
    use webhook_events::dsl as e;
    let row = e::webhook_events
        .filter(e::id.eq(id))
        .filter(e::lease_owner.eq(owner))
        .filter(e::state.eq(PENDING));
    let n = match outcome {
        Outcome::Delivered => diesel::update(row)
            .set((
                e::state.eq(DELIVERED),
                e::attempts.eq(e::attempts + 1),
                e::done_at.eq(now),
                e::lease_until.eq(0),
            ))
            .execute(conn)?,
        Outcome::Failed {
            error,
            next_at,
            dead,
        } => {
            let error: String = error.chars().take(250).collect();
            diesel::update(row)
                .set((
                    e::state.eq(if *dead { DEAD } else { PENDING }),
                    e::attempts.eq(e::attempts + 1),
                    e::next_at.eq(next_at),
                    e::last_error.eq(error),
                    e::done_at.eq(if *dead { now } else { 0 }),
                    e::lease_until.eq(0),
                ))
                .execute(conn)?
        }
        Outcome::Later { next_at } => diesel::update(row)
            .set((e::next_at.eq(next_at), e::lease_until.eq(0)))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// `message.offline` rows (held by `owner`), each with who of its receivers is known to
/// have no live connection now, decided in one transaction. Without coalescing (`window`
/// 0) a row becomes the event for its first 1000 offline receivers (more events for more,
/// right after it); with coalescing each offline receiver is folded into its (receiver,
/// chat) window, closing `window` ms from now, and the row is dropped, as is a row with
/// nobody offline. Returns, per row, the event ready to send as stored, or `None` (also
/// for a row whose lease was lost: its new holder decides).
pub fn decide_offline(
    conn: &mut DbConn,
    rows: &[(EventRow, Vec<i64>)],
    owner: &str,
    window: i64,
    now: i64,
) -> QueryResult<Vec<Option<EventRow>>> {
    use webhook_events::dsl as e;
    conn.transaction(|conn| {
        take_write_lock(conn)?;
        let mut ready = Vec::with_capacity(rows.len());
        let mut dropped = Vec::new();
        for (row, offline) in rows {
            let data = match serde_json::from_str::<OfflineData>(&row.data) {
                Ok(data) if !offline.is_empty() => data,
                Ok(_) => {
                    dropped.push(row.id);
                    ready.push(None);
                    continue;
                }
                Err(_) => {
                    log::error!("webhook event {} has unreadable data; dropping it", row.id);
                    dropped.push(row.id);
                    ready.push(None);
                    continue;
                }
            };
            if window > 0 {
                fold_offline(conn, &data, offline, now + window)?;
                dropped.push(row.id);
                ready.push(None);
                continue;
            }
            ready.push(make_ready(conn, row, data, offline, owner)?);
        }
        if !dropped.is_empty() {
            diesel::update(
                e::webhook_events
                    .filter(e::id.eq_any(&dropped))
                    .filter(e::lease_owner.eq(owner)),
            )
            .set((
                e::state.eq(DROPPED),
                e::done_at.eq(now),
                e::receivers.eq(None::<String>),
                e::lease_until.eq(0),
            ))
            .execute(conn)?;
        }
        Ok(ready)
    })
}

/// Makes `row` the event for the first 1000 of `offline`, and more events for the rest;
/// the event as stored, or `None` if its lease was lost.
fn make_ready(
    conn: &mut DbConn,
    row: &EventRow,
    mut data: OfflineData,
    offline: &[i64],
    owner: &str,
) -> QueryResult<Option<EventRow>> {
    use webhook_events::dsl as e;
    let mut chunks = offline.chunks(MAX_OFFLINE_UIDS);
    data.to_uids = chunks.next().unwrap_or_default().to_vec();
    let json = serde_json::to_string(&data).unwrap_or_default();
    let n = diesel::update(
        e::webhook_events
            .filter(e::id.eq(row.id))
            .filter(e::lease_owner.eq(owner)),
    )
    .set((e::data.eq(&json), e::receivers.eq(None::<String>)))
    .execute(conn)?;
    if n != 1 {
        return Ok(None);
    }
    let ready = EventRow {
        data: json,
        receivers: None,
        ..row.clone()
    };
    for more in chunks {
        data.to_uids = more.to_vec();
        let mut extra = NewEvent::new(MESSAGE_OFFLINE, &row.conv, &data);
        extra.created_at = row.created_at;
        insert(conn, &[extra])?;
    }
    Ok(Some(ready))
}

#[derive(Insertable)]
#[diesel(table_name = webhook_offline)]
struct NewWindow<'a> {
    uid: i64,
    chat_id: &'a str,
    msg_id: i64,
    msg_count: i32,
    data: &'a str,
    due_at: i64,
}

/// Counts one more message into each receiver's window for the chat (opening those
/// that are not open, to close at `due_at`); the window keeps the latest message.
fn fold_offline(
    conn: &mut DbConn,
    data: &OfflineData,
    uids: &[i64],
    due_at: i64,
) -> QueryResult<()> {
    use webhook_offline::dsl as w;
    let json = serde_json::to_string(data).unwrap_or_default();
    for chunk in uids.chunks(MAX_OFFLINE_UIDS) {
        let open: HashSet<i64> = w::webhook_offline
            .filter(w::chat_id.eq(&data.chat_id))
            .filter(w::uid.eq_any(chunk))
            .select(w::uid)
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        if !open.is_empty() {
            diesel::update(
                w::webhook_offline
                    .filter(w::chat_id.eq(&data.chat_id))
                    .filter(w::uid.eq_any(&open)),
            )
            .set((
                w::msg_id.eq(data.msg_id),
                w::msg_count.eq(w::msg_count + 1),
                w::data.eq(&json),
            ))
            .execute(conn)?;
        }
        for uid in chunk.iter().filter(|u| !open.contains(u)) {
            diesel::insert_into(w::webhook_offline)
                .values(NewWindow {
                    uid: *uid,
                    chat_id: &data.chat_id,
                    msg_id: data.msg_id,
                    msg_count: 1,
                    data: &json,
                    due_at,
                })
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Closes the windows due by `now`: one `message.offline` event (with `count`) per chat,
/// latest message and count, for at most 1000 receivers each. Returns how many events it
/// wrote; of two nodes closing the same windows at once, one does (the other's deletes
/// find nothing, and it undoes its part).
pub fn flush_offline(conn: &mut DbConn, now: i64, limit: i64) -> QueryResult<usize> {
    use webhook_offline::dsl as w;
    let result = conn.transaction(|conn| {
        take_write_lock(conn)?;
        let due: Vec<(i64, String, i64, i32, String)> = w::webhook_offline
            .filter(w::due_at.le(now))
            .order((w::chat_id, w::uid))
            .limit(limit)
            .select((w::uid, w::chat_id, w::msg_id, w::msg_count, w::data))
            .load(conn)?;
        let mut groups: BTreeMap<(String, i64, i32), (String, Vec<i64>)> = BTreeMap::new();
        for (uid, chat, msg, count, data) in due {
            groups
                .entry((chat, msg, count))
                .or_insert_with(|| (data, Vec::new()))
                .1
                .push(uid);
        }
        let mut written = 0;
        for ((chat, msg, count), (data, uids)) in groups {
            let gone = diesel::delete(
                w::webhook_offline
                    .filter(w::chat_id.eq(&chat))
                    .filter(w::msg_id.eq(msg))
                    .filter(w::msg_count.eq(count))
                    .filter(w::due_at.le(now))
                    .filter(w::uid.eq_any(&uids)),
            )
            .execute(conn)?;
            if gone != uids.len() {
                return Err(diesel::result::Error::RollbackTransaction);
            }
            let Ok(mut data) = serde_json::from_str::<OfflineData>(&data) else {
                continue;
            };
            data.count = count as i64;
            for chunk in uids.chunks(MAX_OFFLINE_UIDS) {
                data.to_uids = chunk.to_vec();
                insert(conn, &[NewEvent::new(MESSAGE_OFFLINE, &chat, &data)])?;
                written += 1;
            }
        }
        Ok(written)
    });
    match result {
        Err(diesel::result::Error::RollbackTransaction) => Ok(0),
        other => other,
    }
}

/// Events in `state` (pending or dead), oldest first, after seq `after`.
pub fn list(conn: &mut DbConn, state: i32, after: i64, limit: i64) -> QueryResult<Vec<EventRow>> {
    use webhook_events::dsl as e;
    e::webhook_events
        .filter(e::state.eq(state))
        .filter(e::id.gt(after))
        .order(e::id)
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)
}

/// Brings event `id` back (a dead one, with its attempts counted afresh) to be sent now;
/// false if it is neither pending nor dead.
pub fn retry(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<bool> {
    use webhook_events::dsl as e;
    let n = diesel::update(
        e::webhook_events
            .filter(e::id.eq(id))
            .filter(e::state.eq_any([PENDING, DEAD])),
    )
    .set((
        e::state.eq(PENDING),
        e::attempts.eq(0),
        e::next_at.eq(now),
        e::lease_until.eq(0),
        e::done_at.eq(0),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Events waiting to be delivered.
pub fn pending_count(conn: &mut DbConn) -> QueryResult<i64> {
    use webhook_events::dsl as e;
    e::webhook_events
        .filter(e::state.eq(PENDING))
        .count()
        .get_result(conn)
}

/// Deletes delivered and dropped events finished before `before` (unix ms), at most
/// `limit` of them; returns how many.
pub fn prune(conn: &mut DbConn, before: i64, limit: i64) -> QueryResult<usize> {
    use webhook_events::dsl as e;
    let ids: Vec<i64> = e::webhook_events
        .filter(e::state.eq_any([DELIVERED, DROPPED]))
        .filter(e::done_at.lt(before))
        .order(e::id)
        .limit(limit)
        .select(e::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(e::webhook_events.filter(e::id.eq_any(&ids))).execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::db;

    fn event(conv: &str, n: i64) -> NewEvent {
        NewEvent::new(MESSAGE_OFFLINE, conv, &serde_json::json!({ "n": n }))
    }

    fn ids(rows: &[EventRow]) -> Vec<i64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn only_the_head_of_each_conversation_is_claimed_and_a_lease_is_held_by_one() {
        let (_d, mut c) = db();
        let evs: Vec<NewEvent> = [("a", 1), ("a", 2), ("b", 3), ("a", 4), ("b", 5)]
            .iter()
            .map(|(conv, n)| event(conv, *n))
            .collect();
        insert(&mut c, &evs).unwrap();
        let now = 1_000;
        let first = claim(&mut c, "n1:1", now, 500, 10).unwrap();
        assert_eq!(ids(&first), vec![1, 3], "the earliest of a and of b");
        assert!(claim(&mut c, "n2:1", now, 500, 10).unwrap().is_empty());
        assert!(!finish(&mut c, 1, "n2:1", &Outcome::Delivered, now).unwrap());
        assert!(finish(&mut c, 1, "n1:1", &Outcome::Delivered, now).unwrap());
        let next = claim(&mut c, "n2:2", now, 500, 10).unwrap();
        assert_eq!(ids(&next), vec![2], "b's head is still held");
        // A lease that ran out is taken over.
        let later = claim(&mut c, "n2:3", now + 501, 500, 10).unwrap();
        assert_eq!(ids(&later), vec![2, 3]);
        // A failed head holds its conversation back until it is due again.
        let failed = Outcome::Failed {
            error: "answered 500".into(),
            next_at: now + 10_000,
            dead: false,
        };
        assert!(finish(&mut c, 3, "n2:3", &failed, now + 501).unwrap());
        assert!(finish(&mut c, 2, "n2:3", &Outcome::Delivered, now + 501).unwrap());
        let due = claim(&mut c, "n1:4", now + 2_000, 500, 10).unwrap();
        assert_eq!(ids(&due), vec![4], "5 waits behind 3");
        assert!(finish(&mut c, 4, "n1:4", &Outcome::Delivered, now + 2_000).unwrap());
        let dead = Outcome::Failed {
            error: "answered 500".into(),
            next_at: 0,
            dead: true,
        };
        let retried = claim(&mut c, "n1:5", now + 10_000, 500, 10).unwrap();
        assert_eq!(ids(&retried), vec![3]);
        assert!(finish(&mut c, 3, "n1:5", &dead, now + 10_000).unwrap());
        let listed = list(&mut c, DEAD, 0, 10).unwrap();
        assert_eq!(ids(&listed), vec![3]);
        assert_eq!(listed[0].attempts, 2);
        assert_eq!(listed[0].last_error, "answered 500");
        // Dead, it no longer holds 5 back; retried, it is pending again.
        assert_eq!(
            ids(&claim(&mut c, "n1:6", now + 10_000, 500, 10).unwrap()),
            vec![5]
        );
        assert!(retry(&mut c, 3, now).unwrap());
        assert!(
            !retry(&mut c, 1, now).unwrap(),
            "delivered: nothing to retry"
        );
        assert_eq!(pending_count(&mut c).unwrap(), 2, "3 again, and 5");
    }

    #[test]
    fn a_claim_looks_past_a_long_blocked_conversation() {
        let (_d, mut c) = db();
        let mut evs: Vec<NewEvent> = (0..1500).map(|n| event("busy", n)).collect();
        evs.push(event("quiet", 0));
        insert(&mut c, &evs).unwrap();
        assert_eq!(
            ids(&claim(&mut c, "n:1", 1_000, 500, 10).unwrap()),
            vec![1, 1501]
        );
    }

    #[test]
    fn coalescing_windows_close_into_one_event_per_chat_with_a_count() {
        let (_d, mut c) = db();
        let data = |msg_id: i64| OfflineData {
            msg_id,
            chat_id: "1_2".into(),
            chat_type: crate::protocol::ChatType::Direct,
            shop_id: 0,
            from_uid: 1,
            sender_name: "Ann".into(),
            preview: format!("m{msg_id}"),
            to_uids: Vec::new(),
            count: 1,
        };
        fold_offline(&mut c, &data(10), &[2], 5_000).unwrap();
        fold_offline(&mut c, &data(11), &[2], 6_000).unwrap();
        fold_offline(&mut c, &data(12), &[2], 7_000).unwrap();
        assert_eq!(flush_offline(&mut c, 4_999, 100).unwrap(), 0, "not due yet");
        assert_eq!(flush_offline(&mut c, 5_000, 100).unwrap(), 1);
        assert_eq!(flush_offline(&mut c, 9_000, 100).unwrap(), 0, "closed once");
        let rows = claim(&mut c, "n", 9_000, 100, 10).unwrap();
        assert_eq!(rows.len(), 1);
        let sent: OfflineData = serde_json::from_str(&rows[0].data).unwrap();
        assert_eq!((sent.msg_id, sent.count, sent.to_uids), (12, 3, vec![2]));
    }
}

//! Customer-service sessions (PROTOCOL.md §10): the state a conversation moves through,
//! the queue, event rows, and what the shop reads back (sessions, a customer's history,
//! ratings, the numbers); quick replies and blocked consumers beside them.

use std::collections::HashMap;

use diesel::prelude::*;

use super::conn::{insert_returning_id, upsert, DbConn};
use super::models::{MessageRow, MessageWithSender, Profile, ProfileRow, ServiceChatRow};
use super::outbox::{NewEvent, Outbox};
use super::schema::{blocked_consumers, messages, quick_replies, service_chats, service_sessions};
use super::service::find_chat;
use crate::ids::{MsgId, ShopId, UserId};
use crate::protocol::service::{QuickReply, SessionState, MAX_QUICK_REPLIES, RATING_WINDOW_SECS};
use crate::protocol::webhook;
use crate::protocol::ChatType;

/// The most waiting consumers one read of the queue returns.
pub const MAX_QUEUE_READ: i64 = 1000;

#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = service_sessions)]
pub struct SessionRow {
    pub id: i64,
    pub shop_id: ShopId,
    pub consumer_uid: UserId,
    pub chat_id: String,
    pub agent_uid: UserId,
    pub state: i32,
    pub started_at: i64,
    pub first_msg_at: i64,
    pub first_response_at: i64,
    pub resolved_at: i64,
    pub resolved_by: i64,
    pub last_time: i64,
    pub messages: i32,
    pub rating: i32,
    pub rating_comment: Option<String>,
    pub rated_at: i64,
}

/// The conversation row of (shop, consumer), created (never started) if absent.
pub fn ensure_chat(
    conn: &mut DbConn,
    shop: ShopId,
    consumer: UserId,
    chat_id: &str,
    now: i64,
) -> QueryResult<ServiceChatRow> {
    if let Some(row) = find_chat(conn, shop, consumer)? {
        return Ok(row);
    }
    diesel::insert_into(service_chats::table)
        .values((
            service_chats::shop_id.eq(shop),
            service_chats::consumer_uid.eq(consumer),
            service_chats::chat_id.eq(chat_id),
            service_chats::last_time.eq(now),
        ))
        .execute(conn)?;
    find_chat(conn, shop, consumer)?.ok_or(diesel::result::Error::NotFound)
}

/// The consumers waiting in `shop`'s queue, first in line first.
pub fn queue(conn: &mut DbConn, shop: ShopId) -> QueryResult<Vec<ServiceChatRow>> {
    service_chats::table
        .filter(service_chats::shop_id.eq(shop))
        .filter(service_chats::state.eq(SessionState::Waiting.code()))
        .order((service_chats::waiting_from.asc(), service_chats::id.asc()))
        .limit(MAX_QUEUE_READ)
        .select(ServiceChatRow::as_select())
        .load(conn)
}

/// A new session of (shop, consumer) starting now in `state`; returns its id.
pub fn start_session(
    conn: &mut DbConn,
    chat: &ServiceChatRow,
    state: SessionState,
    agent: UserId,
    consumer_first: bool,
    now: i64,
) -> QueryResult<i64> {
    let values = (
        service_sessions::shop_id.eq(chat.shop_id),
        service_sessions::consumer_uid.eq(chat.consumer_uid),
        service_sessions::chat_id.eq(&chat.chat_id),
        service_sessions::agent_uid.eq(agent),
        service_sessions::state.eq(state.code()),
        service_sessions::started_at.eq(now),
        service_sessions::first_msg_at.eq(if consumer_first { now } else { 0 }),
        service_sessions::last_time.eq(now),
    );
    insert_returning_id!(conn, service_sessions::table, values, service_sessions::id)
}

/// Where a conversation now stands, as one UPDATE of its row; `only_if` makes it a
/// compare-and-set on the state it had (another node may have moved it since).
pub struct ChatChange {
    pub state: SessionState,
    /// The agent who has it, or had it last (kept while it waits, for stickiness).
    pub agent: UserId,
    pub waiting_from: i64,
    pub session_id: i64,
    pub auto_sent: i32,
    pub last_time: i64,
}

pub fn change_chat(
    conn: &mut DbConn,
    shop: ShopId,
    consumer: UserId,
    c: &ChatChange,
    only_if: Option<i32>,
) -> QueryResult<bool> {
    let set = (
        service_chats::state.eq(c.state.code()),
        service_chats::agent_uid.eq(c.agent),
        service_chats::waiting_from.eq(c.waiting_from),
        service_chats::session_id.eq(c.session_id),
        service_chats::auto_sent.eq(c.auto_sent),
        service_chats::last_time.eq(c.last_time),
    );
    let target = service_chats::table
        .filter(service_chats::shop_id.eq(shop))
        .filter(service_chats::consumer_uid.eq(consumer));
    let n = match only_if {
        Some(state) => diesel::update(target.filter(service_chats::state.eq(state)))
            .set(set)
            .execute(conn)?,
        None => diesel::update(target).set(set).execute(conn)?,
    };
    Ok(n > 0)
}

/// What happened to a session in one step.
#[derive(Default)]
pub struct SessionChange {
    /// Its state and agent after the step (0 while it waits).
    pub state: Option<(SessionState, UserId)>,
    /// Messages stored in it by this step.
    pub messages: i32,
    pub last_time: Option<i64>,
    /// An agent answered (not an auto reply) at this time.
    pub agent_answered: Option<i64>,
    /// Resolved at this time by this uid (0 = the server).
    pub resolved: Option<(i64, UserId)>,
}

pub fn change_session(conn: &mut DbConn, id: i64, c: &SessionChange) -> QueryResult<()> {
    if id == 0 {
        return Ok(());
    }
    let target = service_sessions::table.find(id);
    let resolved = c.resolved;
    let set = (
        c.state.map(|(s, _)| service_sessions::state.eq(s.code())),
        // A resolved session keeps the agent who had it when it resolved.
        c.state
            .filter(|(s, _)| *s != SessionState::Resolved)
            .map(|(_, agent)| service_sessions::agent_uid.eq(agent)),
        service_sessions::messages.eq(service_sessions::messages + c.messages),
        c.last_time.map(|t| service_sessions::last_time.eq(t)),
        resolved.map(|(at, _)| service_sessions::resolved_at.eq(at)),
        resolved.map(|(_, by)| service_sessions::resolved_by.eq(by)),
    );
    diesel::update(target).set(set).execute(conn)?;
    if let Some(at) = c.agent_answered {
        diesel::update(target.filter(service_sessions::first_response_at.eq(0)))
            .set(service_sessions::first_response_at.eq(at))
            .execute(conn)?;
    }
    Ok(())
}

/// What a conversation waited with, from `from` up to (not including) `before`.
pub fn backlog(
    conn: &mut DbConn,
    shop: ShopId,
    consumer: UserId,
    from: i64,
    before: Option<MsgId>,
) -> QueryResult<Vec<MessageWithSender>> {
    if from <= 0 {
        return Ok(Vec::new());
    }
    let mut q = messages::table
        .left_join(super::schema::users::table)
        .filter(messages::chat_type.eq(ChatType::Service))
        .filter(messages::shop_id.eq(shop.0))
        .filter(messages::shop_id.gt(0)) // lets SQLite use its partial index
        .filter(messages::consumer_uid.eq(consumer.0))
        .filter(messages::id.ge(from))
        .filter(messages::event_type.is_null())
        .into_boxed();
    if let Some(before) = before {
        q = q.filter(messages::id.lt(before.0));
    }
    let rows = q
        .order(messages::id.asc())
        .select((MessageRow::as_select(), Option::<ProfileRow>::as_select()))
        .load(conn)?;
    super::users::with_senders(conn, rows)
}

/// A shop's sessions in `state`, newest first, `before` a session id (0 = from the newest).
pub fn list_sessions(
    conn: &mut DbConn,
    shop: ShopId,
    state: Option<i32>,
    before: i64,
    limit: i64,
) -> QueryResult<Vec<SessionRow>> {
    let mut q = service_sessions::table
        .filter(service_sessions::shop_id.eq(shop))
        .into_boxed();
    if let Some(state) = state {
        q = q.filter(service_sessions::state.eq(state));
    }
    if before > 0 {
        q = q.filter(service_sessions::id.lt(before));
    }
    q.order(service_sessions::id.desc())
        .limit(limit)
        .select(SessionRow::as_select())
        .load(conn)
}

/// A consumer's sessions with a shop, newest first.
pub fn customer_sessions(
    conn: &mut DbConn,
    shop: ShopId,
    consumer: UserId,
    limit: i64,
) -> QueryResult<Vec<SessionRow>> {
    service_sessions::table
        .filter(service_sessions::shop_id.eq(shop))
        .filter(service_sessions::consumer_uid.eq(consumer))
        .order(service_sessions::id.desc())
        .limit(limit)
        .select(SessionRow::as_select())
        .load(conn)
}

/// The sessions a shop started in `[from, to)`, at most `limit`.
pub fn sessions_started(
    conn: &mut DbConn,
    shop: ShopId,
    from: i64,
    to: i64,
    limit: i64,
) -> QueryResult<Vec<SessionRow>> {
    service_sessions::table
        .filter(service_sessions::shop_id.eq(shop))
        .filter(service_sessions::started_at.ge(from))
        .filter(service_sessions::started_at.lt(to))
        .order(service_sessions::id.asc())
        .limit(limit)
        .select(SessionRow::as_select())
        .load(conn)
}

/// Messages each agent of `shop` wrote (auto replies and events aside) in `[from, to)`.
pub fn agent_messages(
    conn: &mut DbConn,
    shop: ShopId,
    from: i64,
    to: i64,
) -> QueryResult<Vec<(UserId, i64)>> {
    let rows = messages::table
        .filter(messages::chat_type.eq(ChatType::Service))
        .filter(messages::shop_id.eq(shop.0))
        .filter(messages::shop_id.gt(0))
        .filter(messages::from_service.eq(true))
        .filter(messages::auto_reply.eq(false))
        .filter(messages::event_type.is_null())
        .filter(messages::createtime.ge(from))
        .filter(messages::createtime.lt(to))
        .group_by(messages::from_uid)
        .select((messages::from_uid, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?;
    Ok(rows.into_iter().map(|(u, n)| (UserId(u), n)).collect())
}

/// Consumers waiting in `shop`'s queue now.
pub fn waiting_now(conn: &mut DbConn, shop: ShopId) -> QueryResult<i64> {
    service_chats::table
        .filter(service_chats::shop_id.eq(shop))
        .filter(service_chats::state.eq(SessionState::Waiting.code()))
        .count()
        .get_result(conn)
}

/// Rated sessions of a shop, newest rating first, `before` a session id (0 = from the newest).
pub fn ratings(
    conn: &mut DbConn,
    shop: ShopId,
    before: i64,
    limit: i64,
) -> QueryResult<Vec<SessionRow>> {
    let mut q = service_sessions::table
        .filter(service_sessions::shop_id.eq(shop))
        .filter(service_sessions::rating.gt(0))
        .into_boxed();
    if before > 0 {
        q = q.filter(service_sessions::id.lt(before));
    }
    q.order(service_sessions::id.desc())
        .limit(limit)
        .select(SessionRow::as_select())
        .load(conn)
}

/// Why a rating was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateRefusal {
    NothingToRate,
    AlreadyRated,
}

/// Rates the latest resolved session of (shop, consumer), once, within the window.
pub fn rate(
    conn: &mut DbConn,
    shop: ShopId,
    consumer: UserId,
    score: i32,
    comment: Option<&str>,
    now: i64,
    outbox: &Outbox,
) -> QueryResult<Result<SessionRow, RateRefusal>> {
    conn.transaction(|conn| {
        super::conn::take_write_lock(conn)?;
        let latest: Option<SessionRow> = service_sessions::table
            .filter(service_sessions::shop_id.eq(shop))
            .filter(service_sessions::consumer_uid.eq(consumer))
            .filter(service_sessions::state.eq(SessionState::Resolved.code()))
            .filter(service_sessions::resolved_at.gt(0))
            .order(service_sessions::id.desc())
            .select(SessionRow::as_select())
            .first(conn)
            .optional()?;
        let Some(session) = latest.filter(|s| now - s.resolved_at <= RATING_WINDOW_SECS) else {
            return Ok(Err(RateRefusal::NothingToRate));
        };
        // Compare and set: of two ratings at once, one wins.
        let n = diesel::update(
            service_sessions::table
                .find(session.id)
                .filter(service_sessions::rating.eq(0)),
        )
        .set((
            service_sessions::rating.eq(score),
            service_sessions::rating_comment.eq(comment),
            service_sessions::rated_at.eq(now),
        ))
        .execute(conn)?;
        if n == 0 {
            return Ok(Err(RateRefusal::AlreadyRated));
        }
        if outbox.wants(webhook::CONVERSATION_RATED) {
            let data = webhook::RatedData {
                shop_id: shop.0,
                consumer_uid: consumer.0,
                session_id: session.id,
                agent_uid: session.agent_uid.0,
                score,
                comment: comment.map(str::to_string),
            };
            let event = NewEvent::new(webhook::CONVERSATION_RATED, &session.chat_id, &data);
            super::outbox::insert(conn, &[event])?;
        }
        Ok(Ok(SessionRow {
            rating: score,
            rating_comment: comment.map(str::to_string),
            rated_at: now,
            ..session
        }))
    })
}

/// The sweep's work: open conversations quiet for longer than their shop's
/// `auto_resolve_mins` at `now`, at most `limit`, each with the time it must have been
/// quiet since. One query, whatever the number of shops.
pub fn due_for_resolve(
    conn: &mut DbConn,
    now: i64,
    limit: i64,
) -> QueryResult<Vec<(ShopId, UserId, i64)>> {
    use super::schema::shops;
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Bool};
    // The threshold mixes two tables' columns in arithmetic, which the query builder
    // does not type; the fragment is plain SQL on every backend.
    let idle = sql::<Bool>("service_chats.last_time < ")
        .bind::<BigInt, _>(now)
        .sql(" - shops.auto_resolve_mins * 60");
    Ok(service_chats::table
        .inner_join(shops::table.on(shops::id.eq(service_chats::shop_id)))
        .filter(service_chats::state.eq(SessionState::Open.code()))
        .filter(shops::auto_resolve_mins.gt(0))
        .filter(idle)
        .order(service_chats::last_time.asc())
        .limit(limit)
        .select((
            service_chats::shop_id,
            service_chats::consumer_uid,
            shops::auto_resolve_mins,
        ))
        .load::<(i64, i64, i32)>(conn)?
        .into_iter()
        .map(|(shop, consumer, mins)| (ShopId(shop), UserId(consumer), now - i64::from(mins) * 60))
        .collect())
}

pub fn quick_replies(conn: &mut DbConn, shop: ShopId) -> QueryResult<Vec<QuickReply>> {
    Ok(quick_replies::table
        .filter(quick_replies::shop_id.eq(shop))
        .order(quick_replies::short_code.asc())
        .limit(MAX_QUICK_REPLIES)
        .select((quick_replies::short_code, quick_replies::text))
        .load::<(String, String)>(conn)?
        .into_iter()
        .map(|(short_code, text)| QuickReply { short_code, text })
        .collect())
}

/// Saves a quick reply; false if the shop already has its most and this one is new.
pub fn save_quick_reply(
    conn: &mut DbConn,
    shop: ShopId,
    reply: &QuickReply,
    now: i64,
) -> QueryResult<bool> {
    conn.transaction(|conn| {
        // It reads first: on SQLite, take the write lock now (`conn::take_write_lock`).
        super::conn::take_write_lock(conn)?;
        let count: i64 = quick_replies::table
            .filter(quick_replies::shop_id.eq(shop))
            .count()
            .get_result(conn)?;
        let exists: i64 = quick_replies::table
            .filter(quick_replies::shop_id.eq(shop))
            .filter(quick_replies::short_code.eq(&reply.short_code))
            .count()
            .get_result(conn)?;
        if exists == 0 && count >= MAX_QUICK_REPLIES {
            return Ok(false);
        }
        let row = (
            quick_replies::shop_id.eq(shop),
            quick_replies::short_code.eq(&reply.short_code),
            quick_replies::text.eq(&reply.text),
            quick_replies::updated_at.eq(now),
        );
        let change = (
            quick_replies::text.eq(&reply.text),
            quick_replies::updated_at.eq(now),
        );
        upsert!(
            &mut *conn,
            quick_replies::table,
            row,
            (quick_replies::shop_id, quick_replies::short_code),
            change
        )?;
        Ok(true)
    })
}

/// Deletes a quick reply; false if there was none.
pub fn delete_quick_reply(conn: &mut DbConn, shop: ShopId, short_code: &str) -> QueryResult<bool> {
    let n = diesel::delete(
        quick_replies::table
            .filter(quick_replies::shop_id.eq(shop))
            .filter(quick_replies::short_code.eq(short_code)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// Blocks or unblocks a consumer for a shop.
pub fn set_blocked(
    conn: &mut DbConn,
    shop: ShopId,
    consumer: UserId,
    blocked: bool,
    now: i64,
) -> QueryResult<()> {
    let target = blocked_consumers::table
        .filter(blocked_consumers::shop_id.eq(shop))
        .filter(blocked_consumers::consumer_uid.eq(consumer));
    if !blocked {
        diesel::delete(target).execute(conn)?;
        return Ok(());
    }
    let row = (
        blocked_consumers::shop_id.eq(shop),
        blocked_consumers::consumer_uid.eq(consumer),
        blocked_consumers::created_at.eq(now),
    );
    upsert!(
        &mut *conn,
        blocked_consumers::table,
        row,
        (blocked_consumers::shop_id, blocked_consumers::consumer_uid),
        blocked_consumers::created_at.eq(now)
    )?;
    Ok(())
}

/// One consumer in the queue as agents see it (`service.queue`).
#[derive(Clone, Debug, PartialEq)]
pub struct QueueEntry {
    pub chat_id: String,
    pub consumer: Profile,
    /// When the message it waits from was sent.
    pub waiting_since: i64,
    pub last_msg: String,
}

/// `shop`'s queue with each consumer's profile and last message, first in line first.
pub fn queue_view(conn: &mut DbConn, shop: ShopId) -> QueryResult<Vec<QueueEntry>> {
    let rows = queue(conn, shop)?;
    let uids: Vec<UserId> = rows.iter().map(|r| r.consumer_uid).collect();
    let profiles = super::conversations::profiles_by_id(conn, &uids)?;
    let froms: Vec<i64> = rows.iter().map(|r| r.waiting_from).collect();
    let since: HashMap<i64, i64> = messages::table
        .filter(messages::id.eq_any(&froms))
        .select((messages::id, messages::createtime))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let chat_ids: Vec<String> = rows.iter().map(|r| r.chat_id.clone()).collect();
    let side = shop_side(conn, shop, &chat_ids)?;
    Ok(rows
        .into_iter()
        .map(|r| QueueEntry {
            consumer: profiles
                .get(&r.consumer_uid)
                .cloned()
                .unwrap_or_else(|| Profile::placeholder(r.consumer_uid)),
            waiting_since: since.get(&r.waiting_from).copied().unwrap_or(r.last_time),
            last_msg: side
                .get(&r.chat_id)
                .map(|s| s.0.clone())
                .unwrap_or_default(),
            chat_id: r.chat_id,
        })
        .collect())
}

/// The shop side's last message and unread count of each of `chat_ids`.
pub fn shop_side(
    conn: &mut DbConn,
    shop: ShopId,
    chat_ids: &[String],
) -> QueryResult<HashMap<String, (String, i32)>> {
    use super::schema::conversations;
    Ok(conversations::table
        .filter(conversations::owner_uid.eq(0))
        .filter(conversations::shop_id.eq(shop.0))
        .filter(conversations::chat_id.eq_any(chat_ids))
        .select((
            conversations::chat_id,
            conversations::last_msg,
            conversations::unread_count,
        ))
        .load::<(String, String, i32)>(conn)?
        .into_iter()
        .map(|(c, m, n)| (c, (m, n)))
        .collect())
}

impl SessionRow {
    /// As listings show it.
    pub fn view(&self) -> crate::protocol::service::SessionView {
        use crate::protocol::service::{RatingView, SessionView};
        let state = SessionState::from_code(self.state);
        let when = |t: i64| (t > 0).then_some(t);
        SessionView {
            session_id: self.id,
            chat_id: self.chat_id.clone(),
            consumer_uid: self.consumer_uid.0,
            agent_uid: (self.agent_uid.0 > 0).then_some(self.agent_uid.0),
            state: state.name(),
            started_at: self.started_at,
            first_response_at: when(self.first_response_at),
            resolved_at: when(self.resolved_at),
            last_time: self.last_time,
            messages: self.messages,
            rating: (self.rating > 0).then(|| RatingView {
                score: self.rating,
                comment: self.rating_comment.clone(),
            }),
            unread_count: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::connection::{Connection, InstrumentationEvent, SimpleConnection};

    /// Another connection commits between the save's reads and its write (a message
    /// batch, in the server). The save still goes in: it takes the write lock before it
    /// reads, where a deferred transaction would find its snapshot stale at its first
    /// write and fail at once with "database is locked".
    #[test]
    fn a_quick_reply_saved_while_another_connection_writes_still_goes_in() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let pool = crate::db::conn::connect(&url, 2, Default::default()).unwrap();
        let (mut saver, mut other) = (pool.get().unwrap(), pool.get().unwrap());
        #[allow(irrefutable_let_patterns)] // only SQLite is compiled in without features
        let DbConn::Sqlite(other) = &mut **other
        else {
            return;
        };
        other.batch_execute("PRAGMA busy_timeout = 0").unwrap();
        let mut other = Some(other);
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<bool>();
            // The other connection writes when told, from its own thread.
            let other = other.take().unwrap();
            s.spawn(move || {
                for () in rx {
                    let wrote = other
                        .batch_execute("INSERT INTO quick_replies VALUES (9, 'x', 'y', 0)")
                        .is_ok();
                    let _ = done_tx.send(wrote);
                }
            });
            let told = std::sync::Mutex::new(Some((tx, done_rx)));
            saver.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                if let InstrumentationEvent::StartQuery { query, .. } = event {
                    if query.to_string().starts_with("INSERT") {
                        if let Some((tx, done)) = told.lock().unwrap().take() {
                            tx.send(()).unwrap();
                            // Refused while the save holds the write lock; committed if not.
                            let _ = done.recv();
                        }
                    }
                }
            });
            let reply = QuickReply {
                short_code: "hi".into(),
                text: "hello".into(),
            };
            assert_eq!(save_quick_reply(&mut saver, ShopId(7), &reply, 1), Ok(true));
            saver.set_instrumentation(|_: InstrumentationEvent<'_>| {});
        });
        let saved = quick_replies(&mut saver, ShopId(7)).unwrap();
        assert_eq!(saved.len(), 1);
        assert_eq!(saved[0].short_code, "hi");
    }
}

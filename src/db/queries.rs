//! Plain query functions over one connection. The DbExecutor's handlers delegate here,
//! and each is unit-tested against a real SQLite file.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use diesel::sql_types::Bool;

use super::conn::{insert_returning_id, DbConn, MultiBackend};
use super::conversations::Touches;
use std::collections::HashMap;

use super::models::{
    MessageRow, MessageWithSender, NewMessage, Profile, ProfileRow, RoutingView, ShopRow,
};
use super::schema::{agents, messages, shops, users};
use crate::ids::{GroupId, MsgId, ShopId, UserId};

/// Succeeds when the database can be read.
pub fn ping(conn: &mut DbConn) -> QueryResult<()> {
    users::table
        .select(users::id)
        .filter(users::id.eq(0))
        .first::<i64>(conn)
        .optional()
        .map(|_| ())
}

pub fn find_profile(conn: &mut DbConn, uid: UserId) -> QueryResult<Option<Profile>> {
    users::table
        .find(uid.0)
        .select(ProfileRow::as_select())
        .first(conn)
        .optional()
        .map(|r| r.map(Profile::from))
}

/// The user's profile, creating a placeholder row for an id first seen in a token.
pub fn ensure_user(conn: &mut DbConn, uid: UserId, now: i64) -> QueryResult<Profile> {
    if let Some(p) = find_profile(conn, uid)? {
        return Ok(p);
    }
    insert_placeholder(conn, uid, now)?;
    find_profile(conn, uid)?.ok_or(DieselError::NotFound)
}

/// Inserts a placeholder user; losing a race with another inserter is fine.
fn insert_placeholder(conn: &mut DbConn, uid: UserId, now: i64) -> QueryResult<()> {
    let inserted = diesel::insert_into(users::table)
        .values((
            users::id.eq(uid.0),
            users::nickname.eq(Profile::placeholder_nickname(uid)),
            users::avatar.eq(""),
            users::sign.eq(""),
            users::created_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates or updates a profile; fields left `None` keep their value.
pub fn upsert_user(
    conn: &mut DbConn,
    uid: UserId,
    nickname: Option<&str>,
    avatar: Option<&str>,
    now: i64,
) -> QueryResult<Profile> {
    conn.transaction(|conn| {
        if find_profile(conn, uid)?.is_none() {
            insert_placeholder(conn, uid, now)?;
        }
        if let Some(n) = nickname {
            diesel::update(users::table.find(uid.0))
                .set(users::nickname.eq(n))
                .execute(conn)?;
        }
        if let Some(a) = avatar {
            diesel::update(users::table.find(uid.0))
                .set(users::avatar.eq(a))
                .execute(conn)?;
        }
        find_profile(conn, uid)?.ok_or(DieselError::NotFound)
    })
}

/// One write of ChatServer's queue.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    /// Store a message and update the conversation rows it changes.
    Store(NewMessage),
    /// Give a customer-service conversation to an agent; with `only_if_waiting`, only
    /// if it still waits (another node may have handed it out since).
    Assign {
        shop: ShopId,
        consumer: UserId,
        agent: UserId,
        only_if_waiting: bool,
    },
    /// Read a shop's routing state (cluster mode), after every write queued before it.
    ReadRouting(RoutingQuery),
}

/// What a ShopRouter in cluster mode reads before it decides.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingQuery {
    pub shop: ShopId,
    /// The conversation about to be routed, if any.
    pub consumer: Option<UserId>,
    /// Whether to list the conversations waiting for an agent.
    pub waiting: bool,
    /// Conversations quiet since before this unix time do not count toward load.
    pub open_since: i64,
}

/// The result of one `WriteOp`.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteDone {
    /// Stored; for a group message, with the members to push it to.
    Stored {
        id: MsgId,
        members: Option<Vec<UserId>>,
    },
    /// Not stored: the sender may not post there (not a member of the group).
    Forbidden,
    /// Not stored again: the sender already sent this client_msg_id; the original's
    /// id, conversation and time, for the same ack.
    Duplicate {
        id: MsgId,
        chat_id: String,
        createtime: i64,
    },
    /// The messages the conversation waited with, which the new agent has not seen.
    Assigned(Vec<MessageWithSender>),
    Routing(RoutingView),
}

/// Applies a batch in one transaction (group commit); results come back in batch order.
/// A refused write does not undo the others.
pub fn apply_writes(conn: &mut DbConn, batch: &[WriteOp]) -> QueryResult<Vec<WriteDone>> {
    in_one_transaction(conn, batch, |conn, op, touches| {
        if let WriteOp::Store(m) = op {
            if let Some((id, chat_id, createtime)) = earlier_send(conn, m)? {
                return Ok(WriteDone::Duplicate {
                    id: MsgId(id),
                    chat_id,
                    createtime,
                });
            }
        }
        apply_one(conn, op, touches)
    })
}

/// Runs `each` on every item of `batch` in one transaction, then writes the
/// conversation rows they noted, once per row.
fn in_one_transaction<'a, T, R>(
    conn: &mut DbConn,
    batch: &'a [T],
    mut each: impl FnMut(&mut DbConn, &'a T, &mut Touches<'a>) -> QueryResult<R>,
) -> QueryResult<Vec<R>> {
    conn.transaction(|conn| {
        let mut touches = Touches::default();
        let done = batch
            .iter()
            .map(|item| each(conn, item, &mut touches))
            .collect::<QueryResult<Vec<_>>>()?;
        touches.apply(conn)?;
        Ok(done)
    })
}

fn apply_one<'a>(
    conn: &mut DbConn,
    op: &'a WriteOp,
    touches: &mut Touches<'a>,
) -> QueryResult<WriteDone> {
    match op {
        WriteOp::Store(m) if m.chat_type == crate::protocol::chat_type::GROUP => {
            Ok(match super::groups::store_group_message(conn, m)? {
                Some((id, members)) => WriteDone::Stored {
                    id: MsgId(id),
                    members: Some(members),
                },
                None => WriteDone::Forbidden,
            })
        }
        WriteOp::Store(m) => Ok(WriteDone::Stored {
            id: store_one(conn, m, touches)?,
            members: None,
        }),
        WriteOp::Assign {
            shop,
            consumer,
            agent,
            only_if_waiting,
        } => super::service::assign(conn, *shop, *consumer, *agent, *only_if_waiting)
            .map(WriteDone::Assigned),
        WriteOp::ReadRouting(q) => super::service::routing_view(conn, q).map(WriteDone::Routing),
    }
}

/// The message its sender already stored in `m`'s chat under `m`'s client_msg_id, if
/// any (the key is scoped to sender and chat, PROTOCOL.md §15). The unique index keeps
/// them for good, so a retry is recognised however late it comes.
fn earlier_send(conn: &mut DbConn, m: &NewMessage) -> QueryResult<Option<(i64, String, i64)>> {
    let Some(client_id) = &m.client_msg_id else {
        return Ok(None);
    };
    messages::table
        .filter(messages::from_uid.eq(m.from_uid))
        .filter(messages::chat_id.eq(&m.chat_id))
        .filter(messages::client_msg_id.eq(client_id))
        .select((messages::id, messages::chat_id, messages::createtime))
        .first(conn)
        .optional()
}

/// Stores messages in one transaction, without the retry check of `apply_writes`; ids
/// come back in batch order. For tests that need rows in place.
#[cfg(test)]
pub fn store_messages(conn: &mut DbConn, batch: &[NewMessage]) -> QueryResult<Vec<MsgId>> {
    in_one_transaction(conn, batch, store_one)
}

/// Stores `m`; the conversation rows it changes are noted in `touches`, written once
/// per batch.
fn store_one<'a>(
    conn: &mut DbConn,
    m: &'a NewMessage,
    touches: &mut Touches<'a>,
) -> QueryResult<MsgId> {
    let id = insert_message(conn, m)?;
    touches.add(m);
    super::service::record(conn, id.0, m)?;
    Ok(id)
}

fn insert_message(conn: &mut DbConn, m: &NewMessage) -> QueryResult<MsgId> {
    insert_returning_id!(conn, messages::table, m, messages::id).map(MsgId)
}

/// A filter on `messages` built at run time.
pub(super) type Cond = Box<dyn BoxableExpression<messages::table, MultiBackend, SqlType = Bool>>;

/// What `uid` may see: its 1:1s, its customer-service chats (and its shop's, as an
/// agent), its notices, and its groups from when it joined.
fn visible_to(conn: &mut DbConn, uid: UserId, agent_shop: Option<ShopId>) -> QueryResult<Cond> {
    use crate::protocol::chat_type::{DIRECT, GROUP, SERVICE};
    // Its 1:1 chats are those it has a conversation row of (written with their first
    // message), which lets the database read them by (chat_id, id).
    let my_direct_chats = super::schema::conversations::table
        .filter(super::schema::conversations::owner_uid.eq(uid.0))
        .filter(super::schema::conversations::shop_id.eq(0))
        .filter(super::schema::conversations::chat_type.eq(DIRECT))
        .select(super::schema::conversations::chat_id);
    let direct = messages::chat_type
        .eq(DIRECT)
        .and(messages::chat_id.eq_any(my_direct_chats));
    // The `> 0` terms change nothing but let SQLite use its partial indexes (migration 5).
    let as_consumer = messages::chat_type
        .eq(SERVICE)
        .and(messages::consumer_uid.eq(uid.0))
        .and(messages::consumer_uid.gt(0));
    // Shop ids are positive, so -1 matches nothing for a user who is no agent.
    let as_agent = messages::chat_type
        .eq(SERVICE)
        .and(messages::shop_id.eq(agent_shop.map_or(-1, |s| s.0)))
        .and(messages::shop_id.gt(0));
    let notices = super::groups::notices_for(uid, super::groups::broadcasts_from(conn, uid)?);
    let mut cond: Cond = Box::new(direct.or(as_consumer).or(as_agent).or(notices));
    for (group, from) in super::groups::sync_memberships(conn, uid)? {
        let in_group = messages::chat_type
            .eq(GROUP)
            .and(messages::group_id.eq(group))
            .and(messages::group_id.gt(0))
            .and(messages::id.gt(from));
        cond = Box::new(cond.or(in_group));
    }
    Ok(cond)
}

/// The rows of `ids` with their senders, in the order of `ids`' query (`desc` or not).
fn load_with_senders(
    conn: &mut DbConn,
    ids: &[i64],
    desc: bool,
) -> QueryResult<Vec<MessageWithSender>> {
    let mut rows: Vec<(MessageRow, Option<ProfileRow>)> = messages::table
        .left_join(users::table)
        .filter(messages::id.eq_any(ids))
        .select((MessageRow::as_select(), Option::<ProfileRow>::as_select()))
        .load(conn)?;
    rows.sort_by_key(|(m, _)| if desc { -m.id } else { m.id });
    with_senders(conn, rows)
}

/// Messages `uid` may see with id > `since`, oldest first, at most `limit`, and whether
/// more follow.
pub fn sync_messages(
    conn: &mut DbConn,
    uid: UserId,
    agent_shop: Option<ShopId>,
    since: MsgId,
    limit: i64,
) -> QueryResult<(Vec<MessageWithSender>, bool)> {
    let cond = visible_to(conn, uid, agent_shop)?;
    let mut ids: Vec<i64> = messages::table
        .into_boxed()
        .filter(messages::id.gt(since.0))
        .filter(cond)
        .order(messages::id.asc())
        .limit(limit + 1)
        .select(messages::id)
        .load(conn)?;
    let has_more = ids.len() as i64 > limit;
    ids.truncate(limit as usize);
    Ok((load_with_senders(conn, &ids, false)?, has_more))
}

/// Attaches each message's sender profile and, for customer service, its shop and the
/// answering agent's service name.
pub fn with_senders(
    conn: &mut DbConn,
    rows: Vec<(MessageRow, Option<ProfileRow>)>,
) -> QueryResult<Vec<MessageWithSender>> {
    let service = |m: &MessageRow| m.chat_type == crate::protocol::chat_type::SERVICE;
    let mut shop_ids: Vec<i64> = rows
        .iter()
        .filter(|(m, _)| service(m))
        .map(|(m, _)| m.shop_id)
        .collect();
    shop_ids.sort_unstable();
    shop_ids.dedup();
    let shops: HashMap<i64, ShopRow> = shops::table
        .filter(shops::id.eq_any(&shop_ids))
        .select(ShopRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let agent_uids: Vec<i64> = rows
        .iter()
        .filter(|(m, _)| service(m) && m.from_service)
        .map(|(m, _)| m.from_uid)
        .collect();
    let agent_names: HashMap<i64, String> = agents::table
        .filter(agents::uid.eq_any(&agent_uids))
        .select((agents::uid, agents::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .filter(|(_, n)| !n.is_empty())
        .collect();
    Ok(rows
        .into_iter()
        .map(|(message, sender)| {
            let mut sender = sender
                .map(Profile::from)
                .unwrap_or_else(|| Profile::placeholder(UserId(message.from_uid)));
            if message.from_service {
                if let Some(name) = agent_names.get(&message.from_uid) {
                    sender.nickname = name.clone();
                }
            }
            let shop = service(&message)
                .then(|| shops.get(&message.shop_id).cloned())
                .flatten();
            MessageWithSender {
                message,
                sender,
                shop,
            }
        })
        .collect())
}

/// Whose history `/user/getChatRecord` reads. A customer-service conversation is named
/// by its shop and consumer: its chat_id string alone is ambiguous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordScope {
    Direct(String),
    Service {
        shop: ShopId,
        consumer: UserId,
    },
    /// A group's messages after `from` (where the reader joined).
    Group {
        group: GroupId,
        from: i64,
    },
    /// A user's notices, its own and those to everyone.
    Notices(UserId),
}

fn scope_cond(conn: &mut DbConn, scope: &RecordScope) -> QueryResult<Cond> {
    use crate::protocol::chat_type::{DIRECT, GROUP, SERVICE};
    Ok(match scope {
        RecordScope::Direct(chat) => Box::new(
            messages::chat_type
                .eq(DIRECT)
                .and(messages::chat_id.eq(chat.clone())),
        ),
        RecordScope::Service { shop, consumer } => Box::new(
            messages::chat_type
                .eq(SERVICE)
                .and(messages::shop_id.eq(shop.0))
                .and(messages::shop_id.gt(0))
                .and(messages::consumer_uid.eq(consumer.0)),
        ),
        RecordScope::Group { group, from } => Box::new(
            messages::chat_type
                .eq(GROUP)
                .and(messages::group_id.eq(group.0))
                .and(messages::group_id.gt(0))
                .and(messages::id.gt(*from)),
        ),
        RecordScope::Notices(uid) => {
            super::groups::notices_for(*uid, super::groups::broadcasts_from(conn, *uid)?)
        }
    })
}

/// Page `page` (from 1) of one conversation's history, newest first, and its size.
pub fn chat_records(
    conn: &mut DbConn,
    scope: &RecordScope,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<MessageWithSender>, i64)> {
    let total: i64 = messages::table
        .into_boxed()
        .filter(scope_cond(conn, scope)?)
        .count()
        .get_result(conn)?;
    let ids: Vec<i64> = messages::table
        .into_boxed()
        .filter(scope_cond(conn, scope)?)
        .order(messages::id.desc())
        .limit(per_page)
        .offset((page - 1).saturating_mul(per_page))
        .select(messages::id)
        .load(conn)?;
    Ok((load_with_senders(conn, &ids, true)?, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{db, direct};

    #[test]
    fn ensure_user_creates_a_placeholder_once() {
        let (_d, mut c) = db();
        let p = ensure_user(&mut c, UserId(42), 1).unwrap();
        assert_eq!(p.nickname, "user42");
        assert_eq!(p.avatar, "");
        upsert_user(&mut c, UserId(42), Some("Ann"), None, 2).unwrap();
        assert_eq!(ensure_user(&mut c, UserId(42), 3).unwrap().nickname, "Ann");
    }

    #[test]
    fn upsert_updates_only_given_fields() {
        let (_d, mut c) = db();
        let p = upsert_user(&mut c, UserId(5), None, Some("a.png"), 1).unwrap();
        assert_eq!((p.nickname.as_str(), p.avatar.as_str()), ("user5", "a.png"));
        let p = upsert_user(&mut c, UserId(5), Some("Bo"), None, 1).unwrap();
        assert_eq!((p.nickname.as_str(), p.avatar.as_str()), ("Bo", "a.png"));
    }

    #[test]
    fn a_batch_gets_ascending_ids_in_order() {
        let (_d, mut c) = db();
        let batch: Vec<_> = (0..10).map(|i| direct(1, 2, &format!("m{i}"))).collect();
        let ids = store_messages(&mut c, &batch).unwrap();
        assert_eq!(ids.len(), 10);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let more = store_messages(&mut c, &batch[..1]).unwrap();
        assert!(more[0] > ids[9]);
    }

    #[test]
    fn a_failing_batch_stores_nothing() {
        let (_d, mut c) = db();
        let mut a = direct(1, 2, "a");
        a.client_msg_id = Some("dup".into());
        let b = a.clone();
        assert!(store_messages(&mut c, &[a, b]).is_err());
        let (rows, _) = sync_messages(&mut c, UserId(2), None, MsgId(0), 10).unwrap();
        assert!(rows.is_empty());
    }

    #[test]
    fn sync_sees_own_direct_messages_both_ways_and_pages() {
        let (_d, mut c) = db();
        upsert_user(&mut c, UserId(1), Some("One"), Some("1.png"), 0).unwrap();
        let batch = vec![
            direct(1, 2, "a"),
            direct(2, 1, "b"),
            direct(3, 4, "other"),
            direct(1, 2, "c"),
        ];
        let ids = store_messages(&mut c, &batch).unwrap();
        let (rows, more) = sync_messages(&mut c, UserId(2), None, MsgId(0), 2).unwrap();
        assert!(more);
        assert_eq!(
            rows.iter()
                .map(|r| r.message.msg.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(rows[0].sender.nickname, "One");
        assert_eq!(
            rows[1].sender.nickname, "user2",
            "a sender without a row gets the placeholder"
        );
        let (rows, more) =
            sync_messages(&mut c, UserId(2), None, MsgId(rows[1].message.id), 2).unwrap();
        assert!(!more);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].message.id, ids[3].0);
        let (rows, _) = sync_messages(&mut c, UserId(4), None, MsgId(0), 10).unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn records_page_newest_first_with_a_total() {
        let (_d, mut c) = db();
        let batch: Vec<_> = (0..25).map(|i| direct(1, 2, &format!("m{i}"))).collect();
        store_messages(&mut c, &batch).unwrap();
        store_messages(&mut c, &[direct(1, 3, "elsewhere")]).unwrap();
        let (rows, total) =
            chat_records(&mut c, &RecordScope::Direct("1_2".into()), 1, 20).unwrap();
        assert_eq!(total, 25);
        assert_eq!(rows.len(), 20);
        assert_eq!(rows[0].message.msg, "m24");
        let (rows, _) = chat_records(&mut c, &RecordScope::Direct("1_2".into()), 2, 20).unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| r.message.msg.as_str())
                .collect::<Vec<_>>(),
            ["m4", "m3", "m2", "m1", "m0"]
        );
        assert!(
            chat_records(&mut c, &RecordScope::Direct("1_2".into()), 3, 20)
                .unwrap()
                .0
                .is_empty()
        );
    }
}

//! Reading history: what a user may see (`chat.sync`) and one conversation's pages
//! (`/user/getChatRecord`).

use diesel::prelude::*;

use super::conn::{Cond, DbConn};
use super::models::{MessageRow, MessageWithSender, ProfileRow};
use super::schema::{messages, users};
use super::users::with_senders;
use crate::ids::{GroupId, MsgId, ShopId, UserId};

/// What `uid` may see: its 1:1s, its customer-service chats (and its shop's, as an
/// agent), its notices, and its groups from when it joined.
fn visible_to(conn: &mut DbConn, uid: UserId, agent_shop: Option<ShopId>) -> QueryResult<Cond> {
    use crate::protocol::ChatType;
    // Its 1:1 chats are those it has a conversation row of (written with their first
    // message), which lets the database read them by (chat_id, id).
    let my_direct_chats = super::schema::conversations::table
        .filter(super::schema::conversations::owner_uid.eq(uid.0))
        .filter(super::schema::conversations::shop_id.eq(0))
        .filter(super::schema::conversations::chat_type.eq(ChatType::Direct))
        .select(super::schema::conversations::chat_id);
    let direct = messages::chat_type
        .eq(ChatType::Direct)
        .and(messages::chat_id.eq_any(my_direct_chats));
    // The `> 0` terms change nothing but let SQLite use its partial indexes (migration 5).
    let as_consumer = messages::chat_type
        .eq(ChatType::Service)
        .and(messages::consumer_uid.eq(uid.0))
        .and(messages::consumer_uid.gt(0));
    // Shop ids are positive, so -1 matches nothing for a user who is no agent.
    let as_agent = messages::chat_type
        .eq(ChatType::Service)
        .and(messages::shop_id.eq(agent_shop.map_or(-1, |s| s.0)))
        .and(messages::shop_id.gt(0));
    let notices = super::groups::notices_for(uid, super::groups::broadcasts_from(conn, uid)?);
    let mut cond: Cond = Box::new(direct.or(as_consumer).or(as_agent).or(notices));
    for (group, from) in super::groups::sync_memberships(conn, uid)? {
        let in_group = messages::chat_type
            .eq(ChatType::Group)
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
    rows.sort_by_key(|(m, _)| if desc { -m.id.0 } else { m.id.0 });
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
    use crate::protocol::ChatType;
    Ok(match scope {
        RecordScope::Direct(chat) => Box::new(
            messages::chat_type
                .eq(ChatType::Direct)
                .and(messages::chat_id.eq(chat.clone())),
        ),
        RecordScope::Service { shop, consumer } => Box::new(
            messages::chat_type
                .eq(ChatType::Service)
                .and(messages::shop_id.eq(shop.0))
                .and(messages::shop_id.gt(0))
                .and(messages::consumer_uid.eq(consumer.0)),
        ),
        RecordScope::Group { group, from } => Box::new(
            messages::chat_type
                .eq(ChatType::Group)
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
    // Event rows (a resolution, a rating request) are not messages of the history.
    let total: i64 = messages::table
        .into_boxed()
        .filter(scope_cond(conn, scope)?)
        .filter(messages::event_type.is_null())
        .count()
        .get_result(conn)?;
    let ids: Vec<i64> = messages::table
        .into_boxed()
        .filter(scope_cond(conn, scope)?)
        .filter(messages::event_type.is_null())
        .order(messages::id.desc())
        .limit(per_page)
        .offset((page - 1).saturating_mul(per_page))
        .select(messages::id)
        .load(conn)?;
    Ok((load_with_senders(conn, &ids, true)?, total))
}

/// One conversation's rows in seq order, as one reader sees them (PROTOCOL.md §17).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeScope {
    pub chat_id: String,
    pub shop_id: i64,
    /// Only rows with a larger id: where a group's member joined, where a
    /// self-registered account's broadcasts start; 0 for the rest.
    pub after_id: i64,
}

/// The rows of `scope` with seq > `after_seq`, at most `limit`, in seq order, and whether
/// more follow. A row the reader may not see (before it joined) is left out.
pub fn seq_range(
    conn: &mut DbConn,
    scope: &RangeScope,
    after_seq: i64,
    limit: i64,
) -> QueryResult<(Vec<MessageWithSender>, bool)> {
    let mut rows: Vec<(MessageRow, Option<ProfileRow>)> = messages::table
        .left_join(users::table)
        .filter(messages::chat_id.eq(&scope.chat_id))
        .filter(messages::shop_id.eq(scope.shop_id))
        .filter(messages::seq.gt(after_seq))
        .filter(messages::id.gt(scope.after_id))
        .order(messages::seq.asc())
        .limit(limit + 1)
        .select((MessageRow::as_select(), Option::<ProfileRow>::as_select()))
        .load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    Ok((with_senders(conn, rows)?, has_more))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::store::store_messages;
    use crate::db::testing::{db, direct};
    use crate::db::users::upsert_user;

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
        let (rows, more) = sync_messages(&mut c, UserId(2), None, rows[1].message.id, 2).unwrap();
        assert!(!more);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].message.id, ids[3]);
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

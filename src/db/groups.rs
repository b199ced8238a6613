//! Groups (chat_type 2) and system notices (chat_type 3). Neither writes a row per
//! reader when a message is stored: each reader keeps cursors (read up to, hidden up
//! to, joined from) and unread counts are counted when asked.

use std::collections::HashMap;

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Integer, Text};

use super::conn::Cond;
use super::conn::{bind, insert_returning_id, DbConn};
use super::conversations::Mark;
use super::models::{ConversationRow, ConversationView, NewMessage, Profile};
use super::schema::{chat_groups, group_members, messages, notice_reads};
use super::users::ensure_user;
use crate::ids::{ChatId, GroupId, UserId};
use crate::protocol::{ChatType, MsgType};

#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = chat_groups)]
pub struct GroupRow {
    pub id: GroupId,
    pub name: String,
    pub owner_uid: UserId,
    pub last_msg_id: i64,
    pub last_msg: String,
    pub last_uid: UserId,
    pub last_time: i64,
    pub msg_type: MsgType,
    /// Anyone may `group.join` an open group; a private one takes members only from its
    /// owner (contacts in both directions) or the platform.
    pub is_open: bool,
}

#[derive(Queryable, Selectable, Clone, Debug, PartialEq)]
#[diesel(table_name = group_members)]
pub struct MemberRow {
    pub group_id: GroupId,
    pub uid: UserId,
    pub joined_from: i64,
    pub read_upto: i64,
    pub hidden_upto: i64,
}

/// A group as `group.list` shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GroupSummary {
    pub group_id: i64,
    pub name: String,
    pub member_count: i64,
}

pub fn find_group(conn: &mut DbConn, group: GroupId) -> QueryResult<Option<GroupRow>> {
    chat_groups::table
        .find(group.0)
        .select(GroupRow::as_select())
        .first(conn)
        .optional()
}

fn membership(conn: &mut DbConn, group: GroupId, uid: UserId) -> QueryResult<Option<MemberRow>> {
    group_members::table
        .find((group.0, uid.0))
        .select(MemberRow::as_select())
        .first(conn)
        .optional()
}

pub fn is_member(conn: &mut DbConn, group: GroupId, uid: UserId) -> QueryResult<bool> {
    Ok(membership(conn, group, uid)?.is_some())
}

/// Adds `uid` to a group, seeing messages from now on; false if it already was a member.
fn add_member(conn: &mut DbConn, group: &GroupRow, uid: UserId, now: i64) -> QueryResult<bool> {
    ensure_user(conn, uid, now)?;
    let inserted = conn.transaction(|c| {
        diesel::insert_into(group_members::table)
            .values((
                group_members::group_id.eq(group.id),
                group_members::uid.eq(uid.0),
                group_members::joined_from.eq(group.last_msg_id),
                group_members::read_upto.eq(group.last_msg_id),
                group_members::hidden_upto.eq(0),
                group_members::joined_at.eq(now),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Who is adding a member to a group, which decides what is allowed (PROTOCOL.md §15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joiner {
    /// The platform (admin API, embedding handle): anyone, to any group.
    Platform,
    /// The user itself (`group.join`): open groups only.
    Themselves,
    /// A user adding another (`group.create`'s members, `group.add`): only the owner,
    /// and only users who have exchanged 1:1 messages with it in both directions.
    Owner(UserId),
}

/// What adding a member came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    NoGroup,
    Forbidden,
    /// Added; false if it already was a member.
    Member(bool),
}

/// Whether `owner` and each of `others` have sent each other a 1:1 message, in one
/// query however many `others` there are.
pub fn exchanged(conn: &mut DbConn, owner: UserId, others: &[UserId]) -> QueryResult<bool> {
    let others: Vec<UserId> = others.iter().copied().filter(|o| *o != owner).collect();
    if others.is_empty() {
        return Ok(true);
    }
    let chats: Vec<String> = others.iter().map(|o| ChatId::direct(owner, *o).0).collect();
    let senders: Vec<i64> = others.iter().map(|o| o.0).chain([owner.0]).collect();
    let pairs: std::collections::HashSet<(String, i64)> = messages::table
        .filter(messages::chat_type.eq(ChatType::Direct))
        .filter(messages::chat_id.eq_any(&chats))
        .filter(messages::from_uid.eq_any(&senders))
        .select((messages::chat_id, messages::from_uid))
        .distinct()
        .load(conn)?
        .into_iter()
        .collect();
    Ok(others.iter().zip(&chats).all(|(other, chat)| {
        pairs.contains(&(chat.clone(), owner.0)) && pairs.contains(&(chat.clone(), other.0))
    }))
}

/// Creates a group owned by `owner`, who is a member along with `members`; `None` when
/// `owner` may not add one of them (a user adding strangers, see [`Joiner::Owner`]).
pub fn create_group(
    conn: &mut DbConn,
    name: &str,
    owner: UserId,
    members: &[UserId],
    open: bool,
    by: Joiner,
    now: i64,
) -> QueryResult<Option<GroupId>> {
    if by != Joiner::Platform && !exchanged(conn, owner, members)? {
        return Ok(None);
    }
    conn.transaction(|conn| {
        let id = insert_returning_id!(
            &mut *conn,
            chat_groups::table,
            (
                chat_groups::name.eq(name),
                chat_groups::owner_uid.eq(owner.0),
                chat_groups::created_at.eq(now),
                chat_groups::last_msg.eq(""),
                chat_groups::is_open.eq(open),
            ),
            chat_groups::id
        )?;
        let group = find_group(conn, GroupId(id))?.ok_or(DieselError::NotFound)?;
        add_member(conn, &group, owner, now)?;
        for m in members.iter().filter(|m| **m != owner) {
            add_member(conn, &group, *m, now)?;
        }
        Ok(Some(GroupId(id)))
    })
}

/// Adds `uid` to `group` if `by` may.
pub fn join_group(
    conn: &mut DbConn,
    group: GroupId,
    uid: UserId,
    by: Joiner,
    now: i64,
) -> QueryResult<Joined> {
    conn.transaction(|conn| {
        // It reads first: on SQLite, take the write lock now (`conn::take_write_lock`).
        super::conn::take_write_lock(conn)?;
        let Some(g) = find_group(conn, group)? else {
            return Ok(Joined::NoGroup);
        };
        let allowed = match by {
            Joiner::Platform => true,
            Joiner::Themselves => g.is_open,
            Joiner::Owner(owner) => g.owner_uid == owner && exchanged(conn, owner, &[uid])?,
        };
        if !allowed {
            return Ok(Joined::Forbidden);
        }
        add_member(conn, &g, uid, now).map(Joined::Member)
    })
}

/// Removes a member; false if it was not one.
pub fn leave_group(conn: &mut DbConn, group: GroupId, uid: UserId) -> QueryResult<bool> {
    let n = diesel::delete(group_members::table.find((group.0, uid.0))).execute(conn)?;
    Ok(n > 0)
}

pub fn member_ids(conn: &mut DbConn, group: GroupId) -> QueryResult<Vec<UserId>> {
    Ok(group_members::table
        .filter(group_members::group_id.eq(group.0))
        .order(group_members::uid.asc())
        .select(group_members::uid)
        .load::<i64>(conn)?
        .into_iter()
        .map(UserId)
        .collect())
}

/// The members' profiles, if `uid` is one of them (members only).
pub fn member_profiles(
    conn: &mut DbConn,
    group: GroupId,
    uid: UserId,
) -> QueryResult<Option<Vec<Profile>>> {
    if !is_member(conn, group, uid)? {
        return Ok(None);
    }
    let ids = member_ids(conn, group)?;
    let profiles = super::conversations::profiles_by_id(conn, &ids)?;
    Ok(Some(
        ids.into_iter()
            .map(|id| {
                profiles
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| Profile::placeholder(id))
            })
            .collect(),
    ))
}

/// The groups `uid` belongs to, with their sizes: three statements however many.
pub fn user_groups(conn: &mut DbConn, uid: UserId) -> QueryResult<Vec<GroupSummary>> {
    let mine: Vec<i64> = group_members::table
        .filter(group_members::uid.eq(uid.0))
        .select(group_members::group_id)
        .load(conn)?;
    let rows: Vec<(i64, String)> = chat_groups::table
        .filter(chat_groups::id.eq_any(&mine))
        .order(chat_groups::id.asc())
        .select((chat_groups::id, chat_groups::name))
        .load(conn)?;
    let sizes: HashMap<i64, i64> = group_members::table
        .filter(group_members::group_id.eq_any(&mine))
        .group_by(group_members::group_id)
        .select((group_members::group_id, diesel::dsl::count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|(id, name)| GroupSummary {
            group_id: id,
            member_count: sizes.get(&id).copied().unwrap_or(0),
            name,
        })
        .collect())
}

/// Stores a group message if its sender is a member, keeping the group's last message;
/// returns the id and the members to push it to, or `None` for a non-member.
pub fn store_group_message(
    conn: &mut DbConn,
    m: &NewMessage,
    touches: &mut super::Touches<'_>,
) -> QueryResult<Option<(super::Stored, Vec<UserId>)>> {
    let group = m.group_id;
    if !is_member(conn, group, m.from_uid)? {
        return Ok(None);
    }
    let stored = super::store::insert_row(conn, m, touches)?;
    let update = UpdateGroupLast { id: stored.id.0, m };
    super::conn::per_backend!(conn, |c| update.execute(c))?;
    Ok(Some((stored, member_ids(conn, group)?)))
}

/// `UPDATE chat_groups SET last_msg_id, last_msg, last_uid, last_time, msg_type WHERE id`,
/// written out so that each connection prepares it once (Diesel never caches its own
/// `update()`), as `conversations::UpdateLast` is for 1:1 rows: one per group message.
struct UpdateGroupLast<'a> {
    id: i64,
    m: &'a NewMessage,
}

super::conn::fixed_query!(UpdateGroupLast);

impl<DB> QueryFragment<DB> for UpdateGroupLast<'_>
where
    DB: Backend,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<Integer, DB>,
    UserId: ToSql<BigInt, DB>,
    GroupId: ToSql<BigInt, DB>,
    MsgType: ToSql<Integer, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let m = self.m;
        out.push_sql("UPDATE ");
        out.push_identifier("chat_groups")?;
        bind::<_, BigInt, _>(&mut out, " SET ", "last_msg_id", &self.id)?;
        bind::<_, Text, _>(&mut out, ", ", "last_msg", m.msg.as_str())?;
        bind::<_, BigInt, _>(&mut out, ", ", "last_uid", &m.from_uid)?;
        bind::<_, BigInt, _>(&mut out, ", ", "last_time", &m.createtime)?;
        bind::<_, Integer, _>(&mut out, ", ", "msg_type", &m.msg_type)?;
        bind::<_, BigInt, _>(&mut out, " WHERE ", "id", &m.group_id)
    }
}

/// The groups of `uid` with a message it may see and has not hidden, as recent-chat
/// rows (peer = the group), unread counted from its read cursor.
pub fn recent_group_rows(conn: &mut DbConn, uid: UserId) -> QueryResult<Vec<ConversationView>> {
    let mine: Vec<MemberRow> = group_members::table
        .filter(group_members::uid.eq(uid.0))
        .select(MemberRow::as_select())
        .load(conn)?;
    let ids: Vec<GroupId> = mine.iter().map(|m| m.group_id).collect();
    let groups: HashMap<GroupId, GroupRow> = chat_groups::table
        .filter(chat_groups::id.eq_any(&ids))
        .select(GroupRow::as_select())
        .load::<GroupRow>(conn)?
        .into_iter()
        .map(|g| (g.id, g))
        .collect();
    let unread = group_unread(conn, uid)?;
    let mut rows = Vec::new();
    for member in mine {
        let Some(g) = groups.get(&member.group_id) else {
            continue;
        };
        if g.last_msg_id <= member.joined_from.max(member.hidden_upto) {
            continue;
        }
        let unread = unread.get(&g.id).copied().unwrap_or(0);
        rows.push(ConversationView {
            row: ConversationRow {
                id: g.id.0,
                owner_uid: uid.0,
                shop_id: 0,
                chat_id: ChatId::group(g.id).0,
                chat_type: ChatType::Group,
                peer_id: g.id.0,
                last_msg: g.last_msg.clone(),
                last_uid: g.last_uid.0,
                last_time: g.last_time,
                msg_type: g.msg_type,
                unread_count: i32::try_from(unread).unwrap_or(i32::MAX),
                hidden: false,
            },
            peer_name: g.name.clone(),
            peer_avatar: String::new(),
        });
    }
    Ok(rows)
}

/// Unread messages per group of `uid`: others' messages past both its read cursor and
/// where it joined, in one statement for all its groups.
fn group_unread(conn: &mut DbConn, uid: UserId) -> QueryResult<HashMap<GroupId, i64>> {
    let me = group_members::group_id
        .eq(messages::group_id)
        .and(group_members::uid.eq(uid.0));
    Ok(messages::table
        .inner_join(group_members::table.on(me))
        .filter(messages::chat_type.eq(ChatType::Group))
        .filter(messages::group_id.gt(0)) // lets SQLite use its partial index
        .filter(messages::id.gt(group_members::read_upto))
        .filter(messages::id.gt(group_members::joined_from))
        .filter(messages::from_uid.ne(uid.0))
        .filter(messages::event_type.is_null())
        .group_by(messages::group_id)
        .select((messages::group_id, diesel::dsl::count_star()))
        .load::<(GroupId, i64)>(conn)?
        .into_iter()
        .collect())
}

/// Notices `uid` may see: its own, and those to everyone (`to_uid` 0) after `from`
/// (see [`broadcasts_from`]).
pub(super) fn notices_for(uid: UserId, from: i64) -> Cond {
    if from == 0 {
        return Box::new(
            messages::chat_type
                .eq(ChatType::System)
                .and(messages::to_uid.eq_any([uid.0, 0])),
        );
    }
    Box::new(
        messages::chat_type.eq(ChatType::System).and(
            messages::to_uid
                .eq(uid.0)
                .or(messages::to_uid.eq(0).and(messages::id.gt(from))),
        ),
    )
}

/// The last notice to everyone that `uid` does not see: a self-registered account does
/// not inherit the broadcasts sent before it registered (PROTOCOL.md §15); platform users
/// (0) see them all, since they existed on the platform when they were sent.
pub fn broadcasts_from(conn: &mut DbConn, uid: UserId) -> QueryResult<i64> {
    Ok(notice_reads::table
        .find(uid.0)
        .select(notice_reads::broadcasts_from)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// For a new self-registered account: broadcasts up to now are not its own.
pub fn start_notices_now(conn: &mut DbConn, uid: UserId) -> QueryResult<()> {
    let newest: i64 = messages::table
        .select(diesel::dsl::max(messages::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0);
    diesel::insert_into(notice_reads::table)
        .values((
            notice_reads::uid.eq(uid.0),
            notice_reads::read_upto.eq(newest),
            notice_reads::hidden_upto.eq(0),
            notice_reads::broadcasts_from.eq(newest),
        ))
        .execute(conn)
        .map(|_| ())
}

fn notice_cursors(conn: &mut DbConn, uid: UserId) -> QueryResult<(i64, i64)> {
    Ok(notice_reads::table
        .find(uid.0)
        .select((notice_reads::read_upto, notice_reads::hidden_upto))
        .first(conn)
        .optional()?
        .unwrap_or((0, 0)))
}

/// `uid`'s system-notice conversation as a recent-chat row (named by the caller), if it
/// has a notice it has not hidden.
pub fn recent_notice_row(conn: &mut DbConn, uid: UserId) -> QueryResult<Option<ConversationView>> {
    let (read_upto, hidden_upto) = notice_cursors(conn, uid)?;
    let from = broadcasts_from(conn, uid)?;
    let last: Option<(i64, String, i64, MsgType)> = messages::table
        .filter(notices_for(uid, from))
        .filter(messages::event_type.is_null())
        .order(messages::id.desc())
        .select((
            messages::id,
            messages::msg,
            messages::createtime,
            messages::msg_type,
        ))
        .first(conn)
        .optional()?;
    let Some((last_id, last_msg, last_time, msg_type)) = last.filter(|l| l.0 > hidden_upto) else {
        return Ok(None);
    };
    let unread: i64 = messages::table
        .filter(notices_for(uid, from))
        .filter(messages::event_type.is_null())
        .filter(messages::id.gt(read_upto))
        .count()
        .get_result(conn)?;
    Ok(Some(ConversationView {
        row: ConversationRow {
            id: last_id,
            owner_uid: uid.0,
            shop_id: 0,
            chat_id: ChatId::system(uid).0,
            chat_type: ChatType::System,
            peer_id: 0,
            last_msg,
            last_uid: 0,
            last_time,
            msg_type,
            unread_count: i32::try_from(unread).unwrap_or(i32::MAX),
            hidden: false,
        },
        peer_name: String::new(),
        peer_avatar: String::new(),
    }))
}

/// Moves `uid`'s read or hide cursor of a group to its newest message; false if not a member.
pub fn mark_group(conn: &mut DbConn, group: GroupId, uid: UserId, mark: Mark) -> QueryResult<bool> {
    let Some(g) = find_group(conn, group)? else {
        return Ok(false);
    };
    let target = group_members::table.find((group.0, uid.0));
    let n = match mark {
        Mark::Read => diesel::update(target)
            .set(group_members::read_upto.eq(g.last_msg_id))
            .execute(conn)?,
        Mark::Hidden => diesel::update(target)
            .set(group_members::hidden_upto.eq(g.last_msg_id))
            .execute(conn)?,
    };
    Ok(n > 0)
}

/// Moves `uid`'s read or hide cursor of its notices to the newest one.
pub fn mark_notices(conn: &mut DbConn, uid: UserId, mark: Mark) -> QueryResult<()> {
    let from = broadcasts_from(conn, uid)?;
    let newest: i64 = messages::table
        .filter(notices_for(uid, from))
        .filter(messages::event_type.is_null())
        .select(diesel::dsl::max(messages::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0);
    conn.transaction(|conn| {
        // It reads first: on SQLite, take the write lock now (`conn::take_write_lock`).
        super::conn::take_write_lock(conn)?;
        let (read, hidden) = notice_cursors(conn, uid)?;
        let (read, hidden) = match mark {
            Mark::Read => (newest, hidden),
            Mark::Hidden => (read, newest),
        };
        let changed = diesel::update(notice_reads::table.find(uid.0))
            .set((
                notice_reads::read_upto.eq(read),
                notice_reads::hidden_upto.eq(hidden),
            ))
            .execute(conn)?;
        if changed == 0 {
            diesel::insert_into(notice_reads::table)
                .values((
                    notice_reads::uid.eq(uid.0),
                    notice_reads::read_upto.eq(read),
                    notice_reads::hidden_upto.eq(hidden),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// `uid`'s groups and where its view of each starts, for `chat.sync`.
pub fn sync_memberships(conn: &mut DbConn, uid: UserId) -> QueryResult<Vec<(i64, i64)>> {
    group_members::table
        .filter(group_members::uid.eq(uid.0))
        .select((group_members::group_id, group_members::joined_from))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{db, not_cached, prepared, statements};

    /// A group of `owner` and `peer` where `peer` said something.
    fn busy_group(c: &mut DbConn, owner: UserId, peer: UserId, name: &str) -> GroupId {
        let group = create_group(c, name, owner, &[peer], false, Joiner::Platform, 1)
            .unwrap()
            .unwrap();
        let mut m = NewMessage::new(
            ChatType::Group,
            ChatId::group(group).0,
            MsgType::Text,
            format!("hello {name}"),
            peer,
            UserId(group.0),
            None,
        );
        m.group_id = group;
        in_batch(c, &m).unwrap().unwrap();
        group
    }

    /// Stores group message `m` as a batch of its own would.
    fn in_batch(
        c: &mut DbConn,
        m: &NewMessage,
    ) -> QueryResult<Option<(crate::db::Stored, Vec<UserId>)>> {
        let mut touches = crate::db::Touches::default();
        let stored = store_group_message(c, m, &mut touches)?;
        touches.apply(c)?;
        Ok(stored)
    }

    /// A group message runs only statements the connection prepared for the first one:
    /// the group's last-message UPDATE too (Diesel never caches its own `update()`).
    #[test]
    fn storing_group_messages_prepares_each_statement_once_per_connection() {
        let (_d, mut c) = db();
        let (owner, peer) = (UserId(1), UserId(2));
        let said = |group: GroupId, text: &str| {
            let mut m = NewMessage::new(
                ChatType::Group,
                ChatId::group(group).0,
                MsgType::Text,
                text.into(),
                peer,
                UserId(group.0),
                None,
            );
            m.group_id = group;
            m
        };
        // Everything the connection prepares is seen: the group's making, its first message
        // (which starts the conversation's sequence) and a second one.
        let ((group, first), _, cached) = prepared(&mut c, |c| {
            let group = create_group(c, "g", owner, &[peer], false, Joiner::Platform, 1)
                .unwrap()
                .unwrap();
            in_batch(c, &said(group, "one")).unwrap();
            (group, in_batch(c, &said(group, "one more")).unwrap())
        });
        let (second, ran, cached_again) = prepared(&mut c, |c| in_batch(c, &said(group, "two")));
        let (first, second) = (first.unwrap(), second.unwrap().unwrap());
        assert!(second.0.id > first.0.id);
        assert_eq!((first.0.seq, second.0.seq), (2, 3));
        assert_eq!(second.1, vec![owner, peer]);
        assert!(cached_again.is_empty(), "prepared again: {cached_again:?}");
        let plain = not_cached(&ran, &cached);
        assert!(plain.is_empty(), "run without being cached: {plain:?}");
        assert!(
            ran.iter().any(|sql| sql.starts_with("UPDATE `chat_groups`")
                || sql.starts_with("UPDATE \"chat_groups\"")),
            "{ran:?}"
        );
        let row: (i64, String) = chat_groups::table
            .find(group.0)
            .select((chat_groups::last_msg_id, chat_groups::last_msg))
            .first(&mut **c)
            .unwrap();
        assert_eq!(row, (second.0.id.0, "two".to_string()));
    }

    #[test]
    fn listing_groups_costs_the_same_statements_for_one_group_or_twenty() {
        let (_d, mut c) = db();
        let (me, peer) = (UserId(1), UserId(2));
        busy_group(&mut c, me, peer, "g0");
        let (one, list_one) = statements(&mut c, |c| user_groups(c, me).unwrap());
        let (rows_one, recent_one) = statements(&mut c, |c| recent_group_rows(c, me).unwrap());
        assert_eq!((one.len(), rows_one.len()), (1, 1));
        for i in 1..20 {
            busy_group(&mut c, me, peer, &format!("g{i}"));
        }
        let (twenty, list_twenty) = statements(&mut c, |c| user_groups(c, me).unwrap());
        let (rows, recent_twenty) = statements(&mut c, |c| recent_group_rows(c, me).unwrap());
        assert_eq!((twenty.len(), rows.len()), (20, 20));
        assert!(twenty.iter().all(|g| g.member_count == 2), "{twenty:?}");
        assert!(
            rows.iter().all(|r| r.row.unread_count == 1),
            "one unread each"
        );
        assert_eq!(list_twenty, list_one, "group.list ran a query per group");
        assert_eq!(
            recent_twenty, recent_one,
            "recent chats ran a query per group"
        );
        assert_eq!((list_one, recent_one), (3, 3), "statements counted");
    }
}

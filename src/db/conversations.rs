//! Conversation rows (PROTOCOL.md §6): one per owner and conversation, written in the
//! same transaction as the message that changes them.

use std::collections::{BTreeMap, HashMap};

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Integer, Text};

use super::conn::{bind, bind_column, DbConn};
use super::models::{ConversationRow, ConversationView, NewMessage, Profile, ProfileRow, ShopRow};
use super::outbox::{NewEvent, Outbox};
use super::schema::{conversations, messages, shops, users};
use crate::ids::{ShopId, UserId};
use crate::protocol::{ChatType, MsgType};

/// The most rows a recent-chat list returns.
pub const MAX_RECENT: i64 = 200;

/// The conversation rows a batch of messages changes. Each row is written once, when the
/// batch is stored (still inside its transaction), with the batch's last message in it
/// and the unread messages it gained: a busy conversation costs one UPDATE per batch,
/// not one per message. Rows are written in key order, so two nodes writing the same
/// rows take their locks in the same order.
#[derive(Default)]
pub struct Touches<'a> {
    rows: BTreeMap<(i64, i64, &'a str), Touch<'a>>,
    /// Which webhook events the batch writes (none while webhooks are off).
    outbox: Outbox,
    /// The webhook events of the batch's writes, written with it (the outbox).
    events: Vec<NewEvent>,
    /// The sequences of the conversations the batch appends to (PROTOCOL.md §17).
    pub seqs: super::seqs::Seqs,
}

struct Touch<'a> {
    peer: i64,
    last: &'a NewMessage,
    unread: i32,
}

impl<'a> Touches<'a> {
    /// For a batch that writes the events `outbox` wants.
    pub fn with_outbox(outbox: Outbox) -> Touches<'a> {
        Touches {
            outbox,
            ..Touches::default()
        }
    }

    /// Whether the batch writes events of `kind`: build them only then.
    pub fn wants(&self, kind: &str) -> bool {
        self.outbox.wants(kind)
    }

    /// Adds a webhook event to the batch, if webhooks want it.
    pub fn emit(&mut self, event: NewEvent) {
        if self.outbox.wants(event.kind) {
            self.events.push(event);
        }
    }

    /// Notes every conversation row `m` changes.
    pub fn add(&mut self, m: &'a NewMessage) {
        match m.chat_type {
            ChatType::Direct => {
                self.note(m.from_uid.0, 0, m.to_uid.0, m, false);
                self.note(m.to_uid.0, 0, m.from_uid.0, m, true);
            }
            ChatType::Service => {
                // The consumer's row names the shop; the shop's one shared row names the consumer.
                let (consumer, shop) = (m.consumer_uid.0, m.shop_id.0);
                self.note(consumer, shop, shop, m, m.from_agent);
                self.note(0, shop, consumer, m, !m.from_agent);
            }
            _ => {}
        }
    }

    fn note(&mut self, owner: i64, shop: i64, peer: i64, m: &'a NewMessage, unread: bool) {
        let t = self
            .rows
            .entry((owner, shop, m.chat_id.as_str()))
            .or_insert(Touch {
                peer,
                last: m,
                unread: 0,
            });
        t.last = m;
        t.unread += i32::from(unread);
    }

    /// Writes the noted rows.
    pub fn apply(self, conn: &mut DbConn) -> QueryResult<()> {
        self.seqs.write(conn, crate::clock::unix_now() as i64)?;
        for ((owner, shop, _), t) in self.rows {
            touch(conn, owner, shop, t.peer, t.last, t.unread)?;
        }
        super::outbox::insert(conn, &self.events)
    }
}

/// Brings one owner's row up to date with `m` (which brings `unread` more unread
/// messages), creating it on the first message; a hidden row comes back. Update first:
/// past a conversation's first message that is the one statement run, and on SQLite it
/// is cheaper than an `INSERT .. ON CONFLICT DO UPDATE` (pairs: 39-46k msgs/s against
/// 35-38k measured with the upsert, BENCHMARKS.md session 5).
fn touch(
    conn: &mut DbConn,
    owner: i64,
    shop: i64,
    peer: i64,
    m: &NewMessage,
    unread: i32,
) -> QueryResult<()> {
    if update_last(conn, owner, shop, m, unread)? > 0 {
        return Ok(());
    }
    let row = (
        conversations::owner_uid.eq(owner),
        conversations::shop_id.eq(shop),
        conversations::chat_id.eq(&m.chat_id),
        conversations::chat_type.eq(m.chat_type),
        conversations::peer_id.eq(peer),
        conversations::last_msg.eq(&m.msg),
        conversations::last_uid.eq(m.from_uid),
        conversations::last_time.eq(m.createtime),
        conversations::msg_type.eq(m.msg_type),
        conversations::unread_count.eq(unread),
        conversations::hidden.eq(false),
    );
    // A savepoint, so that losing an insert race to another node does not abort the
    // surrounding transaction (PostgreSQL would); the winner's row is then updated.
    let inserted = conn.transaction(|c| {
        diesel::insert_into(conversations::table)
            .values(row)
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            update_last(conn, owner, shop, m, unread).map(|_| ())
        }
        Err(e) => Err(e),
    }
}

fn update_last(
    conn: &mut DbConn,
    owner: i64,
    shop: i64,
    m: &NewMessage,
    unread: i32,
) -> QueryResult<usize> {
    let update = UpdateLast {
        owner,
        shop,
        m,
        unread,
    };
    super::conn::per_backend!(conn, |c| update.execute(c))
}

/// `UPDATE conversations SET last_msg, last_uid, last_time, msg_type, hidden = false,
/// unread_count = unread_count + unread WHERE owner_uid, shop_id, chat_id`, written out as
/// a query of its own so that each connection prepares it once: Diesel marks every
/// `update()` unsafe to cache, and parsing and planning it again for each row (twice per
/// message when batches are small) took a fifth of the writer's time at 10,000 msgs/s
/// (BENCHMARKS.md, session 9).
struct UpdateLast<'a> {
    owner: i64,
    shop: i64,
    m: &'a NewMessage,
    unread: i32,
}

super::conn::fixed_query!(UpdateLast);

impl<DB> QueryFragment<DB> for UpdateLast<'_>
where
    DB: Backend + HasSqlType<Bool>,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<Integer, DB>,
    bool: ToSql<Bool, DB>,
    UserId: ToSql<BigInt, DB>,
    MsgType: ToSql<Integer, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let m = self.m;
        out.push_sql("UPDATE ");
        out.push_identifier("conversations")?;
        bind::<_, Text, _>(&mut out, " SET ", "last_msg", m.msg.as_str())?;
        bind::<_, BigInt, _>(&mut out, ", ", "last_uid", &m.from_uid)?;
        bind::<_, BigInt, _>(&mut out, ", ", "last_time", &m.createtime)?;
        bind::<_, Integer, _>(&mut out, ", ", "msg_type", &m.msg_type)?;
        bind::<_, Bool, _>(&mut out, ", ", "hidden", &false)?;
        bind_column(&mut out, ", ", "unread_count")?;
        out.push_identifier("unread_count")?;
        out.push_sql(" + ");
        out.push_bind_param::<Integer, i32>(&self.unread)?;
        bind::<_, BigInt, _>(&mut out, " WHERE ", "owner_uid", &self.owner)?;
        bind::<_, BigInt, _>(&mut out, " AND ", "shop_id", &self.shop)?;
        bind::<_, Text, _>(&mut out, " AND ", "chat_id", m.chat_id.as_str())
    }
}

/// Whose conversation list: a user's own, or a shop's shared side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    User(UserId),
    Shop(ShopId),
}

impl Side {
    fn owner_and_shop(self) -> (i64, Option<i64>) {
        match self {
            Side::User(uid) => (uid.0, None),
            Side::Shop(shop) => (0, Some(shop.0)),
        }
    }
}

/// A side's visible conversations, newest first, with the other side's name and avatar.
pub fn recent(conn: &mut DbConn, side: Side) -> QueryResult<Vec<ConversationView>> {
    let (owner, shop) = side.owner_and_shop();
    let mut query = conversations::table
        .filter(conversations::owner_uid.eq(owner))
        .filter(conversations::hidden.eq(false))
        .into_boxed();
    if let Some(shop) = shop {
        query = query.filter(conversations::shop_id.eq(shop));
    }
    let rows: Vec<ConversationRow> = query
        .order((conversations::last_time.desc(), conversations::id.desc()))
        .limit(MAX_RECENT)
        .select(ConversationRow::as_select())
        .load(conn)?;
    // A consumer's service row faces a shop; every other row faces a user.
    let faces_shop = |r: &ConversationRow| r.chat_type == ChatType::Service && r.owner_uid != 0;
    // A row's peer is a user, or a shop when it faces one.
    let peers: Vec<UserId> = rows
        .iter()
        .filter(|r| !faces_shop(r))
        .map(|r| UserId(r.peer_id))
        .collect();
    let profiles = profiles_by_id(conn, &peers)?;
    let shop_ids: Vec<ShopId> = rows
        .iter()
        .filter(|r| faces_shop(r))
        .map(|r| ShopId(r.peer_id))
        .collect();
    let shops = shops_by_id(conn, &shop_ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (peer_name, peer_avatar) = if faces_shop(&row) {
                match shops.get(&ShopId(row.peer_id)) {
                    Some(s) => (s.name.clone(), s.logo.clone()),
                    None => (
                        ShopRow::placeholder_name(ShopId(row.peer_id)),
                        String::new(),
                    ),
                }
            } else {
                match profiles.get(&UserId(row.peer_id)) {
                    Some(p) => (p.nickname.clone(), p.avatar.clone()),
                    None => (
                        Profile::placeholder_nickname(UserId(row.peer_id)),
                        String::new(),
                    ),
                }
            };
            ConversationView {
                row,
                peer_name,
                peer_avatar,
            }
        })
        .collect())
}

/// The shops of `ids` that exist, by id.
pub fn shops_by_id(conn: &mut DbConn, ids: &[ShopId]) -> QueryResult<HashMap<ShopId, ShopRow>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<ShopRow> = shops::table
        .filter(shops::id.eq_any(ids))
        .select(ShopRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(|s| (s.id, s)).collect())
}

pub fn profiles_by_id(conn: &mut DbConn, ids: &[UserId]) -> QueryResult<HashMap<UserId, Profile>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<ProfileRow> = users::table
        .filter(users::id.eq_any(ids))
        .select(ProfileRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.id, Profile::from(r))).collect())
}

/// What a reader does to its own side of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Clear the unread count.
    Read,
    /// Hide it from the list until its next message.
    Hidden,
}

/// Applies `mark` to a side's row of one conversation; returns the rows changed.
pub fn mark(conn: &mut DbConn, side: Side, chat: &str, mark: Mark) -> QueryResult<usize> {
    let (owner, shop) = side.owner_and_shop();
    // A user's chat_ids are unique among their own rows (a consumer has one row per
    // shop, and its id with shop 3 differs from its id with shop 12); a shop's side is
    // also narrowed to that shop.
    let mut rows = conversations::table
        .filter(conversations::owner_uid.eq(owner))
        .filter(conversations::chat_id.eq(chat))
        .select(conversations::id)
        .into_boxed();
    if let Some(shop) = shop {
        rows = rows.filter(conversations::shop_id.eq(shop));
    }
    let ids: Vec<i64> = rows.load(conn)?;
    let target = conversations::table.filter(conversations::id.eq_any(ids));
    match mark {
        Mark::Read => diesel::update(target)
            .set(conversations::unread_count.eq(0))
            .execute(conn),
        Mark::Hidden => diesel::update(target)
            .set(conversations::hidden.eq(true))
            .execute(conn),
    }
}

/// `side`'s conversation rows of `chat` (a user's chat_ids are unique among its own rows; a
/// shop's side is also narrowed to that shop).
fn side_rows(conn: &mut DbConn, side: Side, chat: &str) -> QueryResult<Vec<(i64, i64)>> {
    let (owner, shop) = side.owner_and_shop();
    let mut rows = conversations::table
        .filter(conversations::owner_uid.eq(owner))
        .filter(conversations::chat_id.eq(chat))
        .select((conversations::id, conversations::read_msg_id))
        .into_boxed();
    if let Some(shop) = shop {
        rows = rows.filter(conversations::shop_id.eq(shop));
    }
    rows.load(conn)
}

/// How far `side` has read `chat` (0: nothing yet).
pub fn read_cursor(conn: &mut DbConn, side: Side, chat: &str) -> QueryResult<i64> {
    Ok(side_rows(conn, side, chat)?
        .into_iter()
        .map(|(_, read)| read)
        .max()
        .unwrap_or(0))
}

/// Why a read mark was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotInChat;

/// `chat.setChatRead` on a 1:1 or customer-service conversation (PROTOCOL.md §11): up to
/// `upto` (which must be a message of `chat`), or the latest message. The unread count
/// becomes the other side's messages after that point (0 without `upto`); the read cursor
/// moves forward only. One write. Returns the new cursor if it moved.
pub fn mark_read(
    conn: &mut DbConn,
    side: Side,
    chat: &str,
    upto: Option<i64>,
) -> QueryResult<Result<Option<i64>, NotInChat>> {
    let rows = side_rows(conn, side, chat)?;
    if rows.is_empty() {
        // Not a conversation of this side's: nothing to read, nobody to tell.
        return Ok(Ok(None));
    }
    // The chat's messages as this side sees them, events aside.
    let scope = || {
        let q = messages::table
            .filter(messages::chat_id.eq(chat))
            .filter(messages::event_type.is_null())
            .into_boxed();
        match side {
            // A 1:1's chat_id names its two users; a customer-service chat_id may name
            // two conversations (shop 3 with consumer 12, shop 12 with consumer 3).
            Side::User(uid) => q.filter(
                messages::chat_type
                    .eq(ChatType::Direct)
                    .or(messages::chat_type
                        .eq(ChatType::Service)
                        .and(messages::consumer_uid.eq(uid.0))),
            ),
            Side::Shop(shop) => q
                .filter(messages::chat_type.eq(ChatType::Service))
                .filter(messages::shop_id.eq(shop.0)),
        }
    };
    let point = match upto {
        Some(id) => {
            let found: Option<i64> = scope()
                .filter(messages::id.eq(id))
                .select(messages::id)
                .first(conn)
                .optional()?;
            match found {
                Some(id) => id,
                None => return Ok(Err(NotInChat)),
            }
        }
        None => scope()
            .select(diesel::dsl::max(messages::id))
            .first::<Option<i64>>(conn)?
            .unwrap_or(0),
    };
    let unread = match upto {
        None => 0,
        // The other side's messages after the point.
        Some(_) => {
            let later = scope().filter(messages::id.gt(point));
            let theirs = match side {
                Side::User(uid) => later.filter(messages::from_uid.ne(uid.0)),
                Side::Shop(_) => later.filter(messages::from_service.eq(false)),
            };
            theirs.count().get_result::<i64>(conn)? as i32
        }
    };
    let before = rows.iter().map(|(_, read)| *read).max().unwrap_or(0);
    let cursor = before.max(point);
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    diesel::update(conversations::table.filter(conversations::id.eq_any(ids)))
        .set((
            conversations::unread_count.eq(unread),
            conversations::read_msg_id.eq(cursor),
        ))
        .execute(conn)?;
    Ok(Ok((cursor > before).then_some(cursor)))
}

/// The 1:1 peers of `uid`, most recent first.
pub fn direct_peers(conn: &mut DbConn, uid: UserId, limit: i64) -> QueryResult<Vec<i64>> {
    conversations::table
        .filter(conversations::owner_uid.eq(uid.0))
        .filter(conversations::chat_type.eq(ChatType::Direct))
        .order(conversations::last_time.desc())
        .limit(limit)
        .select(conversations::peer_id)
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::store::store_messages;
    use crate::db::testing::{db, direct, statements};
    use crate::db::users::upsert_user;

    #[test]
    fn recent_chats_cost_the_same_statements_for_one_peer_or_twenty() {
        let (_d, mut c) = db();
        store_messages(&mut c, &[direct(2, 1, "hi")]).unwrap();
        let (one, for_one) = statements(&mut c, |c| recent(c, Side::User(UserId(1))).unwrap());
        let batch: Vec<_> = (3..22).map(|peer| direct(peer, 1, "hi")).collect();
        store_messages(&mut c, &batch).unwrap();
        let (twenty, for_twenty) =
            statements(&mut c, |c| recent(c, Side::User(UserId(1))).unwrap());
        assert_eq!((one.len(), twenty.len()), (1, 20));
        assert!(for_one > 0, "statements are counted");
        assert_eq!(for_twenty, for_one, "a query per conversation");
    }

    fn at(mut m: NewMessage, t: i64) -> NewMessage {
        m.createtime = t;
        m
    }

    #[test]
    fn both_sides_get_a_row_and_only_the_receiver_counts_unread() {
        let (_d, mut c) = db();
        upsert_user(&mut c, UserId(2), Some("Bee"), Some("b.png"), 0).unwrap();
        store_messages(
            &mut c,
            &[at(direct(1, 2, "a"), 10), at(direct(1, 2, "b"), 11)],
        )
        .unwrap();
        let mine = recent(&mut c, Side::User(UserId(1))).unwrap();
        assert_eq!(mine.len(), 1);
        let r = &mine[0];
        assert_eq!(
            (
                r.row.last_msg.as_str(),
                r.row.last_uid,
                r.row.last_time,
                r.row.unread_count
            ),
            ("b", 1, 11, 0)
        );
        assert_eq!(
            (r.row.peer_id, r.peer_name.as_str(), r.peer_avatar.as_str()),
            (2, "Bee", "b.png")
        );
        let theirs = recent(&mut c, Side::User(UserId(2))).unwrap();
        assert_eq!(
            (theirs[0].row.unread_count, theirs[0].peer_name.as_str()),
            (2, "user1")
        );
    }

    #[test]
    fn a_batch_writes_each_row_once_with_its_last_message_and_every_unread() {
        let (_d, mut c) = db();
        store_messages(&mut c, &[at(direct(1, 2, "a"), 10)]).unwrap();
        // Both ways in one batch, on rows that already exist.
        store_messages(
            &mut c,
            &[
                at(direct(1, 2, "b"), 11),
                at(direct(2, 1, "c"), 12),
                at(direct(1, 2, "d"), 13),
            ],
        )
        .unwrap();
        let mut row = |uid| {
            recent(&mut c, Side::User(UserId(uid))).unwrap()[0]
                .row
                .clone()
        };
        let (two, one) = (row(2), row(1));
        assert_eq!(
            (
                two.last_msg.as_str(),
                two.last_uid,
                two.last_time,
                two.unread_count
            ),
            ("d", 1, 13, 3)
        );
        assert_eq!((one.last_msg.as_str(), one.unread_count), ("d", 1));
    }

    #[test]
    fn newest_first_read_clears_and_hidden_rows_return_on_the_next_message() {
        let (_d, mut c) = db();
        store_messages(
            &mut c,
            &[at(direct(3, 1, "old"), 10), at(direct(4, 1, "new"), 20)],
        )
        .unwrap();
        let order: Vec<i64> = recent(&mut c, Side::User(UserId(1)))
            .unwrap()
            .iter()
            .map(|v| v.row.peer_id)
            .collect();
        assert_eq!(order, [4, 3]);
        assert_eq!(
            mark(&mut c, Side::User(UserId(1)), "1_4", Mark::Read).unwrap(),
            1
        );
        assert_eq!(
            recent(&mut c, Side::User(UserId(1))).unwrap()[0]
                .row
                .unread_count,
            0
        );
        assert_eq!(
            mark(&mut c, Side::User(UserId(1)), "1_3", Mark::Hidden).unwrap(),
            1
        );
        let visible: Vec<i64> = recent(&mut c, Side::User(UserId(1)))
            .unwrap()
            .iter()
            .map(|v| v.row.peer_id)
            .collect();
        assert_eq!(visible, [4]);
        assert_eq!(
            recent(&mut c, Side::User(UserId(3))).unwrap().len(),
            1,
            "hiding is the caller's alone"
        );
        store_messages(&mut c, &[at(direct(3, 1, "again"), 30)]).unwrap();
        let back = recent(&mut c, Side::User(UserId(1))).unwrap();
        assert_eq!(
            (back[0].row.peer_id, back[0].row.last_msg.as_str()),
            (3, "again")
        );
    }
}

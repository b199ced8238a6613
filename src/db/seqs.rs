//! Each conversation's sequence (PROTOCOL.md §17): every row stored in a conversation
//! (messages, notices and event rows alike) takes the next `seq` of its conversation,
//! 1, 2, 3, ... with no holes, in the order the rows commit.
//!
//! A conversation is keyed by (chat_id, shop_id): a customer-service chat_id alone names
//! two conversations (shop 3 with user 12, shop 12 with user 3), and every other kind has
//! shop_id 0. `chat_seqs` holds each conversation's last seq. A write batch locks the row
//! of every conversation it appends to before it stores anything, in key order (so two
//! nodes' batches never wait on each other in a cycle), hands out the seqs in memory, and
//! writes the last one back before it commits. The lock is held until the commit, so
//! another node's batch on the same conversation continues from there; a batch that is
//! rolled back takes its seqs with it. SQLite's batch holds the database's write lock from
//! its start, so there the row is only read.

use std::collections::BTreeMap;

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Text};

use super::conn::{bind, DbConn};
use super::schema::chat_seqs;

/// One conversation's place in the batch: what its row said when it was locked, and the
/// last seq handed out since.
struct Held {
    /// Whether its row exists (on SQLite a new conversation's row is written at the end).
    exists: bool,
    stored: i64,
    last: i64,
}

/// The sequences a batch holds, by chat_id and then shop_id (almost always one).
#[derive(Default)]
pub struct Seqs {
    held: BTreeMap<String, Vec<(i64, Held)>>,
}

impl Seqs {
    /// Locks the rows of `keys` (any order, repeats allowed), in key order.
    pub fn lock_all<'k>(
        &mut self,
        conn: &mut DbConn,
        keys: impl IntoIterator<Item = (&'k str, i64)>,
    ) -> QueryResult<()> {
        let mut keys: Vec<(&str, i64)> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        for (chat, shop) in keys {
            self.hold(conn, chat, shop)?;
        }
        Ok(())
    }

    /// The next seq of conversation (`chat`, `shop`), locking its row first if the batch
    /// does not hold it yet (a recall learns its conversation only from the message).
    pub fn next(&mut self, conn: &mut DbConn, chat: &str, shop: i64) -> QueryResult<i64> {
        let held = self.hold(conn, chat, shop)?;
        held.last += 1;
        Ok(held.last)
    }

    fn hold(&mut self, conn: &mut DbConn, chat: &str, shop: i64) -> QueryResult<&mut Held> {
        if !self.held.contains_key(chat) {
            self.held.insert(chat.to_owned(), Vec::new());
        }
        let shops = self.held.get_mut(chat).expect("inserted just above");
        let at = match shops.iter().position(|(s, _)| *s == shop) {
            Some(at) => at,
            None => {
                let (exists, stored) = lock_row(conn, chat, shop)?;
                let held = Held {
                    exists,
                    stored,
                    last: stored,
                };
                shops.push((shop, held));
                shops.len() - 1
            }
        };
        Ok(&mut shops[at].1)
    }

    /// Writes back every conversation that took seqs, stamped `now` (unix seconds).
    pub fn write(&self, conn: &mut DbConn, now: i64) -> QueryResult<()> {
        let taken = self
            .held
            .iter()
            .flat_map(|(chat, shops)| shops.iter().map(move |(shop, h)| (chat, *shop, h)))
            .filter(|(_, _, h)| h.last != h.stored);
        for (chat, shop, held) in taken {
            if held.exists {
                let set = SetSeq {
                    chat,
                    shop,
                    last: held.last,
                    now,
                };
                super::conn::per_backend!(conn, |c| set.execute(c))?;
            } else {
                diesel::insert_into(chat_seqs::table)
                    .values(new_row(chat, shop, held.last, now))
                    .execute(conn)?;
            }
        }
        Ok(())
    }
}

/// Locks conversation (`chat`, `shop`)'s row until the transaction ends and reads its last
/// seq: (whether the row exists, last seq). MySQL/MariaDB and PostgreSQL create it if
/// needed with an upsert, which takes the row's exclusive lock at once (InnoDB's `INSERT
/// IGNORE` would take a shared one, and two batches upgrading theirs would deadlock);
/// MySQL then reads it with a locking read, which sees the latest commit where a plain
/// read would answer from the transaction's snapshot. SQLite holds the write lock already.
fn lock_row(conn: &mut DbConn, chat: &str, shop: i64) -> QueryResult<(bool, i64)> {
    let key = chat_seqs::table
        .find((chat, shop))
        .select(chat_seqs::last_seq);
    match conn {
        DbConn::Sqlite(c) => Ok(match key.first::<i64>(c).optional()? {
            Some(last) => (true, last),
            None => (false, 0),
        }),
        #[cfg(feature = "postgres")]
        DbConn::Pg(c) => diesel::insert_into(chat_seqs::table)
            .values(new_row(chat, shop, 0, 0))
            .on_conflict((chat_seqs::chat_id, chat_seqs::shop_id))
            .do_update()
            .set(chat_seqs::last_seq.eq(chat_seqs::last_seq))
            .returning(chat_seqs::last_seq)
            .get_result(c)
            .map(|last| (true, last)),
        #[cfg(feature = "mysql")]
        DbConn::Mysql(c) => {
            diesel::insert_into(chat_seqs::table)
                .values(new_row(chat, shop, 0, 0))
                .on_conflict(diesel::dsl::DuplicatedKeys)
                .do_update()
                .set(chat_seqs::last_seq.eq(chat_seqs::last_seq))
                .execute(c)?;
            key.for_update().first(c).map(|last| (true, last))
        }
    }
}

type NewRow<'a> = (
    diesel::dsl::Eq<chat_seqs::chat_id, &'a str>,
    diesel::dsl::Eq<chat_seqs::shop_id, i64>,
    diesel::dsl::Eq<chat_seqs::last_seq, i64>,
    diesel::dsl::Eq<chat_seqs::updated_at, i64>,
);

/// Conversation (`chat`, `shop`)'s row: its last seq, committed at `at`.
fn new_row(chat: &str, shop: i64, last: i64, at: i64) -> NewRow<'_> {
    (
        chat_seqs::chat_id.eq(chat),
        chat_seqs::shop_id.eq(shop),
        chat_seqs::last_seq.eq(last),
        chat_seqs::updated_at.eq(at),
    )
}

/// `UPDATE chat_seqs SET last_seq = ?, updated_at = ? WHERE chat_id = ? AND shop_id = ?`,
/// written out so that each connection prepares it once (Diesel never caches its own
/// `update()`): one per conversation and batch.
struct SetSeq<'a> {
    chat: &'a str,
    shop: i64,
    last: i64,
    now: i64,
}

super::conn::fixed_query!(SetSeq);

impl<DB> QueryFragment<DB> for SetSeq<'_>
where
    DB: Backend,
    str: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        out.push_identifier("chat_seqs")?;
        bind::<_, BigInt, _>(&mut out, " SET ", "last_seq", &self.last)?;
        bind::<_, BigInt, _>(&mut out, ", ", "updated_at", &self.now)?;
        bind::<_, Text, _>(&mut out, " WHERE ", "chat_id", self.chat)?;
        bind::<_, BigInt, _>(&mut out, " AND ", "shop_id", &self.shop)
    }
}

/// A conversation's head (`chat.heads`): how far it goes, when it last moved, and how
/// far the reader has read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub chat_id: String,
    pub shop_id: i64,
    pub last_seq: i64,
    pub updated_at: i64,
    pub read_msg_id: i64,
}

/// Where a page of heads starts: after this conversation, in (chat_id, shop_id) order.
pub type HeadCursor = (String, i64);

/// `uid`'s conversations (as an agent, its shop's too) whose last row committed at or
/// after `since`, in (chat_id, shop_id) order after `after`: at most `limit`, and whether
/// more follow. Its 1:1 and customer-service conversations are those it has a row of;
/// then its groups, its own notices (`system_{uid}`) and the notices to everyone
/// (`system_0`).
pub fn heads(
    conn: &mut DbConn,
    uid: crate::ids::UserId,
    agent_shop: Option<crate::ids::ShopId>,
    since: i64,
    after: Option<&HeadCursor>,
    limit: i64,
) -> QueryResult<(Vec<Head>, bool)> {
    use super::schema::{conversations, group_members, notice_reads};
    let mine = conversations::owner_uid.eq(uid.0);
    let shop_side = conversations::owner_uid
        .eq(0)
        .and(conversations::shop_id.eq(agent_shop.map_or(-1, |s| s.0)));
    let mut q = conversations::table
        .inner_join(
            chat_seqs::table.on(chat_seqs::chat_id
                .eq(conversations::chat_id)
                .and(chat_seqs::shop_id.eq(conversations::shop_id))),
        )
        .filter(mine.or(shop_side))
        .filter(chat_seqs::updated_at.ge(since))
        .into_boxed();
    if let Some((chat, shop)) = after {
        q = q.filter(
            chat_seqs::chat_id.gt(chat.clone()).or(chat_seqs::chat_id
                .eq(chat.clone())
                .and(chat_seqs::shop_id.gt(*shop))),
        );
    }
    let rows: Vec<(String, i64, i64, i64, i64)> = q
        .order((chat_seqs::chat_id.asc(), chat_seqs::shop_id.asc()))
        .limit(limit + 1)
        .select((
            chat_seqs::chat_id,
            chat_seqs::shop_id,
            chat_seqs::last_seq,
            chat_seqs::updated_at,
            conversations::read_msg_id,
        ))
        .load(conn)?;
    let mut more = rows.len() as i64 > limit;
    let mut heads: Vec<Head> = rows
        .into_iter()
        .map(
            |(chat_id, shop_id, last_seq, updated_at, read_msg_id)| Head {
                chat_id,
                shop_id,
                last_seq,
                updated_at,
                read_msg_id,
            },
        )
        .collect();
    // Groups and notices keep cursors of their own rather than conversation rows.
    let mut read_upto: std::collections::HashMap<String, i64> = group_members::table
        .filter(group_members::uid.eq(uid.0))
        .select((group_members::group_id, group_members::read_upto))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .map(|(g, read)| (crate::ids::ChatId::group(crate::ids::GroupId(g)).0, read))
        .collect();
    let notices_read: i64 = notice_reads::table
        .find(uid.0)
        .select(notice_reads::read_upto)
        .first(conn)
        .optional()?
        .unwrap_or(0);
    read_upto.insert(crate::ids::ChatId::system(uid).0, notices_read);
    read_upto.insert(
        crate::ids::ChatId::system(crate::ids::UserId(0)).0,
        notices_read,
    );
    let chats: Vec<&String> = read_upto.keys().collect();
    let others: Vec<(String, i64, i64)> = chat_seqs::table
        .filter(chat_seqs::chat_id.eq_any(chats))
        .filter(chat_seqs::shop_id.eq(0))
        .filter(chat_seqs::updated_at.ge(since))
        .select((
            chat_seqs::chat_id,
            chat_seqs::last_seq,
            chat_seqs::updated_at,
        ))
        .load(conn)?;
    let after_cursor = |h: &Head| {
        after.is_none_or(|(chat, shop)| (h.chat_id.as_str(), h.shop_id) > (chat.as_str(), *shop))
    };
    heads.extend(
        others
            .into_iter()
            .map(|(chat_id, last_seq, updated_at)| Head {
                read_msg_id: read_upto.get(&chat_id).copied().unwrap_or(0),
                chat_id,
                shop_id: 0,
                last_seq,
                updated_at,
            })
            .filter(after_cursor),
    );
    heads.sort_by(|a, b| (&a.chat_id, a.shop_id).cmp(&(&b.chat_id, b.shop_id)));
    heads.dedup_by(|a, b| (&a.chat_id, a.shop_id) == (&b.chat_id, b.shop_id));
    if heads.len() as i64 > limit {
        heads.truncate(limit as usize);
        more = true;
    }
    Ok((heads, more))
}

/// The last seqs of the conversations named by `keys` (chat_id, shop_id); a conversation
/// with no row yet is left out.
pub fn last_seqs(
    conn: &mut DbConn,
    keys: &[(String, i64)],
) -> QueryResult<std::collections::HashMap<(String, i64), i64>> {
    let chats: Vec<&str> = keys.iter().map(|(c, _)| c.as_str()).collect();
    let wanted: std::collections::HashSet<&(String, i64)> = keys.iter().collect();
    Ok(chat_seqs::table
        .filter(chat_seqs::chat_id.eq_any(chats))
        .select((chat_seqs::chat_id, chat_seqs::shop_id, chat_seqs::last_seq))
        .load::<(String, i64, i64)>(conn)?
        .into_iter()
        .map(|(c, s, last)| ((c, s), last))
        .filter(|(key, _)| wanted.contains(key))
        .collect())
}

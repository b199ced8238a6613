//! Writing messages: the group commit of a batch of writes, and storing one message.
//! What each kind of write stores, and what follows its commit, is declared in the
//! `writes` module above; this is the part that runs inside the transaction.

use diesel::prelude::*;

use super::conn::DbConn;
use super::conversations::Touches;
use super::models::NewMessage;
use super::outbox::Outbox;
use super::schema::messages;
use crate::ids::MsgId;

/// One write of a batch: what it does inside the batch's transaction. It keeps its own
/// outcome, so that whatever follows its commit finds it without any pairing by position.
pub trait Apply: Send {
    fn apply<'a>(&'a mut self, conn: &mut DbConn, touches: &mut Touches<'a>) -> QueryResult<()>;

    /// The conversation (chat_id, shop_id) it appends a row to, when known before it is
    /// applied: the batch locks those first, in key order (see `seqs`).
    fn conversation(&self) -> Option<(&str, i64)> {
        None
    }
}

/// Applies `batch` in one transaction (group commit), in order, then writes the
/// conversation rows the writes noted, once per row. A write refused on its own terms
/// (a retry, a non-member) keeps that as its outcome and does not undo the others; an
/// error undoes them all.
pub fn apply_batch<W: Apply + ?Sized>(
    conn: &mut DbConn,
    batch: &mut [Box<W>],
    outbox: &Outbox,
) -> QueryResult<()> {
    conn.transaction(|conn| {
        super::conn::take_write_lock(conn)?;
        let mut touches = Touches::with_outbox(outbox.clone());
        let keys = batch.iter().filter_map(|w| w.conversation());
        touches.seqs.lock_all(conn, keys)?;
        for write in batch.iter_mut() {
            write.apply(conn, &mut touches)?;
        }
        touches.apply(conn)
    })
}

/// How many times a batch is tried when SQLite reports the database busy.
const BUSY_TRIES: u64 = 6;

/// SQLite's answer when a transaction that began by reading could not take the write lock
/// because another connection wrote meanwhile (`SQLITE_BUSY_SNAPSHOT`: the busy timeout
/// does not wait for it), or waited out `busy_timeout`; and a deadlock that MySQL/MariaDB
/// or PostgreSQL broke by undoing this batch (batches lock conversations in key order, but
/// rows outside them, a new conversation's gap lock on InnoDB, may still cross).
fn is_busy(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info)
        if ["database is locked", "Deadlock found", "deadlock detected"]
            .iter()
            .any(|m| info.message().contains(m)))
}

/// [`apply_batch`], tried again (whole, after its rollback, a few ms later) while the
/// database is busy:
/// another connection's write (a read mark, an admin change) may commit between the
/// batch's first read and its first write. Each write's `apply` starts afresh.
pub fn apply_batch_retrying<W: Apply + ?Sized>(
    conn: &mut DbConn,
    batch: &mut [Box<W>],
    outbox: &Outbox,
) -> QueryResult<()> {
    let mut tries = 1;
    loop {
        match apply_batch(conn, batch, outbox) {
            Err(e) if is_busy(&e) && tries < BUSY_TRIES => {
                log::warn!(
                    "the database was busy for a batch of {} writes; trying again",
                    batch.len()
                );
                tries += 1;
            }
            other => return other,
        }
    }
}

/// The message its sender already stored in `m`'s chat under `m`'s client_msg_id, if
/// any (the key is scoped to sender and chat, PROTOCOL.md §15). The unique index keeps
/// them for good, so a retry is recognised however late it comes.
pub fn earlier_send(conn: &mut DbConn, m: &NewMessage) -> QueryResult<Option<Earlier>> {
    let Some(client_id) = &m.client_msg_id else {
        return Ok(None);
    };
    messages::table
        .filter(messages::from_uid.eq(m.from_uid))
        .filter(messages::chat_id.eq(&m.chat_id))
        .filter(messages::client_msg_id.eq(client_id))
        .select(EARLIER)
        .first(conn)
        .optional()
}

/// A message its sender stored earlier: id, chat_id, createtime, seq.
pub type Earlier = (i64, String, i64, i64);

const EARLIER: (
    messages::id,
    messages::chat_id,
    messages::createtime,
    messages::seq,
) = (
    messages::id,
    messages::chat_id,
    messages::createtime,
    messages::seq,
);

/// Runs `apply` (which stores `m` unless [`earlier_send`] finds it) so that a retry
/// stored by another node between that lookup and the insert is a retry too, not an
/// error that undoes the whole batch: on MySQL/MariaDB and PostgreSQL the insert then
/// waits for the other transaction on the unique index and fails when it commits; here
/// it runs in a savepoint, and that failure rolls back to it and gives the original.
/// (SQLite's batch holds the write lock from its start, so no other node can commit
/// meanwhile.) Only messages with a client_msg_id pay for the savepoint.
pub fn unless_stored_meanwhile<'a, T: From<Earlier>>(
    conn: &mut DbConn,
    m: &'a NewMessage,
    apply: impl FnOnce(&mut DbConn, &'a NewMessage) -> QueryResult<T>,
) -> QueryResult<T> {
    if m.client_msg_id.is_none() || matches!(conn, DbConn::Sqlite(_)) {
        return apply(conn, m);
    }
    match conn.transaction(|c| apply(c, m)) {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        )) if is_client_id_index(&*info) => match committed_send(conn, m)? {
            Some(earlier) => {
                log::info!(
                    "uid {} chat {}: client_msg_id stored by another node meanwhile; acking the original",
                    m.from_uid,
                    m.chat_id
                );
                Ok(T::from(earlier))
            }
            None => Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                info,
            )),
        },
        other => other,
    }
}

/// Whether a unique violation is on `messages_client_id` (PostgreSQL names the
/// constraint; MySQL only says it in the message).
fn is_client_id_index(info: &dyn diesel::result::DatabaseErrorInformation) -> bool {
    info.constraint_name() == Some("messages_client_id")
        || info.message().contains("messages_client_id")
}

/// [`earlier_send`] as committed now, not as the batch's snapshot saw it: MySQL's
/// REPEATABLE READ would answer from the snapshot taken at the batch's first read, so
/// there the lookup is a locking read (FOR UPDATE: MariaDB has no FOR SHARE);
/// PostgreSQL's READ COMMITTED sees the row anyway.
fn committed_send(conn: &mut DbConn, m: &NewMessage) -> QueryResult<Option<Earlier>> {
    #[cfg(feature = "mysql")]
    if let DbConn::Mysql(c) = conn {
        let Some(client_id) = &m.client_msg_id else {
            return Ok(None);
        };
        return messages::table
            .filter(messages::from_uid.eq(m.from_uid))
            .filter(messages::chat_id.eq(&m.chat_id))
            .filter(messages::client_msg_id.eq(client_id))
            .select(EARLIER)
            .for_update()
            .first(c)
            .optional();
    }
    earlier_send(conn, m)
}

/// Stores messages in one transaction, without the retry check; ids come back in batch
/// order. For tests that need rows in place.
#[cfg(test)]
pub fn store_messages(conn: &mut DbConn, batch: &[NewMessage]) -> QueryResult<Vec<MsgId>> {
    conn.transaction(|conn| {
        let mut touches = Touches::default();
        let ids = batch
            .iter()
            .map(|m| store_one(conn, m, &mut touches).map(|s| s.id))
            .collect::<QueryResult<Vec<_>>>()?;
        touches.apply(conn)?;
        Ok(ids)
    })
}

/// Stores `m` with the next seq of its conversation; the conversation rows it changes
/// are noted in `touches`, written once per batch. (A customer-service message's session
/// is kept by `writes::ServiceTurn`.)
pub fn store_one<'a>(
    conn: &mut DbConn,
    m: &'a NewMessage,
    touches: &mut Touches<'a>,
) -> QueryResult<Stored> {
    let stored = insert_row(conn, m, touches)?;
    touches.add(m);
    Ok(stored)
}

/// Stores `m` (a message, a notice or an event row) with the next seq of its
/// conversation, and nothing else.
pub fn insert_row(
    conn: &mut DbConn,
    m: &NewMessage,
    touches: &mut Touches<'_>,
) -> QueryResult<Stored> {
    let seq = touches.seqs.next(conn, &m.chat_id, m.shop_id.0)?;
    let id = super::models::insert_message(conn, m, seq)?;
    Ok(Stored { id, seq })
}

/// A stored row: its id and its seq in its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub id: MsgId,
    pub seq: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::history::sync_messages;
    use crate::db::testing::{db, direct, not_cached, prepared};
    use crate::ids::UserId;

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

    /// Storing messages runs statements the connection prepared once: the conversation
    /// rows' UPDATE (Diesel never caches its own `update()`) and the insert (no
    /// `RETURNING`, which made SQLite keep a statement journal) are cached from the
    /// first batch on; only transaction control is run as plain SQL.
    #[test]
    fn storing_messages_prepares_each_statement_once_per_connection() {
        let (_d, mut c) = db();
        // The first batch starts the conversation's sequence, the second moves it on.
        let (_, _, cached) = prepared(&mut c, |c| {
            store_messages(c, &[direct(1, 2, "first"), direct(2, 1, "second")]).unwrap();
            store_messages(c, &[direct(1, 2, "and")]).unwrap();
        });
        let (_, ran, cached_again) = prepared(&mut c, |c| {
            store_messages(c, &[direct(1, 2, "third"), direct(2, 1, "fourth")]).unwrap();
        });
        assert!(cached_again.is_empty(), "prepared again: {cached_again:?}");
        let plain = not_cached(&ran, &cached);
        assert!(plain.is_empty(), "run without being cached: {plain:?}");
        assert!(
            ran.iter()
                .any(|sql| sql.starts_with("UPDATE `conversations`")
                    || sql.starts_with("UPDATE \"conversations\"")),
            "{ran:?}"
        );
        assert!(ran.iter().all(|sql| !sql.contains("RETURNING")), "{ran:?}");
    }

    /// A write that reads, lets another connection commit a write, then writes: the
    /// first time, SQLite refuses its write lock (the batch's snapshot is stale).
    struct Racer {
        other: Option<crate::db::conn::PooledConn>,
        message: NewMessage,
        stored: Option<MsgId>,
    }

    impl Apply for Racer {
        fn apply<'a>(&'a mut self, conn: &mut DbConn, t: &mut Touches<'a>) -> QueryResult<()> {
            let mut probe = direct(1, 2, "read first");
            probe.client_msg_id = Some("probe".into());
            let _ = earlier_send(conn, &probe)?;
            if let Some(mut other) = self.other.take() {
                use diesel::connection::SimpleConnection;
                #[allow(irrefutable_let_patterns)] // only SQLite is compiled in without features
                if let DbConn::Sqlite(c) = &mut **other {
                    c.batch_execute("PRAGMA busy_timeout = 0")?;
                }
                store_messages(&mut other, &[direct(3, 4, "meanwhile")])?;
            }
            self.stored = Some(store_one(conn, &self.message, t)?.id);
            Ok(())
        }
    }

    #[test]
    fn a_batch_that_loses_the_write_lock_to_another_connection_is_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let pool = crate::db::conn::connect(&url, 2, Default::default()).unwrap();
        let (mut c, other) = (pool.get().unwrap(), pool.get().unwrap());
        let racer = |other| Racer {
            other: Some(other),
            message: direct(1, 2, "then write"),
            stored: None,
        };
        let mut batch = vec![Box::new(racer(other))];
        assert!(
            is_busy(&apply_batch(&mut c, &mut batch, &Outbox::default()).unwrap_err()),
            "the race is real"
        );
        let mut batch = vec![Box::new(racer(pool.get().unwrap()))];
        apply_batch_retrying(&mut c, &mut batch, &Outbox::default()).unwrap();
        assert!(batch[0].stored.is_some());
    }

    /// A write that checks, from another connection, that the batch holds the write lock.
    struct Holder(Option<crate::db::conn::PooledConn>, bool);

    impl Apply for Holder {
        fn apply<'a>(&'a mut self, _: &mut DbConn, _: &mut Touches<'a>) -> QueryResult<()> {
            if let Some(mut other) = self.0.take() {
                use diesel::connection::SimpleConnection;
                #[allow(irrefutable_let_patterns)] // only SQLite is compiled in without features
                if let DbConn::Sqlite(c) = &mut **other {
                    c.batch_execute("PRAGMA busy_timeout = 0").unwrap();
                }
                self.1 = store_messages(&mut other, &[direct(3, 4, "meanwhile")]).is_err();
            }
            Ok(())
        }
    }

    #[test]
    fn a_batch_holds_the_write_lock_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let pool = crate::db::conn::connect(&url, 2, Default::default()).unwrap();
        let mut c = pool.get().unwrap();
        let mut batch = vec![Box::new(Holder(Some(pool.get().unwrap()), false))];
        apply_batch(&mut c, &mut batch, &Outbox::default()).unwrap();
        assert!(batch[0].1, "another writer must wait for the batch");
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
}

//! One connection type for every backend (`#[derive(MultiConnection)]`), its r2d2
//! manager, and the embedded per-backend migrations run at start-up.

use std::path::Path;
use std::time::{Duration, Instant};

use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::query_builder::AstPass;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::serialize::ToSql;
use diesel::sql_types::HasSqlType;
use diesel::{Connection, ConnectionError, QueryResult};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::DbError;
use crate::config::SqliteSync;

/// A connection to whichever database `database.url` names.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    #[cfg(feature = "postgres")]
    Pg(diesel::PgConnection),
    #[cfg(feature = "mysql")]
    Mysql(diesel::MysqlConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// A pooled connection, with what the pool needs to tell a dead one from a live one.
/// A database restart or a cut connection leaves every pooled connection dead while
/// answering nothing wrong by itself: Diesel only knows a connection is broken when a
/// transaction could not be closed, and MySQL's "server has gone away" outside a
/// transaction leaves even that false. So a connection on which a statement failed is
/// pinged as it goes back to the pool, and one that sat idle is pinged as it comes out
/// ([`checkout`]): a dead one is dropped (with its statement cache) and the pool opens a
/// new one, without pinging on the hot path of a busy connection.
pub struct Link {
    db: DbConn,
    /// A statement failed on it since it was checked out.
    suspect: bool,
    /// Found dead: the pool must not keep it.
    lost: bool,
    /// When it last went back to the pool.
    returned: Instant,
}

impl std::ops::Deref for Link {
    type Target = DbConn;

    fn deref(&self) -> &DbConn {
        &self.db
    }
}

impl std::ops::DerefMut for Link {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.db
    }
}

impl Link {
    /// Notes that a statement failed on this connection: it is pinged before the pool
    /// takes it back.
    pub fn failed(&mut self) {
        self.suspect = true;
    }

    /// Whether the connection still answers; a dead one is marked for the pool to drop.
    fn answers(&mut self) -> bool {
        if !self.lost && R2D2Connection::ping(&mut self.db).is_err() {
            self.lost = true;
        }
        !self.lost
    }
}

/// How long a connection may sit in the pool before it is pinged as it comes out: after
/// that, the database may have restarted under it, and a ping costs nothing that anyone
/// waits for.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// How long a checkout waits for the pool to open a connection. Every executor thread
/// holds at most one connection of a pool its own size, so this is only ever spent while
/// the database does not answer: a send then fails with `storage_unavailable` soon.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection from `pool` that answered a ping if it had been idle, so a database
/// restart costs no request that comes after it: the dead connections are dropped here
/// one after another until a live one (or a freshly opened one) comes out.
pub fn checkout(pool: &Pool) -> Result<PooledConn, r2d2::PoolError> {
    for _ in 0..pool.max_size() {
        let mut link = pool.get()?;
        if link.returned.elapsed() < IDLE_BEFORE_PING || link.answers() {
            return Ok(link);
        }
        log::warn!("a pooled database connection no longer answers; opening another");
    }
    pool.get()
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
#[cfg(feature = "mysql")]
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");
#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Which backend a URL names, decided once from its scheme rather than by trying each
/// driver in turn (SQLite would accept any string as a file name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Sqlite(String),
    #[cfg(feature = "mysql")]
    Mysql(String),
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, DbError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(DbError::Config("sqlite:// needs a file path".into()));
            }
            return Ok(Target::Sqlite(path.to_string()));
        }
        if url.starts_with("mysql://") {
            #[cfg(feature = "mysql")]
            return Ok(Target::Mysql(url.to_string()));
            #[cfg(not(feature = "mysql"))]
            return Err(DbError::Config(
                "database.url is mysql:// but this build lacks the `mysql` feature (cargo build --features mysql)".into(),
            ));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Ok(Target::Postgres(url.to_string()));
            #[cfg(not(feature = "postgres"))]
            return Err(DbError::Config(
                "database.url is postgres:// but this build lacks the `postgres` feature (cargo build --features postgres)".into(),
            ));
        }
        Err(DbError::Config(format!(
            "unsupported database.url scheme in {url:?}"
        )))
    }

    fn establish(&self, sync: SqliteSync) -> Result<DbConn, ConnectionError> {
        match self {
            Target::Sqlite(path) => {
                let mut c = diesel::SqliteConnection::establish(path)?;
                // WAL lets readers run beside the single writer. FULL (the default)
                // syncs the log at each commit, so an acked batch survives a power cut;
                // NORMAL only survives a crash of the process (`database.sqlite_synchronous`).
                // Statement journals (one per statement that may need undoing inside a
                // batch's transaction) stay in memory: on disk they cost a page write per
                // page touched, most of the time spent storing a message. The log is
                // copied into the database by `checkpoint` every 200 ms on another
                // thread; the writer checkpoints itself only past 20,000 pages (80 MB).
                c.batch_execute(&format!(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; \
                     PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 20000;",
                    sync.pragma()
                ))
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(DbConn::Sqlite(c))
            }
            #[cfg(feature = "mysql")]
            Target::Mysql(url) => Ok(DbConn::Mysql(diesel::MysqlConnection::establish(url)?)),
            #[cfg(feature = "postgres")]
            Target::Postgres(url) => Ok(DbConn::Pg(diesel::PgConnection::establish(url)?)),
        }
    }
}

/// r2d2 manager that opens connections of the configured backend.
pub struct Manager {
    target: Target,
    sqlite_sync: SqliteSync,
}

impl ManageConnection for Manager {
    type Connection = Link;
    type Error = ConnectionError;

    fn connect(&self) -> Result<Link, ConnectionError> {
        Ok(Link {
            db: self.target.establish(self.sqlite_sync)?,
            suspect: false,
            lost: false,
            returned: Instant::now(),
        })
    }

    fn is_valid(&self, link: &mut Link) -> Result<(), ConnectionError> {
        R2D2Connection::ping(&mut link.db).map_err(ConnectionError::CouldntSetupConfiguration)
    }

    /// Called as a connection goes back to the pool.
    fn has_broken(&self, link: &mut Link) -> bool {
        link.returned = Instant::now();
        let suspect = std::mem::take(&mut link.suspect);
        let broken = R2D2Connection::is_broken(&mut link.db) || (suspect && !link.answers());
        if broken || link.lost {
            log::warn!("a database connection broke; the pool drops it and opens another");
        }
        broken || link.lost
    }
}

/// Opens the pool (creating a SQLite file and its folder if needed) and migrates.
pub fn connect(url: &str, pool_size: u32, sqlite_sync: SqliteSync) -> Result<Pool, DbError> {
    let pool = open(url, pool_size, sqlite_sync)?;
    let mut conn = checkout(&pool)?;
    migrate(&mut conn)?;
    Ok(pool)
}

/// Opens a pool on a database that [`connect`] has migrated.
pub fn open(url: &str, pool_size: u32, sqlite_sync: SqliteSync) -> Result<Pool, DbError> {
    let target = Target::parse(url)?;
    #[allow(irrefutable_let_patterns)] // only SQLite is compiled in without features
    if let Target::Sqlite(path) = &target {
        if let Some(dir) = Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    let pool = r2d2::Pool::builder()
        .max_size(pool_size)
        .connection_timeout(CHECKOUT_TIMEOUT)
        .test_on_check_out(false)
        .build(Manager {
            target,
            sqlite_sync,
        })?;
    Ok(pool)
}

/// Copies the SQLite write-ahead log into the database file without blocking writers
/// (PASSIVE); nothing to do on the other backends.
pub fn checkpoint(conn: &mut DbConn) -> diesel::QueryResult<()> {
    #[allow(irrefutable_let_patterns)] // only SQLite is compiled in without features
    if let DbConn::Sqlite(c) = conn {
        use diesel::connection::SimpleConnection;
        c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")?;
    }
    Ok(())
}

/// Takes SQLite's write lock at the start of a write transaction (a deferred one would
/// take it at its first write, and fail outright if another connection wrote after its
/// first read): other writers then wait out `busy_timeout` instead. Other backends lock
/// rows as they go.
pub fn take_write_lock(conn: &mut DbConn) -> diesel::QueryResult<()> {
    #[allow(irrefutable_let_patterns)] // only SQLite is compiled in without features
    if let DbConn::Sqlite(c) = conn {
        use diesel::connection::SimpleConnection;
        // A write that changes nothing, but begins the write transaction.
        c.batch_execute("UPDATE notice_reads SET uid = uid WHERE 0")?;
    }
    Ok(())
}

/// Runs the pending migrations. Nodes of a cluster may start together on a fresh
/// database: MySQL and PostgreSQL migrate under a named lock, one node at a time, and
/// SQLite in one exclusive transaction.
fn migrate(conn: &mut DbConn) -> Result<(), DbError> {
    let failed = |e: &dyn std::fmt::Display| DbError::Migration(e.to_string());
    match conn {
        // One exclusive transaction around them all (each step a savepoint in it): a
        // second process waits for the first to finish, then finds nothing to do.
        DbConn::Sqlite(c) => c.exclusive_transaction(|c| {
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| failed(&e))
        }),
        #[cfg(feature = "mysql")]
        DbConn::Mysql(c) => {
            use diesel::connection::SimpleConnection;
            c.batch_execute("DO GET_LOCK('shopchat_migrations', 120)")
                .map_err(|e| failed(&e))?;
            let result = c.run_pending_migrations(MYSQL_MIGRATIONS).map(|_| ());
            let _ = c.batch_execute("DO RELEASE_LOCK('shopchat_migrations')");
            result.map_err(|e| failed(&e))
        }
        #[cfg(feature = "postgres")]
        DbConn::Pg(c) => {
            use diesel::connection::SimpleConnection;
            // Any fixed key will do; this one is "shopcha" in ASCII.
            const LOCK: i64 = 0x0073_686f_7063_6861;
            c.batch_execute(&format!("SELECT pg_advisory_lock({LOCK})"))
                .map_err(|e| failed(&e))?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            let _ = c.batch_execute(&format!("SELECT pg_advisory_unlock({LOCK})"));
            result.map_err(|e| failed(&e))
        }
    }
}

/// Evaluates `$body` with `$c` bound to the concrete connection inside `$conn`. Diesel
/// caches prepared statements per concrete connection, not through a MultiConnection,
/// so the statements run for every stored message go through this.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::conn::DbConn::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            $crate::db::conn::DbConn::Pg($c) => $body,
            #[cfg(feature = "mysql")]
            $crate::db::conn::DbConn::Mysql($c) => $body,
        }
    };
}
pub(crate) use per_backend;

/// Inserts `$values` into `$table` and evaluates to the new row's `$id` as
/// `QueryResult<i64>`: `RETURNING` on PostgreSQL; the connection's last insert id on
/// SQLite and MySQL. (SQLite runs `RETURNING` like a trigger: each insert then kept a
/// statement journal, a copy of every page it touched, and filled a temporary table with
/// the id: with the uncached conversation UPDATE, a third of the writer's time flat out
/// and half of it at 10,000 msgs/s. BENCHMARKS.md, session 9.)
macro_rules! insert_returning_id {
    ($conn:expr, $table:expr, $values:expr, $id:expr) => {
        match $conn {
            $crate::db::conn::DbConn::Sqlite(c) => diesel::insert_into($table)
                .values($values)
                .execute(c)
                .and_then(|_| $crate::db::conn::sqlite_last_insert_id(c)),
            #[cfg(feature = "postgres")]
            $crate::db::conn::DbConn::Pg(c) => diesel::insert_into($table)
                .values($values)
                .returning($id)
                .get_result::<i64>(c),
            #[cfg(feature = "mysql")]
            $crate::db::conn::DbConn::Mysql(c) => diesel::insert_into($table)
                .values($values)
                .execute(c)
                .and_then(|_| $crate::db::conn::mysql_last_insert_id(c)),
        }
    };
}
pub(crate) use insert_returning_id;

/// Inserts `$values` into `$table` or, when its primary key `$key` is taken, applies
/// `$change` to the row there: one statement on every backend (`ON CONFLICT .. DO
/// UPDATE`; MySQL's `ON DUPLICATE KEY UPDATE`). Evaluates to `QueryResult<usize>`.
macro_rules! upsert {
    ($conn:expr, $table:expr, $values:expr, $key:expr, $change:expr) => {
        match $conn {
            $crate::db::conn::DbConn::Sqlite(c) => diesel::insert_into($table)
                .values($values)
                .on_conflict($key)
                .do_update()
                .set($change)
                .execute(c),
            #[cfg(feature = "postgres")]
            $crate::db::conn::DbConn::Pg(c) => diesel::insert_into($table)
                .values($values)
                .on_conflict($key)
                .do_update()
                .set($change)
                .execute(c),
            #[cfg(feature = "mysql")]
            $crate::db::conn::DbConn::Mysql(c) => diesel::insert_into($table)
                .values($values)
                .on_conflict(diesel::dsl::DuplicatedKeys)
                .do_update()
                .set($change)
                .execute(c),
        }
    };
}
pub(crate) use upsert;

/// Marks `$t<'_>`, a hand-written query whose SQL never changes, as one statement per
/// connection in Diesel's cache (keyed by its type), and runnable with `RunQueryDsl`.
macro_rules! fixed_query {
    ($t:ident) => {
        impl diesel::query_builder::QueryId for $t<'_> {
            type QueryId = $t<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl<Conn> diesel::RunQueryDsl<Conn> for $t<'_> {}
    };
}
pub(crate) use fixed_query;

/// Writes `{before}"column" = `.
pub(crate) fn bind_column<DB: Backend>(
    out: &mut AstPass<'_, '_, DB>,
    before: &str,
    column: &str,
) -> QueryResult<()> {
    out.push_sql(before);
    out.push_identifier(column)?;
    out.push_sql(" = ");
    Ok(())
}

/// Writes `{before}"column" = ?`, binding `value`.
pub(crate) fn bind<'b, DB, ST, U>(
    out: &mut AstPass<'_, 'b, DB>,
    before: &str,
    column: &str,
    value: &'b U,
) -> QueryResult<()>
where
    DB: Backend + HasSqlType<ST>,
    U: ToSql<ST, DB> + ?Sized,
{
    bind_column(out, before, column)?;
    out.push_bind_param::<ST, U>(value)
}

diesel::define_sql_function! {
    /// SQLite's rowid of the last row the connection inserted (an `INTEGER PRIMARY KEY`
    /// is the rowid).
    fn last_insert_rowid() -> diesel::sql_types::BigInt;
}

/// The id SQLite gave the last row this connection inserted: one prepared statement,
/// cached like any other.
pub fn sqlite_last_insert_id(c: &mut diesel::SqliteConnection) -> diesel::QueryResult<i64> {
    use diesel::RunQueryDsl;
    diesel::select(last_insert_rowid()).get_result(c)
}

/// The id MySQL gave the last row this connection inserted.
#[cfg(feature = "mysql")]
pub fn mysql_last_insert_id(c: &mut diesel::MysqlConnection) -> diesel::QueryResult<i64> {
    use diesel::RunQueryDsl;
    let id: u64 = diesel::select(diesel::dsl::sql::<
        diesel::sql_types::Unsigned<diesel::sql_types::BigInt>,
    >("LAST_INSERT_ID()"))
    .get_result(c)?;
    i64::try_from(id).map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
}

/// A filter on `messages` built at run time.
pub type Cond = Box<
    dyn diesel::BoxableExpression<
        super::schema::messages::table,
        MultiBackend,
        SqlType = diesel::sql_types::Bool,
    >,
>;

#[cfg(test)]
mod tests {
    /// Nodes starting together on one fresh SQLite file all migrate it without error.
    #[test]
    fn processes_migrating_one_sqlite_file_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/shared.db", dir.path().display());
        let starts: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || super::connect(&url, 1, Default::default()).map(|_| ()))
            })
            .collect();
        for start in starts {
            let migrated = start.join().unwrap();
            assert!(migrated.is_ok(), "{:?}", migrated.err());
        }
    }

    /// SQLite's `synchronous` of every pooled connection, as PRAGMA reports it
    /// (1 NORMAL, 2 FULL).
    fn synchronous_of(sync: crate::config::SqliteSync) -> Vec<i32> {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            synchronous: i32,
        }
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sync.db", dir.path().display());
        let pool = super::connect(&url, 3, sync).unwrap();
        let conns: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
        conns
            .into_iter()
            .map(|mut c| {
                diesel::sql_query("PRAGMA synchronous")
                    .get_result::<Row>(&mut **c)
                    .unwrap()
                    .synchronous
            })
            .collect()
    }

    /// Acks wait for the disk by default (`database.sqlite_synchronous = "full"`);
    /// "normal" is what an operator must ask for.
    #[test]
    fn sqlite_commits_are_synced_unless_normal_is_asked_for() {
        use crate::config::{DatabaseConfig, SqliteSync};
        let default = DatabaseConfig::default().sqlite_synchronous;
        assert_eq!(synchronous_of(default), vec![2, 2, 2]);
        assert_eq!(synchronous_of(SqliteSync::Normal), vec![1, 1, 1]);
    }
}

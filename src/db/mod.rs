//! The only place that touches the database: `DbExecutor` actors on a SyncArbiter,
//! each holding the shared r2d2 pool. Handlers are thin; the SQL lives in `queries`.

pub mod conn;
pub mod models;
pub mod queries;
pub mod schema;

use actix::{Actor, Addr, Handler, Message as ActixMessage, SyncArbiter, SyncContext};

pub use conn::{connect, DbConn, Pool};
pub use models::{MessageWithSender, NewMessage, Profile};

use crate::ids::{MsgId, UserId};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database config: {0}")]
    Config(String),
    #[error("database pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database query: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migration: {0}")]
    Migration(String),
}

/// Runs queries on a thread of its SyncArbiter.
pub struct DbExecutor {
    pool: Pool,
}

impl Actor for DbExecutor {
    type Context = SyncContext<Self>;
}

impl DbExecutor {
    /// Starts `threads` executors sharing `pool`.
    pub fn start(pool: Pool, threads: usize) -> Addr<DbExecutor> {
        SyncArbiter::start(threads.max(1), move || DbExecutor { pool: pool.clone() })
    }

    fn conn(&self) -> Result<conn::PooledConn, DbError> {
        Ok(self.pool.get()?)
    }
}

fn now() -> i64 {
    crate::auth::unix_now() as i64
}

/// From the WebSocket upgrade: the profile of a user about to connect, created as a
/// placeholder if the platform has not synced one yet.
#[derive(ActixMessage)]
#[rtype(result = "Result<Profile, DbError>")]
pub struct EnsureUser(pub UserId);

impl Handler<EnsureUser> for DbExecutor {
    type Result = Result<Profile, DbError>;

    fn handle(&mut self, msg: EnsureUser, _: &mut Self::Context) -> Self::Result {
        Ok(queries::ensure_user(&mut *self.conn()?, msg.0, now())?)
    }
}

/// From the admin API: create or update a profile; returns it as stored.
#[derive(ActixMessage)]
#[rtype(result = "Result<Profile, DbError>")]
pub struct UpsertUser {
    pub uid: UserId,
    pub nickname: Option<String>,
    pub avatar: Option<String>,
}

impl Handler<UpsertUser> for DbExecutor {
    type Result = Result<Profile, DbError>;

    fn handle(&mut self, msg: UpsertUser, _: &mut Self::Context) -> Self::Result {
        Ok(queries::upsert_user(
            &mut *self.conn()?,
            msg.uid,
            msg.nickname.as_deref(),
            msg.avatar.as_deref(),
            now(),
        )?)
    }
}

/// From ChatServer's write queue: store a batch in one transaction; returns the ids in
/// batch order. All or nothing.
#[derive(ActixMessage)]
#[rtype(result = "Result<Vec<MsgId>, DbError>")]
pub struct StoreMessages(pub Vec<NewMessage>);

impl Handler<StoreMessages> for DbExecutor {
    type Result = Result<Vec<MsgId>, DbError>;

    fn handle(&mut self, msg: StoreMessages, _: &mut Self::Context) -> Self::Result {
        Ok(queries::store_messages(&mut *self.conn()?, &msg.0)?)
    }
}

/// From ChatServer for `chat.sync`: a page of what `uid` may see after `since`, and
/// whether more follow.
#[derive(ActixMessage)]
#[rtype(result = "Result<(Vec<MessageWithSender>, bool), DbError>")]
pub struct LoadSync {
    pub uid: UserId,
    pub since: MsgId,
    pub limit: i64,
}

impl Handler<LoadSync> for DbExecutor {
    type Result = Result<(Vec<MessageWithSender>, bool), DbError>;

    fn handle(&mut self, msg: LoadSync, _: &mut Self::Context) -> Self::Result {
        Ok(queries::sync_messages(
            &mut *self.conn()?,
            msg.uid,
            msg.since,
            msg.limit,
        )?)
    }
}

//! The only place that touches the database: `DbExecutor` actors on a SyncArbiter,
//! each holding the shared r2d2 pool. Handlers are thin; the SQL lives in `queries`.

pub mod accounts;
pub mod conn;
pub mod conversations;
pub mod groups;
pub mod history;
pub mod models;
pub mod moderation;
pub mod outbox;
pub mod recall;
pub mod schema;
pub mod seqs;
pub mod service;
pub mod sessions;
pub mod store;
pub mod users;

use actix::{Actor, Addr, Handler, Message as ActixMessage, SyncArbiter, SyncContext};

pub use conn::{connect, DbConn, Pool};
pub use conversations::Touches;
pub use conversations::{Mark, Side};
pub use history::RecordScope;
pub use models::{
    AgentRow, ConversationView, MessageWithSender, NewMessage, Profile, RoutingView,
    ServiceChatRow, ShopRow, ShopState, UserCard,
};
pub use service::{RoutingQuery, ShopSettings};
pub use store::{Apply, Stored};

use std::collections::HashMap;

use crate::ids::{GroupId, MsgId, ShopId, UserId};
use crate::protocol::service::{AgentStatus, QuickReply};

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
    /// A read for a connection that closed while the read was queued: skipped.
    #[error("skipped: the connection that asked is gone")]
    Cancelled,
}

/// Runs queries on a thread of its SyncArbiter.
pub struct DbExecutor {
    pool: Pool,
    /// The webhook events write batches store.
    outbox: outbox::Outbox,
}

impl Actor for DbExecutor {
    type Context = SyncContext<Self>;
}

impl DbExecutor {
    /// Starts `threads` executors sharing `pool`. The server runs two such groups, each
    /// with a pool of its own: one for writes (and the small reads beside them), one for
    /// reads of history, so a flood of reads queues behind itself and never ahead of a send.
    pub fn start(pool: Pool, threads: usize, outbox: outbox::Outbox) -> Addr<DbExecutor> {
        Self::start_named("shopchat-db", pool, threads, outbox)
    }

    /// [`DbExecutor::start`], its threads named `name` (as `ps -T`, `top -H` and
    /// profilers show them).
    pub fn start_named(
        name: &'static str,
        pool: Pool,
        threads: usize,
        outbox: outbox::Outbox,
    ) -> Addr<DbExecutor> {
        SyncArbiter::start_with_thread_builder(
            threads.max(1),
            move || std::thread::Builder::new().name(name.into()),
            move || DbExecutor {
                pool: pool.clone(),
                outbox: outbox.clone(),
            },
        )
    }

    fn conn(&self) -> Result<conn::PooledConn, DbError> {
        Ok(conn::checkout(&self.pool)?)
    }

    /// Runs `f` on a pooled connection; if it fails, the connection is checked before
    /// the pool takes it back (a dead one is replaced, [`conn::Link`]).
    fn run<T, E: Into<DbError>>(
        &self,
        f: impl FnOnce(&mut DbConn) -> Result<T, E>,
    ) -> Result<T, DbError> {
        let mut link = self.conn()?;
        let out = f(&mut link).map_err(Into::into);
        if out.is_err() {
            link.failed();
        }
        out
    }
}

fn now() -> i64 {
    crate::clock::unix_now() as i64
}

/// Declares a command for the DbExecutor: the message (named as a command, with its
/// doc saying who sends it) and a handler that runs `$body` on a pooled connection.
macro_rules! db_command {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? } -> $ret:ty => |$conn:ident, $msg:ident| $body:expr) => {
        $(#[$doc])*
        pub struct $name { $(pub $field: $ty),* }

        impl ActixMessage for $name {
            type Result = Result<$ret, DbError>;
        }

        impl Handler<$name> for DbExecutor {
            type Result = Result<$ret, DbError>;

            fn handle(&mut self, $msg: $name, _: &mut Self::Context) -> Self::Result {
                self.run(|$conn: &mut DbConn| $body)
            }
        }
    };
}

db_command! {
    /// From the WebSocket upgrade: the profile of a user about to connect (created as a
    /// placeholder if the platform has not synced one yet) and the shop it serves, if an agent.
    EnsureUser { uid: UserId } -> (Profile, Option<ShopId>)
        => |c, m| users::ensure_user(c, m.uid, now()).and_then(|p| Ok((p, service::agent_shop(c, m.uid)?)))
}

db_command! {
    /// From the admin API: create or update a profile; returns it as stored.
    UpsertUser { uid: UserId, nickname: Option<String>, avatar: Option<String> } -> Profile
        => |c, m| users::upsert_user(c, m.uid, m.nickname.as_deref(), m.avatar.as_deref(), now())
}

/// From ChatServer's write queue: apply a batch of writes in one transaction (messages
/// with their conversation rows, assignments). The writes come back holding their
/// outcomes, or, if the transaction failed, with the error that undid them all.
pub struct ApplyWrites<W: ?Sized>(pub Vec<Box<W>>);

/// The batch back: applied, or undone by the error.
pub type Applied<W> = Result<Vec<Box<W>>, (DbError, Vec<Box<W>>)>;

impl<W: Apply + ?Sized + 'static> ActixMessage for ApplyWrites<W> {
    type Result = Applied<W>;
}

impl<W: Apply + ?Sized + 'static> Handler<ApplyWrites<W>> for DbExecutor {
    type Result = Applied<W>;

    fn handle(&mut self, msg: ApplyWrites<W>, _: &mut Self::Context) -> Applied<W> {
        let mut batch = msg.0;
        let applied = self.run(|c| store::apply_batch_retrying(c, &mut batch, &self.outbox));
        match applied {
            Ok(()) => Ok(batch),
            Err(e) => Err((e, batch)),
        }
    }
}

db_command! {
    /// For `chat.sync`: a page of what `uid` (an agent of `agent_shop`, if any) may see
    /// after `since`, and whether more follow.
    LoadSync { uid: UserId, agent_shop: Option<ShopId>, since: MsgId, limit: i64, watch: crate::watch::Watch } -> (Vec<MessageWithSender>, bool)
        => |c, m| if m.watch.is_gone() {
            Err(DbError::Cancelled)
        } else {
            Ok(history::sync_messages(c, m.uid, m.agent_shop, m.since, m.limit)?)
        }
}

db_command! {
    /// For `user.recentChat` and `/user/chatRecently`: a user's or a shop's visible conversations.
    RecentChats { side: Side } -> Vec<ConversationView> => |c, m| conversations::recent(c, m.side)
}

db_command! {
    /// For `chat.setChatRead` / `chat.delChat`: mark one side of a conversation; returns
    /// the rows changed.
    MarkChat { side: Side, chat_id: String, mark: Mark } -> usize
        => |c, m| conversations::mark(c, m.side, &m.chat_id, m.mark)
}

db_command! {
    /// For `chat.setChatRead` on a 1:1 or customer-service conversation: the unread count
    /// and read cursor of `side`; the new cursor if it moved.
    MarkRead { side: Side, chat_id: String, upto: Option<i64> } -> Result<Option<i64>, conversations::NotInChat>
        => |c, m| conversations::mark_read(c, m.side, &m.chat_id, m.upto)
}

db_command! {
    /// For history rows' `read`: how far `side` has read `chat_id`.
    ReadCursor { side: Side, chat_id: String } -> i64
        => |c, m| conversations::read_cursor(c, m.side, &m.chat_id)
}

db_command! {
    /// For `/user/getChatRecord`: one page of a conversation, newest first, and its size.
    LoadRecords { scope: RecordScope, page: i64, per_page: i64 } -> (Vec<MessageWithSender>, i64)
        => |c, m| history::chat_records(c, &m.scope, m.page, m.per_page)
}

db_command! {
    /// For `/login`: the account's id and password hash, if it exists.
    FindLogin { username: String } -> Option<(UserId, Option<String>)>
        => |c, m| accounts::find_login(c, &m.username)
}

db_command! {
    /// For `/login/register`: a new account with an id from `base` up, or why not.
    CreateAccount { username: String, password_hash: String, base: i64 } -> accounts::Registered
        => |c, m| accounts::create_account(c, &m.username, &m.password_hash, now(), m.base)
}

db_command! {
    /// For `/user/index`: the caller's profile and friend list.
    LoadIndex { uid: UserId, limit: i64 } -> (Profile, Vec<UserCard>)
        => |c, m| users::ensure_user(c, m.uid, now()).and_then(|p| Ok((p, accounts::friend_list(c, m.uid, m.limit)?)))
}

#[cfg(test)]
pub(crate) mod testing {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Connection, InstrumentationEvent};

    use super::conn::{self, PooledConn};
    use super::{DbConn, NewMessage};
    use crate::ids::{ChatId, UserId};

    /// What `f` returns, and how many SQL statements it ran: list paths are checked to
    /// cost the same however many rows they list (no query per row).
    pub fn statements<T>(c: &mut PooledConn, f: impl FnOnce(&mut DbConn) -> T) -> (T, usize) {
        let (out, ran, _) = prepared(c, f);
        (out, ran.len())
    }

    /// What `f` returns, the statements it ran, and those it prepared and cached, as SQL
    /// text.
    pub fn prepared<T>(
        c: &mut PooledConn,
        f: impl FnOnce(&mut DbConn) -> T,
    ) -> (T, Vec<String>, Vec<String>) {
        let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let log = seen.clone();
        c.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            let mut log = log.lock().unwrap();
            match event {
                InstrumentationEvent::StartQuery { query, .. } => {
                    // The debug text ends with the binds: keep the SQL.
                    let text = query.to_string();
                    let sql = text.split(" -- binds:").next().unwrap_or_default();
                    log.0.push(sql.to_string())
                }
                InstrumentationEvent::CacheQuery { sql, .. } => log.1.push(sql.to_string()),
                _ => {}
            }
        });
        let out = f(c);
        c.set_instrumentation(|_: InstrumentationEvent<'_>| {});
        let (ran, cached) = std::mem::take(&mut *seen.lock().unwrap());
        (out, ran, cached)
    }

    /// The statements of `ran` that are neither in `cached` nor transaction control:
    /// those parsed and planned again each time they run.
    pub fn not_cached<'a>(ran: &'a [String], cached: &[String]) -> Vec<&'a String> {
        ran.iter()
            .filter(|sql| !cached.contains(sql))
            .filter(|sql| {
                !["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"]
                    .iter()
                    .any(|k| sql.starts_with(k))
            })
            .collect()
    }

    /// A migrated database in a fresh temp dir (kept alive by the returned guard).
    pub fn db() -> (tempfile::TempDir, PooledConn) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let pool = conn::connect(&url, 1, Default::default()).unwrap();
        let c = pool.get().unwrap();
        (dir, c)
    }

    pub fn direct(from: i64, to: i64, text: &str) -> NewMessage {
        let mut m = NewMessage::new(
            crate::protocol::ChatType::Direct,
            ChatId::direct(UserId(from), UserId(to)).0,
            crate::protocol::MsgType::Text,
            text.into(),
            UserId(from),
            UserId(to),
            None,
        );
        m.createtime = 1_700_000_000;
        m
    }
}

db_command! {
    /// For `GET /admin/messages/{id}`: a message as stored, recalled or not.
    FindMessage { id: MsgId } -> Option<models::MessageRow> => |c, m| recall::find_message(c, m.id)
}

db_command! {
    /// For role checks: the shop `uid` serves, if it is an agent.
    AgentShop { uid: UserId } -> Option<ShopId> => |c, m| service::agent_shop(c, m.uid)
}

db_command! {
    /// From a ShopRouter as it starts: the shop, its agents and its conversations.
    LoadShop { shop: ShopId } -> ShopState => |c, m| service::load_shop_state(c, m.shop)
}

db_command! {
    /// From the admin API: create or update a shop; returns it as stored.
    UpsertShop { shop: ShopId, name: Option<String>, logo: Option<String>, capacity: Option<i32>, settings: ShopSettings } -> ShopRow
        => |c, m| service::upsert_shop(c, m.shop, m.name.as_deref(), m.logo.as_deref(), m.capacity, &m.settings, now())
}

db_command! {
    /// From the admin API: attach an agent; `None` if the shop does not exist, else the
    /// shop the agent served before.
    AttachAgent { shop: ShopId, uid: UserId, name: Option<String>, supervisor: Option<bool> } -> Option<Option<ShopId>>
        => |c, m| service::attach_agent(c, m.shop, m.uid, m.name.as_deref(), m.supervisor, now())
}

db_command! {
    /// From the admin API: detach an agent; false if it was not that shop's.
    DetachAgent { shop: ShopId, uid: UserId } -> bool => |c, m| service::detach_agent(c, m.shop, m.uid)
}

db_command! {
    /// From `service.setStatus`, `service.setOnline` and the admin API: set an agent's
    /// status; false if it is not that shop's agent.
    SetAgentStatus { shop: ShopId, uid: UserId, status: AgentStatus } -> bool
        => |c, m| service::set_agent_status(c, m.shop, m.uid, m.status)
}

db_command! {
    /// For the agent's requests: `uid`'s agent row and its shop, if it is an agent.
    LoadDesk { uid: UserId } -> Option<(AgentRow, ShopRow)>
        => |c, m| match service::find_agent(c, m.uid)? {
            Some(a) => Ok::<_, diesel::result::Error>(service::find_shop(c, a.shop_id)?.map(|s| (a, s))),
            None => Ok(None),
        }
}

db_command! {
    /// For `shop.info` and the admin API: a shop, if it exists.
    FindShop { shop: ShopId } -> Option<ShopRow> => |c, m| service::find_shop(c, m.shop)
}

db_command! {
    /// For `service.queue`.
    LoadQueue { shop: ShopId } -> Vec<sessions::QueueEntry> => |c, m| sessions::queue_view(c, m.shop)
}

db_command! {
    /// For `service.sessions` and the admin listing: sessions newest first, with the
    /// shop side's last message and unread count of each conversation.
    LoadSessions { shop: ShopId, state: Option<i32>, before: i64, limit: i64 } -> (Vec<sessions::SessionRow>, HashMap<String, (String, i32)>)
        => |c, m| sessions::list_sessions(c, m.shop, m.state, m.before, m.limit).and_then(|rows| {
            let ids: Vec<String> = rows.iter().map(|r| r.chat_id.clone()).collect();
            Ok((rows.clone(), sessions::shop_side(c, m.shop, &ids)?))
        })
}

db_command! {
    /// For `service.customer`: the consumer's profile and its latest sessions with the shop.
    LoadCustomer { shop: ShopId, consumer: UserId, limit: i64 } -> (Profile, Vec<sessions::SessionRow>)
        => |c, m| users::find_profile(c, m.consumer).and_then(|p| Ok((
            p.unwrap_or_else(|| Profile::placeholder(m.consumer)),
            sessions::customer_sessions(c, m.shop, m.consumer, m.limit)?,
        )))
}

db_command! {
    /// For `service.quickReplies` and the admin API.
    LoadQuickReplies { shop: ShopId } -> Vec<QuickReply> => |c, m| sessions::quick_replies(c, m.shop)
}

db_command! {
    /// For `service.saveQuickReply` and the admin API: false if the shop has its most.
    SaveQuickReply { shop: ShopId, reply: QuickReply } -> bool
        => |c, m| sessions::save_quick_reply(c, m.shop, &m.reply, now())
}

db_command! {
    /// For `service.deleteQuickReply` and the admin API: false if there was none.
    DeleteQuickReply { shop: ShopId, short_code: String } -> bool
        => |c, m| sessions::delete_quick_reply(c, m.shop, &m.short_code)
}

db_command! {
    /// For `service.block` / `service.unblock`.
    SetBlocked { shop: ShopId, consumer: UserId, blocked: bool } -> ()
        => |c, m| sessions::set_blocked(c, m.shop, m.consumer, m.blocked, now())
}

/// For `chat.rate`: rates the consumer's latest resolved session, or says why not; the
/// `conversation.rated` event is written with it.
pub struct RateSession {
    pub shop: ShopId,
    pub consumer: UserId,
    pub score: i32,
    pub comment: Option<String>,
}

type Rated = Result<Result<sessions::SessionRow, sessions::RateRefusal>, DbError>;

impl ActixMessage for RateSession {
    type Result = Rated;
}

impl Handler<RateSession> for DbExecutor {
    type Result = Rated;

    fn handle(&mut self, m: RateSession, _: &mut Self::Context) -> Rated {
        let now = crate::clock::unix_now() as i64;
        let comment = m.comment.as_deref();
        self.run(|c| sessions::rate(c, m.shop, m.consumer, m.score, comment, now, &self.outbox))
    }
}

db_command! {
    /// For the admin stats: the sessions started in `[from, to)` (at most `limit`), the
    /// queue's length now, and what each agent wrote in that time.
    LoadStats { shop: ShopId, from: i64, to: i64, limit: i64 } -> (Vec<sessions::SessionRow>, i64, Vec<(UserId, i64)>)
        => |c, m| sessions::sessions_started(c, m.shop, m.from, m.to, m.limit).and_then(|rows| Ok((
            rows,
            sessions::waiting_now(c, m.shop)?,
            sessions::agent_messages(c, m.shop, m.from, m.to)?,
        )))
}

db_command! {
    /// For the admin ratings listing: rated sessions, newest first.
    LoadRatings { shop: ShopId, before: i64, limit: i64 } -> Vec<sessions::SessionRow>
        => |c, m| sessions::ratings(c, m.shop, m.before, m.limit)
}

db_command! {
    /// From ChatServer's sweep: the open conversations, per shop, quiet for longer than
    /// their shop's `auto_resolve_mins` at `now` (at most `limit` in all).
    DueForResolve { now: i64, limit: i64 } -> Vec<(ShopId, UserId, i64)>
        => |c, m| sessions::due_for_resolve(c, m.now, m.limit)
}

db_command! {
    /// From ChatServer as it starts: every shop id, so sends to unknown shops are refused
    /// without starting a router for them.
    LoadShopIds {} -> Vec<ShopId> => |c, _m| service::shop_ids(c)
}

db_command! {
    /// From ChatServer every 200 ms: copy what the SQLite write-ahead log holds into the
    /// database file, on a pool thread, so that the writer never stops to do it (a no-op
    /// on MySQL and PostgreSQL).
    Checkpoint {} -> () => |c, _m| conn::checkpoint(c)
}

db_command! {
    /// For `group.create` and the admin API: a new group owned by `owner`, who is a
    /// member along with `members`; `None` if `by` may not add them all.
    CreateGroup { name: String, owner: UserId, members: Vec<UserId>, open: bool, by: groups::Joiner } -> Option<GroupId>
        => |c, m| groups::create_group(c, &m.name, m.owner, &m.members, m.open, m.by, now())
}

db_command! {
    /// For `group.join`, `group.add` and the admin API: add `uid` if `by` may.
    JoinGroup { group: GroupId, uid: UserId, by: groups::Joiner } -> groups::Joined
        => |c, m| groups::join_group(c, m.group, m.uid, m.by, now())
}

db_command! {
    /// For `group.leave` and the admin API: false if `uid` was not a member.
    LeaveGroup { group: GroupId, uid: UserId } -> bool => |c, m| groups::leave_group(c, m.group, m.uid)
}

db_command! {
    /// For `group.members`: the members' profiles, or `None` if `uid` is not one of them.
    GroupMembers { group: GroupId, uid: UserId } -> Option<Vec<Profile>>
        => |c, m| groups::member_profiles(c, m.group, m.uid)
}

db_command! {
    /// For `group.list`: the groups `uid` belongs to.
    UserGroups { uid: UserId } -> Vec<groups::GroupSummary> => |c, m| groups::user_groups(c, m.uid)
}

db_command! {
    /// For recent-chat lists: `uid`'s groups and system notices as rows.
    CursorRows { uid: UserId } -> Vec<ConversationView>
        => |c, m| groups::recent_group_rows(c, m.uid).and_then(|mut rows| {
            rows.extend(groups::recent_notice_row(c, m.uid)?);
            Ok(rows)
        })
}

db_command! {
    /// For `chat.setChatRead` / `chat.delChat` on a group: false if `uid` is not a member.
    MarkGroup { group: GroupId, uid: UserId, mark: Mark } -> bool => |c, m| groups::mark_group(c, m.group, m.uid, m.mark)
}

db_command! {
    /// For `chat.setChatRead` / `chat.delChat` on `uid`'s system notices.
    MarkNotices { uid: UserId, mark: Mark } -> () => |c, m| groups::mark_notices(c, m.uid, m.mark)
}

db_command! {
    /// For history of a group: where `uid`'s view of it starts, or `None` if not a member.
    GroupView { group: GroupId, uid: UserId } -> Option<i64>
        => |c, m| groups::sync_memberships(c, m.uid).map(|v| v.into_iter().find(|(g, _)| *g == m.group.0).map(|(_, from)| from))
}

db_command! {
    /// For `chat.range` (PROTOCOL.md §17): one conversation's rows after a seq.
    LoadRange { scope: history::RangeScope, after_seq: i64, limit: i64 } -> (Vec<MessageWithSender>, bool)
        => |c, m| history::seq_range(c, &m.scope, m.after_seq, m.limit)
}

db_command! {
    /// For `chat.heads` (PROTOCOL.md §17): the caller's conversations that moved since then.
    LoadHeads { uid: UserId, agent_shop: Option<ShopId>, since: i64, after: Option<seqs::HeadCursor>, limit: i64 } -> (Vec<seqs::Head>, bool)
        => |c, m| seqs::heads(c, m.uid, m.agent_shop, m.since, m.after.as_ref(), m.limit)
}

db_command! {
    /// For recent-chat lists: each conversation's last seq.
    LastSeqs { keys: Vec<(String, i64)> } -> HashMap<(String, i64), i64>
        => |c, m| seqs::last_seqs(c, &m.keys)
}

db_command! {
    /// For `chat.range` on the notices to everyone: where `uid`'s view of them starts.
    BroadcastsFrom { uid: UserId } -> i64 => |c, m| groups::broadcasts_from(c, m.uid)
}

db_command! {
    /// For `GET /healthz`: a read of a real table, so a broken schema or file fails it.
    Ping {} -> () => |c, _m| users::ping(c)
}

db_command! {
    /// How many webhook events wait to be delivered.
    CountPending {} -> i64 => |c, _m| outbox::pending_count(c)
}

db_command! {
    /// `GET /admin/webhooks/deliveries`.
    ListEvents { state: i32, after: i64, limit: i64 } -> Vec<outbox::EventRow>
        => |c, m| outbox::list(c, m.state, m.after, m.limit)
}

db_command! {
    /// `POST /admin/webhooks/deliveries/{id}/retry`.
    RetryEvent { id: i64 } -> bool => |c, m| outbox::retry(c, m.id, outbox::now_ms())
}

db_command! {
    /// The sensitive-word list.
    LoadModeration {} -> crate::protocol::webhook::ModerationList => |c, _m| moderation::load(c)
}

db_command! {
    /// `PUT /admin/moderation`: replaces the list.
    StoreModeration { list: crate::protocol::webhook::ModerationList } -> ()
        => |c, m| moderation::store(c, &m.list, now())
}

//! `ChatServer`: owns the registry `user → connections`, decides who receives what,
//! and applies writes through its queue before anyone is told of them. Customer
//! service is delegated to one `ShopRouter` per shop (`service.rs` holds that side).

mod events;
mod groups;
pub mod idle;
pub mod messages;
mod moderation;
mod service;
mod signals;
pub mod write_queue;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

pub use messages::*;

use crate::chats;
use crate::cluster::{Cluster, ClusterEvent, FromCluster};
use crate::config::Config;
use crate::db::recall::Recaller;
use crate::db::{
    Applied, ApplyWrites, DbExecutor, LoadShopIds, LoadSync, Mark, NewMessage, Profile,
};
use crate::domain::Presenter;
use crate::error::ChatError;
use crate::ids::{ChatId, ConnId, MsgId, ShopId, UserId};
use crate::metrics::Metrics;
use crate::protocol::service::AgentStatus;
use crate::protocol::{
    self, code, ChatPush, ChatType, MsgType, Request, SendMsg, SyncPage, SyncRequest,
};
use crate::routing::{RouterMail, StartRouter};
use crate::writes::{Effects, RecallMessage, StoreMessage, Write};
use write_queue::WriteQueue;

/// A live connection as the server sees it.
struct ConnHandle {
    conn: ConnId,
    session: Recipient<ToSession>,
    seen: crate::watch::Watch,
    /// Told to close for idleness (told once).
    timed_out: bool,
}

/// A user with at least one live connection.
struct Online {
    profile: Profile,
    /// The shop this user serves, if an agent.
    agent_shop: Option<ShopId>,
    conns: Vec<ConnHandle>,
}

pub struct ChatServer {
    /// The group commit's batches: one thread with one connection of its own.
    writer: Addr<DbExecutor>,
    /// The small reads and writes beside the batches (checkpoints among them).
    db: Addr<DbExecutor>,
    /// Reads of history (`chat.sync`, recent chats), on executors and a pool of their own.
    reads: Addr<DbExecutor>,
    metrics: Arc<Metrics>,
    presenter: Presenter,
    max_msg_chars: usize,
    /// `media.allowed_hosts`: where a `msg_type` 2 image may come from.
    image_hosts: protocol::ImageHosts,
    /// What the platform signs cards with (`auth.jwt_secret`, PROTOCOL.md §12).
    card_secret: Arc<[u8]>,
    /// Live connections per user; 0 = unlimited.
    max_conns_per_user: usize,
    /// Bytes that may wait for one connection's socket before it is cut off.
    max_pending_bytes: usize,
    /// Connections silent for longer are closed (`server.client_timeout_secs`).
    client_timeout: std::time::Duration,
    /// How often idle customer-service sessions are resolved (`service.sweep_secs`).
    resolve_sweep: std::time::Duration,
    /// `limits.recall_secs`.
    recall_secs: i64,
    /// `media.upload_dir`, where a recalled image's file is set aside.
    upload_dir: String,
    /// Boxed: the table then holds 16 bytes a user instead of a hundred, which matters
    /// at tens of thousands of idle connections (BENCHMARKS.md, idle memory).
    online: HashMap<UserId, Box<Online>>,
    routers: HashMap<ShopId, RouterMail>,
    /// Starts a shop's router on its first use.
    start_router: StartRouter,
    /// Every shop that exists; `None` if they could not be loaded (then none is refused).
    known_shops: Option<HashSet<ShopId>>,
    queue: WriteQueue,
    /// Cluster mode: presence and cross-node delivery through Redis.
    cluster: Option<Cluster>,
    shutting_down: bool,
    drained: Vec<oneshot::Sender<()>>,
    /// The sensitive-word list (PROTOCOL.md §14).
    words: Arc<crate::domain::moderation::WordFilter>,
}

impl ChatServer {
    pub fn new(
        writer: Addr<DbExecutor>,
        db: Addr<DbExecutor>,
        reads: Addr<DbExecutor>,
        config: &Config,
        metrics: Arc<Metrics>,
        cluster: Option<Cluster>,
        start_router: StartRouter,
    ) -> ChatServer {
        ChatServer {
            writer,
            db,
            reads,
            metrics,
            presenter: Presenter::new(config),
            max_msg_chars: config.limits.max_msg_chars,
            image_hosts: protocol::ImageHosts::new(
                &config.media.allowed_hosts,
                &config.media.base_url,
            ),
            card_secret: Arc::from(config.auth.jwt_secret.as_bytes()),
            max_conns_per_user: config.limits.max_conns_per_user,
            max_pending_bytes: config.limits.max_pending_bytes,
            client_timeout: std::time::Duration::from_secs(config.server.client_timeout_secs),
            resolve_sweep: std::time::Duration::from_secs(config.service.sweep_secs.max(1)),
            recall_secs: i64::try_from(config.limits.recall_secs).unwrap_or(i64::MAX),
            upload_dir: config.media.upload_dir.clone(),
            online: HashMap::new(),
            routers: HashMap::new(),
            start_router,
            known_shops: None,
            queue: WriteQueue::default(),
            cluster,
            shutting_down: false,
            drained: Vec::new(),
            words: Arc::default(),
        }
    }

    /// Writes `text` to every connection of `uid` but `except`, never waiting on one. A
    /// connection whose queue is full, or whose unwritten bytes would pass
    /// `limits.max_pending_bytes`, is not reading: it is dropped from the registry and
    /// closed with 1008 (the close waits behind what it has not read), and its client
    /// catches up with chat.sync after reconnecting.
    fn deliver(&mut self, uid: UserId, text: &Arc<str>, except: Option<ConnId>) {
        let Some(online) = self.online.get_mut(&uid) else {
            return;
        };
        let mut dropped = false;
        let max_pending = self.max_pending_bytes;
        let bytes = crate::watch::frame_len(text.len());
        online.conns.retain(|c| {
            if Some(c.conn) == except {
                return true;
            }
            let sent = if c.seen.backlog() + bytes > max_pending {
                Err("backlog over limits.max_pending_bytes".to_string())
            } else {
                c.seen.queued(bytes);
                c.session
                    .try_send(ToSession::Deliver(text.clone()))
                    .map_err(|e| {
                        c.seen.drained(bytes);
                        e.to_string()
                    })
            };
            match sent {
                Ok(()) => true,
                Err(e) => {
                    log::warn!(
                        "conn {} uid {uid}: not keeping up ({e}), disconnecting it",
                        c.conn
                    );
                    c.session.do_send(ToSession::close(
                        1008,
                        "not reading fast enough; reconnect and sync",
                    ));
                    dropped = true;
                    false
                }
            }
        });
        if dropped {
            self.after_conn_loss(uid);
        }
    }

    /// Tells every local connection that pushes meant for it may have been lost
    /// (PROTOCOL.md §17, code 206): it asks `chat.heads` and fills its holes.
    fn resync_everyone(&mut self, reason: protocol::gaps::ResyncReason) {
        let text: Arc<str> = protocol::gaps::resync_text(reason).into();
        let uids: Vec<UserId> = self.online.keys().copied().collect();
        log::info!(
            "telling {} users' connections to resync ({reason:?})",
            uids.len()
        );
        for uid in uids {
            self.deliver(uid, &text, None);
        }
    }

    /// Keeps the registry and the shop routers right after `uid` lost connections. Only
    /// a running router is told: one started later reads presence from the registry.
    fn after_conn_loss(&mut self, uid: UserId) {
        let Some(online) = self.online.get(&uid) else {
            return;
        };
        if let Some(shop) = online.agent_shop {
            let conns = online.conns.len();
            if let Some(router) = self.routers.get(&shop) {
                router
                    .presence
                    .do_send(crate::routing::AgentPresence { uid, conns });
            }
        }
        if online.conns.is_empty() {
            self.online.remove(&uid);
            if let Some(cluster) = &self.cluster {
                cluster.user_down(uid);
            }
        }
    }

    /// Pushes `text` to every connection of `uids` (but `except`): at once to those on
    /// this node, and through Redis to the other nodes holding the rest.
    fn fan_out(&mut self, uids: &[UserId], text: &Arc<str>, except: Option<ConnId>) {
        for uid in uids {
            self.deliver(*uid, text, except);
        }
        if let Some(cluster) = &self.cluster {
            cluster.publish(uids.to_vec(), text.clone());
        }
    }

    /// Tells the other nodes of a change this node has applied.
    fn broadcast(&self, event: &ClusterEvent) {
        if let Some(cluster) = &self.cluster {
            cluster.broadcast(event);
        }
    }

    /// Validates a send and queues it (customer service first goes through its shop's
    /// router); the ack goes to `reply` after commit, or the refusal at once.
    fn accept_send(
        &mut self,
        conn: ConnId,
        uid: UserId,
        mut m: SendMsg,
        reply: ReplyTx,
        ctx: &mut Context<Self>,
    ) {
        let image = MsgType::from_code(m.msg_type) == Some(MsgType::Image);
        if let Err(e) = m
            .check_card(&self.image_hosts, &self.card_secret)
            .and_then(|_| self.moderate(&mut m))
        {
            let _ = reply.send(Err(e));
            return;
        }
        let ready = match ChatType::from_code(m.chat_type) {
            _ if self.shutting_down => Err(ChatError::ShuttingDown),
            _ if image && !self.image_hosts.allows(&m.msg) => Err(ChatError::ImageHostNotAllowed),
            Some(ChatType::Direct) => self.direct_send(uid, m),
            // The audience of a group message is its membership, read when it is stored.
            Some(ChatType::Group) => self
                .group_send(uid, m)
                .map(|(message, push)| (message, push, Vec::new())),
            Some(ChatType::Service) => match self.service_send(conn, uid, m, ctx) {
                Ok(route) => return route(reply),
                Err(e) => Err(e),
            },
            Some(ChatType::System) => Err(ChatError::SystemReserved),
            None => Err(ChatError::bad("chat_type must be 1, 2 or 4")),
        };
        match ready {
            Ok((message, push, audience)) => {
                self.queue
                    .push(StoreMessage::new(message, push, audience, conn, reply));
                self.flush(ctx);
            }
            Err(refusal) => {
                let _ = reply.send(Err(refusal));
            }
        }
    }

    fn sender_profile(&self, uid: UserId) -> Result<Profile, ChatError> {
        self.online
            .get(&uid)
            .map(|o| o.profile.clone())
            .ok_or(ChatError::ShuttingDown)
    }

    /// The message to store for a 1:1 send, its push and its audience.
    fn direct_send(
        &self,
        uid: UserId,
        m: SendMsg,
    ) -> Result<(NewMessage, ChatPush, Vec<UserId>), ChatError> {
        let client_msg_id = m.validate_common(self.max_msg_chars)?;
        let msg_type = m.kind()?;
        let to = UserId(m.to_uid);
        if to == uid {
            return Err(ChatError::bad("to_uid is the sender"));
        }
        let sender = self.sender_profile(uid)?;
        let card = m.checked_card.clone();
        let mut message = NewMessage::new(
            ChatType::Direct,
            ChatId::direct(uid, to).0,
            msg_type,
            m.msg,
            uid,
            to,
            client_msg_id,
        );
        message.card = card;
        message.masked = m.masked;
        let push = self.presenter.push(&message, 0, &sender, None);
        Ok((message, push, vec![to, uid]))
    }

    /// Applies the next batch if none is being applied; on commit, acts on each write in order.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        let batch = self.queue.take_batch();
        self.metrics.db_queue.set(self.queue.depth() as i64);
        let Some(batch) = batch else {
            return;
        };
        let (queued, writes): (Vec<Instant>, Vec<Box<dyn Write>>) = batch.into_iter().unzip();
        self.writer
            .send(ApplyWrites(writes))
            .into_actor(self)
            .map(move |res, act, ctx| {
                act.finish_batch(queued, res);
                act.queue.batch_done();
                act.flush(ctx);
                act.check_drained();
            })
            .spawn(ctx);
    }

    /// Each write's follow-up, in batch order; or, if the batch was undone, each is told so.
    fn finish_batch(
        &mut self,
        queued: Vec<Instant>,
        res: Result<Applied<dyn Write>, MailboxError>,
    ) {
        match res {
            Ok(Ok(writes)) => {
                for (write, queued_at) in writes.into_iter().zip(queued) {
                    write.committed(self, queued_at);
                }
            }
            Ok(Err((e, writes))) => {
                log::error!("applying {} writes failed: {e}", writes.len());
                writes.into_iter().for_each(|w| w.failed());
            }
            // The writes went down with the executor; their waiters see a closed channel.
            Err(e) => log::error!(
                "applying {} writes failed: db executor unreachable: {e}",
                queued.len()
            ),
        }
    }

    /// A recall, queued behind the writes before it.
    fn recall(&mut self, id: MsgId, who: Recaller, reply: ReplyTx, ctx: &mut Context<Self>) {
        if self.shutting_down {
            let _ = reply.send(Err(ChatError::ShuttingDown));
            return;
        }
        let window = self.recall_secs;
        self.queue.push(RecallMessage::new(id, who, window, reply));
        self.flush(ctx);
    }

    fn sync(&self, uid: UserId, req: SyncRequest, reply: ReplyTx, watch: crate::watch::Watch) {
        let db = self.reads.clone();
        let presenter = self.presenter.clone();
        let agent_shop = self.online.get(&uid).and_then(|o| o.agent_shop);
        let metrics = self.metrics.clone();
        answer_later(reply, async move {
            let (since, limit) = req.bounds()?;
            let (rows, has_more) = chats::ask(db.send(LoadSync {
                uid,
                agent_shop,
                since: MsgId(since),
                limit,
                watch,
            }))
            .await
            .inspect_err(|e| {
                if *e == ChatError::ConnectionGone {
                    metrics.reject("read_skipped");
                }
            })?;
            let rows = rows
                .into_iter()
                .filter_map(|r| presenter.sync_row(r, uid))
                .collect();
            Ok(protocol::reply_with(
                code::RECORDS,
                &SyncPage::within_bytes(rows, has_more),
            ))
        });
    }

    /// Requests answered from the database alone, with no state of the server's.
    fn answer_from_db(&self, uid: UserId, request: Request, reply: ReplyTx) {
        let db = self.db.clone();
        let reads = self.reads.clone();
        let presenter = self.presenter.clone();
        answer_later(reply, async move {
            match request {
                Request::RecentChat(r) => {
                    let list =
                        chats::recent_chats(&reads, uid, r.as_agent.unwrap_or(false), &presenter)
                            .await?;
                    Ok(protocol::reply_with(code::RECENT_CHATS, &list))
                }
                Request::DelChat(chat) => {
                    chats::mark_chat(&db, uid, chat, Mark::Hidden).await?;
                    Ok(protocol::ok(&()))
                }
                Request::Range(r) => {
                    let page = chats::range(&reads, uid, r, &presenter).await?;
                    Ok(protocol::reply_with(code::RECORDS, &page))
                }
                Request::Heads(r) => Ok(protocol::ok(&chats::heads(&reads, uid, r).await?)),
                _ => Err(ChatError::UnknownAction),
            }
        });
    }

    fn check_drained(&mut self) {
        if self.shutting_down && self.queue.is_idle() && !self.drained.is_empty() {
            for online in self.online.values() {
                for c in &online.conns {
                    c.session
                        .do_send(ToSession::close(1001, "server shutting down"));
                }
            }
            for tx in self.drained.drain(..) {
                let _ = tx.send(());
            }
        }
    }
}

/// Answers `reply` when `work` (which never touches the actor's state) completes.
fn answer_later(
    reply: ReplyTx,
    work: impl std::future::Future<Output = Result<String, ChatError>> + 'static,
) {
    actix::spawn(async move {
        let _ = reply.send(work.await);
    });
}

impl Effects for ChatServer {
    fn fan_out(&mut self, uids: &[UserId], text: &Arc<str>, except: Option<ConnId>) {
        ChatServer::fan_out(self, uids, text, except);
    }

    fn notice_all(&mut self, push: ChatPush) {
        // Every node pushes a broadcast to its own users.
        self.broadcast(&ClusterEvent::NoticeAll { push: push.clone() });
        self.notice_connected(push);
    }

    fn presenter(&self) -> &Presenter {
        &self.presenter
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn retire_upload(&mut self, name: &str) {
        let dir = std::path::Path::new(&self.upload_dir);
        match std::fs::rename(dir.join(name), dir.join(protocol::retired_upload(name))) {
            Ok(()) => {}
            // Another node's upload directory, or already set aside.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::error!("cannot set the recalled upload {name} aside: {e}"),
        }
    }
}

impl Actor for ChatServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.db
            .send(LoadShopIds {})
            .into_actor(self)
            .map(|res, act, _| match res {
                Ok(Ok(ids)) => act.known_shops = Some(ids.into_iter().collect()),
                other => log::error!(
                    "cannot load shop ids, unknown shops will start routers: {:?}",
                    other.map(|r| r.err())
                ),
            })
            .wait(ctx);
        self.reload_words(ctx);
        if let Some(cluster) = &self.cluster {
            cluster.listen(ctx.address().recipient());
        }
        ctx.run_interval(std::time::Duration::from_millis(200), |act, _| {
            act.db.do_send(crate::db::Checkpoint {});
        });
        ctx.run_interval(idle::sweep_every(self.client_timeout), |act, _| {
            act.close_idle();
        });
        ctx.run_interval(self.resolve_sweep, |act, ctx| act.sweep(ctx));
    }
}

impl ChatServer {
    /// Tells every connection silent for longer than the client timeout to close.
    fn close_idle(&mut self) {
        for (uid, online) in &mut self.online {
            for c in online.conns.iter_mut() {
                if !c.timed_out && c.seen.idle_for() > self.client_timeout {
                    log::debug!("conn {} uid {uid}: idle timeout", c.conn);
                    c.timed_out = true;
                    c.session.do_send(ToSession::close(1000, "idle timeout"));
                }
            }
        }
    }
}

impl Handler<Connect> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Connect, ctx: &mut Context<Self>) {
        if self.shutting_down {
            msg.session
                .do_send(ToSession::close(1001, "server shutting down"));
            return;
        }
        log::debug!("conn {} uid {}: connected", msg.conn, msg.uid);
        if let Some(cluster) = &self.cluster {
            cluster.user_up(msg.uid);
        }
        let online = match self.online.entry(msg.uid) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let online = e.into_mut();
                online.profile = msg.profile;
                online.agent_shop = msg.agent_shop;
                online
            }
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Box::new(Online {
                profile: msg.profile,
                agent_shop: msg.agent_shop,
                // Most users hold one connection: room for one, not the default four.
                conns: Vec::with_capacity(1),
            })),
        };
        online.conns.push(ConnHandle {
            conn: msg.conn,
            session: msg.session,
            seen: msg.seen,
            timed_out: false,
        });
        if self.max_conns_per_user > 0 && online.conns.len() > self.max_conns_per_user {
            // The oldest goes: the newest is the device the user is holding.
            let oldest = online.conns.remove(0);
            log::info!(
                "conn {} uid {}: closed, over limits.max_conns_per_user",
                oldest.conn,
                msg.uid
            );
            oldest
                .session
                .do_send(ToSession::close(1008, "too many connections for this user"));
        }
        self.report_presence(msg.uid, ctx);
    }
}

impl Handler<Disconnect> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        log::debug!("conn {} uid {}: disconnected", msg.conn, msg.uid);
        if let Some(online) = self.online.get_mut(&msg.uid) {
            online.conns.retain(|c| c.conn != msg.conn);
        }
        self.after_conn_loss(msg.uid);
    }
}

impl Handler<ClientRequest> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: ClientRequest, ctx: &mut Context<Self>) {
        match msg.request {
            Request::SendMsg(m) => self.accept_send(msg.conn, msg.uid, m, msg.reply, ctx),
            Request::Sync(req) => self.sync(msg.uid, req, msg.reply, msg.watch),
            Request::SetOnline(r) => {
                let status = match r.online {
                    true => AgentStatus::Online,
                    false => AgentStatus::Offline,
                };
                self.set_status(msg.conn, msg.uid, status, msg.reply, ctx)
            }
            Request::SetStatus(r) => self.set_status(msg.conn, msg.uid, r.status, msg.reply, ctx),
            Request::Transfer(t) => self.transfer(msg.uid, t, msg.reply, ctx),
            Request::SetChatRead(chat) => self.read_chat(msg.uid, chat, msg.reply, ctx),
            Request::Recall(r) => {
                let who = Recaller::User(msg.uid);
                self.recall(MsgId(r.msg_id), who, msg.reply, ctx)
            }
            Request::Resolve(r) => self.resolve(msg.uid, r.chat_id, msg.reply, ctx),
            Request::ServiceAgents => self.agents(msg.uid, msg.reply, ctx),
            Request::ShopInfo(r) => self.shop_info(ShopId(r.shop_id), msg.reply, ctx),
            Request::Block(c) => self.block(msg.uid, UserId(c.consumer_uid), true, msg.reply, ctx),
            Request::Unblock(c) => {
                self.block(msg.uid, UserId(c.consumer_uid), false, msg.reply, ctx)
            }
            desk @ (Request::ServiceMe
            | Request::ServiceQueue
            | Request::ServiceSessions(_)
            | Request::QuickReplies
            | Request::SaveQuickReply(_)
            | Request::DeleteQuickReply(_)
            | Request::ServiceCustomer(_)
            | Request::Rate(_)) => {
                let db = self.db.clone();
                let presenter = self.presenter.clone();
                let uid = msg.uid;
                answer_later(msg.reply, async move {
                    crate::desk::answer(&db, &presenter, uid, desk).await
                });
            }
            group @ (Request::GroupCreate(_)
            | Request::GroupJoin(_)
            | Request::GroupLeave(_)
            | Request::GroupAdd(_)
            | Request::GroupMembers(_)
            | Request::GroupList) => self.group_action(msg.uid, group, msg.reply),
            other => self.answer_from_db(msg.uid, other, msg.reply),
        }
    }
}

impl Handler<RecallByPlatform> for ChatServer {
    type Result = ResponseFuture<Result<String, ChatError>>;

    fn handle(&mut self, msg: RecallByPlatform, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.recall(msg.msg_id, Recaller::Platform, tx, ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(ChatError::StorageUnavailable)) })
    }
}

impl Handler<Enqueue> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        for op in msg.0 {
            self.queue.push(op);
        }
        self.flush(ctx);
    }
}

impl Handler<OnlineAmong> for ChatServer {
    type Result = ResponseFuture<Vec<UserId>>;

    /// Which of `uids` are connected here, and in cluster mode anywhere (this node's own
    /// answer if Redis does not give one); sorted.
    fn handle(&mut self, msg: OnlineAmong, _: &mut Context<Self>) -> Self::Result {
        let mut online: BTreeSet<UserId> = msg
            .uids
            .iter()
            .filter(|u| self.online.contains_key(u))
            .copied()
            .collect();
        let cluster = self.cluster.clone();
        Box::pin(async move {
            if let Some(cluster) = cluster {
                if let Ok(anywhere) = cluster.online_anywhere(&msg.uids).await {
                    online.extend(anywhere);
                }
            }
            online.into_iter().collect()
        })
    }
}

impl Handler<FromCluster> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: FromCluster, ctx: &mut Context<Self>) {
        match msg {
            FromCluster::Deliver { uids, text } => {
                for uid in uids {
                    self.deliver(uid, &text, None);
                }
            }
            FromCluster::Event(event) => self.apply_event(event, ctx),
            FromCluster::Recovered => {
                self.reload_shared_state(ctx);
                self.resync_everyone(protocol::gaps::ResyncReason::ClusterLinkRestored);
            }
        }
    }
}

impl Handler<Shutdown> for ChatServer {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        let (tx, rx) = oneshot::channel();
        self.drained.push(tx);
        self.check_drained();
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

#[cfg(test)]
mod tests;

impl Handler<crate::presence::ConnectedHere> for ChatServer {
    type Result = Vec<UserId>;

    fn handle(&mut self, m: crate::presence::ConnectedHere, _: &mut Context<Self>) -> Vec<UserId> {
        m.0.into_iter()
            .filter(|u| self.online.contains_key(u))
            .collect()
    }
}

//! `ChatServer`: owns the registry `user → connections`, decides who receives what,
//! and stores messages through its write queue before anyone is told of them.

pub mod messages;
pub mod push;
pub mod write_queue;

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

pub use messages::*;

use crate::chats;
use crate::config::Config;
use crate::db::{DbError, DbExecutor, LoadSync, Mark, NewMessage, Profile, StoreMessages};
use crate::error::ChatError;
use crate::ids::{ChatId, ConnId, MsgId, UserId};
use crate::protocol::{
    self, chat_type, code, ChatPush, Request, SendAck, SendMsg, SyncPage, SyncRequest,
};
use write_queue::{PendingStore, WriteQueue};

/// A live connection as the server sees it.
struct ConnHandle {
    conn: ConnId,
    deliver: Recipient<Deliver>,
    close: Recipient<Close>,
}

/// A user with at least one live connection.
struct Online {
    profile: Profile,
    conns: Vec<ConnHandle>,
}

/// What ChatServer needs from the config.
#[derive(Clone)]
struct Settings {
    max_msg_chars: usize,
    media_base: Arc<str>,
}

pub struct ChatServer {
    db: Addr<DbExecutor>,
    settings: Settings,
    online: HashMap<UserId, Online>,
    queue: WriteQueue,
    shutting_down: bool,
    drained: Vec<oneshot::Sender<()>>,
}

impl ChatServer {
    pub fn new(db: Addr<DbExecutor>, config: &Config) -> ChatServer {
        ChatServer {
            db,
            settings: Settings {
                max_msg_chars: config.limits.max_msg_chars,
                media_base: Arc::from(config.media.base_url.as_str()),
            },
            online: HashMap::new(),
            queue: WriteQueue::default(),
            shutting_down: false,
            drained: Vec::new(),
        }
    }

    /// Writes `text` to every connection of `uid` but `except`, never waiting on one:
    /// a full or closed mailbox loses this push and the client catches up with chat.sync.
    fn deliver(&self, uid: UserId, text: &Arc<str>, except: Option<ConnId>) {
        let Some(online) = self.online.get(&uid) else {
            return;
        };
        for c in online.conns.iter().filter(|c| Some(c.conn) != except) {
            if let Err(e) = c.deliver.try_send(Deliver(text.clone())) {
                log::warn!(
                    "conn {} uid {uid}: push dropped ({e}); client will catch up with chat.sync",
                    c.conn
                );
            }
        }
    }

    /// Validates a send and queues it for storage; the ack goes to `reply` after commit.
    fn accept_send(
        &mut self,
        conn: ConnId,
        uid: UserId,
        m: SendMsg,
        reply: ReplyTx,
        ctx: &mut Context<Self>,
    ) {
        match self.check_send(uid, m) {
            Ok((message, push, audience)) => {
                self.queue.push(PendingStore {
                    message,
                    push,
                    audience,
                    sender: conn,
                    reply,
                });
                self.flush(ctx);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// The message to store, its push and its audience, or why it is refused.
    fn check_send(
        &self,
        uid: UserId,
        m: SendMsg,
    ) -> Result<(NewMessage, ChatPush, Vec<UserId>), ChatError> {
        if self.shutting_down {
            return Err(ChatError::ShuttingDown);
        }
        let ct = i32::try_from(m.chat_type).unwrap_or(-1);
        match ct {
            chat_type::DIRECT => {}
            chat_type::SYSTEM => return Err(ChatError::SystemReserved),
            chat_type::GROUP | chat_type::SERVICE => return Err(ChatError::UnsupportedChatType),
            _ => return Err(ChatError::bad("chat_type must be 1, 2 or 4")),
        }
        let client_msg_id = m.validate_common(self.settings.max_msg_chars)?;
        let to = UserId(m.to_uid);
        if to == uid {
            return Err(ChatError::bad("to_uid is the sender"));
        }
        let sender = self
            .online
            .get(&uid)
            .map(|o| o.profile.clone())
            .ok_or(ChatError::ShuttingDown)?;
        let message = NewMessage {
            chat_id: ChatId::direct(uid, to).0,
            chat_type: ct,
            msg_type: m.msg_type as i32,
            msg: m.msg,
            from_uid: uid.0,
            to_uid: to.0,
            shop_id: 0,
            group_id: 0,
            consumer_uid: 0,
            from_service: false,
            client_msg_id,
            createtime: crate::auth::unix_now() as i64,
        };
        let push = push::chat_push(&message, 0, &sender, &self.settings.media_base);
        Ok((message, push, vec![to, uid]))
    }

    /// Stores the next batch if none is being stored; on commit, acks and pushes in order.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        let Some(batch) = self.queue.take_batch() else {
            return;
        };
        let rows: Vec<NewMessage> = batch.iter().map(|p| p.message.clone()).collect();
        self.db
            .send(StoreMessages { batch: rows })
            .into_actor(self)
            .map(move |res, act, ctx| {
                act.finish_batch(batch, res);
                act.queue.batch_done();
                act.flush(ctx);
                act.check_drained();
            })
            .spawn(ctx);
    }

    fn finish_batch(
        &mut self,
        batch: Vec<PendingStore>,
        res: Result<Result<Vec<MsgId>, DbError>, MailboxError>,
    ) {
        let ids = match res {
            Ok(Ok(ids)) if ids.len() == batch.len() => ids,
            Ok(Ok(ids)) => {
                log::error!(
                    "store returned {} ids for {} messages",
                    ids.len(),
                    batch.len()
                );
                return fail_all(batch);
            }
            Ok(Err(e)) => {
                log::error!("storing {} messages failed: {e}", batch.len());
                return fail_all(batch);
            }
            Err(e) => {
                log::error!(
                    "storing {} messages failed: db executor unreachable: {e}",
                    batch.len()
                );
                return fail_all(batch);
            }
        };
        for (mut p, id) in batch.into_iter().zip(ids) {
            p.push.msg_id = id.0;
            let text = protocol::push_text(&p.push);
            for uid in &p.audience {
                self.deliver(*uid, &text, Some(p.sender));
            }
            let ack = SendAck {
                msg_id: id.0,
                chat_id: p.message.chat_id,
                createtime: p.message.createtime,
                client_msg_id: p.message.client_msg_id,
            };
            // A sender that hung up before its ack loses only the ack: the message is stored.
            let _ = p.reply.send(Ok(protocol::ok(&ack)));
        }
    }

    fn sync(&self, uid: UserId, req: SyncRequest, reply: ReplyTx) {
        let db = self.db.clone();
        let base = self.settings.media_base.clone();
        answer_later(reply, async move {
            let (since, limit) = req.bounds()?;
            let (rows, has_more) = chats::ask(db.send(LoadSync {
                uid,
                since: MsgId(since),
                limit,
            }))
            .await?;
            let rows = rows
                .into_iter()
                .map(|r| {
                    let (id, m) = push::split_row(r.message);
                    push::chat_push(&m, id, &r.sender, &base)
                })
                .collect();
            Ok(protocol::reply_with(
                code::RECORDS,
                &SyncPage { rows, has_more },
            ))
        });
    }

    /// Requests answered from the database alone, with no state of the server's.
    fn answer_from_db(&self, uid: UserId, request: Request, reply: ReplyTx) {
        let db = self.db.clone();
        let base = self.settings.media_base.clone();
        answer_later(reply, async move {
            match request {
                Request::RecentChat(r) => {
                    let list =
                        chats::recent_chats(&db, uid, r.is_service.unwrap_or(false), &base).await?;
                    Ok(protocol::reply_with(code::RECENT_CHATS, &list))
                }
                Request::SetChatRead(chat) => {
                    chats::mark_chat(&db, uid, chat, Mark::Read).await?;
                    Ok(protocol::ok(&()))
                }
                Request::DelChat(chat) => {
                    chats::mark_chat(&db, uid, chat, Mark::Hidden).await?;
                    Ok(protocol::ok(&()))
                }
                Request::SendMsg(_) | Request::Sync(_) => Err(ChatError::UnknownAction),
            }
        });
    }

    fn check_drained(&mut self) {
        if self.shutting_down && self.queue.is_idle() && !self.drained.is_empty() {
            for online in self.online.values() {
                for c in &online.conns {
                    c.close.do_send(Close {
                        code: 1001,
                        reason: "server shutting down",
                    });
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

fn fail_all(batch: Vec<PendingStore>) {
    for p in batch {
        let _ = p.reply.send(Err(ChatError::StorageUnavailable));
    }
}

impl Actor for ChatServer {
    type Context = Context<Self>;
}

impl Handler<Connect> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        if self.shutting_down {
            msg.close.do_send(Close {
                code: 1001,
                reason: "server shutting down",
            });
            return;
        }
        log::debug!("conn {} uid {}: connected", msg.conn, msg.uid);
        let online = self.online.entry(msg.uid).or_insert_with(|| Online {
            profile: msg.profile.clone(),
            conns: Vec::new(),
        });
        online.profile = msg.profile;
        online.conns.push(ConnHandle {
            conn: msg.conn,
            deliver: msg.deliver,
            close: msg.close,
        });
    }
}

impl Handler<Disconnect> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        log::debug!("conn {} uid {}: disconnected", msg.conn, msg.uid);
        if let Some(online) = self.online.get_mut(&msg.uid) {
            online.conns.retain(|c| c.conn != msg.conn);
            if online.conns.is_empty() {
                self.online.remove(&msg.uid);
            }
        }
    }
}

impl Handler<ClientRequest> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: ClientRequest, ctx: &mut Context<Self>) {
        match msg.request {
            Request::SendMsg(m) => self.accept_send(msg.conn, msg.uid, m, msg.reply, ctx),
            Request::Sync(req) => self.sync(msg.uid, req, msg.reply),
            other => self.answer_from_db(msg.uid, other, msg.reply),
        }
    }
}

impl Handler<CountOnline> for ChatServer {
    type Result = usize;

    fn handle(&mut self, msg: CountOnline, _: &mut Context<Self>) -> usize {
        msg.uids
            .iter()
            .filter(|u| self.online.contains_key(u))
            .count()
    }
}

impl Handler<ProfileChanged> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: ProfileChanged, _: &mut Context<Self>) {
        if let Some(online) = self.online.get_mut(&msg.0.uid) {
            online.profile = msg.0;
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

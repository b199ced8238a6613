//! ChatServer's side of customer service: starting a shop's router on first use,
//! reporting agents' live connections to it, and passing it sends and service actions.

use actix::prelude::*;
use serde_json::Value;

use super::{answer_later, ChatServer, ReplyTx};
use crate::chats::ask;
use crate::cluster::ClusterEvent;
use crate::db::{DueForResolve, FindShop, NewMessage, SetAgentStatus, SetBlocked};
use crate::desk;
use crate::domain::hours::{WorkingHours, WorkingHoursSpec};
use crate::error::ChatError;
use crate::ids::{ChatId, ConnId, ShopId, UserId};
use crate::protocol::service::{AgentRow, AgentStatus, Rows, ShopInfoView};
use crate::protocol::{self, ChatType, Role, SendMsg, Transfer};
use crate::routing::{
    AgentPresence, AgentReport, ReportAgents, ResolveChat, RouteSend, RouterMail, TransferChat,
};
use crate::server::{Changed, ShopAgents, TellStatus};

/// The most sessions one sweep resolves (the next sweep takes the rest).
const SWEEP_BATCH: i64 = 1000;

/// A send that passed its checks and only needs a reply channel to be routed.
pub(super) type Route = Box<dyn FnOnce(ReplyTx)>;

/// `shop_id` as sent: absent, null or 0 is "not given".
fn given_shop(v: &Value) -> Result<Option<i64>, ChatError> {
    match protocol::lenient::opt_int(v) {
        Ok(None | Some(0)) => Ok(None),
        Ok(Some(n)) if n > 0 => Ok(Some(n)),
        _ => Err(ChatError::bad("shop_id must be a positive id")),
    }
}

impl ChatServer {
    /// The router of `shop`, started (and told of connected agents) on first use.
    pub(super) fn router(&mut self, shop: ShopId, ctx: &mut Context<Self>) -> RouterMail {
        if let Some(mail) = self.routers.get(&shop).filter(|m| m.connected()) {
            return mail.clone();
        }
        let addr = (self.start_router)(shop, ctx.address().recipient());
        for (uid, online) in &self.online {
            if online.agent_shop == Some(shop) {
                addr.presence.do_send(AgentPresence {
                    uid: *uid,
                    conns: online.conns.len(),
                });
            }
        }
        self.routers.insert(shop, addr.clone());
        addr
    }

    pub(super) fn shop_exists(&self, shop: ShopId) -> bool {
        self.known_shops
            .as_ref()
            .is_none_or(|known| known.contains(&shop))
    }

    /// Tells `uid`'s shop router how many connections it has now, if it is an agent.
    pub(super) fn report_presence(&mut self, uid: UserId, ctx: &mut Context<Self>) {
        let Some(online) = self.online.get(&uid) else {
            return;
        };
        let (Some(shop), conns) = (online.agent_shop, online.conns.len()) else {
            return;
        };
        self.router(shop, ctx)
            .presence
            .do_send(AgentPresence { uid, conns });
    }

    /// Checks a chat_type 4 send and returns how to route it: a consumer's goes to the
    /// shop in `to_uid`; an agent's goes to the consumer in `to_uid`, for its own shop only.
    pub(super) fn service_send(
        &mut self,
        conn: ConnId,
        uid: UserId,
        m: SendMsg,
        ctx: &mut Context<Self>,
    ) -> Result<Route, ChatError> {
        let client_msg_id = m.validate_common(self.max_msg_chars)?;
        let msg_type = m.kind()?;
        let role = m.role()?;
        let named_shop = given_shop(&m.shop_id)?;
        let (shop, consumer) = match role {
            Role::Consumer => {
                if named_shop.is_some_and(|s| s != m.to_uid) {
                    return Err(ChatError::bad("shop_id and to_uid name different shops"));
                }
                (ShopId(m.to_uid), uid)
            }
            Role::Agent => {
                let mine = self
                    .online
                    .get(&uid)
                    .and_then(|o| o.agent_shop)
                    .ok_or(ChatError::Forbidden)?;
                if named_shop.is_some_and(|s| s != mine.0) {
                    return Err(ChatError::Forbidden);
                }
                (mine, UserId(m.to_uid))
            }
        };
        if !self.shop_exists(shop) {
            return Err(ChatError::UnknownShop);
        }
        let sender = self.sender_profile(uid)?;
        let card = m.checked_card.clone();
        let mut message = NewMessage::new(
            ChatType::Service,
            ChatId::service(shop, consumer).0,
            msg_type,
            m.msg,
            uid,
            UserId(m.to_uid),
            client_msg_id,
        );
        message.shop_id = shop;
        message.consumer_uid = consumer;
        message.from_agent = role == Role::Agent;
        message.card = card;
        message.masked = m.masked;
        let router = self.router(shop, ctx);
        Ok(Box::new(move |reply| {
            router.route.do_send(RouteSend {
                message,
                role,
                sender,
                conn,
                reply,
            })
        }))
    }

    /// `service.setStatus` (and `service.setOnline`): stored first, then the router acts
    /// on it and the agent's connections hear of it, on every node.
    pub(super) fn set_status(
        &mut self,
        conn: ConnId,
        uid: UserId,
        status: AgentStatus,
        reply: ReplyTx,
        ctx: &mut Context<Self>,
    ) {
        let Some(shop) = self.online.get(&uid).and_then(|o| o.agent_shop) else {
            let _ = reply.send(Err(ChatError::Forbidden));
            return;
        };
        let server = ctx.address();
        let db = self.db.clone();
        answer_later(reply, async move {
            if !ask(db.send(SetAgentStatus { shop, uid, status })).await? {
                return Err(ChatError::Forbidden);
            }
            server.do_send(Changed(ClusterEvent::AgentStatusChanged {
                shop,
                uid,
                status,
            }));
            server.do_send(TellStatus {
                shop,
                uid,
                status,
                except: Some(conn),
            });
            Ok(protocol::ok(&()))
        });
    }

    /// `service.resolve`: the caller's shop router checks and queues it.
    pub(super) fn resolve(
        &mut self,
        uid: UserId,
        chat_id: String,
        reply: ReplyTx,
        ctx: &mut Context<Self>,
    ) {
        let Some(shop) = self.online.get(&uid).and_then(|o| o.agent_shop) else {
            let _ = reply.send(Err(ChatError::Forbidden));
            return;
        };
        self.router(shop, ctx).resolve.do_send(ResolveChat {
            by: uid,
            chat_id,
            idle_before: None,
            reply: Some(reply),
        });
    }

    /// `service.agents`: the caller's shop's agents as its router sees them.
    pub(super) fn agents(&mut self, uid: UserId, reply: ReplyTx, ctx: &mut Context<Self>) {
        let Some(shop) = self.online.get(&uid).and_then(|o| o.agent_shop) else {
            let _ = reply.send(Err(ChatError::Forbidden));
            return;
        };
        let router = self.router(shop, ctx);
        answer_later(reply, async move {
            let report = router
                .report
                .send(ReportAgents)
                .await
                .ok()
                .flatten()
                .ok_or(ChatError::Forbidden)?;
            let rows: Vec<AgentRow> = report
                .into_iter()
                .map(|a| AgentRow {
                    uid: a.uid,
                    name: a.name,
                    avatar: a.avatar,
                    role: a.role,
                    status: a.status,
                    connected: a.connected,
                    open_sessions: a.open_sessions,
                })
                .collect();
            Ok(protocol::ok(&Rows { rows }))
        });
    }

    /// `shop.info`: anyone may ask, before writing to a shop.
    pub(super) fn shop_info(&mut self, shop: ShopId, reply: ReplyTx, ctx: &mut Context<Self>) {
        if !self.shop_exists(shop) {
            let _ = reply.send(Err(ChatError::UnknownShop));
            return;
        }
        let router = self.router(shop, ctx);
        let db = self.db.clone();
        let presenter = self.presenter.clone();
        answer_later(reply, async move {
            let row = ask(db.send(FindShop { shop }))
                .await?
                .ok_or(ChatError::UnknownShop)?;
            let report = router.report.send(ReportAgents).await.ok().flatten();
            let agents_online = report.map_or(0, |r| {
                r.iter()
                    .filter(|a| a.status == AgentStatus::Online && a.connected)
                    .count()
            });
            let now = crate::clock::unix_now() as i64;
            let open_now = row
                .working_hours
                .as_deref()
                .and_then(|j| serde_json::from_str::<WorkingHoursSpec>(j).ok())
                .and_then(|spec| WorkingHours::parse(&spec).ok())
                .is_none_or(|h| h.open_at(now));
            Ok(protocol::ok(&ShopInfoView {
                shop_id: shop.0,
                logo: presenter.url(&row.logo),
                name: row.name,
                open_now,
                agents_online,
            }))
        });
    }

    /// `service.block` / `service.unblock` by a supervisor; the shop's routers (on every
    /// node) read the list again.
    pub(super) fn block(
        &mut self,
        uid: UserId,
        consumer: UserId,
        blocked: bool,
        reply: ReplyTx,
        ctx: &mut Context<Self>,
    ) {
        let server = ctx.address();
        let db = self.db.clone();
        answer_later(reply, async move {
            let shop = desk::supervised_shop(&db, uid).await?;
            ask(db.send(SetBlocked {
                shop,
                consumer,
                blocked,
            }))
            .await?;
            server.do_send(Changed(ClusterEvent::ShopChanged { shop }));
            Ok(protocol::ok(&()))
        });
    }

    /// The sweep: open sessions idle for longer than their shop's `auto_resolve_mins` go
    /// to their routers to be resolved (each a compare-and-set, so of several nodes
    /// sweeping at once one resolves and tells).
    pub(super) fn sweep(&mut self, ctx: &mut Context<Self>) {
        let now = crate::clock::unix_now() as i64;
        self.db
            .send(DueForResolve {
                now,
                limit: SWEEP_BATCH,
            })
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Ok(Ok(due)) => {
                    for (shop, consumer, idle_before) in due {
                        act.router(shop, ctx).resolve.do_send(ResolveChat {
                            by: UserId(0),
                            chat_id: ChatId::service(shop, consumer).0,
                            idle_before: Some(idle_before),
                            reply: None,
                        });
                    }
                }
                other => log::error!(
                    "the auto-resolve sweep failed: {:?}",
                    other.map(|r| r.err())
                ),
            })
            .spawn(ctx);
    }

    /// `service.transfer`: the caller's shop router checks and queues it.
    pub(super) fn transfer(
        &mut self,
        uid: UserId,
        t: Transfer,
        reply: ReplyTx,
        ctx: &mut Context<Self>,
    ) {
        let Some(shop) = self.online.get(&uid).and_then(|o| o.agent_shop) else {
            let _ = reply.send(Err(ChatError::Forbidden));
            return;
        };
        self.router(shop, ctx).transfer.do_send(TransferChat {
            by: uid,
            chat_id: t.chat_id,
            to: UserId(t.to_uid),
            reply,
        });
    }
}

impl Handler<ShopAgents> for ChatServer {
    type Result = ResponseFuture<Option<Vec<AgentReport>>>;

    fn handle(&mut self, msg: ShopAgents, ctx: &mut Context<Self>) -> Self::Result {
        if !self.shop_exists(msg.shop) {
            return Box::pin(async { None });
        }
        let router = self.router(msg.shop, ctx);
        Box::pin(async move { router.report.send(ReportAgents).await.ok().flatten() })
    }
}

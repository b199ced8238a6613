//! ChatServer's side of customer service: starting a shop's router on first use,
//! reporting agents' live connections to it, and passing it sends and service actions.

use actix::prelude::*;
use serde_json::Value;

use super::{answer_later, ChatServer, ReplyTx};
use crate::chats::ask;
use crate::cluster::ClusterEvent;
use crate::db::{NewMessage, SetAgentOnline};
use crate::error::ChatError;
use crate::ids::{ChatId, ConnId, ShopId, UserId};
use crate::protocol::{self, ChatType, Role, SendMsg, Transfer};
use crate::routing::{
    AgentPresence, AgentReport, ReportAgents, RouteSend, RouterMail, TransferChat,
};
use crate::server::{Changed, ShopAgents};

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

    /// `service.setOnline`: stored first, then the router acts on it.
    pub(super) fn set_online(
        &mut self,
        uid: UserId,
        online: bool,
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
            if !ask(db.send(SetAgentOnline { shop, uid, online })).await? {
                return Err(ChatError::Forbidden);
            }
            // Applied here and, in cluster mode, on every node.
            server.do_send(Changed(ClusterEvent::AgentFlagChanged {
                shop,
                uid,
                online,
            }));
            Ok(protocol::ok(&()))
        });
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

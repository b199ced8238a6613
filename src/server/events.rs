//! Changes made outside the message flow (the admin API, `service.setOnline`, notices
//! to everyone) and how they reach every node: each is applied here as a
//! `ClusterEvent`, then broadcast so the other nodes apply the same.

use actix::prelude::*;

use super::{Changed, ChatServer, TellStatus};
use crate::cluster::ClusterEvent;
use crate::db::{LoadShopIds, Profile};
use crate::ids::ChatId;
use crate::protocol::service::{ConvEvent, EventDetail};
use crate::protocol::{self, ChatPush};
use crate::routing::{AgentPresence, AgentStatusSet, ReloadAgents};

impl ChatServer {
    /// Applies a change made on this node, then tells the others.
    pub(super) fn apply_and_broadcast(&mut self, event: ClusterEvent, ctx: &mut Context<Self>) {
        self.broadcast(&event);
        self.apply_event(event, ctx);
    }

    /// Brings this node's state in line with a change made on this or another node.
    pub(super) fn apply_event(&mut self, event: ClusterEvent, ctx: &mut Context<Self>) {
        match event {
            ClusterEvent::ProfileChanged {
                uid,
                nickname,
                avatar,
            } => {
                if let Some(online) = self.online.get_mut(&uid) {
                    online.profile = Profile {
                        uid,
                        nickname,
                        avatar,
                    };
                }
            }
            ClusterEvent::ShopChanged { shop } => {
                if let Some(known) = self.known_shops.as_mut() {
                    known.insert(shop);
                }
                if let Some(router) = self.routers.get(&shop) {
                    router.reload.do_send(ReloadAgents);
                }
            }
            ClusterEvent::AgentMoved { uid, from, to } => {
                let conns = match self.online.get_mut(&uid) {
                    Some(online) => {
                        online.agent_shop = to;
                        online.conns.len()
                    }
                    None => 0,
                };
                if let Some(from) = from.filter(|f| Some(*f) != to) {
                    if let Some(router) = self.routers.get(&from) {
                        router.presence.do_send(AgentPresence { uid, conns: 0 });
                        router.reload.do_send(ReloadAgents);
                    }
                }
                if let Some(to) = to {
                    let router = self.router(to, ctx);
                    router.reload.do_send(ReloadAgents);
                    router.presence.do_send(AgentPresence { uid, conns });
                }
            }
            ClusterEvent::AgentStatusChanged { shop, uid, status } => {
                self.router(shop, ctx)
                    .status
                    .do_send(AgentStatusSet { uid, status });
            }
            ClusterEvent::NoticeAll { push } => self.notice_connected(push),
            ClusterEvent::ModerationChanged => self.reload_words(ctx),
        }
    }

    /// Pushes a notice to everyone to each user connected here, in their own chat_id.
    pub(super) fn notice_connected(&mut self, mut push: ChatPush) {
        let receivers: Vec<_> = self.online.keys().copied().collect();
        for uid in receivers {
            push.chat_id = ChatId::system(uid).0;
            self.deliver(uid, &protocol::push_text(&push), None);
        }
    }

    /// After a Redis outage: events may have been missed, so the shop list and every
    /// running router's agents are read again (which also hands out waiting chats).
    pub(super) fn reload_shared_state(&mut self, ctx: &mut Context<Self>) {
        self.db
            .send(LoadShopIds {})
            .into_actor(self)
            .map(|res, act, _| {
                if let Ok(Ok(ids)) = res {
                    act.known_shops = Some(ids.into_iter().collect());
                }
            })
            .spawn(ctx);
        for router in self.routers.values() {
            router.reload.do_send(ReloadAgents);
        }
        self.reload_words(ctx);
    }
}

impl Handler<Changed> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Changed, ctx: &mut Context<Self>) {
        self.apply_and_broadcast(msg.0, ctx);
    }
}

impl Handler<TellStatus> for ChatServer {
    type Result = ();

    /// The node where a status changed tells the agent's connections, on every node.
    fn handle(&mut self, msg: TellStatus, _: &mut Context<Self>) {
        let event = ConvEvent::new(
            String::new(),
            msg.shop.0,
            0,
            EventDetail::Status {
                agent_uid: msg.uid.0,
                status: msg.status,
            },
        );
        self.fan_out(&[msg.uid], &event.push_text().into(), msg.except);
    }
}

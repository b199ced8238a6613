//! Typing signals (PROTOCOL.md §11): pushed to the other side of a conversation and
//! never stored. A 1:1 goes to the other user, a group to its members, customer service
//! from the consumer to the session's agent and from an agent to the consumer as the
//! shop. A signal for a conversation the typist is not part of goes nowhere.

use actix::prelude::*;

use super::{ChatServer, Typing};
use crate::chats::ask;
use crate::db::GroupMembers;
use crate::desk::consumers_shop;
use crate::ids::{ChatId, ChatKind, UserId};
use crate::protocol::{ChatType, Role, TypingPush};
use crate::routing::TypingTarget;

impl ChatServer {
    fn push_typing(&mut self, to: &[UserId], push: TypingPush) {
        self.fan_out(to, &push.push_text().into(), None);
    }
}

impl Handler<Typing> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Typing, ctx: &mut Context<Self>) {
        let Some(kind) = ChatId::parse(&msg.chat.chat_id) else {
            return;
        };
        let Ok(typist) = self.sender_profile(msg.uid) else {
            return;
        };
        let chat_id = msg.chat.chat_id.clone();
        let for_chat = chat_id.clone();
        let push = move |chat_type, uid: UserId, nickname: String| TypingPush {
            chat_id: for_chat.clone(),
            chat_type,
            uid: uid.0,
            nickname,
        };
        match kind {
            ChatKind::Direct(a, b) => {
                let other = match (a == msg.uid, b == msg.uid) {
                    (true, false) => b,
                    (false, true) => a,
                    _ => return,
                };
                let p = push(ChatType::Direct, msg.uid, typist.nickname);
                self.push_typing(&[other], p);
            }
            ChatKind::Group(group) => {
                let p = push(ChatType::Group, msg.uid, typist.nickname);
                let members = self.db.send(GroupMembers {
                    group,
                    uid: msg.uid,
                });
                let typist = msg.uid;
                async move { ask(members).await.ok().flatten() }
                    .into_actor(self)
                    .map(move |members, act, _| {
                        // None: not a member, who learns nothing of the group.
                        let to: Vec<UserId> = members
                            .unwrap_or_default()
                            .into_iter()
                            .map(|m| m.uid)
                            .filter(|u| *u != typist)
                            .collect();
                        act.push_typing(&to, p);
                    })
                    .spawn(ctx);
            }
            ChatKind::Service(a, b) => {
                let (shop, consumer, as_agent) = match msg.chat.role() {
                    Ok(Role::Consumer) => match consumers_shop(&chat_id, msg.uid) {
                        Some(shop) => (shop, msg.uid, false),
                        None => return,
                    },
                    Ok(Role::Agent) => {
                        let Some(shop) = self.online.get(&msg.uid).and_then(|o| o.agent_shop)
                        else {
                            return;
                        };
                        let consumer = if a == shop.0 { b } else { a };
                        if ChatId::service(shop, UserId(consumer)).as_str() != chat_id {
                            return;
                        }
                        (shop, UserId(consumer), true)
                    }
                    Err(_) => return,
                };
                if !self.shop_exists(shop) {
                    return;
                }
                let target = self
                    .router(shop, ctx)
                    .typing
                    .send(TypingTarget { consumer });
                let (uid, nickname) = (msg.uid, typist.nickname);
                async move { target.await.ok().flatten() }
                    .into_actor(self)
                    .map(move |found, act, _| {
                        let Some((agent, shop_name)) = found else {
                            return;
                        };
                        match (as_agent, agent) {
                            (true, _) => {
                                let p = push(ChatType::Service, UserId(0), shop_name);
                                act.push_typing(&[consumer], p);
                            }
                            (false, Some(agent)) => {
                                let p = push(ChatType::Service, uid, nickname);
                                act.push_typing(&[agent], p);
                            }
                            (false, None) => {}
                        }
                    })
                    .spawn(ctx);
            }
            ChatKind::System(_) => {}
        }
    }
}

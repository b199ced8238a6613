//! Live signals (PROTOCOL.md §11), pushed to the other side of a conversation.
//!
//! Typing is never stored. A 1:1 goes to the other user, a group to its members,
//! customer service from the consumer to the session's agent and from an agent to the
//! consumer as the shop. A signal for a conversation the typist is not part of goes
//! nowhere.
//!
//! A read receipt follows a `chat.setChatRead` that moved the reader's cursor (one write,
//! in `db::conversations::mark_read`): the other user of a 1:1, the consumer when the shop
//! side read (as reader 0), the session's agent when the consumer read.

use actix::prelude::*;

use super::{ChatServer, ReplyTx, Typing};
use crate::chats::{self, ask, ReadMoved};
use crate::db::{GroupMembers, Side};
use crate::ids::{ChatId, ChatKind, UserId};
use crate::protocol::{self, ChatRef, ChatType, ReceiptPush, Role, TypingPush};
use crate::routing::SessionAgent;

impl ChatServer {
    fn push_typing(&mut self, to: &[UserId], push: TypingPush) {
        self.fan_out(to, &push.push_text().into(), None);
    }

    /// `chat.setChatRead`: answered once stored; then the receipt, if the cursor moved.
    pub(super) fn read_chat(
        &mut self,
        uid: UserId,
        chat: ChatRef,
        reply: ReplyTx,
        ctx: &mut Context<Self>,
    ) {
        let db = self.db.clone();
        async move { chats::read_chat(&db, uid, chat).await }
            .into_actor(self)
            .map(move |res, act, ctx| match res {
                Ok(moved) => {
                    let _ = reply.send(Ok(protocol::ok(&())));
                    if let Some(moved) = moved {
                        act.send_receipt(uid, moved, ctx);
                    }
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            })
            .spawn(ctx);
    }

    fn send_receipt(&mut self, uid: UserId, m: ReadMoved, ctx: &mut Context<Self>) {
        let push = |chat_type, reader: UserId| ReceiptPush {
            chat_id: m.chat_id.clone(),
            chat_type,
            reader_uid: reader.0,
            read_msg_id: m.read_msg_id,
        };
        match (ChatId::parse(&m.chat_id), m.reader) {
            (Some(ChatKind::Direct(a, b)), Side::User(_)) => {
                let other = if a == uid { b } else { a };
                let text = push(ChatType::Direct, uid).push_text();
                self.fan_out(&[other], &text.into(), None);
            }
            (Some(ChatKind::Service(..)), Side::Shop(shop)) => {
                let Some(consumer) = ChatId::service_consumer(&m.chat_id, shop) else {
                    return;
                };
                let text = push(ChatType::Service, UserId(0)).push_text();
                self.fan_out(&[consumer], &text.into(), None);
            }
            (Some(ChatKind::Service(..)), Side::User(consumer)) => {
                let Some(shop) = ChatId::service_shop(&m.chat_id, consumer) else {
                    return;
                };
                if !self.shop_exists(shop) {
                    return;
                }
                let text = push(ChatType::Service, consumer).push_text();
                let target = self
                    .router(shop, ctx)
                    .session_agent
                    .send(SessionAgent { consumer });
                async move { target.await.ok().flatten() }
                    .into_actor(self)
                    .map(move |found, act, _| {
                        if let Some((Some(agent), _)) = found {
                            act.fan_out(&[agent], &text.into(), None);
                        }
                    })
                    .spawn(ctx);
            }
            _ => {}
        }
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
            ChatKind::Service(..) => {
                let (shop, consumer, as_agent) = match msg.chat.role() {
                    Ok(Role::Consumer) => match ChatId::service_shop(&chat_id, msg.uid) {
                        Some(shop) => (shop, msg.uid, false),
                        None => return,
                    },
                    Ok(Role::Agent) => {
                        let Some(shop) = self.online.get(&msg.uid).and_then(|o| o.agent_shop)
                        else {
                            return;
                        };
                        let Some(consumer) = ChatId::service_consumer(&chat_id, shop) else {
                            return;
                        };
                        (shop, consumer, true)
                    }
                    Err(_) => return,
                };
                if !self.shop_exists(shop) {
                    return;
                }
                let target = self
                    .router(shop, ctx)
                    .session_agent
                    .send(SessionAgent { consumer });
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

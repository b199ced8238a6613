//! One step of a customer-service conversation (PROTOCOL.md §10): the message that
//! caused it (if any), the state, session and queue it changes, its auto reply and event
//! rows, all in the batch's transaction; then, after commit, the pushes in the order the
//! protocol sets: the agent's `assigned` before any message of the session, the sender's
//! ack, auto replies, then the queue and session events.

use std::sync::Arc;
use std::time::Instant;

use diesel::QueryResult;

use super::{Effects, ReplyTx, StoreMessage, Write};
use crate::db::outbox::NewEvent;
use crate::db::sessions::{self, ChatChange, SessionChange};
use crate::db::{store, Apply, DbConn, MessageWithSender, NewMessage, Profile, Stored, Touches};
use crate::domain::session::{ConvState, Effect, Step};
use crate::error::ChatError;
use crate::ids::{ShopId, UserId};
use crate::protocol::service::{ConvEvent, EventDetail, SessionState};
use crate::protocol::webhook::{self, ConversationData};
use crate::protocol::{self, ChatPush, ChatType, MsgType};

pub struct ServiceTurn {
    pub shop: ShopId,
    pub consumer: UserId,
    pub chat_id: String,
    pub step: Step,
    /// Only if the conversation is still in this state (a hand-out from the queue, a
    /// resolution): another node may have moved it since the router looked.
    pub only_if: Option<i32>,
    /// The sweep's guard: only if the conversation has been quiet since before this time.
    pub idle_before: Option<i64>,
    pub message: Option<Box<StoreMessage>>,
    /// The auto reply to store, and its push (msg_id filled in after commit).
    pub auto: Option<(NewMessage, ChatPush)>,
    /// The shop's agents: who hears of the queue's length and of resolutions.
    pub agents: Vec<UserId>,
    /// How consumers see the agent who gets the conversation (the `served` event).
    pub agent_card: Option<Profile>,
    /// Whoever asked (a transfer, a resolution), answered after commit.
    pub reply: Option<ReplyTx>,
    /// The step's time.
    pub at: i64,
    done: Option<Done>,
}

/// What the transaction did, for the pushes that follow it.
struct Done {
    session_id: i64,
    backlog: Vec<MessageWithSender>,
    queue: Option<(Vec<UserId>, Vec<UserId>)>,
    auto_id: Option<Stored>,
    /// The `resolved` and `rating_request` rows: (msg_id, seq) of each.
    resolution: Option<[(i64, i64); 2]>,
}

impl ServiceTurn {
    pub fn new(
        shop: ShopId,
        consumer: UserId,
        chat_id: String,
        step: Step,
        at: i64,
    ) -> ServiceTurn {
        ServiceTurn {
            shop,
            consumer,
            chat_id,
            step,
            only_if: None,
            idle_before: None,
            message: None,
            auto: None,
            agents: Vec::new(),
            agent_card: None,
            reply: None,
            at,
            done: None,
        }
    }

    fn queue_ids(conn: &mut DbConn, shop: ShopId) -> QueryResult<Vec<UserId>> {
        Ok(sessions::queue(conn, shop)?
            .into_iter()
            .map(|r| r.consumer_uid)
            .collect())
    }

    fn event(&self, detail: EventDetail) -> Arc<str> {
        self.stored_event(detail, (0, 0))
    }

    /// An event that is also a stored row: `row` is its (msg_id, seq).
    fn stored_event(&self, detail: EventDetail, row: (i64, i64)) -> Arc<str> {
        ConvEvent::new(self.chat_id.clone(), self.shop.0, self.consumer.0, detail)
            .stored_as(row)
            .push_text()
            .into()
    }
}

/// The step's `conversation.*` webhook events, in the order of its effects.
/// `had` is the agent the conversation had before the step.
#[allow(clippy::too_many_arguments)]
fn emit_events(
    step: &Step,
    shop: ShopId,
    consumer: UserId,
    chat_id: &str,
    touches: &mut Touches<'_>,
    session_id: i64,
    had: UserId,
) {
    let data = |agent: UserId| ConversationData {
        shop_id: shop.0,
        consumer_uid: consumer.0,
        session_id,
        agent_uid: agent.0,
        from_uid: None,
        to_uid: None,
        by_uid: None,
    };
    for effect in &step.effects {
        let (kind, data) = match *effect {
            Effect::EnterQueue => (webhook::CONVERSATION_WAITING, data(UserId(0))),
            Effect::Assigned(p) => (webhook::CONVERSATION_ASSIGNED, data(p.agent)),
            Effect::Transfer { from, to } => (
                webhook::CONVERSATION_TRANSFERRED,
                ConversationData {
                    from_uid: Some(from.map_or(0, |f| f.0)),
                    to_uid: Some(to.0),
                    ..data(to)
                },
            ),
            Effect::Resolve { by } => (
                webhook::CONVERSATION_RESOLVED,
                ConversationData {
                    by_uid: Some(by.0),
                    ..data(had)
                },
            ),
            _ => continue,
        };
        touches.emit(NewEvent::new(kind, chat_id, &data));
    }
}

/// An event row of a conversation, stored at `at`.
fn event_row(
    shop: ShopId,
    consumer: UserId,
    chat_id: &str,
    at: i64,
    detail: EventDetail,
) -> NewMessage {
    {
        let event = ConvEvent::new(chat_id.to_string(), shop.0, consumer.0, detail);
        let json = serde_json::to_string(&event).unwrap_or_default();
        let mut m = NewMessage::new(
            ChatType::Service,
            chat_id.to_string(),
            MsgType::Text,
            json,
            UserId(0),
            consumer,
            None,
        );
        m.shop_id = shop;
        m.consumer_uid = consumer;
        m.from_agent = true;
        m.createtime = at;
        m.event_type = Some(event.event.to_string());
        m
    }
}

impl Apply for ServiceTurn {
    fn conversation(&self) -> Option<(&str, i64)> {
        Some((&self.chat_id, self.shop.0))
    }

    fn apply<'a>(&'a mut self, conn: &mut DbConn, touches: &mut Touches<'a>) -> QueryResult<()> {
        let now = self.at;
        let mut msg_id = None;
        let from_agent = self
            .message
            .as_ref()
            .is_some_and(|m| m.message().from_agent);
        if let Some(m) = self.message.as_mut() {
            // A retry or a refusal changes nothing of the conversation.
            let Some(stored) = m.store(conn, touches)? else {
                return Ok(());
            };
            msg_id = Some(stored.id);
        }
        let row = sessions::ensure_chat(conn, self.shop, self.consumer, &self.chat_id, now)?;
        if self.only_if.is_some_and(|s| s != row.state)
            || self.idle_before.is_some_and(|t| row.last_time >= t)
        {
            return Ok(());
        }
        let step = &self.step;
        let moves = step.has(Effect::EnterQueue) || step.has(Effect::LeaveQueue);
        let before = match moves {
            true => Some(Self::queue_ids(conn, self.shop)?),
            false => None,
        };
        let state = step.state;
        // A conversation the database has resolved while the router believed it went
        // on (a retried send after a resolution: the retry changed nothing here) starts
        // a new session rather than reopening the resolved one.
        let new_session = step.new_session()
            || (row.state == SessionState::Resolved.code() && state != ConvState::Idle);
        let session_id = match new_session {
            true => {
                let (stored, agent) = state.stored();
                let consumer_first = msg_id.is_some() && !from_agent;
                sessions::start_session(conn, &row, stored, agent, consumer_first, now)?
            }
            false => row.session_id,
        };
        let mut auto_sent = if new_session { 0 } else { row.auto_sent };
        if let Some(a) = step.auto_reply().filter(|_| self.auto.is_some()) {
            auto_sent |= a.bit();
        }
        let waiting_from = match state {
            ConvState::Waiting if row.state == ConvState::WAITING && row.waiting_from > 0 => {
                row.waiting_from
            }
            ConvState::Waiting => msg_id.map_or(row.waiting_from.max(1), |id| id.0),
            _ => 0,
        };
        let change = ChatChange {
            state: state.stored().0,
            agent: state.agent().unwrap_or(row.agent_uid),
            waiting_from,
            session_id,
            auto_sent,
            last_time: if msg_id.is_some() { now } else { row.last_time },
        };
        if !sessions::change_chat(conn, self.shop, self.consumer, &change, self.only_if)? {
            return Ok(());
        }
        let backlog = match step.effects.iter().any(|e| matches!(e, Effect::Backlog(_))) {
            true => sessions::backlog(conn, self.shop, self.consumer, row.waiting_from, msg_id)?,
            false => Vec::new(),
        };
        let mut auto_id = None;
        if let Some((m, _)) = self.auto.as_mut() {
            m.createtime = now;
            m.agent_uid = state.agent().unwrap_or_default();
            auto_id = Some(store::store_one(conn, m, touches)?);
        }
        let resolved_by = step.effects.iter().find_map(|e| match e {
            Effect::Resolve { by } => Some(*by),
            _ => None,
        });
        let stored = msg_id.is_some() as i32 + auto_id.is_some() as i32;
        sessions::change_session(
            conn,
            session_id,
            &SessionChange {
                state: Some(state.stored()),
                messages: stored,
                last_time: (stored > 0).then_some(now),
                agent_answered: (msg_id.is_some() && from_agent).then_some(now),
                resolved: resolved_by.map(|by| (now, by)),
            },
        )?;
        let (shop, consumer) = (self.shop, self.consumer);
        emit_events(
            &self.step,
            shop,
            consumer,
            &self.chat_id,
            touches,
            session_id,
            row.agent_uid,
        );
        let mut resolution = None;
        if let Some(by) = resolved_by {
            let (shop, consumer, chat_id) = (self.shop, self.consumer, self.chat_id.as_str());
            let rows = [
                event_row(
                    shop,
                    consumer,
                    chat_id,
                    now,
                    EventDetail::Resolved {
                        session_id,
                        by_uid: by.0,
                    },
                ),
                event_row(
                    shop,
                    consumer,
                    chat_id,
                    now,
                    EventDetail::RatingRequest { session_id },
                ),
            ];
            let mut stored = [(0, 0); 2];
            for (row, at) in rows.iter().zip(stored.iter_mut()) {
                let s = store::insert_row(conn, row, touches)?;
                *at = (s.id.0, s.seq);
            }
            resolution = Some(stored);
        }
        let queue = match before {
            Some(before) => Some((before, Self::queue_ids(conn, self.shop)?)),
            None => None,
        };
        self.done = Some(Done {
            session_id,
            backlog,
            queue,
            auto_id,
            resolution,
        });
        Ok(())
    }
}

impl Write for ServiceTurn {
    fn committed(mut self: Box<Self>, fx: &mut dyn Effects, queued_at: Instant) {
        let message = self.message.take();
        let reply = self.reply.take();
        let Some(done) = self.done.take() else {
            // Nothing changed (a retry, or another node moved the conversation first):
            // the sender still gets its answer.
            if let Some(m) = message {
                m.committed(fx, queued_at);
            }
            if let Some(reply) = reply {
                let _ = reply.send(Ok(protocol::ok(&())));
            }
            return;
        };
        let consumer = [self.consumer];
        let sid = done.session_id;
        for effect in self.step.effects.clone() {
            match effect {
                Effect::Assigned(p) => {
                    let text = self.event(EventDetail::Assigned {
                        agent_uid: p.agent.0,
                        session_id: sid,
                        reason: p.reason.name(),
                    });
                    fx.fan_out(&[p.agent], &text, None);
                }
                Effect::Transfer { from, to } => {
                    let text = self.event(EventDetail::Transfer {
                        from_uid: from.map_or(0, |f| f.0),
                        to_uid: to.0,
                    });
                    let mut to_tell = vec![to];
                    to_tell.extend(from.filter(|f| *f != to));
                    fx.fan_out(&to_tell, &text, None);
                }
                _ => {}
            }
        }
        if let Some(agent) = self.step.effects.iter().find_map(|e| match e {
            Effect::Backlog(a) => Some(*a),
            _ => None,
        }) {
            for row in done.backlog {
                let text = protocol::push_text(&fx.presenter().stored(row));
                fx.fan_out(&[agent], &text, None);
            }
        }
        if let Some(m) = message {
            m.committed(fx, queued_at);
        }
        if let (Some((_, mut push)), Some(stored)) = (self.auto.take(), done.auto_id) {
            push.msg_id = stored.id.0;
            push.seq = stored.seq;
            let text = protocol::push_text(&push);
            let mut to = vec![self.consumer];
            to.extend(self.step.state.agent());
            fx.fan_out(&to, &text, None);
        }
        if let (true, Some(agent)) = (self.step.has(Effect::LeaveQueue), self.step.state.agent()) {
            let card = self
                .agent_card
                .clone()
                .unwrap_or_else(|| Profile::placeholder(agent));
            let text = self.event(EventDetail::Served {
                session_id: sid,
                service_nickname: card.nickname,
                service_avatar: fx.presenter().url(&card.avatar),
            });
            fx.fan_out(&consumer, &text, None);
        }
        if let Some((before, after)) = done.queue {
            for (i, uid) in after.iter().enumerate() {
                let was = before.iter().position(|u| u == uid);
                if was.is_none_or(|w| i < w) {
                    let text = ConvEvent::new(
                        crate::ids::ChatId::service(self.shop, *uid).0,
                        self.shop.0,
                        uid.0,
                        EventDetail::Waiting { position: i + 1 },
                    )
                    .push_text();
                    fx.fan_out(&[*uid], &text.into(), None);
                }
            }
            if before.len() != after.len() {
                let text: Arc<str> = ConvEvent::new(
                    String::new(),
                    self.shop.0,
                    0,
                    EventDetail::Queue {
                        length: after.len(),
                    },
                )
                .push_text()
                .into();
                fx.fan_out(&self.agents, &text, None);
            }
        }
        if let Some(by) = self.step.effects.iter().find_map(|e| match e {
            Effect::Resolve { by } => Some(*by),
            _ => None,
        }) {
            let [resolved, request] = done.resolution.unwrap_or_default();
            let text = self.stored_event(
                EventDetail::Resolved {
                    session_id: sid,
                    by_uid: by.0,
                },
                resolved,
            );
            let mut to = self.agents.clone();
            to.push(self.consumer);
            fx.fan_out(&to, &text, None);
            let text = self.stored_event(EventDetail::RatingRequest { session_id: sid }, request);
            fx.fan_out(&consumer, &text, None);
        }
        if let Some(reply) = reply {
            let _ = reply.send(Ok(protocol::ok(&())));
        }
    }

    fn failed(self: Box<Self>) {
        let ServiceTurn { message, reply, .. } = *self;
        if let Some(m) = message {
            m.failed();
        }
        if let Some(reply) = reply {
            let _ = reply.send(Err(ChatError::StorageUnavailable));
        }
    }
}

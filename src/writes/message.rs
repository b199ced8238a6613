//! A user's message (1:1, group, customer service): stored unless it is a retry or
//! its sender may not post there; then pushed to its audience and acked.

use std::time::Instant;

use diesel::QueryResult;

use super::{Effects, ReplyTx, Write};
use crate::db::{groups, store, Apply, DbConn, NewMessage, Stored, Touches};
use crate::error::ChatError;
use crate::ids::{ConnId, MsgId, UserId};
use crate::protocol::{self, ChatPush, ChatType, SendAck};

pub struct StoreMessage {
    message: NewMessage,
    /// Its msg_id is filled in after commit.
    push: ChatPush,
    /// Who gets the push; a group's members are read when it is stored instead.
    audience: Vec<UserId>,
    /// The sending connection, which gets the ack and not the push.
    sender: ConnId,
    reply: ReplyTx,
    outcome: Outcome,
}

enum Outcome {
    Pending,
    /// Stored; for a group message, with the members at that moment.
    Stored {
        id: MsgId,
        seq: i64,
        members: Option<Vec<UserId>>,
    },
    /// Not stored again: the sender already sent this client_msg_id (PROTOCOL.md §15).
    Duplicate {
        id: MsgId,
        chat_id: String,
        createtime: i64,
        seq: i64,
    },
    /// Not stored: the sender is not a member of the group.
    Forbidden,
}

impl StoreMessage {
    /// Store `message`; after commit push `push` to `audience` (all but `sender`'s
    /// connection) and ack on `reply`.
    pub fn new(
        message: NewMessage,
        push: ChatPush,
        audience: Vec<UserId>,
        sender: ConnId,
        reply: ReplyTx,
    ) -> Box<StoreMessage> {
        Box::new(StoreMessage {
            message,
            push,
            audience,
            sender,
            reply,
            outcome: Outcome::Pending,
        })
    }
}

impl StoreMessage {
    pub fn message(&self) -> &NewMessage {
        &self.message
    }
}

impl Apply for StoreMessage {
    fn apply<'a>(&'a mut self, conn: &mut DbConn, touches: &mut Touches<'a>) -> QueryResult<()> {
        self.store(conn, touches).map(|_| ())
    }

    fn conversation(&self) -> Option<(&str, i64)> {
        Some((&self.message.chat_id, self.message.shop_id.0))
    }
}

impl StoreMessage {
    /// Applies it; returns its id if it was stored (not a retry, not refused). Its
    /// conversation row stays noted in `touches`, which borrows it.
    pub fn store<'a>(
        &'a mut self,
        conn: &mut DbConn,
        touches: &mut Touches<'a>,
    ) -> QueryResult<Option<Stored>> {
        self.outcome = store::unless_stored_meanwhile(conn, &self.message, |conn, m| {
            Self::apply_once(conn, m, touches)
        })?;
        Ok(match &self.outcome {
            Outcome::Stored { id, seq, members } => {
                let to = members.as_deref().unwrap_or(&self.audience);
                super::offline_event(touches, &self.message, *id, &self.push, to);
                Some(Stored { id: *id, seq: *seq })
            }
            _ => None,
        })
    }

    /// The outcome of storing `m`: a retry of a stored message, refused, or stored.
    fn apply_once<'a>(
        conn: &mut DbConn,
        m: &'a NewMessage,
        touches: &mut Touches<'a>,
    ) -> QueryResult<Outcome> {
        Ok(if let Some(earlier) = store::earlier_send(conn, m)? {
            Outcome::from(earlier)
        } else if m.chat_type == ChatType::Group {
            match groups::store_group_message(conn, m, touches)? {
                Some((stored, members)) => Outcome::Stored {
                    id: stored.id,
                    seq: stored.seq,
                    members: Some(members),
                },
                None => Outcome::Forbidden,
            }
        } else {
            let stored = store::store_one(conn, m, touches)?;
            Outcome::Stored {
                id: stored.id,
                seq: stored.seq,
                members: None,
            }
        })
    }
}

impl From<store::Earlier> for Outcome {
    fn from(e: store::Earlier) -> Outcome {
        Outcome::Duplicate {
            id: MsgId(e.0),
            chat_id: e.1,
            createtime: e.2,
            seq: e.3,
        }
    }
}

impl Write for StoreMessage {
    fn committed(self: Box<Self>, fx: &mut dyn Effects, queued_at: Instant) {
        let masked = self.message.masked;
        let StoreMessage {
            mut push,
            audience,
            sender,
            reply,
            outcome,
            ..
        } = *self;
        let ack = match outcome {
            Outcome::Stored { id, seq, members } => {
                fx.metrics().count_stored(push.chat_type);
                push.msg_id = id.0;
                push.seq = seq;
                let text = protocol::push_text(&push);
                fx.fan_out(members.as_ref().unwrap_or(&audience), &text, Some(sender));
                fx.metrics()
                    .push_latency
                    .observe(queued_at.elapsed().as_secs_f64());
                SendAck {
                    msg_id: id.0,
                    msg: masked.then_some(push.msg),
                    chat_id: push.chat_id,
                    createtime: push.createtime,
                    client_msg_id: push.client_msg_id,
                    seq,
                }
            }
            // A retry: the original's ack again, and no second push.
            Outcome::Duplicate {
                id,
                chat_id,
                createtime,
                seq,
            } => SendAck {
                msg_id: id.0,
                msg: None,
                chat_id,
                createtime,
                client_msg_id: push.client_msg_id,
                seq,
            },
            Outcome::Forbidden => {
                let _ = reply.send(Err(ChatError::Forbidden));
                return;
            }
            Outcome::Pending => {
                log::error!("a committed message was never applied");
                let _ = reply.send(Err(ChatError::StorageUnavailable));
                return;
            }
        };
        // A sender that hung up before its ack loses only the ack: the message is stored.
        let _ = reply.send(Ok(protocol::ok(&ack)));
    }

    fn failed(self: Box<Self>) {
        let _ = self.reply.send(Err(ChatError::StorageUnavailable));
    }
}

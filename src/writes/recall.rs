//! A recall (PROTOCOL.md §11), through the write queue like the messages it follows:
//! stored in one transaction (`db::recall`), then code 205 to everyone who could see the
//! message (the sender's other devices too), and the answer.

use std::time::Instant;

use diesel::QueryResult;

use super::{Effects, ReplyTx, Write};
use crate::db::outbox::NewEvent;
use crate::db::recall::{self, RecallRefusal, Recalled, Recaller};
use crate::db::{Apply, DbConn, Touches};
use crate::error::ChatError;
use crate::ids::MsgId;
use crate::protocol::{self, webhook, MsgType, RecallPush};

pub struct RecallMessage {
    msg_id: MsgId,
    who: Recaller,
    window_secs: i64,
    reply: ReplyTx,
    outcome: Option<Result<Recalled, RecallRefusal>>,
}

impl RecallMessage {
    pub fn new(
        msg_id: MsgId,
        who: Recaller,
        window_secs: i64,
        reply: ReplyTx,
    ) -> Box<RecallMessage> {
        Box::new(RecallMessage {
            msg_id,
            who,
            window_secs,
            reply,
            outcome: None,
        })
    }
}

impl Apply for RecallMessage {
    fn apply<'a>(&'a mut self, conn: &mut DbConn, touches: &mut Touches<'a>) -> QueryResult<()> {
        let now = crate::clock::unix_now() as i64;
        let outcome = recall::recall(conn, touches, self.msg_id, self.who, self.window_secs, now)?;
        if let Some(done) = outcome.as_ref().ok().filter(|d| d.first) {
            let data = webhook::RecalledData {
                msg_id: done.message.id.0,
                chat_id: done.message.chat_id.clone(),
                by_uid: match self.who {
                    Recaller::User(uid) => uid.0,
                    Recaller::Platform => 0,
                },
            };
            let conv = &done.message.chat_id;
            touches.emit(NewEvent::new(webhook::MESSAGE_RECALLED, conv, &data));
        }
        self.outcome = Some(outcome);
        Ok(())
    }
}

impl Write for RecallMessage {
    fn committed(self: Box<Self>, fx: &mut dyn Effects, _: Instant) {
        let answer = match self.outcome {
            Some(Ok(done)) => {
                let m = &done.message;
                if !done.audience.is_empty() {
                    let push = RecallPush {
                        msg_id: m.id.0,
                        chat_id: m.chat_id.clone(),
                        chat_type: m.chat_type,
                        by: done.by,
                        seq: done.seq,
                        shop_id: m.shop_id.0,
                    };
                    fx.fan_out(&done.audience, &push.push_text().into(), None);
                }
                if done.first && m.msg_type == MsgType::Image {
                    if let Some(name) = protocol::upload_name(&m.msg) {
                        fx.retire_upload(name);
                    }
                }
                Ok(protocol::ok(
                    &serde_json::json!({"msg_id": m.id, "by": done.by}),
                ))
            }
            Some(Err(RecallRefusal::NotFound)) => Err(ChatError::NotFound),
            Some(Err(RecallRefusal::Forbidden)) => Err(ChatError::Forbidden),
            Some(Err(RecallRefusal::TooLate)) => Err(ChatError::TooLate),
            None => Err(ChatError::StorageUnavailable),
        };
        let _ = self.reply.send(answer);
    }

    fn failed(self: Box<Self>) {
        let _ = self.reply.send(Err(ChatError::StorageUnavailable));
    }
}

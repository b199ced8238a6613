//! A system notice from the platform: stored once per user (or once for everyone),
//! then pushed to whoever of its audience is connected.

use std::time::Instant;

use diesel::QueryResult;

use super::{Effects, NoticeTx, Write};
use crate::db::{store, Apply, DbConn, NewMessage, Stored, Touches};
use crate::error::ChatError;
use crate::ids::{ChatId, UserId};
use crate::protocol::{self, ChatPush};

pub struct StoreNotice {
    message: NewMessage,
    push: ChatPush,
    /// The user it is for; `None`: everyone (each sees it in their own chat_id).
    to: Option<UserId>,
    reply: NoticeTx,
    id: Option<Stored>,
}

impl StoreNotice {
    pub fn new(
        message: NewMessage,
        push: ChatPush,
        to: Option<UserId>,
        reply: NoticeTx,
    ) -> Box<StoreNotice> {
        Box::new(StoreNotice {
            message,
            push,
            to,
            reply,
            id: None,
        })
    }
}

impl Apply for StoreNotice {
    fn apply<'a>(&'a mut self, conn: &mut DbConn, touches: &mut Touches<'a>) -> QueryResult<()> {
        let stored = store::store_one(conn, &self.message, touches)?;
        self.id = Some(stored);
        // A notice to everyone names no receiver: it makes no per-user event.
        if let Some(to) = self.to {
            super::offline_event(touches, &self.message, stored.id, &self.push, &[to]);
        }
        Ok(())
    }

    fn conversation(&self) -> Option<(&str, i64)> {
        Some((&self.message.chat_id, self.message.shop_id.0))
    }
}

impl Write for StoreNotice {
    fn committed(self: Box<Self>, fx: &mut dyn Effects, _: Instant) {
        let StoreNotice {
            mut push,
            to,
            reply,
            id,
            ..
        } = *self;
        let Some(Stored { id, seq }) = id else {
            log::error!("a committed notice was never applied");
            let _ = reply.send(Err(ChatError::StorageUnavailable));
            return;
        };
        fx.metrics().count_stored(push.chat_type);
        push.msg_id = id.0;
        push.seq = seq;
        match to {
            Some(uid) => {
                push.chat_id = ChatId::system(uid).0;
                fx.fan_out(&[uid], &protocol::push_text(&push), None);
            }
            None => fx.notice_all(push),
        }
        let _ = reply.send(Ok(id));
    }

    fn failed(self: Box<Self>) {
        let _ = self.reply.send(Err(ChatError::StorageUnavailable));
    }
}

//! A customer-service conversation handed to an agent (routing, the waiting queue, a
//! transfer): stored, then the agent gets what it has not seen and whoever the change
//! concerns gets its notice.

use std::sync::Arc;
use std::time::Instant;

use diesel::QueryResult;

use super::{Effects, ReplyTx, Write};
use crate::db::{service, Apply, DbConn, MessageWithSender, Touches};
use crate::error::ChatError;
use crate::ids::{ShopId, UserId};
use crate::protocol;

pub struct Assign {
    pub shop: ShopId,
    pub consumer: UserId,
    pub agent: UserId,
    /// Only if it still waits (another node may have handed it out since).
    pub only_if_waiting: bool,
    /// Already-serialized notices, and to whom.
    pub notices: Vec<(UserId, Arc<str>)>,
    /// Whoever asked (a transfer), answered after commit.
    pub reply: Option<ReplyTx>,
    /// What the conversation waited with, which the agent has not seen.
    backlog: Vec<MessageWithSender>,
}

impl Assign {
    pub fn new(shop: ShopId, consumer: UserId, agent: UserId, only_if_waiting: bool) -> Assign {
        Assign {
            shop,
            consumer,
            agent,
            only_if_waiting,
            notices: Vec::new(),
            reply: None,
            backlog: Vec::new(),
        }
    }
}

impl Apply for Assign {
    fn apply<'a>(&'a mut self, conn: &mut DbConn, _: &mut Touches<'a>) -> QueryResult<()> {
        self.backlog = service::assign(
            conn,
            self.shop,
            self.consumer,
            self.agent,
            self.only_if_waiting,
        )?;
        Ok(())
    }
}

impl Write for Assign {
    fn committed(self: Box<Self>, fx: &mut dyn Effects, _: Instant) {
        for row in self.backlog {
            let text = protocol::push_text(&fx.presenter().stored(row));
            fx.fan_out(&[self.agent], &text, None);
        }
        for (uid, text) in &self.notices {
            fx.fan_out(&[*uid], text, None);
        }
        if let Some(reply) = self.reply {
            let _ = reply.send(Ok(protocol::ok(&())));
        }
    }

    fn failed(self: Box<Self>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(Err(ChatError::StorageUnavailable));
        }
    }
}

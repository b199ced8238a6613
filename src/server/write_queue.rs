//! Group commit: writes wait here while one batch is being applied, then go together in
//! the next transaction. One batch in flight at a time keeps msg_ids in arrival order,
//! and keeps an agent's backlog push ahead of any later message of the same conversation.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::db::{NewMessage, RoutingView, WriteOp};
use crate::ids::{ConnId, UserId};
use crate::protocol::ChatPush;
use crate::server::{NoticeTx, ReplyTx};

/// Largest batch applied in one transaction.
pub const MAX_BATCH: usize = 4096;

/// What happens once a write is committed.
pub enum AfterCommit {
    /// A stored message: push it to its audience but the sending connection, ack the sender.
    Message {
        /// Its msg_id is filled in after commit (boxed: it is most of the entry).
        push: Box<ChatPush>,
        audience: Vec<UserId>,
        sender: ConnId,
        reply: ReplyTx,
    },
    /// A system notice: push it to `to` (with everyone's own chat_id when `to` is None:
    /// a broadcast is stored once), then tell the admin API its id.
    Notice {
        push: Box<ChatPush>,
        to: Option<UserId>,
        reply: NoticeTx,
    },
    /// A conversation given to an agent: push it what it has not seen, then the notices
    /// (already serialized) to whom they concern, then answer whoever asked.
    Assignment {
        agent: UserId,
        notices: Vec<(UserId, Arc<str>)>,
        reply: Option<ReplyTx>,
    },
    /// A routing read (cluster mode): hand the view to the router that asked.
    Routing(oneshot::Sender<RoutingView>),
}

/// A write waiting to be applied.
pub struct PendingOp {
    pub op: WriteOp,
    pub after: AfterCommit,
}

impl PendingOp {
    /// Store `message`; after commit push `push` to `audience` (all but `sender`'s
    /// connection; a group's members are read at commit) and ack on `reply`.
    pub fn message(
        message: NewMessage,
        push: ChatPush,
        audience: Vec<UserId>,
        sender: ConnId,
        reply: ReplyTx,
    ) -> PendingOp {
        PendingOp {
            op: WriteOp::Store(message),
            after: AfterCommit::Message {
                push: Box::new(push),
                audience,
                sender,
                reply,
            },
        }
    }
}

#[derive(Default)]
pub struct WriteQueue {
    /// Each write with when it was queued (for the push latency metric).
    pending: VecDeque<(Instant, PendingOp)>,
    /// Writes in the batch being applied; 0 when none is.
    in_flight: usize,
}

impl WriteQueue {
    pub fn push(&mut self, p: PendingOp) {
        self.pending.push_back((Instant::now(), p));
    }

    /// The next batch to apply (with when each write was queued), unless one is already
    /// being applied or nothing waits.
    pub fn take_batch(&mut self) -> Option<Vec<(Instant, PendingOp)>> {
        if self.in_flight > 0 || self.pending.is_empty() {
            return None;
        }
        let n = self.pending.len().min(MAX_BATCH);
        self.in_flight = n;
        Some(self.pending.drain(..n).collect())
    }

    pub fn batch_done(&mut self) {
        self.in_flight = 0;
    }

    /// Writes waiting or being applied.
    pub fn depth(&self) -> usize {
        self.pending.len() + self.in_flight
    }

    /// Nothing waiting and nothing being applied.
    pub fn is_idle(&self) -> bool {
        self.depth() == 0
    }
}

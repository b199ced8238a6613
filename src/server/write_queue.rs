//! Group commit: sends wait here while one batch is being stored, then go together in
//! the next transaction. One batch in flight at a time keeps msg_ids in arrival order.

use std::collections::VecDeque;

use crate::db::NewMessage;
use crate::ids::{ConnId, UserId};
use crate::protocol::ChatPush;
use crate::server::ReplyTx;

/// Largest batch stored in one transaction.
pub const MAX_BATCH: usize = 256;

/// A message accepted from a client, waiting to be stored.
pub struct PendingStore {
    pub message: NewMessage,
    /// The push receivers will get; its msg_id is filled in after commit.
    pub push: ChatPush,
    /// Users whose connections get the push.
    pub audience: Vec<UserId>,
    /// The connection that sent it: acked, and not pushed to.
    pub sender: ConnId,
    /// Gets the ack once stored, or the error.
    pub reply: ReplyTx,
}

#[derive(Default)]
pub struct WriteQueue {
    pending: VecDeque<PendingStore>,
    in_flight: bool,
}

impl WriteQueue {
    pub fn push(&mut self, p: PendingStore) {
        self.pending.push_back(p);
    }

    /// The next batch to store, unless one is already being stored or nothing waits.
    pub fn take_batch(&mut self) -> Option<Vec<PendingStore>> {
        if self.in_flight || self.pending.is_empty() {
            return None;
        }
        self.in_flight = true;
        let n = self.pending.len().min(MAX_BATCH);
        Some(self.pending.drain(..n).collect())
    }

    pub fn batch_done(&mut self) {
        self.in_flight = false;
    }

    /// Nothing waiting and nothing being stored.
    pub fn is_idle(&self) -> bool {
        !self.in_flight && self.pending.is_empty()
    }
}

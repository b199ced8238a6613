//! Group commit: writes wait here while one batch is being applied, then go together in
//! the next transaction. One batch in flight at a time keeps msg_ids in arrival order,
//! and keeps an agent's backlog push ahead of any later message of the same conversation.

use std::collections::VecDeque;
use std::time::Instant;

use crate::writes::Write;

/// Largest batch applied in one transaction.
pub const MAX_BATCH: usize = 4096;

/// A batch on its way to the database: each write with when it was queued.
pub type Batch = Vec<(Instant, Box<dyn Write>)>;

#[derive(Default)]
pub struct WriteQueue {
    /// Each write with when it was queued (for the push latency metric).
    pending: VecDeque<(Instant, Box<dyn Write>)>,
    /// Writes in the batch being applied; 0 when none is.
    in_flight: usize,
}

impl WriteQueue {
    pub fn push(&mut self, p: Box<dyn Write>) {
        self.pending.push_back((Instant::now(), p));
    }

    /// The next batch to apply (with when each write was queued), unless one is already
    /// being applied or nothing waits.
    pub fn take_batch(&mut self) -> Option<Batch> {
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

//! The webhook dispatcher's writes to the outbox (claims, decisions, outcomes, pruning),
//! through the write queue like every other write: in SQLite one writer at a time is
//! the whole story, and a second writer beside the group commit would wait out the
//! busy handler's sleeps while the queue waits for it. Each runs in a savepoint of the
//! batch, and its failure is its own: the batch's messages are stored all the same.

use std::time::Instant;

use diesel::{Connection, QueryResult};
use tokio::sync::oneshot;

use super::{Effects, Write};
use crate::db::outbox::{self, EventRow, Outcome};
use crate::db::{Apply, DbConn, Touches};

/// What the dispatcher asks of the outbox.
pub enum OutboxOp {
    /// Claims due events for `owner` until `now + lease` (ms).
    Claim {
        owner: String,
        lease: i64,
        limit: i64,
    },
    /// `message.offline` rows with their offline receivers (`outbox::decide_offline`).
    Decide {
        rows: Vec<(EventRow, Vec<i64>)>,
        owner: String,
        window: i64,
    },
    /// How attempts ended.
    Finish {
        owner: String,
        outcomes: Vec<(i64, Outcome)>,
    },
    /// Closes due coalescing windows, at most `limit`.
    Flush { limit: i64 },
    /// Deletes events done before `before` (ms), at most `limit`.
    Prune { before: i64, limit: i64 },
}

/// What it got back.
#[derive(Debug)]
pub enum OutboxDone {
    Claimed(Vec<EventRow>),
    /// Per row, the event ready to send, as stored.
    Decided(Vec<Option<EventRow>>),
    /// How many outcomes were recorded (the others' leases were lost).
    Finished(usize),
    Flushed(usize),
    Pruned(usize),
}

pub type OutboxTx = oneshot::Sender<Option<OutboxDone>>;

pub struct OutboxWork {
    op: OutboxOp,
    reply: OutboxTx,
    done: Option<OutboxDone>,
}

impl OutboxWork {
    pub fn new(op: OutboxOp, reply: OutboxTx) -> Box<OutboxWork> {
        Box::new(OutboxWork {
            op,
            reply,
            done: None,
        })
    }

    fn run(&self, conn: &mut DbConn, now: i64) -> QueryResult<OutboxDone> {
        Ok(match &self.op {
            OutboxOp::Claim {
                owner,
                lease,
                limit,
            } => OutboxDone::Claimed(outbox::claim(conn, owner, now, *lease, *limit)?),
            OutboxOp::Decide {
                rows,
                owner,
                window,
            } => OutboxDone::Decided(outbox::decide_offline(conn, rows, owner, *window, now)?),
            OutboxOp::Finish { owner, outcomes } => {
                let mut recorded = 0;
                for (id, outcome) in outcomes {
                    recorded += outbox::finish(conn, *id, owner, outcome, now)? as usize;
                }
                OutboxDone::Finished(recorded)
            }
            OutboxOp::Flush { limit } => {
                OutboxDone::Flushed(outbox::flush_offline(conn, now, *limit)?)
            }
            OutboxOp::Prune { before, limit } => {
                OutboxDone::Pruned(outbox::prune(conn, *before, *limit)?)
            }
        })
    }
}

impl Apply for OutboxWork {
    fn apply<'a>(&'a mut self, conn: &mut DbConn, _: &mut Touches<'a>) -> QueryResult<()> {
        let now = outbox::now_ms();
        self.done = match conn.transaction(|c| self.run(c, now)) {
            Ok(done) => Some(done),
            Err(e) => {
                log::warn!("webhooks: an outbox write failed: {e}");
                None
            }
        };
        Ok(())
    }
}

impl Write for OutboxWork {
    fn committed(self: Box<Self>, _: &mut dyn Effects, _: Instant) {
        let _ = self.reply.send(self.done);
    }

    fn failed(self: Box<Self>) {
        let _ = self.reply.send(None);
    }
}

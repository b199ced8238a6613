//! The webhook dispatcher (PROTOCOL.md §13): one actor per node, which claims due events
//! from the outbox under a lease, decides `message.offline`'s receivers against the
//! presence registry, and `POST`s each event, signed, with `awc`. Delivery is at least
//! once: an event whose attempt was cut short (a crash, a lost lease) is sent again, and
//! receivers deduplicate by `id`.
//!
//! Order: the outbox hands out only the earliest pending event of each conversation, so a
//! conversation's events leave one at a time, in seq order, while different
//! conversations' go side by side.

use std::cell::Cell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rand::Rng;

use crate::cluster::Cluster;
use crate::config::WebhooksConfig;
use crate::db::outbox::{now_ms, EventRow, Outcome};
use crate::db::{self, DbExecutor};
use crate::ids::UserId;
use crate::metrics::Metrics;
use crate::presence::ConnectedHere;
use crate::protocol::webhook;
use crate::writes::{Enqueue, OutboxDone, OutboxOp, OutboxWork, Write};

/// How often the outbox is looked at when there was nothing to do: the most an event
/// waits after its commit.
const POLL: Duration = Duration::from_millis(200);
/// The most events claimed at once (and so the most attempts in flight).
const CLAIM: i64 = 256;
/// How long a claim holds beyond the attempt's own timeout: what a node that died
/// holding events delays them by, at most (with the timeout).
const LEASE_MARGIN_MS: i64 = 5_000;
/// The longest wait between two attempts.
const MAX_BACKOFF_MS: u64 = 10 * 60 * 1000;
/// When the decision on a `message.offline` row cannot be made (Redis is unreachable),
/// it is tried again this much later.
const DECIDE_AGAIN_MS: i64 = 1000;
/// How often the outbox is pruned and its pending events counted.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// The most coalescing windows closed in one go.
const FLUSH_LIMIT: i64 = 5000;

/// The wait before attempt `attempt + 1`, after `attempt` failed ones: `base` doubling,
/// capped at 10 min, then a random point of its upper half (jitter, so that events failed
/// together do not come back together).
pub fn backoff_ms(base: u64, attempt: u32, rng: &mut impl Rng) -> u64 {
    let doubled = base.saturating_mul(1u64 << attempt.saturating_sub(1).min(40));
    let d = doubled.clamp(1, MAX_BACKOFF_MS);
    rng.gen_range(d / 2..=d)
}

pub struct Dispatcher {
    inner: Rc<Inner>,
}

struct Inner {
    config: WebhooksConfig,
    db: Addr<DbExecutor>,
    /// ChatServer's write queue, where the outbox is written (one writer for SQLite).
    queue: Recipient<Enqueue>,
    here: Recipient<ConnectedHere>,
    cluster: Option<Cluster>,
    metrics: Arc<Metrics>,
    /// This node's name in leases.
    node: String,
    client: awc::Client,
    claims: Cell<u64>,
}

impl Dispatcher {
    pub fn new(
        config: WebhooksConfig,
        db: Addr<DbExecutor>,
        queue: Recipient<Enqueue>,
        here: Recipient<ConnectedHere>,
        cluster: Option<Cluster>,
        metrics: Arc<Metrics>,
    ) -> Dispatcher {
        let node = match &cluster {
            Some(c) => c.node().to_string(),
            None => format!("{}-{}", std::process::id(), rand::random::<u32>()),
        };
        let client = awc::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .disable_redirects()
            .finish();
        Dispatcher {
            inner: Rc::new(Inner {
                config,
                db,
                queue,
                here,
                cluster,
                metrics,
                node,
                client,
                claims: Cell::new(0),
            }),
        }
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        log::info!("webhooks: delivering to {}", self.inner.config.url);
        let inner = self.inner.clone();
        ctx.spawn(run(inner).into_actor(self));
    }
}

async fn run(inner: Rc<Inner>) {
    let mut upkeep_at = Instant::now();
    loop {
        if upkeep_at.elapsed() >= UPKEEP_EVERY {
            upkeep_at = Instant::now();
            inner.upkeep().await;
        }
        let worked = inner.tick().await;
        if !worked {
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Inner {
    /// Writes to the outbox through the write queue; `None` if it did not happen.
    async fn write(&self, op: OutboxOp) -> Option<OutboxDone> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let work: Box<dyn Write> = OutboxWork::new(op, tx);
        self.queue.do_send(Enqueue(vec![work]));
        rx.await.ok().flatten()
    }

    async fn upkeep(&self) {
        let keep = self.config.retention_hours as i64 * 3600 * 1000;
        let before = now_ms() - keep;
        self.write(OutboxOp::Prune {
            before,
            limit: 10_000,
        })
        .await;
        match self.db.send(db::CountPending {}).await {
            Ok(Ok(pending)) => self.metrics.webhook_pending.set(pending),
            Ok(Err(e)) => log::warn!("webhooks: counting pending events failed: {e}"),
            Err(e) => log::warn!("webhooks: counting pending events not run: {e}"),
        }
    }

    /// One round: close due coalescing windows, claim due events, send them. Returns
    /// whether it found work (then the next round starts at once).
    async fn tick(&self) -> bool {
        if self.config.offline_coalesce_secs > 0 {
            self.write(OutboxOp::Flush { limit: FLUSH_LIMIT }).await;
        }
        self.claims.set(self.claims.get() + 1);
        let owner = format!("{}:{}", self.node, self.claims.get());
        let lease = self.config.timeout_ms as i64 + LEASE_MARGIN_MS;
        let claim = OutboxOp::Claim {
            owner: owner.clone(),
            lease,
            limit: CLAIM,
        };
        let rows = match self.write(claim).await {
            Some(OutboxDone::Claimed(rows)) => rows,
            _ => return false,
        };
        if rows.is_empty() {
            return false;
        }
        let (undecided, mut ready): (Vec<EventRow>, Vec<EventRow>) =
            rows.into_iter().partition(|r| r.receivers.is_some());
        ready.extend(self.decide(undecided, &owner).await);
        let attempts = ready.into_iter().map(|row| self.send(row));
        let outcomes = futures_util::future::join_all(attempts).await;
        self.finish(&owner, outcomes).await;
        true
    }

    /// Sends one event; how it went.
    async fn send(&self, row: EventRow) -> (i64, Outcome) {
        let outcome = self.attempt(&row).await;
        let result = match &outcome {
            Outcome::Delivered => "ok",
            Outcome::Failed { dead: true, .. } => "dead",
            _ => "retry",
        };
        self.metrics
            .webhook_deliveries
            .with_label_values(&[result])
            .inc();
        if let Outcome::Failed { error, dead, .. } = &outcome {
            let what = if *dead { "dead after" } else { "failed on" };
            log::warn!(
                "webhooks: event {} ({}) {what} attempt {}: {error}",
                row.id,
                row.kind,
                row.attempts + 1
            );
        }
        (row.id, outcome)
    }

    /// Records how attempts ended, in one write.
    async fn finish(&self, owner: &str, outcomes: Vec<(i64, Outcome)>) {
        if outcomes.is_empty() {
            return;
        }
        let n = outcomes.len();
        let op = OutboxOp::Finish {
            owner: owner.to_string(),
            outcomes,
        };
        match self.write(op).await {
            Some(OutboxDone::Finished(recorded)) if recorded < n => log::info!(
                "webhooks: {} of {n} events' leases ran out before they were done",
                n - recorded
            ),
            Some(_) => {}
            None => log::warn!("webhooks: {n} outcomes could not be recorded; the events go again"),
        }
    }

    /// Decides, for claimed `message.offline` rows, who of their receivers has no live
    /// connection on any node now: one presence question and one transaction for them
    /// all. Returns the rows to send now, their data completed.
    async fn decide(&self, rows: Vec<EventRow>, owner: &str) -> Vec<EventRow> {
        if rows.is_empty() {
            return rows;
        }
        let receivers: Vec<Vec<i64>> = rows
            .iter()
            .map(|r| {
                r.receivers
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
                    .unwrap_or_default()
            })
            .collect();
        let all: HashSet<UserId> = receivers.iter().flatten().map(|u| UserId(*u)).collect();
        let all: Vec<UserId> = all.into_iter().collect();
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let Some(online) = self.connected(&all).await else {
            self.decide_later(&ids, owner).await;
            return Vec::new();
        };
        let decisions: Vec<(EventRow, Vec<i64>)> = rows
            .into_iter()
            .zip(receivers)
            .map(|(row, to)| {
                let offline = to
                    .into_iter()
                    .filter(|u| !online.contains(&UserId(*u)))
                    .collect();
                (row, offline)
            })
            .collect();
        let decided = OutboxOp::Decide {
            rows: decisions,
            owner: owner.to_string(),
            window: self.config.offline_coalesce_secs as i64 * 1000,
        };
        match self.write(decided).await {
            Some(OutboxDone::Decided(ready)) => ready.into_iter().flatten().collect(),
            _ => {
                self.decide_later(&ids, owner).await;
                Vec::new()
            }
        }
    }

    /// Leaves the decision on the rows `ids` for a second later.
    async fn decide_later(&self, ids: &[i64], owner: &str) {
        let next_at = now_ms() + DECIDE_AGAIN_MS;
        let later = ids
            .iter()
            .map(|id| (*id, Outcome::Later { next_at }))
            .collect();
        self.finish(owner, later).await;
    }

    /// Who of `uids` is connected here or, in cluster mode, on any node; `None` if that
    /// cannot be known now.
    async fn connected(&self, uids: &[UserId]) -> Option<HashSet<UserId>> {
        let mut online: HashSet<UserId> = match self.here.send(ConnectedHere(uids.to_vec())).await {
            Ok(here) => here.into_iter().collect(),
            Err(e) => {
                log::warn!("webhooks: cannot ask who is connected: {e}");
                return None;
            }
        };
        if let Some(cluster) = &self.cluster {
            let rest: Vec<UserId> = uids
                .iter()
                .filter(|u| !online.contains(u))
                .copied()
                .collect();
            if !rest.is_empty() {
                match cluster.online_anywhere(&rest).await {
                    Ok(elsewhere) => online.extend(elsewhere),
                    Err(e) => {
                        log::warn!("webhooks: presence unknown, Redis did not answer: {e}");
                        return None;
                    }
                }
            }
        }
        Some(online)
    }

    /// One `POST` of the event; how it ended.
    async fn attempt(&self, row: &EventRow) -> Outcome {
        let body = webhook::body(row.id, &row.kind, row.created_at, &row.data);
        let t = crate::clock::unix_now() as i64;
        let signature = webhook::signature(&self.config.secret, t, &body);
        let sent = self
            .client
            .post(&self.config.url)
            .insert_header(("Content-Type", "application/json"))
            .insert_header(("X-Shopchat-Event", row.kind.as_str()))
            .insert_header(("X-Shopchat-Signature", signature))
            .send_body(body)
            .await;
        let error = match sent {
            Ok(mut res) if res.status().is_success() => {
                // Read what is left of the answer, so the connection can be kept.
                let _ = res.body().limit(64 * 1024).await;
                return Outcome::Delivered;
            }
            Ok(res) => format!("answered {}", res.status()),
            Err(e) => e.to_string(),
        };
        let attempts = row.attempts as u32 + 1;
        let dead = attempts >= self.config.max_attempts;
        let wait = backoff_ms(self.config.retry_base_ms, attempts, &mut rand::thread_rng());
        Outcome::Failed {
            error,
            next_at: now_ms() + wait as i64,
            dead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            let first = backoff_ms(1000, 1, &mut rng);
            assert!((500..=1000).contains(&first), "{first}");
            let third = backoff_ms(1000, 3, &mut rng);
            assert!((2000..=4000).contains(&third), "{third}");
            let late = backoff_ms(1000, 30, &mut rng);
            assert!(
                (MAX_BACKOFF_MS / 2..=MAX_BACKOFF_MS).contains(&late),
                "{late}"
            );
        }
        let spread: HashSet<u64> = (0..50).map(|_| backoff_ms(1000, 5, &mut rng)).collect();
        assert!(spread.len() > 10, "jitter spreads retries: {spread:?}");
    }
}

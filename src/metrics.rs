//! Operational metrics, exported at `GET /metrics` in the Prometheus text format. One
//! set per server (not a global registry), so servers embedded side by side — or the
//! test suite's — each count their own.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Live WebSocket connections.
    pub connections: IntGauge,
    /// Messages stored, by chat_type.
    pub stored: IntCounterVec,
    /// `stored`'s counters for chat_types 1 to 4, looked up once (this is the hot path).
    stored_by_type: Vec<prometheus::IntCounter>,
    /// From a message entering the write queue to its push being handed to its receivers.
    pub push_latency: Histogram,
    /// Writes waiting for, or being applied by, the DbExecutor.
    pub db_queue: IntGauge,
    /// Client frames refused, by reason (the error word, or the close reason).
    pub rejected: IntCounterVec,
    /// Webhook attempts by result: `ok`, `retry` (failed, to be tried again), `dead`.
    pub webhook_deliveries: IntCounterVec,
    /// Webhook events not yet delivered (nor dead), as last counted.
    pub webhook_pending: IntGauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let connections = IntGauge::new("shopchat_connections", "Live WebSocket connections")
            .expect("metric definitions should be valid");
        let stored = IntCounterVec::new(
            Opts::new(
                "shopchat_messages_stored_total",
                "Messages stored, by chat_type",
            ),
            &["chat_type"],
        )
        .expect("metric definitions should be valid");
        let push_latency = Histogram::with_opts(
            HistogramOpts::new(
                "shopchat_push_latency_seconds",
                "Time from a message entering the write queue to its push leaving for its receivers",
            )
            .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
        )
        .expect("metric definitions should be valid");
        let db_queue = IntGauge::new(
            "shopchat_db_queue_depth",
            "Writes waiting for or being applied by the DbExecutor",
        )
        .expect("metric definitions should be valid");
        let rejected = IntCounterVec::new(
            Opts::new(
                "shopchat_rejected_frames_total",
                "Client frames refused, by reason",
            ),
            &["reason"],
        )
        .expect("metric definitions should be valid");
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "shopchat_webhook_deliveries_total",
                "Webhook delivery attempts, by result (ok, retry, dead)",
            ),
            &["result"],
        )
        .expect("metric definitions should be valid");
        let webhook_pending = IntGauge::new(
            "shopchat_webhook_pending",
            "Webhook events waiting to be delivered",
        )
        .expect("metric definitions should be valid");
        let registry = Registry::new();
        for c in [
            Box::new(connections.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(stored.clone()),
            Box::new(push_latency.clone()),
            Box::new(db_queue.clone()),
            Box::new(rejected.clone()),
            Box::new(webhook_deliveries.clone()),
            Box::new(webhook_pending.clone()),
        ] {
            registry
                .register(c)
                .expect("each metric is registered once");
        }
        let stored_by_type = (1..=4)
            .map(|t| stored.with_label_values(&[&t.to_string()]))
            .collect();
        Metrics {
            registry,
            connections,
            stored_by_type,
            stored,
            push_latency,
            db_queue,
            rejected,
            webhook_deliveries,
            webhook_pending,
        }
    }

    /// Counts one stored message of `chat_type`.
    pub fn count_stored(&self, chat_type: crate::protocol::ChatType) {
        match usize::try_from(chat_type.code() - 1)
            .ok()
            .and_then(|i| self.stored_by_type.get(i))
        {
            Some(counter) => counter.inc(),
            None => self
                .stored
                .with_label_values(&[&chat_type.code().to_string()])
                .inc(),
        }
    }

    pub fn reject(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding metrics into memory should not fail");
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Resident memory of process `pid` in KiB, from /proc (Linux); `None` if unreadable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

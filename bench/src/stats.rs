//! What a run counts: shared atomic counters, per-connection latency histograms merged
//! at the end, and the summary printed (and given as one JSON line).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub received: AtomicU64,
    pub errors: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Latencies in microseconds, from 1 µs to a minute, three significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("the bounds are valid")
}

/// Microseconds since the epoch: the sender's timestamp, carried in each message.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub samples: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            samples: h.len(),
        }
    }
}

#[derive(Serialize)]
pub struct Summary {
    pub scenario: &'static str,
    pub connections: usize,
    pub duration_secs: f64,
    pub sent: u64,
    pub acked: u64,
    pub received: u64,
    /// Pushes that should have arrived: acked messages times their receivers.
    pub expected: u64,
    pub errors: u64,
    /// Acked messages per second of the sending phase.
    pub msgs_per_sec: f64,
    /// Pushes received per second of the sending phase.
    pub deliveries_per_sec: f64,
    pub latency: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kib_per_connection: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kib_total: Option<u64>,
}

impl Summary {
    pub fn new(
        scenario: &'static str,
        connections: usize,
        elapsed: Duration,
        stats: &Stats,
        expected: u64,
        latency: &Histogram<u64>,
    ) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let acked = Stats::get(&stats.acked);
        let received = Stats::get(&stats.received);
        Summary {
            scenario,
            connections,
            duration_secs: elapsed.as_secs_f64(),
            sent: Stats::get(&stats.sent),
            acked,
            received,
            expected,
            errors: Stats::get(&stats.errors),
            msgs_per_sec: acked as f64 / secs,
            deliveries_per_sec: received as f64 / secs,
            latency: Latency::of(latency),
            rss_kib_per_connection: None,
            rss_kib_total: None,
        }
    }

    pub fn print(&self) {
        println!(
            "{}: {} connections, {:.1} s",
            self.scenario, self.connections, self.duration_secs
        );
        println!(
            "  sent {}  acked {}  received {} of {} expected  errors {}",
            self.sent, self.acked, self.received, self.expected, self.errors
        );
        println!(
            "  {:.0} msgs/s acked, {:.0} deliveries/s",
            self.msgs_per_sec, self.deliveries_per_sec
        );
        let l = &self.latency;
        if l.samples > 0 {
            println!(
                "  latency p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms ({} samples)",
                l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples
            );
        }
        if let (Some(per), Some(total)) = (self.rss_kib_per_connection, self.rss_kib_total) {
            println!("  server RSS grew {total} KiB: {per:.1} KiB per connection");
        }
    }
}

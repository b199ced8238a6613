//! What a run counts: shared atomic counters, per-connection latency histograms merged
//! at the end, and the summary printed (and given as one JSON line).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

#[derive(Default)]
pub struct Stats {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub received: AtomicU64,
    pub errors: AtomicU64,
    /// Connections still in their sending phase: a drain waits for none to be left, so
    /// that a send made just after the run's end is counted before the drain decides.
    pub sending: AtomicU64,
    /// Latencies per period of the run, when asked for (soak: per minute; `--p99-every`).
    pub periods: Option<Periods>,
}

/// One latency histogram per period (`every`) since `start`.
pub struct Periods {
    start: Instant,
    every: Duration,
    hists: Mutex<Vec<Histogram<u64>>>,
}

impl Periods {
    pub fn new(every: Duration) -> Periods {
        Periods {
            start: Instant::now(),
            every: every.max(Duration::from_millis(1)),
            hists: Mutex::new(Vec::new()),
        }
    }

    pub fn record(&self, micros: u64) {
        let period = (self.start.elapsed().as_nanos() / self.every.as_nanos()) as usize;
        let mut hists = self.hists.lock().expect("no recorder panics");
        while hists.len() <= period {
            hists.push(histogram());
        }
        let _ = hists[period].record(micros);
    }

    /// Each period's (samples, p99 in ms), in order.
    pub fn p99s(&self) -> Vec<(u64, f64)> {
        let hists = self.hists.lock().expect("no recorder panics");
        hists
            .iter()
            .map(|h| (h.len(), h.value_at_quantile(0.99) as f64 / 1000.0))
            .collect()
    }
}

/// CPU time process `pid` ("self": this one) has used, all its threads, from /proc.
pub fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the 3rd field,
    // utime and stime the 14th and 15th, in clock ticks (100 per second on Linux).
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ').skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The generator's CPU over a phase: started with [`CpuClock::start`], read with
/// [`CpuClock::percent`] as a percentage of one core.
pub struct CpuClock {
    pid: String,
    cpu: Option<f64>,
    wall: Instant,
}

impl CpuClock {
    /// This process's clock.
    pub fn start() -> CpuClock {
        CpuClock::of("self".into())
    }

    /// Process `pid`'s clock (`"self"`: this one).
    pub fn of(pid: String) -> CpuClock {
        CpuClock {
            cpu: cpu_secs(&pid),
            pid,
            wall: Instant::now(),
        }
    }

    pub fn percent(&self) -> Option<f64> {
        let used = cpu_secs(&self.pid)? - self.cpu?;
        Some(100.0 * used / self.wall.elapsed().as_secs_f64().max(1e-9))
    }
}

/// Below this share of its core, the generator was not what limited a run.
pub const GENERATOR_CPU_LIMIT_PCT: f64 = 90.0;

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Whether nothing is in flight any more: every connection has stopped sending, every
    /// message sent is acked or failed, and every acked one pushed `fanout` times.
    pub fn settled(&self, fanout: u64) -> bool {
        Stats::get(&self.sending) == 0
            && Stats::get(&self.acked) + Stats::get(&self.errors) >= Stats::get(&self.sent)
            && Stats::get(&self.received) >= Stats::get(&self.acked) * fanout
    }
}

/// Counts one connection in [`Stats::sending`] until its sending phase ends or it is dropped.
pub struct Sending<'a>(Option<&'a AtomicU64>);

impl<'a> Sending<'a> {
    pub fn start(stats: &'a Stats, sends: bool) -> Sending<'a> {
        sends.then(|| Stats::add(&stats.sending, 1));
        Sending(sends.then_some(&stats.sending))
    }

    pub fn end(&mut self) {
        if let Some(c) = self.0.take() {
            c.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        self.end();
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
    /// The load generator's own CPU over the run, in percent of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator_cpu_pct: Option<f64>,
    /// The server's CPU over the run (with --server-pid), in percent of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_pct: Option<f64>,
    /// With `--p99-every`: each period's p99 in ms, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub p99_ms_per_period: Vec<f64>,
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
            generator_cpu_pct: None,
            server_cpu_pct: None,
            p99_ms_per_period: Vec::new(),
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
        if let Some(cpu) = self.generator_cpu_pct {
            let verdict = if cpu < GENERATOR_CPU_LIMIT_PCT {
                "below 90%: the generator was not the limit"
            } else {
                "AT OR ABOVE 90%: the generator may have been the limit; use more cores"
            };
            println!("  generator CPU {cpu:.0}% of one core ({verdict})");
        }
        if !self.p99_ms_per_period.is_empty() {
            let each: Vec<String> = self
                .p99_ms_per_period
                .iter()
                .map(|p| format!("{p:.1}"))
                .collect();
            println!("  p99 per period, ms: {}", each.join(" "));
        }
        if let Some(cpu) = self.server_cpu_pct.filter(|c| *c > 0.0) {
            println!(
                "  server CPU {cpu:.0}%: {:.0} msgs/s and {:.0} deliveries/s per second of server CPU",
                self.msgs_per_sec * 100.0 / cpu,
                self.deliveries_per_sec * 100.0 / cpu
            );
        }
    }
}

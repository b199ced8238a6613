//! `soak`: a long open-loop run with connections coming and going, which reports the p99
//! of each minute, the server's memory and disk writes over the run, and accounts for
//! every message: each one sent is acked, each acked one is pushed to its receiver, and
//! (where the server's /metrics answers) each acked one is stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use shopchat::ids::UserId;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client;
use crate::stats::{histogram, CpuClock, Periods, Stats, Summary};
use crate::Bench;

pub struct Soak {
    pub minutes: f64,
    pub rate: f64,
    pub pairs: usize,
    pub churn: f64,
    pub pid: Option<u32>,
    /// The server's SQLite file, to report the space the run's rows take.
    pub db_file: Option<std::path::PathBuf>,
}

/// Distinct users the churning connections take in turn (one connection each at a time).
const CHURN_USERS: i64 = 1000;

#[derive(Default)]
struct Churn {
    connects: AtomicU64,
    failures: AtomicU64,
}

pub async fn run(bench: &Bench<'_>, soak: Soak) -> anyhow::Result<Summary> {
    anyhow::ensure!(soak.pairs > 0 && soak.rate > 0.0, "need pairs and a rate");
    let base = bench.cli.uid_base;
    let stable: Vec<i64> = (0..soak.pairs as i64 * 2).map(|i| base + i).collect();
    let churn_base = base + stable.len() as i64;
    let stored_before = stored_total(bench).await;
    let io_before = soak.pid.and_then(write_bytes);
    let rss_idle = soak.pid.and_then(shopchat::metrics::rss_kib);
    let db_before = soak.db_file.as_deref().map(db_bytes);

    let conns = bench.connect_all(&stable).await?;
    // The run's start: its connections open.
    let rss_start = soak.pid.map(crate::rss_kib).transpose()?;
    let stats = Arc::new(Stats {
        periods: Some(Periods::new(Duration::from_secs(60))),
        ..Stats::default()
    });
    let duration = Duration::from_secs_f64(soak.minutes * 60.0);
    let started = Instant::now();
    let until = started + duration;
    let cpu = CpuClock::start();
    let server_cpu = soak.pid.map(|p| CpuClock::of(p.to_string()));
    let every = Duration::from_secs_f64(stable.len() as f64 / soak.rate);
    let (done_tx, done_rx) = watch::channel(false);
    let tasks: Vec<_> = bench
        .pair_plans(conns, &stable, Some(every), until)
        .into_iter()
        .map(|(ws, plan)| tokio::spawn(client::drive(ws, plan, stats.clone(), done_rx.clone())))
        .collect();

    // Churn: connect, send one message to a pair's member, wait for its ack, leave.
    let churn = Arc::new(Churn::default());
    let churner = {
        let (churn, stats) = (churn.clone(), stats.clone());
        let url = bench.cli.url.clone();
        let tokens: Vec<String> = (0..CHURN_USERS)
            .map(|i| bench.auth.mint(UserId(churn_base + i)))
            .collect();
        let stable = stable.clone();
        // No churn at all with --churn 0; the run's end is never waited past.
        let period = (soak.churn > 0.0).then(|| Duration::from_secs_f64(1.0 / soak.churn));
        tokio::spawn(async move {
            let mut tick = period.map(tokio::time::interval);
            let mut visits = tokio::task::JoinSet::new();
            let mut i = 0usize;
            while let Some(tick) = tick.as_mut() {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tokio::time::sleep_until(until) => break,
                }
                if Instant::now() >= until {
                    break;
                }
                let token = tokens[i % tokens.len()].clone();
                let to = stable[i % stable.len()];
                let (churn, stats, url) = (churn.clone(), stats.clone(), url.clone());
                visits.spawn(async move {
                    churn.connects.fetch_add(1, Ordering::Relaxed);
                    if !one_visit(&url, &token, to, &stats).await {
                        churn.failures.fetch_add(1, Ordering::Relaxed);
                    }
                });
                // Forget the visits that are over.
                while visits.try_join_next().is_some() {}
                i += 1;
            }
            // Every visit is over (its message acked or failed) before the drain.
            while visits.join_next().await.is_some() {}
        })
    };

    // A line a minute: what has happened, and the server's memory.
    let mut rss_by_minute = Vec::new();
    let mut minute = 0u64;
    while Instant::now() < until {
        let next = (started + Duration::from_secs(60 * (minute + 1))).min(until);
        tokio::time::sleep_until(next).await;
        minute += 1;
        let rss = soak.pid.and_then(shopchat::metrics::rss_kib);
        rss_by_minute.push(rss);
        let p99 = stats
            .periods
            .as_ref()
            .and_then(|m| m.p99s().get(minute as usize - 1).copied());
        println!(
            "minute {minute}: sent {} acked {} received {} errors {}  p99 {:.2} ms  RSS {} KiB  churn {}",
            Stats::get(&stats.sent),
            Stats::get(&stats.acked),
            Stats::get(&stats.received),
            Stats::get(&stats.errors),
            p99.map_or(0.0, |p| p.1),
            rss.map_or("?".into(), |r| r.to_string()),
            churn.connects.load(Ordering::Relaxed),
        );
    }
    let elapsed = started.elapsed();
    let generator_cpu_pct = cpu.percent();
    let server_cpu_pct = server_cpu.and_then(|c| c.percent());
    let _ = churner.await;
    // Let acks and pushes in flight arrive (and the churners finish their visits).
    let drain_until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < drain_until {
        if stats.settled(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = done_tx.send(true);
    let mut latency = histogram();
    for t in tasks {
        latency.add(&t.await?)?;
    }
    let rss_end = soak.pid.map(crate::rss_kib).transpose()?;
    let io_after = soak.pid.and_then(write_bytes);
    let stored_after = stored_total(bench).await;

    let acked = Stats::get(&stats.acked);
    let mut summary = Summary::new("soak", stable.len(), elapsed, &stats, acked, &latency);
    summary.generator_cpu_pct = generator_cpu_pct;
    summary.server_cpu_pct = server_cpu_pct;
    println!("soak: p99 per minute (ms):");
    for (i, (samples, p99)) in stats
        .periods
        .as_ref()
        .map(Periods::p99s)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        println!("  minute {:>2}: {p99:>7.2}  ({samples} samples)", i + 1);
    }
    if let (Some(a), Some(b)) = (rss_start, rss_end) {
        let change = |from: u64| 100.0 * (b as f64 - from as f64) / from.max(1) as f64;
        let first = rss_by_minute.first().copied().flatten();
        println!(
            "  server RSS: {} KiB before connecting, {a} KiB at start (connected), {} KiB after minute 1, {b} KiB at end: {:+.1}% from the start, {}",
            rss_idle.map_or("?".into(), |r| r.to_string()),
            first.map_or("?".into(), |f| f.to_string()),
            change(a),
            first.map_or(String::new(), |f| format!("{:+.1}% from minute 1", change(f))),
        );
    }
    if let (Some(a), Some(path)) = (db_before, soak.db_file.as_deref()) {
        let b = db_bytes(path);
        println!(
            "  database file and log: {:.1} MiB before, {:.1} MiB after ({:.0} bytes per message)",
            a as f64 / 1048576.0,
            b as f64 / 1048576.0,
            (b.saturating_sub(a)) as f64 / acked.max(1) as f64
        );
    }
    if let (Some(a), Some(b)) = (io_before, io_after) {
        println!(
            "  server wrote {:.1} MiB to disk ({acked} messages stored)",
            (b - a) as f64 / (1024.0 * 1024.0)
        );
    }
    let connects = churn.connects.load(Ordering::Relaxed);
    let failures = churn.failures.load(Ordering::Relaxed);
    println!("  churn: {connects} connections opened and closed, {failures} failed");
    let sent = Stats::get(&stats.sent);
    let received = Stats::get(&stats.received);
    let errors = Stats::get(&stats.errors);
    let stored = match (stored_before, stored_after) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let lost = sent.saturating_sub(acked + errors) + acked.saturating_sub(received);
    println!(
        "  accounted: sent {sent}, acked {acked}, errors {errors}, pushed {received} of {acked}, stored {}: {}",
        stored.map_or("? (no /metrics)".into(), |s| s.to_string()),
        if lost == 0 && errors == 0 && failures == 0 && stored.is_none_or(|s| s == acked) {
            "every message accounted for".to_string()
        } else {
            format!("NOT ALL ACCOUNTED FOR ({lost} unaccounted)")
        }
    );
    Ok(summary)
}

/// One churning connection: connect, send one message to `to`, wait for its ack, close.
/// Counts the message in `stats` like any other (its push reaches `to`'s connection).
async fn one_visit(url: &str, token: &str, to: i64, stats: &Stats) -> bool {
    let Ok(mut ws) = client::connect(url, token).await else {
        return false;
    };
    let frame = json!({"class": "chat", "action": "sendMsg", "content": {
        "chat_type": 1, "msg_type": 1, "to_uid": to,
        "msg": format!("bench:{}", crate::stats::now_micros()),
    }});
    if ws.send(Message::text(frame.to_string())).await.is_err() {
        return false;
    }
    Stats::add(&stats.sent, 1);
    let acked = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                match v["code"].as_i64() {
                    Some(1) => return true,
                    Some(200..) => continue,
                    _ => return false,
                }
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    Stats::add(if acked { &stats.acked } else { &stats.errors }, 1);
    let _ = ws.close(None).await;
    acked
}

/// The size of a SQLite file with its write-ahead log.
fn db_bytes(path: &std::path::Path) -> u64 {
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    size(path) + size(std::path::Path::new(&wal))
}

/// Bytes the process `pid` has caused to be written to storage (/proc/PID/io).
fn write_bytes(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The server's `shopchat_messages_stored_total`, summed over chat types, if its
/// /metrics answers on the public port.
async fn stored_total(bench: &Bench<'_>) -> Option<u64> {
    let text = bench
        .http
        .get(format!("{}/metrics", bench.http_base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("shopchat_messages_stored_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    Some(total as u64)
}

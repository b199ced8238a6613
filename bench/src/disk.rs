//! `shopchat-bench disk`: how long the disk takes to make a small write durable, the
//! way SQLite commits a batch with `sqlite_synchronous = "full"` (append a few pages to
//! the log, then sync it). Every ack waits for one such sync, so its tail is a floor
//! under the tail of shopchat's latency on that disk. No server is needed.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;

/// Syncs slower than this count as stalls (the p99 the issue asks of a message).
const STALL: Duration = Duration::from_millis(6);

/// The file is reused from its start past this size, as SQLite reuses its log.
const WRAP_AT: u64 = 64 << 20;

/// What one run measured.
pub struct DiskReport {
    pub syncs: u64,
    pub latency: Histogram<u64>,
    /// Syncs over [`STALL`], and the time spent in them.
    pub stalls: u64,
    pub stalled: Duration,
    pub elapsed: Duration,
}

/// Appends `kib` KiB and syncs, in a loop for `seconds`, in a scratch file in `dir`
/// (removed after), pausing `pause_ms` between syncs (0: back to back).
pub fn measure(dir: &Path, kib: usize, seconds: f64, pause_ms: f64) -> anyhow::Result<DiskReport> {
    let path = dir.join(format!(".shopchat-bench-disk-{}", std::process::id()));
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let block: Vec<u8> = (0..kib.max(1) * 1024)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut syncs, mut stalls, mut stalled) = (0, 0, Duration::ZERO);
    let mut offset = 0u64;
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let result = (|| -> anyhow::Result<()> {
        while Instant::now() < until {
            file.write_all_at(&block, offset)?;
            offset = (offset + block.len() as u64) % WRAP_AT;
            let t = Instant::now();
            file.sync_data()?;
            let took = t.elapsed();
            latency.record((took.as_micros() as u64).max(1))?;
            syncs += 1;
            if took > STALL {
                stalls += 1;
                stalled += took;
            }
            if pause_ms > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(pause_ms / 1000.0));
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    result?;
    Ok(DiskReport {
        syncs,
        latency,
        stalls,
        stalled,
        elapsed: started.elapsed(),
    })
}

pub fn run(dir: &Path, kib: usize, seconds: f64, pause_ms: f64) -> anyhow::Result<()> {
    let r = measure(dir, kib, seconds, pause_ms)?;
    let ms = |q: f64| r.latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "disk: {} KiB written then synced (fdatasync), {} times in {:.1} s, in {}",
        kib,
        r.syncs,
        r.elapsed.as_secs_f64(),
        dir.display()
    );
    println!(
        "  sync p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        r.latency.max() as f64 / 1000.0
    );
    println!(
        "  {} syncs over {} ms, {:.0} ms in them: {:.2}% of the run",
        r.stalls,
        STALL.as_millis(),
        r.stalled.as_secs_f64() * 1000.0,
        100.0 * r.stalled.as_secs_f64() / r.elapsed.as_secs_f64().max(1e-9)
    );
    println!(
        "  (a message that arrives during a stall waits it out: where stalls take more than 1% \
         of the time, no server that syncs before it acks has a p99 under them on this disk)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_syncs_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let r = measure(dir.path(), 16, 0.3, 0.0).unwrap();
        assert!(r.syncs > 0);
        assert_eq!(r.latency.len(), r.syncs);
        assert!(r.stalls <= r.syncs);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

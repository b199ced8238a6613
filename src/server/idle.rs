//! Idle timeouts without a timer per connection: each session stamps a shared
//! [`LastSeen`] on every frame it receives, and ChatServer sweeps its registry a few
//! times per timeout, closing connections silent for longer than
//! `server.client_timeout_secs`. One interval for the whole server instead of one per
//! socket: a timer per session cost about 0.6 KiB of each idle connection (BENCHMARKS.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// When a connection last sent anything (milliseconds on a process-wide clock).
#[derive(Clone, Debug)]
pub struct LastSeen(Arc<AtomicU64>);

fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl LastSeen {
    /// Seen now.
    pub fn new() -> LastSeen {
        LastSeen(Arc::new(AtomicU64::new(now_ms())))
    }

    pub fn touch(&self) {
        self.0.store(now_ms(), Ordering::Relaxed);
    }

    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

impl Default for LastSeen {
    fn default() -> LastSeen {
        LastSeen::new()
    }
}

/// How often to sweep for a timeout: a quarter of it, between 50 ms and 5 s.
pub fn sweep_every(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_grows_until_touched() {
        let seen = LastSeen::new();
        std::thread::sleep(Duration::from_millis(30));
        assert!(seen.idle_for() >= Duration::from_millis(30));
        seen.touch();
        assert!(seen.idle_for() < Duration::from_millis(30));
        assert_eq!(
            sweep_every(Duration::from_secs(120)),
            Duration::from_secs(5)
        );
        assert_eq!(
            sweep_every(Duration::from_millis(100)),
            Duration::from_millis(50)
        );
    }
}

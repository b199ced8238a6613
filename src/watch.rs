//! What a connection's session and the rest of the server both watch of it, in one
//! shared allocation: when the client last sent anything (for the idle sweep), how many
//! bytes of replies and pushes wait in the server for its socket (for the backlog
//! bound), whether it sent an oversized frame header, and whether it is gone (so its
//! queued reads are skipped, never its sends).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Inner {
    /// Milliseconds on a process-wide clock.
    seen_ms: AtomicU64,
    /// Bytes on their way to the socket and not yet written to it by the session: pushes
    /// in its mailbox, replies held for request order.
    backlog: AtomicUsize,
    gone: AtomicBool,
    oversize: AtomicBool,
}

/// One connection's shared state; cheap to clone.
#[derive(Clone, Debug)]
pub struct Watch(Arc<Inner>);

fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// The bytes a server-to-client WebSocket frame of `payload` bytes takes on the wire.
pub fn frame_len(payload: usize) -> usize {
    payload
        + match payload {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        }
}

impl Watch {
    /// Seen now, nothing waiting.
    pub fn new() -> Watch {
        let w = Watch(Arc::default());
        w.touch();
        w
    }

    pub fn touch(&self) {
        self.0.seen_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.0.seen_ms.load(Ordering::Relaxed)))
    }

    /// Bytes waiting to reach the socket.
    pub fn backlog(&self) -> usize {
        self.0.backlog.load(Ordering::Relaxed)
    }

    /// Counts `bytes` more on their way to the socket.
    pub fn queued(&self, bytes: usize) {
        self.0.backlog.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` as gone from the backlog (written, or never sent after all).
    pub fn drained(&self, bytes: usize) {
        let _ = self
            .0
            .backlog
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(bytes))
            });
    }

    pub fn set_gone(&self) {
        self.0.gone.store(true, Ordering::Relaxed);
    }

    /// The connection has closed: nobody waits for its reads any more.
    pub fn is_gone(&self) -> bool {
        self.0.gone.load(Ordering::Relaxed)
    }

    /// Set by the payload guard: a frame header declared more than the limit.
    pub fn set_oversize(&self) {
        self.0.oversize.store(true, Ordering::Relaxed);
    }

    pub fn is_oversize(&self) -> bool {
        self.0.oversize.load(Ordering::Relaxed)
    }
}

impl Default for Watch {
    fn default() -> Watch {
        Watch::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_grows_until_touched() {
        let w = Watch::new();
        std::thread::sleep(Duration::from_millis(30));
        assert!(w.idle_for() >= Duration::from_millis(30));
        w.touch();
        assert!(w.idle_for() < Duration::from_millis(30));
    }

    #[test]
    fn backlog_counts_up_and_down_but_never_below_zero() {
        let w = Watch::new();
        w.queued(frame_len(10));
        assert_eq!(w.backlog(), 12);
        w.queued(frame_len(200));
        assert_eq!(w.backlog(), 12 + 204);
        w.drained(500);
        assert_eq!(w.backlog(), 0);
        assert_eq!(frame_len(70_000), 70_010);
        assert!(!w.is_gone());
        w.clone().set_gone();
        assert!(w.is_gone());
    }
}

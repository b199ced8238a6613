//! Idle timeouts without a timer per connection: each session stamps its shared
//! [`crate::watch::Watch`] on every frame it receives, and ChatServer sweeps its registry a few
//! times per timeout, closing connections silent for longer than
//! `server.client_timeout_secs`. One interval for the whole server instead of one per
//! socket: a timer per session cost about 0.6 KiB of each idle connection (BENCHMARKS.md).

use std::time::Duration;

/// How often to sweep for a timeout: a quarter of it, between 50 ms and 5 s.
pub fn sweep_every(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_a_few_times_per_timeout() {
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

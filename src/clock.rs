//! The wall clock, in the unix seconds that messages, tokens and cursors are stamped with.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// 0: the system clock. Otherwise the time a test has set, which moves only when the
/// test moves it.
static SET: AtomicI64 = AtomicI64::new(0);

/// Seconds since the unix epoch (0 if the system clock is before it).
pub fn unix_now() -> u64 {
    let set = SET.load(Ordering::Relaxed);
    if set > 0 {
        return set as u64;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Stops this process's clock at the present second, for tests of what takes minutes or
/// must be measured exactly (auto-resolve, the shop's numbers, rating windows). Every
/// caller in the process sees it, so a test binary that uses it keeps those tests in a
/// file of their own, run one at a time.
#[doc(hidden)]
pub fn stop_for_tests() {
    let now = unix_now() as i64;
    let _ = SET.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
}

/// Moves a stopped clock forward by `secs`.
#[doc(hidden)]
pub fn advance_for_tests(secs: i64) {
    stop_for_tests();
    SET.fetch_add(secs, Ordering::Relaxed);
}

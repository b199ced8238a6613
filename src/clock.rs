//! The wall clock, in the unix seconds that messages, tokens and cursors are stamped with.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds added to the system clock: 0 but in tests that move time forward.
static SHIFT: AtomicI64 = AtomicI64::new(0);

/// Seconds since the unix epoch (0 if the system clock is before it).
pub fn unix_now() -> u64 {
    let real = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    real.saturating_add_signed(SHIFT.load(Ordering::Relaxed))
}

/// Moves this process's clock forward by `secs`, for tests of what takes minutes (the
/// shop's numbers, auto-resolve, rating windows). Every caller in the process sees it,
/// so a test binary that uses it keeps its tests in one file of their own.
#[doc(hidden)]
pub fn advance_for_tests(secs: i64) {
    SHIFT.fetch_add(secs, Ordering::Relaxed);
}

//! The wall clock, in the unix seconds that messages, tokens and cursors are stamped with.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the unix epoch (0 if the system clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

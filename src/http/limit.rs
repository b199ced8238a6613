//! Per-key rate limits of the HTTP side (per client address for logins, per user for
//! uploads): a governor keyed limiter whose table is pruned before it grows large.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::Duration;

/// Keys a limiter remembers before it drops those back at a full bucket.
const PRUNE_ABOVE: usize = 100_000;

/// At most `count` units per `period` for each key, in one burst or spread out.
pub struct KeyedLimit<K: Hash + Eq + Clone> {
    limiter: governor::DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> KeyedLimit<K> {
    /// `None` when `count` is 0: unlimited.
    pub fn new(count: u64, period: Duration) -> Option<KeyedLimit<K>> {
        let n = NonZeroU32::new(u32::try_from(count).unwrap_or(u32::MAX))?;
        let quota = governor::Quota::with_period(period / n.get())?.allow_burst(n);
        Some(KeyedLimit {
            limiter: governor::RateLimiter::keyed(quota),
        })
    }

    /// Takes `cost` units (at least 1) for `key`, if it has them.
    pub fn allows(&self, key: &K, cost: u32) -> bool {
        if self.limiter.len() > PRUNE_ABOVE {
            self.limiter.retain_recent();
        }
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        self.limiter.check_key_n(key, cost).is_ok_and(|r| r.is_ok())
    }
}

/// `limit.allows(key, cost)`, or true when there is no limit.
pub fn within<K: Hash + Eq + Clone>(limit: &Option<KeyedLimit<K>>, key: &K, cost: u32) -> bool {
    limit.as_ref().is_none_or(|l| l.allows(key, cost))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_has_its_own_budget() {
        let l = KeyedLimit::new(3, Duration::from_secs(60)).unwrap();
        assert!(l.allows(&1, 2));
        assert!(l.allows(&1, 1));
        assert!(!l.allows(&1, 1));
        assert!(l.allows(&2, 3), "another key is not affected");
        assert!(!l.allows(&3, 4), "more than the whole budget never passes");
        assert!(KeyedLimit::<i64>::new(0, Duration::from_secs(1)).is_none());
        assert!(within(&None::<KeyedLimit<i64>>, &1, 100));
    }
}

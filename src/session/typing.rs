//! The typing gate of one connection (PROTOCOL.md §11): a typing signal goes on at most
//! once per 2 s per chat (leading edge), under a budget of its own so that a typist
//! never spends the budget of its sends. What the gate holds back is answered code 1
//! and dropped, as the protocol says.

use std::time::{Duration, Instant};

/// One signal per chat per this long.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);
/// The typing budget: signals a second, and the burst.
const PER_SEC: u32 = 10;
const BURST: u32 = 20;
/// The chats whose last signal a connection remembers (the oldest is forgotten).
const MAX_CHATS: usize = 8;

pub struct TypingGate {
    limiter: super::Limiter,
    /// (chat_id, when its last signal went on), oldest first.
    last: Vec<(String, Instant)>,
}

impl TypingGate {
    pub fn new() -> TypingGate {
        TypingGate {
            limiter: super::limiter(PER_SEC, BURST).expect("the typing rate is not zero"),
            last: Vec::new(),
        }
    }

    /// Whether a signal for `chat_id` goes on now.
    pub fn admit(&mut self, chat_id: &str, now: Instant) -> bool {
        if self.limiter.check().is_err() {
            return false;
        }
        if let Some(i) = self.last.iter().position(|(c, _)| c == chat_id) {
            if now.duration_since(self.last[i].1) < TYPING_EVERY {
                return false;
            }
            self.last.remove(i);
        }
        if self.last.len() >= MAX_CHATS {
            self.last.remove(0);
        }
        self.last.push((chat_id.to_string(), now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_signal_per_chat_every_two_seconds_leading_edge() {
        let mut gate = TypingGate::new();
        let t0 = Instant::now();
        assert!(gate.admit("7_12", t0));
        assert!(!gate.admit("7_12", t0 + Duration::from_millis(1999)));
        assert!(
            gate.admit("group_3", t0 + Duration::from_millis(10)),
            "chats are apart"
        );
        assert!(gate.admit("7_12", t0 + Duration::from_millis(2000)));
    }

    #[test]
    fn the_budget_caps_signals_across_chats_and_the_memory_is_bounded() {
        let mut gate = TypingGate::new();
        let t0 = Instant::now();
        let passed = (0..100)
            .filter(|i| gate.admit(&format!("{i}_1000"), t0))
            .count();
        assert_eq!(passed, BURST as usize);
        assert!(gate.last.len() <= MAX_CHATS);
    }
}

//! A shop's customer-service numbers (PROTOCOL.md §10, admin stats), from its sessions:
//! percentiles are nearest-rank, averages are rounded to 2 decimals, first response runs
//! from the session's first consumer message to its first agent message that is not an
//! auto reply, and a session counts for the agent who had it last (at resolution).

use serde::Serialize;

use crate::ids::UserId;

/// What the numbers need of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SessionFacts {
    /// Who has it (or had it when it resolved); 0 while it waits.
    pub agent: UserId,
    pub started_at: i64,
    /// The consumer's first message; 0 when an agent started the session.
    pub first_msg_at: i64,
    /// The first agent message that is not an auto reply; 0 if none yet.
    pub first_response_at: i64,
    pub resolved_at: i64,
    /// 1-5; 0 = not rated.
    pub rating: i32,
}

impl SessionFacts {
    fn first_response(&self) -> Option<i64> {
        (self.first_msg_at > 0 && self.first_response_at > 0)
            .then(|| (self.first_response_at - self.first_msg_at).max(0))
    }

    fn resolution(&self) -> Option<i64> {
        (self.resolved_at > 0).then(|| (self.resolved_at - self.started_at).max(0))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<i64>,
    pub p90: Option<i64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RatingSummary {
    pub count: usize,
    pub avg: Option<f64>,
}

/// An agent's share of the numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AgentFigures {
    pub sessions: usize,
    pub first_response_p50: Option<i64>,
    pub rating_avg: Option<f64>,
}

/// The nearest-rank percentile `p` (0-100) of `values`: the smallest value with at
/// least p% of the values at or below it.
pub fn nearest_rank(values: &mut [i64], p: u32) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = (u64::from(p) * values.len() as u64).div_ceil(100).max(1) as usize;
    values.get(rank - 1).copied()
}

/// The mean rounded to 2 decimals.
pub fn average(values: &[i32]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let sum: i64 = values.iter().map(|v| i64::from(*v)).sum();
    Some((sum as f64 / values.len() as f64 * 100.0).round() / 100.0)
}

fn percentiles(mut values: Vec<i64>) -> Percentiles {
    Percentiles {
        p50: nearest_rank(&mut values, 50),
        p90: nearest_rank(&mut values, 90),
    }
}

pub fn first_response(sessions: &[SessionFacts]) -> Percentiles {
    percentiles(sessions.iter().filter_map(|s| s.first_response()).collect())
}

pub fn resolution(sessions: &[SessionFacts]) -> Percentiles {
    percentiles(sessions.iter().filter_map(|s| s.resolution()).collect())
}

pub fn ratings(sessions: &[SessionFacts]) -> RatingSummary {
    let scores: Vec<i32> = sessions
        .iter()
        .filter(|s| s.rating > 0)
        .map(|s| s.rating)
        .collect();
    RatingSummary {
        count: scores.len(),
        avg: average(&scores),
    }
}

/// `agent`'s figures over `sessions`.
pub fn agent(sessions: &[SessionFacts], agent: UserId) -> AgentFigures {
    let mine: Vec<SessionFacts> = sessions
        .iter()
        .filter(|s| s.agent == agent)
        .copied()
        .collect();
    let mut firsts: Vec<i64> = mine.iter().filter_map(|s| s.first_response()).collect();
    AgentFigures {
        sessions: mine.len(),
        first_response_p50: nearest_rank(&mut firsts, 50),
        rating_avg: ratings(&mine).avg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(nearest_rank(&mut [], 50), None);
        assert_eq!(nearest_rank(&mut [7], 90), Some(7));
        let mut v = vec![40, 10, 30, 20];
        assert_eq!(nearest_rank(&mut v, 50), Some(20));
        assert_eq!(nearest_rank(&mut v, 90), Some(40));
        let mut ten: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(nearest_rank(&mut ten, 50), Some(5));
        assert_eq!(nearest_rank(&mut ten, 90), Some(9));
        assert_eq!(nearest_rank(&mut ten, 100), Some(10));
    }

    #[test]
    fn averages_round_to_two_decimals() {
        assert_eq!(average(&[]), None);
        assert_eq!(average(&[5, 4, 4]), Some(4.33));
        assert_eq!(average(&[1, 2]), Some(1.5));
    }

    #[test]
    fn sessions_count_for_their_last_agent_and_only_measured_spans_count() {
        let a = UserId(100);
        let b = UserId(101);
        let s = |agent, started, first, response, resolved, rating| SessionFacts {
            agent,
            started_at: started,
            first_msg_at: first,
            first_response_at: response,
            resolved_at: resolved,
            rating,
        };
        // (agent, started, first consumer message, first response, resolved, rating)
        let sessions = [
            s(a, 0, 1, 11, 100, 5),
            s(a, 0, 1, 31, 0, 0),
            s(b, 0, 1, 0, 50, 3),
            s(b, 0, 1, 21, 0, 0),
            // Started by the agent: no first response figure.
            s(b, 0, 0, 9, 0, 4),
        ];
        assert_eq!(
            first_response(&sessions),
            Percentiles {
                p50: Some(20),
                p90: Some(30)
            }
        );
        assert_eq!(
            resolution(&sessions),
            Percentiles {
                p50: Some(50),
                p90: Some(100)
            }
        );
        assert_eq!(
            ratings(&sessions),
            RatingSummary {
                count: 3,
                avg: Some(4.0)
            }
        );
        assert_eq!(
            agent(&sessions, a),
            AgentFigures {
                sessions: 2,
                first_response_p50: Some(10),
                rating_avg: Some(5.0)
            }
        );
        assert_eq!(
            agent(&sessions, b),
            AgentFigures {
                sessions: 3,
                first_response_p50: Some(20),
                rating_avg: Some(3.5)
            }
        );
    }
}

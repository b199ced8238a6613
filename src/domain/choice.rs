//! The customer-service routing rule (PROTOCOL.md §5), in one pure function so it
//! reads in one place and is tested without actors.

use rand::Rng;

use crate::ids::UserId;

/// A routable agent (online flag on and at least one live connection) and its load:
/// the conversations it serves that are still open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub agent: UserId,
    pub load: usize,
}

/// Who gets a consumer's message: the conversation's assigned agent if it is routable
/// ("sticky"); otherwise a uniformly random routable agent, preferring those under
/// `capacity` (0 = unlimited) and, when all are at or over it, the least loaded.
/// `None` when nobody is routable: the conversation waits.
pub fn choose_agent(
    assigned: Option<UserId>,
    candidates: &[Candidate],
    capacity: usize,
    rng: &mut impl Rng,
) -> Option<UserId> {
    if let Some(a) = assigned.filter(|a| candidates.iter().any(|c| c.agent == *a)) {
        return Some(a);
    }
    let pool: Vec<UserId> = if capacity == 0 {
        candidates.iter().map(|c| c.agent).collect()
    } else {
        let under: Vec<UserId> = candidates
            .iter()
            .filter(|c| c.load < capacity)
            .map(|c| c.agent)
            .collect();
        if under.is_empty() {
            let least = candidates.iter().map(|c| c.load).min()?;
            candidates
                .iter()
                .filter(|c| c.load == least)
                .map(|c| c.agent)
                .collect()
        } else {
            under
        }
    };
    if pool.is_empty() {
        return None;
    }
    Some(pool[rng.gen_range(0..pool.len())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn c(agent: i64, load: usize) -> Candidate {
        Candidate {
            agent: UserId(agent),
            load,
        }
    }

    #[test]
    fn sticky_when_the_assigned_agent_is_routable() {
        let mut rng = StdRng::seed_from_u64(1);
        let cands = [c(1, 50), c(2, 0), c(3, 0)];
        for _ in 0..100 {
            assert_eq!(
                choose_agent(Some(UserId(1)), &cands, 5, &mut rng),
                Some(UserId(1)),
                "even over capacity"
            );
        }
    }

    #[test]
    fn not_routable_assigned_agent_falls_back_to_random() {
        let mut rng = StdRng::seed_from_u64(2);
        let cands = [c(2, 0), c(3, 0)];
        let mut seen = [0; 4];
        for _ in 0..200 {
            let a = choose_agent(Some(UserId(1)), &cands, 0, &mut rng).unwrap();
            seen[a.0 as usize] += 1;
        }
        assert_eq!(seen[1], 0);
        assert!(seen[2] > 50 && seen[3] > 50, "{seen:?}");
    }

    #[test]
    fn nobody_routable_means_waiting() {
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(choose_agent(Some(UserId(1)), &[], 0, &mut rng), None);
        assert_eq!(choose_agent(None, &[], 3, &mut rng), None);
    }

    #[test]
    fn capacity_prefers_agents_under_it_then_the_least_loaded() {
        let mut rng = StdRng::seed_from_u64(4);
        let cands = [c(1, 3), c(2, 1), c(3, 2)];
        for _ in 0..100 {
            let a = choose_agent(None, &cands, 3, &mut rng).unwrap();
            assert!(a == UserId(2) || a == UserId(3), "agent 1 is full");
        }
        let full = [c(1, 5), c(2, 4), c(3, 4)];
        for _ in 0..100 {
            let a = choose_agent(None, &full, 3, &mut rng).unwrap();
            assert!(
                a == UserId(2) || a == UserId(3),
                "least loaded when everyone is full"
            );
        }
    }

    #[test]
    fn unlimited_capacity_is_uniform() {
        let mut rng = StdRng::seed_from_u64(5);
        let cands = [c(1, 100), c(2, 0), c(3, 7)];
        let mut seen = [0usize; 4];
        let n = 30_000;
        for _ in 0..n {
            seen[choose_agent(None, &cands, 0, &mut rng).unwrap().0 as usize] += 1;
        }
        let expected = n as f64 / 3.0;
        let chi2: f64 = seen[1..]
            .iter()
            .map(|&o| (o as f64 - expected).powi(2) / expected)
            .sum();
        // 2 degrees of freedom: p = 0.001 at 13.8.
        assert!(chi2 < 13.8, "chi-square {chi2} for {seen:?}");
    }
}

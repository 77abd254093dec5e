//! Background jobs: the one backoff every retry waits by. The durable queue itself is
//! [`crate::store::jobs`]; a committed [`crate::store::UnitOfWork`] wakes its workers.

use std::time::Duration;

use rand::Rng;

/// How long to wait after the n-th failure in a row: a base wait that grows per failure
/// up to a cap, then ±20 % jitter so many waiters (mailboxes on one server, receivers
/// coming back) do not retry in lockstep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    growth: Growth,
    jitter: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Growth {
    /// `first`, doubling per failure, at most `cap`.
    Doubling { first: Duration, cap: Duration },
    /// The listed waits in turn; the last one repeats (a hand-tuned schedule).
    Listed(Vec<Duration>),
}

/// What a wait is multiplied by, at random: at most this far below or above.
const JITTER: f64 = 0.2;

impl Backoff {
    /// `first`, `2 × first`, `4 × first` … at most `cap`, jittered.
    pub fn doubling(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            growth: Growth::Doubling { first, cap },
            jitter: true,
        }
    }

    /// The waits in turn, the last one repeating, jittered. An empty list waits a minute.
    pub fn listed(waits: Vec<Duration>) -> Backoff {
        Backoff {
            growth: Growth::Listed(waits),
            jitter: true,
        }
    }

    /// The same schedule without jitter (tests that must know the wait).
    pub fn exact(self) -> Backoff {
        Backoff {
            jitter: false,
            ..self
        }
    }

    /// The wait after `failures` failures in a row (the first failure is 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let base = self.base(failures);
        if self.jitter {
            base.mul_f64(rand::thread_rng().gen_range(1.0 - JITTER..1.0 + JITTER))
        } else {
            base
        }
    }

    /// The wait before jitter.
    fn base(&self, failures: u32) -> Duration {
        let step = failures.saturating_sub(1);
        match &self.growth {
            Growth::Doubling { first, cap } => first.saturating_mul(1u32 << step.min(31)).min(*cap),
            Growth::Listed(waits) => waits
                .get(step as usize)
                .or(waits.last())
                .copied()
                .unwrap_or(Duration::from_secs(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn doubling_grows_from_first_and_stops_at_the_cap() {
        let backoff = Backoff::doubling(secs(30), secs(3600)).exact();
        assert_eq!(
            backoff.delay(0),
            secs(30),
            "no failure yet waits the first step"
        );
        assert_eq!(backoff.delay(1), secs(30));
        assert_eq!(backoff.delay(2), secs(60));
        assert_eq!(backoff.delay(4), secs(240));
        assert_eq!(backoff.delay(8), secs(3600));
        assert_eq!(backoff.delay(u32::MAX), secs(3600), "no overflow");
    }

    #[test]
    fn listed_waits_go_in_turn_and_the_last_repeats() {
        let backoff = Backoff::listed(vec![secs(10), secs(30), secs(120)]).exact();
        assert_eq!(backoff.delay(1), secs(10));
        assert_eq!(backoff.delay(3), secs(120));
        assert_eq!(backoff.delay(40), secs(120));
        assert_eq!(Backoff::listed(Vec::new()).exact().delay(1), secs(60));
    }

    #[test]
    fn jitter_stays_within_a_fifth_either_way_and_varies() {
        let backoff = Backoff::doubling(secs(100), secs(100));
        let delays: Vec<Duration> = (0..200).map(|_| backoff.delay(5)).collect();
        assert!(delays.iter().all(|d| *d >= secs(80) && *d <= secs(120)));
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "jitter varies the wait"
        );
        let capped = Backoff::doubling(secs(1), secs(300));
        assert!((0..200).all(|_| capped.delay(40) <= secs(360)));
    }
}

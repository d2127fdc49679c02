//! Exponential backoff with jitter between failed deliveries.
//!
//! The delay doubles from `initial` up to `max`; each wait is drawn uniformly from its upper half ("equal jitter"),
//! so agents that lost the same central at the same moment do not all come back at the same instant, yet none waits
//! much less than the schedule says.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial: initial.max(Duration::from_millis(1)), max: max.max(initial), failures: 0 }
    }

    /// The ceiling of the next wait: `initial * 2^failures`, capped at `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// Back to the initial delay after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            let ceiling = backoff.ceiling();
            let delay = backoff.next_delay();
            assert!(delay >= ceiling / 2 && delay <= ceiling, "{delay:?} outside [{:?}, {ceiling:?}]", ceiling / 2);
            ceilings.push(ceiling.as_millis());
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut delays = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
            delays.insert(backoff.next_delay());
        }
        assert!(delays.len() > 10, "only {} distinct delays", delays.len());
    }

    #[test]
    fn survives_many_failures() {
        let mut backoff = Backoff::new(Duration::from_millis(1), Duration::from_secs(60));
        for _ in 0..200 {
            backoff.next_delay();
        }
        assert_eq!(backoff.ceiling(), Duration::from_secs(60));
    }
}

//! Failed-login limiter: at most [`MAX_FAILURES`] failures per (username, client address) in a sliding
//! [`WINDOW`]; past that, logins for that pair are refused with 429 until the oldest failure leaves the window.
//! Kept in memory per replica (a replica set multiplies the budget by its size, which stays far below what a
//! password guesser needs).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Distinct (username, address) pairs remembered before old ones are dropped.
const MAX_KEYS: usize = 100_000;

/// The limiter shared by every login request.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<(String, IpAddr), Vec<Instant>>>,
}

impl LoginLimiter {
    /// `Some(wait)` when this pair has used its failures and must wait.
    pub fn blocked(&self, username: &str, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let list = map.get_mut(&(username.to_owned(), ip))?;
        list.retain(|t| now.duration_since(*t) < WINDOW);
        (list.len() >= MAX_FAILURES).then(|| WINDOW.saturating_sub(now.duration_since(list[0])))
    }

    /// Records a failed attempt.
    pub fn failed(&self, username: &str, ip: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_KEYS {
            map.retain(|_, list| list.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        map.entry((username.to_owned(), ip)).or_default().push(now);
    }

    /// Forgets the failures of a pair that logged in.
    pub fn succeeded(&self, username: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&(username.to_owned(), ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_that_pair_for_the_window() {
        let limiter = LoginLimiter::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.blocked("a", ip, t0).is_none());
            limiter.failed("a", ip, t0);
        }
        assert!(limiter.blocked("a", ip, t0).is_some());
        assert!(limiter.blocked("a", other, t0).is_none());
        assert!(limiter.blocked("b", ip, t0).is_none());
        assert!(limiter.blocked("a", ip, t0 + WINDOW).is_none());
    }
}

//! Login limiter: a login attempt is counted before its password is hashed, so simultaneous guesses cannot all slip
//! through the check (issue 12). Within a sliding [`WINDOW`], at most:
//!
//! - [`MAX_FAILURES`] failed or pending attempts per username (whatever the address),
//! - [`MAX_FAILURES_PER_ADDRESS`] per client address (whatever the username: a password sprayed over many usernames),
//! - [`MAX_FAILURES_GLOBAL`] in all (many addresses spraying many usernames).
//!
//! [`LoginLimiter::begin`] reserves the attempt on all three, or refuses with how long to wait; the returned
//! [`Attempt`] is then settled as a success (which forgets that username's failures from that address), a failure,
//! or not a guess at all (the password was never checked, e.g. hashing at capacity). An attempt dropped unsettled
//! (the client went away mid-hash) counts as a failure. Kept in memory per replica (a replica set multiplies the
//! budget by its size, which stays far below what a password guesser needs); the maps are pruned of stale entries,
//! and what they can hold is bounded by the global ceiling.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed (or pending) attempts per username in [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// Failed (or pending) attempts per client address in [`WINDOW`].
pub const MAX_FAILURES_PER_ADDRESS: usize = 5;
/// Failed (or pending) attempts in all in [`WINDOW`].
pub const MAX_FAILURES_GLOBAL: usize = 100;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Entries remembered per map before stale ones are dropped.
const PRUNE_AT: usize = 10_000;

/// Failures in the window (when, and the other half of the pair) and attempts in flight.
#[derive(Debug)]
struct Book<T> {
    failures: VecDeque<(Instant, T)>,
    pending: usize,
}

impl<T> Default for Book<T> {
    fn default() -> Self {
        Self { failures: VecDeque::new(), pending: 0 }
    }
}

impl<T: PartialEq> Book<T> {
    fn expire(&mut self, now: Instant) {
        while self.failures.front().is_some_and(|(t, _)| now.duration_since(*t) >= WINDOW) {
            self.failures.pop_front();
        }
    }

    /// How long to wait when the book is full.
    fn full(&mut self, max: usize, now: Instant) -> Option<Duration> {
        self.expire(now);
        (self.failures.len() + self.pending >= max).then(|| {
            // Pending attempts settle within seconds; with none failed yet, a second is a fair wait.
            self.failures.front().map_or(Duration::from_secs(1), |(t, _)| WINDOW.saturating_sub(now.duration_since(*t)))
        })
    }

    fn idle(&self, now: Instant) -> bool {
        self.pending == 0 && self.failures.back().is_none_or(|(t, _)| now.duration_since(*t) >= WINDOW)
    }
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<String, Book<IpAddr>>,
    addresses: HashMap<IpAddr, Book<String>>,
    global: Book<()>,
}

impl State {
    fn prune(&mut self, now: Instant) {
        if self.users.len() >= PRUNE_AT {
            self.users.retain(|_, b| !b.idle(now));
        }
        if self.addresses.len() >= PRUNE_AT {
            self.addresses.retain(|_, b| !b.idle(now));
        }
    }
}

/// Why a login was refused before its password was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Username,
    Address,
    Global,
}

/// The limiter shared by every login request.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    state: Mutex<State>,
}

/// A reserved login attempt; settle it with [`Attempt::succeeded`], [`Attempt::failed`] or
/// [`Attempt::not_checked`]. Dropped unsettled, it counts as failed.
#[derive(Debug)]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    username: String,
    ip: IpAddr,
    settled: bool,
}

impl LoginLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves an attempt for `username` from `ip`, or says which limit refuses it and how long to wait.
    ///
    /// # Errors
    /// The limit reached and the wait.
    pub fn begin(&self, username: &str, ip: IpAddr, now: Instant) -> Result<Attempt<'_>, (Limit, Duration)> {
        let mut state = self.lock();
        state.prune(now);
        if let Some(wait) = state.global.full(MAX_FAILURES_GLOBAL, now) {
            return Err((Limit::Global, wait));
        }
        if let Some(wait) = state.users.get_mut(username).and_then(|b| b.full(MAX_FAILURES, now)) {
            return Err((Limit::Username, wait));
        }
        if let Some(wait) = state.addresses.get_mut(&ip).and_then(|b| b.full(MAX_FAILURES_PER_ADDRESS, now)) {
            return Err((Limit::Address, wait));
        }
        state.global.pending += 1;
        state.users.entry(username.to_owned()).or_default().pending += 1;
        state.addresses.entry(ip).or_default().pending += 1;
        Ok(Attempt { limiter: self, username: username.to_owned(), ip, settled: false })
    }

    fn settle(&self, username: &str, ip: IpAddr, outcome: Outcome) {
        let mut state = self.lock();
        let now = Instant::now();
        state.global.pending = state.global.pending.saturating_sub(1);
        if let Some(book) = state.users.get_mut(username) {
            book.pending = book.pending.saturating_sub(1);
            match outcome {
                Outcome::Failed => book.failures.push_back((now, ip)),
                Outcome::Succeeded => book.failures.retain(|(_, from)| *from != ip),
                Outcome::NotChecked => {}
            }
        }
        if let Some(book) = state.addresses.get_mut(&ip) {
            book.pending = book.pending.saturating_sub(1);
            match outcome {
                Outcome::Failed => book.failures.push_back((now, username.to_owned())),
                Outcome::Succeeded => book.failures.retain(|(_, user)| user != username),
                Outcome::NotChecked => {}
            }
        }
        if outcome == Outcome::Failed {
            state.global.failures.push_back((now, ()));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    NotChecked,
}

impl Attempt<'_> {
    fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        self.limiter.settle(&self.username, self.ip, outcome);
    }

    /// The password was right: this username's failures from this address are forgotten.
    pub fn succeeded(self) {
        self.settle(Outcome::Succeeded);
    }

    /// The username or password was wrong.
    pub fn failed(self) {
        self.settle(Outcome::Failed);
    }

    /// The password was never checked (no answer about it was given): the reservation is released.
    pub fn not_checked(self) {
        self.settle(Outcome::NotChecked);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.settled = true;
            self.limiter.settle(&self.username, self.ip, Outcome::Failed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn pending_attempts_count_before_they_are_settled() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        let held: Vec<Attempt<'_>> =
            (0..MAX_FAILURES).map(|i| limiter.begin("a", ip(i as u8), t0).expect("within budget")).collect();
        assert_eq!(limiter.begin("a", ip(99), t0).unwrap_err().0, Limit::Username, "all five still hashing");
        for attempt in held {
            attempt.failed();
        }
        let (limit, wait) = limiter.begin("a", ip(99), t0).unwrap_err();
        assert_eq!(limit, Limit::Username);
        assert!(wait <= WINDOW && wait > Duration::ZERO);
        assert!(limiter.begin("a", ip(99), t0 + WINDOW + Duration::from_secs(1)).is_ok(), "the window slides");
    }

    #[test]
    fn one_address_spraying_usernames_is_limited() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            limiter.begin(&format!("user{i}"), ip(1), t0).expect("within budget").failed();
        }
        assert_eq!(limiter.begin("someone-else", ip(1), t0).unwrap_err().0, Limit::Address);
        assert!(limiter.begin("someone-else", ip(2), t0).is_ok(), "another address is not");
    }

    #[test]
    fn the_global_ceiling_holds_across_addresses_and_usernames() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES_GLOBAL {
            let addr = IpAddr::from([10, 1, (i / 250) as u8, (i % 250) as u8]);
            limiter.begin(&format!("u{i}"), addr, t0).expect("within budget").failed();
        }
        assert_eq!(limiter.begin("fresh", ip(200), t0).unwrap_err().0, Limit::Global);
    }

    #[test]
    fn success_forgets_that_pair_and_unchecked_attempts_cost_nothing() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 2 {
            limiter.begin("a", ip(1), t0).expect("within budget").failed();
        }
        limiter.begin("a", ip(2), t0).expect("within budget").failed();
        limiter.begin("a", ip(1), t0).expect("within budget").succeeded();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.begin("a", ip(3), t0).expect("the pair's failures were forgotten").not_checked();
        }
        // The other address's failure still counts: four more would reach the limit.
        for _ in 0..MAX_FAILURES - 1 {
            limiter.begin("a", ip(4), t0).expect("within budget").failed();
        }
        assert!(limiter.begin("a", ip(5), t0).is_err());
    }

    #[test]
    fn an_abandoned_attempt_counts_as_failed() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            drop(limiter.begin("a", ip(1), t0).expect("within budget"));
        }
        assert!(limiter.begin("a", ip(2), t0).is_err());
    }
}

//! What `serve` runs besides the API: the incremental worker loop and the scheduled jobs (close the day every
//! `close_day_interval_secs`, the sandwich job daily at `sandwich_at` UTC over the last `sandwich_lookback_days`).
//! Every job is idempotent, so replicas that each run the schedule only repeat work, never corrupt it. A sandwich job
//! that fails (the database restarting, say) is retried with a growing pause instead of waiting for the next day.

use std::time::Duration;

use chrono::{NaiveDateTime, NaiveTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{bulk, worker};
use crate::config::AttendanceConfig;
use crate::store::Store;

/// Runs the worker until `stop`: drains the queue, then waits `poll_interval_ms` before looking again.
pub async fn run_worker(store: Store, config: AttendanceConfig, stop: CancellationToken) {
    let idle = Duration::from_millis(config.poll_interval_ms);
    loop {
        let pause = match worker::drain(&store, config.claim_limit).await {
            Ok(round) => {
                if round.claimed > 0 {
                    tracing::debug!(claimed = round.claimed, days = round.outcome.days, "attendance recomputed");
                }
                idle
            }
            Err(e) => {
                tracing::error!(error = %e, "attendance worker failed; retrying");
                idle.max(Duration::from_secs(2))
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Runs the scheduled jobs until `stop`.
pub async fn run_scheduler(store: Store, config: AttendanceConfig, stop: CancellationToken) {
    let Ok(sandwich_at) = config.sandwich_time() else {
        tracing::error!(value = %config.sandwich_at, "attendance.sandwich_at is not HH:MM; scheduler not started");
        return;
    };
    let close_every = Duration::from_secs(config.close_day_interval_secs.max(1));
    let mut next_close = tokio::time::Instant::now();
    let mut sandwich = SandwichSchedule::new(sandwich_at);
    loop {
        if tokio::time::Instant::now() >= next_close {
            match bulk::close_day(&store, None, Utc::now()).await {
                Ok(outcome) if outcome.days > 0 => tracing::info!(days = outcome.days, "days closed"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "close-the-day job failed"),
            }
            next_close = tokio::time::Instant::now() + close_every;
        }
        let now = Utc::now().naive_utc();
        if sandwich.is_due(now) {
            let to = now.date();
            let from = to - chrono::Duration::days(i64::from(config.sandwich_lookback_days));
            match bulk::apply_sandwich(&store, &bulk::Target::All, from, to, Utc::now()).await {
                Ok(outcome) => {
                    tracing::info!(days = outcome.days, %from, %to, "sandwich job done");
                    sandwich.succeeded(now);
                }
                Err(e) => {
                    let retry_at = sandwich.failed(now);
                    tracing::error!(error = %e, %retry_at, "sandwich job failed; will retry");
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5).min(close_every)) => {}
        }
    }
}

/// When the daily sandwich job is due: once a day at `at` (UTC), and again after a failure, with a pause that doubles
/// from [`SandwichSchedule::FIRST_RETRY`] up to [`SandwichSchedule::LONGEST_RETRY`].
#[derive(Debug, Clone)]
pub struct SandwichSchedule {
    at: NaiveTime,
    last_success: Option<NaiveDateTime>,
    failures: u32,
    retry_at: Option<NaiveDateTime>,
}

impl SandwichSchedule {
    /// The pause after the first failure.
    pub const FIRST_RETRY: chrono::Duration = chrono::Duration::seconds(30);
    /// The longest pause between retries.
    pub const LONGEST_RETRY: chrono::Duration = chrono::Duration::minutes(15);

    /// A schedule that has not run yet (it is due as soon as today's time has passed).
    pub fn new(at: NaiveTime) -> Self {
        Self { at, last_success: None, failures: 0, retry_at: None }
    }

    /// Whether the job should run at `now` (UTC).
    pub fn is_due(&self, now: NaiveDateTime) -> bool {
        let due = now.date().and_time(self.at);
        if now < due || self.last_success.is_some_and(|last| last >= due) {
            return false;
        }
        self.retry_at.is_none_or(|retry| now >= retry)
    }

    /// Records a successful run at `now`.
    pub fn succeeded(&mut self, now: NaiveDateTime) {
        self.last_success = Some(now);
        self.failures = 0;
        self.retry_at = None;
    }

    /// Records a failed run at `now`; returns when it will be tried again.
    pub fn failed(&mut self, now: NaiveDateTime) -> NaiveDateTime {
        let doublings = self.failures.min(10);
        self.failures = self.failures.saturating_add(1);
        let pause = (Self::FIRST_RETRY * 2_i32.pow(doublings)).min(Self::LONGEST_RETRY);
        let retry = now + pause;
        self.retry_at = Some(retry);
        retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(day: u32, h: u32, m: u32, s: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, day).and_then(|d| d.and_hms_opt(h, m, s)).expect("valid test time")
    }

    fn schedule() -> SandwichSchedule {
        SandwichSchedule::new(NaiveTime::from_hms_opt(1, 0, 0).expect("valid time"))
    }

    #[test]
    fn runs_once_a_day_after_its_time() {
        let mut s = schedule();
        assert!(!s.is_due(at(5, 0, 59, 59)));
        assert!(s.is_due(at(5, 1, 0, 0)));
        s.succeeded(at(5, 1, 0, 0));
        assert!(!s.is_due(at(5, 23, 59, 0)));
        assert!(!s.is_due(at(6, 0, 30, 0)));
        assert!(s.is_due(at(6, 1, 0, 5)));
    }

    #[test]
    fn a_failure_is_retried_with_a_growing_pause_the_same_day() {
        let mut s = schedule();
        let first = s.failed(at(5, 1, 0, 0));
        assert_eq!(first, at(5, 1, 0, 30));
        assert!(!s.is_due(at(5, 1, 0, 29)));
        assert!(s.is_due(first));
        let second = s.failed(first);
        assert_eq!(second - first, chrono::Duration::seconds(60));
        let mut last = second;
        for _ in 0..12 {
            last = s.failed(last);
        }
        assert!(s.is_due(last));
        assert_eq!(s.failed(last) - last, SandwichSchedule::LONGEST_RETRY);
        s.succeeded(at(5, 9, 0, 0));
        assert!(!s.is_due(at(5, 9, 0, 1)));
        assert!(s.is_due(at(6, 1, 0, 0)), "a success clears the retry pause for the next day");
    }
}

//! What `serve` runs besides the API: the incremental worker loop and the scheduled jobs (close the day every
//! `close_day_interval_secs`, the sandwich job daily at `sandwich_at` UTC over the last `sandwich_lookback_days`).
//! Every job is idempotent, so replicas that each run the schedule only repeat work, never corrupt it.

use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
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
    let mut last_sandwich: Option<NaiveDateTime> = None;
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
        let due = now.date().and_time(sandwich_at);
        if now >= due && last_sandwich.is_none_or(|last| last < due) {
            let to = now.date();
            let from = to - chrono::Duration::days(i64::from(config.sandwich_lookback_days));
            match bulk::apply_sandwich(&store, &bulk::Target::All, from, to, Utc::now()).await {
                Ok(outcome) => tracing::info!(days = outcome.days, %from, %to, "sandwich job done"),
                Err(e) => tracing::error!(error = %e, "sandwich job failed"),
            }
            last_sandwich = Some(now);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5).min(close_every)) => {}
        }
    }
}

//! The latency from a punch to its attendance row, sampled: the producer offers about one punch a second; this
//! task polls the database (directly, not through the proxy) until the punch is in AllLogs and its employee-day's
//! row was computed at or after the punch arrived, and records `computed_at - generated`. A row recomputed again
//! before the poll (every 250 ms) makes the figure a little high, never low.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::workload::Sample;

/// When the punch arrived in AllLogs, and when its day's row was last computed.
type Arrival = (DateTime<Utc>, Option<DateTime<Utc>>);

/// Samples older than this without a row count as not observed.
const GIVE_UP: Duration = Duration::from_secs(180);

/// What the sampler saw.
#[derive(Debug, Default)]
pub struct DayLatencies {
    /// `(generated, latency in seconds)` of each observed sample.
    pub observed: Vec<(DateTime<Utc>, f64)>,
    pub not_observed: usize,
}

/// Runs until `stop`, then polls the pending samples once more.
pub async fn track(url: String, mut samples: mpsc::UnboundedReceiver<Sample>, stop: CancellationToken) -> DayLatencies {
    let mut out = DayLatencies::default();
    let pool = match PgPoolOptions::new().max_connections(1).acquire_timeout(Duration::from_secs(5)).connect_lazy(&url)
    {
        Ok(pool) => pool,
        Err(e) => {
            tracing::error!("attendance latency sampler: {e}");
            return out;
        }
    };
    let mut pending: Vec<Sample> = Vec::new();
    let mut stopped = false;
    loop {
        tokio::select! {
            () = stop.cancelled(), if !stopped => stopped = true,
            sample = samples.recv(), if !stopped => match sample {
                Some(sample) => pending.push(sample),
                None => stopped = true,
            },
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let mut still = Vec::with_capacity(pending.len());
        for sample in pending.drain(..) {
            let row: Result<Option<Arrival>, _> = sqlx::query_as(
                "SELECT l.received_at, a.computed_at FROM all_logs l LEFT JOIN attendance a \
                 ON a.employee_id = l.pin AND a.work_date = l.local_date \
                 WHERE l.device_serial = $1 AND l.local_time = $2 AND l.pin = $3",
            )
            .bind(&sample.device)
            .bind(sample.local_time)
            .bind(&sample.pin)
            .fetch_optional(&pool)
            .await;
            match row {
                Ok(Some((received, Some(computed)))) if computed >= received => {
                    let secs = (computed - sample.generated).num_microseconds().unwrap_or(0) as f64 / 1e6;
                    out.observed.push((sample.generated, secs));
                }
                _ if Utc::now().signed_duration_since(sample.generated).to_std().unwrap_or_default() > GIVE_UP => {
                    out.not_observed += 1;
                }
                _ => still.push(sample),
            }
        }
        pending = still;
        if stopped {
            // Stopped after the attendance queue drained: what is still pending was never seen computed.
            out.not_observed += pending.len();
            pool.close().await;
            return out;
        }
    }
}

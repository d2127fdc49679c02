//! The loop `serve` runs on every replica: claim a tracked job, run it while a heartbeat stores its progress and
//! reads cancel requests, and record how it ended.
//!
//! A claimed job belongs to this replica's attempt until its heartbeat is older than the lease. If the heartbeat
//! finds the job no longer ours (we stalled and another replica took it over), the run is told to stop and its end
//! is not recorded. When the service stops, a running job is handed back as pending for another replica.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::kinds::{RunOutcome, RunSettings};
use super::progress::StopReason;
use super::{JobKind, JobRecord, Progress};
use crate::config::Config;
use crate::store::jobs::JobEnd;
use crate::store::Store;

/// Runs jobs until `stop`, one at a time.
pub async fn run(store: Store, all: Arc<Config>, stop: CancellationToken) {
    let config = &all.jobs;
    let replica = config.replica();
    tracing::info!(%replica, "tracked-job runner started");
    let idle = Duration::from_millis(config.poll_interval_ms.max(1));
    loop {
        if stop.is_cancelled() {
            return;
        }
        let lease = chrono::Duration::seconds(i64::try_from(config.lease_secs).unwrap_or(30));
        match store.claim_job(&replica, Utc::now() - lease, i64::from(config.max_attempts)).await {
            Ok(Some(job)) => {
                run_one(&store, &all, &replica, job, &stop).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "claiming a tracked job failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(idle) => {}
        }
    }
}

/// Runs one claimed job to its end (or until it is lost or the service stops).
pub async fn run_one(store: &Store, config: &Arc<Config>, replica: &str, job: JobRecord, stop: &CancellationToken) {
    let span = tracing::info_span!("job", id = job.id, kind = %job.kind, attempt = job.attempt);
    run_claimed(store, config, replica, job, stop).instrument(span).await;
}

async fn run_claimed(store: &Store, all: &Arc<Config>, replica: &str, job: JobRecord, stop: &CancellationToken) {
    let config = &all.jobs;
    let (id, attempt) = (job.id, job.attempt);
    let Some(kind) = JobKind::from_name(&job.kind) else {
        let end = JobEnd::Failed(format!("this replica does not know job kind {:?}", job.kind));
        finish(store, &job, replica, &end, &Progress::new()).await;
        return;
    };
    let progress = Progress::new();
    if job.cancel_requested {
        finish(store, &job, replica, &JobEnd::Cancelled, &progress).await;
        return;
    }
    tracing::info!("job started");
    let settings = RunSettings {
        chunk_employees: config.chunk_employees,
        pause_between_chunks: Duration::from_millis(config.pause_between_chunks_ms),
        config: all.clone(),
    };
    let work = tokio::spawn((kind.runner())(store.clone(), job.params.clone(), progress.clone(), settings));
    let beat = Duration::from_millis(config.lease_secs.saturating_mul(1000) / 3).max(Duration::from_millis(200));
    let heartbeat = async {
        loop {
            tokio::select! {
                () = stop.cancelled() => {
                    progress.stop(StopReason::Shutdown);
                    return;
                }
                () = tokio::time::sleep(beat) => {}
            }
            match store.job_heartbeat(id, attempt, replica, progress.snapshot()).await {
                Ok(Some(true)) => progress.stop(StopReason::Cancelled),
                Ok(Some(false)) => {}
                Ok(None) => {
                    tracing::warn!("job taken over by another replica; stopping this run");
                    progress.stop(StopReason::Lost);
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "job heartbeat failed"),
            }
        }
    };
    let outcome = {
        tokio::pin!(work);
        tokio::select! {
            result = &mut work => result,
            () = heartbeat => work.await,
        }
    };
    let end = match outcome {
        Ok(RunOutcome::Done(result)) => JobEnd::Done(result),
        Ok(RunOutcome::Failed(error)) => JobEnd::Failed(error),
        Ok(RunOutcome::Stopped) => match progress.stop_reason() {
            Some(StopReason::Lost) => return,
            Some(StopReason::Shutdown) => {
                match store.release_job(id, attempt, replica).await {
                    Ok(_) => tracing::info!("service stopping; job handed back"),
                    Err(e) => {
                        tracing::warn!(error = %e, "handing the job back failed; it is taken over after the lease")
                    }
                }
                return;
            }
            Some(StopReason::Cancelled) | None => JobEnd::Cancelled,
        },
        Err(e) => JobEnd::Failed(format!("the run panicked: {e}")),
    };
    if progress.stop_reason() == Some(StopReason::Lost) {
        return;
    }
    finish(store, &job, replica, &end, &progress).await;
}

async fn finish(store: &Store, job: &JobRecord, replica: &str, end: &JobEnd, progress: &Progress) {
    for attempt in 0..5u64 {
        match store.finish_job(job.id, job.attempt, replica, end, progress.snapshot()).await {
            Ok(true) => {
                tracing::info!(end = ?end, "job finished");
                return;
            }
            Ok(false) => {
                tracing::warn!("job taken over by another replica; its end is theirs to record");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "recording the job's end failed; retrying");
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
        }
    }
    tracing::error!("the job's end could not be recorded; another replica will run it again after the lease");
}

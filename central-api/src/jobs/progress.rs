//! How a run reports progress and learns that it should stop: shared counters (done of total) the runner's
//! heartbeat stores, and a cancellation token the run checks between steps.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::JobProgress;

/// Why a run was told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// An administrator cancelled the job.
    Cancelled,
    /// Another replica took the job over (this one stalled past the lease).
    Lost,
    /// The service is stopping; the job goes back to pending.
    Shutdown,
}

#[derive(Debug, Default)]
struct Inner {
    done: AtomicU64,
    total: AtomicU64,
    /// 0: running; otherwise a [`StopReason`] + 1.
    reason: AtomicU8,
    stop: CancellationToken,
}

/// A run's progress and stop signal; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Progress {
    inner: Arc<Inner>,
}

impl Progress {
    /// Progress nobody watches (the command line's jobs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how many steps the run has.
    pub fn set_total(&self, total: u64) {
        self.inner.total.store(total, Ordering::Relaxed);
    }

    /// Adds `steps` to the total (a run that learns its size as it goes).
    pub fn add_total(&self, steps: u64) {
        self.inner.total.fetch_add(steps, Ordering::Relaxed);
    }

    /// Records `steps` more steps done.
    pub fn advance(&self, steps: u64) {
        self.inner.done.fetch_add(steps, Ordering::Relaxed);
    }

    /// Done of total, as stored.
    pub fn snapshot(&self) -> JobProgress {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        JobProgress {
            done: clamp(self.inner.done.load(Ordering::Relaxed)),
            total: clamp(self.inner.total.load(Ordering::Relaxed)),
        }
    }

    /// Tells the run to stop at its next step.
    pub fn stop(&self, reason: StopReason) {
        let code = match reason {
            StopReason::Cancelled => 1,
            StopReason::Lost => 2,
            StopReason::Shutdown => 3,
        };
        let _ = self.inner.reason.compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.inner.stop.cancel();
    }

    /// Whether the run should stop now.
    pub fn should_stop(&self) -> bool {
        self.inner.stop.is_cancelled()
    }

    /// Why the run was told to stop, if it was.
    pub fn stop_reason(&self) -> Option<StopReason> {
        match self.inner.reason.load(Ordering::Acquire) {
            1 => Some(StopReason::Cancelled),
            2 => Some(StopReason::Lost),
            3 => Some(StopReason::Shutdown),
            _ => None,
        }
    }

    /// Completes when the run is told to stop (for runs that wait on something else meanwhile).
    pub async fn stopped(&self) {
        self.inner.stop.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_the_first_stop_reason_stick() {
        let p = Progress::new();
        p.set_total(10);
        p.advance(3);
        p.add_total(2);
        assert_eq!(p.snapshot(), JobProgress { done: 3, total: 12 });
        assert!(!p.should_stop());
        let shared = p.clone();
        shared.stop(StopReason::Lost);
        p.stop(StopReason::Cancelled);
        assert!(p.should_stop());
        assert_eq!(p.stop_reason(), Some(StopReason::Lost));
    }
}

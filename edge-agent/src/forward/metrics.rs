//! Counters of the forwarder, read by `/metrics`, the status command and the benches.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window over which the forward rate is measured.
const RATE_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct ForwardMetrics {
    pub batches_sent: AtomicU64,
    pub batches_acked: AtomicU64,
    pub punches_acked: AtomicU64,
    pub send_errors: AtomicU64,
    pub rejections: AtomicU64,
    pub statuses_sent: AtomicU64,
    pub status_errors: AtomicU64,
    /// Unix milliseconds of the last acknowledgement, 0 before the first.
    pub last_ack_unix_ms: AtomicU64,
    /// The current backoff in milliseconds, 0 when delivering normally.
    pub backoff_ms: AtomicU64,
    /// Batches moved to the dead letters.
    pub dead_lettered: AtomicU64,
    /// Punches central quarantined (stored aside) in acknowledged batches.
    pub quarantined: AtomicU64,
    /// When the send in progress started, for the watchdog (`None`: not sending).
    sending_since: Mutex<Option<Instant>>,
    recent: Mutex<VecDeque<(Instant, u64)>>,
    last_error: Mutex<Option<String>>,
}

impl ForwardMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn acked(&self, punches: u64) {
        self.batches_acked.fetch_add(1, Ordering::Relaxed);
        self.punches_acked.fetch_add(punches, Ordering::Relaxed);
        let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        self.last_ack_unix_ms.store(now_ms, Ordering::Relaxed);
        let mut recent = self.recent();
        let now = Instant::now();
        recent.push_back((now, punches));
        while recent.front().is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW) {
            recent.pop_front();
        }
    }

    /// Marks the start (`true`) or the end of a send.
    pub fn sending(&self, busy: bool) {
        *self.sending_since.lock().unwrap_or_else(|p| p.into_inner()) = busy.then(Instant::now);
    }

    /// How long the send in progress has taken.
    pub fn busy_for(&self) -> Option<Duration> {
        self.sending_since.lock().unwrap_or_else(|p| p.into_inner()).map(|t| t.elapsed())
    }

    pub fn failed(&self, error: &str) {
        self.send_errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_owned());
    }

    /// Punches acknowledged per second over the last ten seconds.
    pub fn rate_per_second(&self) -> f64 {
        let now = Instant::now();
        let recent = self.recent();
        let total: u64 = recent.iter().filter(|(t, _)| now.duration_since(*t) <= RATE_WINDOW).map(|(_, n)| n).sum();
        total as f64 / RATE_WINDOW.as_secs_f64()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, u64)>> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rate() {
        let metrics = ForwardMetrics::new();
        metrics.acked(500);
        metrics.acked(1500);
        assert_eq!(metrics.punches_acked.load(Ordering::Relaxed), 2000);
        assert_eq!(metrics.batches_acked.load(Ordering::Relaxed), 2);
        assert!((metrics.rate_per_second() - 200.0).abs() < 1e-9);
        metrics.failed("timeout");
        assert_eq!(metrics.last_error().as_deref(), Some("timeout"));
    }
}

//! Counters of what this replica handled, served at `/metrics` in the Prometheus text format. Each replica counts
//! only its own work, which is how an operator (and the tests) see that replicas share the MQTT load.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which path a batch arrived by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestPath {
    Http,
    Mqtt,
}

impl IngestPath {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Mqtt => "mqtt",
        }
    }
}

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    batches_http: AtomicU64,
    batches_mqtt: AtomicU64,
    rejected_http: AtomicU64,
    rejected_mqtt: AtomicU64,
    punches_new: AtomicU64,
    punches_duplicate: AtomicU64,
    statuses: AtomicU64,
}

impl Metrics {
    /// A batch was committed.
    pub fn batch_stored(&self, path: IngestPath, new: u32, duplicates: u32) {
        let counter = match path {
            IngestPath::Http => &self.batches_http,
            IngestPath::Mqtt => &self.batches_mqtt,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.punches_new.fetch_add(u64::from(new), Ordering::Relaxed);
        self.punches_duplicate.fetch_add(u64::from(duplicates), Ordering::Relaxed);
    }

    /// A batch was refused (bad input, wrong agent or site, revoked).
    pub fn batch_rejected(&self, path: IngestPath) {
        let counter = match path {
            IngestPath::Http => &self.rejected_http,
            IngestPath::Mqtt => &self.rejected_mqtt,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A status envelope was stored.
    pub fn status_stored(&self) {
        self.statuses.fetch_add(1, Ordering::Relaxed);
    }

    /// Batches committed via `path` so far.
    pub fn batches(&self, path: IngestPath) -> u64 {
        match path {
            IngestPath::Http => self.batches_http.load(Ordering::Relaxed),
            IngestPath::Mqtt => self.batches_mqtt.load(Ordering::Relaxed),
        }
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP central_batches_stored_total Punch batches committed, by ingest path.");
        let _ = writeln!(out, "# TYPE central_batches_stored_total counter");
        let _ = writeln!(out, "central_batches_stored_total{{path=\"http\"}} {}", get(&self.batches_http));
        let _ = writeln!(out, "central_batches_stored_total{{path=\"mqtt\"}} {}", get(&self.batches_mqtt));
        let _ = writeln!(out, "# HELP central_batches_rejected_total Punch batches refused, by ingest path.");
        let _ = writeln!(out, "# TYPE central_batches_rejected_total counter");
        let _ = writeln!(out, "central_batches_rejected_total{{path=\"http\"}} {}", get(&self.rejected_http));
        let _ = writeln!(out, "central_batches_rejected_total{{path=\"mqtt\"}} {}", get(&self.rejected_mqtt));
        let _ = writeln!(out, "# HELP central_punches_total Punches in committed batches, new or duplicate.");
        let _ = writeln!(out, "# TYPE central_punches_total counter");
        let _ = writeln!(out, "central_punches_total{{outcome=\"new\"}} {}", get(&self.punches_new));
        let _ = writeln!(out, "central_punches_total{{outcome=\"duplicate\"}} {}", get(&self.punches_duplicate));
        let _ = writeln!(out, "# HELP central_statuses_stored_total Agent status envelopes stored.");
        let _ = writeln!(out, "# TYPE central_statuses_stored_total counter");
        let _ = writeln!(out, "central_statuses_stored_total {}", get(&self.statuses));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_path_and_renders() {
        let metrics = Metrics::default();
        metrics.batch_stored(IngestPath::Mqtt, 3, 1);
        metrics.batch_stored(IngestPath::Mqtt, 0, 4);
        metrics.batch_rejected(IngestPath::Http);
        assert_eq!(metrics.batches(IngestPath::Mqtt), 2);
        assert_eq!(metrics.batches(IngestPath::Http), 0);
        let text = metrics.render();
        assert!(text.contains("central_batches_stored_total{path=\"mqtt\"} 2\n"), "{text}");
        assert!(text.contains("central_punches_total{outcome=\"duplicate\"} 5\n"), "{text}");
        assert!(text.contains("central_batches_rejected_total{path=\"http\"} 1\n"), "{text}");
    }
}

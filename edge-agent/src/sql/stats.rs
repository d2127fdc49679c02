//! The SQL sources' figures for `/metrics`: rows read, the cursor, the lag behind the newest row, rows skipped.
//!
//! Pollers write them; `agent::metrics_text` renders them with [`render`]. Kept in one process-wide table (sources
//! are keyed by serial, which the configuration keeps unique).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};

/// One source's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub rows_read: u64,
    pub unmappable_rows: u64,
    pub last_id: Option<i64>,
    /// The time of the newest row read (its UTC instant).
    pub newest_row: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
}

static STATS: LazyLock<Mutex<BTreeMap<String, SourceStats>>> = LazyLock::new(|| Mutex::new(BTreeMap::new()));

fn table() -> std::sync::MutexGuard<'static, BTreeMap<String, SourceStats>> {
    STATS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Changes the figures of the source `serial`.
pub fn update(serial: &str, change: impl FnOnce(&mut SourceStats)) {
    change(table().entry(serial.to_owned()).or_default());
}

/// A copy of the figures of the source `serial`.
pub fn get(serial: &str) -> Option<SourceStats> {
    table().get(serial).cloned()
}

/// Appends the SQL sources' series to a Prometheus exposition (nothing when no SQL source runs).
pub fn render(out: &mut String, now: DateTime<Utc>) {
    let stats = table().clone();
    if stats.is_empty() {
        return;
    }
    let mut series = |name: &str, kind: &str, help: &str, value: &dyn Fn(&SourceStats) -> Option<f64>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (serial, s) in &stats {
            if let Some(v) = value(s) {
                let _ = writeln!(out, "{name}{{device=\"{serial}\"}} {v}");
            }
        }
    };
    series("edge_sql_rows_read_total", "counter", "Rows read from the source database.", &|s| Some(s.rows_read as f64));
    series("edge_sql_unmappable_rows_total", "counter", "Rows that could not become punches and were skipped.", &|s| {
        Some(s.unmappable_rows as f64)
    });
    series("edge_sql_last_id", "gauge", "The cursor: the id of the last row read.", &|s| s.last_id.map(|i| i as f64));
    series("edge_sql_lag_seconds", "gauge", "Now minus the time of the newest row read.", &|s| {
        s.newest_row.map(|t| (now - t).num_milliseconds() as f64 / 1000.0)
    });
    series("edge_sql_last_success_timestamp_seconds", "gauge", "When the source was last read.", &|s| {
        s.last_success.map(|t| t.timestamp() as f64)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_render_per_source() {
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap_or_default();
        update("STATS-TEST", |s| {
            s.rows_read += 5;
            s.last_id = Some(42);
            s.newest_row = Some(now - chrono::Duration::seconds(90));
        });
        let mut out = String::new();
        render(&mut out, now);
        assert!(out.contains("edge_sql_rows_read_total{device=\"STATS-TEST\"} 5"), "{out}");
        assert!(out.contains("edge_sql_last_id{device=\"STATS-TEST\"} 42"), "{out}");
        assert!(out.contains("edge_sql_lag_seconds{device=\"STATS-TEST\"} 90"), "{out}");
        assert_eq!(get("STATS-TEST").map(|s| s.rows_read), Some(5));
    }
}

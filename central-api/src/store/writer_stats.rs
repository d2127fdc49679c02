//! What the ingest writers did: SQLite's group-commit task and PostgreSQL's group-commit writers count their group
//! transactions, the batches in them, the time spent storing them and, of that, committing, and the dirty rows
//! they wrote or (SQLite: already marked and not consumed since) skipped. Served at `/metrics` beside the ingest
//! counters, so an operator sees whether the writer is the bottleneck (busy time close to the wall time) and what a
//! commit costs; `bench ingest` prints them after its first pass.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters of one process's ingest writers.
#[derive(Debug, Default)]
pub struct WriterStats {
    groups: AtomicU64,
    batches: AtomicU64,
    busy_micros: AtomicU64,
    commit_micros: AtomicU64,
    marks_written: AtomicU64,
    marks_skipped: AtomicU64,
}

/// One committed group transaction, as [`WriterStats::committed`] counts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct GroupFigures {
    pub batches: usize,
    /// From the transaction's start to its commit's end.
    pub busy: Duration,
    pub commit: Duration,
    pub marks_written: usize,
    pub marks_skipped: usize,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl WriterStats {
    /// Counts a committed group.
    pub fn committed(&self, group: GroupFigures) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.batches.fetch_add(count(group.batches), Ordering::Relaxed);
        self.busy_micros.fetch_add(micros(group.busy), Ordering::Relaxed);
        self.commit_micros.fetch_add(micros(group.commit), Ordering::Relaxed);
        self.marks_written.fetch_add(count(group.marks_written), Ordering::Relaxed);
        self.marks_skipped.fetch_add(count(group.marks_skipped), Ordering::Relaxed);
    }

    /// Committed group transactions so far.
    pub fn groups(&self) -> u64 {
        self.groups.load(Ordering::Relaxed)
    }

    /// Dirty rows skipped so far because they were marked already.
    pub fn marks_skipped(&self) -> u64 {
        self.marks_skipped.load(Ordering::Relaxed)
    }

    /// Appends the Prometheus text exposition of every counter to `out`.
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let seconds = |c: &AtomicU64| Duration::from_micros(c.load(Ordering::Relaxed)).as_secs_f64();
        let _ = writeln!(out, "# HELP central_ingest_groups_total Group transactions the ingest writers committed.");
        let _ = writeln!(out, "# TYPE central_ingest_groups_total counter");
        let _ = writeln!(out, "central_ingest_groups_total {}", self.groups());
        let _ = writeln!(out, "# HELP central_ingest_group_batches_total Batches in the committed group transactions.");
        let _ = writeln!(out, "# TYPE central_ingest_group_batches_total counter");
        let _ = writeln!(out, "central_ingest_group_batches_total {}", get(&self.batches));
        let _ = writeln!(out, "# HELP central_ingest_writer_busy_seconds_total Time the ingest writers spent in group transactions, summed over writers.");
        let _ = writeln!(out, "# TYPE central_ingest_writer_busy_seconds_total counter");
        let _ = writeln!(out, "central_ingest_writer_busy_seconds_total {:.6}", seconds(&self.busy_micros));
        let _ = writeln!(out, "# HELP central_ingest_commit_seconds_total Of that, time spent committing.");
        let _ = writeln!(out, "# TYPE central_ingest_commit_seconds_total counter");
        let _ = writeln!(out, "central_ingest_commit_seconds_total {:.6}", seconds(&self.commit_micros));
        let _ = writeln!(out, "# HELP central_ingest_dirty_marks_total Attendance days the ingest writers marked dirty, or skipped as marked already.");
        let _ = writeln!(out, "# TYPE central_ingest_dirty_marks_total counter");
        let _ = writeln!(out, "central_ingest_dirty_marks_total{{outcome=\"written\"}} {}", get(&self.marks_written));
        let _ = writeln!(out, "central_ingest_dirty_marks_total{{outcome=\"skipped\"}} {}", self.marks_skipped());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_groups_and_renders_seconds() {
        let stats = WriterStats::default();
        let group = |batches, busy_ms, commit_ms, written, skipped| GroupFigures {
            batches,
            busy: Duration::from_millis(busy_ms),
            commit: Duration::from_millis(commit_ms),
            marks_written: written,
            marks_skipped: skipped,
        };
        stats.committed(group(3, 12, 5, 40, 0));
        stats.committed(group(1, 1500, 250, 2, 38));
        assert_eq!(stats.groups(), 2);
        assert_eq!(stats.marks_skipped(), 38);
        let mut text = String::new();
        stats.render(&mut text);
        assert!(text.contains("central_ingest_group_batches_total 4\n"), "{text}");
        assert!(text.contains("central_ingest_writer_busy_seconds_total 1.512000\n"), "{text}");
        assert!(text.contains("central_ingest_commit_seconds_total 0.255000\n"), "{text}");
        assert!(text.contains("central_ingest_dirty_marks_total{outcome=\"written\"} 42\n"), "{text}");
        assert!(text.contains("central_ingest_dirty_marks_total{outcome=\"skipped\"} 38\n"), "{text}");
    }
}

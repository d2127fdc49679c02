//! The soak's figures: per-punch latencies from the generation times and AllLogs' arrival times, the per-second
//! series the plot draws, and the text report printed by the bench and written beside the plot.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::checks::StoredPunch;
use super::usage::RoleUsage;

/// One second of the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Second {
    pub generated: u64,
    pub stored: u64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// A fault as it happened.
#[derive(Debug, Clone)]
pub struct FaultMark {
    pub at_secs: f64,
    pub label: String,
    pub outage_secs: f64,
    /// What shows the fault happened (a new pid, connections cut); `None` when nothing did.
    pub evidence: Option<String>,
}

/// Percentile `p` (0..=100) of sorted `values` (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Latencies (seconds) of every stored punch whose generation time is known, and the per-second series.
pub fn series(
    start: DateTime<Utc>,
    stored: &[StoredPunch],
    generated_us: &HashMap<String, Vec<i64>>,
) -> (Vec<f64>, Vec<Second>) {
    let start_us = start.timestamp_micros();
    let mut latencies = Vec::with_capacity(stored.len());
    let mut by_second: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut seconds: Vec<Second> = Vec::new();
    let slot = |us: i64| usize::try_from((us - start_us).max(0) / 1_000_000).unwrap_or(0);
    for times in generated_us.values() {
        for &g in times {
            let s = slot(g);
            if seconds.len() <= s {
                seconds.resize(s + 1, Second::default());
            }
            seconds[s].generated += 1;
        }
    }
    for punch in stored {
        let received = punch.received.timestamp_micros();
        let s = slot(received);
        if seconds.len() <= s {
            seconds.resize(s + 1, Second::default());
        }
        seconds[s].stored += 1;
        let generated = usize::try_from(punch.seq)
            .ok()
            .and_then(|seq| seq.checked_sub(1))
            .and_then(|i| generated_us.get(&punch.agent)?.get(i).copied());
        if let Some(g) = generated {
            let secs = (received - g) as f64 / 1e6;
            latencies.push(secs);
            by_second.entry(s).or_default().push(secs);
        }
    }
    for (s, mut values) in by_second {
        values.sort_by(f64::total_cmp);
        seconds[s].p50 = percentile(&values, 50.0);
        seconds[s].p99 = percentile(&values, 99.0);
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, seconds)
}

/// The highest number of punches stored in any `window` consecutive seconds, per second.
pub fn peak_rate(seconds: &[Second], window: usize) -> f64 {
    let window = window.max(1);
    if seconds.len() < window {
        return seconds.iter().map(|s| s.stored).sum::<u64>() as f64 / window as f64;
    }
    seconds.windows(window).map(|w| w.iter().map(|s| s.stored).sum::<u64>()).max().unwrap_or(0) as f64 / window as f64
}

/// A line `label: p50 x s, p99 y s, max z s (n values)`.
pub fn latency_line(label: &str, sorted: &[f64]) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3} s"));
    format!(
        "{label}: p50 {}, p99 {}, max {} ({} values)",
        f(percentile(sorted, 50.0)),
        f(percentile(sorted, 99.0)),
        f(sorted.last().copied()),
        sorted.len()
    )
}

/// The usage table.
pub fn usage_lines(usage: &BTreeMap<String, RoleUsage>, wall_secs: f64) -> String {
    let mut out = String::new();
    for (role, u) in usage {
        let _ = writeln!(
            out,
            "  {role:<14} CPU {:>8.1} s ({:>5.1} % of one core), RSS peak {:>7.1} MiB, mean {:>7.1} MiB",
            u.cpu_secs,
            100.0 * u.cpu_secs / wall_secs.max(0.001),
            u.peak_rss_kib as f64 / 1024.0,
            u.mean_rss_kib() as f64 / 1024.0
        );
    }
    out
}

//! `/metrics` in the Prometheus text format, and `/healthz` as JSON.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use chrono::Utc;

use super::state::{AgentState, AGENT_VERSION};

/// The Prometheus exposition of the agent's figures.
pub fn render_metrics(state: &AgentState) -> String {
    let mut out = String::with_capacity(4096);
    let now = Utc::now();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |value: f64| vec![(String::new(), value)];
    metric(
        "edge_agent_info",
        "gauge",
        "Agent identity.",
        &[(format!("{{agent=\"{}\",site=\"{}\",version=\"{AGENT_VERSION}\"}}", state.agent, state.site), 1.0)],
    );
    metric("edge_agent_uptime_seconds", "gauge", "Seconds since the agent started.", &one(state.uptime_secs() as f64));
    match state.buffer.stats() {
        Ok(stats) => {
            let oldest = stats.oldest_unacked_at.map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
            metric(
                "edge_buffer_depth",
                "gauge",
                "Punches buffered and not yet acknowledged.",
                &one(stats.depth as f64),
            );
            metric(
                "edge_buffer_oldest_unacked_age_seconds",
                "gauge",
                "Age of the oldest unacknowledged punch (0 when none).",
                &one(oldest),
            );
            metric("edge_buffer_last_seq", "gauge", "Last sequence number given out.", &one(stats.last_seq as f64));
            metric(
                "edge_buffer_acked_seq",
                "gauge",
                "Acknowledged up to this sequence.",
                &one(stats.acked_up_to as f64),
            );
            metric("edge_buffer_size_bytes", "gauge", "Buffer size on disk.", &one(stats.size_on_disk as f64));
            metric("edge_buffer_live_bytes", "gauge", "Bytes of live punches and keys.", &one(stats.live_bytes as f64));
            metric("edge_buffer_index_keys", "gauge", "Keys in the dedup index.", &one(stats.index_keys as f64));
            metric("edge_buffer_max_bytes", "gauge", "Configured disk limit.", &one(stats.max_disk_bytes as f64));
            metric(
                "edge_buffer_full",
                "gauge",
                "1 while new punches are refused.",
                &one(f64::from(u8::from(stats.full))),
            );
            metric("edge_buffer_punches_new_total", "counter", "Punches stored.", &one(stats.new_total as f64));
            metric(
                "edge_buffer_damaged",
                "gauge",
                "1 when the buffer was found to have lost punches at start.",
                &one(f64::from(u8::from(stats.damaged))),
            );
            metric(
                "edge_buffer_dead_letters",
                "gauge",
                "Punches held in the dead letters (refused by central for good).",
                &one(stats.dead_letters as f64),
            );
            metric(
                "edge_buffer_punches_duplicate_total",
                "counter",
                "Punches dropped as already known.",
                &one(stats.duplicates_total as f64),
            );
        }
        Err(e) => tracing::warn!(error = %e, "buffer figures unavailable for /metrics"),
    }
    let f = &state.forward;
    let count = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    metric("edge_forward_batches_sent_total", "counter", "Batches sent.", &one(count(&f.batches_sent)));
    metric("edge_forward_batches_acked_total", "counter", "Batches acknowledged.", &one(count(&f.batches_acked)));
    metric("edge_forward_punches_acked_total", "counter", "Punches acknowledged.", &one(count(&f.punches_acked)));
    metric("edge_forward_errors_total", "counter", "Failed deliveries.", &one(count(&f.send_errors)));
    metric("edge_forward_rejections_total", "counter", "Batches refused by central.", &one(count(&f.rejections)));
    metric(
        "edge_forward_dead_lettered_total",
        "counter",
        "Batches refused for good and moved to the dead letters.",
        &one(count(&f.dead_lettered)),
    );
    metric(
        "edge_forward_quarantined_total",
        "counter",
        "Punches central acknowledged but kept aside (quarantine).",
        &one(count(&f.quarantined)),
    );
    metric(
        "edge_forward_rate_punches_per_second",
        "gauge",
        "Punches acknowledged per second over the last 10 s.",
        &one(f.rate_per_second()),
    );
    metric(
        "edge_forward_last_ack_timestamp_seconds",
        "gauge",
        "Unix time of the last acknowledgement (0: none).",
        &one(count(&f.last_ack_unix_ms) / 1000.0),
    );
    metric(
        "edge_forward_backoff_seconds",
        "gauge",
        "Current backoff (0: delivering).",
        &one(count(&f.backoff_ms) / 1000.0),
    );
    metric("edge_status_sent_total", "counter", "Status envelopes delivered.", &one(count(&f.statuses_sent)));
    metric("edge_status_errors_total", "counter", "Status envelopes not delivered.", &one(count(&f.status_errors)));
    let devices = state.board.snapshot();
    let label = |serial: &protocol::DeviceSerial| format!("{{device=\"{serial}\"}}");
    let reachable: Vec<_> = devices.iter().map(|d| (label(&d.device), f64::from(u8::from(d.reachable)))).collect();
    metric("edge_device_reachable", "gauge", "1 when the last contact succeeded.", &reachable);
    let success: Vec<_> =
        devices.iter().map(|d| (label(&d.device), d.last_success.map_or(0.0, |t| t.timestamp() as f64))).collect();
    metric(
        "edge_device_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the last successful contact (0: never).",
        &success,
    );
    let counters = state.board.counters();
    let errors: Vec<_> = counters.iter().map(|(d, e, _)| (label(d), *e as f64)).collect();
    metric("edge_device_errors_total", "counter", "Failed contacts.", &errors);
    let punches: Vec<_> = counters.iter().map(|(d, _, p)| (label(d), *p as f64)).collect();
    metric("edge_device_punches_total", "counter", "Punches read from the device.", &punches);
    let checksums: Vec<_> = state.board.checksum_counters().iter().map(|(d, n)| (label(d), *n as f64)).collect();
    metric(
        "edge_device_checksum_mismatches_total",
        "counter",
        "Replies accepted with a wrong checksum (ZKTeco implementations that compute it off by one).",
        &checksums,
    );
    let device_faults: Vec<_> = devices
        .iter()
        .flat_map(|d| d.faults.iter().map(move |f| (format!("{{device=\"{}\",code=\"{}\"}}", d.device, f.code), 1.0)))
        .collect();
    metric("edge_device_fault", "gauge", "1 for each raised device fault.", &device_faults);
    let faults: Vec<_> =
        state.faults.snapshot().iter().map(|fault| (format!("{{code=\"{}\"}}", fault.code), 1.0)).collect();
    metric("edge_agent_fault", "gauge", "1 for each raised agent fault.", &faults);
    crate::sql::stats::render(&mut out, now);
    out
}

/// The `/healthz` body: `ok` without agent or device faults, `degraded` with any; the devices' faults are listed
/// with their reasons under `devices`.
pub fn render_health(state: &AgentState) -> serde_json::Value {
    let faults = state.faults.snapshot();
    let devices = state.board.snapshot();
    let device_faults = devices.iter().any(|d| !d.faults.is_empty());
    serde_json::json!({
        "status": if faults.is_empty() && !device_faults { "ok" } else { "degraded" },
        "devices": devices.iter().map(|d| serde_json::json!({
            "device": d.device.as_str(),
            "reachable": d.reachable,
            "faults": d.faults.iter().map(|f| serde_json::json!({
                "code": f.code, "message": f.message, "since": f.since.to_rfc3339(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "agent": state.agent.as_str(),
        "site": state.site.as_str(),
        "version": AGENT_VERSION,
        "uptime_secs": state.uptime_secs(),
        "buffer_depth": state.buffer.depth(),
        "faults": faults.iter().map(|f| serde_json::json!({
            "code": f.code, "message": f.message, "since": f.since.to_rfc3339(),
        })).collect::<Vec<_>>(),
    })
}

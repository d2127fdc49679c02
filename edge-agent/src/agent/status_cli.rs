//! `edge-agent status`: reads a running agent's `/healthz` and `/metrics` and prints a summary for a person.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use anyhow::Context;

/// One sample of the Prometheus text: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the Prometheus text format as our `/metrics` writes it (no escapes inside label values).
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest
                    .trim_end_matches('}')
                    .split(',')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        samples.push(Sample { name, labels, value });
    }
    samples
}

/// Fetches both endpoints from `base_url` and returns the summary text.
///
/// # Errors
/// When the agent does not answer.
pub async fn fetch_summary(base_url: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let base = base_url.trim_end_matches('/');
    let health: serde_json::Value = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .with_context(|| format!("is the agent running? nothing answers at {base}/healthz"))?
        .error_for_status()?
        .json()
        .await
        .context("reading /healthz")?;
    let metrics = client.get(format!("{base}/metrics")).send().await?.error_for_status()?.text().await?;
    Ok(summarize(&health, &parse_metrics(&metrics), chrono::Utc::now().timestamp()))
}

/// The human summary of a health document and metric samples, as of `now` (unix seconds).
pub fn summarize(health: &serde_json::Value, samples: &[Sample], now: i64) -> String {
    let get = |name: &str| samples.iter().find(|s| s.name == name).map_or(0.0, |s| s.value);
    let text = |key: &str| health[key].as_str().unwrap_or("?").to_owned();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "edge-agent {} (site {}), version {}, up {}: {}",
        text("agent"),
        text("site"),
        text("version"),
        duration(get("edge_agent_uptime_seconds")),
        text("status").to_uppercase()
    );
    let depth = get("edge_buffer_depth");
    let oldest = get("edge_buffer_oldest_unacked_age_seconds");
    let _ = writeln!(
        out,
        "buffer:     {} punches waiting{}; {:.1} of {:.0} MB on disk{}",
        depth as u64,
        if depth > 0.0 { format!(", oldest {}", duration(oldest)) } else { String::new() },
        get("edge_buffer_size_bytes") / 1_048_576.0,
        get("edge_buffer_max_bytes") / 1_048_576.0,
        if get("edge_buffer_full") > 0.0 { " - FULL, new punches refused" } else { "" },
    );
    let last_ack = get("edge_forward_last_ack_timestamp_seconds");
    let _ = writeln!(
        out,
        "forwarding: {:.0} punches/s; {} punches in {} batches acknowledged; last ack {}; {} errors{}",
        get("edge_forward_rate_punches_per_second"),
        get("edge_forward_punches_acked_total") as u64,
        get("edge_forward_batches_acked_total") as u64,
        ago(last_ack, now),
        get("edge_forward_errors_total") as u64,
        match get("edge_forward_backoff_seconds") {
            b if b > 0.0 => format!(", backing off {}", duration(b)),
            _ => String::new(),
        },
    );
    let mut devices: BTreeMap<String, [f64; 4]> = BTreeMap::new();
    for sample in samples {
        let Some(device) = sample.labels.get("device") else { continue };
        let slot = match sample.name.as_str() {
            "edge_device_reachable" => 0,
            "edge_device_last_success_timestamp_seconds" => 1,
            "edge_device_errors_total" => 2,
            "edge_device_punches_total" => 3,
            _ => continue,
        };
        devices.entry(device.clone()).or_default()[slot] = sample.value;
    }
    let _ = writeln!(out, "devices:    {}", devices.len());
    for (device, [reachable, last, errors, punches]) in &devices {
        let _ = writeln!(
            out,
            "  {device:<24} {:<12} last success {:<12} errors {:<6} punches {}",
            if *reachable > 0.0 { "reachable" } else { "UNREACHABLE" },
            ago(*last, now),
            *errors as u64,
            *punches as u64
        );
    }
    let mut lines = Vec::new();
    for fault in health["faults"].as_array().into_iter().flatten() {
        lines.push(format!(
            "  {} since {}: {}",
            fault["code"].as_str().unwrap_or("?"),
            fault["since"].as_str().unwrap_or("?"),
            fault["message"].as_str().unwrap_or("")
        ));
    }
    for device in health["devices"].as_array().into_iter().flatten() {
        for fault in device["faults"].as_array().into_iter().flatten() {
            lines.push(format!(
                "  device {} {} since {}: {}",
                device["device"].as_str().unwrap_or("?"),
                fault["code"].as_str().unwrap_or("?"),
                fault["since"].as_str().unwrap_or("?"),
                fault["message"].as_str().unwrap_or("")
            ));
        }
    }
    if lines.is_empty() {
        let _ = writeln!(out, "faults:     none");
    } else {
        let _ = writeln!(out, "faults:");
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

fn duration(secs: f64) -> String {
    let secs = secs.max(0.0) as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

fn ago(unix_secs: f64, now: i64) -> String {
    if unix_secs <= 0.0 {
        "never".into()
    } else {
        format!("{} ago", duration(now as f64 - unix_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_our_metric_names() {
        let text = "# HELP x\nedge_agent_uptime_seconds 3700\nedge_buffer_depth 12\n\
            edge_buffer_oldest_unacked_age_seconds 65\nedge_buffer_size_bytes 2097152\nedge_buffer_max_bytes 104857600\n\
            edge_buffer_full 1\nedge_forward_rate_punches_per_second 250\nedge_forward_punches_acked_total 900\n\
            edge_forward_batches_acked_total 3\nedge_forward_last_ack_timestamp_seconds 990\n\
            edge_device_reachable{device=\"A1\"} 0\nedge_device_last_success_timestamp_seconds{device=\"A1\"} 0\n\
            edge_device_errors_total{device=\"A1\"} 4\n";
        let samples = parse_metrics(text);
        assert_eq!(samples[5].name, "edge_buffer_full");
        let health = serde_json::json!({"agent": "gate", "site": "p1", "version": "0.1.0", "status": "degraded",
            "faults": [{"code": "buffer_full", "since": "2026-11-21T00:00:00Z", "message": "at limit"}]});
        let summary = summarize(&health, &samples, 1000);
        assert!(summary.starts_with("edge-agent gate (site p1), version 0.1.0, up 1h 1m: DEGRADED"), "{summary}");
        assert!(summary.contains("12 punches waiting, oldest 1m 5s; 2.0 of 100 MB on disk - FULL"), "{summary}");
        assert!(
            summary.contains("250 punches/s; 900 punches in 3 batches acknowledged; last ack 10s ago"),
            "{summary}"
        );
        assert!(summary.contains("A1") && summary.contains("UNREACHABLE") && summary.contains("errors 4"), "{summary}");
        assert!(summary.contains("buffer_full since 2026-11-21T00:00:00Z: at limit"), "{summary}");

        // A device fault alone makes the agent degraded and is listed with its reason.
        let health = serde_json::json!({"agent": "gate", "site": "p1", "version": "0.1.0", "status": "degraded",
            "faults": [], "devices": [{"device": "A1", "reachable": false, "faults": [{"code": "auth_failed",
            "since": "2026-11-21T00:00:00Z", "message": "the device rejected comm key 5"}]}]});
        let summary = summarize(&health, &samples, 1000);
        assert!(summary.contains(": DEGRADED"), "{summary}");
        assert!(!summary.contains("faults:     none"), "{summary}");
        assert!(
            summary.contains("device A1 auth_failed since 2026-11-21T00:00:00Z: the device rejected comm key 5"),
            "{summary}"
        );
    }
}

//! The real `edge-agent` binary: `run` serves /healthz and /metrics, sends status, drains a buffer it finds, leaves a
//! central without the agent inbox alone for minutes, stops cleanly on SIGTERM; `status` and `check-config` print
//! for a person.

use std::process::Command;
use std::time::Duration;

use edge_agent::buffer::{Buffer, BufferOptions};
use edge_agent::faults::Faults;
use system_tests::bench::buffer::agent_config;
use system_tests::fake_central::FakeCentral;
use system_tests::harness::{self, Spawned};
use system_tests::punches;

async fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn run_drains_its_buffer_reports_status_serves_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    {
        // A buffer left by an earlier run, with punches not yet forwarded.
        let buffer = Buffer::open(
            BufferOptions {
                path: data_dir.join("buffer"),
                max_disk_bytes: 1 << 30,
                cache_bytes: 4 << 20,
                key_retention: Duration::from_secs(86_400),
            },
            Faults::new(),
        )
        .expect("open");
        buffer.append(punches::range("LEFT-1", 0, 3000)).await.expect("append");
    }
    let central = FakeCentral::start("bench-token").await.expect("fake central");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, agent_config(&data_dir, &central.url(), 3)).expect("config");
    let mut agent =
        Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[]).expect("start agent");
    let url = agent.listening_url().await.expect("announced");

    wait_until("drain", Duration::from_secs(20), || central.stored_count() == 3000).await;
    wait_until("a status envelope", Duration::from_secs(20), || !central.statuses().is_empty()).await;
    let status = central.statuses().remove(0);
    assert_eq!(status.agent.as_str(), "bench-agent");
    assert_eq!(status.devices.len(), 3, "every configured device is reported");
    assert!(status.devices.iter().all(|d| !d.reachable));

    let client = reqwest::Client::new();
    let health: serde_json::Value =
        client.get(format!("{url}/healthz")).send().await.expect("healthz").json().await.expect("json");
    assert_eq!(health["agent"], "bench-agent");
    // Central stores a batch a moment before the agent hears the answer and counts it.
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = client.get(format!("{url}/metrics")).send().await.expect("metrics").text().await.expect("text");
        if metrics.contains("edge_forward_punches_acked_total 3000") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for name in [
        "edge_buffer_depth 0",
        "edge_buffer_oldest_unacked_age_seconds 0",
        "edge_forward_punches_acked_total 3000",
        "edge_device_last_success_timestamp_seconds{device=\"BENCH-00\"} 0",
        // Devices at a port where nothing answers: the poller's refused connections are counted.
        "edge_device_errors_total{device=\"BENCH-02\"} ",
        "edge_forward_rate_punches_per_second",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name:?}:\n{metrics}");
    }

    let status_bin = harness::binary("edge-agent").expect("binary");
    let output = Command::new(&status_bin).args(["status", "--url", &url]).output().expect("status command");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    assert!(printed.starts_with("edge-agent bench-agent (site bench-site)"), "{printed}");
    assert!(printed.contains("0 punches waiting") && printed.contains("3000 punches in"), "{printed}");
    assert!(printed.contains("BENCH-01") && printed.contains("UNREACHABLE"), "{printed}");

    // The fake central is like an older release without the agent inbox: its 404 makes the agent wait minutes before
    // asking again, not back off from one second.
    let inbox_polls = || central.unknown_requests().iter().filter(|r| r.starts_with("GET /api/v1/agent/inbox")).count();
    wait_until("an inbox poll", Duration::from_secs(20), || inbox_polls() > 0).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        inbox_polls(),
        1,
        "a central without the inbox is asked again after minutes: {:?}",
        central.unknown_requests()
    );

    let pid = agent.pid().expect("pid");
    let term = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill -TERM");
    assert!(term.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), agent.wait()).await.expect("stops in time").expect("wait");
    assert!(exit.success(), "clean exit on SIGTERM: {exit}");
}

#[test]
fn check_config_names_every_wrong_key_with_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    let text = agent_config(dir.path(), "http://127.0.0.1:9", 2)
        .replace("Asia/Kolkata", "Mars/Olympus")
        .replace("[buffer]", "[buffer]\nmax_disk = 5");
    std::fs::write(&file, text).expect("write");
    let output = Command::new(harness::binary("edge-agent").expect("binary"))
        .args(["check-config", &file.to_string_lossy()])
        .output()
        .expect("check-config");
    assert!(!output.status.success());
    let printed = String::from_utf8_lossy(&output.stderr);
    let file_name = file.display().to_string();
    for expected in [
        format!("{file_name}: buffer.max_disk: unknown key"),
        format!("{file_name}: device[0].time_zone: unknown IANA time zone \"Mars/Olympus\""),
        format!("{file_name}: device[1].time_zone: unknown IANA time zone \"Mars/Olympus\""),
    ] {
        assert!(printed.contains(&expected), "missing {expected:?} in:\n{printed}");
    }

    let good = dir.path().join("good.toml");
    std::fs::write(&good, agent_config(dir.path(), "http://127.0.0.1:9", 2)).expect("write");
    let output = Command::new(harness::binary("edge-agent").expect("binary"))
        .args(["check-config", &good.to_string_lossy()])
        .output()
        .expect("check-config");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("OK (2 devices"));
}

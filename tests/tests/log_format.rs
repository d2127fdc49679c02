//! Log output of both binaries when stderr is not a terminal (a file, the journal, a pipe): plain lines without ANSI
//! colour codes by default, one JSON object per line with `--log-format json` (agent) or `CENTRAL_API_LOG_FORMAT=json`
//! (central).

use std::process::{Command, Stdio};
use std::time::Duration;

use system_tests::bench::buffer::agent_config;
use system_tests::central::{Backend, CentralDb};
use system_tests::harness;

/// Runs the agent for a moment against a central and devices that are not there; returns what it wrote to stderr.
fn agent_stderr(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, agent_config(&dir.path().join("data"), "http://127.0.0.1:9", 2)).expect("config");
    let mut args: Vec<&str> = extra.to_vec();
    let config_arg = config.to_string_lossy().to_string();
    args.extend(["run", "--config", &config_arg]);
    let mut child = Command::new(harness::binary("edge-agent").expect("binary"))
        .args(&args)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("edge-agent");
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().expect("kill");
    let output = child.wait_with_output().expect("output");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_agent_writes_no_colour_codes_off_a_terminal_and_json_when_asked() {
    let text = agent_stderr(&[]);
    assert!(text.contains("device contact failed"), "the agent logged its unreachable devices: {text}");
    assert!(!text.contains('\u{1b}'), "no ANSI escape off a terminal: {text:?}");

    let json = agent_stderr(&["--log-format", "json"]);
    let lines: Vec<&str> = json.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{json}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(value["level"].is_string() && value["fields"].is_object(), "{line}");
    }
    assert!(json.contains("device contact failed") && !json.contains('\u{1b}'));
}

#[tokio::test]
async fn central_writes_json_lines_when_asked() {
    let db = CentralDb::new(Backend::Sqlite).await;
    let mut child = Command::new(harness::binary("central-api").expect("binary"))
        .arg("serve")
        .envs(db.env())
        .env("CENTRAL_API_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env("CENTRAL_API_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("central-api serve");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    child.kill().expect("kill");
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "central logged something while starting: {stderr}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
    }
    assert!(!stderr.contains('\u{1b}'), "no ANSI escape: {stderr:?}");
    db.cleanup().await;
}

//! The unit files in `systemd/` pass `systemd-analyze verify` without a warning and keep the settings the
//! operations contract asks for.

use std::path::{Path, PathBuf};
use std::process::Command;

use system_tests::harness;

fn unit_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `text` with `/usr/local/bin/<binary>` pointed at the built binary (verify checks that it is executable)
/// and runs `systemd-analyze verify` on it; returns (success, everything it printed).
fn verify(dir: &Path, name: &str, text: &str, binary: &str) -> (bool, String) {
    let built = harness::binary(binary).expect("workspace binary built");
    let text = text.replace(&format!("/usr/local/bin/{binary}"), &built.to_string_lossy());
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).expect("write unit");
    let output = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap_or_else(|e| {
        panic!("systemd-analyze is needed for this test ({e}); install it with `apt-get install systemd`")
    });
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // Warnings about the host's own units (not ours) are not our business.
    let ours: String = printed.lines().filter(|l| l.contains(name)).map(|l| format!("{l}\n")).collect();
    (output.status.success(), ours)
}

#[test]
fn edge_agent_unit_verifies_cleanly_and_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = unit_text("edge-agent.service");
    let (ok, printed) = verify(dir.path(), "edge-agent.service", &text, "edge-agent");
    assert!(ok && printed.is_empty(), "systemd-analyze verify: {printed}");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StateDirectory=edge-agent",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "SupplementaryGroups=dialout",
        "MemoryMax=",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "edge-agent.service lacks {line}");
    }
}

#[test]
fn central_api_unit_verifies_cleanly_and_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = unit_text("central-api.service");
    let (ok, printed) = verify(dir.path(), "central-api.service", &text, "central-api");
    assert!(ok && printed.is_empty(), "systemd-analyze verify: {printed}");
    for line in [
        "Type=exec",
        "Restart=on-failure",
        "StateDirectory=central-api",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "MemoryMax=",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "central-api.service lacks {line}");
    }
}

#[test]
fn a_broken_unit_is_caught() {
    // Guards the check itself: a misspelt value must show up, not pass silently.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = unit_text("edge-agent.service").replace("ProtectSystem=strict", "ProtectSystem=strictly");
    let (_, printed) = verify(dir.path(), "edge-agent.service", &text, "edge-agent");
    assert!(printed.contains("ProtectSystem") || printed.contains("protect system"), "not caught: {printed:?}");
}

/// The value of the first `key=` line of a unit.
fn unit_value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

/// Issue 12: the central unit passes its configuration file, and the shipped configuration keeps the database in the
/// unit's state directory (the only writable place under `ProtectSystem=strict`). systemd cannot run units in this
/// container (not PID 1), so the unit's ExecStart runs as systemd would, in a scratch root: `/etc` and `/var/lib`
/// under a temporary directory, the shipped configuration installed where the unit reads it, `STATE_DIRECTORY` and
/// `CONFIGURATION_DIRECTORY` set as systemd sets them.
#[tokio::test]
async fn central_api_unit_starts_with_its_config_and_state_directory() {
    let text = unit_text("central-api.service");
    let state = unit_value(&text, "StateDirectory");
    let config_dir = unit_value(&text, "ConfigurationDirectory");
    let exec: Vec<&str> = unit_value(&text, "ExecStart").split_whitespace().collect();
    assert_eq!(exec.first(), Some(&"/usr/local/bin/central-api"), "{exec:?}");
    let at = exec.iter().position(|a| *a == "--config").expect("ExecStart passes --config");
    let config_path = exec[at + 1];
    assert_eq!(config_path, format!("/etc/{config_dir}/central-api.toml"), "config in the ConfigurationDirectory");
    assert!(exec.contains(&"serve"), "{exec:?}");

    let shipped = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/central-api.toml"))
        .expect("configs/central-api.toml");
    let state_dir = format!("/var/lib/{state}");
    assert!(
        shipped.lines().any(|l| l.trim() == format!("data_dir = \"{state_dir}\"")),
        "configs/central-api.toml must set data_dir = \"{state_dir}\" (the unit's StateDirectory)"
    );

    // The scratch root.
    let root = tempfile::tempdir().expect("tempdir");
    let scratch = |path: &str| root.path().join(path.trim_start_matches('/'));
    std::fs::create_dir_all(scratch(&format!("/etc/{config_dir}"))).unwrap();
    std::fs::create_dir_all(scratch(&state_dir)).unwrap();
    let installed = shipped.replace(&state_dir, &scratch(&state_dir).display().to_string());
    std::fs::write(scratch(config_path), installed).unwrap();
    let args: Vec<String> = exec[1..]
        .iter()
        .map(|a| if a.starts_with("/etc/") { scratch(a).display().to_string() } else { (*a).to_owned() })
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let state_env = scratch(&state_dir).display().to_string();
    let config_env = scratch(&format!("/etc/{config_dir}")).display().to_string();
    // Only the listening port is changed (the shipped 127.0.0.1:8080 may be taken on a test machine).
    let mut central = harness::Spawned::start(
        "central-api",
        &args,
        &[
            ("STATE_DIRECTORY", &state_env),
            ("CONFIGURATION_DIRECTORY", &config_env),
            ("CENTRAL_API_LISTEN", "127.0.0.1:0"),
            ("RUST_LOG", "warn"),
        ],
    )
    .expect("start central-api");
    let url = central.listening_url().await.expect("the service comes up");
    let health = reqwest::get(format!("{url}/healthz")).await.expect("healthz");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let db = scratch(&state_dir).join("central.db");
    assert!(db.is_file(), "the database is not in the state directory: {}", db.display());
    central.terminate().expect("SIGTERM");
    let status = central.wait().await.expect("exit");
    assert!(status.success(), "central-api stopped with {status}");
}

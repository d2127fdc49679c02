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

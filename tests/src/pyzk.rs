//! pyzk 0.9, a ZKTeco client we did not write, run against our simulator: the interop tests and the zk-read bench.
//!
//! `.ci/test` builds a virtualenv with `pip install pyzk==0.9` under `target/pyzk-venv` and exports `PYZK_PYTHON`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

/// The Python interpreter that has pyzk 0.9.
///
/// # Errors
/// When neither `PYZK_PYTHON` nor `target/pyzk-venv` is there, saying how to create it.
pub fn python() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PYZK_PYTHON") {
        return Ok(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyzk-venv/bin/python");
    if venv.is_file() {
        return Ok(venv);
    }
    bail!(
        "pyzk is not available: PYZK_PYTHON is not set and {} does not exist. Run `bash .ci/test` (its ensure_pyzk \
         step creates the virtualenv), or: python3 -m venv target/pyzk-venv && target/pyzk-venv/bin/pip install \
         pyzk==0.9",
        venv.display()
    )
}

/// The script that reads a device with pyzk and prints JSON.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pyzk/read_device.py")
}

/// Runs pyzk against `addr` and returns its JSON: `serial`, `time`, `users`, `attendance`, `seconds` (the time
/// `get_attendance` took). `attendance_only` skips the rest.
///
/// # Errors
/// When pyzk is missing or fails.
pub fn read_device(addr: SocketAddr, key: u32, udp: bool, attendance_only: bool) -> anyhow::Result<serde_json::Value> {
    let python = python()?;
    let mut command = Command::new(&python);
    command.arg(script()).arg(addr.ip().to_string()).arg(addr.port().to_string()).arg(key.to_string());
    command.arg(if udp { "udp" } else { "tcp" });
    if attendance_only {
        command.arg("attendance-only");
    }
    let output = command.output().with_context(|| format!("running {}", python.display()))?;
    if !output.status.success() {
        bail!("pyzk failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("reading pyzk's JSON")
}

/// Runs pyzk's `get_users()` and `get_templates()` against `addr` and returns its JSON: `users` (uid, user_id, name,
/// privilege, card) and `templates` (uid, fid, valid, template in hex).
///
/// # Errors
/// When pyzk is missing or fails.
pub fn read_users(addr: SocketAddr, key: u32, udp: bool) -> anyhow::Result<serde_json::Value> {
    let python = python()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pyzk/read_users.py");
    let mut command = Command::new(&python);
    command.arg(script).arg(addr.ip().to_string()).arg(addr.port().to_string()).arg(key.to_string());
    command.arg(if udp { "udp" } else { "tcp" });
    let output = command.output().with_context(|| format!("running {}", python.display()))?;
    if !output.status.success() {
        bail!("pyzk failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("reading pyzk's JSON")
}

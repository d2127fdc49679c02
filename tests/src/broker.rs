//! A private Mosquitto started by a test with the shipped configuration (`configs/mosquitto/attendance.conf` and
//! `attendance.acl`): on a free loopback port, with its own password file (made with `mosquitto_passwd -b`) and a
//! copy of the ACL in a temporary directory.
//!
//! The shipped file is used line by line; only what is specific to a real host is changed: the listener becomes
//! `127.0.0.1:<port>` without TLS (TLS is covered by `forward_mqtt_tls.rs`), the password and ACL paths point into the
//! temporary directory, and every denial is logged (`log_type all`) so a test can read what the broker refused.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// The shipped configuration's directory.
pub fn shipped_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/mosquitto")
}

/// A running private broker; killed on drop.
pub struct SecuredBroker {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for SecuredBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SecuredBroker {
    /// Starts the broker with these `(user, password)` logins.
    ///
    /// # Errors
    /// When `mosquitto` or `mosquitto_passwd` is missing (the message says how to install them), or the broker does
    /// not listen within 5 s.
    pub fn start(users: &[(&str, &str)]) -> anyhow::Result<Self> {
        for tool in ["mosquitto", "mosquitto_passwd"] {
            let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output()?.status.success();
            if !found {
                bail!("{tool} is needed for this test and is not on PATH: apt-get install mosquitto (.ci/test does)");
            }
        }
        let dir = tempfile::tempdir()?;
        // Mosquitto started as root drops to its own user, which must be able to read these throwaway files.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let passwd = dir.path().join("attendance.passwd");
        std::fs::write(&passwd, "")?;
        for (user, password) in users {
            let status = Command::new("mosquitto_passwd").arg("-b").arg(&passwd).arg(user).arg(password).status()?;
            if !status.success() {
                bail!("mosquitto_passwd -b {} {user} failed: {status}", passwd.display());
            }
        }
        let acl = dir.path().join("attendance.acl");
        std::fs::copy(shipped_dir().join("attendance.acl"), &acl).context("copying the shipped ACL")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let shipped = std::fs::read_to_string(shipped_dir().join("attendance.conf"))?;
        let conf = dir.path().join("attendance.conf");
        std::fs::write(&conf, adapt(&shipped, port, &passwd, &acl)?)?;
        for file in [&passwd, &acl, &conf] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644))?;
        }
        let log = std::fs::File::create(dir.path().join("mosquitto.log"))?;
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting mosquitto")?;
        let broker = Self { child, dir, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(broker);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("the test's Mosquitto did not listen on {port}:\n{}", broker.log())
    }

    /// Everything the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

/// The shipped configuration with this host's listener, files and logging.
fn adapt(shipped: &str, port: u16, passwd: &Path, acl: &Path) -> anyhow::Result<String> {
    let mut out = String::new();
    let (mut saw_listener, mut saw_passwd, mut saw_acl) = (false, false, false);
    for line in shipped.lines() {
        let key = line.split_whitespace().next().unwrap_or_default();
        let replaced = match key {
            "listener" => {
                saw_listener = true;
                format!("listener {port} 127.0.0.1")
            }
            "password_file" => {
                saw_passwd = true;
                format!("password_file {}", passwd.display())
            }
            "acl_file" => {
                saw_acl = true;
                format!("acl_file {}", acl.display())
            }
            "cafile"
            | "certfile"
            | "keyfile"
            | "require_certificate"
            | "log_dest"
            | "log_type"
            | "persistence"
            | "persistence_location" => String::new(),
            _ => line.to_owned(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    if !(saw_listener && saw_passwd && saw_acl) {
        bail!("the shipped attendance.conf lacks a listener, password_file or acl_file line");
    }
    out.push_str("persistence false\nlog_dest stderr\nlog_type all\n");
    Ok(out)
}

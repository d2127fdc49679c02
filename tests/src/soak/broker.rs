//! A private Mosquitto for the soak, on a free loopback port with persistence in a temporary directory, which the
//! soak restarts in the middle of a run (SIGTERM, which saves the persistent sessions and their queued messages, then
//! the same configuration again) without touching the machine's shared broker.
//!
//! Logins and ACLs are not the subject here (`mqtt_auth.rs` covers them with the shipped configuration): clients are
//! anonymous, and every batch still carries its agent's MAC, which central checks.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// A running private broker; killed on drop.
pub struct PrivateBroker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PrivateBroker {
    /// Starts the broker.
    ///
    /// # Errors
    /// When `mosquitto` is missing (the message says how to install it) or does not listen within 5 s.
    pub fn start() -> anyhow::Result<Self> {
        let found = Command::new("sh").arg("-c").arg("command -v mosquitto").output()?.status.success();
        if !found {
            bail!("mosquitto is needed for the soak and is not on PATH: apt-get install mosquitto (.ci/test does)");
        }
        let dir = tempfile::Builder::new().prefix("soak-mqtt-").tempdir()?;
        // Mosquitto started as root drops to its own user, which must write the persistence file here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
             autosave_interval 0\nmax_queued_messages 200000\nmax_inflight_messages 100\n\
             message_size_limit 0\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            dir.path().display()
        );
        let path = dir.path().join("soak.conf");
        std::fs::write(&path, conf)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        let mut broker = Self { dir, port, child: None };
        broker.launch()?;
        Ok(broker)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM (sessions saved), then start again on the same port. Returns how long it was down.
    ///
    /// # Errors
    /// When it does not stop within 10 s or does not listen again.
    pub fn restart(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        if let Some(mut child) = self.child.take() {
            let pid = libc::pid_t::try_from(child.id()).context("pid")?;
            // SAFETY: kill(2) on the broker this value started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("mosquitto did not stop within 10 s of SIGTERM (killed)");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.launch()?;
        Ok(started.elapsed())
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("mosquitto.log"))?;
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("soak.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting mosquitto")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        bail!(
            "the soak's Mosquitto did not listen on {} within 5 s:\n{}",
            self.port,
            std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
        )
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

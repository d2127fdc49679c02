//! A private PostgreSQL server for the soak: its own data directory (initdb into a temporary directory) on a free
//! loopback port, so the soak can restart it in the middle of a run without touching the machine's shared server.
//!
//! The server runs as the `postgres` system user when started as root (PostgreSQL refuses to run as root), through
//! `setpriv`, which execs the server itself so the harness holds the postmaster's pid and can stop it with SIGINT
//! (PostgreSQL's "fast" shutdown, what `pg_ctl restart -m fast` sends).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Where Debian puts the server binaries; the newest version present is used.
const PG_ROOT: &str = "/usr/lib/postgresql";

/// A running private server; stopped (fast) on drop.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
}

impl PrivatePostgres {
    /// Initialises a cluster (trust authentication, user `postgres`) and starts it.
    ///
    /// # Errors
    /// When no PostgreSQL server binaries are installed (the message says which package), initdb fails, or the
    /// server does not accept connections within 30 s.
    pub fn start() -> anyhow::Result<Self> {
        let bin = server_bin()?;
        let dir = tempfile::Builder::new().prefix("soak-pg-").tempdir()?;
        // SAFETY: geteuid(2) has no preconditions.
        let owner = if unsafe { libc::geteuid() } == 0 { Some(postgres_user()?) } else { None };
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&data, Some(uid), Some(gid))?;
        }
        let output = as_owner(owner, &bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-instructions", "-D"])
            .arg(&data)
            .output()
            .context("running initdb")?;
        if !output.status.success() {
            bail!("initdb failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut server = Self { bin, dir, port, owner, child: None };
        server.launch()?;
        Ok(server)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` as the superuser, directly (not through any proxy).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The postmaster's pid (its backends are its children).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fast shutdown (SIGINT: active transactions rolled back, connections closed), then start again on the same
    /// port and data directory. Returns how long the server was unreachable.
    ///
    /// # Errors
    /// When it does not stop within 30 s or does not come back.
    pub fn restart_fast(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.stop()?;
        self.launch()?;
        Ok(started.elapsed())
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        let data = self.dir.path().join("data");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("server.log"))?;
        let child = as_owner(self.owner, &self.bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"])
            .args(["-c", "shared_buffers=256MB", "-c", "fsync=on", "-c", "logging_collector=off"])
            .arg("-k")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting postgres")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("postgres exited ({status}) at start:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the soak's PostgreSQL did not accept connections within 30 s:\n{}", self.log_tail())
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let pid = libc::pid_t::try_from(child.id()).context("pid")?;
        // SAFETY: kill(2) on the postmaster this value started.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!("PostgreSQL did not stop within 30 s of SIGINT (killed)")
    }

    /// The end of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The newest installed server's `bin` directory.
fn server_bin() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(PG_ROOT)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("postgres").is_file().then_some((v, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server under {PG_ROOT}/<version>/bin: the soak starts a private one; \
             apt-get install postgresql (.ci/test does)"
        ),
    }
}

/// The uid and gid of the `postgres` system user.
fn postgres_user() -> anyhow::Result<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd")?;
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() == Some(&"postgres") && fields.len() > 3 {
            return Ok((fields[2].parse()?, fields[3].parse()?));
        }
    }
    bail!("running as root, but there is no `postgres` user to run the soak's PostgreSQL as (install postgresql)")
}

/// `program` run as `owner` (through setpriv, which execs it) or as ourselves.
fn as_owner(owner: Option<(u32, u32)>, program: &Path) -> Command {
    match owner {
        Some((uid, gid)) => {
            let mut command = Command::new("setpriv");
            command
                .arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            command
        }
        None => Command::new(program),
    }
}

//! Starting the project's real binaries from tests: find them in the target directory, run them on port 0, and read
//! the address they announce on stdout.
//!
//! Contract with the binaries: a server prints one line `<name> listening on <url>` to stdout once it accepts
//! connections (logs go to stderr). Children are killed when their handle is dropped, so a failing test leaves no
//! stray processes.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The path of a workspace binary (`central-api`, `edge-agent`, ...) built next to the running test.
///
/// # Errors
/// When the binary has not been built; the message says how to build it.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    // A test runs from target/<profile>/deps/<test>, a binary (bench, demo) from target/<profile>/<bin>.
    let exe_dir = exe.parent().ok_or_else(|| anyhow!("unexpected executable path {exe:?}"))?;
    let candidates = [exe_dir.join(&file), exe_dir.parent().map(|p| p.join(&file)).unwrap_or_default()];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => Ok(path.clone()),
        None => bail!(
            "{} not found; build it first (`cargo build --workspace`, or with --release for benches)",
            candidates[0].display()
        ),
    }
}

/// A running child process whose stdout lines can be awaited.
pub struct Spawned {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    name: String,
}

impl Spawned {
    /// Starts workspace binary `name` with `args` and extra environment `envs`; stderr is passed through.
    ///
    /// # Errors
    /// When the binary is missing or cannot be started.
    pub fn start(name: &str, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_as(name, args, envs, false)
    }

    /// Like [`Spawned::start`], with `WATCHDOG_PID` set to the child's own pid (through `sh -c exec`), as systemd
    /// does for a unit with `WatchdogSec`: pass `NOTIFY_SOCKET` and `WATCHDOG_USEC` in `envs`.
    ///
    /// # Errors
    /// When the binary is missing or cannot be started.
    pub fn start_under_watchdog(name: &str, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_as(name, args, envs, true)
    }

    fn start_as(name: &str, args: &[&str], envs: &[(&str, &str)], watchdog_pid: bool) -> anyhow::Result<Self> {
        let path = binary(name)?;
        let mut command = if watchdog_pid {
            let mut shell = Command::new("sh");
            shell.arg("-c").arg("export WATCHDOG_PID=$$; exec \"$0\" \"$@\"").arg(&path);
            shell
        } else {
            Command::new(&path)
        };
        command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().with_context(|| format!("starting {}", path.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("{name}: no stdout"))?;
        Ok(Self { child, stdout: BufReader::new(stdout).lines(), name: name.to_owned() })
    }

    /// Waits up to `timeout` for a stdout line starting with `prefix` and returns the rest of it.
    ///
    /// # Errors
    /// When the process exits or the time runs out first.
    pub async fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
        let name = self.name.clone();
        let find = async {
            while let Some(line) = self.stdout.next_line().await? {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Ok(rest.trim().to_owned());
                }
            }
            let status = self.child.wait().await?;
            bail!("{name} exited ({status}) before printing {prefix:?}")
        };
        tokio::time::timeout(timeout, find)
            .await
            .map_err(|_| anyhow!("{name} did not print {prefix:?} within {timeout:?}"))?
    }

    /// Waits for the `<name> listening on <url>` announcement and returns the URL.
    ///
    /// # Errors
    /// As [`Spawned::wait_for_line`].
    pub async fn listening_url(&mut self) -> anyhow::Result<String> {
        let prefix = format!("{} listening on ", self.name);
        self.wait_for_line(&prefix, Duration::from_secs(30)).await
    }

    /// The process id, for signals.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the process (SIGKILL) and reaps it.
    ///
    /// # Errors
    /// When the kill fails.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await.with_context(|| format!("killing {}", self.name))
    }

    /// Sends SIGTERM (what systemd sends to stop a unit).
    ///
    /// # Errors
    /// When the process is gone or the signal cannot be sent.
    pub fn terminate(&self) -> anyhow::Result<()> {
        let pid = self.pid().ok_or_else(|| anyhow!("{} already exited", self.name))?;
        let pid = libc::pid_t::try_from(pid).context("pid")?;
        // SAFETY: kill(2) with a pid we spawned and a valid signal number.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!("SIGTERM to {}: {}", self.name, std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for the process to exit on its own.
    ///
    /// # Errors
    /// When waiting fails.
    pub async fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        Ok(self.child.wait().await?)
    }
}

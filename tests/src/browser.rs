//! A real headless Chromium for the dashboard tests, driven over WebDriver (fantoccini) through Debian's
//! `/usr/bin/chromedriver`, which `.ci/test` installs (`ensure_chromium`). A missing chromedriver is an error that
//! says how to install it, never a skip.
//!
//! [`Browser::start`] runs chromedriver on a free loopback port in its own process group and opens one session with
//! the flags this machine needs (headless, no sandbox as root, no background networking: the network is closed), a
//! fresh profile directory, a download directory, and a window size. [`Browser::screenshot`] saves PNGs under
//! `target/test-artifacts/dashboard/` and prints their paths. Dropping the browser kills chromedriver's whole
//! process group, so no Chromium outlives a failed test.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;
use tokio::process::{Child, Command};

/// Where Debian's chromium-driver package puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where Debian's chromium package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The flags Chromium needs on this machine: headless, as root, on a closed network.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
];

/// A headless Chromium session with its chromedriver.
pub struct Browser {
    pub client: Client,
    /// Where downloads land.
    pub downloads: PathBuf,
    driver: Child,
    _profile: tempfile::TempDir,
    _download_dir: tempfile::TempDir,
}

/// `target/test-artifacts/dashboard` of this workspace (or of `CARGO_TARGET_DIR`).
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        manifest.parent().unwrap_or(manifest).join("target")
    });
    target.join("test-artifacts").join("dashboard")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port for chromedriver")?;
    Ok(listener.local_addr()?.port())
}

impl Browser {
    /// Starts chromedriver and a Chromium session with a `width` x `height` window.
    ///
    /// # Errors
    /// When chromedriver or Chromium is missing (the message says how to install them) or does not start.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        for (path, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            if !Path::new(path).is_file() {
                bail!(
                    "{path} is missing: the browser test needs Debian's {package} \
                     (`bash .ci/test` installs it; by hand: apt-get install -y chromium chromium-driver)"
                );
            }
        }
        let port = free_port()?;
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        let driver = command.spawn().with_context(|| format!("starting {CHROMEDRIVER}"))?;
        let profile = tempfile::tempdir().context("a Chromium profile directory")?;
        let download_dir = tempfile::tempdir().context("a download directory")?;
        let mut browser_args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        browser_args.push(format!("--user-data-dir={}", profile.path().display()));
        browser_args.push(format!("--window-size={width},{height}"));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": browser_args,
                "prefs": {
                    "download.default_directory": download_dir.path().display().to_string(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "chromedriver not ready yet");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => bail!("no WebDriver session from {CHROMEDRIVER} on {url} within 20 s: {e}"),
            }
        };
        let downloads = download_dir.path().to_owned();
        Ok(Self { client, downloads, driver, _profile: profile, _download_dir: download_dir })
    }

    /// Resizes the window (CSS pixels of the outer window).
    ///
    /// # Errors
    /// When the driver refuses.
    pub async fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.client.set_window_size(width, height).await.context("resizing the window")?;
        Ok(())
    }

    /// Saves a screenshot of the viewport as `target/test-artifacts/dashboard/<name>.png`, prints and returns its
    /// path.
    ///
    /// # Errors
    /// When the screenshot cannot be taken or written.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await.with_context(|| format!("screenshot {name}"))?;
        if !png.starts_with(b"\x89PNG") {
            bail!("screenshot {name} is not a PNG ({} bytes)", png.len());
        }
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).with_context(|| format!("writing {}", path.display()))?;
        println!("screenshot: {}", path.display());
        Ok(path)
    }

    /// Waits up to `timeout` for a file ending in `suffix` to be complete in the download directory.
    ///
    /// # Errors
    /// When none arrives in time.
    pub async fn wait_for_download(&self, suffix: &str, timeout: Duration) -> anyhow::Result<PathBuf> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = std::fs::read_dir(&self.downloads)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(suffix));
            if let Some(path) = found {
                return Ok(path);
            }
            if Instant::now() >= deadline {
                let seen: Vec<_> =
                    std::fs::read_dir(&self.downloads)?.filter_map(Result::ok).map(|e| e.path()).collect();
                bail!("no *{suffix} download in {} within {timeout:?} (there: {seen:?})", self.downloads.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session (Chromium quits), then stops chromedriver.
    pub async fn close(mut self) {
        if let Err(e) = self.client.clone().close().await {
            tracing::warn!(error = %e, "closing the WebDriver session");
        }
        self.kill_driver();
        let _ = self.driver.wait().await;
    }

    fn kill_driver(&mut self) {
        if let Some(pid) = self.driver.id().and_then(|id| i32::try_from(id).ok()) {
            // SAFETY: kill(2) on the process group chromedriver leads (it was started with process_group(0)), so
            // Chromium and its helpers go with it; no memory is touched.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill_driver();
    }
}

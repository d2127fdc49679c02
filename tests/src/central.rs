//! Driving a real `central-api` from tests and benches: a database of either backend, the administration commands,
//! a served instance on a random port, punch and batch builders, and row counts read straight from the database.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{NaiveDate, NaiveDateTime, Utc};
use protocol::{Direction, Encoding, Punch, PunchBatch, PunchSource, PunchState, SequencedPunch, VerifyMode};
use sqlx::Connection;
use tokio::io::AsyncWriteExt;

use crate::harness::{binary, Spawned};
use crate::services::{fresh_postgres, TestDatabase};

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" => Ok(Self::Postgres),
            _ => Err(format!("backend {s:?} is not sqlite or postgres")),
        }
    }
}

/// Generates, for each named `async fn(Backend)`, a module with one test per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario($crate::central::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario($crate::central::Backend::Postgres).await
                }
            }
        )*
    };
}

/// A database for one central-api, with the environment that points the binary at it.
pub struct CentralDb {
    pub backend: Backend,
    pub url: String,
    dir: tempfile::TempDir,
    postgres: Option<TestDatabase>,
}

impl CentralDb {
    /// A fresh, empty database: a SQLite file in a temporary directory, or a new PostgreSQL database.
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("central.db").display());
                Self { backend, url, dir, postgres: None }
            }
            Backend::Postgres => {
                let db = fresh_postgres().await;
                Self { backend, url: db.url.clone(), dir, postgres: Some(db) }
            }
        }
    }

    /// The temporary directory (data dir, certificates, config files).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Environment for the central-api binary.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CENTRAL_API_DATABASE_URL".into(), self.url.clone()),
            ("CENTRAL_API_DATA_DIR".into(), self.dir.path().join("data").display().to_string()),
            ("RUST_LOG".into(), std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())),
        ]
    }

    /// Runs `central-api <args>` to completion with this database, returning stdout.
    ///
    /// # Errors
    /// When it exits non-zero; the error carries its stderr.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        self.cli_with_stdin(args, None).await
    }

    /// As [`CentralDb::cli`], writing `stdin` to the process.
    ///
    /// # Errors
    /// As [`CentralDb::cli`].
    pub async fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let output = run_cli(args, &self.env(), stdin).await?;
        if !output.status.success() {
            bail!("central-api {args:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8(output.stdout)?)
    }

    /// Creates a site in `Asia/Kolkata`.
    ///
    /// # Errors
    /// When the command fails.
    pub async fn create_site(&self, site: &str) -> anyhow::Result<()> {
        self.cli(&["create-site", site, "--name", &format!("Site {site}"), "--time-zone", "Asia/Kolkata"]).await?;
        Ok(())
    }

    /// Creates an agent and returns its token.
    ///
    /// # Errors
    /// When the command fails or prints no token.
    pub async fn create_agent(&self, agent: &str, site: &str) -> anyhow::Result<String> {
        let out = self.cli(&["create-agent", agent, "--site", site]).await?;
        let token = out.trim().to_owned();
        if !token.starts_with("agt_") {
            bail!("create-agent printed {out:?}, not a token");
        }
        Ok(token)
    }

    /// Starts `central-api serve` on a random loopback port with extra environment.
    ///
    /// # Errors
    /// When it does not announce its address.
    pub async fn serve(&self, extra_env: &[(&str, &str)]) -> anyhow::Result<Central> {
        let mut env = self.env();
        env.extend(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut process = Spawned::start("central-api", &["serve", "--listen", "127.0.0.1:0"], &env_refs)?;
        let url = process.listening_url().await?;
        Ok(Central { url, process })
    }

    /// The single integer a query returns (`SELECT count(*) ...`).
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn scalar(&self, sql: &str) -> anyhow::Result<i64> {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
                let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut conn).await?;
                conn.close().await?;
                Ok(n)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&mut conn).await?;
                conn.close().await?;
                Ok(n)
            }
        }
    }

    /// `(code, message)` of every fault in `agent`'s fault history, oldest first.
    ///
    /// # Errors
    /// When the database refuses.
    pub async fn faults_of(&self, agent: &str) -> anyhow::Result<Vec<(String, String)>> {
        let sql = "SELECT code, message FROM fault_history WHERE agent_id = $1 ORDER BY id";
        Ok(match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await?;
                sqlx::query_as(sql).bind(agent).fetch_all(&mut conn).await?
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await?;
                sqlx::query_as(sql).bind(agent).fetch_all(&mut conn).await?
            }
        })
    }

    /// Rows in `all_logs`.
    ///
    /// # Panics
    /// When the database cannot be read.
    pub async fn all_logs(&self) -> i64 {
        self.scalar("SELECT count(*) FROM all_logs").await.expect("counting all_logs")
    }

    /// Drops a PostgreSQL test database (SQLite's directory goes with the value).
    pub async fn cleanup(self) {
        if let Some(db) = self.postgres {
            let _ = db.drop_database().await;
        }
    }
}

/// Runs `central-api <args>` with `env` and optional stdin, returning its output whatever the exit status.
///
/// # Errors
/// When the binary cannot be started.
pub async fn run_cli(
    args: &[&str],
    env: &[(String, String)],
    stdin: Option<&str>,
) -> anyhow::Result<std::process::Output> {
    let mut command = tokio::process::Command::new(binary("central-api")?);
    command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().context("starting central-api")?;
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).await?;
        }
        drop(pipe);
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("central-api did not finish within 60 s")??;
    Ok(output)
}

/// A served central-api.
pub struct Central {
    pub url: String,
    pub process: Spawned,
}

impl Central {
    /// Posts a batch with `token` in `encoding`.
    ///
    /// # Errors
    /// When the request cannot be sent.
    pub async fn post_batch(
        &self,
        client: &reqwest::Client,
        token: &str,
        batch: &PunchBatch,
        encoding: Encoding,
    ) -> anyhow::Result<reqwest::Response> {
        let body = protocol::encode(batch, encoding)?;
        self.post_raw(client, "/api/v1/ingest", Some(token), encoding.content_type(), body).await
    }

    /// Posts raw bytes.
    ///
    /// # Errors
    /// When the request cannot be sent.
    pub async fn post_raw(
        &self,
        client: &reqwest::Client,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = client
            .post(format!("{}{path}", self.url))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .timeout(Duration::from_secs(30))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Ok(request.send().await?)
    }

    /// This replica's `/metrics` value for a line starting with `series` (e.g.
    /// `central_batches_stored_total{path="mqtt"}`).
    ///
    /// # Errors
    /// When the endpoint fails or has no such series.
    pub async fn metric(&self, client: &reqwest::Client, series: &str) -> anyhow::Result<u64> {
        let text = client.get(format!("{}/metrics", self.url)).send().await?.error_for_status()?.text().await?;
        metric_in(&text, series)
    }
}

/// The value of the line of a `/metrics` text that starts with `series`, as `T`.
///
/// # Errors
/// When no line starts with it or its value does not parse.
pub fn metric_in<T: std::str::FromStr>(text: &str, series: &str) -> anyhow::Result<T> {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .with_context(|| format!("no {series} in /metrics:\n{text}"))
}

/// `n` punches on `device` at `site`, PINs cycling through `pins`, one minute apart from `start` (local time in
/// Asia/Kolkata).
pub fn punches(site: &str, device: &str, pins: &[&str], start: NaiveDateTime, n: usize) -> Vec<Punch> {
    (0..n)
        .map(|i| {
            Punch::from_device(
                site.parse().expect("site id"),
                device.parse().expect("device serial"),
                pins[i % pins.len()].parse().expect("pin"),
                start + chrono::Duration::minutes(i as i64),
                chrono_tz::Asia::Kolkata,
                if i % 2 == 0 { PunchState::CheckIn } else { PunchState::CheckOut },
                VerifyMode::Fingerprint,
                0,
                PunchSource::ZkPull,
                Direction::Both,
            )
        })
        .collect()
}

/// A batch of `punches` numbered from `first_seq`.
pub fn batch(agent: &str, site: &str, first_seq: u64, punches: Vec<Punch>) -> PunchBatch {
    let items =
        punches.into_iter().enumerate().map(|(i, punch)| SequencedPunch { seq: first_seq + i as u64, punch }).collect();
    PunchBatch::new(agent.parse().expect("agent id"), site.parse().expect("site id"), Utc::now(), items)
}

/// 2026-03-02 at `hour`:00 local.
pub fn day_at(hour: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 3, 2).and_then(|d| d.and_hms_opt(hour, 0, 0)).expect("valid time")
}

/// A client for the API; `root` adds a trusted CA certificate (PEM).
///
/// # Panics
/// When the client cannot be built.
pub fn client(root: Option<&[u8]>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(pem) = root {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).expect("CA certificate"));
    }
    builder.build().expect("HTTP client")
}

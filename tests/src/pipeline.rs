//! Whole-pipeline rigs for the end-to-end proofs: simulated terminals that produce an exact number of distinct
//! punches, the real `edge-agent` and `central-api` binaries started (and restarted) on fixed addresses, and the
//! exact comparison of AllLogs with what the terminals produced.
//!
//! The comparison is by punch key: AllLogs must hold exactly the keys of the records the simulators hold, no more
//! (with a unique key that also means no duplicate) and no fewer.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use protocol::PunchKey;
use sqlx::Connection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::central::{Backend, CentralDb};
use crate::harness::Spawned;
use crate::zk_sim::{SimConfig, ZkSim};

/// The site and agent the rigs register.
pub const SITE: &str = "soak-site";
pub const AGENT: &str = "soak-agent";

/// Simulated terminals producing punches until a total is reached.
pub struct Fleet {
    pub sims: Vec<ZkSim>,
}

impl Fleet {
    /// `devices` terminals named `SOAK-<n>`, each holding `preloaded` records in its log at the start.
    ///
    /// # Errors
    /// When a simulator cannot bind.
    pub async fn start(devices: usize, preloaded: usize, users: usize) -> anyhow::Result<Arc<Self>> {
        let mut sims = Vec::with_capacity(devices);
        for i in 0..devices {
            let config = SimConfig {
                serial: format!("SOAK-{i}"),
                users,
                records: preloaded,
                seed: 7 + i as u64,
                record_capacity: 1_000_000,
                ..SimConfig::default()
            };
            sims.push(ZkSim::start(config).await?);
        }
        Ok(Arc::new(Self { sims }))
    }

    /// Records held by all terminals together.
    pub fn produced(&self) -> usize {
        self.sims.iter().map(|s| s.records().len()).sum()
    }

    /// The punch keys of every record the terminals hold.
    ///
    /// # Panics
    /// When a simulator holds a record whose serial or PIN is not valid (it never makes one).
    pub fn expected_keys(&self) -> HashSet<PunchKey> {
        let mut keys = HashSet::new();
        for sim in &self.sims {
            let serial = sim.config().serial.parse().expect("valid serial");
            for record in sim.records() {
                let pin = sim.pin_of(&record).parse().expect("valid pin");
                keys.insert(PunchKey::of(&serial, &pin, record.time));
            }
        }
        keys
    }

    /// Makes the terminals produce new punches until they hold `total` records together: every `tick`, each adds
    /// `silent` records to its log without telling anyone (found by the agent's next read) and `live` punches as
    /// realtime events. The task ends once the total is reached or `stop` fires.
    pub fn produce(
        self: &Arc<Self>,
        total: usize,
        tick: Duration,
        silent: usize,
        live: usize,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let fleet = self.clone();
        tokio::spawn(async move {
            let mut produced = fleet.produced();
            let mut ticker = tokio::time::interval(tick);
            while produced < total && !stop.is_cancelled() {
                ticker.tick().await;
                for sim in &fleet.sims {
                    let n = silent.min(total - produced);
                    produced += sim.add_records_silently(n).len();
                    for _ in 0..live.min(total - produced) {
                        if sim.punch_now().is_some() {
                            produced += 1;
                        }
                    }
                }
            }
        })
    }

    /// `[[device]]` tables for the agent's configuration.
    pub fn device_toml(&self) -> String {
        let mut text = String::new();
        for sim in &self.sims {
            text.push_str(&format!(
                "\n[[device]]\nkind = \"zk\"\nserial = \"{}\"\ntime_zone = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\n\
                 poll_interval_secs = 1\n",
                sim.config().serial,
                sim.config().time_zone.name(),
                sim.tcp_addr().port()
            ));
        }
        text
    }
}

/// An agent configuration for the rigs: `central` is the `[central]` table's body (transport, url, token, ...).
pub fn agent_config(data_dir: &Path, central: &str, fleet: &Fleet) -> String {
    format!(
        "[agent]\nid = \"{AGENT}\"\nsite = \"{SITE}\"\ndata_dir = \"{}\"\n\n[central]\n{central}\n\n\
         [buffer]\nmax_disk_mb = 2048\ncache_mb = 8\n\n\
         [forward]\nmax_batch = 5000\nlinger_ms = 100\ninitial_backoff_ms = 100\nmax_backoff_secs = 1\n\n\
         [status]\ninterval_secs = 5\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        data_dir.display(),
        fleet.device_toml()
    )
}

/// A free loopback address (for a server that must come back on the same address after a restart).
///
/// # Errors
/// When no port can be bound.
pub fn free_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// A SQLite central database with the rig's site and agent; returns it with the agent's token.
///
/// # Errors
/// When the administration commands fail.
pub async fn central_db() -> anyhow::Result<(CentralDb, String)> {
    let db = CentralDb::new(Backend::Sqlite).await;
    db.create_site(SITE).await?;
    let token = db.create_agent(AGENT, SITE).await?;
    Ok((db, token))
}

/// Starts `central-api serve` on `listen` with the database's environment plus `extra`.
///
/// # Errors
/// When it does not announce its address.
pub async fn serve_central(db: &CentralDb, listen: SocketAddr, extra: &[(String, String)]) -> anyhow::Result<Spawned> {
    let mut env = db.env();
    env.extend(extra.iter().cloned());
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let listen = listen.to_string();
    let mut process = Spawned::start("central-api", &["serve", "--listen", &listen], &refs)?;
    process.listening_url().await?;
    Ok(process)
}

/// Starts the real `edge-agent run` on `config` and waits for its announcement.
///
/// # Errors
/// When it does not start.
pub async fn start_agent(config: &Path) -> anyhow::Result<Spawned> {
    let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into());
    let mut agent =
        Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[("RUST_LOG", &log)])?;
    agent.listening_url().await?;
    Ok(agent)
}

/// The punch keys in AllLogs and the number of rows (equal to the keys' count unless a key is stored twice).
///
/// # Errors
/// When the database cannot be read.
pub async fn all_logs_keys(db: &CentralDb) -> anyhow::Result<(HashSet<PunchKey>, usize)> {
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.context("opening the central database")?;
    let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT punch_key FROM all_logs").fetch_all(&mut conn).await?;
    conn.close().await?;
    let count = rows.len();
    let mut keys = HashSet::with_capacity(count);
    for (bytes,) in rows {
        let array: [u8; 16] = bytes.as_slice().try_into().context("a punch key of 16 bytes")?;
        keys.insert(PunchKey::from_bytes(array));
    }
    Ok((keys, count))
}

/// Waits up to `within` for AllLogs to hold `expected` rows, then compares it with `expected` exactly; the error
/// says how many are missing and how many are extra.
///
/// # Errors
/// When the counts or the key sets differ.
pub async fn assert_all_logs_exact(
    db: &CentralDb,
    expected: &HashSet<PunchKey>,
    within: Duration,
) -> anyhow::Result<()> {
    let start = tokio::time::Instant::now();
    loop {
        let rows = db.scalar("SELECT count(*) FROM all_logs").await.unwrap_or(0);
        if usize::try_from(rows).unwrap_or(0) >= expected.len() || start.elapsed() > within {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (keys, rows) = all_logs_keys(db).await?;
    let missing = expected.difference(&keys).count();
    let extra = keys.difference(expected).count();
    anyhow::ensure!(
        missing == 0 && extra == 0 && rows == expected.len(),
        "AllLogs holds {rows} rows ({} distinct keys) for {} produced punches: {missing} missing, {extra} not produced",
        keys.len(),
        expected.len()
    );
    Ok(())
}

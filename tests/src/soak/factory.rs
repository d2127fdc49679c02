//! The large factory: one real `edge-agent run` reading `terminals` simulated ZKTeco terminals (in this process)
//! of one site, forwarding over MQTT to one central-api replica on the soak's private PostgreSQL and Mosquitto.
//! Users punch at `rate` per second in all (realtime events, which the agent's pollers receive as they happen); the
//! figures are the agent's CPU and memory and the latency from a punch on a terminal to its row in AllLogs.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use central_api::auth::AgentToken;
use central_api::config::Config;
use central_api::store::Store;
use chrono::{DateTime, NaiveDateTime, Utc};
use rand::{Rng, SeedableRng};
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;
use tokio_util::sync::CancellationToken;

use super::broker::PrivateBroker;
use super::figures::{latency_line, usage_lines};
use super::postgres::PrivatePostgres;
use super::replicas::{ReplicaEnv, Replicas, TOPIC_PREFIX};
use super::usage::{self, Scope, Watched};
use crate::zk_sim::{SimConfig, ZkSim};

const SITE: &str = "factory";
const AGENT: &str = "factory-agent";

/// The factory's size and load.
#[derive(Debug, Clone, Copy)]
pub struct FactorySettings {
    pub terminals: usize,
    /// Punches per second over all terminals.
    pub rate: f64,
    pub duration: Duration,
    pub drain_timeout: Duration,
}

/// What the factory run found.
#[derive(Debug)]
pub struct FactoryOutcome {
    pub report: String,
    pub produced: usize,
    pub stored: usize,
    pub missing: usize,
    pub extra: usize,
    pub agent_peak_rss_kib: u64,
}

type PunchId = (String, String, NaiveDateTime);

/// Runs the factory. Needs a multi-threaded runtime.
///
/// # Errors
/// When a service, the agent or a simulator cannot be started, or the database cannot be read.
pub async fn run(settings: FactorySettings) -> anyhow::Result<FactoryOutcome> {
    let load_before = usage::load_average();
    let postgres = tokio::task::spawn_blocking(PrivatePostgres::start).await??;
    let admin = PgPoolOptions::new().max_connections(1).connect(&postgres.url("postgres")).await?;
    admin.execute("CREATE DATABASE factory").await.context("creating the factory database")?;
    admin.close().await;
    let url = postgres.url("factory");
    let store = Store::connect(&Config { database_url: Some(url.clone()), ..Config::default() }).await?;
    store.migrate().await?;
    store.create_site(SITE, "Large factory", "Asia/Kolkata").await?;
    let token = AgentToken::generate(AGENT.parse().context("agent id")?);
    store.create_agent(AGENT, SITE, &token.secret_hash()).await?;

    let broker = tokio::task::spawn_blocking(PrivateBroker::start).await??;
    let dir = tempfile::tempdir()?;
    let mut replicas = Replicas::start(
        ReplicaEnv { database_url: url.clone(), broker_port: broker.port(), data_dir: dir.path().join("central") },
        1,
    )
    .await?;

    let mut sims = Vec::with_capacity(settings.terminals);
    for i in 0..settings.terminals {
        let config = SimConfig {
            serial: format!("FAC{i:04}"),
            users: 40,
            records: 0,
            seed: 1000 + i as u64,
            record_capacity: 1_000_000,
            ..SimConfig::default()
        };
        sims.push(ZkSim::start(config).await?);
    }
    let sims = Arc::new(sims);
    let config_path = dir.path().join("agent.toml");
    std::fs::write(&config_path, agent_config(dir.path(), broker.port(), &token.reveal(), &sims))?;
    let mut agent = crate::pipeline::start_agent(&config_path).await?;
    let agent_pid = agent.pid().context("the agent's pid")?;
    // Every poller connects, identifies and reads the (empty) log before realtime punches count.
    let warm = tokio::time::Instant::now();
    while sims.iter().any(|s| s.is_enabled() && s.counters().sessions == 0) && warm.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let watched: Watched = Arc::new(Mutex::new(BTreeMap::new()));
    {
        let mut map = watched.lock().unwrap_or_else(|p| p.into_inner());
        map.insert("edge-agent".into(), (agent_pid, Scope::Process));
        for (name, pid) in replicas.pids() {
            map.insert(name, (pid, Scope::Process));
        }
    }
    let sampling = CancellationToken::new();
    let sampler = tokio::spawn(usage::sample(watched, Duration::from_secs(1), sampling.clone()));

    let started = tokio::time::Instant::now();
    let mut punched: HashMap<PunchId, DateTime<Utc>> = HashMap::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut owed = 0.0;
    while started.elapsed() < settings.duration {
        ticker.tick().await;
        owed += settings.rate / 10.0;
        while owed >= 1.0 {
            owed -= 1.0;
            let sim = &sims[rng.random_range(0..sims.len())];
            if let Some(record) = sim.punch_now() {
                let id = (sim.config().serial.clone(), sim.pin_of(&record), record.time);
                punched.entry(id).or_insert_with(Utc::now);
            }
        }
    }
    let load_secs = started.elapsed().as_secs_f64();

    let pool = PgPoolOptions::new().max_connections(1).connect(&url).await?;
    let deadline = tokio::time::Instant::now() + settings.drain_timeout;
    loop {
        let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM all_logs").fetch_one(&pool).await?;
        if usize::try_from(rows).unwrap_or(0) >= punched.len() || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sampling.cancel();
    let usage = sampler.await.context("the usage sampler")?;
    let load_after = usage::load_average();
    let rows: Vec<(String, String, NaiveDateTime, DateTime<Utc>)> =
        sqlx::query_as("SELECT device_serial, pin, local_time, received_at FROM all_logs").fetch_all(&pool).await?;
    pool.close().await;
    let mut latencies = Vec::with_capacity(rows.len());
    let mut extra = 0;
    for (device, pin, local, received) in &rows {
        match punched.get(&(device.clone(), pin.clone(), *local)) {
            Some(at) => latencies.push((*received - *at).num_microseconds().unwrap_or(0) as f64 / 1e6),
            None => extra += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let missing = punched.len().saturating_sub(rows.len() - extra);

    let agent_usage = usage.get("edge-agent").cloned().unwrap_or_default();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "factory: one edge-agent, {} terminals, {:.1} punches/s for {load_secs:.0} s, MQTT to one replica",
        settings.terminals, settings.rate
    );
    let _ = writeln!(report, "load average (1/5/15 min): before {load_before}, after {load_after}; 2 cores shared");
    let _ = writeln!(
        report,
        "punches: {} distinct made, {} in AllLogs, {missing} missing, {extra} not made",
        punched.len(),
        rows.len()
    );
    let _ = writeln!(report, "{}", latency_line("latency punch on a terminal -> AllLogs", &latencies));
    let _ = writeln!(report, "CPU and memory:");
    report.push_str(&usage_lines(&usage, started.elapsed().as_secs_f64()));
    let _ = agent.terminate();
    let _ = tokio::time::timeout(Duration::from_secs(25), agent.wait()).await;
    replicas.stop().await;
    drop(sims);
    drop(broker);
    drop(postgres);
    Ok(FactoryOutcome {
        report,
        produced: punched.len(),
        stored: rows.len(),
        missing,
        extra,
        agent_peak_rss_kib: agent_usage.peak_rss_kib,
    })
}

fn agent_config(dir: &std::path::Path, broker_port: u16, token: &str, sims: &[ZkSim]) -> String {
    let mut text = format!(
        "[agent]\nid = \"{AGENT}\"\nsite = \"{SITE}\"\ndata_dir = \"{}\"\n\n\
         [central]\ntransport = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{broker_port}\"\ntoken = \"{token}\"\n\n\
         [mqtt]\ntopic_prefix = \"{TOPIC_PREFIX}\"\nkeep_alive_secs = 5\nack_timeout_secs = 5\n\n\
         [buffer]\nmax_disk_mb = 1024\ncache_mb = 8\n\n\
         [forward]\nmax_batch = 1000\nlinger_ms = 100\ninitial_backoff_ms = 100\nmax_backoff_secs = 2\n\n\
         [status]\ninterval_secs = 10\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        dir.join("agent-data").display()
    );
    for sim in sims {
        text.push_str(&format!(
            "\n[[device]]\nkind = \"zk\"\nserial = \"{}\"\ntime_zone = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\n\
             poll_interval_secs = 30\n",
            sim.config().serial,
            sim.config().time_zone.name(),
            sim.tcp_addr().port()
        ));
    }
    text
}

//! The whole pipeline on one machine, behind the README's first command (`cargo run --release --locked -p
//! system-tests --bin demo`): central-api on SQLite, one edge-agent forwarding to it over HTTP on loopback, and a few
//! simulated ZKTeco terminals producing punches (and now and then a newly enrolled employee) continuously.
//!
//! Everything runs in this process, on the same code the real binaries run: [`central_api::app::Application`] and
//! [`edge_agent::agent::run`]. The site, the agent (with its token), the devices and the employees are created through
//! central-api's store, as the `create-site`, `create-agent`, `add-device` and `add-employee` commands do. The demo
//! prints where to look, then one progress line every few seconds, and stops every part when its shutdown future
//! completes (Ctrl-C or SIGTERM in the binary).
//!
//! For the dashboard, [`seed`] adds a shift around the current time with Sundays off for every employee, three weeks
//! of computed attendance history, and a root login `admin` with a random password; the last line of the
//! where-to-look block is `demo: dashboard  <url>/dashboard  (login: admin / <password>)`.
//!
//! Environment: `DEMO_LISTEN` (central, default `127.0.0.1:8080`), `DEMO_AGENT_LISTEN` (the agent's /healthz and
//! /metrics, default `127.0.0.1:9187`), port 0 picks a free port; `DEMO_DATA_DIR` (must not hold a database yet;
//! default: a temporary directory removed at exit); `DEMO_DEVICES` (1 to 5, default 3).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use central_api::auth::AgentToken;
use central_api::store::admin::NewDevice;
use central_api::store::Store;
use chrono::Utc;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use crate::zk_sim::{SimConfig, ZkSim};

pub mod seed;

const SITE: &str = "demo-site";
const AGENT: &str = "demo-agent";
const ZONE: chrono_tz::Tz = chrono_tz::Asia::Kolkata;

/// What the demo runs with; [`DemoOptions::from_env`] reads the `DEMO_*` variables.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub central_listen: SocketAddr,
    pub agent_listen: SocketAddr,
    pub data_dir: Option<PathBuf>,
    pub devices: usize,
    /// Mean time between punches on each device.
    pub punch_every: Duration,
    /// Time between newly enrolled employees (on one of the devices, in turn).
    pub enrol_every: Duration,
}

impl DemoOptions {
    /// Defaults overridden by `DEMO_LISTEN`, `DEMO_AGENT_LISTEN`, `DEMO_DATA_DIR` and `DEMO_DEVICES`.
    ///
    /// # Errors
    /// Naming the variable that does not parse.
    pub fn from_env() -> anyhow::Result<Self> {
        fn var<T: std::str::FromStr>(name: &str, default: &str) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
            text.parse().map_err(|e| anyhow::anyhow!("{name}={text:?}: {e}"))
        }
        let devices: usize = var("DEMO_DEVICES", "3")?;
        if !(1..=5).contains(&devices) {
            bail!("DEMO_DEVICES={devices}: between 1 and 5, please");
        }
        Ok(Self {
            central_listen: var("DEMO_LISTEN", "127.0.0.1:8080")?,
            agent_listen: var("DEMO_AGENT_LISTEN", "127.0.0.1:9187")?,
            data_dir: std::env::var_os("DEMO_DATA_DIR").map(PathBuf::from),
            devices,
            punch_every: Duration::from_secs(2),
            enrol_every: Duration::from_secs(15),
        })
    }
}

/// Runs the pipeline until `shutdown` completes, then stops every part and returns.
///
/// # Errors
/// When a part cannot start (a port in use, an unwritable data directory); the message names it.
pub async fn run(options: DemoOptions, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let temp;
    let data_dir = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("attendance-demo-").tempdir()?;
            temp.path().to_owned()
        }
    };
    let central_dir = data_dir.join("central");
    if central_dir.join("central.db").exists() {
        bail!("{} already holds a demo database; point DEMO_DATA_DIR at a new directory", central_dir.display());
    }
    let stop = CancellationToken::new();

    // The devices first: their ports go into central's device list and the agent's configuration.
    let mut sims = Vec::new();
    for i in 0..options.devices {
        let config = SimConfig {
            serial: format!("DEMO-GATE-{}", i + 1),
            device_name: format!("Gate {}", i + 1),
            users: 8,
            records: 40,
            seed: 100 + i as u64,
            start: Utc::now().with_timezone(&ZONE).naive_local() - chrono::Duration::hours(2),
            time_zone: ZONE,
            realtime_rate: 1.0 / options.punch_every.as_secs_f64().max(0.05),
            ..SimConfig::default()
        };
        sims.push(ZkSim::start(config).await.context("starting a simulated terminal")?);
    }

    let mut central_config = central_api::config::Config::load(None)?;
    central_config.data_dir = central_dir.clone();
    central_config.database_url = None;
    central_config.listen = options.central_listen;
    central_config.tls = None;
    central_config.mqtt = None;
    let store = Store::connect(&central_config).await.context("opening the demo database")?;
    store.migrate().await?;
    let (token, password) = register(&store, &sims).await?;

    let app = central_api::app::Application::build(central_config)
        .await
        .with_context(|| format!("starting central-api on {} (set DEMO_LISTEN to move it)", options.central_listen))?;
    let central_url = app.url()?;
    let central_stop = stop.clone();
    let central_done = stop.clone();
    // A part that stops on its own (an error) stops the others too; its error is returned below.
    let central = tokio::spawn(async move {
        let result = app.run(async move { central_stop.cancelled().await }).await;
        central_done.cancel();
        result
    });

    let agent_listen = free_port(options.agent_listen)
        .with_context(|| format!("the agent's address {} (set DEMO_AGENT_LISTEN to move it)", options.agent_listen))?;
    let agent_file = data_dir.join("edge-agent.toml");
    let agent_text = agent_config(&data_dir.join("agent"), &central_url, &token, agent_listen, &sims);
    std::fs::write(&agent_file, &agent_text).with_context(|| format!("writing {}", agent_file.display()))?;
    let agent_config = edge_agent::config::Config::parse(&agent_text, &agent_file)?;
    let (agent_stop, agent_done) = (stop.clone(), stop.clone());
    let agent = tokio::spawn(async move {
        let result = edge_agent::agent::run(agent_config, agent_stop).await;
        agent_done.cancel();
        result
    });

    print_where_to_look(&data_dir, &central_dir, &central_url, agent_listen, &agent_file);
    println!("demo: dashboard  {central_url}/dashboard  (login: admin / {password})");

    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let database = central_dir.join("central.db");
    let mut progress = tokio::time::interval(Duration::from_secs(5));
    let mut enrol = tokio::time::interval(options.enrol_every);
    enrol.tick().await;
    let mut hired = 0usize;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = progress.tick() => match count_by_device(&database).await {
                Ok(counts) => println!("demo: AllLogs holds {}", describe(&counts)),
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "counting AllLogs"),
            },
            _ = enrol.tick() => {
                hired += 1;
                let sim = &sims[hired % sims.len()];
                let user = sim.add_user(&format!("New Hire {hired}"));
                let added = match store.add_employee(&user.user_id, &user.name, Some(SITE)).await {
                    Ok(()) => seed::profile(&store, &user.user_id, &user.name).await,
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = added {
                    tracing::warn!(error = %format!("{e:#}"), "enrolling a new employee");
                } else {
                    println!("demo: enrolled employee {} ({}) on {}", user.user_id, user.name, sim.config().serial);
                }
            }
        }
    }

    println!("demo: stopping");
    for sim in &sims {
        sim.stop();
    }
    let agent_result = agent.await.context("the agent task")?;
    let central_result = central.await.context("the central task")?;
    store.close().await;
    agent_result.context("edge-agent")?;
    central_result.context("central-api")?;
    println!("demo: stopped");
    Ok(())
}

/// Creates the site, the agent, the devices, their users as employees on the demo shift, their history and the
/// admin login; returns the agent's token and the admin's password.
async fn register(store: &Store, sims: &[ZkSim]) -> anyhow::Result<(String, String)> {
    store.create_site(SITE, "Demo site", ZONE.name()).await?;
    let shift = seed::settings(store, Utc::now().with_timezone(&ZONE).naive_local()).await?;
    let token = AgentToken::generate(AGENT.parse().map_err(|e| anyhow::anyhow!("agent id: {e}"))?);
    store.create_agent(AGENT, SITE, &token.secret_hash()).await?;
    let mut enrolled = std::collections::BTreeSet::new();
    for sim in sims {
        let config = sim.config();
        store
            .add_device(&NewDevice {
                serial: config.serial.clone(),
                site_id: SITE.to_owned(),
                name: config.device_name.clone(),
                model: Some(config.platform.clone()),
                ip: Some(sim.tcp_addr().ip().to_string()),
                port: Some(sim.tcp_addr().port()),
                kind: "zk-tcp".to_owned(),
                time_zone: ZONE.name().to_owned(),
                direction: "BOTH".to_owned(),
            })
            .await?;
        for user in sim.users() {
            if enrolled.insert(user.user_id.clone()) {
                store.add_employee(&user.user_id, &user.name, Some(SITE)).await?;
                seed::profile(store, &user.user_id, &user.name).await?;
            }
        }
    }
    let employees: Vec<String> = enrolled.into_iter().collect();
    if let Some(first) = sims.first() {
        seed::history(store, &first.config().serial, &employees, &shift).await.context("the demo's history")?;
    }
    let password = seed::admin_login(store).await?;
    Ok((token.reveal(), password))
}

/// `addr`, or with port 0 a free port on its address (the agent prints its address, but the demo prints it first).
fn free_port(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    std::net::TcpListener::bind(addr)?.local_addr()
}

fn agent_config(data_dir: &Path, central: &str, token: &str, listen: SocketAddr, sims: &[ZkSim]) -> String {
    let mut text = format!(
        "# Written by the demo.\n[agent]\nid = \"{AGENT}\"\nsite = \"{SITE}\"\ndata_dir = \"{}\"\n\n\
         [central]\ntransport = \"https\"\nurl = \"{central}\"\ntoken = \"{token}\"\n\n\
         [buffer]\nmax_disk_mb = 256\ncache_mb = 4\n\n[forward]\nlinger_ms = 200\ninitial_backoff_ms = 200\n\
         max_backoff_secs = 5\n\n[status]\ninterval_secs = 10\n\n[metrics]\nlisten = \"{listen}\"\n",
        data_dir.display()
    );
    for sim in sims {
        let config = sim.config();
        text.push_str(&format!(
            "\n[[device]]\nkind = \"zk\"\nserial = \"{}\"\nname = \"{}\"\ntime_zone = \"{}\"\nhost = \"{}\"\nport = {}\n\
             poll_interval_secs = 10\n",
            config.serial,
            config.device_name,
            ZONE.name(),
            sim.tcp_addr().ip(),
            sim.tcp_addr().port()
        ));
    }
    text
}

fn print_where_to_look(data: &Path, central_dir: &Path, central: &str, agent: SocketAddr, agent_file: &Path) {
    let db = central_dir.join("central.db");
    println!("demo: data in {}", data.display());
    println!("demo: central-api     {central}  ({central}/healthz, {central}/metrics)");
    println!("demo: edge-agent      http://{agent}/healthz  http://{agent}/metrics  ({})", agent_file.display());
    println!("demo: agent status    cargo run -p edge-agent -- status --url http://{agent}");
    println!(
        "demo: count AllLogs   sqlite3 {} \"SELECT device_serial, count(*) FROM all_logs WHERE agent_id = '{AGENT}' GROUP BY 1\"",
        db.display()
    );
    println!("demo: press Ctrl-C to stop");
}

/// Punches the agent delivered to AllLogs per device serial (the seeded history left out), read straight from the
/// SQLite file.
///
/// # Errors
/// When the database cannot be read.
pub async fn count_by_device(database: &Path) -> anyhow::Result<Vec<(String, i64)>> {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", database.display())).await?;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT device_serial, count(*) FROM all_logs WHERE agent_id <> ?1 GROUP BY device_serial ORDER BY device_serial",
        )
        .bind(seed::HISTORY_AGENT)
            .fetch_all(&mut conn)
            .await?;
    conn.close().await?;
    Ok(rows)
}

fn describe(counts: &[(String, i64)]) -> String {
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let parts: Vec<String> = counts.iter().map(|(serial, n)| format!("{serial} {n}")).collect();
    format!("{total} punches ({})", if parts.is_empty() { "none yet".to_owned() } else { parts.join(", ") })
}

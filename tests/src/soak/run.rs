//! One soak run, start to end: services, organisation, replicas, generator, load with faults, drain, checks,
//! figures and plot.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use central_api::config::Config;
use central_api::store::Store;
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;
use tokio_util::sync::CancellationToken;

use super::broker::PrivateBroker;
use super::checks::{self, AllLogsCheck, AttendanceCheck};
use super::faults::{self, FaultSettings, Targets, SCHEDULE};
use super::figures::{self, FaultMark};
use super::generator::{ForwardSettings, Generator};
use super::postgres::PrivatePostgres;
use super::replicas::{ReplicaEnv, Replicas, TOPIC_PREFIX};
use super::usage::{self, Scope, Watched};
use super::workload::{self, Load};
use super::world::{self, Shape};
use crate::proxy::{ChaosProxy, ProxyMode};

/// Everything a run is told.
#[derive(Debug, Clone)]
pub struct Settings {
    pub shape: Shape,
    pub replicas: usize,
    pub load: Load,
    pub forward: ForwardSettings,
    /// Inject the faults of [`faults::SCHEDULE`].
    pub faults: bool,
    pub fault: FaultSettings,
    /// How long to wait for the backlog and the attendance queue after the load.
    pub drain_timeout: Duration,
    /// Where `figures.txt` and `soak.svg` go.
    pub out_dir: PathBuf,
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    pub report: String,
    pub all_logs: AllLogsCheck,
    pub attendance: AttendanceCheck,
    pub faults: Vec<FaultMark>,
    pub resends: u64,
    pub plot: PathBuf,
    pub figures: PathBuf,
    /// Punches still unacknowledged at the generator when the drain timed out (0 when drained).
    pub unacknowledged: usize,
    pub attendance_left: i64,
}

/// Runs the soak. Needs a multi-threaded runtime (restarts block a worker thread).
///
/// # Errors
/// When a service or process cannot be started or the database cannot be read; the checks themselves are in the
/// outcome (see [`checks::ensure_exact`]).
pub async fn run(settings: Settings) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&settings.out_dir)?;
    let load_before = usage::load_average();
    let mut postgres = tokio::task::spawn_blocking(PrivatePostgres::start).await??;
    {
        let admin = PgPoolOptions::new().max_connections(1).connect(&postgres.url("postgres")).await?;
        admin.execute("CREATE DATABASE soak").await.context("creating the soak database")?;
        admin.close().await;
    }
    let direct_url = postgres.url("soak");
    let store = Store::connect(&Config {
        database_url: Some(direct_url.clone()),
        database_max_connections: 8,
        ..Config::default()
    })
    .await
    .context("connecting the store")?;
    store.migrate().await.context("migrating")?;
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    let setup = tokio::time::Instant::now();
    let org = world::create(&store, settings.shape, day).await?;
    central_api::attendance::jobs::worker::drain(&store, 500).await.context("computing the joining marks")?;
    let setup_secs = setup.elapsed().as_secs_f64();

    let mut broker = tokio::task::spawn_blocking(PrivateBroker::start).await??;
    let database_proxy = ChaosProxy::start(([127, 0, 0, 1], postgres.port()).into(), ProxyMode::Pass, 19).await?;
    let broker_proxy = ChaosProxy::start(([127, 0, 0, 1], broker.port()).into(), ProxyMode::Pass, 20).await?;
    let data_dir = tempfile::tempdir()?;
    let mut replicas = Replicas::start(
        ReplicaEnv {
            database_url: format!("postgres://postgres@127.0.0.1:{}/soak", database_proxy.addr().port()),
            broker_port: broker.port(),
            data_dir: data_dir.path().to_owned(),
        },
        settings.replicas,
    )
    .await?;
    let generator = Generator::start(broker_proxy.addr().port(), TOPIC_PREFIX, &org.sites, settings.forward)?;

    let watched: Watched = Arc::new(Mutex::new(Default::default()));
    let watch = |w: &Watched, replicas: &Replicas, broker: &PrivateBroker, postgres: &PrivatePostgres| {
        let mut map = w.lock().unwrap_or_else(|p| p.into_inner());
        map.insert("harness".into(), (std::process::id(), Scope::Process));
        for (name, pid) in replicas.pids() {
            map.insert(name, (pid, Scope::Process));
        }
        if let Some(pid) = broker.pid() {
            map.insert("mosquitto".into(), (pid, Scope::Process));
        }
        if let Some(pid) = postgres.pid() {
            map.insert("postgres (PSS)".into(), (pid, Scope::Tree));
        }
    };
    watch(&watched, &replicas, &broker, &postgres);
    let sampling = CancellationToken::new();
    let sampler = tokio::spawn(usage::sample(watched.clone(), Duration::from_secs(1), sampling.clone()));
    let (sample_tx, sample_rx) = tokio::sync::mpsc::unbounded_channel();
    let day_sampler = tokio::spawn(super::day_latency::track(direct_url.clone(), sample_rx, sampling.clone()));

    let start = chrono::Utc::now();
    let run_start = tokio::time::Instant::now();
    let producing = CancellationToken::new();
    let producer =
        tokio::spawn(workload::produce(generator.agents.clone(), settings.load, day, sample_tx, producing.clone()));
    let mut marks = Vec::new();
    if settings.faults {
        for (fraction, fault) in SCHEDULE {
            tokio::time::sleep_until(run_start + settings.load.duration.mul_f64(fraction)).await;
            let mut targets = Targets {
                replicas: &mut replicas,
                broker: &mut broker,
                postgres: &mut postgres,
                database_proxy: &database_proxy,
                broker_proxy: &broker_proxy,
            };
            let mark = faults::inject(fault, &mut targets, settings.fault, run_start).await?;
            tracing::warn!("soak fault {} over after {:.1} s", mark.label, mark.outage_secs);
            marks.push(mark);
            watch(&watched, &replicas, &broker, &postgres);
        }
    }
    let produced = producer.await.context("the producer")?;
    let load_secs = run_start.elapsed().as_secs_f64();

    let deadline = tokio::time::Instant::now() + settings.drain_timeout;
    while !generator.drained() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unacknowledged = generator.unacknowledged();
    let drained_secs = run_start.elapsed().as_secs_f64();
    let pool = PgPoolOptions::new().max_connections(2).connect(&direct_url).await?;
    let attendance_left = checks::wait_attendance_drained(&pool, settings.drain_timeout).await?;
    let attendance_secs = run_start.elapsed().as_secs_f64();
    sampling.cancel();
    let usage = sampler.await.context("the usage sampler")?;
    let day_latencies = day_sampler.await.context("the attendance sampler")?;
    let load_after = usage::load_average();
    replicas.stop().await;

    let all_logs = checks::all_logs(&pool, &produced.keys).await?;
    let attendance = checks::attendance_against_reprocess(&store, day.pred_opt().unwrap_or(day), day).await?;
    pool.close().await;

    let generated_us: HashMap<String, Vec<i64>> = generator
        .agents
        .iter()
        .map(|a| {
            let times = (1..).map_while(|seq| a.generated_us(seq)).collect();
            (a.world.agent.to_string(), times)
        })
        .collect();
    let (latencies, seconds) = figures::series(start, &all_logs.punches, &generated_us);
    let mut day_values: Vec<f64> = day_latencies.observed.iter().map(|(_, s)| *s).collect();
    day_values.sort_by(f64::total_cmp);
    let counters = &generator.counters;
    let resends = counters.resends.load(std::sync::atomic::Ordering::Relaxed);
    let shape = settings.shape;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "soak: {} sites x {} terminals = {} terminals, {} employees, {} replicas, faults {}",
        shape.sites,
        shape.devices,
        shape.sites * shape.devices,
        org.employees(),
        settings.replicas,
        if settings.faults { "on" } else { "off" }
    );
    let _ = writeln!(report, "load average (1/5/15 min): before {load_before}, after {load_after}; 2 cores shared");
    let _ = writeln!(report, "setup (organisation + first attendance): {setup_secs:.1} s");
    let _ = writeln!(
        report,
        "load: {:.0} s, {} bursts of half a site's workforce within {:.0} s, every {:.0} s; background {}/s per site",
        settings.load.duration.as_secs_f64(),
        produced.bursts,
        settings.load.burst.as_secs_f64(),
        settings.load.burst_every.as_secs_f64(),
        settings.load.background_per_site
    );
    let _ = writeln!(
        report,
        "punches generated: {} distinct; stored in AllLogs: {} rows",
        all_logs.generated, all_logs.rows
    );
    let _ = writeln!(report, "throughput: offered {:.1}/s mean over the load; stored {:.1}/s mean until drained ({:.1} s), peak {:.1}/s over 10 s",
        all_logs.generated as f64 / load_secs.max(0.001), all_logs.rows as f64 / drained_secs.max(0.001), drained_secs,
        figures::peak_rate(&seconds, 10));
    let _ = writeln!(report, "{}", figures::latency_line("latency punch -> AllLogs (every punch)", &latencies));
    let _ = writeln!(
        report,
        "{} ({} not observed)",
        figures::latency_line("latency punch -> attendance row (sampled)", &day_values),
        day_latencies.not_observed
    );
    let _ = writeln!(
        report,
        "attendance queue empty {:.1} s into the run ({} rows left)",
        attendance_secs, attendance_left
    );
    let _ = writeln!(report, "generator: {} batches sent, {} resent, {} new, {} duplicates acknowledged, {} rejected, {} bad acks, {} MQTT errors",
        counters.batches_sent.load(std::sync::atomic::Ordering::Relaxed), resends,
        counters.acked_new.load(std::sync::atomic::Ordering::Relaxed),
        counters.acked_duplicates.load(std::sync::atomic::Ordering::Relaxed),
        counters.rejected.load(std::sync::atomic::Ordering::Relaxed),
        counters.bad_acks.load(std::sync::atomic::Ordering::Relaxed),
        counters.mqtt_errors.load(std::sync::atomic::Ordering::Relaxed));
    for mark in &marks {
        let _ = writeln!(
            report,
            "fault at {:>6.1} s: {:<26} whole again after {:.1} s ({})",
            mark.at_secs,
            mark.label,
            mark.outage_secs,
            mark.evidence.as_deref().unwrap_or("no evidence it happened")
        );
    }
    let _ = writeln!(report, "CPU and memory over {attendance_secs:.0} s (harness = generator, proxies, samplers):");
    report.push_str(&figures::usage_lines(&usage, attendance_secs));
    let _ = writeln!(
        report,
        "AllLogs vs generated: {} missing, {} not generated; stored {}; generated {}",
        all_logs.missing, all_logs.extra, all_logs.stored_sum, all_logs.generated_sum
    );
    let _ = writeln!(
        report,
        "attendance vs full reprocess of {}..={}: {} rows, {} differ, {} only stored, {} only reprocessed",
        day.pred_opt().unwrap_or(day),
        day,
        attendance.rows,
        attendance.differing,
        attendance.only_before,
        attendance.only_after
    );

    let plot = settings.out_dir.join("soak.svg");
    let title = format!("soak: {} terminals, {} replicas", shape.sites * shape.devices, settings.replicas);
    super::plot::draw(&plot, &title, &seconds, &marks)?;
    let figures_path = settings.out_dir.join("figures.txt");
    std::fs::write(&figures_path, &report)?;
    generator.stop().await;
    drop(replicas);
    drop(database_proxy);
    drop(broker_proxy);
    drop(broker);
    drop(postgres);
    Ok(Outcome {
        report,
        all_logs,
        attendance,
        faults: marks,
        resends,
        plot,
        figures: figures_path,
        unacknowledged,
        attendance_left,
    })
}

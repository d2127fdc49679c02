//! Hikvision and Dahua terminals through the real pipeline: simulator -> `edge-agent run` -> `central-api serve`
//! -> AllLogs, on SQLite and PostgreSQL. Every punch is in AllLogs exactly once across a dropped stream, an agent
//! killed and restarted, and a restarted event numbering; realtime punches reach central within 2 s (the figures
//! are printed); refused credentials show as `auth_failed` in central's device status.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use protocol::PunchKey;
use sqlx::Connection;
use system_tests::central::{Backend, CentralDb};
use system_tests::dahua_sim::{DahuaSim, DahuaSimConfig};
use system_tests::harness::Spawned;
use system_tests::hik_sim::{HikSim, HikSimConfig};
use system_tests::on_both_backends;
use system_tests::pipeline::start_agent;

/// The two simulators behind one interface, for one scenario.
enum Sim {
    Hik(HikSim),
    Dahua(DahuaSim),
}

impl Sim {
    async fn start(kind: &str) -> Self {
        match kind {
            "hikvision" => Self::Hik(HikSim::start(HikSimConfig::default()).await.unwrap()),
            _ => Self::Dahua(DahuaSim::start(DahuaSimConfig::default()).await.unwrap()),
        }
    }

    /// Makes punches and returns their keys: `preload` in the past, else now (pushed unless `silently`).
    fn punch(&self, n: usize, preload: bool, silently: bool) -> HashSet<PunchKey> {
        match self {
            Self::Hik(s) => s.keys(&if preload { s.preload(n) } else { s.punch(n, silently) }),
            Self::Dahua(s) => s.keys(&if preload { s.preload(n) } else { s.punch(n, silently) }),
        }
    }

    fn serial(&self) -> String {
        match self {
            Self::Hik(s) => s.config().serial.clone(),
            Self::Dahua(s) => s.config().serial.clone(),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Hik(s) => s.url(),
            Self::Dahua(s) => s.url(),
        }
    }

    fn password(&self) -> String {
        match self {
            Self::Hik(s) => s.config().password.clone(),
            Self::Dahua(s) => s.config().password.clone(),
        }
    }

    fn outage(&self, down: bool) {
        match self {
            Self::Hik(s) => {
                s.refuse_streams(down);
                if down {
                    s.drop_streams();
                }
            }
            Self::Dahua(s) => {
                s.refuse_streams(down);
                if down {
                    s.drop_streams();
                }
            }
        }
    }

    fn reset_numbering(&self) {
        match self {
            Self::Hik(s) => s.reset_numbering(),
            Self::Dahua(s) => s.reset_numbering(),
        }
    }

    fn served(&self) -> usize {
        match self {
            Self::Hik(s) => s.search_stats().1,
            Self::Dahua(s) => s.search_stats().1,
        }
    }

    fn open_streams(&self) -> usize {
        match self {
            Self::Hik(s) => s.open_streams(),
            Self::Dahua(s) => s.open_streams(),
        }
    }
}

fn device_toml(kind: &str, serial: &str, url: &str, password: &str) -> String {
    format!(
        "\n[[device]]\nkind = \"{kind}\"\nserial = \"{serial}\"\ntime_zone = \"Asia/Kolkata\"\nurl = \"{url}\"\n\
         user = \"admin\"\npassword = \"{password}\"\npoll_interval_secs = 30\noverlap_secs = 0\nstream_idle_secs = 5\n\
         timeout_ms = 3000\n"
    )
}

fn write_config(dir: &Path, central_url: &str, token: &str, devices: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nid = \"gate-1\"\nsite = \"plant-1\"\ndata_dir = \"{}\"\n\n\
             [central]\ntransport = \"https\"\nurl = \"{central_url}\"\ntoken = \"{token}\"\n\n\
             [forward]\nlinger_ms = 20\ninitial_backoff_ms = 50\nmax_backoff_secs = 1\n\n\
             [status]\ninterval_secs = 1\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n{devices}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

async fn all_logs_keys(db: &CentralDb) -> (HashSet<PunchKey>, usize) {
    let rows: Vec<(Vec<u8>,)> = match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as("SELECT punch_key FROM all_logs").fetch_all(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as("SELECT punch_key FROM all_logs").fetch_all(&mut conn).await.unwrap()
        }
    };
    let count = rows.len();
    (rows.into_iter().map(|(k,)| PunchKey::from_bytes(k.as_slice().try_into().unwrap())).collect(), count)
}

/// Waits for AllLogs to hold `expected.len()` rows, then checks they are exactly the expected keys.
async fn assert_exact(db: &CentralDb, expected: &HashSet<PunchKey>, what: &str) {
    let start = Instant::now();
    while db.all_logs().await < expected.len() as i64 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (keys, rows) = all_logs_keys(db).await;
    let missing = expected.difference(&keys).count();
    let extra = keys.difference(expected).count();
    assert!(
        missing == 0 && extra == 0 && rows == expected.len(),
        "{what}: AllLogs has {rows} rows for {} punches: {missing} missing, {extra} not made",
        expected.len()
    );
}

async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn every_punch_exactly_once(backend: Backend, kind: &str) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = db.serve(&[]).await.unwrap();
    let sim = Sim::start(kind).await;
    let mut expected = sim.punch(95, true, false);
    let dir = tempfile::tempdir().unwrap();
    let config =
        write_config(dir.path(), &central.url, &token, &device_toml(kind, &sim.serial(), &sim.url(), &sim.password()));
    let mut agent = start_agent(&config).await.unwrap();
    assert_exact(&db, &expected, "history").await;

    // Realtime latency: from the device's event to the row in AllLogs.
    wait_for("the event stream", Duration::from_secs(10), async || sim.open_streams() == 1).await;
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        expected.extend(sim.punch(1, false, false));
        let want = expected.len() as i64;
        wait_for("a realtime punch in AllLogs", Duration::from_secs(10), async || db.all_logs().await == want).await;
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let worst = latencies.iter().max().copied().unwrap_or_default();
    println!("{kind} ({backend:?}) realtime punch -> AllLogs: {latencies:?}, worst {worst:?}");
    assert!(worst < Duration::from_secs(2), "{kind}: a realtime punch took {worst:?} to reach central");

    // A stream that drops and stays down while punches happen.
    sim.outage(true);
    expected.extend(sim.punch(10, false, true));
    tokio::time::sleep(Duration::from_millis(300)).await;
    sim.outage(false);
    assert_exact(&db, &expected, "after the stream dropped").await;

    // The agent is killed; punches happen; the restarted agent reads only what is new.
    agent.kill().await.unwrap();
    expected.extend(sim.punch(10, false, true));
    let served = sim.served();
    let _agent: Spawned = start_agent(&config).await.unwrap();
    assert_exact(&db, &expected, "after the agent restarted").await;
    // 20 new events (10 punches, 10 door events), the cursor's second again, and for Dahua the last second of each
    // find again (it has no offset); the device holds over 250.
    let read = sim.served() - served;
    let bound = if kind == "dahua" { 30 } else { 24 };
    assert!(read <= bound, "{kind}: the restarted agent read {read} events for 10 new punches (and their door events)");

    // The device restarts its numbering (reset) while the stream is down.
    sim.outage(true);
    sim.reset_numbering();
    expected.extend(sim.punch(10, false, true));
    sim.outage(false);
    assert_exact(&db, &expected, "after the numbering restarted").await;
    wait_for("event_numbering_reset at central", Duration::from_secs(15), async || {
        db.scalar("SELECT count(*) FROM device_status WHERE faults_json LIKE '%event_numbering_reset%'").await.unwrap()
            == 1
    })
    .await;
    let source = db.scalar(&format!("SELECT count(*) FROM all_logs WHERE source = '{kind}'")).await.unwrap();
    assert_eq!(source, expected.len() as i64);
    drop(central);
    db.cleanup().await;
}

async fn hikvision_every_punch_exactly_once(backend: Backend) {
    every_punch_exactly_once(backend, "hikvision").await;
}

async fn dahua_every_punch_exactly_once(backend: Backend) {
    every_punch_exactly_once(backend, "dahua").await;
}

on_both_backends!(hikvision_every_punch_exactly_once, dahua_every_punch_exactly_once);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_show_as_auth_failed_at_central() {
    let db = CentralDb::new(Backend::Sqlite).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = db.serve(&[]).await.unwrap();
    let hik = Sim::start("hikvision").await;
    let dahua = Sim::start("dahua").await;
    hik.punch(5, true, false);
    dahua.punch(5, true, false);
    let devices = device_toml("hikvision", &hik.serial(), &hik.url(), "not-the-password")
        + &device_toml("dahua", &dahua.serial(), &dahua.url(), "not-the-password");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &central.url, &token, &devices);
    let _agent = start_agent(&config).await.unwrap();
    wait_for("auth_failed for both devices at central", Duration::from_secs(20), async || {
        db.scalar("SELECT count(*) FROM device_status WHERE faults_json LIKE '%auth_failed%' AND reachable = 0")
            .await
            .unwrap()
            == 2
    })
    .await;
    assert_eq!(db.all_logs().await, 0);
    drop(central);
    db.cleanup().await;
}

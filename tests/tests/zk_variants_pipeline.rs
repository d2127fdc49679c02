//! Every ZKTeco variant of issue 13 through the real pipeline: zk-sim (one per variant) -> `edge-agent run` ->
//! `central-api serve` -> AllLogs, on SQLite and PostgreSQL. AllLogs must hold exactly what each device gave, with
//! the device's raw codes; every hidden fault is named with its reason in `edge-agent status`, `/metrics` and
//! central's device status, and cleared there once healed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use edge_agent::zk::{command, RecordLayout, UserLayout};
use protocol::PunchKey;
use sqlx::Connection;
use system_tests::central::{Backend, CentralDb};
use system_tests::harness::Spawned;
use system_tests::on_both_backends;
use system_tests::zk_sim::{FaultSettings, SimConfig, ZkSim};

const SITE: &str = "plant-1";
const AGENT: &str = "gate-1";

/// One simulated device and how the agent is configured for it.
struct Variant {
    /// The serial configured for it (the device's own, except for the serial mismatch).
    serial: &'static str,
    sim: ZkSim,
    /// Extra `[[device]]` keys.
    keys: &'static str,
    udp: bool,
}

impl Variant {
    async fn start(serial: &'static str, config: SimConfig, keys: &'static str, udp: bool) -> Self {
        let sim = ZkSim::start(config).await.unwrap();
        Self { serial, sim, keys, udp }
    }

    fn toml(&self) -> String {
        let port = if self.udp { self.sim.udp_addr().port() } else { self.sim.tcp_addr().port() };
        format!(
            "\n[[device]]\nkind = \"zk\"\nserial = \"{}\"\ntime_zone = \"Asia/Kolkata\"\nhost = \"127.0.0.1\"\n\
             port = {port}\npoll_interval_secs = 1\n{}{}\n",
            self.serial,
            if self.udp { "protocol = \"udp\"\n" } else { "" },
            self.keys
        )
    }

    /// Keys of the first `n` records the device holds.
    fn keys_of(&self, n: usize) -> HashSet<PunchKey> {
        let serial = self.sim.config().serial.parse().unwrap();
        self.sim.records()[..n]
            .iter()
            .map(|r| PunchKey::of(&serial, &self.sim.pin_of(r).parse().unwrap(), r.time))
            .collect()
    }
}

fn sim(serial: &str, records: usize, seed: u64, faults: FaultSettings) -> SimConfig {
    SimConfig { serial: serial.to_owned(), records, seed, faults, ..SimConfig::default() }
}

fn write_config(dir: &Path, central_url: &str, token: &str, devices: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nid = \"{AGENT}\"\nsite = \"{SITE}\"\ndata_dir = \"{}\"\n\n\
             [central]\ntransport = \"https\"\nurl = \"{central_url}\"\ntoken = \"{token}\"\n\n\
             [forward]\nlinger_ms = 20\ninitial_backoff_ms = 50\nmax_backoff_secs = 1\n\n\
             [status]\ninterval_secs = 1\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n{devices}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

/// `(punch key, state, verify, raw state, raw verify)` of every AllLogs row.
type LogRow = (Vec<u8>, i16, i16, Option<i64>, Option<i64>);

async fn all_logs(db: &CentralDb) -> Vec<LogRow> {
    let sql = "SELECT punch_key, state, verify, raw_state, raw_verify FROM all_logs";
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
    }
}

/// The fault codes and messages central holds for `serial` in its latest device status.
async fn central_faults(db: &CentralDb, serial: &str) -> Vec<(String, String)> {
    let sql = "SELECT faults_json FROM device_status WHERE device_serial = $1";
    let json: Option<(String,)> = match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).bind(serial).fetch_optional(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).bind(serial).fetch_optional(&mut conn).await.unwrap()
        }
    };
    let Some((json,)) = json else { return Vec::new() };
    let faults: Vec<protocol::Fault> = serde_json::from_str(&json).unwrap();
    faults.into_iter().map(|f| (f.code, f.message)).collect()
}

async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn every_variant_reaches_all_logs_exactly(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site(SITE).await.unwrap();
    let token = db.create_agent(AGENT, SITE).await.unwrap();
    let central = db.serve(&[]).await.unwrap();

    let faults = |f: fn(&mut FaultSettings)| {
        let mut settings = FaultSettings::default();
        f(&mut settings);
        settings
    };
    let short_uids = SimConfig {
        record_layout: RecordLayout::Short,
        user_layout: UserLayout::Small,
        ..sim("ZKV-ACKDATA", 300, 2, faults(|f| (f.ack_data, f.refuse_buffer_read) = (true, true)))
    };
    let variants = vec![
        Variant::start(
            "ZKV-DISABLE",
            sim("ZKV-DISABLE", 300, 1, faults(|f| f.refuse_disable = Some(command::ACK_ERROR))),
            "",
            false,
        )
        .await,
        Variant::start("ZKV-ACKDATA", short_uids, "", false).await,
        Variant::start(
            "ZKV-CHECKSUM",
            sim("ZKV-CHECKSUM", 300, 3, faults(|f| f.checksum_off_by_one = true)),
            "",
            false,
        )
        .await,
        Variant::start(
            "ZKV-CHECKSUM-UDP",
            sim("ZKV-CHECKSUM-UDP", 300, 4, faults(|f| f.checksum_off_by_one = true)),
            "strict_checksum = false\n",
            true,
        )
        .await,
        Variant::start("ZKV-FCT", sim("ZKV-FCT", 300, 5, faults(|f| f.attlog_by_fct = true)), "", false).await,
        Variant::start("ZKV-LEGACY", sim("ZKV-LEGACY", 300, 6, faults(|f| f.buffered_empty = true)), "", false).await,
        Variant::start("ZKV-SHORT", sim("ZKV-SHORT", 500, 7, faults(|f| f.serve_records = Some(120))), "", false).await,
        Variant::start(
            "ZKV-KEY",
            SimConfig { comm_key: 4242, ..sim("ZKV-KEY", 50, 8, FaultSettings::default()) },
            "comm_key = 4243\n",
            false,
        )
        .await,
        Variant::start("ZKV-SERIAL", sim("ZKV-OTHER", 50, 9, FaultSettings::default()), "", false).await,
        Variant::start(
            "ZKV-CLOCK",
            SimConfig { clock_offset_secs: -77_956_972, ..sim("ZKV-CLOCK", 300, 10, FaultSettings::default()) },
            "",
            false,
        )
        .await,
    ];
    let devices: String = variants.iter().map(Variant::toml).collect();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &central.url, &token, &devices);
    let mut agent =
        Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[("RUST_LOG", "error")])
            .unwrap();
    let metrics_url = agent.listening_url().await.unwrap();

    let by = |serial: &str| variants.iter().find(|v| v.serial == serial).unwrap();
    let mut expected = HashSet::new();
    for v in &variants {
        let n = match v.serial {
            "ZKV-SHORT" => 120,
            "ZKV-KEY" | "ZKV-SERIAL" => 0,
            _ => 300,
        };
        expected.extend(v.keys_of(n));
    }
    assert_eq!(expected.len(), 7 * 300 + 120);
    wait_for("AllLogs to fill", Duration::from_secs(60), async || db.all_logs().await >= expected.len() as i64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows = all_logs(&db).await;
    let keys: HashSet<PunchKey> =
        rows.iter().map(|r| PunchKey::from_bytes(r.0.as_slice().try_into().unwrap())).collect();
    assert_eq!(rows.len(), expected.len(), "{backend:?}: one row per punch");
    assert_eq!(keys, expected, "{backend:?}: exactly what the devices gave");

    // The device's own codes beside the normalised ones, for every row.
    let mut raw_by_key = std::collections::HashMap::new();
    for v in &variants {
        let serial = v.sim.config().serial.parse().unwrap();
        for r in v.sim.records() {
            let key = PunchKey::of(&serial, &v.sim.pin_of(&r).parse().unwrap(), r.time);
            raw_by_key.insert(key, (r.state, r.verify));
        }
    }
    for (key, state, verify, raw_state, raw_verify) in &rows {
        let key = PunchKey::from_bytes(key.as_slice().try_into().unwrap());
        let (device_state, device_verify) = raw_by_key[&key];
        assert_eq!((*raw_state, *raw_verify), (Some(i64::from(device_state)), Some(i64::from(device_verify))));
        assert_eq!(
            (*state, *verify),
            (
                i16::from(protocol::PunchState::from_code(device_state).code()),
                i16::from(protocol::VerifyMode::from_code(device_verify).code())
            )
        );
    }

    // Named faults at central, with their reasons.
    wait_for("the faults at central", Duration::from_secs(30), async || {
        let codes = |f: Vec<(String, String)>| f.into_iter().map(|(c, _)| c).collect::<Vec<_>>();
        codes(central_faults(&db, "ZKV-SHORT").await).contains(&"record_count_mismatch".to_owned())
            && codes(central_faults(&db, "ZKV-KEY").await).contains(&"auth_failed".to_owned())
            && codes(central_faults(&db, "ZKV-SERIAL").await).contains(&"serial_mismatch".to_owned())
            && codes(central_faults(&db, "ZKV-CLOCK").await).contains(&"clock_drift".to_owned())
    })
    .await;
    let message = |faults: Vec<(String, String)>, code: &str| {
        faults.into_iter().find(|(c, _)| c == code).map(|(_, m)| m).unwrap_or_default()
    };
    let short = message(central_faults(&db, "ZKV-SHORT").await, "record_count_mismatch");
    assert!(short.starts_with("the device reports 500 records but the read returned 120"), "{short}");
    let key = message(central_faults(&db, "ZKV-KEY").await, "auth_failed");
    assert!(key.starts_with("the device rejected comm key 4243"), "{key}");
    let serial = message(central_faults(&db, "ZKV-SERIAL").await, "serial_mismatch");
    assert!(serial.contains("expected device ZKV-SERIAL but ZKV-OTHER answered"), "{serial}");
    let clock = message(central_faults(&db, "ZKV-CLOCK").await, "clock_drift");
    assert!(clock.starts_with("device clock is 902 days 6 h 4"), "{clock}");
    for quiet in ["ZKV-DISABLE", "ZKV-ACKDATA", "ZKV-CHECKSUM", "ZKV-CHECKSUM-UDP", "ZKV-FCT", "ZKV-LEGACY"] {
        assert_eq!(central_faults(&db, quiet).await, Vec::new(), "{quiet} works without a fault");
    }
    assert_eq!(by("ZKV-DISABLE").sim.counters().clears, 0);

    // Central's devices page shows each fault with its reason.
    db.cli_with_stdin(&["create-admin", "root", "--role", "root", "--password-stdin"], Some("correct horse battery\n"))
        .await
        .unwrap();
    let page = devices_page(&central.url).await;
    let short_fault = "record_count_mismatch: the device reports 500 records but the read returned 120";
    assert!(page.contains(short_fault), "{page}");
    assert!(page.contains("auth_failed: the device rejected comm key 4243"), "{page}");
    assert!(page.contains("serial_mismatch: expected device ZKV-SERIAL but ZKV-OTHER answered"), "{page}");

    // `edge-agent status` and /metrics say the same.
    let status = tokio::process::Command::new(system_tests::harness::binary("edge-agent").unwrap())
        .args(["status", "--url", &metrics_url])
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&status.stdout);
    assert!(printed.lines().next().unwrap().ends_with(": DEGRADED"), "{printed}");
    assert!(printed.contains("device ZKV-KEY auth_failed since "), "{printed}");
    assert!(printed.contains("device ZKV-SHORT record_count_mismatch since "), "{printed}");
    assert!(!printed.contains("faults:     none"), "{printed}");
    let metrics = reqwest::get(format!("{metrics_url}/metrics")).await.unwrap().text().await.unwrap();
    for line in [
        "edge_device_fault{device=\"ZKV-SHORT\",code=\"record_count_mismatch\"} 1",
        "edge_device_fault{device=\"ZKV-SERIAL\",code=\"serial_mismatch\"} 1",
        "edge_device_checksum_mismatches_total{device=\"ZKV-CHECKSUM\"} ",
        "edge_device_checksum_mismatches_total{device=\"ZKV-CHECKSUM-UDP\"} ",
    ] {
        assert!(metrics.contains(line), "/metrics lacks {line:?}:\n{metrics}");
    }

    // Healed: the short device gives everything; AllLogs gets the rest, central's fault is cleared.
    let short = by("ZKV-SHORT");
    short.sim.faults().serve_records.store(usize::MAX, Ordering::SeqCst);
    expected.extend(short.keys_of(500));
    wait_for("the rest of the short device", Duration::from_secs(30), async || {
        db.all_logs().await == expected.len() as i64
    })
    .await;
    wait_for("the fault cleared at central", Duration::from_secs(30), async || {
        central_faults(&db, "ZKV-SHORT").await.is_empty()
    })
    .await;
    let history = db.faults_of(AGENT).await.unwrap();
    assert!(history.iter().any(|(code, _)| code == "record_count_mismatch"), "{history:?}");

    agent.kill().await.unwrap();
    db.cleanup().await;
}

/// Central's `/devices` page, logged in as root.
async fn devices_page(url: &str) -> String {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = browser
        .post(format!("{url}/login"))
        .form(&[("username", "root"), ("password", "correct horse battery"), ("next", "/devices")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), reqwest::StatusCode::SEE_OTHER);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = browser.get(format!("{url}/devices")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    page.text().await.unwrap()
}

on_both_backends!(every_variant_reaches_all_logs_exactly);

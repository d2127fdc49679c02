//! A damaged buffer (the four damages to a stopped agent's sled file) holding 20,000 punches that the
//! devices were told are stored: the agent must notice at start, raise `buffer_damaged` (metrics, `/healthz`, the
//! status envelope central records), ask the devices to resend, and AllLogs must end equal to what the terminals
//! hold.
//!
//! Four garbled KiB near the file's end may land on node versions sled no longer reads (the log is append-only;
//! with small chunks the newest bytes are often superseded leaves). Then nothing is lost, no damage may be claimed,
//! and the agent must still hold and deliver every punch. A fifth damage garbles every copy of the push terminal's
//! serial in the file, which is sure to hit live punches, so damage must be reported.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use chrono::NaiveDateTime;
use protocol::PunchKey;
use system_tests::adms_sim::{row, AdmsSim};
use system_tests::harness::Spawned;
use system_tests::pipeline::{assert_all_logs_exact, central_db, free_addr, serve_central, Fleet, AGENT, SITE};

const SN: &str = "DMG00001";
const ZK_RECORDS: usize = 5_000;
const PUSHED: usize = 10_000;

fn at(i: usize) -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-02-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
        + chrono::Duration::seconds(i as i64 * 61)
}

fn pin(i: usize) -> String {
    format!("{}", 2000 + i % 40)
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    TruncateHalf,
    TruncateZero,
    Delete,
    GarbleNearEnd,
    GarbleEverySerial,
}

fn damage(store: &Path, how: Damage) {
    let db = store.join("db");
    let len = std::fs::metadata(&db).expect("sled db file").len();
    match how {
        Damage::TruncateHalf => std::fs::File::options().write(true).open(&db).unwrap().set_len(len / 2).unwrap(),
        Damage::TruncateZero => std::fs::File::options().write(true).open(&db).unwrap().set_len(0).unwrap(),
        Damage::Delete => std::fs::remove_dir_all(store).unwrap(),
        Damage::GarbleNearEnd => {
            use std::os::unix::fs::FileExt;
            let file = std::fs::File::options().write(true).open(&db).unwrap();
            let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
            file.write_all_at(&noise, len.saturating_sub(8192)).unwrap();
        }
        Damage::GarbleEverySerial => {
            let mut bytes = std::fs::read(&db).expect("sled db file");
            let needle = SN.as_bytes();
            let mut hits = 0;
            let mut at = 0;
            while let Some(found) = bytes[at..].windows(needle.len()).position(|w| w == needle) {
                let start = at + found;
                bytes[start..start + needle.len()].copy_from_slice(b"XXXXXXXX");
                hits += 1;
                at = start + needle.len();
            }
            assert!(hits >= 10, "the serial is written into the store in the clear ({hits} copies found)");
            std::fs::write(&db, bytes).expect("garbled store written");
        }
    }
}

/// The value of the metric line `name` (a sample, not its `# HELP` or `# TYPE` line).
fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

async fn metrics(local: &str) -> String {
    reqwest::get(format!("{local}/metrics")).await.expect("metrics").text().await.expect("text")
}

async fn depth(local: &str) -> u64 {
    metric_value(&metrics(local).await, "edge_buffer_depth").unwrap_or(0.0) as u64
}

async fn run(how: Damage) {
    let (db, token) = central_db().await.expect("central database");
    let central_addr = free_addr().expect("port");
    let fleet = Fleet::start(2, ZK_RECORDS, 40).await.expect("simulators");
    let dir = tempfile::tempdir().expect("tempdir");
    let push_addr = free_addr().expect("port");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"{AGENT}\"\nsite = \"{SITE}\"\ndata_dir = \"{}\"\n\n[central]\ntransport = \"https\"\n\
             url = \"http://{central_addr}\"\ntoken = \"{token}\"\nrequest_timeout_secs = 10\n\n\
             [forward]\nmax_batch = 5000\nlinger_ms = 100\ninitial_backoff_ms = 100\nmax_backoff_secs = 1\n\n\
             [status]\ninterval_secs = 1\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
             [adms]\nlisten = \"{push_addr}\"\npoll_delay_secs = 1\n\n\
             [[device]]\nkind = \"adms\"\nserial = \"{SN}\"\ntime_zone = \"Asia/Kolkata\"\n{}",
            dir.path().join("data").display(),
            fleet.device_toml()
        ),
    )
    .expect("config");
    let args = ["run", "--config", &config.to_string_lossy()];
    let start = || Spawned::start("edge-agent", &args, &[("RUST_LOG", "error")]);

    // 20,000 punches buffered while central is down: 10,000 read from the ZKTeco logs, 10,000 pushed (and
    // answered OK, so the push terminal will not send them again on its own).
    let mut agent = start().expect("edge-agent");
    let local = agent.listening_url().await.expect("agent");
    let push_url = format!("http://{push_addr}");
    let mut sim = AdmsSim::new(&push_url, SN);
    sim.batch_size = 1000;
    sim.record((0..PUSHED).map(|i| (at(i), row(&pin(i), at(i), 0, 1))));
    sim.handshake().await.expect("handshake");
    assert_eq!(sim.push_pending().await.expect("pushed"), PUSHED);
    let total = (2 * ZK_RECORDS + PUSHED) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while depth(&local).await < total {
        assert!(tokio::time::Instant::now() < deadline, "{how:?}: buffered {} of {total}", depth(&local).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    agent.terminate().expect("SIGTERM");
    agent.wait().await.expect("stopped");

    damage(&dir.path().join("data").join("buffer"), how);

    let mut central = serve_central(&db, central_addr, &[]).await.expect("central-api");
    let mut agent = start().expect("edge-agent restarted");
    let local = agent.listening_url().await.expect("agent");
    let text = metrics(&local).await;
    let damaged = metric_value(&text, "edge_buffer_damaged");
    let fault = metric_value(&text, "edge_agent_fault{code=\"buffer_damaged\"}");
    let health: serde_json::Value = reqwest::get(format!("{local}/healthz")).await.unwrap().json().await.unwrap();
    let health = health.to_string();
    let _ = agent.wait_for_line("edge-agent adms listening on ", Duration::from_secs(30)).await;
    if damaged == Some(0.0) && matches!(how, Damage::GarbleNearEnd) {
        // The garbled bytes held nothing sled still reads: every punch must still be there, and no fault claimed.
        assert_eq!(fault, None, "{how:?}: no damage, no fault");
        assert!(!health.contains("buffer_damaged"), "{how:?}: no damage in /healthz: {health}");
        assert_eq!(depth(&local).await, total, "{how:?}: no damage reported, so every unsent punch is still held");
    } else {
        assert_eq!(damaged, Some(1.0), "{how:?}: damage in the metrics");
        assert_eq!(fault, Some(1.0), "{how:?}: fault in the metrics");
        assert!(
            health.contains("buffer_damaged") && health.contains(SN),
            "{how:?}: the fault names the push device: {health}"
        );
        // The push terminal shakes hands again (as it does on reconnecting), learns stamp 0 and sends everything.
        sim.handshake().await.expect("handshake after damage");
        assert_eq!(sim.server_stamp, 0, "{how:?}: the stamp was rewound");
        sim.push_pending().await.expect("resent");
    }

    let mut expected: HashSet<PunchKey> = fleet.expected_keys();
    let serial = SN.parse().unwrap();
    for i in 0..PUSHED {
        expected.insert(PunchKey::of(&serial, &pin(i).parse().unwrap(), at(i)));
    }
    assert_eq!(expected.len() as u64, total);
    assert_all_logs_exact(&db, &expected, Duration::from_secs(120)).await.unwrap_or_else(|e| panic!("{how:?}: {e:#}"));
    let recorded = db
        .scalar("SELECT count(*) FROM fault_history WHERE code = 'buffer_damaged' AND device_serial IS NULL")
        .await
        .unwrap_or(0);
    if damaged == Some(1.0) {
        assert!(recorded >= 1, "{how:?}: the status envelope carried the fault to central");
    }
    agent.kill().await.ok();
    central.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_file_truncated_to_half() {
    run(Damage::TruncateHalf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_file_truncated_to_zero() {
    run(Damage::TruncateZero).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_deleted() {
    run(Damage::Delete).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_kib_garbled_near_the_end() {
    run(Damage::GarbleNearEnd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_copy_of_the_serial_garbled() {
    run(Damage::GarbleEverySerial).await;
}

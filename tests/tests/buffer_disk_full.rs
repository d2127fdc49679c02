//! Reproduction scratch (to become the disk-full test).

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use system_tests::adms_sim::{row, AdmsSim};
use system_tests::pipeline::{central_db, free_addr, serve_central, SITE, AGENT};
use system_tests::harness::Spawned;
use system_tests::small_fs::SmallFs;

const SN: &str = "FULL0001";

fn at(i: usize) -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
        + chrono::Duration::seconds(i as i64 * 61)
}

async fn metric(http: &reqwest::Client, local: &str, name: &str) -> String {
    match http.get(format!("{local}/metrics")).timeout(Duration::from_secs(5)).send().await {
        Ok(r) => r.text().await.unwrap_or_default().lines().filter(|l| l.starts_with(name)).collect::<Vec<_>>().join(" | "),
        Err(e) => format!("metrics error {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repro() {
    let fs = SmallFs::mount(8 << 20).unwrap();
    let (db, token) = central_db().await.unwrap();
    let central_addr = free_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let fleet = system_tests::pipeline::Fleet::start(2, 0, 30).await.unwrap();
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"{AGENT}\"\nsite = \"{SITE}\"\ndata_dir = \"{}\"\n\n[central]\ntransport = \"https\"\n\
             url = \"http://{central_addr}\"\ntoken = \"{token}\"\nrequest_timeout_secs = 10\n\n\
             [buffer]\nmax_disk_mb = 2048\ncache_mb = 8\n\n\
             [forward]\nmax_batch = 5000\nlinger_ms = 100\ninitial_backoff_ms = 100\nmax_backoff_secs = 1\n\n\
             [status]\ninterval_secs = 2\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
             [adms]\nlisten = \"127.0.0.1:0\"\npoll_delay_secs = 1\n\n\
             [[device]]\nkind = \"adms\"\nserial = \"{SN}\"\ntime_zone = \"Asia/Kolkata\"\n{}",
            fs.path().join("data").display(), fleet.device_toml()
        ),
    )
    .unwrap();
    let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let mut agent = Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[("RUST_LOG", &log)]).unwrap();
    let local = agent.listening_url().await.unwrap();
    let push = agent.wait_for_line("edge-agent adms listening on ", Duration::from_secs(30)).await.unwrap();
    let http = reqwest::Client::new();

    let mut sim = AdmsSim::new(&push, SN);
    sim.batch_size = 500;
    sim.max_attempts = 1;
    sim.handshake().await.unwrap();
    let mut n = 0;
    loop {
        sim.record((n..n + 500).map(|i| (at(i), row(&format!("{}", 1000 + i % 50), at(i), 0, 1))));
        n += 500;
        let started = Instant::now();
        if let Err(e) = sim.push_pending().await {
            eprintln!("refused at {n}: {e} after {:?}; free {}", started.elapsed(), fs.free_bytes().unwrap());
            break;
        }
    }
    eprintln!("stamp {} {}", sim.server_stamp, metric(&http, &local, "edge_buffer").await);
    let stopf = tokio_util::sync::CancellationToken::new();
    let _prod = fleet.produce(1_000_000, Duration::from_millis(50), 40, 2, stopf.clone());
    let _ = &fleet;
    let mut pushers = Vec::new();
    for k in 0..3 {
        let push = push.clone();
        pushers.push(tokio::spawn(async move {
            let mut sim = AdmsSim::new(&push, SN);
            sim.batch_size = 200; sim.max_attempts = 1000000; sim.retry_delay = Duration::from_millis(50);
            let _ = sim.handshake().await;
            let base = 1_000_000 * (k + 1);
            sim.record((base..base + 20000).map(|i| (at(i), row(&format!("{}", 1000 + i % 50), at(i), 0, 1))));
            let r = sim.push_pending().await;
            eprintln!("pusher {k} done {r:?}");
        }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    fs.resize(64 << 20).unwrap(); eprintln!("grown before central");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _central = serve_central(&db, central_addr, &[]).await.unwrap();
    for s in 0..40 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rows = db.scalar("SELECT count(*) FROM all_logs").await.unwrap_or(-1);
        eprintln!("t={} all_logs={rows} free={} {}", s * 3, fs.free_bytes().unwrap(), metric(&http, &local, "edge_buffer_depth").await + &metric(&http, &local, "edge_buffer_full").await + &metric(&http, &local, "edge_forward_punches_acked").await);
        let started = Instant::now();
        sim.record((n..n + 10).map(|i| (at(i), row(&format!("{}", 1000 + i % 50), at(i), 0, 1))));
        n += 10;
        let r = sim.push_pending().await;
        eprintln!("push: {:?} in {:?}", r.map_err(|e| e.to_string()), started.elapsed());
    }
    let started = Instant::now();
    unsafe { libc::kill(agent.pid().unwrap() as i32, libc::SIGTERM) };
    let r = tokio::time::timeout(Duration::from_secs(40), agent.wait()).await;
    eprintln!("{r:?}");
    eprintln!("stopped in {:?}", started.elapsed());
}

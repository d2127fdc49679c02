//! The agent on a filesystem of 8 MiB (a tmpfs the test mounts; it runs as root): a push terminal and two ZKTeco
//! terminals fill the buffer while central is down; something else then takes the last bytes of the filesystem, so
//! sled's writes fail (which poisons a sled instance for good); central comes back; the filesystem is grown. The
//! agent must recover by itself: answer pushes promptly in every phase (503 while full, never a hang), forward
//! everything once it can, keep pinging the systemd watchdog while it waits for space (idle by choice), stop on
//! SIGTERM within the unit's stop timeout, and AllLogs must end equal to what the terminals hold.
//!
//! sled 0.34 can hang for good inside a failed instance (see `edge_agent::buffer::store`); then the agent must say
//! so by no longer pinging the watchdog, and the test does what systemd does with `WatchdogSec` and
//! `Restart=on-failure`: it kills the silent agent and starts it again, until the agent runs and pings.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use protocol::PunchKey;
use system_tests::adms_sim::{row, AdmsSim};
use system_tests::harness::Spawned;
use system_tests::pipeline::{assert_all_logs_exact, central_db, free_addr, serve_central, Fleet, AGENT, SITE};
use system_tests::small_fs::SmallFs;

const SN: &str = "FULL0001";
/// The unit's TimeoutStopSec.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn at(i: usize) -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-01-01 00:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
        + chrono::Duration::seconds(i as i64 * 61)
}

fn pin(i: usize) -> String {
    format!("{}", 1000 + i % 50)
}

async fn metric(http: &reqwest::Client, local: &str, name: &str) -> Option<f64> {
    let text =
        http.get(format!("{local}/metrics")).timeout(Duration::from_secs(5)).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
}

/// Counts `WATCHDOG=1` datagrams on a fake `NOTIFY_SOCKET` and remembers when the last one came.
fn watchdog_socket(path: &Path) -> (Arc<AtomicU64>, Arc<Mutex<Instant>>) {
    let socket = tokio::net::UnixDatagram::bind(path).expect("notify socket");
    let pings = Arc::new(AtomicU64::new(0));
    let last = Arc::new(Mutex::new(Instant::now()));
    let (counter, seen) = (pings.clone(), last.clone());
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok(n) = socket.recv(&mut buf).await {
            if String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "WATCHDOG=1") {
                counter.fetch_add(1, Ordering::SeqCst);
                *seen.lock().unwrap() = Instant::now();
            }
        }
    });
    (pings, last)
}

/// What systemd does for the unit (`WatchdogSec=2`, `Restart=on-failure`, `RestartSec=1`): an agent that has not
/// pinged for longer than the watchdog period is killed and started again.
struct Supervisor {
    agent: Arc<tokio::sync::Mutex<Spawned>>,
    restarts: Arc<AtomicU64>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    const SILENCE: Duration = Duration::from_secs(4);

    fn start(config: &Path, notify: &Path) -> (Self, Arc<Mutex<Instant>>, Arc<AtomicU64>) {
        let (pings, last_ping) = watchdog_socket(notify);
        let start = {
            let (config, notify) = (config.to_string_lossy().to_string(), notify.to_string_lossy().to_string());
            move || {
                Spawned::start_under_watchdog(
                    "edge-agent",
                    &["run", "--config", &config],
                    &[
                        ("RUST_LOG", "error,edge_agent::buffer=warn"),
                        ("NOTIFY_SOCKET", &notify),
                        ("WATCHDOG_USEC", "2000000"),
                    ],
                )
                .expect("edge-agent")
            }
        };
        let agent = Arc::new(tokio::sync::Mutex::new(start()));
        let restarts = Arc::new(AtomicU64::new(0));
        let stop = tokio_util::sync::CancellationToken::new();
        let task = {
            let (agent, restarts, stop, last_ping) = (agent.clone(), restarts.clone(), stop.clone(), last_ping.clone());
            tokio::spawn(async move {
                let mut started = Instant::now();
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                    let silent = last_ping.lock().unwrap().elapsed().min(started.elapsed());
                    if silent < Self::SILENCE {
                        continue;
                    }
                    let mut agent = agent.lock().await;
                    eprintln!("supervisor: no watchdog ping for {silent:?}; killing and restarting the agent");
                    let _ = agent.kill().await;
                    let _ = agent.wait().await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    *agent = start();
                    started = Instant::now();
                    restarts.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        (Self { agent, restarts, stop, task }, last_ping, pings)
    }

    fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::SeqCst)
    }

    /// Stops supervising and hands the running agent over.
    async fn into_agent(self) -> Spawned {
        self.stop.cancel();
        self.task.await.expect("supervisor");
        Arc::try_unwrap(self.agent).ok().expect("only the supervisor held the agent").into_inner()
    }
}

/// Pushes one batch of rows; returns whether it was taken and how long the answer took.
async fn push(
    sim: &mut AdmsSim,
    rows: &mut Vec<(NaiveDateTime, String)>,
    next: &mut usize,
    n: usize,
) -> (bool, Duration) {
    let batch: Vec<_> = (*next..*next + n).map(|i| (at(i), row(&pin(i), at(i), 0, 1))).collect();
    let started = Instant::now();
    sim.record(batch.clone());
    let taken = sim.push_pending().await.is_ok();
    if taken {
        rows.extend(batch);
        *next += n;
    } else {
        // The terminal keeps the rows and sends them again later: the simulator's log already holds them.
        rows.extend(batch);
        *next += n;
    }
    (taken, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_recovers_by_itself_and_loses_nothing() {
    let fs = SmallFs::mount(8 << 20).expect("tmpfs");
    let (db, token) = central_db().await.expect("central database");
    let central_addr = free_addr().expect("port");
    // Fixed ports, so that an agent the supervisor restarts answers where the first one did.
    let (metrics_addr, adms_addr) = (free_addr().expect("port"), free_addr().expect("port"));
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = Fleet::start(2, 2_000, 30).await.expect("simulators");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"{AGENT}\"\nsite = \"{SITE}\"\ndata_dir = \"{}\"\n\n[central]\ntransport = \"https\"\n\
             url = \"http://{central_addr}\"\ntoken = \"{token}\"\nrequest_timeout_secs = 10\n\n\
             [buffer]\nmax_disk_mb = 2048\ncache_mb = 8\n\n\
             [forward]\nmax_batch = 5000\nlinger_ms = 100\ninitial_backoff_ms = 100\nmax_backoff_secs = 1\n\n\
             [status]\ninterval_secs = 2\n\n[metrics]\nlisten = \"{metrics_addr}\"\n\n\
             [adms]\nlisten = \"{adms_addr}\"\npoll_delay_secs = 1\n\n\
             [[device]]\nkind = \"adms\"\nserial = \"{SN}\"\ntime_zone = \"Asia/Kolkata\"\n{}",
            fs.path().join("data").display(),
            fleet.device_toml()
        ),
    )
    .expect("config");
    let notify = dir.path().join("notify.sock");
    let (supervisor, _last_ping, pings) = Supervisor::start(&config, &notify);
    let (local, push_url) = {
        let mut agent = supervisor.agent.lock().await;
        let local = agent.listening_url().await.expect("agent");
        let push = agent.wait_for_line("edge-agent adms listening on ", Duration::from_secs(30)).await.expect("adms");
        (local, push)
    };
    assert_eq!(
        (local.as_str(), push_url.trim_end_matches('/')),
        (&*format!("http://{metrics_addr}"), &*format!("http://{adms_addr}"))
    );
    let http = reqwest::Client::new();
    let stop_producing = tokio_util::sync::CancellationToken::new();
    let producer = fleet.produce(usize::MAX, Duration::from_millis(100), 20, 1, stop_producing.clone());

    // 1. Central down: push until the buffer refuses.
    let mut sim = AdmsSim::new(&push_url, SN);
    sim.batch_size = 500;
    sim.max_attempts = 1;
    sim.retry_delay = Duration::from_millis(10);
    sim.handshake().await.expect("handshake");
    let (mut rows, mut next) = (Vec::new(), 0usize);
    let mut slowest = Duration::ZERO;
    let filled_at = loop {
        let (taken, took) = push(&mut sim, &mut rows, &mut next, 500).await;
        slowest = slowest.max(took);
        if !taken {
            break next;
        }
        assert!(next < 400_000, "the buffer never refused on an 8 MiB filesystem");
    };
    assert_eq!(metric(&http, &local, "edge_buffer_full ").await, Some(1.0), "buffer_full raised");
    let depth_full = metric(&http, &local, "edge_buffer_depth ").await.unwrap_or(0.0);
    eprintln!("full after {filled_at} pushed rows; depth {depth_full}; {} bytes free", fs.free_bytes().unwrap());
    assert!(fs.free_bytes().unwrap() > 0, "the reserve keeps the filesystem from filling to the last byte");

    // 2. Something else takes the rest of the disk; central comes back. Acknowledgements now fail for lack of
    // space, which poisons sled; the agent keeps answering and waits for space.
    let fill = |n: usize| {
        let free = usize::try_from(fs.free_bytes().unwrap()).unwrap();
        let _ = std::fs::write(fs.path().join(format!("filler-{n}")), vec![0u8; free]);
    };
    fill(0);
    let mut central = serve_central(&db, central_addr, &[]).await.expect("central-api");
    let pings_before = pings.load(Ordering::SeqCst);
    for n in 1..=10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Whatever the acknowledgements freed inside the filesystem is taken too: it stays full.
        fill(n);
        let (_, took) = push(&mut sim, &mut rows, &mut next, 10).await;
        slowest = slowest.max(took);
    }
    let waiting_pings = pings.load(Ordering::SeqCst) - pings_before;
    let stuck_at = db.all_logs().await;
    let restarts = supervisor.restarts();
    eprintln!("while waiting for space: {waiting_pings} watchdog pings, {restarts} restarts, AllLogs {stuck_at}");
    // Waiting for space is idle by choice: the watchdog keeps pinging; unless sled hung inside the failed instance,
    // which the agent must own up to by going silent, so that it is restarted.
    assert!(
        waiting_pings >= 5 || restarts > 0,
        "the agent neither kept pinging while it waited ({waiting_pings}) nor went silent to be restarted"
    );

    // 3. Space returns: the filler goes and the filesystem grows. No restart: the agent must pick up by itself.
    for n in 0..=10 {
        let _ = std::fs::remove_file(fs.path().join(format!("filler-{n}")));
    }
    fs.resize(64 << 20).expect("grow");
    let recovered = Instant::now();
    sim.max_attempts = 1200;
    sim.retry_delay = Duration::from_millis(100);
    let (taken, _) = push(&mut sim, &mut rows, &mut next, 100).await;
    assert!(taken, "pushes are taken again once space returned");
    stop_producing.cancel();
    producer.await.expect("producer");
    let mut expected: HashSet<PunchKey> = fleet.expected_keys();
    let serial = SN.parse().unwrap();
    for (time, text) in &rows {
        let pin = text.split('\t').next().unwrap().parse().unwrap();
        expected.insert(PunchKey::of(&serial, &pin, *time));
    }
    assert_all_logs_exact(&db, &expected, Duration::from_secs(180)).await.expect("AllLogs equals the terminals");
    eprintln!(
        "recovered: {} punches in AllLogs {:.1} s after space returned; slowest push answer {:?}",
        expected.len(),
        recovered.elapsed().as_secs_f64(),
        slowest
    );
    assert!(slowest < Duration::from_secs(5), "every push was answered promptly ({slowest:?})");
    assert_eq!(metric(&http, &local, "edge_buffer_full ").await, Some(0.0));

    // 4. SIGTERM stops it well within the unit's stop timeout.
    let restarts = supervisor.restarts();
    let mut agent = supervisor.into_agent().await;
    eprintln!("the supervisor restarted the agent {restarts} times");
    let stopping = Instant::now();
    agent.terminate().expect("SIGTERM");
    tokio::time::timeout(STOP_TIMEOUT, agent.wait()).await.expect("stopped within TimeoutStopSec").expect("exit");
    eprintln!("stopped {:.1} s after SIGTERM", stopping.elapsed().as_secs_f64());
    central.kill().await.ok();
}

//! The Hikvision and Dahua drivers against their simulators, with an in-memory sink: history paged in full, realtime
//! events, a stream that drops while events happen, a restarted numbering, a model without history search, refused
//! credentials, a wrong clock, another device at the address, and `edge-agent probe`.

use std::sync::Arc;
use std::time::Duration;

use edge_agent::config::{DeviceConfig, DeviceSettings};
use edge_agent::device_status::DeviceStatusBoard;
use edge_agent::http_terminal::settings::TerminalSettings;
use edge_agent::sink::memory::MemorySink;
use protocol::{Direction, PunchSource, PunchState, VerifyMode};
use system_tests::dahua_sim::{DahuaSim, DahuaSimConfig};
use system_tests::hik_sim::{HikSim, HikSimConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn settings(url: &str, password: &str) -> TerminalSettings {
    TerminalSettings {
        url: url.to_owned(),
        user: "admin".into(),
        password: Some(password.to_owned()),
        password_file: None,
        password_env: None,
        poll_interval_secs: 60,
        realtime: true,
        page_size: None,
        timeout_ms: 2_000,
        max_clock_drift_secs: 60,
        overlap_secs: 0,
        stream_idle_secs: Some(10),
        auth_retry_secs: 300,
        accept_invalid_certs: false,
        ca_file: None,
        epoch_is_local: false,
    }
}

fn device(serial: &str, settings: TerminalSettings, kind: &str) -> DeviceConfig {
    DeviceConfig {
        serial: serial.parse().unwrap(),
        name: serial.to_owned(),
        time_zone: chrono_tz::Asia::Kolkata,
        direction: Direction::Both,
        settings: if kind == "dahua" { DeviceSettings::Dahua(settings) } else { DeviceSettings::Hikvision(settings) },
    }
}

struct Run {
    sink: Arc<MemorySink>,
    board: DeviceStatusBoard,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Run {
    fn faults(&self) -> Vec<String> {
        self.board.snapshot().iter().flat_map(|s| s.faults.iter().map(|f| f.code.clone())).collect()
    }

    async fn finish(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

fn start(device: &DeviceConfig, sink: Arc<MemorySink>) -> Run {
    let site = "plant-1".parse().unwrap();
    let board = DeviceStatusBoard::new();
    let stop = CancellationToken::new();
    let task = match &device.settings {
        DeviceSettings::Hikvision(s) => {
            let (terminal, session) = edge_agent::hikvision::build(&site, device, s).unwrap();
            tokio::spawn(edge_agent::hikvision::run(terminal, session, sink.clone(), board.clone(), stop.clone()))
        }
        DeviceSettings::Dahua(s) => {
            let (terminal, session) = edge_agent::dahua::build(&site, device, s).unwrap();
            tokio::spawn(edge_agent::dahua::run(terminal, session, sink.clone(), board.clone(), stop.clone()))
        }
        _ => unreachable!("only terminals here"),
    };
    Run { sink, board, stop, task }
}

async fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hikvision_history_realtime_drop_and_reset_read_every_punch_once() {
    let sim = HikSim::start(HikSimConfig::default()).await.unwrap();
    let mut made = sim.preload(95);
    let dev = device(&sim.config().serial, settings(&sim.url(), &sim.config().password), "hikvision");
    let run = start(&dev, Arc::new(MemorySink::new()));
    wait_until("95 history punches", Duration::from_secs(20), || run.sink.punches().len() == 95).await;
    let (searches, served) = sim.search_stats();
    assert!(
        searches >= 7 && served == 190,
        "190 events (95 punches, 95 lock events) in pages of 30: {searches}, {served}"
    );
    let first = &run.sink.punches()[0];
    assert_eq!(
        (first.source, first.verify, first.state),
        (PunchSource::Hikvision, VerifyMode::Face, PunchState::CheckIn)
    );
    assert_eq!((first.raw_verify, first.raw_state), (Some(0x4b), Some(1)));
    assert_eq!(first.local_time, made[0].at.with_timezone(&chrono_tz::Asia::Kolkata).naive_local());
    let status = &run.board.snapshot()[0];
    assert_eq!(status.kind, "hikvision");
    let info = status.info.as_ref().unwrap();
    assert_eq!(
        (info.model.as_deref(), info.reported_serial.as_deref()),
        (Some("DS-K1T671M"), Some(sim.config().serial.as_str()))
    );
    assert_eq!((status.user_count, info.user_capacity), (Some(25), Some(3000)));

    // Realtime: each punch arrives through the stream without another search.
    wait_until("stream open", Duration::from_secs(5), || sim.open_streams() == 1).await;
    // The read that brought the history may still be confirming it has everything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = sim.search_stats().0;
    for _ in 0..3 {
        made.extend(sim.punch(1, false));
        let want = made.len();
        wait_until("a realtime punch", Duration::from_secs(2), || run.sink.punches().len() == want).await;
    }
    assert_eq!(sim.search_stats().0, before, "realtime punches came without a search");

    // The stream drops and stays down while 5 punches happen: the device stays reachable, says its stream is down,
    // and the reopening reads them from the history.
    sim.refuse_streams(true);
    sim.drop_streams();
    made.extend(sim.punch(5, true));
    wait_until("stream_down", Duration::from_secs(5), || run.faults().contains(&"stream_down".to_owned())).await;
    assert!(run.board.snapshot()[0].reachable);
    sim.refuse_streams(false);
    wait_until("punches made during the drop", Duration::from_secs(20), || run.sink.punches().len() == made.len())
        .await;
    wait_until("stream_down cleared", Duration::from_secs(5), || run.faults().is_empty()).await;

    // A reset restarts the numbering below the cursor: the new events are read by time.
    sim.refuse_streams(true);
    sim.drop_streams();
    sim.reset_numbering();
    made.extend(sim.punch(4, true));
    sim.refuse_streams(false);
    wait_until("punches after the reset", Duration::from_secs(20), || run.sink.punches().len() == made.len()).await;
    wait_until("reset fault", Duration::from_secs(5), || run.faults().contains(&"event_numbering_reset".to_owned()))
        .await;
    assert_eq!(sim.keys(&made), run.sink.punches().iter().map(|p| p.key()).collect(), "every punch exactly once");
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dahua_history_realtime_drop_and_reset_read_every_punch_once() {
    let sim = DahuaSim::start(DahuaSimConfig::default()).await.unwrap();
    let mut made = sim.preload(95);
    let dev = device(&sim.config().serial, settings(&sim.url(), &sim.config().password), "dahua");
    let run = start(&dev, Arc::new(MemorySink::new()));
    wait_until("95 history punches", Duration::from_secs(20), || run.sink.punches().len() == 95).await;
    let (finds, served) = sim.search_stats();
    assert!(finds >= 10, "190 records (95 face, 95 remote) at most 20 a find: {finds} finds, {served} served");
    let first = &run.sink.punches()[0];
    assert_eq!((first.source, first.verify, first.state), (PunchSource::Dahua, VerifyMode::Face, PunchState::CheckIn));
    assert_eq!((first.raw_verify, first.raw_state), (Some(15), Some(1)));
    assert_eq!(first.local_time, made[0].at.with_timezone(&chrono_tz::Asia::Kolkata).naive_local());
    assert_eq!(run.sink.punches()[1].state, PunchState::CheckOut);
    let status = &run.board.snapshot()[0];
    assert_eq!((status.kind.as_str(), status.user_count), ("dahua", Some(25)));
    assert_eq!(status.info.as_ref().unwrap().model.as_deref(), Some("ASI7213X"));

    wait_until("stream open", Duration::from_secs(5), || sim.open_streams() == 1).await;
    // The read that brought the history may still be confirming it has everything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = sim.search_stats().0;
    for _ in 0..3 {
        made.extend(sim.punch(1, false));
        let want = made.len();
        wait_until("a realtime punch", Duration::from_secs(2), || run.sink.punches().len() == want).await;
    }
    assert_eq!(sim.search_stats().0, before, "realtime punches came without a find");

    sim.refuse_streams(true);
    sim.drop_streams();
    made.extend(sim.punch(5, true));
    tokio::time::sleep(Duration::from_millis(500)).await;
    sim.refuse_streams(false);
    wait_until("punches made during the drop", Duration::from_secs(20), || run.sink.punches().len() == made.len())
        .await;

    sim.refuse_streams(true);
    sim.drop_streams();
    sim.reset_numbering();
    made.extend(sim.punch(4, true));
    sim.refuse_streams(false);
    wait_until("punches after the reset", Duration::from_secs(20), || run.sink.punches().len() == made.len()).await;
    wait_until("reset fault", Duration::from_secs(5), || run.faults().contains(&"event_numbering_reset".to_owned()))
        .await;
    assert_eq!(sim.keys(&made), run.sink.punches().iter().map(|p| p.key()).collect(), "every punch exactly once");
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_without_history_search_work_from_the_stream_and_say_so() {
    let hik = HikSim::start(HikSimConfig { history_supported: false, ..HikSimConfig::default() }).await.unwrap();
    let dahua =
        DahuaSim::start(DahuaSimConfig { history_supported: false, ..DahuaSimConfig::default() }).await.unwrap();
    hik.preload(10);
    dahua.preload(10);
    let hik_run = start(
        &device(&hik.config().serial, settings(&hik.url(), "Hik12345"), "hikvision"),
        Arc::new(MemorySink::new()),
    );
    let dahua_run = start(
        &device(&dahua.config().serial, settings(&dahua.url(), "Dahua12345"), "dahua"),
        Arc::new(MemorySink::new()),
    );
    for run in [&hik_run, &dahua_run] {
        wait_until("history_not_supported", Duration::from_secs(10), || {
            run.faults().contains(&"history_not_supported".to_owned())
        })
        .await;
    }
    wait_until("streams open", Duration::from_secs(5), || hik.open_streams() == 1 && dahua.open_streams() == 1).await;
    let hik_made = hik.punch(3, false);
    let dahua_made = dahua.punch(3, false);
    wait_until("realtime punches", Duration::from_secs(5), || {
        hik_run.sink.punches().len() == 3 && dahua_run.sink.punches().len() == 3
    })
    .await;
    assert_eq!(hik.keys(&hik_made), hik_run.sink.punches().iter().map(|p| p.key()).collect());
    assert_eq!(dahua.keys(&dahua_made), dahua_run.sink.punches().iter().map(|p| p.key()).collect());
    assert!(hik_run.board.snapshot()[0].reachable && dahua_run.board.snapshot()[0].reachable);
    hik_run.finish().await;
    dahua_run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_raise_auth_failed_without_hammering_the_device() {
    let hik = HikSim::start(HikSimConfig::default()).await.unwrap();
    let dahua = DahuaSim::start(DahuaSimConfig::default()).await.unwrap();
    hik.preload(5);
    dahua.preload(5);
    let hik_run =
        start(&device(&hik.config().serial, settings(&hik.url(), "wrong"), "hikvision"), Arc::new(MemorySink::new()));
    let dahua_run =
        start(&device(&dahua.config().serial, settings(&dahua.url(), "wrong"), "dahua"), Arc::new(MemorySink::new()));
    for run in [&hik_run, &dahua_run] {
        wait_until("auth_failed", Duration::from_secs(10), || run.faults().contains(&"auth_failed".to_owned())).await;
        let status = &run.board.snapshot()[0];
        assert!(!status.reachable);
        let fault = status.faults.iter().find(|f| f.code == "auth_failed").unwrap();
        assert!(fault.message.contains("admin"), "{}", fault.message);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!((hik.auth_failures(), dahua.auth_failures()), (1, 1), "one refused answer each, then the retry waits");
    assert!(hik_run.sink.punches().is_empty() && dahua_run.sink.punches().is_empty());
    hik_run.finish().await;
    dahua_run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_clock_and_another_device_are_reported() {
    let hik = HikSim::start(HikSimConfig { clock_offset_secs: 600, ..HikSimConfig::default() }).await.unwrap();
    let dahua = DahuaSim::start(DahuaSimConfig { clock_offset_secs: -900, ..DahuaSimConfig::default() }).await.unwrap();
    let hik_run = start(
        &device(&hik.config().serial, settings(&hik.url(), "Hik12345"), "hikvision"),
        Arc::new(MemorySink::new()),
    );
    let dahua_run = start(
        &device(&dahua.config().serial, settings(&dahua.url(), "Dahua12345"), "dahua"),
        Arc::new(MemorySink::new()),
    );
    wait_until("clock_drift", Duration::from_secs(10), || {
        hik_run.faults().contains(&"clock_drift".to_owned()) && dahua_run.faults().contains(&"clock_drift".to_owned())
    })
    .await;
    let hik_drift = hik_run.board.snapshot()[0].clock_drift_secs.unwrap();
    let dahua_drift = dahua_run.board.snapshot()[0].clock_drift_secs.unwrap();
    assert!((598..=602).contains(&hik_drift) && (-902..=-898).contains(&dahua_drift), "{hik_drift} {dahua_drift}");
    hik_run.finish().await;
    dahua_run.finish().await;

    let other = start(&device("ANOTHER-1", settings(&hik.url(), "Hik12345"), "hikvision"), Arc::new(MemorySink::new()));
    wait_until("wrong_device", Duration::from_secs(10), || other.faults().contains(&"wrong_device".to_owned())).await;
    other.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_prints_identity_clock_and_last_punches() {
    let hik = HikSim::start(HikSimConfig { clock_offset_secs: 42, ..HikSimConfig::default() }).await.unwrap();
    let dahua = DahuaSim::start(DahuaSimConfig::default()).await.unwrap();
    hik.preload(12);
    dahua.preload(12);
    for (kind, url, password, serial, model) in [
        ("hikvision", hik.url(), "Hik12345", hik.config().serial.clone(), "DS-K1T671M"),
        ("dahua", dahua.url(), "Dahua12345", dahua.config().serial.clone(), "ASI7213X"),
    ] {
        let exe = system_tests::harness::binary("edge-agent").unwrap();
        let out = tokio::process::Command::new(exe)
            .args(["probe", "--kind", kind, &url, "--user", "admin", "--zone", "Asia/Kolkata", "--last", "5"])
            .env("EDGE_AGENT_DEVICE_PASSWORD", password)
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{kind}: {text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&serial) && text.contains(model), "{text}");
        assert!(text.contains("clock drift") && text.contains("Last 5 punches"), "{text}");
        assert!(text.contains("12 of them punches") || text.contains("24 events"), "{text}");
        if kind == "hikvision" {
            assert!(text.contains("+42 s") || text.contains("+41 s") || text.contains("+43 s"), "{text}");
        }
        let refused = tokio::process::Command::new(system_tests::harness::binary("edge-agent").unwrap())
            .args(["probe", "--kind", kind, &url, "--user", "admin"])
            .env("EDGE_AGENT_DEVICE_PASSWORD", "wrong")
            .output()
            .await
            .unwrap();
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("refused the credentials"), "{refused:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hikvision_over_https_checks_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = system_tests::tls::make_pki(dir.path()).unwrap();
    let tls = system_tests::tls::server_config_without_client_auth(&pki).unwrap();
    let sim = HikSim::start_tls(HikSimConfig::default(), tls).await.unwrap();
    let made = sim.preload(5);
    let mut trusted = settings(&sim.url(), "Hik12345");
    trusted.ca_file = Some(pki.ca.display().to_string());
    let run = start(&device(&sim.config().serial, trusted, "hikvision"), Arc::new(MemorySink::new()));
    wait_until("5 punches over HTTPS", Duration::from_secs(10), || run.sink.punches().len() == 5).await;
    wait_until("stream open", Duration::from_secs(5), || sim.open_streams() == 1).await;
    let live = sim.punch(1, false);
    wait_until("a realtime punch over HTTPS", Duration::from_secs(2), || run.sink.punches().len() == 6).await;
    let all: Vec<_> = made.into_iter().chain(live).collect();
    assert_eq!(sim.keys(&all), run.sink.punches().iter().map(|p| p.key()).collect());
    run.finish().await;

    // Without the site's CA the certificate is refused and the device shows as unreachable, saying why.
    let untrusted = start(
        &device(&sim.config().serial, settings(&sim.url(), "Hik12345"), "hikvision"),
        Arc::new(MemorySink::new()),
    );
    wait_until("unreachable", Duration::from_secs(10), || untrusted.faults().contains(&"unreachable".to_owned())).await;
    let message = untrusted.board.snapshot()[0].faults[0].message.to_lowercase();
    assert!(message.contains("certificate"), "{message}");
    assert!(untrusted.sink.punches().is_empty());
    untrusted.finish().await;
}

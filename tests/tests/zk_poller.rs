//! The device poller against the simulator, with the in-memory sink: bulk read then realtime, reconnects after a
//! transfer cut half-way, gap filling, clock drift, the clear-log rule, a wrong device, a refusing sink.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use edge_agent::device_status::DeviceStatusBoard;
use edge_agent::sink::memory::MemorySink;
use edge_agent::zk::{poller, RecordLayout, UserLayout, ZkDeviceConfig};
use protocol::{Punch, PunchSource};
use system_tests::zk_sim::{SimConfig, ZkSim};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Row = (String, NaiveDateTime, u8, u8, u32);

fn device_config(sim: &ZkSim) -> ZkDeviceConfig {
    let mut config = ZkDeviceConfig::new(sim.tcp_addr().to_string(), sim.config().time_zone);
    config.poll_interval_secs = 1;
    config.backoff_min_ms = 50;
    config.backoff_max_ms = 200;
    config.request_timeout_ms = 3_000;
    config
}

struct Running {
    sink: Arc<MemorySink>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

fn start(config: ZkDeviceConfig) -> Running {
    let sink = Arc::new(MemorySink::new());
    let board = DeviceStatusBoard::new();
    let shutdown = CancellationToken::new();
    let task =
        tokio::spawn(poller::run("site-1".parse().unwrap(), config, sink.clone(), board.clone(), shutdown.clone()));
    Running { sink, board, shutdown, task }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("the poller stops on shutdown").unwrap();
    }
}

async fn eventually<F: Future<Output = bool>>(what: &str, timeout: Duration, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rows(punches: &[Punch]) -> Vec<Row> {
    let mut rows: Vec<Row> = punches
        .iter()
        .map(|p| (p.pin.to_string(), p.local_time, p.verify.code(), p.state.code(), p.work_code))
        .collect();
    rows.sort();
    rows
}

fn expected(sim: &ZkSim) -> Vec<Row> {
    let mut rows = sim.expected();
    rows.sort();
    rows
}

#[tokio::test]
async fn reads_the_log_then_takes_realtime_punches_and_exits_cleanly() {
    let sim = ZkSim::start(SimConfig { records: 500, ..SimConfig::default() }).await.unwrap();
    let run = start(device_config(&sim));
    eventually("the bulk read", Duration::from_secs(20), || async { run.sink.punches().len() == 500 }).await;
    assert_eq!(rows(&run.sink.punches()), expected(&sim));
    assert!(run.sink.punches().iter().all(|p| p.source == PunchSource::ZkPull && p.device.as_str() == "SIM0000000001"));
    let punch = run.sink.punches()[0].clone();
    assert_eq!(punch.utc_time.naive_utc(), punch.local_time - chrono::Duration::minutes(330), "Asia/Kolkata");

    // Once registered for events, new punches arrive within a second.
    eventually("event registration", Duration::from_secs(10), || async {
        sim.counters().disables >= 1 && sim.is_enabled()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let live: Vec<_> = (0..3).filter_map(|_| sim.punch_now()).collect();
    assert_eq!(live.len(), 3);
    eventually("realtime punches", Duration::from_secs(5), || async { run.sink.punches().len() == 503 }).await;
    let realtime = run.sink.punches().into_iter().filter(|p| p.source == PunchSource::ZkRealtime).count();
    assert_eq!(realtime, 3);
    assert_eq!(rows(&run.sink.punches()), expected(&sim));

    eventually("a good status", Duration::from_secs(5), || async {
        run.board.snapshot().first().is_some_and(|s| s.reachable)
    })
    .await;
    let status = &run.board.snapshot()[0];
    assert!(status.reachable && status.faults.is_empty(), "{status:?}");
    assert_eq!(run.board.snapshot().len(), 1);
    assert_eq!(status.device.as_str(), "SIM0000000001");
    assert!(status.clock_drift_secs.is_some_and(|d| d.abs() <= 2), "{status:?}");
    // What the device says it is reaches the inventory (model, firmware, platform, capacities).
    assert_eq!(status.kind, "zk-tcp");
    let info = status.info.as_ref().expect("the device's identity is on the board");
    assert_eq!(info.model.as_deref(), Some(sim.config().device_name.as_str()));
    assert_eq!(info.firmware.as_deref(), Some(sim.config().firmware.as_str()));
    assert_eq!(info.platform.as_deref(), Some(sim.config().platform.as_str()));
    assert_eq!(info.reported_serial.as_deref(), Some("SIM0000000001"));
    assert_eq!(info.record_capacity, Some(sim.config().record_capacity));
    assert_eq!(info.user_capacity, Some(sim.config().user_capacity));
    run.stop().await;
    assert_eq!(sim.counters().exits, 1, "a clean EXIT on shutdown");
    assert!(sim.is_enabled());
}

#[tokio::test]
async fn a_read_cut_half_way_costs_a_retry_never_a_record() {
    // 100,000 records by default; ZK_SOAK_RECORDS changes it.
    let records = std::env::var("ZK_SOAK_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let mut sim_config = SimConfig { records, users: 200, ..SimConfig::default() };
    sim_config.faults.drop_mid_transfer = 1;
    let sim = ZkSim::start(sim_config).await.unwrap();
    let mut config = device_config(&sim);
    config.realtime = false;
    config.poll_interval_secs = 3_600;
    let run = start(config);
    eventually("the retried read", Duration::from_secs(120), || async { run.sink.punches().len() >= records }).await;
    let punches = run.sink.punches();
    assert_eq!(punches.len(), records, "nothing invented");
    assert_eq!(rows(&punches), expected(&sim), "exactly the device's records");
    let counters = sim.counters();
    assert_eq!(counters.drops, 1, "the transfer was cut once");
    assert_eq!(counters.sessions, 2, "one retry");
    eventually("a good status", Duration::from_secs(10), || async {
        run.board.snapshot().first().is_some_and(|s| s.reachable)
    })
    .await;
    assert_eq!(run.board.snapshot().len(), 1, "one device on the board, under its serial");
    assert_eq!(run.board.counters()[0].1, 1, "the failed contact was counted");
    run.stop().await;
}

#[tokio::test]
async fn missed_events_are_filled_by_a_bulk_read() {
    let sim = ZkSim::start(SimConfig {
        records: 50,
        record_layout: RecordLayout::Short,
        user_layout: UserLayout::Small,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let run = start(device_config(&sim));
    eventually("the bulk read", Duration::from_secs(20), || async { run.sink.punches().len() == 50 }).await;
    // Punches stored without events: the heartbeat sees the count grow and reads the log again.
    sim.add_records_silently(4);
    eventually("the gap read", Duration::from_secs(10), || async { run.sink.punches().len() == 54 }).await;
    assert_eq!(rows(&run.sink.punches()), expected(&sim), "PINs resolved through the user table");
    run.stop().await;
}

#[tokio::test]
async fn clock_drift_is_reported_and_corrected_only_when_configured() {
    let sim = ZkSim::start(SimConfig { records: 5, clock_offset_secs: -600, ..SimConfig::default() }).await.unwrap();
    let run = start(device_config(&sim));
    eventually("a drift report", Duration::from_secs(20), || async {
        run.board.snapshot().first().is_some_and(|s| s.faults.iter().any(|f| f.code == "clock_drift"))
    })
    .await;
    let status = &run.board.snapshot()[0];
    assert!(status.clock_drift_secs.is_some_and(|d| (-602..=-598).contains(&d)), "{status:?}");
    let message = &status.faults.iter().find(|f| f.code == "clock_drift").unwrap().message;
    assert!(message.starts_with("device clock is "), "{message}");
    assert!(message.contains("behind the agent's") && message.ends_with("limit 5 min); set_clock is off"), "{message}");
    assert_eq!(sim.counters().set_times, 0, "set_clock is off");
    run.stop().await;

    let mut config = device_config(&sim);
    config.set_clock = true;
    config.max_clock_drift_secs = 30;
    let run = start(config);
    eventually("the clock set", Duration::from_secs(20), || async { sim.counters().set_times == 1 }).await;
    eventually("a good status", Duration::from_secs(10), || async {
        run.board
            .snapshot()
            .first()
            .is_some_and(|s| s.reachable && s.faults.is_empty() && s.clock_drift_secs.is_some_and(|d| d.abs() <= 2))
    })
    .await;
    let ours = chrono::Utc::now().with_timezone(&sim.config().time_zone).naive_local();
    assert!((sim.clock() - ours).num_seconds().abs() <= 2);
    run.stop().await;
}

#[tokio::test]
async fn the_log_is_cleared_only_when_everything_on_it_is_acknowledged() {
    let sim = ZkSim::start(SimConfig { records: 300, ..SimConfig::default() }).await.unwrap();
    // Off by default: even fully acknowledged, the log stays.
    let mut config = device_config(&sim);
    config.realtime = false;
    let run = start(config.clone());
    eventually("the read", Duration::from_secs(20), || async { run.sink.punches().len() == 300 }).await;
    run.sink.acknowledge_all();
    eventually("two more reads", Duration::from_secs(20), || async { sim.counters().disables >= 3 }).await;
    assert_eq!(sim.counters().clears, 0);
    run.stop().await;

    // On, but nothing acknowledged yet: read after read, nothing is cleared.
    config.clear_log_when_acknowledged = true;
    let run = start(config);
    eventually("the read", Duration::from_secs(20), || async { run.sink.punches().len() == 300 }).await;
    let disables = sim.counters().disables;
    eventually("two more reads", Duration::from_secs(20), || async { sim.counters().disables >= disables + 2 }).await;
    assert_eq!((sim.counters().clears, sim.records().len()), (0, 300));

    // Everything acknowledged: the next read clears, with the device disabled throughout, then enabled again.
    run.sink.acknowledge_all();
    eventually("the clear", Duration::from_secs(20), || async { sim.counters().clears == 1 }).await;
    assert!(sim.records().is_empty());
    eventually("re-enabled", Duration::from_secs(5), || async { sim.is_enabled() }).await;
    assert_eq!(run.sink.punches().len(), 300, "the sink keeps every punch");

    // New punches are not acknowledged: no second clear.
    sim.add_records_silently(7);
    eventually("the new punches", Duration::from_secs(20), || async { run.sink.punches().len() == 307 }).await;
    let disables = sim.counters().disables;
    eventually("another read", Duration::from_secs(20), || async { sim.counters().disables > disables }).await;
    assert_eq!((sim.counters().clears, sim.records().len()), (1, 7));
    run.stop().await;
}

#[tokio::test]
async fn a_different_device_at_the_address_is_refused() {
    let sim = ZkSim::start(SimConfig { records: 20, ..SimConfig::default() }).await.unwrap();
    let mut config = device_config(&sim);
    config.expected_serial = Some("CDQ9192960006".parse().unwrap());
    let run = start(config);
    eventually("the refusal", Duration::from_secs(10), || async {
        run.board.snapshot().iter().any(|s| s.faults.iter().any(|f| f.code == "serial_mismatch"))
    })
    .await;
    let status = &run.board.snapshot()[0];
    assert_eq!(status.device.as_str(), "CDQ9192960006");
    assert!(status.faults[0].message.contains("SIM0000000001"), "{status:?}");
    assert!(run.sink.punches().is_empty(), "nothing read from the wrong device");
    run.stop().await;
}

#[tokio::test]
async fn nothing_is_read_while_the_sink_refuses() {
    let sim = ZkSim::start(SimConfig { records: 20, ..SimConfig::default() }).await.unwrap();
    let sink_refusing = Arc::new(MemorySink::new());
    sink_refusing.set_refusing(true);
    let board = DeviceStatusBoard::new();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(poller::run(
        "site-1".parse().unwrap(),
        device_config(&sim),
        sink_refusing.clone(),
        board,
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(sim.counters().sessions, 0, "the device is not even contacted");
    sink_refusing.set_refusing(false);
    eventually("the read", Duration::from_secs(20), || async { sink_refusing.punches().len() == 20 }).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unreachable_device_is_reported_and_retried_until_shutdown() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = ZkDeviceConfig {
        backoff_min_ms: 20,
        backoff_max_ms: 50,
        ..ZkDeviceConfig::new(free.to_string(), chrono_tz::UTC)
    };
    let run = start(config);
    eventually("retries", Duration::from_secs(10), || async { run.board.counters().first().is_some_and(|c| c.1 >= 3) })
        .await;
    let status = &run.board.snapshot()[0];
    assert!(!status.reachable);
    assert_eq!(status.faults[0].code, "unreachable");
    assert!(status.faults[0].message.contains("cannot connect"), "{status:?}");
    assert_eq!(status.device.as_str(), format!("zk-127.0.0.1-{}", free.port()));
    run.stop().await;
}

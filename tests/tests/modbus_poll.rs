//! The Modbus poller against the tokio-modbus server simulator: only new events are read, across counter
//! wrap-around, with a stalled device timing out, an overrun ring reported, malformed events skipped, and the
//! counter surviving a restart (nothing re-read, nothing skipped); then through the real edge-agent into a real
//! central-api with exact AllLogs counts.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use edge_agent::device_status::DeviceStatusBoard;
use edge_agent::modbus::{ModbusDeviceConfig, ModbusTarget, RegisterKind, RegisterMap};
use edge_agent::sink::memory::MemorySink;
use protocol::{Direction, PunchSource, PunchState};
use system_tests::central::{Backend, CentralDb};
use system_tests::harness::Spawned;
use system_tests::modbus_sim::{ModbusSim, SimLayout};
use system_tests::on_both_backends;
use tokio_util::sync::CancellationToken;

const SN: &str = "MB-TURNSTILE-1";

fn at(i: usize) -> Option<NaiveDateTime> {
    let start = NaiveDateTime::parse_from_str("2026-03-02 06:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
    Some(start + chrono::Duration::seconds(37 * i as i64))
}

fn record(sim: &ModbusSim, from: usize, n: usize) {
    for i in from..from + n {
        sim.record(3001 + (i % 13) as u32, at(i), (i % 2) as u16);
    }
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(30), "{what} did not happen within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(sim: &ModbusSim) -> ModbusDeviceConfig {
    ModbusDeviceConfig {
        site: "plant-1".parse().unwrap(),
        serial: SN.parse().unwrap(),
        zone: chrono_tz::Asia::Kolkata,
        direction: Direction::Both,
        target: ModbusTarget::Tcp(sim.address),
        unit_id: 1,
        map: RegisterMap {
            kind: RegisterKind::Holding,
            counter_register: 0,
            counter_words: 1,
            ring_start: 100,
            ring_slots: 64,
            slot_registers: 5,
            pin_offset: 0,
            time_offset: 2,
            state_offset: 4,
            verify_offset: None,
        },
        poll_interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn only_new_events_are_read_across_wrap_timeouts_overrun_and_restart() {
    let sim = ModbusSim::start(SimLayout::default()).await.unwrap();
    sim.set_counter(65_490);
    record(&sim, 0, 40);
    let sink = Arc::new(MemorySink::new());
    let board = DeviceStatusBoard::new();
    let stop = CancellationToken::new();
    let task = tokio::spawn(edge_agent::modbus::run(config(&sim), sink.clone(), board.clone(), stop.clone()));
    wait_until("40 punches", async || sink.punches().len() == 40).await;
    let first = &sink.punches()[0];
    assert_eq!((first.pin.as_str(), first.state, first.source), ("3001", PunchState::CheckIn, PunchSource::Modbus));
    assert_eq!(first.local_time, at(0).unwrap());

    // Across the wrap: 65,530 -> 25, and a malformed event (time 0) among them.
    record(&sim, 40, 25);
    sim.record(3999, None, 0);
    record(&sim, 65, 5);
    assert_eq!(sim.counter(), 25);
    wait_until("70 punches", async || sink.punches().len() == 70).await;

    // A stalled device: every call times out, the device is marked unreachable; then it answers again.
    sim.set_stall(true);
    wait_until("unreachable", async || !board.snapshot()[0].reachable).await;
    record(&sim, 70, 10);
    sim.set_stall(false);
    wait_until("80 punches", async || sink.punches().len() == 80).await;
    wait_until("reachable", async || board.snapshot()[0].reachable).await;

    // Restart the poller: the stored counter means only the events recorded meanwhile are read.
    stop.cancel();
    task.await.unwrap();
    record(&sim, 80, 7);
    let before = sim.ring_registers_read();
    let stop = CancellationToken::new();
    let task = tokio::spawn(edge_agent::modbus::run(config(&sim), sink.clone(), board.clone(), stop.clone()));
    wait_until("87 punches", async || sink.punches().len() == 87).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(sim.ring_registers_read() - before, 7 * 5, "exactly the 7 new slots were read");

    // Overrun: 100 events between two polls with a 64-slot ring; the last 64 are read and the loss is raised.
    stop.cancel();
    task.await.unwrap();
    record(&sim, 87, 100);
    let stop = CancellationToken::new();
    let task = tokio::spawn(edge_agent::modbus::run(config(&sim), sink.clone(), board.clone(), stop.clone()));
    wait_until("87 + 64 punches", async || sink.punches().len() == 151).await;
    let faults = board.snapshot()[0].faults.clone();
    assert!(faults.iter().any(|f| f.code == "events_overrun" && f.message.starts_with("36 events")), "{faults:?}");
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn rtu_over_a_serial_line_reads_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let agent_link = dir.path().join("ttyRS485-agent");
    let (sim, _cable) =
        system_tests::modbus_sim::start_rtu(SimLayout::default(), &agent_link, &dir.path().join("ttyRS485-device"))
            .unwrap();
    sim.set_counter(65_530);
    record(&sim, 0, 12); // wraps at 65,536
    let sink = Arc::new(MemorySink::new());
    let board = DeviceStatusBoard::new();
    let mut rtu = config(&sim);
    rtu.target = ModbusTarget::Rtu {
        port: agent_link.display().to_string(),
        baud_rate: 9600,
        parity: tokio_serial::Parity::None,
        data_bits: tokio_serial::DataBits::Eight,
        stop_bits: tokio_serial::StopBits::One,
    };
    rtu.timeout = Duration::from_secs(2);
    let stop = CancellationToken::new();
    let task = tokio::spawn(edge_agent::modbus::run(rtu, sink.clone(), board.clone(), stop.clone()));
    wait_until("12 punches over RTU", async || sink.punches().len() == 12).await;
    record(&sim, 12, 3);
    wait_until("15 punches over RTU", async || sink.punches().len() == 15).await;
    assert_eq!(sink.punches()[14].local_time, at(14).unwrap());
    stop.cancel();
    task.await.unwrap();
}

on_both_backends!(modbus_events_reach_all_logs_exactly_across_wrap_and_restart);

async fn start_agent(config: &std::path::Path) -> Spawned {
    let mut agent = Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[]).unwrap();
    agent.listening_url().await.unwrap();
    agent
}

async fn modbus_events_reach_all_logs_exactly_across_wrap_and_restart(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = db.serve(&[]).await.unwrap();
    let sim = ModbusSim::start(SimLayout::default()).await.unwrap();
    sim.set_counter(65_500);
    record(&sim, 0, 30);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"gate-1\"\nsite = \"plant-1\"\ndata_dir = \"{data}\"\n\n\
             [central]\ntransport = \"https\"\nurl = \"{url}\"\ntoken = \"{token}\"\n\n\
             [forward]\nlinger_ms = 50\ninitial_backoff_ms = 50\nmax_backoff_secs = 1\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n\
             [[device]]\nkind = \"modbus\"\nserial = \"{SN}\"\ntime_zone = \"Asia/Kolkata\"\n\
             address = \"{address}\"\npoll_interval_secs = 1\ntimeout_ms = 500\n\
             counter_register = 0\nring_start = 100\nring_slots = 64\n",
            data = dir.path().join("data").display(),
            url = central.url,
            address = sim.address,
        ),
    )
    .unwrap();
    let mut agent = start_agent(&config).await;
    wait_until("30 rows", async || db.all_logs().await == 30).await;
    record(&sim, 30, 20); // wraps: 65,530 -> 14
    sim.record(3999, None, 1); // malformed, skipped
    wait_until("50 rows", async || db.all_logs().await == 50).await;

    agent.kill().await.unwrap();
    record(&sim, 50, 12);
    let before = sim.ring_registers_read();
    let _agent = start_agent(&config).await;
    wait_until("62 rows", async || db.all_logs().await == 62).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.ring_registers_read() - before, 12 * 5, "after the restart only the 12 new slots were read");
    assert_eq!(db.all_logs().await, 62);
    let modbus = db.scalar("SELECT count(*) FROM all_logs WHERE source = 'modbus'").await.unwrap();
    assert_eq!(modbus, 62);
    drop(central);
    db.cleanup().await;
}

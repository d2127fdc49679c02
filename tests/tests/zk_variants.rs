//! ZKTeco terminals as they really are (issue 13): each firmware or implementation variant the simulator can play,
//! read by our real client and poller, over TCP and UDP where it matters. The log read must be exactly what the
//! device holds (or, when the device never gives everything, exactly what it gave, with `record_count_mismatch`
//! naming both counts).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use edge_agent::device_status::DeviceStatusBoard;
use edge_agent::sink::memory::MemorySink;
use edge_agent::zk::bulk::{LogSnapshot, ReadPath};
use edge_agent::zk::client::ClientError;
use edge_agent::zk::records::DeviceUser;
use edge_agent::zk::{
    command, poller, ConnectOptions, RecordLayout, Timeouts, TransportKind, UserLayout, ZkClient, ZkDeviceConfig,
};
use protocol::{DeviceStatus, Punch};
use system_tests::zk_sim::{FaultSettings, SimConfig, ZkSim};
use tokio_util::sync::CancellationToken;

type Row = (String, NaiveDateTime, u8, u8, u32);

fn timeouts() -> Timeouts {
    Timeouts { connect: Duration::from_secs(3), request: Duration::from_secs(3) }
}

fn sim_config(records: usize, record_layout: RecordLayout, faults: FaultSettings) -> SimConfig {
    let user_layout = if record_layout == RecordLayout::Long { UserLayout::Large } else { UserLayout::Small };
    SimConfig { records, users: 30, record_layout, user_layout, faults, ..SimConfig::default() }
}

async fn connect(sim: &ZkSim, transport: TransportKind, strict_checksum: bool) -> Result<ZkClient, ClientError> {
    let addr = match transport {
        TransportKind::Tcp => sim.tcp_addr(),
        TransportKind::Udp => sim.udp_addr(),
    };
    let options = ConnectOptions { strict_checksum, ..ConnectOptions::new(transport, 0, timeouts()) };
    ZkClient::connect_with(&addr.to_string(), options).await
}

fn rows(snapshot: &LogSnapshot) -> Vec<Row> {
    let pins = snapshot.pin_table();
    snapshot
        .log
        .records
        .iter()
        .map(|r| {
            let pin = match &r.user {
                DeviceUser::Pin(p) => p.clone(),
                DeviceUser::Uid(uid) => pins.get(uid).cloned().unwrap_or_else(|| uid.to_string()),
            };
            (pin, r.time, r.verify, r.state, r.work_code)
        })
        .collect()
}

/// Disables (when the device lets us), reads the log, re-enables: what the poller does.
async fn read_all(client: &mut ZkClient) -> Result<(bool, LogSnapshot), ClientError> {
    let disabled = client.disable().await?;
    let read = client.read_log(None).await;
    if disabled {
        client.enable().await?;
    }
    read.map(|s| (disabled, s))
}

#[tokio::test]
async fn disable_refused_with_ack_error_or_ack_unknown_is_read_anyway() {
    for code in [command::ACK_ERROR, command::ACK_UNKNOWN] {
        let faults = FaultSettings { refuse_disable: Some(code), ..FaultSettings::default() };
        let sim = ZkSim::start(sim_config(2_000, RecordLayout::Long, faults)).await.unwrap();
        for transport in [TransportKind::Tcp, TransportKind::Udp] {
            let mut client = connect(&sim, transport, true).await.unwrap();
            let (disabled, snapshot) = read_all(&mut client).await.unwrap();
            assert!(!disabled, "{code}: the refusal is reported, not an error");
            assert_eq!(rows(&snapshot), sim.expected(), "{code} over {transport:?}");
            assert!(!client.enable().await.unwrap(), "ENABLEDEVICE refused the same way");
            client.exit().await;
        }
        assert_eq!(sim.counters().disables, 0);
        assert_eq!(sim.counters().disables_refused, 4, "DISABLEDEVICE and ENABLEDEVICE over each transport");
    }
}

#[tokio::test]
async fn ack_data_carrying_the_payload_is_data() {
    // Staged chunks answered by ACK_DATA; then the legacy ATTLOG_RRQ and USERTEMP_RRQ answered by ACK_DATA.
    for (legacy, layout) in [(false, RecordLayout::Long), (true, RecordLayout::Long), (true, RecordLayout::Short)] {
        let faults = FaultSettings { ack_data: true, refuse_buffer_read: legacy, ..FaultSettings::default() };
        // A legacy answer in one packet must fit a UDP datagram: 1,000 records of 40 bytes do.
        let sim = ZkSim::start(sim_config(if legacy { 1_000 } else { 2_500 }, layout, faults)).await.unwrap();
        for transport in [TransportKind::Tcp, TransportKind::Udp] {
            let what = format!("legacy {legacy}, {layout:?}, {transport:?}");
            let mut client = connect(&sim, transport, true).await.unwrap();
            let (_, snapshot) = read_all(&mut client).await.unwrap();
            assert_eq!(rows(&snapshot), sim.expected(), "{what}");
            assert_eq!(snapshot.mismatch, None, "{what}");
            assert_eq!(client.read_users(Some(30)).await.unwrap(), sim.users(), "{what}: USERTEMP_RRQ by ACK_DATA");
            client.exit().await;
        }
        let counters = sim.counters();
        if legacy {
            assert!(counters.legacy_reads >= 4 && counters.chunk_reads == 0, "{counters:?}");
        } else {
            assert!(counters.chunk_reads >= 2, "{counters:?}");
        }
    }
}

#[tokio::test]
async fn reply_checksums_off_by_one_pass_over_tcp_counted_and_over_udp_only_when_not_strict() {
    let faults = FaultSettings { checksum_off_by_one: true, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(3_000, RecordLayout::Long, faults)).await.unwrap();

    let mut client = connect(&sim, TransportKind::Tcp, true).await.unwrap();
    let (_, snapshot) = read_all(&mut client).await.unwrap();
    assert_eq!(rows(&snapshot), sim.expected());
    let counted = client.checksum_mismatches();
    // CONNECT, DISABLE, GET_FREE_SIZES, PREPARE_BUFFER, the chunk's packets, FREE_DATA, ENABLE: every reply.
    assert!(counted >= 8, "{counted}");
    client.exit().await;

    let err = connect(&sim, TransportKind::Udp, true).await.unwrap_err();
    assert!(err.is_bad_checksum(), "{err}");
    assert!(err.to_string().contains("bad checksum on ACK_OK"), "{err}");

    let mut client = connect(&sim, TransportKind::Udp, false).await.unwrap();
    let (_, snapshot) = read_all(&mut client).await.unwrap();
    assert_eq!(rows(&snapshot), sim.expected());
    assert!(client.checksum_mismatches() >= 8);
    client.exit().await;
}

#[tokio::test]
async fn a_short_buffered_read_tries_the_other_paths_before_believing_it() {
    // The dataset picked by the function code: fct 0 gets an empty log, fct 1 the whole of it.
    let faults = FaultSettings { attlog_by_fct: true, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(1_000, RecordLayout::Long, faults)).await.unwrap();
    for transport in [TransportKind::Tcp, TransportKind::Udp] {
        let mut client = connect(&sim, transport, true).await.unwrap();
        let (_, snapshot) = read_all(&mut client).await.unwrap();
        assert_eq!(rows(&snapshot), sim.expected(), "{transport:?}");
        assert_eq!((snapshot.path, snapshot.mismatch), (ReadPath::Buffered { fct: 1 }, None));
        // Told the path that worked, the next read goes straight to it.
        let before = sim.counters().attendance_fcts.len();
        client.disable().await.unwrap();
        let again = client.read_log_from(None, snapshot.path).await.unwrap();
        assert_eq!(rows(&again), sim.expected());
        assert_eq!(sim.counters().attendance_fcts[before..], [1]);
        client.exit().await;
    }
    assert_eq!(sim.counters().attendance_fcts[..2], [0, 1], "fct 0 first, then the other");

    // Buffered reads empty (0 of 1,000): only ATTLOG_RRQ has the log.
    let faults = FaultSettings { buffered_empty: true, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(1_000, RecordLayout::Medium, faults)).await.unwrap();
    for transport in [TransportKind::Tcp, TransportKind::Udp] {
        let mut client = connect(&sim, transport, true).await.unwrap();
        let (_, snapshot) = read_all(&mut client).await.unwrap();
        assert_eq!(rows(&snapshot), sim.expected(), "{transport:?}");
        assert_eq!((snapshot.path, snapshot.mismatch), (ReadPath::Legacy, None));
        client.exit().await;
    }
    assert_eq!(sim.counters().legacy_reads, 2);
}

#[tokio::test]
async fn a_read_short_on_every_path_keeps_what_came_and_names_both_counts() {
    for (served, layout) in [(0, RecordLayout::Long), (313, RecordLayout::Long), (77, RecordLayout::Short)] {
        let faults = FaultSettings { serve_records: Some(served), ..FaultSettings::default() };
        let sim = ZkSim::start(sim_config(1_000, layout, faults)).await.unwrap();
        let mut client = connect(&sim, TransportKind::Tcp, true).await.unwrap();
        let (_, snapshot) = read_all(&mut client).await.unwrap();
        assert_eq!(rows(&snapshot), sim.expected()[..served], "{served} {layout:?}: exactly what was served");
        let mismatch = snapshot.mismatch.expect("a mismatch");
        assert_eq!((mismatch.reported, mismatch.read), (1_000, served));
        let tried: Vec<ReadPath> = mismatch.tried.iter().map(|(p, _)| *p).collect();
        assert_eq!(tried, ReadPath::ATTENDANCE, "every path tried, in order");
        assert!(mismatch.tried.iter().all(|(_, n)| *n == Ok(served)));
        assert_eq!(
            mismatch.to_string(),
            format!(
                "the device reports 1000 records but the read returned {served} (tried buffered read (function code \
                 0): {served}, buffered read (function code 1): {served}, ATTLOG_RRQ: {served}); the {served} read \
                 are kept"
            )
        );
        client.exit().await;
    }
}

// The poller: faults raised with their reasons, cleared when healed; the clear-log rule.

fn device_config(sim: &ZkSim, transport: TransportKind) -> ZkDeviceConfig {
    let addr = if transport == TransportKind::Tcp { sim.tcp_addr() } else { sim.udp_addr() };
    let mut config = ZkDeviceConfig::new(addr.to_string(), sim.config().time_zone);
    config.transport = transport;
    config.poll_interval_secs = 1;
    config.realtime = false;
    config.backoff_min_ms = 50;
    config.backoff_max_ms = 200;
    config
}

struct Running {
    sink: Arc<MemorySink>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
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
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("the poller stops").unwrap();
    }

    fn status(&self) -> DeviceStatus {
        self.board.snapshot().into_iter().next().expect("one device")
    }

    fn fault(&self, code: &str) -> Option<String> {
        let status = self.board.snapshot().into_iter().next()?;
        status.faults.into_iter().find(|f| f.code == code).map(|f| f.message)
    }
}

async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sorted(punches: &[Punch]) -> Vec<Row> {
    let mut rows: Vec<Row> = punches
        .iter()
        .map(|p| {
            let code = |raw: Option<u32>| u8::try_from(raw.expect("the device's raw code")).expect("a byte");
            (p.pin.to_string(), p.local_time, code(p.raw_verify), code(p.raw_state), p.work_code)
        })
        .collect();
    rows.sort();
    rows
}

fn expected(sim: &ZkSim, n: usize) -> Vec<Row> {
    let mut rows = sim.expected()[..n].to_vec();
    rows.sort();
    rows
}

#[tokio::test]
async fn a_device_that_cannot_be_disabled_is_read_and_its_log_never_cleared() {
    let faults = FaultSettings { refuse_disable: Some(command::ACK_UNKNOWN), ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(400, RecordLayout::Long, faults)).await.unwrap();
    let mut config = device_config(&sim, TransportKind::Tcp);
    config.clear_log_when_acknowledged = true;
    let run = start(config);
    eventually("the read", || async { run.sink.punches().len() == 400 }).await;
    assert_eq!(sorted(&run.sink.punches()), expected(&sim, 400));
    run.sink.acknowledge_all();
    eventually("more reads", || async { sim.counters().sessions >= 1 && sim.counters().disables_refused >= 1 }).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!((sim.counters().clears, sim.records().len()), (0, 400), "never cleared");
    assert_eq!(sim.counters().disables_refused, 1, "remembered: DISABLEDEVICE is not sent again");
    let message = run.fault("log_not_cleared").expect("the technician is told");
    assert!(message.contains("answers DISABLEDEVICE with ACK_UNKNOWN"), "{message}");
    assert!(run.status().reachable);
    run.stop().await;
}

#[tokio::test]
async fn record_count_mismatch_is_raised_with_both_counts_and_cleared_when_healed() {
    let faults = FaultSettings { serve_records: Some(0), ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(1_000, RecordLayout::Long, faults)).await.unwrap();
    let mut config = device_config(&sim, TransportKind::Tcp);
    config.clear_log_when_acknowledged = true;
    let run = start(config);
    eventually("the fault", || async { run.fault("record_count_mismatch").is_some() }).await;
    let message = run.fault("record_count_mismatch").unwrap();
    assert!(message.starts_with("the device reports 1000 records but the read returned 0"), "{message}");
    assert!(run.sink.punches().is_empty() && run.status().reachable);

    // Some records come: kept; still short: still raised.
    sim.faults().serve_records.store(600, Ordering::SeqCst);
    eventually("600 read", || async { run.sink.punches().len() == 600 }).await;
    assert_eq!(sorted(&run.sink.punches()), expected(&sim, 600));
    eventually("the new counts", || async {
        run.fault("record_count_mismatch").is_some_and(|m| m.contains("the read returned 600"))
    })
    .await;
    run.sink.acknowledge_all();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(sim.counters().clears, 0, "a short read never clears the device");

    // Healed: everything read, the fault cleared.
    sim.faults().serve_records.store(usize::MAX, Ordering::SeqCst);
    eventually("1000 read", || async { run.sink.punches().len() == 1_000 }).await;
    eventually("the fault cleared", || async { run.fault("record_count_mismatch").is_none() }).await;
    assert_eq!(sorted(&run.sink.punches()), expected(&sim, 1_000));
    run.stop().await;
}

#[tokio::test]
async fn checksum_mismatches_are_counted_over_tcp_and_named_over_udp_until_strict_checksum_is_off() {
    let faults = FaultSettings { checksum_off_by_one: true, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(300, RecordLayout::Short, faults)).await.unwrap();
    let run = start(device_config(&sim, TransportKind::Tcp));
    eventually("the read", || async { run.sink.punches().len() == 300 }).await;
    assert_eq!(sorted(&run.sink.punches()), expected(&sim, 300));
    eventually("the counter", || async { run.board.checksum_counters().first().is_some_and(|(_, n)| *n >= 8) }).await;
    assert!(run.status().faults.is_empty(), "{:?}", run.status());
    run.stop().await;

    let run = start(device_config(&sim, TransportKind::Udp));
    eventually("the fault", || async { run.fault("protocol_error").is_some() }).await;
    let message = run.fault("protocol_error").unwrap();
    assert!(
        message.contains("bad checksum") && message.ends_with("set strict_checksum = false in its [[device]] entry"),
        "{message}"
    );
    assert!(run.sink.punches().is_empty());
    run.stop().await;

    let mut config = device_config(&sim, TransportKind::Udp);
    config.strict_checksum = false;
    let run = start(config);
    eventually("the read", || async { run.sink.punches().len() == 300 }).await;
    assert_eq!(sorted(&run.sink.punches()), expected(&sim, 300));
    run.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_comm_key_is_a_named_fault() {
    let sim = ZkSim::start(SimConfig { comm_key: 808, records: 5, ..SimConfig::default() }).await.unwrap();
    for (key, text) in [
        (0, "the device requires a comm key and none was given: set comm_key (the device's Comm Key) in its [[device]] entry"),
        (5, "the device rejected comm key 5: check comm_key in its [[device]] entry against the device's Comm Key"),
    ] {
        let mut config = device_config(&sim, TransportKind::Tcp);
        config.comm_key = key;
        let run = start(config);
        eventually("auth_failed", || async { run.fault("auth_failed").is_some() }).await;
        assert_eq!(run.fault("auth_failed").unwrap(), text);
        assert!(!run.status().reachable);
        run.stop().await;
    }
}

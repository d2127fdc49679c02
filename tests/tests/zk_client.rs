//! Our ZKTeco client against the simulator, over TCP and UDP: every record and user layout, with and without a
//! comm key, and every fault the simulator can inject.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::NaiveDateTime;
use edge_agent::zk::bulk::LogSnapshot;
use edge_agent::zk::client::ClientError;
use edge_agent::zk::transport::LinkError;
use edge_agent::zk::{EventWait, RecordLayout, Timeouts, TransportKind, UserLayout, ZkClient};
use system_tests::zk_sim::{remaining, FaultSettings, SimConfig, ZkSim};
use tokio_util::sync::CancellationToken;

type Row = (String, NaiveDateTime, u8, u8, u32);

fn timeouts() -> Timeouts {
    Timeouts { connect: Duration::from_secs(3), request: Duration::from_secs(3) }
}

fn addr(sim: &ZkSim, transport: TransportKind) -> SocketAddr {
    match transport {
        TransportKind::Tcp => sim.tcp_addr(),
        TransportKind::Udp => sim.udp_addr(),
    }
}

async fn connect(sim: &ZkSim, transport: TransportKind) -> ZkClient {
    let key = sim.config().comm_key;
    ZkClient::connect(&addr(sim, transport).to_string(), transport, key, timeouts()).await.expect("connect")
}

fn rows(snapshot: &LogSnapshot) -> Vec<Row> {
    let pins = snapshot.pin_table();
    snapshot
        .log
        .records
        .iter()
        .map(|r| {
            let pin = match &r.user {
                edge_agent::zk::records::DeviceUser::Pin(p) => p.clone(),
                edge_agent::zk::records::DeviceUser::Uid(uid) => {
                    pins.get(uid).cloned().unwrap_or_else(|| uid.to_string())
                }
            };
            (pin, r.time, r.verify, r.state, r.work_code)
        })
        .collect()
}

/// Disables, reads the log, re-enables: what the poller does.
async fn read_all(client: &mut ZkClient) -> Result<LogSnapshot, ClientError> {
    client.disable().await?;
    let read = client.read_log(None).await;
    client.enable().await?;
    read
}

fn config(records: usize, record_layout: RecordLayout, user_layout: UserLayout, comm_key: u32) -> SimConfig {
    SimConfig { records, users: 30, record_layout, user_layout, comm_key, ..SimConfig::default() }
}

#[tokio::test]
async fn every_layout_over_tcp_and_udp_with_and_without_a_comm_key() {
    let layouts = [
        (RecordLayout::Short, UserLayout::Small),
        (RecordLayout::Medium, UserLayout::Small),
        (RecordLayout::Long, UserLayout::Large),
        (RecordLayout::Short, UserLayout::Large),
    ];
    for (record_layout, user_layout) in layouts {
        for comm_key in [0, 123_456] {
            // 2,500 records take several chunks over UDP (16 KiB) and, for 40-byte records, over TCP (0xFFC0).
            let sim = ZkSim::start(config(2_500, record_layout, user_layout, comm_key)).await.unwrap();
            for transport in [TransportKind::Tcp, TransportKind::Udp] {
                let what = format!("{record_layout:?}/{user_layout:?} key {comm_key} {transport:?}");
                let mut client = connect(&sim, transport).await;
                let info = client.device_info().await.unwrap();
                assert_eq!(info.serial.as_deref(), Some("SIM0000000001"), "{what}");
                assert_eq!((info.sizes.records, info.sizes.users), (Some(2_500), Some(30)), "{what}");
                let snapshot = read_all(&mut client).await.unwrap();
                assert_eq!(snapshot.log.layout, Some(record_layout), "{what}");
                assert_eq!(rows(&snapshot), sim.expected(), "{what}");
                let users = client.read_users(Some(30)).await.unwrap();
                assert_eq!(users, sim.users(), "{what}");
                client.exit().await;
            }
            assert!(sim.is_enabled());
            assert!(sim.counters().chunk_reads >= 3, "the dataset was read in chunks");
            assert_eq!(sim.counters().auth_failures, 0);
        }
    }
}

#[tokio::test]
async fn a_wrong_or_missing_comm_key_is_refused_by_name() {
    let sim = ZkSim::start(config(10, RecordLayout::Long, UserLayout::Large, 4242)).await.unwrap();
    for (key, text) in
        [(0, "the device requires a comm key and none was given"), (4243, "the device rejected comm key 4243")]
    {
        let err =
            ZkClient::connect(&sim.tcp_addr().to_string(), TransportKind::Tcp, key, timeouts()).await.unwrap_err();
        assert!(matches!(err, ClientError::Unauthorized { key: k } if k == key), "{err}");
        assert_eq!(err.to_string(), text);
    }
    assert_eq!(sim.counters().auth_failures, 2);
}

#[tokio::test]
async fn small_datasets_come_inline_and_large_ones_staged() {
    let sim = ZkSim::start(config(20, RecordLayout::Long, UserLayout::Large, 0)).await.unwrap();
    let mut client = connect(&sim, TransportKind::Tcp).await;
    // 20 records of 40 bytes: 804 bytes, under the simulator's 1000-byte inline limit.
    assert_eq!(rows(&read_all(&mut client).await.unwrap()), sim.expected());
    assert_eq!(sim.counters().chunk_reads, 0);
    sim.faults().inline_max.store(0, Ordering::SeqCst);
    assert_eq!(rows(&read_all(&mut client).await.unwrap()), sim.expected());
    assert_eq!(sim.counters().chunk_reads, 1);
}

#[tokio::test]
async fn the_transfer_variants_devices_use() {
    for (variant, transport) in [
        ("legacy", TransportKind::Tcp),
        ("legacy", TransportKind::Udp),
        ("split", TransportKind::Tcp),
        ("size_at_zero", TransportKind::Tcp),
        ("size_at_zero", TransportKind::Udp),
        ("single_data", TransportKind::Tcp),
        ("short_sizes", TransportKind::Tcp),
    ] {
        let mut settings = FaultSettings::default();
        let mut sim_config = config(3_000, RecordLayout::Short, UserLayout::Large, 0);
        match variant {
            "legacy" => settings.refuse_buffer_read = true,
            "split" => settings.split_data = true,
            "size_at_zero" => settings.size_at_zero = true,
            "single_data" => settings.single_data_packet = true,
            _ => sim_config.sizes_len = 68,
        }
        sim_config.faults = settings;
        let sim = ZkSim::start(sim_config).await.unwrap();
        let mut client = connect(&sim, transport).await;
        let snapshot = read_all(&mut client).await.unwrap();
        assert_eq!(rows(&snapshot), sim.expected(), "{variant} over {transport:?}");
        assert_eq!(snapshot.users.as_deref(), Some(&sim.users()[..]), "{variant}: users read for the uid records");
        if variant == "legacy" {
            assert!(sim.counters().legacy_reads >= 2, "attendance and users by the legacy requests");
            assert_eq!(sim.counters().chunk_reads, 0);
        }
        if variant == "short_sizes" {
            assert_eq!(snapshot.sizes.records, Some(3_000));
            assert_eq!(snapshot.sizes.records_remaining, None);
        }
        client.exit().await;
    }
}

#[tokio::test]
async fn corrupt_packets_cost_a_chunk_retry_over_udp_and_are_counted_over_tcp() {
    for transport in [TransportKind::Tcp, TransportKind::Udp] {
        let sim = ZkSim::start(config(3_000, RecordLayout::Long, UserLayout::Large, 0)).await.unwrap();
        sim.faults().bad_checksum.store(2, Ordering::SeqCst);
        let mut client = connect(&sim, transport).await;
        assert_eq!(rows(&read_all(&mut client).await.unwrap()), sim.expected(), "{transport:?}");
        assert_eq!(remaining(&sim.faults().bad_checksum), 0, "both corrupt packets were sent and survived");
        // Over TCP the length prefix frames the packets: they are accepted and counted; over UDP they are refused
        // and the chunk asked again.
        let counted = if transport == TransportKind::Tcp { 2 } else { 0 };
        assert_eq!(client.checksum_mismatches(), counted, "{transport:?}");
        client.exit().await;
    }
}

#[tokio::test]
async fn a_read_that_keeps_failing_fails_once_with_its_tries_and_the_device_is_re_enabled() {
    let sim = ZkSim::start(config(3_000, RecordLayout::Long, UserLayout::Large, 0)).await.unwrap();
    sim.faults().bad_checksum.store(100, Ordering::SeqCst);
    let mut client = connect(&sim, TransportKind::Udp).await;
    let err = read_all(&mut client).await.unwrap_err();
    assert!(err.to_string().contains("bad checksum on DATA"), "{err}");
    assert!(err.to_string().ends_with("(tried 3 times)"), "{err}");
    assert!(sim.is_enabled(), "the client re-enabled the device after the failed read");
    assert_eq!(sim.counters().enables, 1);
    sim.faults().bad_checksum.store(0, Ordering::SeqCst);
    assert_eq!(rows(&read_all(&mut client).await.unwrap()), sim.expected(), "the same connection still works");
}

#[tokio::test]
async fn slow_answers_within_the_timeout_work_and_beyond_it_fail_by_name() {
    let mut sim_config = config(50, RecordLayout::Medium, UserLayout::Small, 0);
    sim_config.faults.reply_delay_ms = 150;
    let sim = ZkSim::start(sim_config).await.unwrap();
    let mut client = connect(&sim, TransportKind::Tcp).await;
    assert_eq!(rows(&read_all(&mut client).await.unwrap()), sim.expected());
    // A device that answered CONNECT and then is too slow: a timeout naming the request.
    sim.faults().reply_delay_ms.store(0, Ordering::SeqCst);
    let quick = Timeouts { connect: Duration::from_secs(1), request: Duration::from_millis(300) };
    let mut impatient = ZkClient::connect(&sim.udp_addr().to_string(), TransportKind::Udp, 0, quick).await.unwrap();
    sim.faults().reply_delay_ms.store(1_500, Ordering::SeqCst);
    let err = impatient.read_sizes().await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err}");
    assert_eq!(err.to_string(), "GET_FREE_SIZES: no answer within 300ms");
    // Too slow from the first packet over UDP: nothing answered.
    let err = ZkClient::connect(&sim.udp_addr().to_string(), TransportKind::Udp, 0, quick).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no ZKTeco device answered on UDP port {} of 127.0.0.1 within 300ms", sim.udp_addr().port())
    );
}

#[tokio::test]
async fn a_connection_dropped_mid_transfer_is_an_error_not_a_short_log() {
    let sim = ZkSim::start(config(5_000, RecordLayout::Long, UserLayout::Large, 0)).await.unwrap();
    sim.faults().drop_mid_transfer.store(1, Ordering::SeqCst);
    let mut client = connect(&sim, TransportKind::Tcp).await;
    client.disable().await.unwrap();
    let err = client.read_log(None).await.unwrap_err();
    assert!(matches!(err, ClientError::Link { source: LinkError::Closed, .. }), "{err}");
    assert_eq!(sim.counters().drops, 1);
    let mut again = connect(&sim, TransportKind::Tcp).await;
    assert_eq!(rows(&read_all(&mut again).await.unwrap()), sim.expected());
    assert!(sim.is_enabled(), "a device re-enables itself when the session that disabled it is gone");
}

#[tokio::test]
async fn clock_read_and_set() {
    let sim = ZkSim::start(SimConfig { clock_offset_secs: 3_600, ..SimConfig::default() }).await.unwrap();
    let mut client = connect(&sim, TransportKind::Udp).await;
    let ours = chrono::Utc::now().with_timezone(&sim.config().time_zone).naive_local();
    let drift = (client.get_time().await.unwrap() - ours).num_seconds();
    assert!((3_598..=3_602).contains(&drift), "{drift}");
    client.set_time(ours).await.unwrap();
    let drift = (client.get_time().await.unwrap() - ours).num_seconds();
    assert!((-2..=2).contains(&drift), "{drift}");
    assert_eq!(sim.counters().set_times, 1);
}

#[tokio::test]
async fn realtime_events_of_every_size_arrive_and_are_acknowledged() {
    let cases = [
        (RecordLayout::Short, 10),
        (RecordLayout::Short, 14),
        (RecordLayout::Medium, 12),
        (RecordLayout::Long, 32),
        (RecordLayout::Long, 36),
        (RecordLayout::Long, 37),
        (RecordLayout::Long, 52),
    ];
    for (layout, size) in cases {
        let user_layout = if layout == RecordLayout::Long { UserLayout::Large } else { UserLayout::Small };
        let sim_config = SimConfig { event_size: Some(size), ..config(5, layout, user_layout, 0) };
        let sim = ZkSim::start(sim_config).await.unwrap();
        for transport in [TransportKind::Tcp, TransportKind::Udp] {
            let mut client = connect(&sim, transport).await;
            client.register_events(1).await.unwrap();
            let record = sim.punch_now().expect("the device is enabled");
            let cancel = CancellationToken::new();
            let EventWait::Punch(event) = client.next_event(Duration::from_secs(3), &cancel).await.unwrap() else {
                panic!("no event of size {size} over {transport:?}");
            };
            assert_eq!(
                (event.user, event.time, event.verify, event.state),
                (record.user.clone(), record.time, record.verify, record.state)
            );
            assert_eq!(client.next_event(Duration::from_millis(50), &cancel).await.unwrap(), EventWait::Idle);
            cancel.cancel();
            assert_eq!(client.next_event(Duration::from_secs(5), &cancel).await.unwrap(), EventWait::Cancelled);
            client.exit().await;
        }
        assert_eq!(sim.counters().events_acked, 2, "size {size}: each event was acknowledged");
    }
}

#[tokio::test]
async fn events_arriving_during_a_request_are_kept_for_later() {
    let sim = ZkSim::start(config(5, RecordLayout::Long, UserLayout::Large, 0)).await.unwrap();
    let mut client = connect(&sim, TransportKind::Tcp).await;
    client.register_events(1).await.unwrap();
    let punched: Vec<_> = (0..3).filter_map(|_| sim.punch_now()).collect();
    // A few requests while the events are in flight: their replies still match, the events wait in the queue.
    for _ in 0..3 {
        assert_eq!(client.read_sizes().await.unwrap().records, Some(8));
    }
    let cancel = CancellationToken::new();
    for record in punched {
        let EventWait::Punch(event) = client.next_event(Duration::from_secs(3), &cancel).await.unwrap() else {
            panic!("event lost");
        };
        assert_eq!(event.time, record.time);
    }
}

//! What a site technician sees from the real `edge-agent probe` (issue 13): each step on its own line, each failure
//! said once with what to try, and each firmware variant the simulator plays shown for what it is.

use std::net::SocketAddr;
use std::time::Duration;

use edge_agent::zk::{command, RecordLayout, UserLayout};
use system_tests::zk_sim::{FaultSettings, SimConfig, ZkSim};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Printed {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Printed {
    /// The step's line: `  <step>  <text>`.
    fn step(&self, name: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name) && l.starts_with("  "))
            .unwrap_or_else(|| panic!("no {name} line in:\n{}", self.stdout))
    }
}

async fn probe(addr: SocketAddr, extra: &[&str]) -> Printed {
    let binary = system_tests::harness::binary("edge-agent").unwrap();
    let addr = addr.to_string();
    let mut args = vec!["probe", addr.as_str(), "--zone", "Asia/Kolkata", "--timeout", "1", "--last", "2"];
    args.extend_from_slice(extra);
    let output = tokio::process::Command::new(binary).args(&args).env("RUST_LOG", "info").output().await.unwrap();
    Printed {
        ok: output.status.success(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn sim_config(records: usize, faults: FaultSettings) -> SimConfig {
    SimConfig { records, faults, ..SimConfig::default() }
}

#[tokio::test]
async fn a_missing_comm_key_says_none_was_given_and_how_to_pass_one() {
    let sim = ZkSim::start(SimConfig { comm_key: 77, records: 10, ..SimConfig::default() }).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert!(!out.ok);
    assert_eq!(out.step("connect"), "  connect        ok: a ZKTeco device answered");
    assert_eq!(out.step("auth"), "  auth           FAILED: the device requires a comm key and none was given");
    assert!(out.stdout.contains("try: pass the device's comm key with --key <number>"), "{}", out.stdout);
    assert!(out.step("log").ends_with("skipped"));
    assert!(!out.stdout.contains("rejected key 0") && !out.stderr.contains("rejected key 0"));
    assert!(
        out.stderr.contains(&format!(
            "edge-agent: probing {}: auth failed: the device requires a comm key and none was given",
            sim.tcp_addr()
        )),
        "{}",
        out.stderr
    );
    let wrong = probe(sim.tcp_addr(), &["--key", "78"]).await;
    assert_eq!(wrong.step("auth"), "  auth           FAILED: the device rejected comm key 78");
    assert!(probe(sim.tcp_addr(), &["--key", "77"]).await.ok);
}

#[tokio::test]
async fn a_refused_tcp_connection_says_so_once_and_suggests_udp() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = probe(free, &[]).await;
    assert!(!out.ok);
    let expected =
        format!("cannot connect to {free} over tcp: connection refused (nothing listens on port {})", free.port());
    assert_eq!(out.step("connect"), format!("  connect        FAILED: {expected}"));
    assert_eq!(out.stderr.matches("refused").count(), 1, "the cause once:\n{}", out.stderr);
    assert!(out.stderr.contains("older units speak UDP only: try --udp"), "{}", out.stderr);
}

#[tokio::test]
async fn udp_with_nothing_answering_names_the_udp_port() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let free = socket.local_addr().unwrap();
    drop(socket);
    let out = probe(free, &["--udp"]).await;
    assert!(!out.ok);
    let line = out.step("connect");
    assert!(
        line.contains(&format!("no ZKTeco device answered on UDP port {} of 127.0.0.1", free.port())),
        "{}",
        out.stdout
    );
    assert!(!out.stderr.contains("Connection refused") && !out.stdout.contains("Connection refused"), "{}", out.stderr);
    assert!(out.stderr.contains("newer units speak TCP: try without --udp"), "{}", out.stderr);
}

/// A TCP server answering each connection with `reply` (nothing when `None`), holding it open for a while.
async fn foreign_server(reply: Option<&'static [u8]>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                let _ = stream.read(&mut buf).await;
                if let Some(reply) = reply {
                    let _ = stream.write_all(reply).await;
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_port_speaking_http_is_named_not_shown_as_lost_framing() {
    let addr = foreign_server(Some(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")).await;
    let out = probe(addr, &[]).await;
    assert!(!out.ok);
    assert_eq!(
        out.step("connect"),
        format!(
            "  connect        FAILED: {addr}: this port does not speak the ZKTeco protocol (it answered like an HTTP \
             server)"
        )
    );
    assert!(!out.stdout.contains("50 50 82 7D") && !out.stderr.contains("[48, 54"), "{}", out.stderr);
}

#[tokio::test]
async fn a_silent_listener_and_a_slow_device_are_told_apart() {
    let silent = foreign_server(None).await;
    let out = probe(silent, &[]).await;
    assert!(!out.ok);
    assert!(
        out.step("connect").contains("accepts TCP connections but nothing answered the ZKTeco CONNECT within 1s"),
        "{}",
        out.stdout
    );

    let faults = FaultSettings { reply_delay_ms: 1_500, delay_after_connect: true, ..FaultSettings::default() };
    let slow = ZkSim::start(sim_config(10, faults)).await.unwrap();
    let out = probe(slow.tcp_addr(), &[]).await;
    assert!(!out.ok);
    assert_eq!(out.step("connect"), "  connect        ok: a ZKTeco device answered");
    assert!(out.step("identity").contains("FAILED: OPTIONS_RRQ: no answer within 1s"), "{}", out.stdout);
    assert!(out.stdout.contains("the device is slow or busy: try again with a longer --timeout"), "{}", out.stdout);
}

#[tokio::test]
async fn a_retried_error_is_printed_once_with_its_tries() {
    let faults = FaultSettings { bad_checksum: 1_000, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(3_000, faults)).await.unwrap();
    let out = probe(sim.udp_addr(), &["--udp"]).await;
    assert!(!out.ok);
    let log = out.step("log");
    assert!(log.ends_with("(tried 3 times)"), "{}", out.stdout);
    assert_eq!(log.matches("bad checksum").count(), 1, "{log}");
    assert_eq!(out.stderr.matches("bad checksum").count(), 1, "once, not once per try:\n{}", out.stderr);
}

#[tokio::test]
async fn counts_without_capacity_and_a_clock_years_off_read_for_a_person() {
    let config = SimConfig { records: 10, user_capacity: 0, clock_offset_secs: -77_956_972, ..SimConfig::default() };
    let sim = ZkSim::start(config).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("  users          20 (capacity not reported)\n"), "{}", out.stdout);
    assert!(!out.stdout.contains(" of 0"), "{}", out.stdout);
    let drift = out.step("clock");
    assert!(drift.starts_with("  clock drift    902 days 6 h 42 min (device behind) [-7795697"), "{drift}");
}

#[tokio::test]
async fn every_firmware_variant_is_shown_for_what_it_is() {
    // DISABLEDEVICE refused: read anyway, said so.
    let faults = FaultSettings { refuse_disable: Some(command::ACK_ERROR), ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(120, faults)).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert!(out.ok, "{}", out.stdout);
    assert_eq!(out.step("log"), "  log            ok: 120 records (40-byte layout)");
    assert!(out.stdout.contains(
        "  disable        refused (ACK_ERROR): the agent reads this device without disabling it and never clears its \
         log"
    ));

    // ACK_DATA answers, over the legacy path too.
    let faults = FaultSettings { ack_data: true, refuse_buffer_read: true, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(120, faults)).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert!(out.ok, "{}", out.stdout);
    assert_eq!(out.step("log"), "  log            ok: 120 records (40-byte layout) by ATTLOG_RRQ");
    assert_eq!(out.step("users"), "  users          ok: 20 users");

    // Checksums off by one: counted over TCP; over UDP refused until --no-strict-checksum.
    let faults = FaultSettings { checksum_off_by_one: true, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(120, faults)).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert!(out.ok, "{}", out.stdout);
    let line = out.step("checksums");
    assert!(line.ends_with("replies with a wrong checksum (accepted: TCP frames them by length)"), "{line}");
    let out = probe(sim.udp_addr(), &["--udp"]).await;
    assert!(!out.ok);
    assert!(out.step("connect").contains("FAILED: CONNECT: bad checksum on ACK_OK"), "{}", out.stdout);
    assert!(
        out.stdout.contains("try: the device computes reply checksums wrongly: pass --no-strict-checksum"),
        "{}",
        out.stdout
    );
    let out = probe(sim.udp_addr(), &["--udp", "--no-strict-checksum"]).await;
    assert!(out.ok, "{}", out.stdout);
    assert!(out.step("checksums").ends_with("(accepted: --no-strict-checksum)"), "{}", out.stdout);

    // The log picked by the function code, and buffered reads that come back empty.
    let faults = FaultSettings { attlog_by_fct: true, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(120, faults)).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert_eq!(out.step("log"), "  log            ok: 120 records (40-byte layout) by buffered read (function code 1)");
    let faults = FaultSettings { buffered_empty: true, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(120, faults)).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert_eq!(out.step("log"), "  log            ok: 120 records (40-byte layout) by ATTLOG_RRQ");

    // Short on every path: the probe fails at the log, naming both counts.
    let faults = FaultSettings { serve_records: Some(0), ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(1_000, faults)).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert!(!out.ok);
    assert!(
        out.step("log").starts_with(
            "  log            FAILED: record_count_mismatch: the device reports 1000 records but the read returned 0"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("log failed: record_count_mismatch"), "{}", out.stderr);
}

#[tokio::test]
async fn a_user_table_that_cannot_be_read_fails_the_probe_only_when_the_log_needs_it() {
    let faults = FaultSettings { refuse_users: true, ..FaultSettings::default() };
    let sim = ZkSim::start(sim_config(50, faults.clone())).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert!(out.ok, "{}", out.stdout);
    assert!(out.step("users").starts_with("  users          failed, not needed: "), "{}", out.stdout);
    assert!(out.step("users").ends_with("(not needed to read the log: its records carry the PINs)"));
    assert_eq!(out.step("log"), "  log            ok: 50 records (40-byte layout)");

    let config = SimConfig {
        records: 50,
        record_layout: RecordLayout::Short,
        user_layout: UserLayout::Small,
        faults,
        ..SimConfig::default()
    };
    let sim = ZkSim::start(config).await.unwrap();
    let out = probe(sim.tcp_addr(), &[]).await;
    assert!(!out.ok);
    assert!(out.step("users").starts_with("  users          FAILED: "), "{}", out.stdout);
    assert!(out.stderr.contains("users failed"), "{}", out.stderr);
}

#[tokio::test]
async fn the_simulator_program_plays_a_variant_for_the_probe() {
    let mut sim = system_tests::harness::Spawned::start(
        "zk-sim",
        &["--listen", "127.0.0.1:0", "--records", "300", "--serve-records", "0", "--refuse-disable", "unknown"],
        &[],
    )
    .unwrap();
    let addr: SocketAddr = sim.listening_url().await.unwrap().parse().unwrap();
    let out = probe(addr, &[]).await;
    assert!(!out.ok);
    assert!(out.step("log").contains("the device reports 300 records but the read returned 0"), "{}", out.stdout);
    assert!(out.stdout.contains("disable        refused (ACK_UNKNOWN)"), "{}", out.stdout);
}

//! `edge-agent probe` against the simulator: the real binary prints what a technician needs.

use std::time::Duration;

use edge_agent::zk::probe::{probe, ProbeRequest};
use edge_agent::zk::{RecordLayout, Timeouts, TransportKind, UserLayout};
use system_tests::zk_sim::{SimConfig, ZkSim};

#[tokio::test]
async fn the_probe_command_prints_identity_counts_drift_and_last_punches() {
    let sim = ZkSim::start(SimConfig { records: 120, comm_key: 77, clock_offset_secs: 95, ..SimConfig::default() })
        .await
        .unwrap();
    let binary = system_tests::harness::binary("edge-agent").unwrap();
    let output = tokio::process::Command::new(binary)
        .args(["probe", &sim.tcp_addr().to_string(), "--key", "77", "--zone", "Asia/Kolkata", "--last", "3"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for expected in [
        "serial number  SIM0000000001",
        "platform       ZMM220_TFT",
        "firmware       Ver 6.60 Apr 28 2017",
        "device name    K40 Sim",
        "users          20 of 10000",
        "records        120 of 200000",
        "(Asia/Kolkata)",
        "log read       120 records (40-byte layout), 20 users",
        "Last 3 punches",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let drift_line = stdout.lines().find(|l| l.contains("clock drift")).unwrap();
    let secs = drift_line.rsplit_once('[').unwrap().1.trim_end_matches(" s]");
    let drift: i64 = secs.parse().unwrap();
    assert!((93..=97).contains(&drift), "{drift_line}");
    assert!(drift_line.contains(&format!("1 min {} s (device ahead)", drift - 60)), "{drift_line}");
    for step in ["connect", "auth", "identity", "time", "counts", "users", "log"] {
        assert!(stdout.lines().any(|l| l.trim_start().starts_with(step) && l.contains(" ok: ")), "{step}:\n{stdout}");
    }
    assert!(stdout.contains("auth           ok: comm key accepted"), "{stdout}");
    assert!(stdout.contains("checksums      every reply correct"), "{stdout}");
    // The last three records, newest last, with their PINs and names.
    let users = sim.users();
    let records = sim.records();
    let lines: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("Last 3")).skip(1).collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for (line, record) in lines.iter().zip(&records[117..]) {
        let pin = sim.pin_of(record);
        let name = &users.iter().find(|u| u.user_id == pin).unwrap().name;
        assert!(line.contains(&record.time.format("%Y-%m-%d %H:%M:%S").to_string()), "{line}");
        assert!(line.contains(&format!("PIN {pin}")) && line.contains(name.as_str()), "{line}");
        assert!(line.ends_with(&format!("[state {}, verify {}]", record.state, record.verify)), "{line}");
    }
    assert!(sim.is_enabled() && sim.counters().exits == 1, "the probe left the device as it found it");
}

#[tokio::test]
async fn the_probe_reads_udp_devices_and_resolves_uids() {
    let config = SimConfig {
        records: 40,
        record_layout: RecordLayout::Short,
        user_layout: UserLayout::Small,
        ..SimConfig::default()
    };
    let sim = ZkSim::start(config).await.unwrap();
    let request = ProbeRequest {
        address: sim.udp_addr().ip().to_string(),
        port: sim.udp_addr().port(),
        transport: TransportKind::Udp,
        comm_key: 0,
        zone: chrono_tz::Asia::Kolkata,
        last: 100,
        timeouts: Timeouts { connect: Duration::from_secs(2), request: Duration::from_secs(2) },
        strict_checksum: true,
    };
    let report = probe(&request).await;
    assert!(report.failure().is_none(), "{report}");
    assert_eq!(report.layout, Some(RecordLayout::Short));
    assert_eq!(report.last.len(), 40);
    let pins: Vec<String> = report.last.iter().map(|p| p.pin.clone()).collect();
    let expected: Vec<String> = sim.records().iter().map(|r| sim.pin_of(r)).collect();
    assert_eq!(pins, expected, "8-byte records name uids; the probe shows PINs");
    assert!(report.to_string().contains(&format!("Device at {} (udp)", sim.udp_addr())));
}

#[tokio::test]
async fn the_probe_names_what_failed() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let binary = system_tests::harness::binary("edge-agent").unwrap();
    let output = tokio::process::Command::new(binary)
        .args(["probe", &free.to_string(), "--timeout", "1"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("probing {free}")) && stderr.contains("cannot connect"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("  connect        FAILED: cannot connect"), "{stdout}");
    assert!(stdout.contains("  auth           skipped"), "{stdout}");
    let bad_zone = tokio::process::Command::new(system_tests::harness::binary("edge-agent").unwrap())
        .args(["probe", "127.0.0.1", "--zone", "Mars/Olympus"])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&bad_zone.stderr).contains("unknown IANA time zone \"Mars/Olympus\""));
}

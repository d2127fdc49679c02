//! The serial reader for real, through pseudo-terminal pairs: lines in every line-end style, malformed lines, a line
//! split across writes, and an unplug/replug of the "adapter"; then the same through the real edge-agent into a real
//! central-api with exact AllLogs counts.

use std::sync::Arc;
use std::time::Duration;

use edge_agent::device_status::DeviceStatusBoard;
use edge_agent::serial::{Layout, RecordFormat, SerialDeviceConfig};
use edge_agent::sink::memory::MemorySink;
use protocol::{Direction, PunchSource, PunchState};
use system_tests::central::{Backend, CentralDb};
use system_tests::harness::Spawned;
use system_tests::on_both_backends;
use system_tests::serial_sim::PtyTerminal;
use tokio_util::sync::CancellationToken;

const SN: &str = "RS485-BAY";

fn line(i: usize) -> String {
    format!("{},2026-03-02 {:02}:{:02}:00,{}", 2001 + i % 7, 6 + i / 60, i % 60, if i % 2 == 0 { "IN" } else { "1" })
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(30), "{what} did not happen within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes lines `from..to` with varying line ends, a malformed line after every tenth, and one line split in two.
fn write_lines(terminal: &mut PtyTerminal, from: usize, to: usize) {
    for i in from..to {
        let end = ["\r\n", "\n", "\r"][i % 3];
        if i % 10 == 5 {
            let text = line(i);
            let (head, tail) = text.split_at(7);
            terminal.send_bytes(head.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            terminal.send(tail, end).unwrap();
        } else {
            terminal.send(&line(i), end).unwrap();
        }
        if i % 10 == 9 {
            terminal.send("2001,not a time,0", "\n").unwrap();
            terminal.send("ERR 17 TAMPER", "\r\n").unwrap();
        }
    }
}

#[tokio::test]
async fn lines_are_read_through_a_pty_and_the_reader_survives_unplug_and_replug() {
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("edge_agent=debug").try_init();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyUSB-sim");
    let mut terminal = PtyTerminal::plug(&link).unwrap();
    let sink = Arc::new(MemorySink::new());
    let board = DeviceStatusBoard::new();
    let config = SerialDeviceConfig {
        site: "plant-1".parse().unwrap(),
        serial: SN.parse().unwrap(),
        zone: chrono_tz::Asia::Kolkata,
        direction: Direction::Out,
        port: link.display().to_string(),
        baud_rate: 9600,
        parity: tokio_serial::Parity::None,
        data_bits: tokio_serial::DataBits::Eight,
        stop_bits: tokio_serial::StopBits::One,
        format: RecordFormat {
            layout: Layout::Delimited { delimiter: ',', pin: 0, time: 1, state: Some(2), verify: None },
            time_format: "%Y-%m-%d %H:%M:%S".into(),
        },
        reconnect: Duration::from_millis(200),
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(edge_agent::serial::run(config, sink.clone(), board.clone(), stop.clone()));

    write_lines(&mut terminal, 0, 50);
    wait_until("50 punches", async || sink.punches().len() == 50).await;
    let punches = sink.punches();
    assert_eq!(punches[0].pin.as_str(), "2001");
    assert_eq!(punches[0].local_time.to_string(), "2026-03-02 06:00:00");
    assert_eq!((punches[0].state, punches[1].state), (PunchState::CheckIn, PunchState::CheckOut));
    assert_eq!((punches[0].source, punches[0].direction), (PunchSource::Serial, Direction::Out));
    assert!(board.snapshot()[0].reachable);

    terminal.unplug();
    wait_until("the device marked unreachable", async || !board.snapshot()[0].reachable).await;
    assert_eq!(board.snapshot()[0].faults[0].code, "device_unreachable");
    tokio::time::sleep(Duration::from_millis(500)).await; // a few failed reopen attempts on the dangling link

    let mut terminal = PtyTerminal::plug(&link).unwrap();
    write_lines(&mut terminal, 50, 80);
    wait_until("80 punches", async || sink.punches().len() == 80).await;
    wait_until("reachable again", async || board.snapshot()[0].reachable).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.punches().len(), 80, "malformed lines are skipped, nothing doubled");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("stops").unwrap();
}

on_both_backends!(serial_lines_reach_all_logs_exactly_across_a_replug);

async fn serial_lines_reach_all_logs_exactly_across_a_replug(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = db.serve(&[]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyUSB-sim");
    let mut terminal = PtyTerminal::plug(&link).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nid = \"gate-1\"\nsite = \"plant-1\"\ndata_dir = \"{data}\"\n\n\
             [central]\ntransport = \"https\"\nurl = \"{url}\"\ntoken = \"{token}\"\n\n\
             [forward]\nlinger_ms = 50\ninitial_backoff_ms = 50\nmax_backoff_secs = 1\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n\
             [[device]]\nkind = \"serial\"\nserial = \"{SN}\"\ntime_zone = \"Asia/Kolkata\"\n\
             port = \"{port}\"\nbaud_rate = 19200\nparity = \"even\"\ndelimiter = \",\"\npin_field = 0\n\
             time_field = 1\nstate_field = 2\nreconnect_secs = 1\n",
            data = dir.path().join("data").display(),
            url = central.url,
            port = link.display(),
        ),
    )
    .unwrap();
    let mut agent = Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[]).unwrap();
    agent.listening_url().await.unwrap();

    write_lines(&mut terminal, 0, 40);
    wait_until("40 rows in all_logs", async || db.all_logs().await == 40).await;
    terminal.unplug();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut terminal = PtyTerminal::plug(&link).unwrap();
    write_lines(&mut terminal, 40, 65);
    wait_until("65 rows in all_logs", async || db.all_logs().await == 65).await;
    let serial = db.scalar("SELECT count(*) FROM all_logs WHERE source = 'serial'").await.unwrap();
    assert_eq!(serial, 65);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(db.all_logs().await, 65, "malformed lines never arrive, nothing doubled");
    drop(agent);
    drop(central);
    db.cleanup().await;
}

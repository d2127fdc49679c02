//! ADMS push end to end: the simulated terminal against the receiver (retries while the buffer refuses, commands),
//! and simulator -> real edge-agent -> real central-api with exact AllLogs counts, across an agent restart (the stamp
//! survives, so the device does not send again) and with malformed rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use edge_agent::adms::{AdmsCommand, AdmsDevice, AdmsOptions, AdmsReceiver, CommandQueue};
use edge_agent::device_status::DeviceStatusBoard;
use edge_agent::sink::memory::MemorySink;
use protocol::Direction;
use system_tests::adms_sim::{row, row_extended, AdmsSim};
use system_tests::central::{Backend, CentralDb};
use system_tests::harness::Spawned;
use system_tests::on_both_backends;
use tokio_util::sync::CancellationToken;

const SN: &str = "OIN7030067";

fn at(minute: usize) -> NaiveDateTime {
    NaiveDateTime::parse_from_str("2026-03-02 07:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
        + chrono::Duration::minutes(minute as i64)
}

/// `n` valid rows from minute `from`, alternating the classic and the extended shape, PINs 1001..1020.
fn rows(from: usize, n: usize) -> Vec<(NaiveDateTime, String)> {
    (from..from + n)
        .map(|i| {
            let pin = format!("{}", 1001 + i % 20);
            let text = if i % 2 == 0 { row(&pin, at(i), 0, 1) } else { row_extended(&pin, at(i), 1, 15) };
            (at(i), text)
        })
        .collect()
}

#[tokio::test]
async fn simulator_retries_until_the_buffer_takes_rows_and_runs_commands() {
    let sink = Arc::new(MemorySink::new());
    let board = DeviceStatusBoard::new();
    let options = AdmsOptions {
        site: "plant-1".parse().unwrap(),
        devices: vec![AdmsDevice {
            serial: SN.parse().unwrap(),
            zone: chrono_tz::Asia::Kolkata,
            direction: Direction::Both,
            allow_from: Vec::new(),
        }],
        max_body_bytes: 1 << 20,
        unknown_log_interval: Duration::from_secs(60),
        poll_delay_secs: 1,
        error_delay_secs: 1,
    };
    let receiver = Arc::new(AdmsReceiver::new(sink.clone(), board, options, Arc::new(CommandQueue::new())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(edge_agent::adms::server::serve(listener, receiver.clone(), stop.clone()));
    let _stop = stop.drop_guard();

    let mut sim = AdmsSim::new(&url, SN);
    sim.record(rows(0, 250));
    sim.handshake().await.unwrap();
    assert_eq!(sim.server_stamp, 0);
    sim.retry_delay = Duration::from_millis(20);
    sink.set_refusing(true);
    let push = tokio::spawn(async move {
        let delivered = sim.push_pending().await.unwrap();
        (sim, delivered)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sink.punches().is_empty(), "nothing stored while refusing");
    sink.set_refusing(false);
    let (mut sim, delivered) = push.await.unwrap();
    assert_eq!(delivered, 250);
    assert!(sim.stats.refused >= 3, "the device was told to retry: {:?}", sim.stats);
    assert_eq!(sink.punches().len(), 250);
    assert_eq!(receiver.stamp(&SN.parse().unwrap(), "ATTLOG").await.unwrap(), 250);

    // Commands: info, set the clock, re-upload a time range (the rows come again, and the buffer drops them).
    let serial = SN.parse().unwrap();
    receiver.commands().enqueue(&serial, AdmsCommand::Info).unwrap();
    receiver.commands().enqueue(&serial, AdmsCommand::SetTime(at(0))).unwrap();
    receiver.commands().enqueue(&serial, AdmsCommand::ReuploadSince { from: at(100), until: at(149) }).unwrap();
    let sent_before = sim.stats.rows_sent;
    let done = sim.poll_commands().await.unwrap();
    assert_eq!(done.len(), 3);
    assert_eq!(sim.stats.rows_sent - sent_before, 50, "the range was sent again");
    assert_eq!(sim.clock_set_to, Some(edge_agent::zk::time::encode(at(0))));
    let results = receiver.commands().results(&serial);
    assert_eq!(results.iter().map(|r| r.code).collect::<Vec<_>>(), [0, 0, 0]);
    assert_eq!(sink.punches().len(), 250, "re-uploaded rows are duplicates");
    assert!(sim.poll_commands().await.unwrap().is_empty());
}

on_both_backends!(pushed_rows_reach_all_logs_exactly_once_across_an_agent_restart);

fn agent_config(data_dir: &std::path::Path, central: &str, token: &str) -> String {
    format!(
        "[agent]\nid = \"gate-1\"\nsite = \"plant-1\"\ndata_dir = \"{}\"\n\n\
         [central]\ntransport = \"https\"\nurl = \"{central}\"\ntoken = \"{token}\"\n\n\
         [forward]\nlinger_ms = 50\ninitial_backoff_ms = 50\nmax_backoff_secs = 1\n\n\
         [status]\ninterval_secs = 2\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
         [adms]\nlisten = \"127.0.0.1:0\"\npoll_delay_secs = 1\n\n\
         [[device]]\nkind = \"adms\"\nserial = \"{SN}\"\ntime_zone = \"Asia/Kolkata\"\n",
        data_dir.display()
    )
}

/// The agent, its push receiver's URL and its local endpoint's URL.
async fn start_agent(config: &std::path::Path) -> (Spawned, String, String) {
    let mut agent = Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[]).unwrap();
    let local = agent.listening_url().await.unwrap();
    let push = agent.wait_for_line("edge-agent adms listening on ", Duration::from_secs(30)).await.unwrap();
    (agent, push, local)
}

async fn wait_for_count(db: &CentralDb, want: i64) {
    let start = tokio::time::Instant::now();
    loop {
        let got = db.all_logs().await;
        if got == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "all_logs is {got}, want {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pushed_rows_reach_all_logs_exactly_once_across_an_agent_restart(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = db.serve(&[]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, agent_config(&dir.path().join("data"), &central.url, &token)).unwrap();
    let (mut agent, push_url, _) = start_agent(&config).await;

    // 300 valid rows in both shapes, CRLF line ends, and 4 malformed rows among them.
    let mut sim = AdmsSim::new(&push_url, SN);
    sim.line_end = "\r\n";
    sim.batch_size = 64;
    sim.record(rows(0, 150));
    // (The simulator files them far from the re-upload range used below.)
    sim.record([
        (at(9000), "1001\t2026-03-02 25:00:00\t0\t1\t0\t0\t0".to_owned()),
        (at(9000), "just garbage".to_owned()),
        (at(9000), "\t2026-03-02 07:00:00\t0\t1\t0\t0\t0".to_owned()),
        (at(9000), "1002\t2026-03-02 07:00:00\tIN\t1\t0\t0\t0".to_owned()),
    ]);
    sim.record(rows(150, 150));
    sim.handshake().await.unwrap();
    assert_eq!(sim.push_pending().await.unwrap(), 304);
    wait_for_count(&db, 300).await;
    let sent = sim.stats.rows_sent;

    // Restart the agent: the stamp survives, the device is told it and sends nothing again.
    agent.kill().await.unwrap();
    let (_agent, push_url, local) = start_agent(&config).await;
    sim.set_server(&push_url);
    sim.server_stamp = 0;
    sim.handshake().await.unwrap();
    assert_eq!(sim.server_stamp, 304, "the stamp was stored before the OK and survived the restart");
    assert_eq!(sim.push_pending().await.unwrap(), 0);
    assert_eq!(sim.stats.rows_sent, sent, "nothing resent");

    // New punches after the restart.
    sim.record(rows(300, 60));
    assert_eq!(sim.push_pending().await.unwrap(), 60);
    wait_for_count(&db, 360).await;
    let adms = db.scalar("SELECT count(*) FROM all_logs WHERE source = 'adms-push'").await.unwrap();
    assert_eq!(adms, 360);

    // A command queued on the agent's local endpoint reaches the device on its next poll; its result is recorded.
    let http = reqwest::Client::new();
    let queue = |body: serde_json::Value| http.post(format!("{local}/adms/commands")).json(&body).send();
    let answer = queue(serde_json::json!({
        "device": SN, "command": "reupload", "from": "2026-03-02 07:00:00", "until": "2026-03-02 07:09:00"
    }))
    .await
    .unwrap();
    assert_eq!(answer.status(), 202);
    let id = answer.json::<serde_json::Value>().await.unwrap()["id"].as_u64().unwrap();
    let unknown = queue(serde_json::json!({"device": "NOT-HERE", "command": "info"})).await.unwrap();
    assert_eq!(unknown.status(), 404);
    let bad = queue(serde_json::json!({"device": SN, "command": "set_time", "time": "noon"})).await.unwrap();
    assert_eq!(bad.status(), 400);
    let sent = sim.stats.rows_sent;
    assert_eq!(sim.poll_commands().await.unwrap().len(), 1);
    assert_eq!(sim.stats.rows_sent - sent, 10, "the rows of 07:00..07:09 were sent again");
    let results: serde_json::Value =
        http.get(format!("{local}/adms/commands?device={SN}")).send().await.unwrap().json().await.unwrap();
    assert_eq!((results["results"][0]["id"].as_u64(), results["results"][0]["code"].as_i64()), (Some(id), Some(0)));
    assert_eq!(results["outstanding"], 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(db.all_logs().await, 360, "no late duplicates");
    drop(central);
    db.cleanup().await;
}

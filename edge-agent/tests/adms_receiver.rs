//! The push receiver over real HTTP against an in-memory sink: handshake stamps, `OK` only after the append,
//! a refusing sink makes the device retry, unknown serials, the body limit, user records and commands.

use std::sync::Arc;
use std::time::Duration;

use edge_agent::adms::{AdmsCommand, AdmsDevice, AdmsOptions, AdmsReceiver, CommandQueue};
use edge_agent::device_status::DeviceStatusBoard;
use edge_agent::sink::memory::MemorySink;
use edge_agent::sink::PunchSink;
use protocol::{DeviceSerial, Direction, PunchSource, PunchState, VerifyMode};
use tokio_util::sync::CancellationToken;

struct Rig {
    url: String,
    sink: Arc<MemorySink>,
    board: DeviceStatusBoard,
    receiver: Arc<AdmsReceiver<MemorySink>>,
    client: reqwest::Client,
    _stop: tokio_util::sync::DropGuard,
}

const SN: &str = "OIN7030067";

async fn rig() -> Rig {
    let sink = Arc::new(MemorySink::new());
    let board = DeviceStatusBoard::new();
    let options = AdmsOptions {
        site: "plant-1".parse().unwrap(),
        devices: vec![AdmsDevice {
            serial: SN.parse().unwrap(),
            zone: chrono_tz::Asia::Kolkata,
            direction: Direction::In,
            allow_from: Vec::new(),
        }],
        max_body_bytes: 64 * 1024,
        unknown_log_interval: Duration::from_secs(60),
        poll_delay_secs: 5,
        error_delay_secs: 7,
    };
    let receiver = Arc::new(AdmsReceiver::new(sink.clone(), board.clone(), options, Arc::new(CommandQueue::new())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(edge_agent::adms::server::serve(listener, receiver.clone(), stop.clone()));
    Rig { url, sink, board, receiver, client: reqwest::Client::new(), _stop: stop.drop_guard() }
}

impl Rig {
    async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(format!("{}{path}", self.url)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let response = self.client.post(format!("{}{path}", self.url)).body(body).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

fn serial() -> DeviceSerial {
    SN.parse().unwrap()
}

#[tokio::test]
async fn rows_are_acknowledged_after_the_append_and_the_stamp_is_handed_back() {
    let rig = rig().await;
    let (status, options) = rig.get(&format!("/iclock/cdata?SN={SN}&options=all&pushver=2.4.1")).await;
    assert_eq!(status, 200);
    assert!(options.starts_with(&format!("GET OPTION FROM: {SN}\n")), "{options}");
    assert!(options.contains("\nATTLOGStamp=0\n") && options.contains("\nDelay=5\n"), "{options}");
    assert!(options.contains("\nErrorDelay=7\n"), "{options}");

    let body = "1001\t2026-03-02 08:59:12\t0\t1\t0\t0\t0\n\
                1002\t2026-03-02 09:01:40\t1\t15\t0\t0\t0\t0\t0\t\t36.4\r\n\
                not a row\n\
                1003\t2026-03-02 09:02:00\t0\t4\t\t\t\n";
    let (status, answer) = rig.post(&format!("/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=120"), body).await;
    assert_eq!((status, answer.as_str()), (200, "OK"));
    let punches = rig.sink.punches();
    assert_eq!(punches.len(), 3, "the malformed row is skipped, the rest kept");
    assert_eq!(punches[1].pin.as_str(), "1002");
    assert_eq!((punches[1].state, punches[1].verify), (PunchState::CheckOut, VerifyMode::Face));
    assert_eq!((punches[0].source, punches[0].direction), (PunchSource::AdmsPush, Direction::In));
    assert_eq!(punches[0].utc_time.naive_utc().to_string(), "2026-03-02 03:29:12", "Asia/Kolkata to UTC");
    assert_eq!(rig.receiver.stamp(&serial(), "ATTLOG").await.unwrap(), 120);
    let (_, options) = rig.get(&format!("/iclock/cdata?SN={SN}&options=all")).await;
    assert!(options.contains("\nATTLOGStamp=120\n"), "{options}");

    // A lower stamp (a re-upload) does not move the stored one back; duplicates are not stored again.
    let (status, _) = rig.post(&format!("/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=50"), body).await;
    assert_eq!(status, 200);
    assert_eq!(rig.sink.punches().len(), 3);
    assert_eq!(rig.receiver.stamp(&serial(), "ATTLOG").await.unwrap(), 120);
    let snap = rig.board.snapshot();
    assert!(snap[0].reachable && snap[0].faults.is_empty());
}

#[tokio::test]
async fn a_refusing_buffer_makes_the_device_retry_and_keeps_the_stamp() {
    let rig = rig().await;
    rig.sink.set_refusing(true);
    let row = "7\t2026-03-02 08:00:00\t0\t1\t0\t0\t0\n";
    let (status, answer) = rig.post(&format!("/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=9"), row).await;
    assert_eq!(status, 503);
    assert_ne!(answer, "OK");
    assert_eq!(rig.receiver.stamp(&serial(), "ATTLOG").await.unwrap(), 0, "nothing stored, stamp not moved");
    rig.sink.set_refusing(false);
    let (status, answer) = rig.post(&format!("/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=9"), row).await;
    assert_eq!((status, answer.as_str()), (200, "OK"));
    assert_eq!(rig.sink.punches().len(), 1);
    assert_eq!(rig.receiver.stamp(&serial(), "ATTLOG").await.unwrap(), 9);
}

#[tokio::test]
async fn unknown_serials_are_refused_and_raised_and_big_bodies_refused() {
    let rig = rig().await;
    let (status, _) = rig.get("/iclock/cdata?SN=STRANGER1&options=all").await;
    assert_eq!(status, 403);
    let (status, _) = rig.post("/iclock/cdata?SN=STRANGER1&table=ATTLOG", "1\t2026-03-02 08:00:00\t0\t1\n").await;
    assert_eq!(status, 403);
    let (status, _) = rig.get("/iclock/getrequest").await;
    assert_eq!(status, 403, "no serial at all");
    assert!(rig.sink.punches().is_empty());
    let snap = rig.board.snapshot();
    let stranger = snap.iter().find(|d| d.device.as_str() == "STRANGER1").expect("raised on the board");
    assert_eq!(stranger.faults[0].code, "unknown_push_device");

    let big = "1\t2026-03-02 08:00:00\t0\t1\n".repeat(4000);
    let (status, _) = rig.post(&format!("/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=5"), big).await;
    assert_eq!(status, 413);
    assert!(rig.sink.punches().is_empty());
}

#[tokio::test]
async fn user_records_commands_and_other_tables() {
    let rig = rig().await;
    let users = "PIN=1001\tName=Asha Rao\tPri=0\tPasswd=\tCard=\tGrp=1\tTZ=0000000100000000\n";
    let (status, answer) = rig.post(&format!("/iclock/cdata?SN={SN}&table=USERINFO"), users).await;
    assert_eq!((status, answer.as_str()), (200, "OK"));
    let oplog = "OPLOG 4\t0\t2026-03-02 08:00:00\t0\t0\t0\t0\nUSER PIN=1002\tName=Ravi\tPri=0\n";
    let (status, _) = rig.post(&format!("/iclock/cdata?SN={SN}&table=OPERLOG&Stamp=33"), oplog).await;
    assert_eq!(status, 200);
    assert_eq!(rig.receiver.user_name(&serial(), "1001").await.unwrap().as_deref(), Some("Asha Rao"));
    assert_eq!(rig.receiver.user_name(&serial(), "1002").await.unwrap().as_deref(), Some("Ravi"));
    assert!(rig.sink.cursor(&serial(), "adms.users").await.unwrap().is_some(), "the map is stored");
    assert_eq!(rig.receiver.stamp(&serial(), "OPERLOG").await.unwrap(), 33);
    let (status, answer) = rig.post(&format!("/iclock/cdata?SN={SN}&table=ATTPHOTO"), vec![0u8, 1, 2, 255]).await;
    assert_eq!((status, answer.as_str()), (200, "OK"), "photos are accepted and dropped");

    let (_, answer) = rig.get(&format!("/iclock/getrequest?SN={SN}&INFO=Ver%206.60,12,10,345,192.168.1.9")).await;
    assert_eq!(answer, "OK", "no command waiting");
    let snap = rig.board.snapshot();
    assert_eq!((snap[0].user_count, snap[0].record_count), (Some(12), Some(345)));
    let id = rig.receiver.commands().enqueue(&serial(), AdmsCommand::Info).unwrap();
    let (_, answer) = rig.get(&format!("/iclock/getrequest?SN={SN}")).await;
    assert_eq!(answer, format!("C:{id}:INFO\n"));
    let (status, answer) =
        rig.post(&format!("/iclock/devicecmd?SN={SN}"), format!("ID={id}&Return=0&CMD=INFO\n~DeviceName=F22\n")).await;
    assert_eq!((status, answer.as_str()), (200, "OK"));
    let results = rig.receiver.commands().results(&serial());
    assert_eq!((results.len(), results[0].id, results[0].code), (1, id, 0));
}

#[tokio::test]
async fn a_push_from_outside_allow_from_is_refused_and_raised() {
    let sink = Arc::new(MemorySink::new());
    let board = DeviceStatusBoard::new();
    let device = |serial: &str, nets: &[&str]| AdmsDevice {
        serial: serial.parse().unwrap(),
        zone: chrono_tz::Asia::Kolkata,
        direction: Direction::In,
        allow_from: nets.iter().map(|n| n.parse().unwrap()).collect(),
    };
    let options = AdmsOptions {
        site: "plant-1".parse().unwrap(),
        devices: vec![device("FENCED01", &["10.9.9.0/24"]), device("LOCAL01", &["10.9.9.0/24", "127.0.0.1/32"])],
        max_body_bytes: 64 * 1024,
        unknown_log_interval: Duration::from_secs(60),
        poll_delay_secs: 5,
        error_delay_secs: 7,
    };
    let receiver = Arc::new(AdmsReceiver::new(sink.clone(), board.clone(), options, Arc::new(CommandQueue::new())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(edge_agent::adms::server::serve(listener, receiver, stop.clone()));
    let _stop = stop.drop_guard();
    let client = reqwest::Client::new();
    let body = "1001\t2026-03-02 08:00:00\t0\t1\t0\t0\n";

    // The fenced serial, pushed from 127.0.0.1: refused on every path, nothing stored, the fault names the address.
    for path in ["/iclock/cdata?SN=FENCED01&options=all", "/iclock/getrequest?SN=FENCED01", "/iclock/ping?SN=FENCED01"]
    {
        let response = client.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 403, "{path}");
    }
    let response =
        client.post(format!("{url}/iclock/cdata?SN=FENCED01&table=ATTLOG&Stamp=1")).body(body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(sink.punches().is_empty());
    let fenced = board.snapshot().into_iter().find(|d| d.device.as_str() == "FENCED01").expect("raised on the board");
    let fault = fenced.faults.iter().find(|f| f.code == "push_from_unexpected_address").expect("fault raised");
    assert!(fault.message.contains("127.0.0.1"), "{}", fault.message);

    // The serial whose list includes this address pushes as before.
    let response =
        client.post(format!("{url}/iclock/cdata?SN=LOCAL01&table=ATTLOG&Stamp=1")).body(body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(sink.punches().len(), 1);
}

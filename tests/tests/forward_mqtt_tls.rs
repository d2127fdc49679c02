//! The MQTT link over TLS with a client certificate: a private Mosquitto started for the test with a TLS listener
//! that requires client certificates (and a plain one on loopback for the fake acker).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use edge_agent::forward::{MqttLink, MqttLinkOptions};
use protocol::{AgentKeys, BatchAck, Encoding, FrameKind, PunchBatch, SignedFrame, TopicKind, Topics};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use system_tests::{punches, tls};
use tokio_util::sync::CancellationToken;

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

fn start_broker(dir: &std::path::Path, pki: &tls::TestPki, tls_port: u16, plain_port: u16) -> Broker {
    // Mosquitto started as root drops to its own user, which must be able to read these throwaway test files.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    for file in [&pki.ca, &pki.server_cert, &pki.server_key] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).expect("chmod file");
    }
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "persistence false\nallow_anonymous true\n\
             listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n\
             listener {plain_port} 127.0.0.1\n",
            pki.ca.display(),
            pki.server_cert.display(),
            pki.server_key.display()
        ),
    )
    .expect("write conf");
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("mosquitto.log")).expect("log file"))
        .spawn()
        .expect("mosquitto is needed for this test (apt-get install mosquitto; .ci/test installs it)");
    let broker = Broker(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", plain_port)).is_ok()
        {
            return broker;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("mosquitto.log")).unwrap_or_default();
    panic!("the test's Mosquitto did not listen on {tls_port} and {plain_port}:\n{log}");
}

fn batch() -> PunchBatch {
    let items = punches::range("TLS-M", 0, 5)
        .into_iter()
        .zip(1u64..)
        .map(|(punch, seq)| protocol::SequencedPunch { seq, punch })
        .collect();
    PunchBatch::new(
        "agent-tls".parse().expect("agent"),
        punches::SITE.parse().expect("site"),
        chrono::Utc::now(),
        items,
    )
}

const TOKEN: &str = "agt_agent-tls_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn keys() -> AgentKeys {
    AgentKeys::from_token(TOKEN).expect("token").1
}

fn options(pki: &tls::TestPki, port: u16, topics: &Topics, client_cert: bool) -> MqttLinkOptions {
    MqttLinkOptions {
        host: "localhost".into(),
        port,
        tls: true,
        agent: "agent-tls".parse().expect("agent"),
        site: punches::SITE.parse().expect("site"),
        topics: topics.clone(),
        username: None,
        keys: keys(),
        faults: edge_agent::faults::Faults::new(),
        ca_file: Some(pki.ca.clone()),
        client_cert: client_cert.then(|| pki.client_cert.clone()),
        client_key: client_cert.then(|| pki.client_key.clone()),
        keep_alive: Duration::from_secs(10),
        ack_timeout: Duration::from_secs(3),
    }
}

#[tokio::test]
async fn a_batch_goes_over_mqtts_with_a_client_certificate_and_not_without_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = tls::make_pki(dir.path()).expect("test PKI");
    let (tls_port, plain_port) = (free_port(), free_port());
    let _broker = start_broker(dir.path(), &pki, tls_port, plain_port);
    let topics = Topics::new("tls-test").expect("prefix");

    // The fake acker, on the plain loopback listener.
    let (acker, mut events) = AsyncClient::new(MqttOptions::new("acker", "127.0.0.1", plain_port), 16);
    acker.subscribe(topics.all(TopicKind::Punches), QoS::AtLeastOnce).await.expect("subscribe");
    let acker_topics = topics.clone();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::Publish(publish)) = event {
                let Ok(topic) = acker_topics.parse(&publish.topic) else { continue };
                let Ok(frame) = SignedFrame::from_bytes(&publish.payload) else { continue };
                let Ok(payload) = keys().open(&frame, &topic.agent, FrameKind::Batch) else { continue };
                let Ok(batch) = protocol::decode::<PunchBatch>(payload, Encoding::Bincode) else { continue };
                let ack = BatchAck::stored(&batch, 5, 0, 0);
                let payload = keys().seal_envelope(&topic.agent, &ack).expect("encode");
                let acks = acker_topics.topic(TopicKind::Acks, &topic.site, &topic.agent);
                let _ = acker.publish(acks, QoS::AtLeastOnce, false, payload).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stop = CancellationToken::new();
    let (link, _task) = MqttLink::start(options(&pki, tls_port, &topics, true), stop.clone()).expect("link");
    let ack = link.send_batch(&batch()).await.expect("acknowledged over TLS");
    assert_eq!(ack.acknowledged_up_to(), Some(5));

    let (no_cert, _task) = MqttLink::start(options(&pki, tls_port, &topics, false), stop.clone()).expect("link");
    let err = no_cert.send_batch(&batch()).await.expect_err("the broker requires a client certificate");
    assert!(err.to_string().contains("not connected"), "{err}");
    stop.cancel();
}

#[test]
fn mqtts_without_a_ca_file_is_refused_at_setup() {
    let topics = Topics::new("tls-test").expect("prefix");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = tls::TestPki {
        ca: dir.path().join("ca.pem"),
        server_cert: dir.path().join("s.pem"),
        server_key: dir.path().join("s.key"),
        client_cert: dir.path().join("c.pem"),
        client_key: dir.path().join("c.key"),
    };
    let mut opts = options(&pki, 1, &topics, false);
    opts.ca_file = None;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _guard = runtime.enter();
    let err = MqttLink::start(opts, CancellationToken::new()).err().expect("refused");
    assert!(err.to_string().contains("needs central.ca_file"), "{err}");
}

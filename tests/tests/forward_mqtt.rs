//! The MQTT forwarder against the real Mosquitto, with a fake acker standing in for central (checking the agent's
//! proof and signing its answers with central's key for the agent): a PUBACK from the broker deletes nothing; only
//! central's signed `BatchAck` on the acks topic does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edge_agent::buffer::{Buffer, BufferOptions};
use edge_agent::faults::{self, Faults};
use edge_agent::forward::{ForwardMetrics, ForwardOptions, Forwarder, Link, MqttLink, MqttLinkOptions};
use protocol::{
    AgentId, AgentKeys, BatchAck, Encoding, FrameKind, PunchBatch, PunchKey, SignedFrame, SiteId, TopicKind, Topics,
};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use system_tests::{punches, services};
use tokio_util::sync::CancellationToken;

fn broker() -> (String, u16) {
    let addr = services::require_mqtt();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.parse().expect("port"))
}

/// Every test agent's token has this secret (only the agent id differs), so the acker can derive any agent's keys.
const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn keys_of(agent: &AgentId) -> AgentKeys {
    AgentKeys::from_token(&format!("agt_{agent}_{SECRET}")).expect("token").1
}

fn unique_prefix() -> String {
    format!("test-{:016x}", rand::random::<u64>())
}

/// What the fake acker does with a batch.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AckerMode {
    Store,
    Reject,
}

/// Subscribes to every agent's punches under `topics` and answers like central would.
async fn start_acker(topics: Topics, mode: AckerMode) -> (Arc<Mutex<HashSet<PunchKey>>>, CancellationToken) {
    let (host, port) = broker();
    let mut options = MqttOptions::new(format!("acker-{:08x}", rand::random::<u32>()), host, port);
    options.set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    client.subscribe(topics.all(TopicKind::Punches), QoS::AtLeastOnce).await.expect("subscribe");
    let stored = Arc::new(Mutex::new(HashSet::new()));
    let stop = CancellationToken::new();
    let (task_stored, task_stop) = (stored.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                event = eventloop.poll() => event,
                () = task_stop.cancelled() => return,
            };
            let publish = match event {
                Ok(Event::Incoming(Packet::Publish(publish))) => publish,
                Ok(_) => continue,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(topic) = topics.parse(&publish.topic) else { continue };
            let keys = keys_of(&topic.agent);
            let frame = SignedFrame::from_bytes(&publish.payload).expect("the agent publishes signed frames");
            let payload = keys.open(&frame, &topic.agent, FrameKind::Batch).expect("signed with the agent's key");
            let batch: PunchBatch = protocol::decode(payload, Encoding::Bincode).expect("valid batch");
            let ack = if mode == AckerMode::Store {
                let mut stored = task_stored.lock().expect("lock");
                stored.extend(batch.punches.iter().map(|p| p.punch.key()));
                BatchAck::stored(&batch, 0, 0, 0)
            } else {
                BatchAck::rejected(&batch, protocol::RejectionKind::Retry, "unknown site")
            };
            let payload = keys.seal_envelope(&topic.agent, &ack).expect("encode");
            let _ = client
                .publish(topics.topic(TopicKind::Acks, &topic.site, &topic.agent), QoS::AtLeastOnce, false, payload)
                .await;
        }
    });
    // Let the subscription settle before anything is published.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (stored, stop)
}

struct Rig {
    _dir: tempfile::TempDir,
    buffer: Buffer,
    faults: Faults,
    stop: CancellationToken,
}

async fn start_agent(topics: &Topics, ack_timeout: Duration) -> Rig {
    let (host, port) = broker();
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Faults::new();
    let buffer = Buffer::open(
        BufferOptions {
            path: dir.path().join("buffer"),
            max_disk_bytes: 1 << 30,
            cache_bytes: 4 << 20,
            key_retention: Duration::from_secs(86_400),
        },
        faults.clone(),
    )
    .expect("open");
    let agent: AgentId = format!("agent-{:08x}", rand::random::<u32>()).parse().expect("agent");
    let site: SiteId = punches::SITE.parse().expect("site");
    let stop = CancellationToken::new();
    let (link, _task) = MqttLink::start(
        MqttLinkOptions {
            host,
            port,
            tls: false,
            agent: agent.clone(),
            site: site.clone(),
            topics: topics.clone(),
            username: None,
            keys: keys_of(&agent),
            faults: faults.clone(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            keep_alive: Duration::from_secs(10),
            ack_timeout,
        },
        stop.clone(),
    )
    .expect("mqtt link");
    let forwarder = Forwarder::new(
        buffer.clone(),
        Link::Mqtt(link),
        ForwardOptions {
            agent,
            site,
            max_batch: 500,
            linger: Duration::from_millis(20),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        },
        faults.clone(),
        Arc::new(ForwardMetrics::new()),
    );
    tokio::spawn(forwarder.run(stop.clone()));
    Rig { _dir: dir, buffer, faults, stop }
}

async fn wait_drained(buffer: &Buffer, within: Duration) {
    let start = tokio::time::Instant::now();
    while buffer.depth() > 0 {
        assert!(start.elapsed() < within, "not drained within {within:?}: depth {}", buffer.depth());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn batches_are_deleted_only_when_central_acknowledges_them() {
    let topics = Topics::new(&unique_prefix()).expect("prefix");
    let (stored, acker) = start_acker(topics.clone(), AckerMode::Store).await;
    let rig = start_agent(&topics, Duration::from_secs(5)).await;
    rig.buffer.append(punches::range("DEV-M", 0, 2000)).await.expect("append");
    wait_drained(&rig.buffer, Duration::from_secs(30)).await;
    let expected: HashSet<_> = punches::range("DEV-M", 0, 2000).iter().map(|p| p.key()).collect();
    assert_eq!(*stored.lock().expect("lock"), expected);
    let start = tokio::time::Instant::now();
    // The buffer empties a moment before the forwarder clears its faults.
    while !rig.faults.snapshot().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", rig.faults.snapshot());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    rig.stop.cancel();
    acker.cancel();
}

#[tokio::test]
async fn a_puback_alone_deletes_nothing() {
    let topics = Topics::new(&unique_prefix()).expect("prefix");
    let rig = start_agent(&topics, Duration::from_millis(700)).await;
    rig.buffer.append(punches::range("DEV-M", 0, 300)).await.expect("append");
    // The broker accepts (PUBACKs) every publish, but nobody answers.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(rig.buffer.depth(), 300, "no central acknowledgement, nothing deleted");
    let fault = rig.faults.snapshot().into_iter().find(|f| f.code == faults::LINK_DOWN).expect("link_down");
    assert!(fault.message.contains("no acknowledgement"), "{}", fault.message);

    let (stored, acker) = start_acker(topics.clone(), AckerMode::Store).await;
    wait_drained(&rig.buffer, Duration::from_secs(30)).await;
    assert_eq!(stored.lock().expect("lock").len(), 300);
    rig.stop.cancel();
    acker.cancel();
}

#[tokio::test]
async fn a_rejected_answer_keeps_the_batch() {
    let topics = Topics::new(&unique_prefix()).expect("prefix");
    let (_, acker) = start_acker(topics.clone(), AckerMode::Reject).await;
    let rig = start_agent(&topics, Duration::from_secs(5)).await;
    rig.buffer.append(punches::range("DEV-M", 0, 40)).await.expect("append");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.buffer.depth(), 40);
    let fault = rig.faults.snapshot().into_iter().find(|f| f.code == faults::BATCH_REJECTED).expect("fault");
    assert!(fault.message.contains("unknown site"), "{}", fault.message);
    rig.stop.cancel();
    acker.cancel();
}

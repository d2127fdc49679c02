//! Central ingest over MQTT with a real Mosquitto: signed batches published on the punches topic are stored and
//! acknowledged, signed, on the agent's ack topic, poison is rejected (and not redelivered forever), unsigned batches
//! are refused unless `mqtt.allow_unsigned` is on, and two replicas on one PostgreSQL split a shared subscription
//! while storing every distinct punch exactly once.

use std::collections::HashMap;
use std::time::Duration;

use protocol::{AckOutcome, AgentKeys, BatchAck, Encoding, FrameKind, SignedFrame, TopicKind, Topics};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use system_tests::central::{batch, client, day_at, punches, Backend, CentralDb};
use system_tests::on_both_backends;
use system_tests::services::require_mqtt;
use tokio::sync::mpsc;

on_both_backends!(batches_over_mqtt_are_stored_and_acknowledged, unsigned_batches_only_where_allowed);

/// A unique topic prefix and group, so concurrent tests on the shared broker never see each other's messages.
fn unique(tag: &str) -> (String, String) {
    let id = format!("{:08x}", rand::random::<u32>());
    (format!("t-{tag}-{id}/att"), format!("g{id}"))
}

/// An acknowledgement as it arrived: on which topic, and whether central signed it (checked with the agent's keys).
type Arrived = (String, BatchAck, bool);

/// A test-side MQTT client standing in for agents: publishes batches (signed with the agents' keys) and collects the
/// acks, checking central's proof on every signed one.
struct FakeAgents {
    client: AsyncClient,
    acks: mpsc::UnboundedReceiver<Arrived>,
    topics: Topics,
    keys: HashMap<String, AgentKeys>,
}

impl FakeAgents {
    /// Connects, knowing the agents' tokens.
    async fn connect(prefix: &str, tokens: &[&str]) -> Self {
        let keys: HashMap<String, AgentKeys> = tokens
            .iter()
            .map(|token| {
                let (agent, keys) = AgentKeys::from_token(token).expect("an agent token");
                (agent.to_string(), keys)
            })
            .collect();
        let task_keys = keys.clone();
        let addr = require_mqtt();
        let (host, port) = addr.rsplit_once(':').expect("host:port");
        let id = format!("fake-agents-{:08x}", rand::random::<u32>());
        let mut options = MqttOptions::new(id, host, port.parse().expect("port"));
        options.set_keep_alive(Duration::from_secs(10)).set_max_packet_size(Some(8 * 1024 * 1024));
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let topics = Topics::new(prefix).unwrap();
        let (tx, acks) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        let ack_filter = topics.all(TopicKind::Acks);
        let topics_for_task = topics.clone();
        let sub_client = client.clone();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub_client.subscribe(ack_filter.clone(), QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        let _ = tx.send(read_ack(&topics_for_task, &task_keys, &topic, &p.payload));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if tx.is_closed() {
                            return;
                        }
                        eprintln!("fake agents: MQTT error {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed.recv())
            .await
            .expect("the test client subscribed to the ack topics within 10 s");
        Self { client, acks, topics, keys }
    }

    fn keys(&self, agent: &str) -> &AgentKeys {
        self.keys.get(agent).unwrap_or_else(|| panic!("no token for agent {agent}"))
    }

    /// Publishes `inner` (any bytes) in a frame signed with `signer`'s key, on `site`/`agent`'s punches topic.
    async fn publish_signed(&self, site: &str, agent: &str, signer: &str, inner: Vec<u8>) {
        let frame = self.keys(signer).seal(&signer.parse().unwrap(), FrameKind::Batch, inner);
        self.publish_raw(site, agent, frame.to_bytes().unwrap()).await;
    }

    async fn publish_raw(&self, site: &str, agent: &str, payload: Vec<u8>) {
        let topic = self.topics.topic(TopicKind::Punches, &site.parse().unwrap(), &agent.parse().unwrap());
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }

    /// Publishes a batch as its agent would: signed with the agent's key.
    async fn publish(&self, batch: &protocol::PunchBatch) {
        let payload = protocol::encode(batch, Encoding::Bincode).unwrap();
        self.publish_signed(batch.site.as_str(), batch.agent.as_str(), batch.agent.as_str(), payload).await;
    }

    /// Publishes a batch as an agent of the previous release would: bare, unsigned.
    async fn publish_unsigned(&self, batch: &protocol::PunchBatch) {
        let payload = protocol::encode(batch, Encoding::Bincode).unwrap();
        self.publish_raw(batch.site.as_str(), batch.agent.as_str(), payload).await;
    }

    async fn next_arrived(&mut self) -> Arrived {
        tokio::time::timeout(Duration::from_secs(30), self.acks.recv())
            .await
            .expect("an ack within 30 s")
            .expect("the ack channel is open")
    }

    /// The next ack, which central must have signed.
    async fn next_ack(&mut self) -> (String, BatchAck) {
        let (topic, ack, signed) = self.next_arrived().await;
        assert!(signed, "central answered a signed batch unsigned on {topic}: {ack:?}");
        (topic, ack)
    }
}

/// Reads an ack from the acks topic: a frame, whose proof must check out with central's key for the topic's agent,
/// or (answering an unsigned batch) a bare ack.
fn read_ack(topics: &Topics, keys: &HashMap<String, AgentKeys>, topic: &str, payload: &[u8]) -> Arrived {
    let agent = topics.parse(topic).expect("an agent topic").agent;
    if !protocol::signed::is_signed_frame(payload) {
        let ack = protocol::decode::<BatchAck>(payload, Encoding::Bincode)
            .unwrap_or_else(|e| panic!("central published an undecodable ack on {topic}: {e}"));
        return (topic.to_owned(), ack, false);
    }
    let frame = SignedFrame::from_bytes(payload).unwrap_or_else(|e| panic!("a bad frame on {topic}: {e}"));
    let keys = keys.get(agent.as_str()).unwrap_or_else(|| panic!("central signed an ack for unknown {agent}"));
    let inner = keys.open(&frame, &agent, FrameKind::Ack).unwrap_or_else(|e| panic!("ack on {topic}: {e}"));
    let ack = protocol::decode::<BatchAck>(inner, Encoding::Bincode).expect("a signed ack decodes");
    (topic.to_owned(), ack, true)
}

fn mqtt_env(prefix: &str, group: &str, client_id: &str) -> Vec<(String, String)> {
    let addr = require_mqtt();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    vec![
        ("CENTRAL_API_MQTT__HOST".into(), host.to_owned()),
        ("CENTRAL_API_MQTT__PORT".into(), port.to_owned()),
        ("CENTRAL_API_MQTT__TOPIC_PREFIX".into(), prefix.to_owned()),
        ("CENTRAL_API_MQTT__GROUP".into(), group.to_owned()),
        ("CENTRAL_API_MQTT__CLIENT_ID".into(), client_id.to_owned()),
        // A short session: the broker forgets this test's replica soon after the test.
        ("CENTRAL_API_MQTT__SESSION_EXPIRY_SECS".into(), "30".into()),
    ]
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Waits until a replica announces that its shared subscription is in place.
async fn wait_until_consuming(central: &mut system_tests::central::Central) {
    central
        .process
        .wait_for_line("central-api consuming MQTT", Duration::from_secs(30))
        .await
        .expect("central-api subscribed to the punch topics");
}

async fn batches_over_mqtt_are_stored_and_acknowledged(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    db.create_site("plant-2").await.unwrap();
    let token_1 = db.create_agent("gate-1", "plant-1").await.unwrap();
    let token_2 = db.create_agent("gate-2", "plant-2").await.unwrap();
    let ghost = format!("agt_ghost_{}", "ab".repeat(32));
    let (prefix, group) = unique("e2e");
    let mut agents = FakeAgents::connect(&prefix, &[&token_1, &token_2, &ghost]).await;
    let env = mqtt_env(&prefix, &group, &format!("central-{group}"));
    let mut central = db.serve(&refs(&env)).await.unwrap();
    wait_until_consuming(&mut central).await;

    let first = batch("gate-1", "plant-1", 10, punches("plant-1", "DEV-A", &["1001", "1002"], day_at(8), 20));
    agents.publish(&first).await;
    let (topic, ack) = agents.next_ack().await;
    assert_eq!(topic, format!("{prefix}/v1/plant-1/gate-1/acks"));
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 20, duplicates: 0, quarantined: 0 });
    assert_eq!((ack.first_seq, ack.last_seq), (10, 29));
    assert_eq!(db.all_logs().await, 20);

    // Redelivery of the same batch: acknowledged again, nothing new.
    agents.publish(&first).await;
    let (_, ack) = agents.next_ack().await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 0, duplicates: 20, quarantined: 0 });
    assert_eq!(db.all_logs().await, 20);

    // Poison signed by gate-1: garbage bytes in the frame.
    agents.publish_signed("plant-1", "gate-1", "gate-1", vec![0xff, 0x00, 0x13]).await;
    let (topic, ack) = agents.next_ack().await;
    assert_eq!(topic, format!("{prefix}/v1/plant-1/gate-1/acks"));
    let AckOutcome::Rejected { reason, .. } = &ack.outcome else { panic!("expected a rejection, got {ack:?}") };
    assert!(reason.contains("cannot decode the batch"), "{reason}");

    // Topic says gate-1 at plant-1 (and gate-1 signed it), payload says gate-2 at plant-2.
    let foreign = batch("gate-2", "plant-2", 1, punches("plant-2", "DEV-B", &["5"], day_at(8), 3));
    let payload = protocol::encode(&foreign, Encoding::Bincode).unwrap();
    agents.publish_signed("plant-1", "gate-1", "gate-1", payload).await;
    let (_, ack) = agents.next_ack().await;
    let AckOutcome::Rejected { reason, .. } = &ack.outcome else { panic!("expected a rejection, got {ack:?}") };
    assert!(reason.contains("topic is for agent gate-1"), "{reason}");

    // Garbage without a frame, and an agent central does not know: nothing proves who sent them, so they are
    // dropped unanswered (a forger must not make central publish on an agent's acks topic).
    agents.publish_raw("plant-1", "gate-1", vec![0xff, 0x00, 0x13]).await;
    let stranger = batch("ghost", "plant-1", 1, punches("plant-1", "DEV-A", &["5"], day_at(8), 3));
    agents.publish(&stranger).await;
    // An agent bound to another site: proven, so answered.
    let wrong_site = batch("gate-2", "plant-1", 1, punches("plant-1", "DEV-A", &["5"], day_at(8), 3));
    agents.publish(&wrong_site).await;
    let (_, ack) = agents.next_ack().await;
    let AckOutcome::Rejected { reason, .. } = &ack.outcome else { panic!("expected a rejection, got {ack:?}") };
    assert!(reason.contains("bound to site plant-2"), "{reason}");
    assert_eq!(db.all_logs().await, 20, "rejected batches leave no rows");

    // A refused message is not redelivered: no further ack arrives.
    let extra = tokio::time::timeout(Duration::from_millis(1500), agents.acks.recv()).await;
    assert!(extra.is_err(), "unexpected extra ack: {extra:?}");
    let http = client(None);
    assert!(central.metric(&http, "central_batches_rejected_total{path=\"mqtt\"}").await.unwrap() >= 4);
    let faults = db.faults_of("gate-1").await.unwrap();
    assert!(
        faults
            .iter()
            .any(|(code, message)| code == "mqtt_unsigned" && message.contains("3 bytes that are not a batch")),
        "{faults:?}"
    );
    drop(central);
    db.cleanup().await;
}

/// An agent of the previous release publishes bare batches: refused (with a fault for the agent) unless
/// `mqtt.allow_unsigned` is on; then stored and answered bare, in the batch's version, with one warning per agent.
async fn unsigned_batches_only_where_allowed(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let (prefix, group) = unique("unsigned");
    let mut agents = FakeAgents::connect(&prefix, &[&token]).await;
    let env = mqtt_env(&prefix, &group, &format!("central-{group}"));
    let mut central = db.serve(&refs(&env)).await.unwrap();
    wait_until_consuming(&mut central).await;

    let old = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1001"], day_at(8), 4));
    agents.publish_unsigned(&old).await;
    let no_ack = tokio::time::timeout(Duration::from_millis(1500), agents.acks.recv()).await;
    assert!(no_ack.is_err(), "an unsigned batch is not answered: {no_ack:?}");
    assert_eq!(db.all_logs().await, 0);
    let faults = db.faults_of("gate-1").await.unwrap();
    assert!(faults.iter().any(|(c, m)| c == "mqtt_unsigned" && m.contains("mqtt.allow_unsigned is off")), "{faults:?}");
    drop(central);

    let mut allowed = env.clone();
    allowed.push(("CENTRAL_API_MQTT__ALLOW_UNSIGNED".into(), "true".into()));
    let mut central = db.serve(&refs(&allowed)).await.unwrap();
    wait_until_consuming(&mut central).await;
    agents.publish_unsigned(&old).await;
    let (_, ack, signed) = agents.next_arrived().await;
    assert!(!signed, "an unsigned batch is answered unsigned, as its agent expects");
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 4, duplicates: 0, quarantined: 0 });
    let next = batch("gate-1", "plant-1", 5, punches("plant-1", "DEV-A", &["1002"], day_at(9), 2));
    agents.publish_unsigned(&next).await;
    let (_, ack, _) = agents.next_arrived().await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 2, duplicates: 0, quarantined: 0 });
    assert_eq!(db.all_logs().await, 6);
    // A signed batch still gets a signed answer.
    let signed_batch = batch("gate-1", "plant-1", 7, punches("plant-1", "DEV-A", &["1003"], day_at(10), 1));
    agents.publish(&signed_batch).await;
    let (_, ack) = agents.next_ack().await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 1, duplicates: 0, quarantined: 0 });
    let warnings = db.faults_of("gate-1").await.unwrap();
    let accepted: Vec<_> =
        warnings.iter().filter(|(c, m)| c == "mqtt_unsigned" && m.contains("accepted an unsigned")).collect();
    assert_eq!(accepted.len(), 1, "one warning per agent: {warnings:?}");
    drop(central);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_load_and_store_each_punch_once() {
    let db = CentralDb::new(Backend::Postgres).await;
    let sites = ["plant-1", "plant-2", "plant-3", "plant-4"];
    let mut tokens = Vec::new();
    for (i, site) in sites.iter().enumerate() {
        db.create_site(site).await.unwrap();
        tokens.push(db.create_agent(&format!("gate-{}", i + 1), site).await.unwrap());
    }
    let (prefix, group) = unique("share");
    let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let mut agents = FakeAgents::connect(&prefix, &tokens).await;
    let env_a = mqtt_env(&prefix, &group, &format!("central-a-{group}"));
    let env_b = mqtt_env(&prefix, &group, &format!("central-b-{group}"));
    let mut replica_a = db.serve(&refs(&env_a)).await.unwrap();
    let mut replica_b = db.serve(&refs(&env_b)).await.unwrap();
    wait_until_consuming(&mut replica_a).await;
    wait_until_consuming(&mut replica_b).await;

    // 4 agents x 15 batches x 40 punches; every third batch is published twice (a redelivery).
    let mut published = 0usize;
    let mut distinct = 0usize;
    for b in 0..15u64 {
        for (i, site) in sites.iter().enumerate() {
            let device = format!("DEV-{}", i + 1);
            let start = day_at(6) + chrono::Duration::hours(b as i64);
            let list = punches(site, &device, &["1001", "1002", "1003"], start, 40);
            let batch = batch(&format!("gate-{}", i + 1), site, 100 + b * 40, list);
            agents.publish(&batch).await;
            published += 1;
            if b % 3 == 0 {
                agents.publish(&batch).await;
                published += 1;
            }
            distinct += 40;
        }
    }

    let mut stored = HashMap::<String, (u32, u32)>::new();
    for _ in 0..published {
        let (topic, ack) = agents.next_ack().await;
        let AckOutcome::Stored { new, duplicates, .. } = ack.outcome else { panic!("unexpected rejection: {ack:?}") };
        let entry = stored.entry(topic).or_default();
        entry.0 += new;
        entry.1 += duplicates;
    }
    let new_total: u32 = stored.values().map(|v| v.0).sum();
    let dup_total: u32 = stored.values().map(|v| v.1).sum();
    assert_eq!(new_total as usize, distinct, "each distinct punch was new exactly once");
    assert_eq!(dup_total, 5 * 4 * 40, "each redelivered batch came back as duplicates");
    assert_eq!(db.all_logs().await as usize, distinct, "AllLogs holds every distinct punch once");

    let http = client(None);
    let series = "central_batches_stored_total{path=\"mqtt\"}";
    let a = replica_a.metric(&http, series).await.unwrap();
    let b = replica_b.metric(&http, series).await.unwrap();
    eprintln!("replica a handled {a} batches, replica b handled {b}");
    assert!(a > 0 && b > 0, "both replicas consumed: a={a} b={b}");
    assert!(a + b >= published as u64, "every publish was handled: a={a} b={b} published={published}");
    drop(replica_a);
    drop(replica_b);
    db.cleanup().await;
}

/// A replica killed while its batch waits on the database never PUBACKed it, so the broker delivers the batch again
/// when the replica's persistent session reconnects, and it is stored then: nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_in_flight_when_a_replica_dies_is_redelivered() {
    use sqlx::Connection;
    let db = CentralDb::new(Backend::Postgres).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let (prefix, group) = unique("crash");
    let mut agents = FakeAgents::connect(&prefix, &[&token]).await;
    let env = mqtt_env(&prefix, &group, &format!("central-{group}"));
    let mut central = db.serve(&refs(&env)).await.unwrap();
    wait_until_consuming(&mut central).await;

    // Hold a lock that makes the insert wait, publish, and wait until central's insert is blocked on it.
    let mut locker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE all_logs IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();
    let list = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1001"], day_at(8), 5));
    agents.publish(&list).await;
    let mut blocked = false;
    for _ in 0..100 {
        let waiting = db
            .scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'central-api' \
                 AND wait_event_type = 'Lock' AND datname = current_database()",
            )
            .await
            .unwrap();
        if waiting > 0 {
            blocked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(blocked, "central's insert never waited on the lock");

    // Crash before commit, then let the database go.
    central.process.kill().await.unwrap();
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let no_ack = tokio::time::timeout(Duration::from_millis(500), agents.acks.recv()).await;
    assert!(no_ack.is_err(), "nothing may be acknowledged by a replica that died before commit: {no_ack:?}");
    assert_eq!(db.all_logs().await, 0);

    // The same replica (same client id, persistent session) comes back and gets the batch again.
    let mut restarted = db.serve(&refs(&env)).await.unwrap();
    wait_until_consuming(&mut restarted).await;
    let (_, ack) = agents.next_ack().await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 5, duplicates: 0, quarantined: 0 });
    assert_eq!(db.all_logs().await, 5);
    drop(restarted);
    db.cleanup().await;
}

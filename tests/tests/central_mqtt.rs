//! Central ingest over MQTT with a real Mosquitto: batches published on the punches topic are stored and acknowledged
//! on the agent's ack topic, poison is rejected (and not redelivered forever), and two replicas on one PostgreSQL
//! split a shared subscription while storing every distinct punch exactly once.

use std::collections::HashMap;
use std::time::Duration;

use protocol::{AckOutcome, BatchAck, Encoding, TopicKind, Topics};
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use system_tests::central::{batch, client, day_at, punches, Backend, CentralDb};
use system_tests::on_both_backends;
use system_tests::services::require_mqtt;
use tokio::sync::mpsc;

on_both_backends!(batches_over_mqtt_are_stored_and_acknowledged);

/// A unique topic prefix and group, so concurrent tests on the shared broker never see each other's messages.
fn unique(tag: &str) -> (String, String) {
    let id = format!("{:08x}", rand::random::<u32>());
    (format!("t-{tag}-{id}/att"), format!("g{id}"))
}

/// A test-side MQTT client standing in for agents: publishes batches and collects the acks.
struct FakeAgents {
    client: AsyncClient,
    acks: mpsc::UnboundedReceiver<(String, BatchAck)>,
    topics: Topics,
}

impl FakeAgents {
    async fn connect(prefix: &str) -> Self {
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
                        match protocol::decode::<BatchAck>(&p.payload, Encoding::Bincode) {
                            Ok(ack) => {
                                let _ = tx.send((topic, ack));
                            }
                            Err(e) => panic!("central published an undecodable ack on {topic}: {e}"),
                        }
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
        Self { client, acks, topics }
    }

    async fn publish_raw(&self, site: &str, agent: &str, payload: Vec<u8>) {
        let topic = self.topics.topic(TopicKind::Punches, &site.parse().unwrap(), &agent.parse().unwrap());
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }

    async fn publish(&self, batch: &protocol::PunchBatch) {
        let payload = protocol::encode(batch, Encoding::Bincode).unwrap();
        self.publish_raw(batch.site.as_str(), batch.agent.as_str(), payload).await;
    }

    async fn next_ack(&mut self) -> (String, BatchAck) {
        tokio::time::timeout(Duration::from_secs(30), self.acks.recv())
            .await
            .expect("an ack within 30 s")
            .expect("the ack channel is open")
    }
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
    db.create_agent("gate-1", "plant-1").await.unwrap();
    db.create_agent("gate-2", "plant-2").await.unwrap();
    let (prefix, group) = unique("e2e");
    let mut agents = FakeAgents::connect(&prefix).await;
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

    // Poison: garbage bytes on gate-1's topic.
    agents.publish_raw("plant-1", "gate-1", vec![0xff, 0x00, 0x13]).await;
    let (topic, ack) = agents.next_ack().await;
    assert_eq!(topic, format!("{prefix}/v1/plant-1/gate-1/acks"));
    let AckOutcome::Rejected { reason, .. } = &ack.outcome else { panic!("expected a rejection, got {ack:?}") };
    assert!(reason.contains("cannot decode the batch"), "{reason}");

    // Topic says gate-1 at plant-1, payload says gate-2 at plant-2.
    let foreign = batch("gate-2", "plant-2", 1, punches("plant-2", "DEV-B", &["5"], day_at(8), 3));
    let payload = protocol::encode(&foreign, Encoding::Bincode).unwrap();
    agents.publish_raw("plant-1", "gate-1", payload).await;
    let (_, ack) = agents.next_ack().await;
    let AckOutcome::Rejected { reason, .. } = &ack.outcome else { panic!("expected a rejection, got {ack:?}") };
    assert!(reason.contains("topic is for agent gate-1"), "{reason}");

    // An agent central does not know, and one bound to another site.
    let stranger = batch("ghost", "plant-1", 1, punches("plant-1", "DEV-A", &["5"], day_at(8), 3));
    agents.publish(&stranger).await;
    let (topic, ack) = agents.next_ack().await;
    assert!(topic.ends_with("/plant-1/ghost/acks"), "{topic}");
    let AckOutcome::Rejected { reason, .. } = &ack.outcome else { panic!("expected a rejection, got {ack:?}") };
    assert!(reason.contains("ghost is not registered"), "{reason}");
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
    drop(central);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_load_and_store_each_punch_once() {
    let db = CentralDb::new(Backend::Postgres).await;
    let sites = ["plant-1", "plant-2", "plant-3", "plant-4"];
    for (i, site) in sites.iter().enumerate() {
        db.create_site(site).await.unwrap();
        db.create_agent(&format!("gate-{}", i + 1), site).await.unwrap();
    }
    let (prefix, group) = unique("share");
    let mut agents = FakeAgents::connect(&prefix).await;
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
    db.create_agent("gate-1", "plant-1").await.unwrap();
    let (prefix, group) = unique("crash");
    let mut agents = FakeAgents::connect(&prefix).await;
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

//! On MQTT, proof decides what central stores and what an agent deletes, whatever the broker lets through (issue 20).
//!
//! - On the anonymous test broker, where anyone may publish anything, the signed frames alone stop a batch forged on
//!   agent B's punches topic (a MAC made with agent A's key, or no MAC at all) and acknowledgements forged or
//!   replayed on B's acks topic for the batch B is waiting on: nothing forged is stored, nothing is deleted from B's
//!   buffer, central's fault history and B's faults say what was tried, and the devices page shows them.
//! - On a private Mosquitto with the shipped configuration (`configs/mosquitto/`), the broker already refuses a
//!   client without credentials, and a client with A's credentials publishing on B's topics or reading B's acks,
//!   while B (with the login `create-agent` printed) and a central replica (with its own login) work.

use std::time::Duration;

use edge_agent::buffer::{Buffer, BufferOptions};
use edge_agent::faults::{self, Faults};
use edge_agent::forward::{ForwardMetrics, ForwardOptions, Forwarder, Link, MqttLink, MqttLinkOptions};
use protocol::{
    AckOutcome, AgentId, AgentKeys, AgentStatus, BatchAck, Encoding, FrameKind, PunchBatch, SignedFrame, SiteId,
    TopicKind, Topics, PROTOCOL_VERSION,
};
use reqwest::header;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use system_tests::broker::SecuredBroker;
use system_tests::central::{run_cli, Backend, Central, CentralDb};
use system_tests::{on_both_backends, punches, services};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

on_both_backends!(proof_alone_stops_forged_batches_and_acks);

const SITE: &str = punches::SITE;
const WAIT: Duration = Duration::from_secs(20);

/// What a raw MQTT client saw.
#[derive(Debug)]
enum Seen {
    Connected,
    Refused(ConnectReturnCode),
    Message { topic: String, payload: Vec<u8> },
    PubAck(PubAckReason),
    SubAck(Vec<SubscribeReasonCode>),
}

/// A bare MQTT 5 client (an attacker, or an observer reading what passes).
struct Raw {
    client: AsyncClient,
    seen: mpsc::UnboundedReceiver<Seen>,
    stop: CancellationToken,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Raw {
    /// Connects and waits for the broker's answer (connected or refused).
    async fn connect(port: u16, client_id: &str, login: Option<(&str, &str)>) -> (Self, Seen) {
        let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(10)).set_max_packet_size(Some(8 << 20));
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, seen) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let task_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    event = eventloop.poll() => event,
                    () = task_stop.cancelled() => return,
                };
                let seen = match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Seen::Connected,
                    Ok(Event::Incoming(Packet::Publish(p))) => Seen::Message {
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        payload: p.payload.to_vec(),
                    },
                    Ok(Event::Incoming(Packet::PubAck(ack))) => Seen::PubAck(ack.reason),
                    Ok(Event::Incoming(Packet::SubAck(ack))) => Seen::SubAck(ack.return_codes),
                    Ok(_) => continue,
                    Err(ConnectionError::ConnectionRefused(code)) => {
                        let _ = tx.send(Seen::Refused(code));
                        return;
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });
        let mut raw = Self { client, seen, stop };
        let answer =
            raw.next("the broker's answer to CONNECT", |s| matches!(s, Seen::Connected | Seen::Refused(_))).await;
        (raw, answer)
    }

    /// The next event matching `wanted`, skipping others.
    async fn next(&mut self, what: &str, wanted: impl Fn(&Seen) -> bool) -> Seen {
        let found = tokio::time::timeout(WAIT, async {
            loop {
                match self.seen.recv().await {
                    Some(seen) if wanted(&seen) => return seen,
                    Some(_) => {}
                    None => panic!("the client stopped while waiting for {what}"),
                }
            }
        });
        found.await.unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
    }

    /// The next message on `topic`.
    async fn message_on(&mut self, topic: &str) -> Vec<u8> {
        match self
            .next(&format!("message on {topic}"), |s| matches!(s, Seen::Message { topic: t, .. } if t == topic))
            .await
        {
            Seen::Message { payload, .. } => payload,
            other => unreachable!("{other:?}"),
        }
    }

    async fn subscribe(&mut self, filter: &str) -> Vec<SubscribeReasonCode> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.expect("subscribe queued");
        match self.next("SUBACK", |s| matches!(s, Seen::SubAck(_))).await {
            Seen::SubAck(codes) => codes,
            other => unreachable!("{other:?}"),
        }
    }

    /// Publishes with QoS 1 and returns the broker's PUBACK reason.
    async fn publish(&mut self, topic: &str, payload: Vec<u8>) -> PubAckReason {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.expect("publish queued");
        match self.next("PUBACK", |s| matches!(s, Seen::PubAck(_))).await {
            Seen::PubAck(reason) => reason,
            other => unreachable!("{other:?}"),
        }
    }
}

/// A real agent in this process: its buffer, MQTT link and forwarder.
struct AgentRig {
    _dir: tempfile::TempDir,
    agent: AgentId,
    buffer: Buffer,
    faults: Faults,
    link: MqttLink,
    stop: CancellationToken,
}

impl Drop for AgentRig {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start_agent(port: u16, topics: &Topics, token: &str) -> AgentRig {
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
    .expect("open the buffer");
    let (agent, keys) = AgentKeys::from_token(token).expect("an agent token");
    let site: SiteId = SITE.parse().expect("site");
    let stop = CancellationToken::new();
    let (link, _task) = MqttLink::start(
        MqttLinkOptions {
            host: "127.0.0.1".into(),
            port,
            tls: false,
            agent: agent.clone(),
            site: site.clone(),
            topics: topics.clone(),
            username: None,
            keys,
            faults: faults.clone(),
            ca_file: None,
            client_cert: None,
            client_key: None,
            keep_alive: Duration::from_secs(10),
            ack_timeout: Duration::from_secs(2),
        },
        stop.clone(),
    )
    .expect("mqtt link");
    let forwarder = Forwarder::new(
        buffer.clone(),
        Link::Mqtt(link.clone()),
        ForwardOptions {
            agent: agent.clone(),
            site,
            max_batch: 500,
            linger: Duration::from_millis(20),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        },
        faults.clone(),
        std::sync::Arc::new(ForwardMetrics::new()),
    );
    tokio::spawn(forwarder.run(stop.clone()));
    AgentRig { _dir: dir, agent, buffer, faults, link, stop }
}

async fn wait_drained(buffer: &Buffer) {
    let start = tokio::time::Instant::now();
    while buffer.depth() > 0 {
        assert!(start.elapsed() < WAIT, "not drained within {WAIT:?}: depth {}", buffer.depth());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `check` holds, polling.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let start = tokio::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < WAIT, "{what} did not happen within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The agent's current `unverified_ack` fault message, if raised.
fn unverified(rig: &AgentRig) -> Option<String> {
    rig.faults.snapshot().into_iter().find(|f| f.code == faults::UNVERIFIED_ACK).map(|f| f.message)
}

async fn wait_unverified_containing(rig: &AgentRig, text: &str) -> String {
    let start = tokio::time::Instant::now();
    loop {
        if let Some(message) = unverified(rig).filter(|m| m.contains(text)) {
            return message;
        }
        assert!(start.elapsed() < WAIT, "no unverified_ack fault saying {text:?}; faults: {:?}", rig.faults.snapshot());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn mqtt_env(port: u16, prefix: &str, group: &str, login: Option<(&str, &str)>) -> Vec<(String, String)> {
    let mut env = vec![
        ("CENTRAL_API_MQTT__HOST".into(), "127.0.0.1".into()),
        ("CENTRAL_API_MQTT__PORT".into(), port.to_string()),
        ("CENTRAL_API_MQTT__TOPIC_PREFIX".into(), prefix.to_owned()),
        ("CENTRAL_API_MQTT__GROUP".into(), group.to_owned()),
        ("CENTRAL_API_MQTT__CLIENT_ID".into(), format!("central-{group}")),
        ("CENTRAL_API_MQTT__SESSION_EXPIRY_SECS".into(), "60".into()),
    ];
    if let Some((user, password)) = login {
        env.push(("CENTRAL_API_MQTT__USERNAME".into(), user.to_owned()));
        env.push(("CENTRAL_API_MQTT__PASSWORD".into(), password.to_owned()));
    }
    env
}

async fn serve(db: &CentralDb, env: &[(String, String)]) -> Central {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut central = db.serve(&refs).await.expect("central-api serves");
    central.process.wait_for_line("central-api consuming MQTT", WAIT).await.expect("central-api subscribed");
    central
}

fn forged_batch(agent: &str, first_seq: u64) -> PunchBatch {
    system_tests::central::batch(agent, SITE, first_seq, punches::range("FORGED", 0, 3))
}

fn bare<E: protocol::Envelope>(envelope: &E) -> Vec<u8> {
    protocol::encode(envelope, Encoding::Bincode).expect("encode")
}

/// What the batch in a frame says, read the way anyone on the broker can read it (without checking the MAC).
fn batch_in(frame: &[u8]) -> PunchBatch {
    let frame = SignedFrame::from_bytes(frame).expect("a signed frame");
    protocol::decode(&frame.payload, Encoding::Bincode).expect("a batch")
}

fn status_of(rig: &AgentRig) -> AgentStatus {
    AgentStatus {
        version: PROTOCOL_VERSION,
        agent: rig.agent.clone(),
        site: SITE.parse().expect("site"),
        sent_at: chrono::Utc::now(),
        agent_version: "test".into(),
        uptime_secs: 1,
        buffer_depth: rig.buffer.depth(),
        oldest_unacked_age_secs: None,
        devices: Vec::new(),
        faults: rig.faults.snapshot(),
        command_results: Vec::new(),
        hostname: "test-host".into(),
        dead_letters: 0,
        config_version: None,
    }
}

/// The devices page as the root administrator sees it.
async fn devices_page(db: &CentralDb, central: &Central) -> String {
    db.cli_with_stdin(&["create-admin", "root", "--password-stdin"], Some("root-password-1\n")).await.expect("admin");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let login = http
        .post(format!("{}/login", central.url))
        .form(&[("username", "root"), ("password", "root-password-1"), ("next", "/devices")])
        .send()
        .await
        .expect("POST /login");
    let cookie = login.headers().get(header::SET_COOKIE).expect("a session cookie").to_str().expect("ascii");
    let cookie = cookie.split(';').next().expect("name=value").to_owned();
    let page = http.get(format!("{}/devices", central.url)).header(header::COOKIE, cookie).send().await;
    page.expect("GET /devices").text().await.expect("page")
}

async fn proof_alone_stops_forged_batches_and_acks(backend: Backend) {
    let addr = services::require_mqtt();
    let port: u16 = addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("TEST_MQTT_ADDR is host:port");
    let db = CentralDb::new(backend).await;
    db.create_site(SITE).await.unwrap();
    // Agent ids are client ids: unique, so the tests on the shared broker never take over each other's sessions.
    let id = format!("{:08x}", rand::random::<u32>());
    let (name_a, name_b) = (format!("gate-a-{id}"), format!("gate-b-{id}"));
    let token_a = db.create_agent(&name_a, SITE).await.unwrap();
    let token_b = db.create_agent(&name_b, SITE).await.unwrap();
    let prefix = format!("t-auth-{id}/att");
    let topics = Topics::new(&prefix).unwrap();
    let (site, gate_b): (SiteId, AgentId) = (SITE.parse().unwrap(), name_b.parse().unwrap());
    let b_punches = topics.topic(TopicKind::Punches, &site, &gate_b);
    let b_status = topics.topic(TopicKind::Status, &site, &gate_b);
    let b_acks = topics.topic(TopicKind::Acks, &site, &gate_b);
    let (_, keys_a) = AgentKeys::from_token(&token_a).unwrap();
    let (_, keys_b) = AgentKeys::from_token(&token_b).unwrap();

    // Anyone may read and write anything on this broker.
    let (mut observer, _) = Raw::connect(port, &format!("observer-{id}"), None).await;
    observer.subscribe(&format!("{prefix}/#")).await;
    let (mut attacker, _) = Raw::connect(port, &format!("attacker-{id}"), None).await;
    let env = mqtt_env(port, &prefix, &format!("g{id}"), None);
    let mut central = serve(&db, &env).await;
    let agent_b = start_agent(port, &topics, &token_b).await;

    // The genuine path: B's signed batch is stored and central's signed answer deletes it.
    agent_b.buffer.append(punches::range("DEV-B", 0, 5)).await.unwrap();
    wait_drained(&agent_b.buffer).await;
    assert_eq!(db.all_logs().await, 5);
    let genuine_batch = observer.message_on(&b_punches).await;
    let genuine_ack = observer.message_on(&b_acks).await;

    // Forged batches on B's punches topic: a frame naming B with a MAC made with A's key, and a bare batch.
    let forged = forged_batch(&name_b, 100);
    attacker.publish(&b_punches, keys_a.seal_envelope(&gate_b, &forged).unwrap()).await;
    attacker.publish(&b_punches, bare(&forged)).await;
    // A captured batch published again is harmless: central counts duplicates and answers for that old batch.
    attacker.publish(&b_punches, genuine_batch.clone()).await;
    let replay_answer = observer.message_on(&b_acks).await;
    let frame = SignedFrame::from_bytes(&replay_answer).unwrap();
    let ack: BatchAck =
        protocol::decode(keys_b.open(&frame, &gate_b, FrameKind::Ack).unwrap(), Encoding::Bincode).unwrap();
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 0, duplicates: 5, quarantined: 0 });
    assert!(ack.answers(&batch_in(&genuine_batch)));
    eventually("central recorded both refusals", || async {
        let codes: Vec<String> = db.faults_of(&name_b).await.unwrap().into_iter().map(|f| f.0).collect();
        codes.iter().any(|c| c == "mqtt_bad_proof") && codes.iter().any(|c| c == "mqtt_unsigned")
    })
    .await;
    let faults = db.faults_of(&name_b).await.unwrap();
    let message = |code: &str| faults.iter().find(|f| f.0 == code).map(|f| f.1.clone()).unwrap();
    let bad_proof = message("mqtt_bad_proof");
    for text in [
        format!("refused a batch on {b_punches}"),
        format!("batch {} of 3 punches, seq 100..=102", forged.batch_id),
        format!("does not match the agent's key for agent {name_b}"),
        "nothing was stored".into(),
    ] {
        assert!(bad_proof.contains(&text), "{text:?} not in {bad_proof}");
    }
    let unsigned = message("mqtt_unsigned");
    assert!(unsigned.contains("refused an unsigned batch") && unsigned.contains("seq 100..=102"), "{unsigned}");
    assert!(unsigned.contains("mqtt.allow_unsigned is off"), "{unsigned}");
    assert!(db.faults_of(&name_a).await.unwrap().is_empty(), "the faults are B's, whose topic was used");
    // A status with a MAC made with A's key is refused as well.
    let mut fake_status = status_of(&agent_b);
    fake_status.buffer_depth = 999_999;
    attacker.publish(&b_status, keys_a.seal_envelope(&gate_b, &fake_status).unwrap()).await;
    eventually("central refused the forged status", || async {
        db.faults_of(&name_b).await.unwrap().iter().any(|f| f.0 == "mqtt_bad_proof" && f.1.contains("status"))
    })
    .await;
    assert_eq!(db.all_logs().await, 5, "nothing forged was stored");

    // Forged and replayed acknowledgements while B waits for the answer to its next batch (central stopped, so only
    // the forgeries arrive).
    central.process.kill().await.unwrap();
    agent_b.buffer.append(punches::range("DEV-B", 5, 10)).await.unwrap();
    let in_flight_frame = observer.message_on(&b_punches).await;
    let in_flight = batch_in(&in_flight_frame);
    assert_eq!((in_flight.first_seq, in_flight.last_seq), (6, 10));
    let exact = BatchAck::stored(&in_flight, 5, 0, 0);
    let range = format!("seq 6..=10 of batch {}", in_flight.batch_id);
    attacker.publish(&b_acks, bare(&exact)).await;
    let fault = wait_unverified_containing(&agent_b, "carries no proof").await;
    assert!(fault.contains(&range) && fault.contains(&b_acks), "{fault}");
    let with_a_key = keys_a.seal(&gate_b, FrameKind::Ack, bare(&exact)).to_bytes().unwrap();
    attacker.publish(&b_acks, with_a_key).await;
    let fault = wait_unverified_containing(&agent_b, &format!("does not match central's key for agent {name_b}")).await;
    assert!(fault.contains(&range), "{fault}");
    // A forged permanent refusal would set the batch aside as dead letters: refused like the rest.
    let refusal = BatchAck::rejected(&in_flight, protocol::RejectionKind::Permanent, "forged refusal");
    attacker.publish(&b_acks, bare(&refusal)).await;
    wait_unverified_containing(&agent_b, "(rejected, Permanent)").await;
    // B's own signed batch, published as an answer: the agent's key signs batches, never acknowledgements.
    attacker.publish(&b_acks, in_flight_frame.clone()).await;
    wait_unverified_containing(&agent_b, "carries a batch where a acknowledgement belongs").await;
    // Central's genuine answer to B's first batch, replayed.
    attacker.publish(&b_acks, genuine_ack.clone()).await;
    // Central's genuine answer to this very range, but for the earlier attempt: once B has sent the range again
    // (under a new batch id, after its ack timeout), that answer is not the answer to what B waits for.
    let resent = batch_in(&observer.message_on(&b_punches).await);
    assert_eq!((resent.first_seq, resent.last_seq), (6, 10));
    assert_ne!(resent.batch_id, in_flight.batch_id);
    let earlier_answer = keys_b.seal(&gate_b, FrameKind::Ack, bare(&exact)).to_bytes().unwrap();
    attacker.publish(&b_acks, earlier_answer).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(agent_b.buffer.depth(), 5, "no forged or replayed acknowledgement deleted anything");
    assert_eq!(agent_b.buffer.dead_letter_count(), 0, "nor set anything aside");

    // Central back: B's batch goes through; nothing forged was ever stored.
    let central = serve(&db, &env).await;
    wait_drained(&agent_b.buffer).await;
    assert_eq!(db.all_logs().await, 10);
    assert_eq!(db.scalar("SELECT count(*) FROM all_logs WHERE device_serial = 'FORGED'").await.unwrap(), 0);

    // B's signed status carries its unverified_ack fault to central, which shows it with its own refusals.
    agent_b.link.send_status(&status_of(&agent_b)).await.unwrap();
    eventually("central stored B's status", || async {
        db.faults_of(&name_b).await.unwrap().iter().any(|f| f.0 == faults::UNVERIFIED_ACK)
    })
    .await;
    let depth = db.scalar(&format!("SELECT buffer_depth FROM agent_status WHERE agent_id = '{name_b}'")).await.unwrap();
    assert_eq!(depth, 0, "the forged status's depth was never stored");
    let page = devices_page(&db, &central).await;
    for code in ["mqtt_bad_proof", "mqtt_unsigned", "unverified_ack"] {
        assert!(page.contains(code), "the devices page lists {code}");
    }
    drop(central);
    drop(agent_b);
    db.cleanup().await;
}

/// Creates an agent with `central-api create-agent`, returning its token and the broker password it printed, which
/// must be the one the agent derives from the token.
async fn create_agent(db: &CentralDb, agent: &str) -> (String, String) {
    let output = run_cli(&["create-agent", agent, "--site", SITE], &db.env(), None).await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let password = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("create-agent printed no broker password: {stderr}"))
        .to_owned();
    let (_, keys) = AgentKeys::from_token(&token).unwrap();
    assert_eq!(password, keys.broker_password());
    assert!(stderr.contains(&format!("username: {agent}")), "{stderr}");
    assert!(stderr.contains("transport = \"mqtt\""), "an agent configuration snippet: {stderr}");
    let again = db.cli(&["mqtt-login", agent]).await.unwrap();
    assert!(again.contains(&format!("password: {password}")), "mqtt-login says it again: {again}");
    (token, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_keeps_each_agent_to_its_own_topics() {
    let db = CentralDb::new(Backend::Sqlite).await;
    db.create_site(SITE).await.unwrap();
    let (token_a, password_a) = create_agent(&db, "gate-a").await;
    let (token_b, password_b) = create_agent(&db, "gate-b").await;
    let broker = SecuredBroker::start(&[
        ("gate-a", &password_a),
        ("gate-b", &password_b),
        ("central-a", "replica-a-password"),
        ("central-b", "replica-b-password"),
    ])
    .unwrap();
    let port = broker.port;
    // The shipped ACL is written for the default prefix.
    let topics = Topics::new("attendance").unwrap();
    let (site, gate_b): (SiteId, AgentId) = (SITE.parse().unwrap(), "gate-b".parse().unwrap());
    let b_punches = topics.topic(TopicKind::Punches, &site, &gate_b);
    let b_acks = topics.topic(TopicKind::Acks, &site, &gate_b);
    let (_, keys_a) = AgentKeys::from_token(&token_a).unwrap();

    // A replica with its own login, and B with the login create-agent printed: the genuine path works.
    let env = mqtt_env(port, "attendance", "central", Some(("central-a", "replica-a-password")));
    let mut central = serve(&db, &env).await;
    let agent_b = start_agent(port, &topics, &token_b).await;
    agent_b.buffer.append(punches::range("DEV-B", 0, 5)).await.unwrap();
    wait_drained(&agent_b.buffer).await;
    assert_eq!(db.all_logs().await, 5);

    // No credentials, or wrong ones: refused at CONNECT.
    let (_, answer) = Raw::connect(port, "anonymous", None).await;
    assert!(matches!(answer, Seen::Refused(ConnectReturnCode::NotAuthorized)), "{answer:?}");
    let (_, answer) = Raw::connect(port, "guess", Some(("gate-b", "not-the-password"))).await;
    assert!(
        matches!(answer, Seen::Refused(ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized)),
        "{answer:?}"
    );

    // A's login, even under B's client id: B's topics cannot be written, nor B's acks read (Mosquitto grants the
    // subscription and checks read access on delivery: nothing arrives, see the end).
    let (mut as_a, answer) = Raw::connect(port, "gate-b", Some(("gate-a", &password_a))).await;
    assert!(matches!(answer, Seen::Connected), "{answer:?}");
    as_a.subscribe(&b_acks).await;
    let forged = forged_batch("gate-b", 100);
    assert_eq!(
        as_a.publish(&b_punches, keys_a.seal_envelope(&gate_b, &forged).unwrap()).await,
        PubAckReason::NotAuthorized
    );
    assert_eq!(as_a.publish(&b_punches, bare(&forged)).await, PubAckReason::NotAuthorized);

    // The second replica's login may read every agent's punches (as a replica must): it shows what B sends next.
    let (mut observer, _) = Raw::connect(port, "observer", Some(("central-b", "replica-b-password"))).await;
    assert_eq!(observer.subscribe("attendance/v1/+/+/punches").await, [SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
    central.process.kill().await.unwrap();
    agent_b.buffer.append(punches::range("DEV-B", 5, 10)).await.unwrap();
    let in_flight = batch_in(&observer.message_on(&b_punches).await);
    let exact = BatchAck::stored(&in_flight, 5, 0, 0);
    assert_eq!(as_a.publish(&b_acks, bare(&exact)).await, PubAckReason::NotAuthorized);
    let signed_by_a = keys_a.seal(&gate_b, FrameKind::Ack, bare(&exact)).to_bytes().unwrap();
    assert_eq!(as_a.publish(&b_acks, signed_by_a).await, PubAckReason::NotAuthorized);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(agent_b.buffer.depth(), 5, "nothing deleted from B's buffer");
    assert_eq!(unverified(&agent_b), None, "no forged acknowledgement even reached B");
    let log = broker.log();
    for topic in [&b_punches, &b_acks] {
        let denied = |l: &str| l.contains("Denied PUBLISH from gate-a (") && l.contains(&format!("'{topic}'"));
        assert!(log.lines().any(denied), "the broker names the refused publish on {topic}:\n{log}");
    }

    // The replica comes back; B (whose session A could not take over) gets its answer, and only B's punches are
    // stored; central never saw a forgery.
    let central = serve(&db, &env).await;
    wait_drained(&agent_b.buffer).await;
    assert_eq!(db.all_logs().await, 10);
    assert!(db.faults_of("gate-b").await.unwrap().is_empty(), "nothing forged reached central");
    while let Ok(seen) = as_a.seen.try_recv() {
        assert!(!matches!(seen, Seen::Message { .. }), "A read a message meant for B: {seen:?}");
    }
    drop(central);
    drop(agent_b);
    db.cleanup().await;
}

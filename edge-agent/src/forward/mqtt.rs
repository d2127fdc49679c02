//! The MQTT link: batches published with QoS 1 to `<prefix>/v1/<site>/<agent>/punches`, answers received as
//! [`BatchAck`]s on `.../acks`, status published to `.../status`, central's commands and managed configuration
//! received on `.../commands` ([`command_gate`]; taken with [`MqttLink::take_inbound`]).
//!
//! The session is persistent (clean session off) and the client id is the agent id, so the broker keeps our
//! subscription and queued acks across reconnects. A PUBACK only means the broker has the batch; the batch counts as
//! delivered only when central's `BatchAck` for its range arrives. Waiting for it is bounded by `ack_timeout`; after
//! that the forwarder sends the batch again (central stores a punch once however often it arrives).
//!
//! A batch is published only while connected, so an outage does not pile copies into rumqttc's queue.
//!
//! **Proof, end to end.** Whatever the broker lets through, every batch and status goes out as a
//! [`protocol::SignedFrame`] signed with the agent's key, and only an acknowledgement central signed for this agent
//! is believed ([`ack_gate`]). The broker login is the agent id (unless `mqtt.username` says otherwise) with the
//! password derived from the token ([`AgentKeys::broker_password`]), which is what `central-api create-agent` prints
//! for the broker's password file; the token itself never reaches the broker.

pub mod ack_gate;
pub mod command_gate;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use protocol::{AgentId, AgentKeys, AgentStatus, BatchAck, PunchBatch, SiteId, TopicKind, Topics};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::ForwardError;
use crate::faults::Faults;
use ack_gate::AckGate;
use command_gate::CommandGate;

#[derive(Debug, Clone)]
pub struct MqttLinkOptions {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub agent: AgentId,
    pub site: SiteId,
    pub topics: Topics,
    /// The broker user name; the agent id when `None`.
    pub username: Option<String>,
    /// The agent's keys, from its token: they sign what it publishes, check central's answers and give the broker
    /// password.
    pub keys: AgentKeys,
    /// Where an unverified acknowledgement is reported.
    pub faults: Faults,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub keep_alive: Duration,
    pub ack_timeout: Duration,
}

#[derive(Clone)]
pub struct MqttLink {
    client: AsyncClient,
    connected: watch::Receiver<bool>,
    acks: broadcast::Sender<BatchAck>,
    agent: AgentId,
    keys: AgentKeys,
    punches_topic: String,
    status_topic: String,
    ack_timeout: Duration,
    /// What central sent on the commands topic (checked by [`CommandGate`]), until someone takes it.
    inbound: Arc<std::sync::Mutex<Option<mpsc::UnboundedReceiver<crate::fleet::Inbound>>>>,
}

impl MqttLink {
    /// The commands and configurations central sends this agent (taken once; later calls get `None`).
    pub fn take_inbound(&self) -> Option<mpsc::UnboundedReceiver<crate::fleet::Inbound>> {
        self.inbound.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Starts the connection task; it runs until `shutdown`.
    ///
    /// # Errors
    /// [`ForwardError::Setup`] when the TLS files cannot be read.
    pub fn start(
        options: MqttLinkOptions,
        shutdown: CancellationToken,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), ForwardError> {
        let mut mqtt = MqttOptions::new(options.agent.as_str(), options.host.clone(), options.port);
        mqtt.set_clean_session(false);
        mqtt.set_keep_alive(options.keep_alive.max(Duration::from_secs(5)));
        let max_packet = protocol::limits::MAX_ENVELOPE_BYTES + 64 * 1024;
        mqtt.set_max_packet_size(max_packet, max_packet);
        mqtt.set_inflight(16);
        let username = options.username.clone().unwrap_or_else(|| options.agent.to_string());
        mqtt.set_credentials(username, options.keys.broker_password());
        if options.tls {
            mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls_config(&options)?))));
        }
        let (client, eventloop) = AsyncClient::new(mqtt, 8);
        let (connected_tx, connected) = watch::channel(false);
        let (acks, _) = broadcast::channel(64);
        let acks_topic = options.topics.topic(TopicKind::Acks, &options.site, &options.agent);
        let gate =
            AckGate::new(options.keys.clone(), options.agent.clone(), acks_topic.clone(), options.faults.clone());
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        let commands = Commands {
            topic: options.topics.topic(TopicKind::Commands, &options.site, &options.agent),
            gate: CommandGate::new(options.keys.clone(), options.agent.clone(), options.faults.clone()),
            inbound: inbound_tx,
        };
        let task = tokio::spawn(run_connection(
            eventloop,
            client.clone(),
            acks_topic,
            gate,
            commands,
            connected_tx,
            acks.clone(),
            shutdown,
        ));
        let link = Self {
            client,
            connected,
            acks,
            agent: options.agent.clone(),
            keys: options.keys.clone(),
            punches_topic: options.topics.topic(TopicKind::Punches, &options.site, &options.agent),
            status_topic: options.topics.topic(TopicKind::Status, &options.site, &options.agent),
            ack_timeout: options.ack_timeout,
            inbound: Arc::new(std::sync::Mutex::new(Some(inbound_rx))),
        };
        Ok((link, task))
    }

    /// Publishes a batch and waits for central's answer for its range.
    ///
    /// # Errors
    /// [`ForwardError::Transport`] when the broker is not reachable, [`ForwardError::Timeout`] when no answer came.
    pub async fn send_batch(&self, batch: &PunchBatch) -> Result<BatchAck, ForwardError> {
        let payload = self.keys.seal_envelope(&self.agent, batch).map_err(|e| ForwardError::Encode(e.to_string()))?;
        self.wait_connected().await?;
        // Subscribe to answers before publishing, so a fast answer is not missed.
        let mut answers = self.acks.subscribe();
        self.publish(&self.punches_topic, payload).await?;
        let wait = async {
            loop {
                match answers.recv().await {
                    Ok(ack) if ack.answers(batch) => return Ok(ack),
                    Ok(other) => {
                        tracing::debug!(first = other.first_seq, last = other.last_seq, "answer for another range")
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(n, "missed acknowledgements"),
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(ForwardError::Transport("the MQTT connection task stopped".into()))
                    }
                }
            }
        };
        tokio::time::timeout(self.ack_timeout, wait).await.map_err(|_| {
            ForwardError::Timeout(format!(
                "no acknowledgement for seq {}..={} within {:?} (the broker took the batch; central did not answer)",
                batch.first_seq, batch.last_seq, self.ack_timeout
            ))
        })?
    }

    /// Publishes a status envelope (QoS 1), if connected.
    ///
    /// # Errors
    /// [`ForwardError::Transport`] when not connected.
    pub async fn send_status(&self, status: &AgentStatus) -> Result<(), ForwardError> {
        let payload = self.keys.seal_envelope(&self.agent, status).map_err(|e| ForwardError::Encode(e.to_string()))?;
        if !*self.connected.borrow() {
            return Err(ForwardError::Transport("not connected to the MQTT broker".into()));
        }
        self.publish(&self.status_topic, payload).await
    }

    async fn wait_connected(&self) -> Result<(), ForwardError> {
        let mut connected = self.connected.clone();
        let waited = tokio::time::timeout(self.ack_timeout, async { connected.wait_for(|c| *c).await.is_ok() }).await;
        match waited {
            Ok(true) => Ok(()),
            Ok(false) => Err(ForwardError::Transport("the MQTT connection task stopped".into())),
            Err(_) => {
                Err(ForwardError::Transport(format!("not connected to the MQTT broker for {:?}", self.ack_timeout)))
            }
        }
    }

    async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), ForwardError> {
        let publish = self.client.publish(topic, QoS::AtLeastOnce, false, payload);
        match tokio::time::timeout(self.ack_timeout, publish).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ForwardError::Transport(format!("publishing to {topic}: {e}"))),
            Err(_) => Err(ForwardError::Timeout(format!("publishing to {topic}: the MQTT client queue is stuck"))),
        }
    }
}

/// The commands topic and where what arrives on it goes.
struct Commands {
    topic: String,
    gate: CommandGate,
    inbound: mpsc::UnboundedSender<crate::fleet::Inbound>,
}

/// Polls the event loop (which reconnects by itself), tracks the connection, subscribes to our acks and commands on
/// every connection and passes on the acks and commands central signed for us.
#[allow(clippy::too_many_arguments)]
async fn run_connection(
    mut eventloop: EventLoop,
    client: AsyncClient,
    acks_topic: String,
    mut gate: AckGate,
    commands: Commands,
    connected: watch::Sender<bool>,
    acks: broadcast::Sender<BatchAck>,
    shutdown: CancellationToken,
) {
    let mut retry = super::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        let event = tokio::select! {
            event = eventloop.poll() => event,
            () = shutdown.cancelled() => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!(session_present = ack.session_present, "connected to the MQTT broker");
                retry.reset();
                if let Err(e) = client.try_subscribe(acks_topic.clone(), QoS::AtLeastOnce) {
                    tracing::warn!(error = %e, "cannot subscribe to the acknowledgement topic");
                }
                if let Err(e) = client.try_subscribe(commands.topic.clone(), QoS::AtLeastOnce) {
                    tracing::warn!(error = %e, "cannot subscribe to the commands topic");
                }
                connected.send_replace(true);
            }
            Ok(Event::Incoming(Packet::Publish(publish))) if publish.topic == acks_topic => {
                if let Some(ack) = gate.admit(&publish.payload) {
                    let _ = acks.send(ack);
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) if publish.topic == commands.topic => {
                if let Some(inbound) = commands.gate.admit(&commands.topic, &publish.payload) {
                    let _ = commands.inbound.send(inbound);
                }
            }
            Ok(_) => {}
            Err(e) => {
                if connected.send_replace(false) {
                    tracing::warn!(error = %e, "lost the MQTT broker");
                } else {
                    tracing::debug!(error = %e, "MQTT broker still unreachable");
                }
                let delay = retry.next_delay();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
    connected.send_replace(false);
    let _ = client.try_disconnect();
}

fn tls_config(options: &MqttLinkOptions) -> Result<rustls::ClientConfig, ForwardError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| ForwardError::Setup(format!("MQTT TLS {what}: {e}"));
    let Some(ca_file) = &options.ca_file else {
        return Err(ForwardError::Setup("MQTT over TLS needs central.ca_file (the broker's CA bundle)".into()));
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(ca_file)? {
        roots.add(cert).map_err(|e| setup("CA", &e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup("versions", &e))?
        .with_root_certificates(roots);
    match &options.client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some(cert_file) => {
            let certs = read_certs(cert_file)?;
            let key_file = options.client_key.as_ref().unwrap_or(cert_file);
            let pem = std::fs::read(key_file).map_err(|e| setup(&key_file.display().to_string(), &e))?;
            let key = rustls_pemfile::private_key(&mut pem.as_slice())
                .map_err(|e| setup(&key_file.display().to_string(), &e))?
                .ok_or_else(|| ForwardError::Setup(format!("no private key in {}", key_file.display())))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| setup("client certificate", &e))
        }
    }
}

fn read_certs(path: &PathBuf) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ForwardError> {
    let pem = std::fs::read(path).map_err(|e| ForwardError::Setup(format!("cannot read {}: {e}", path.display())))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ForwardError::Setup(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ForwardError::Setup(format!("{} holds no certificate", path.display())));
    }
    Ok(certs)
}

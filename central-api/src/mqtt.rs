//! The MQTT ingest path: a shared subscription to every agent's `punches` and `status` topics, with manual acks.
//!
//! **PUBACK after commit.** A punch batch is PUBACKed only after its transaction committed and its `BatchAck` was
//! handed to the client for publishing on the agent's `acks` topic (in that order on the same connection, so the
//! broker sees the ack before the PUBACK). A replica that dies before that leaves the message unacknowledged in its
//! persistent session, and the broker delivers it again. A database outage is retried here, without PUBACK, until the
//! database answers or the process stops.
//!
//! **Proof.** Whatever the broker lets through, a message is believed only when it is a frame signed with the key of
//! the agent its topic names ([`admission`]); acks are signed with central's key for that agent. A message without
//! valid proof is not stored, not answered, raises a fault for the agent ([`alarms`]) and is PUBACKed. Bare
//! envelopes of the previous release pass only with `mqtt.allow_unsigned`.
//!
//! **Poison.** A proven message whose payload does not decode, disagrees with its topic, or comes from an agent that
//! is revoked or bound to another site gets a `Rejected` ack, a log line, and a PUBACK: a message that can never
//! succeed must not be redelivered forever.
//!
//! The broker's credentials and ACLs (see `configs/mosquitto/`) keep each agent to its own topics as a first wall;
//! this side checks the proof, and that the topic, the payload and the agents table agree.
//!
//! Design: one task polls the rumqttc event loop and hands publishes to `workers` tasks through a channel, so a slow
//! commit never stops keep-alives. The broker is asked for at most `4 * workers` unacknowledged messages at a time.

pub mod admission;
pub mod alarms;
pub mod login;

use std::sync::Arc;
use std::time::Duration;

use admission::{Admission, Gatekeeper};
use anyhow::Context;
use protocol::{
    AckOutcome, AgentKeys, AgentStatus, AgentTopic, BatchAck, BatchId, Encoding, FrameKind, PunchBatch, RejectionKind,
    TopicKind, Topics, Versioned, PROTOCOL_VERSION,
};
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::{mpsc, Mutex};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::{AuthError, Authenticator};
use crate::config::MqttConfig;
use crate::ingest::{Ingest, IngestError};
use crate::metrics::IngestPath;
use crate::store::Store;

/// Room for MQTT headers and properties above the largest envelope.
const PACKET_OVERHEAD: u32 = 64 * 1024;
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// The MQTT consumer of one replica.
pub struct MqttConsumer {
    config: MqttConfig,
    client_id: String,
    topics: Topics,
    worker: Arc<Worker>,
}

struct Worker {
    client: AsyncClient,
    topics: Topics,
    ingest: Arc<Ingest>,
    auth: Arc<Authenticator>,
    gate: Gatekeeper,
}

impl MqttConsumer {
    /// Prepares the consumer; nothing connects until [`MqttConsumer::run`].
    ///
    /// # Errors
    /// When the topic prefix is invalid or the TLS CA file cannot be read.
    pub fn new(
        config: MqttConfig,
        ingest: Arc<Ingest>,
        auth: Arc<Authenticator>,
        store: Store,
    ) -> anyhow::Result<(Self, EventLoop)> {
        let topics = Topics::new(&config.topic_prefix)?;
        let client_id = config.client_id();
        let mut options = MqttOptions::new(client_id.clone(), config.host.clone(), config.port);
        options
            .set_clean_start(false)
            .set_session_expiry_interval(Some(config.session_expiry_secs))
            .set_manual_acks(true)
            .set_keep_alive(Duration::from_secs(config.keep_alive_secs.max(5)))
            .set_receive_maximum(Some(u16::try_from(config.workers * 4).unwrap_or(u16::MAX)))
            .set_max_packet_size(Some(protocol::limits::MAX_ENVELOPE_BYTES as u32 + PACKET_OVERHEAD))
            .set_request_channel_capacity(4096);
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            options.set_credentials(user.clone(), password.clone());
        }
        if let Some(ca_file) = &config.tls_ca_file {
            let ca =
                std::fs::read(ca_file).with_context(|| format!("reading mqtt.tls_ca_file {}", ca_file.display()))?;
            options.set_transport(Transport::Tls(TlsConfiguration::Simple { ca, alpn: None, client_auth: None }));
        }
        let (client, eventloop) = AsyncClient::new(options, 4096);
        tracing::info!(%client_id, host = %config.host, port = config.port, group = %config.group, "MQTT consumer configured");
        let gate = Gatekeeper::new(auth.clone(), alarms::Alarms::new(store), config.allow_unsigned);
        let worker = Arc::new(Worker { client, topics: topics.clone(), ingest, auth, gate });
        Ok((Self { config, client_id, topics, worker }, eventloop))
    }

    /// A client for publishing on agents' topics (the fleet dispatcher's commands and configurations) over this
    /// replica's connection, and the topic layout.
    pub fn publisher(&self) -> (AsyncClient, Topics) {
        (self.worker.client.clone(), self.topics.clone())
    }

    /// Polls the broker until `shutdown`, then lets the batches in hand finish (and their PUBACKs go out) before
    /// disconnecting. Messages not yet started are left unacknowledged for the broker to deliver again.
    ///
    /// # Errors
    /// When the subscription filters are invalid.
    pub async fn run(self, mut eventloop: EventLoop, shutdown: CancellationToken) -> anyhow::Result<()> {
        let filters = [
            self.topics.shared(&self.config.group, TopicKind::Punches)?,
            self.topics.shared(&self.config.group, TopicKind::Status)?,
        ];
        let (work_tx, work_rx) = mpsc::channel::<Publish>(self.config.workers * 8);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let tracker = TaskTracker::new();
        for _ in 0..self.config.workers {
            let worker = self.worker.clone();
            let rx = work_rx.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move { worker.work(rx, shutdown).await });
        }
        tracker.close();

        let mut work_tx = Some(work_tx);
        let mut failures: u32 = 0;
        let mut subscriptions_acked = 0usize;
        loop {
            tokio::select! {
                () = shutdown.cancelled(), if work_tx.is_some() => {
                    tracing::info!("MQTT consumer stopping: finishing batches in hand");
                    work_tx = None;
                }
                () = tracker.wait(), if work_tx.is_none() => break,
                event = eventloop.poll() => match event {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        failures = 0;
                        tracing::info!(session_present = ack.session_present, "connected to the MQTT broker");
                        for filter in &filters {
                            self.worker.client.subscribe(filter.clone(), QoS::AtLeastOnce).await?;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => match &work_tx {
                        Some(tx) => {
                            if tx.send(publish).await.is_err() {
                                tracing::warn!("MQTT workers are gone; message left for redelivery");
                            }
                        }
                        None => tracing::debug!("stopping: message left unacknowledged for redelivery"),
                    },
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        tracing::debug!(codes = ?ack.return_codes, "subscribed");
                        subscriptions_acked += 1;
                        if subscriptions_acked == filters.len() {
                            // Announced on stdout (like the listening line) for people and tests.
                            println!("central-api consuming MQTT {} as {}", filters.join(" "), self.client_id);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let delay = backoff(failures);
                        tracing::warn!(error = %e, retry_in = ?delay, "MQTT connection failed");
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = shutdown.cancelled(), if work_tx.is_some() => { work_tx = None; }
                        }
                        if work_tx.is_none() && tracker.is_empty() {
                            break;
                        }
                    }
                },
            }
        }
        let _ = self.worker.client.disconnect().await;
        // Let the disconnect (and any last PUBACK) reach the broker.
        let _ = tokio::time::timeout(Duration::from_secs(2), async { while eventloop.poll().await.is_ok() {} }).await;
        tracing::info!("MQTT consumer stopped");
        Ok(())
    }
}

fn backoff(failures: u32) -> Duration {
    let millis = 100u64.saturating_mul(1 << failures.min(7));
    Duration::from_millis(millis).min(MAX_RETRY_DELAY)
}

/// Whether a message was finished (PUBACK it) or must be left for redelivery.
enum Done {
    Ack,
    Leave,
}

impl Worker {
    async fn work(&self, rx: Arc<Mutex<mpsc::Receiver<Publish>>>, shutdown: CancellationToken) {
        loop {
            let next = {
                let mut rx = rx.lock().await;
                tokio::select! {
                    message = rx.recv() => message,
                    () = shutdown.cancelled() => None,
                }
            };
            let Some(publish) = next else { return };
            match self.handle(&publish, &shutdown).await {
                Done::Ack => {
                    if let Err(e) = self.client.ack(&publish).await {
                        tracing::warn!(error = %e, "could not PUBACK; the broker will deliver the message again");
                    }
                }
                Done::Leave => tracing::info!("message left unacknowledged; the broker will deliver it again"),
            }
        }
    }

    async fn handle(&self, publish: &Publish, shutdown: &CancellationToken) -> Done {
        let topic_text = String::from_utf8_lossy(&publish.topic).into_owned();
        let topic = match self.topics.parse(&topic_text) {
            Ok(topic) => topic,
            Err(e) => {
                tracing::warn!(topic = %topic_text, error = %e, "dropping a message on an unexpected topic");
                return Done::Ack;
            }
        };
        let kind = match topic.kind {
            TopicKind::Punches => FrameKind::Batch,
            TopicKind::Status => FrameKind::Status,
            TopicKind::Acks | TopicKind::Commands => {
                tracing::warn!(topic = %topic_text, "ignoring a message on a topic central does not consume");
                return Done::Ack;
            }
        };
        let (payload, keys) = match self.gate.admit(&topic, &topic_text, kind, &publish.payload, shutdown).await {
            Admission::Signed { payload, keys } => (std::borrow::Cow::Owned(payload), Some(keys)),
            Admission::Unsigned { payload } => (std::borrow::Cow::Borrowed(payload), None),
            Admission::Refused => {
                if kind == FrameKind::Batch {
                    self.ingest.metrics().batch_rejected(IngestPath::Mqtt);
                }
                return Done::Ack;
            }
            Admission::Leave => return Done::Leave,
        };
        let reply = Reply { topic: &topic, keys: keys.as_ref() };
        match kind {
            FrameKind::Batch => self.handle_batch(reply, &payload, shutdown).await,
            _ => self.handle_status(&topic, &payload, shutdown).await,
        }
    }

    async fn handle_batch(&self, reply: Reply<'_>, payload: &[u8], shutdown: &CancellationToken) -> Done {
        let topic = reply.topic;
        let Versioned { value: batch, wire_version } =
            match protocol::decode_upgrading::<PunchBatch>(payload, Encoding::Bincode) {
                Ok(read) => read,
                Err(e) => {
                    let reason = format!("cannot decode the batch: {e}");
                    let ack = BatchAck::rejected_range(
                        topic.agent.clone(),
                        0,
                        0,
                        BatchId::NONE,
                        RejectionKind::Permanent,
                        reason,
                    );
                    return self.reject(reply, ack, PROTOCOL_VERSION).await;
                }
            };
        if wire_version != PROTOCOL_VERSION {
            tracing::debug!(agent = %topic.agent, wire_version, "batch in the previous protocol version");
        }
        if batch.agent != topic.agent || batch.site != topic.site {
            let reason = format!(
                "topic is for agent {} at site {} but the batch is from agent {} at site {}",
                topic.agent, topic.site, batch.agent, batch.site
            );
            let ack = BatchAck::rejected(&batch, RejectionKind::Permanent, reason);
            return self.reject(reply, ack, wire_version).await;
        }
        let mut attempt = 0;
        loop {
            let outcome = match self.auth.active_agent(&topic.agent).await {
                Ok(sender) => self.ingest.store_batch(&sender, &batch, IngestPath::Mqtt).await.map_err(Failure::Ingest),
                Err(e) => Err(Failure::Auth(e)),
            };
            let (kind, reason) = match outcome {
                Ok(ack) => return self.publish_ack(reply, &ack, wire_version).await,
                Err(Failure::Auth(AuthError::Store(e)) | Failure::Ingest(IngestError::Storage(e))) => {
                    attempt += 1;
                    let delay = backoff(attempt);
                    tracing::warn!(error = %e, agent = %topic.agent, retry_in = ?delay, "storage failed; retrying batch");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => continue,
                        () = shutdown.cancelled() => return Done::Leave,
                    }
                }
                Err(Failure::Auth(AuthError::BadToken)) => {
                    (RejectionKind::Unauthorized, format!("agent {} is not registered", topic.agent))
                }
                Err(Failure::Auth(e)) => (RejectionKind::Unauthorized, e.to_string()),
                Err(Failure::Ingest(e)) => (RejectionKind::Permanent, e.to_string()),
            };
            return self.reject(reply, BatchAck::rejected(&batch, kind, reason), wire_version).await;
        }
    }

    async fn handle_status(&self, topic: &AgentTopic, payload: &[u8], shutdown: &CancellationToken) -> Done {
        let status: AgentStatus = match protocol::decode_upgrading(payload, Encoding::Bincode) {
            Ok(read) => read.value,
            Err(e) => {
                tracing::warn!(agent = %topic.agent, error = %e, "dropping an undecodable status");
                return Done::Ack;
            }
        };
        if status.agent != topic.agent || status.site != topic.site {
            tracing::warn!(agent = %topic.agent, "dropping a status whose payload disagrees with its topic");
            return Done::Ack;
        }
        let mut attempt = 0;
        loop {
            let outcome = match self.auth.active_agent(&topic.agent).await {
                Ok(sender) => {
                    self.ingest.store_status(&sender, &status, IngestPath::Mqtt).await.map_err(Failure::Ingest)
                }
                Err(e) => Err(Failure::Auth(e)),
            };
            match outcome {
                Ok(()) => return Done::Ack,
                Err(Failure::Auth(AuthError::Store(e)) | Failure::Ingest(IngestError::Storage(e))) => {
                    attempt += 1;
                    let delay = backoff(attempt);
                    tracing::warn!(error = %e, retry_in = ?delay, "storage failed; retrying status");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return Done::Leave,
                    }
                }
                Err(e) => {
                    tracing::warn!(agent = %topic.agent, error = %e.to_string(), "dropping a refused status");
                    return Done::Ack;
                }
            }
        }
    }

    async fn reject(&self, reply: Reply<'_>, ack: BatchAck, wire_version: u16) -> Done {
        let topic = reply.topic;
        if let AckOutcome::Rejected { reason, kind } = &ack.outcome {
            tracing::warn!(
                agent = %topic.agent, site = %topic.site, first_seq = ack.first_seq, last_seq = ack.last_seq,
                ?kind, %reason, "batch rejected"
            );
        }
        self.ingest.metrics().batch_rejected(IngestPath::Mqtt);
        match self.publish_ack(reply, &ack, wire_version).await {
            // A refusal is final whether or not its ack got out: never redeliver poison.
            Done::Ack | Done::Leave => Done::Ack,
        }
    }

    /// Publishes `ack` on the agent's acks topic, in the protocol version its batch was written in, signed with
    /// central's key for the agent when the batch was signed.
    async fn publish_ack(&self, reply: Reply<'_>, ack: &BatchAck, wire_version: u16) -> Done {
        let topic = reply.topic;
        let ack_topic = self.topics.topic(TopicKind::Acks, &topic.site, &topic.agent);
        let encoded = protocol::encode_ack(ack, Encoding::Bincode, wire_version).and_then(|bytes| match reply.keys {
            Some(keys) => keys.seal(&topic.agent, FrameKind::Ack, bytes).to_bytes(),
            None => Ok(bytes),
        });
        let payload = match encoded {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an acknowledgement");
                return Done::Leave;
            }
        };
        match self.client.publish(ack_topic, QoS::AtLeastOnce, false, payload).await {
            Ok(()) => Done::Ack,
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish the acknowledgement; leaving the batch for redelivery");
                Done::Leave
            }
        }
    }
}

/// Where an answer goes and how it is signed: `keys` when the message it answers was signed.
#[derive(Clone, Copy)]
struct Reply<'a> {
    topic: &'a AgentTopic,
    keys: Option<&'a AgentKeys>,
}

enum Failure {
    Auth(AuthError),
    Ingest(IngestError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auth(e) => e.fmt(f),
            Self::Ingest(e) => e.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert!(backoff(3) > backoff(2));
        assert_eq!(backoff(50), MAX_RETRY_DELAY);
    }
}

//! Which messages on an agent's topics central believes, whatever the broker let through.
//!
//! A message is admitted when it is a [`SignedFrame`] of the topic's kind, naming the topic's agent, whose MAC
//! matches that agent's key (derived from the secret hash central stores, see [`protocol::signed`]); its answers are
//! then signed with central's key for that agent. A bare envelope (an agent of the previous release) is admitted
//! only when `mqtt.allow_unsigned` is on, with a warning per agent, and answered unsigned.
//!
//! Anything else is refused: nothing is stored, nothing is answered (a forger must not make central speak on an
//! agent's acks topic), and the fault is raised for the agent the topic names ([`super::alarms`]), saying what the
//! message claimed to be.

use protocol::signed::is_signed_frame;
use protocol::{AgentKeys, AgentStatus, AgentTopic, FrameKind, PunchBatch, SignedFrame};
use tokio_util::sync::CancellationToken;

use super::alarms::{Alarms, BAD_PROOF, UNSIGNED};
use crate::auth::Authenticator;

/// What to do with a message.
pub enum Admission<'a> {
    /// Proven to come from the agent; answer with `keys`.
    Signed { payload: Vec<u8>, keys: AgentKeys },
    /// A bare envelope accepted because `mqtt.allow_unsigned` is on; answer unsigned.
    Unsigned { payload: &'a [u8] },
    /// Refused (logged, fault raised): drop the message.
    Refused,
    /// The database did not answer before shutdown: leave the message for the broker to deliver again.
    Leave,
}

/// The checks of one replica.
pub struct Gatekeeper {
    auth: std::sync::Arc<Authenticator>,
    alarms: Alarms,
    allow_unsigned: bool,
}

impl Gatekeeper {
    pub fn new(auth: std::sync::Arc<Authenticator>, alarms: Alarms, allow_unsigned: bool) -> Self {
        if allow_unsigned {
            tracing::warn!("mqtt.allow_unsigned is on: unsigned batches and statuses are accepted on MQTT");
        }
        Self { auth, alarms, allow_unsigned }
    }

    /// Decides about `payload`, received on `topic` (`topic_text`) where a `kind` belongs.
    pub async fn admit<'a>(
        &self,
        topic: &AgentTopic,
        topic_text: &str,
        kind: FrameKind,
        payload: &'a [u8],
        shutdown: &CancellationToken,
    ) -> Admission<'a> {
        let Some(keys) = self.keys(topic, shutdown).await else { return Admission::Leave };
        let registered = keys.is_some();
        let agent = &topic.agent;
        if !is_signed_frame(payload) {
            if self.allow_unsigned {
                self.alarms.unsigned_accepted(agent, registered, kind, topic_text).await;
                return Admission::Unsigned { payload };
            }
            let message = format!(
                "refused an unsigned {kind} on {topic_text} {}: only a frame signed with the agent's key is accepted \
                 (mqtt.allow_unsigned is off); nothing was stored",
                claim(kind, payload)
            );
            self.alarms.raise(agent, registered, UNSIGNED, kind, message).await;
            return Admission::Refused;
        }
        let refused = |reason: &dyn std::fmt::Display| {
            format!("refused a {kind} on {topic_text} {}: {reason}; nothing was stored", claim(kind, payload))
        };
        let frame = match SignedFrame::from_bytes(payload) {
            Ok(frame) => frame,
            Err(e) => {
                self.alarms.raise(agent, registered, BAD_PROOF, kind, refused(&e)).await;
                return Admission::Refused;
            }
        };
        let Some(keys) = keys else {
            self.alarms.raise(agent, false, BAD_PROOF, kind, refused(&"the agent is not registered")).await;
            return Admission::Refused;
        };
        if let Err(e) = keys.open(&frame, agent, kind) {
            self.alarms.raise(agent, true, BAD_PROOF, kind, refused(&e)).await;
            return Admission::Refused;
        }
        Admission::Signed { payload: frame.payload, keys }
    }

    /// The agent's keys (`Some(None)`: not registered), retrying while the database fails; `None` at shutdown.
    async fn keys(&self, topic: &AgentTopic, shutdown: &CancellationToken) -> Option<Option<AgentKeys>> {
        let mut attempt = 0;
        loop {
            match self.auth.frame_keys(&topic.agent).await {
                Ok(keys) => return Some(keys),
                Err(e) => {
                    attempt += 1;
                    let delay = super::backoff(attempt);
                    tracing::warn!(error = %e, agent = %topic.agent, retry_in = ?delay, "cannot read the agent's keys");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return None,
                    }
                }
            }
        }
    }
}

/// What a refused message claimed to be (read without trusting it), for the fault message.
fn claim(kind: FrameKind, payload: &[u8]) -> String {
    let frame = SignedFrame::from_bytes(payload).ok();
    let (inner, signer) = match &frame {
        Some(frame) => (frame.payload.as_slice(), format!(" in a frame naming agent {}", frame.agent)),
        None => (payload, String::new()),
    };
    let encoding = protocol::Encoding::Bincode;
    match kind {
        FrameKind::Batch => match protocol::decode_upgrading::<PunchBatch>(inner, encoding) {
            Ok(read) => {
                let batch = read.value;
                format!(
                    "(claiming to be agent {}'s batch {} of {} punches, seq {}..={}{signer})",
                    batch.agent,
                    batch.batch_id,
                    batch.punches.len(),
                    batch.first_seq,
                    batch.last_seq
                )
            }
            Err(_) => format!("({} bytes that are not a batch{signer})", payload.len()),
        },
        FrameKind::Status => match protocol::decode_upgrading::<AgentStatus>(inner, encoding) {
            Ok(read) => {
                format!("(claiming to be agent {}'s status sent at {}{signer})", read.value.agent, read.value.sent_at)
            }
            Err(_) => format!("({} bytes that are not a status{signer})", payload.len()),
        },
        FrameKind::Ack | FrameKind::Command | FrameKind::Config => format!("({} bytes{signer})", payload.len()),
    }
}

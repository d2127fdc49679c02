//! What the MQTT link believes on its acks topic: only an acknowledgement central signed for this agent.
//!
//! Anyone the broker lets publish on the acks topic could otherwise make the agent delete punches central never
//! stored. Every message there must be a [`SignedFrame`] of kind `Ack`, for this agent, whose MAC checks out with
//! central's key for this agent (derived from the agent's token, see [`protocol::signed`]). Anything else is dropped
//! and raises the [`faults::UNVERIFIED_ACK`] fault, naming the topic and what the message claimed; nothing is deleted.
//! A genuine acknowledgement of another batch (a late answer, or a replay) passes this gate and is then ignored by
//! the link, which takes only the answer to the batch in flight (`BatchAck::answers`).
//!
//! The fault stays raised for [`FAULT_HOLD`] after the last refused message, so the next status reports it to
//! central even when genuine acknowledgements keep arriving.

use std::time::{Duration, Instant};

use chrono::Utc;
use protocol::{AckOutcome, AgentId, AgentKeys, BatchAck, DecodeError, Encoding, FrameKind, SignedFrame};

use crate::faults::{self, Faults};

/// How long the fault stays raised after the last refused message.
pub const FAULT_HOLD: Duration = Duration::from_secs(600);

/// Checks every message arriving on the agent's acks topic.
pub struct AckGate {
    keys: AgentKeys,
    agent: AgentId,
    topic: String,
    faults: Faults,
    last_refused: Option<Instant>,
}

impl AckGate {
    pub fn new(keys: AgentKeys, agent: AgentId, topic: String, faults: Faults) -> Self {
        Self { keys, agent, topic, faults, last_refused: None }
    }

    /// The acknowledgement in `payload` when central signed it for this agent; otherwise `None`, with the
    /// [`faults::UNVERIFIED_ACK`] fault raised.
    pub fn admit(&mut self, payload: &[u8]) -> Option<BatchAck> {
        match self.check(payload) {
            Ok(ack) => {
                if self.last_refused.is_some_and(|at| at.elapsed() >= FAULT_HOLD) {
                    self.faults.clear(faults::UNVERIFIED_ACK);
                    self.last_refused = None;
                }
                Some(ack)
            }
            Err(reason) => {
                let message = format!(
                    "ignored a message on {} {}: {reason}; nothing was deleted from the buffer",
                    self.topic,
                    claim(payload)
                );
                tracing::warn!(%message, "unverified acknowledgement");
                self.faults.raise(faults::UNVERIFIED_ACK, message, Utc::now());
                self.last_refused = Some(Instant::now());
                None
            }
        }
    }

    fn check(&self, payload: &[u8]) -> Result<BatchAck, String> {
        let frame = SignedFrame::from_bytes(payload).map_err(|e| match e {
            DecodeError::UnsupportedVersion { found, .. } if !protocol::signed::is_signed_frame(payload) => {
                format!("it carries no proof from central (a bare version {found} message)")
            }
            other => format!("it is not a signed frame ({other})"),
        })?;
        let bytes = self.keys.open(&frame, &self.agent, FrameKind::Ack).map_err(|e| e.to_string())?;
        let ack: BatchAck = protocol::decode(bytes, Encoding::Bincode)
            .map_err(|e| format!("central signed an acknowledgement this agent cannot read ({e})"))?;
        if ack.agent != self.agent {
            return Err(format!("central signed it for agent {}", ack.agent));
        }
        Ok(ack)
    }
}

/// What a refused message claimed to be, for the fault message.
fn claim(payload: &[u8]) -> String {
    let frame = SignedFrame::from_bytes(payload).ok();
    let inner = frame.as_ref().map_or(payload, |f| f.payload.as_slice());
    match protocol::decode::<BatchAck>(inner, Encoding::Bincode) {
        Ok(ack) => {
            let outcome = match &ack.outcome {
                AckOutcome::Stored { .. } => "stored".to_owned(),
                AckOutcome::Rejected { kind, .. } => format!("rejected, {kind:?}"),
            };
            format!(
                "claiming to answer seq {}..={} of batch {} for agent {} ({outcome})",
                ack.first_seq, ack.last_seq, ack.batch_id, ack.agent
            )
        }
        Err(_) => format!("({} bytes that are not an acknowledgement)", payload.len()),
    }
}

#[cfg(test)]
mod tests {
    use protocol::{PunchBatch, SequencedPunch};

    use super::*;

    const TOKEN: &str = "agt_gate-1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER: &str = "agt_gate-1_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn batch(agent: &AgentId) -> PunchBatch {
        let punch = protocol::Punch::from_device(
            "plant-1".parse().expect("site"),
            "DEV".parse().expect("serial"),
            "7".parse().expect("pin"),
            chrono::NaiveDate::from_ymd_opt(2026, 1, 5).and_then(|d| d.and_hms_opt(9, 0, 0)).expect("time"),
            chrono_tz::Asia::Kolkata,
            protocol::PunchState::CheckIn,
            protocol::VerifyMode::Fingerprint,
            0,
            protocol::PunchSource::ZkPull,
            protocol::Direction::Both,
        );
        PunchBatch::new(agent.clone(), "plant-1".parse().unwrap(), Utc::now(), vec![SequencedPunch { seq: 4, punch }])
    }

    fn gate() -> (AgentId, AgentKeys, AckGate, Faults) {
        let (agent, keys) = AgentKeys::from_token(TOKEN).unwrap();
        let faults = Faults::new();
        let gate = AckGate::new(keys.clone(), agent.clone(), "att/v1/plant-1/gate-1/acks".into(), faults.clone());
        (agent, keys, gate, faults)
    }

    #[test]
    fn a_signed_ack_passes() {
        let (agent, keys, mut gate, faults) = gate();
        let ack = BatchAck::stored(&batch(&agent), 1, 0, 0);
        let bytes = keys.seal(&agent, FrameKind::Ack, protocol::encode(&ack, Encoding::Bincode).unwrap());
        assert_eq!(gate.admit(&bytes.to_bytes().unwrap()), Some(ack));
        assert!(faults.snapshot().is_empty());
    }

    #[test]
    fn unsigned_wrongly_signed_and_agent_signed_acks_are_refused_with_a_fault() {
        let (agent, keys, mut gate, faults) = gate();
        let ack = BatchAck::stored(&batch(&agent), 1, 0, 0);
        let bare = protocol::encode(&ack, Encoding::Bincode).unwrap();
        let (_, other) = AgentKeys::from_token(OTHER).unwrap();
        let cases = [
            (bare.clone(), "carries no proof"),
            (other.seal(&agent, FrameKind::Ack, bare.clone()).to_bytes().unwrap(), "does not match central's key"),
            (keys.seal(&agent, FrameKind::Batch, bare.clone()).to_bytes().unwrap(), "carries a batch"),
            (vec![0xfb, 0, 1, 9], "not a signed frame"),
        ];
        for (bytes, reason) in cases {
            assert_eq!(gate.admit(&bytes), None, "{reason}");
            let fault = faults.snapshot().into_iter().find(|f| f.code == faults::UNVERIFIED_ACK).unwrap();
            assert!(fault.message.contains(reason), "{reason}: {}", fault.message);
            assert!(fault.message.contains("att/v1/plant-1/gate-1/acks"), "{}", fault.message);
        }
        let fault = faults.snapshot().into_iter().find(|f| f.code == faults::UNVERIFIED_ACK).unwrap();
        assert!(fault.message.contains("(4 bytes that are not an acknowledgement)"), "{}", fault.message);
        gate.admit(&bare);
        let fault = faults.snapshot().into_iter().find(|f| f.code == faults::UNVERIFIED_ACK).unwrap();
        assert!(fault.message.contains("claiming to answer seq 4..=4 of batch"), "{}", fault.message);
    }
}

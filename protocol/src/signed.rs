//! Signed frames: end-to-end proof, on MQTT, that a message comes from the agent it names (agent -> central) or from
//! central for that agent (central -> agent), whatever the broker lets through.
//!
//! A [`SignedFrame`] wraps the exact bytes of one envelope with the agent id, what the bytes are ([`FrameKind`]) and
//! an HMAC-SHA256 over all of them. HTTPS does not use frames: there every request carries the bearer token.
//!
//! **Keys.** An agent token is `agt_<agent>_<secret>`; central stores only SHA-256 of the secret's text (the *secret
//! hash*). Both sides derive from that hash, each with HMAC-SHA256 under its own label ([`AgentKeys`]): the agent's
//! MAC key (batches, statuses), central's MAC key for that agent (acknowledgements, commands) and the agent's MQTT
//! broker password. One key per direction, so a frame the agent signed can never pass for one central signed, nor
//! the reverse; and the broker, which sees the password, learns nothing of the MAC keys.
//!
//! **Wire form** (bincode, standard configuration, like the envelopes): `version` (u16, [`SIGNED_FRAME_VERSION`]),
//! `agent` (string), `kind` (variant index), `payload` (length, then the bytes), `mac` (32 bytes, no length). The
//! MAC is HMAC-SHA256, under the key of the kind's [`Signer`], of every byte of the frame before the MAC.
//!
//! **Versions.** Envelope versions count up from 1 and stay below 256; a frame's version starts at 256. The first
//! field of any MQTT payload therefore says whether it is a frame or a bare envelope ([`is_signed_frame`]), and a
//! peer of an earlier release refuses a frame as "unsupported protocol version 256".
//!
//! **Replays.** The MAC covers the whole envelope, so an acknowledgement's proof is bound to its batch id, range and
//! outcome: a captured acknowledgement published again answers only the batch it was for (`BatchAck::answers`),
//! and a captured batch published again is stored once (central deduplicates). A command carries its id and expiry,
//! which is what its receiver must check against replays.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{DecodeError, EncodeError, Envelope};
use crate::ids::AgentId;
use crate::limits::MAX_ENVELOPE_BYTES;
use crate::topic::TopicKind;
use crate::Encoding;

type HmacSha256 = Hmac<Sha256>;

/// The version field of a signed frame: 256 and up, above every envelope version.
pub const SIGNED_FRAME_VERSION: u16 = 256;

/// Largest frame accepted: an envelope at its limit plus the frame's own fields.
pub const MAX_FRAME_BYTES: usize = MAX_ENVELOPE_BYTES + 1024;

/// Length of a frame's MAC, in bytes.
pub const MAC_LEN: usize = 32;

const TOKEN_PREFIX: &str = "agt_";
const SECRET_HEX_LEN: usize = 64;
const LABEL_AGENT_MAC: &[u8] = b"attendance/mqtt/v1/mac/agent-to-central";
const LABEL_CENTRAL_MAC: &[u8] = b"attendance/mqtt/v1/mac/central-to-agent";
const LABEL_BROKER_PASSWORD: &[u8] = b"attendance/mqtt/v1/broker-password";

/// What a frame's payload is. The kind also says who signs it ([`FrameKind::signer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// A [`crate::PunchBatch`], agent -> central.
    Batch,
    /// An [`crate::AgentStatus`], agent -> central.
    Status,
    /// A [`crate::BatchAck`], central -> agent.
    Ack,
    /// An [`crate::AgentCommand`], central -> agent.
    Command,
    /// A [`crate::ManagedConfig`], central -> agent, on the `commands` topic. Added after the others, so their
    /// bytes are unchanged.
    Config,
}

impl FrameKind {
    pub const ALL: [FrameKind; 5] = [Self::Batch, Self::Status, Self::Ack, Self::Command, Self::Config];

    /// Whose key signs this kind.
    pub fn signer(self) -> Signer {
        match self {
            Self::Batch | Self::Status => Signer::Agent,
            Self::Ack | Self::Command | Self::Config => Signer::Central,
        }
    }

    /// The topic this kind travels on.
    pub fn topic_kind(self) -> TopicKind {
        match self {
            Self::Batch => TopicKind::Punches,
            Self::Status => TopicKind::Status,
            Self::Ack => TopicKind::Acks,
            Self::Command | Self::Config => TopicKind::Commands,
        }
    }

    /// The kind carrying envelope `E`.
    pub fn of<E: Envelope>() -> Self {
        match E::KIND {
            "batch" => Self::Batch,
            "status" => Self::Status,
            "ack" => Self::Ack,
            "config" => Self::Config,
            _ => Self::Command,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Status => "status",
            Self::Ack => "acknowledgement",
            Self::Command => "command",
            Self::Config => "configuration",
        }
    }
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who signs a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signer {
    /// The agent, with the key derived from its own token.
    Agent,
    /// The central service, with its key for that agent.
    Central,
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Agent => "the agent's",
            Self::Central => "central's",
        })
    }
}

/// A frame's HMAC-SHA256.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameMac(pub [u8; MAC_LEN]);

impl fmt::Debug for FrameMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FrameMac({})", hex::encode(self.0))
    }
}

/// One envelope's bytes, who they are for and the proof of who wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedFrame {
    /// [`SIGNED_FRAME_VERSION`].
    pub version: u16,
    /// The agent the frame is from (batch, status) or for (ack, command).
    pub agent: AgentId,
    pub kind: FrameKind,
    /// The exact bytes of the envelope, in bincode.
    #[serde(with = "payload_bytes")]
    pub payload: Vec<u8>,
    pub mac: FrameMac,
}

/// Why a frame's proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the frame names agent {found}, not {expected}")]
    WrongAgent { expected: AgentId, found: AgentId },
    #[error("the frame carries a {found} where a {expected} belongs")]
    WrongKind { expected: FrameKind, found: FrameKind },
    #[error("the frame's proof does not match {signer} key for agent {agent}")]
    BadMac { signer: Signer, agent: AgentId },
}

/// Why an agent token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("an agent token starts with {TOKEN_PREFIX:?}")]
    Prefix,
    #[error("no secret after the agent id (want agt_<agent>_<secret>)")]
    NoSecret,
    #[error("the token's agent id is invalid: {0}")]
    Agent(#[from] crate::ids::IdError),
    #[error("the token's secret is not {SECRET_HEX_LEN} hex digits")]
    Secret,
}

impl SignedFrame {
    /// The frame's bytes.
    ///
    /// # Errors
    /// [`EncodeError`] when the payload is over [`MAX_ENVELOPE_BYTES`] or the encoder fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        self.check_payload()?;
        bincode::serde::encode_to_vec(self, config())
            .map_err(|e| EncodeError::Serializer { encoding: "bincode", reason: e.to_string() })
    }

    /// Reads a frame from untrusted bytes: size first, then the version, then the fields. The proof is checked by
    /// [`AgentKeys::open`].
    ///
    /// # Errors
    /// [`DecodeError::TooLarge`], [`DecodeError::UnsupportedVersion`] (a bare envelope, or a newer frame),
    /// [`DecodeError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(DecodeError::TooLarge { size: bytes.len(), limit: MAX_FRAME_BYTES });
        }
        let found = leading_version(bytes).ok_or_else(|| malformed("cannot read the version".into()))?;
        if found != SIGNED_FRAME_VERSION {
            return Err(DecodeError::UnsupportedVersion { found, supported: SIGNED_FRAME_VERSION });
        }
        let (frame, used): (Self, usize) =
            bincode::serde::decode_from_slice(bytes, config()).map_err(|e| malformed(e.to_string()))?;
        if used != bytes.len() {
            return Err(malformed(format!("{} trailing bytes after the frame", bytes.len() - used)));
        }
        frame.check_payload()?;
        Ok(frame)
    }

    fn check_payload(&self) -> Result<(), DecodeError> {
        if self.payload.len() > MAX_ENVELOPE_BYTES {
            return Err(DecodeError::TooLarge { size: self.payload.len(), limit: MAX_ENVELOPE_BYTES });
        }
        Ok(())
    }
}

/// The version field every frame and envelope starts with, when the bytes hold one (bincode).
pub fn leading_version(bytes: &[u8]) -> Option<u16> {
    bincode::serde::decode_from_slice::<u16, _>(bytes, config()).ok().map(|(version, _)| version)
}

/// Whether `bytes` start like a signed frame (rather than a bare envelope of an earlier release).
pub fn is_signed_frame(bytes: &[u8]) -> bool {
    leading_version(bytes).is_some_and(|v| v >= SIGNED_FRAME_VERSION)
}

/// The keys of one agent, derived from its secret hash. Debug output hides them.
#[derive(Clone)]
pub struct AgentKeys {
    agent_mac: [u8; 32],
    central_mac: [u8; 32],
    broker_password: String,
}

impl fmt::Debug for AgentKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentKeys(<redacted>)")
    }
}

impl AgentKeys {
    /// The keys derived from SHA-256 of the token's secret, as central stores it.
    pub fn from_secret_hash(secret_hash: &[u8]) -> Self {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac = HmacSha256::new_from_slice(secret_hash).expect("HMAC takes a key of any length");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        Self {
            agent_mac: derive(LABEL_AGENT_MAC),
            central_mac: derive(LABEL_CENTRAL_MAC),
            broker_password: hex::encode(derive(LABEL_BROKER_PASSWORD)),
        }
    }

    /// Reads an agent token `agt_<agent>_<64 hex digits>` (the agent id may contain `_`: the secret is after the
    /// last one) and derives its keys.
    ///
    /// # Errors
    /// [`TokenError`] naming the part that is wrong.
    pub fn from_token(token: &str) -> Result<(AgentId, Self), TokenError> {
        let (agent, hash) = token_secret_hash(token)?;
        Ok((agent, Self::from_secret_hash(&hash)))
    }

    /// The agent's MQTT broker password (64 hex digits), for the broker's password file and the agent's login.
    pub fn broker_password(&self) -> &str {
        &self.broker_password
    }

    /// Signs `payload` (an envelope's bincode bytes) as a frame of `kind` for `agent`, with the key of the kind's
    /// signer.
    pub fn seal(&self, agent: &AgentId, kind: FrameKind, payload: Vec<u8>) -> SignedFrame {
        let mac = self.mac(agent, kind, &payload).finalize().into_bytes().into();
        SignedFrame { version: SIGNED_FRAME_VERSION, agent: agent.clone(), kind, payload, mac: FrameMac(mac) }
    }

    /// Encodes an envelope in bincode and signs it: the bytes to publish.
    ///
    /// # Errors
    /// [`EncodeError`] when the envelope breaks a limit.
    pub fn seal_envelope<E: Envelope>(&self, agent: &AgentId, envelope: &E) -> Result<Vec<u8>, EncodeError> {
        let payload = crate::encode(envelope, Encoding::Bincode)?;
        self.seal(agent, FrameKind::of::<E>(), payload).to_bytes()
    }

    /// Checks that `frame` is a `kind` for `agent` signed with this agent's key for that kind, and returns its
    /// payload. The comparison takes the same time whatever the MAC.
    ///
    /// # Errors
    /// [`ProofError`] saying what did not match.
    pub fn open<'f>(&self, frame: &'f SignedFrame, agent: &AgentId, kind: FrameKind) -> Result<&'f [u8], ProofError> {
        if &frame.agent != agent {
            return Err(ProofError::WrongAgent { expected: agent.clone(), found: frame.agent.clone() });
        }
        if frame.kind != kind {
            return Err(ProofError::WrongKind { expected: kind, found: frame.kind });
        }
        self.mac_for_version(frame.version, agent, kind, &frame.payload)
            .verify_slice(&frame.mac.0)
            .map_err(|_| ProofError::BadMac { signer: kind.signer(), agent: agent.clone() })?;
        Ok(&frame.payload)
    }

    fn mac(&self, agent: &AgentId, kind: FrameKind, payload: &[u8]) -> HmacSha256 {
        self.mac_for_version(SIGNED_FRAME_VERSION, agent, kind, payload)
    }

    /// The HMAC over the frame's bytes before its MAC: the bincode of the header fields and the payload's length,
    /// then the payload itself (not copied).
    fn mac_for_version(&self, version: u16, agent: &AgentId, kind: FrameKind, payload: &[u8]) -> HmacSha256 {
        let key = match kind.signer() {
            Signer::Agent => &self.agent_mac,
            Signer::Central => &self.central_mac,
        };
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
        let header = (version, agent, kind, payload.len() as u64);
        // Encoding four small values into a Vec cannot fail.
        let header = bincode::serde::encode_to_vec(header, config()).unwrap_or_default();
        mac.update(&header);
        mac.update(payload);
        mac
    }
}

/// The agent id of a token and SHA-256 of its secret's text (lowercase hex), which is what central stores.
///
/// # Errors
/// [`TokenError`] naming the part that is wrong.
pub fn token_secret_hash(token: &str) -> Result<(AgentId, [u8; 32]), TokenError> {
    let rest = token.trim().strip_prefix(TOKEN_PREFIX).ok_or(TokenError::Prefix)?;
    let (agent, secret) = rest.rsplit_once('_').ok_or(TokenError::NoSecret)?;
    let agent: AgentId = agent.parse()?;
    if secret.len() != SECRET_HEX_LEN || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TokenError::Secret);
    }
    Ok((agent, Sha256::digest(secret.to_ascii_lowercase().as_bytes()).into()))
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME_BYTES>()
}

fn malformed(reason: String) -> DecodeError {
    DecodeError::Malformed { encoding: "bincode", kind: "signed frame", reason }
}

/// The payload as one length-prefixed byte string (the same bytes as a sequence of `u8`, read without a per-byte
/// visit).
mod payload_bytes {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::limits::MAX_ENVELOPE_BYTES;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the envelope's bytes")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_ENVELOPE_BYTES));
            while let Some(byte) = seq.next_element()? {
                if out.len() == MAX_ENVELOPE_BYTES {
                    return Err(A::Error::custom("payload over the envelope limit"));
                }
                out.push(byte);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "agt_gate_pc-1_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn keys() -> (AgentId, AgentKeys) {
        AgentKeys::from_token(TOKEN).unwrap()
    }

    #[test]
    fn the_mac_covers_exactly_the_bytes_before_it() {
        let (agent, keys) = keys();
        let frame = keys.seal(&agent, FrameKind::Batch, b"payload".to_vec());
        let bytes = frame.to_bytes().unwrap();
        let (signed, mac) = bytes.split_at(bytes.len() - MAC_LEN);
        let mut expected = HmacSha256::new_from_slice(&keys.agent_mac).unwrap();
        expected.update(signed);
        assert_eq!(mac, expected.finalize().into_bytes().as_slice());
        assert_eq!(&bytes[..3], &[0xfb, 0x00, 0x01], "version 256 in bincode's varint");
        assert_eq!(SignedFrame::from_bytes(&bytes).unwrap(), frame);
    }

    #[test]
    fn each_direction_has_its_own_key() {
        let (agent, keys) = keys();
        let batch = keys.seal(&agent, FrameKind::Batch, b"x".to_vec());
        let mut as_ack = batch.clone();
        as_ack.kind = FrameKind::Ack;
        assert_eq!(keys.open(&batch, &agent, FrameKind::Batch).unwrap(), b"x");
        assert!(matches!(
            keys.open(&as_ack, &agent, FrameKind::Ack),
            Err(ProofError::BadMac { signer: Signer::Central, .. })
        ));
        assert!(matches!(keys.open(&batch, &agent, FrameKind::Ack), Err(ProofError::WrongKind { .. })));
        let other: AgentId = "gate-2".parse().unwrap();
        assert!(matches!(keys.open(&batch, &other, FrameKind::Batch), Err(ProofError::WrongAgent { .. })));
        assert_ne!(keys.agent_mac, keys.central_mac);
        assert_ne!(keys.broker_password(), hex::encode(keys.agent_mac));
    }

    #[test]
    fn tokens_are_read_like_central_reads_them() {
        let (agent, hash) = token_secret_hash(TOKEN).unwrap();
        assert_eq!(agent.as_str(), "gate_pc-1");
        let upper = TOKEN.replace("aabbccddeeff", "AABBCCDDEEFF");
        assert_eq!(token_secret_hash(&upper).unwrap().1, hash, "the secret is hashed in lowercase");
        assert_eq!(token_secret_hash("nope"), Err(TokenError::Prefix));
        assert_eq!(token_secret_hash("agt_nosecret"), Err(TokenError::NoSecret));
        assert_eq!(token_secret_hash("agt_a_1234"), Err(TokenError::Secret));
        assert!(matches!(token_secret_hash(&TOKEN.replace("gate_pc-1", "gate/1")), Err(TokenError::Agent(_))));
    }

    #[test]
    fn envelopes_and_frames_are_told_apart() {
        assert!(!is_signed_frame(&[2, 0]));
        assert!(!is_signed_frame(&[]));
        let (agent, keys) = keys();
        assert!(is_signed_frame(&keys.seal(&agent, FrameKind::Status, vec![]).to_bytes().unwrap()));
        assert!(matches!(
            SignedFrame::from_bytes(&[2, 0, 0]),
            Err(DecodeError::UnsupportedVersion { found: 2, supported: SIGNED_FRAME_VERSION })
        ));
    }

    #[test]
    fn debug_hides_the_keys() {
        let (_, keys) = keys();
        assert_eq!(format!("{keys:?}"), "AgentKeys(<redacted>)");
    }
}

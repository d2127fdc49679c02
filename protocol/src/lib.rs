//! The wire contract between `edge-agent` and `central-api`.
//!
//! Everything that crosses the network between a site and the central service is defined here, and only here:
//! the [`Punch`] and its stable [`PunchKey`], the four envelopes ([`PunchBatch`], [`BatchAck`], [`AgentStatus`],
//! [`AgentCommand`]), their two encodings ([`Encoding::Bincode`] and [`Encoding::Json`]) with size limits, and the
//! MQTT topic layout ([`Topics`]), and the [`SignedFrame`] that proves on MQTT who wrote an envelope.
//!
//! Architecture invariant: this crate does no I/O. It knows nothing of tokio, sled, sqlx or HTTP; it turns values into
//! bytes and bytes into validated values.
//!
//! The bincode format is frozen by golden vectors in `tests/golden/`; changing the bytes for an existing value means a
//! new [`PROTOCOL_VERSION`].

pub mod codec;
pub mod envelope;
pub mod fleet;
pub mod ids;
pub mod key;
pub mod limits;
pub mod punch;
pub mod signed;
pub mod time;
pub mod topic;
pub mod users;
pub mod v1;

pub use codec::{
    decode, decode_upgrading, encode, encode_ack, DecodeError, EncodeError, Encoding, Envelope, Upgradable, Versioned,
};
pub use envelope::{
    AckOutcome, AgentCommand, AgentStatus, BatchAck, BatchId, CommandAction, CommandResult, DeviceInfo, DeviceStatus,
    DeviceUser, Fault, PunchBatch, PushCommand, RejectionKind, SequencedPunch,
};
pub use fleet::{AgentInbox, ManagedConfig, ManagedDevice};
pub use ids::{AgentId, DeviceSerial, IdError, Pin, SiteId};
pub use key::PunchKey;
pub use punch::{Direction, Punch, PunchSource, PunchState, VerifyMode};
pub use signed::{AgentKeys, FrameKind, ProofError, SignedFrame, SIGNED_FRAME_VERSION};
pub use topic::{AgentTopic, TopicError, TopicKind, Topics};
pub use users::{UserRefusal, UserUpdate, UsersReport};

/// The protocol version this build writes.
///
/// Every envelope carries it as its first field, so a decoder can refuse a payload from a newer or older peer with a
/// clear [`DecodeError::UnsupportedVersion`] instead of misreading its bytes. [`decode`] reads only this version;
/// [`decode_upgrading`] also reads version 1 ([`v1`]) for what agents send, and [`encode_ack`] answers in it.
///
/// Version 2 added: raw device codes on punches, the Hikvision and Dahua sources, a batch id echoed by its
/// acknowledgement, a quarantined count and a refusal kind in acknowledgements, device kind, info and last punch,
/// the agent's hostname, dead-letter count and configuration version in statuses, and a command expiry. Within
/// version 2, without changing any earlier bytes: the fleet commands (new [`CommandAction`] variants at the end), the
/// [`ManagedConfig`] and [`AgentInbox`] envelopes and the [`FrameKind::Config`] frame; later [`CommandAction::WriteUsers`] (issue 17's card and privilege).
pub const PROTOCOL_VERSION: u16 = 2;

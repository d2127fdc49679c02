//! The wire contract between `edge-agent` and `central-api`.
//!
//! Everything that crosses the network between a site and the central service is defined here, and only here:
//! the [`Punch`] and its stable [`PunchKey`], the four envelopes ([`PunchBatch`], [`BatchAck`], [`AgentStatus`],
//! [`AgentCommand`]), their two encodings ([`Encoding::Bincode`] and [`Encoding::Json`]) with size limits, and the
//! MQTT topic layout ([`Topics`]).
//!
//! Architecture invariant: this crate does no I/O. It knows nothing of tokio, sled, sqlx or HTTP; it turns values into
//! bytes and bytes into validated values.
//!
//! The bincode format is frozen by golden vectors in `tests/golden/`; changing the bytes for an existing value means a
//! new [`PROTOCOL_VERSION`].

pub mod codec;
pub mod envelope;
pub mod ids;
pub mod key;
pub mod limits;
pub mod punch;
pub mod time;
pub mod topic;

pub use codec::{decode, encode, DecodeError, EncodeError, Encoding, Envelope};
pub use envelope::{
    AckOutcome, AgentCommand, AgentStatus, BatchAck, CommandAction, CommandResult, DeviceStatus, Fault, PunchBatch,
    SequencedPunch,
};
pub use ids::{AgentId, DeviceSerial, IdError, Pin, SiteId};
pub use key::PunchKey;
pub use punch::{Direction, Punch, PunchSource, PunchState, VerifyMode};
pub use topic::{AgentTopic, TopicError, TopicKind, Topics};

/// The protocol version this build writes and the only one it reads.
///
/// Every envelope carries it as its first field, so a decoder can refuse a payload from a newer or older peer with a
/// clear [`DecodeError::UnsupportedVersion`] instead of misreading its bytes.
pub const PROTOCOL_VERSION: u16 = 1;

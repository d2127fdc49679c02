//! The two encodings of an envelope, with size limits and typed errors.
//!
//! - [`Encoding::Bincode`]: bincode 2.0.1 (serde, standard config: little-endian, variable-length integers), used for
//!   MQTT payloads and HTTP `application/x-bincode`. Frozen by the golden vectors in `tests/golden/`.
//! - [`Encoding::Json`]: used for HTTP `application/json`; readable, with named states and ISO times.
//!
//! [`decode`] refuses, in this order: payloads over [`MAX_ENVELOPE_BYTES`], a protocol version other than
//! [`PROTOCOL_VERSION`], bytes that do not parse, and values that break the envelope's limits.
//!
//! [`decode_upgrading`] is what the central service uses for what agents send: it also accepts the previous version
//! (see [`crate::v1`]) and says which version it read, so that [`encode_ack`] can answer in that version.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::envelope::{AgentCommand, AgentStatus, BatchAck, PunchBatch};
use crate::fleet::{AgentInbox, ManagedConfig};
use crate::limits::MAX_ENVELOPE_BYTES;
use crate::{v1, PROTOCOL_VERSION};

/// How an envelope is turned into bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Bincode,
    Json,
}

impl Encoding {
    pub const BINCODE_CONTENT_TYPE: &'static str = "application/x-bincode";
    pub const JSON_CONTENT_TYPE: &'static str = "application/json";

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Bincode => Self::BINCODE_CONTENT_TYPE,
            Self::Json => Self::JSON_CONTENT_TYPE,
        }
    }

    /// The encoding for an HTTP `Content-Type` (parameters such as `; charset=utf-8` ignored), if it is one of ours.
    pub fn from_content_type(value: &str) -> Option<Self> {
        let media = value.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case(Self::BINCODE_CONTENT_TYPE) {
            Some(Self::Bincode)
        } else if media.eq_ignore_ascii_case(Self::JSON_CONTENT_TYPE) {
            Some(Self::Json)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Bincode => "bincode",
            Self::Json => "JSON",
        }
    }
}

/// Why bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("{count} {what}, over the limit of {limit}")]
    TooMany { what: &'static str, count: usize, limit: usize },
    /// The bincode decoder's allocation budget ([`MAX_ENVELOPE_BYTES`]) ran out: the envelope holds too many items
    /// (a batch of tens of thousands of punches) even though its bytes are under the limit.
    #[error(
        "the bincode {kind} holds more values than the decoder's limit of {limit} bytes allows; send fewer items \
         (a batch carries at most {max_punches} punches)"
    )]
    DecodedTooLarge { kind: &'static str, limit: usize, max_punches: usize },
    #[error("unsupported protocol version {found}; this build speaks version {supported}")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("malformed {encoding} {kind}: {reason}")]
    Malformed { encoding: &'static str, kind: &'static str, reason: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl DecodeError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }

    /// Whether the refusal is about size (HTTP 413) rather than content (HTTP 400).
    pub fn is_size_limit(&self) -> bool {
        matches!(self, Self::TooLarge { .. } | Self::TooMany { .. } | Self::DecodedTooLarge { .. })
    }
}

/// Why a value could not be encoded (it breaks a limit the peer would refuse it for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("refusing to encode: {0}")]
    Invalid(#[from] DecodeError),
    #[error("{encoding} encoder failed: {reason}")]
    Serializer { encoding: &'static str, reason: String },
}

/// One of the envelopes (the four of the punch path, and the fleet's configuration and inbox). Implemented here for each of them; not meant to be implemented elsewhere.
pub trait Envelope: Serialize + DeserializeOwned {
    /// A short name used in error messages: `batch`, `ack`, `status`, `command`, `config`, `inbox`.
    const KIND: &'static str;
    /// The version field.
    fn version(&self) -> u16;
    /// The checks serde cannot make.
    ///
    /// # Errors
    /// [`DecodeError::TooMany`] or [`DecodeError::Invalid`].
    fn validate(&self) -> Result<(), DecodeError>;
}

macro_rules! envelope {
    ($ty:ty, $kind:literal) => {
        impl Envelope for $ty {
            const KIND: &'static str = $kind;
            fn version(&self) -> u16 {
                self.version
            }
            fn validate(&self) -> Result<(), DecodeError> {
                <$ty>::validate(self)
            }
        }
    };
}
envelope!(PunchBatch, "batch");
envelope!(BatchAck, "ack");
envelope!(AgentStatus, "status");
envelope!(AgentCommand, "command");
envelope!(ManagedConfig, "config");
envelope!(AgentInbox, "inbox");

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_ENVELOPE_BYTES>()
}

/// Encodes an envelope after checking it against the limits a peer enforces.
///
/// # Errors
/// [`EncodeError::Invalid`] when the value breaks a limit; [`EncodeError::Serializer`] when the encoder fails.
pub fn encode<E: Envelope>(envelope: &E, encoding: Encoding) -> Result<Vec<u8>, EncodeError> {
    envelope.validate()?;
    serialize(envelope, encoding)
}

fn serialize<T: Serialize>(value: &T, encoding: Encoding) -> Result<Vec<u8>, EncodeError> {
    let bytes = match encoding {
        Encoding::Bincode => bincode::serde::encode_to_vec(value, bincode_config())
            .map_err(|e| EncodeError::Serializer { encoding: encoding.name(), reason: e.to_string() })?,
        Encoding::Json => serde_json::to_vec(value)
            .map_err(|e| EncodeError::Serializer { encoding: encoding.name(), reason: e.to_string() })?,
    };
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: MAX_ENVELOPE_BYTES }.into());
    }
    Ok(bytes)
}

/// Decodes and validates an envelope from untrusted bytes.
///
/// # Errors
/// See the module documentation for the order of checks.
pub fn decode<E: Envelope>(bytes: &[u8], encoding: Encoding) -> Result<E, DecodeError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: MAX_ENVELOPE_BYTES });
    }
    let found = peek_version(bytes, encoding).map_err(|reason| malformed::<E>(encoding, reason))?;
    if found != PROTOCOL_VERSION {
        return Err(DecodeError::UnsupportedVersion { found, supported: PROTOCOL_VERSION });
    }
    let value: E = parse::<E, E>(bytes, encoding)?;
    value.validate()?;
    Ok(value)
}

/// An envelope an agent sends, which the central service still accepts in the previous protocol version.
pub trait Upgradable: Envelope {
    /// The same envelope as version 1 wrote it.
    type V1: DeserializeOwned + Into<Self>;
}

impl Upgradable for PunchBatch {
    type V1 = v1::PunchBatch;
}

impl Upgradable for AgentStatus {
    type V1 = v1::AgentStatus;
}

/// A decoded envelope and the protocol version it was written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<E> {
    pub value: E,
    /// [`PROTOCOL_VERSION`] or [`v1::VERSION`].
    pub wire_version: u16,
}

/// Decodes and validates an envelope in the current or the previous protocol version; a previous-version envelope
/// is upgraded to the current type (see [`crate::v1`] for what that fills in).
///
/// # Errors
/// As [`decode`]; [`DecodeError::UnsupportedVersion`] for any version other than these two.
pub fn decode_upgrading<E: Upgradable>(bytes: &[u8], encoding: Encoding) -> Result<Versioned<E>, DecodeError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: MAX_ENVELOPE_BYTES });
    }
    let found = peek_version(bytes, encoding).map_err(|reason| malformed::<E>(encoding, reason))?;
    let value: E = match found {
        PROTOCOL_VERSION => parse::<E, E>(bytes, encoding)?,
        v1::VERSION => parse::<E, E::V1>(bytes, encoding)?.into(),
        _ => return Err(DecodeError::UnsupportedVersion { found, supported: PROTOCOL_VERSION }),
    };
    value.validate()?;
    Ok(Versioned { value, wire_version: found })
}

/// Encodes an acknowledgement in the protocol version the batch it answers was written in: the current one, or
/// [`v1::VERSION`] for an agent of the first release.
///
/// # Errors
/// As [`encode`]; [`EncodeError::Invalid`] with [`DecodeError::UnsupportedVersion`] for any other version.
pub fn encode_ack(ack: &BatchAck, encoding: Encoding, wire_version: u16) -> Result<Vec<u8>, EncodeError> {
    match wire_version {
        PROTOCOL_VERSION => encode(ack, encoding),
        v1::VERSION => {
            ack.validate()?;
            serialize(&v1::BatchAck::from(ack), encoding)
        }
        found => Err(DecodeError::UnsupportedVersion { found, supported: PROTOCOL_VERSION }.into()),
    }
}

fn malformed<E: Envelope>(encoding: Encoding, reason: String) -> DecodeError {
    DecodeError::Malformed { encoding: encoding.name(), kind: E::KIND, reason }
}

/// Parses the bytes of envelope `E` as type `T` (`E` itself or its previous version), refusing trailing bytes.
fn parse<E: Envelope, T: DeserializeOwned>(bytes: &[u8], encoding: Encoding) -> Result<T, DecodeError> {
    match encoding {
        Encoding::Bincode => {
            let (value, used) =
                bincode::serde::decode_from_slice::<T, _>(bytes, bincode_config()).map_err(|e| match e {
                    // Issue 12: a size refusal like the JSON one (HTTP 413), not a malformed body.
                    bincode::error::DecodeError::LimitExceeded => DecodeError::DecodedTooLarge {
                        kind: E::KIND,
                        limit: MAX_ENVELOPE_BYTES,
                        max_punches: crate::limits::MAX_PUNCHES_PER_BATCH,
                    },
                    other => malformed::<E>(encoding, other.to_string()),
                })?;
            if used != bytes.len() {
                return Err(malformed::<E>(
                    encoding,
                    format!("{} trailing bytes after the {}", bytes.len() - used, E::KIND),
                ));
            }
            Ok(value)
        }
        Encoding::Json => serde_json::from_slice::<T>(bytes).map_err(|e| malformed::<E>(encoding, e.to_string())),
    }
}

/// Reads only the version, which every envelope carries first.
fn peek_version(bytes: &[u8], encoding: Encoding) -> Result<u16, String> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u16,
    }
    match encoding {
        Encoding::Bincode => bincode::serde::decode_from_slice::<u16, _>(bytes, bincode_config())
            .map(|(version, _)| version)
            .map_err(|e| format!("cannot read the protocol version: {e}")),
        Encoding::Json => serde_json::from_slice::<VersionOnly>(bytes).map(|v| v.version).map_err(|e| e.to_string()),
    }
}

//! How the buffer lays its data out in one sled tree, and how stored punches are encoded.
//!
//! Everything lives in the default tree so that one append (punches, key index entries, the next sequence number and
//! the live-bytes count) is a single atomic `apply_batch`: after a crash either all of it is there or none of it.
//! Separate trees would need sled transactions, which are several times slower. Keys start with a one-byte prefix:
//!
//! | prefix | key                                   | value                                     |
//! |--------|---------------------------------------|-------------------------------------------|
//! | `m`    | `m` name                              | meta: format, next seq, ack mark, size    |
//! | `p`    | `p` first seq (u64 big-endian)        | a chunk of consecutive punches            |
//! | `k`    | `k` first seq (u64 BE)                | the keys of that chunk, 16 bytes each     |
//! | `a`    | `a` acked-at ms (i64 BE) seq (u64 BE) | empty: when each watermark was reached    |
//! | `c`    | `c` device serial 0x00 cursor name    | the source's cursor bytes (ADMS stamps    |
//! |        |                                       | `adms.stamp.<TABLE>`, `adms.users`, the   |
//! |        |                                       | Modbus `modbus.counter`)                  |
//! | `q`    | `q` first seq (u64 BE)                | a chunk that could not be decoded         |
//! | `d`    | `d` first seq (u64 BE)                | dead letters: a refused batch's punches   |
//! |        |                                       | (a chunk) with when and why (`deadletter`) |
//! | `r`    | `r` first seq (u64 BE)                | last seq of a dead-letter range retried:  |
//! |        |                                       | those numbers were never acknowledged     |
//!
//! Punches are stored in chunks of up to [`CHUNK_PUNCHES`] consecutive sequence numbers (chunks written by earlier
//! versions hold up to [`MAX_CHUNK_PUNCHES`]; readers take any count up to it), one sled entry per chunk,
//! and their keys likewise (`k`, same first sequence): sled's cost is per entry, and one entry per punch or per key
//! capped appends far below the 100,000 punches/s target. A punch chunk is deleted once the acknowledgement watermark
//! passes its last punch (readers skip the acknowledged part of a chunk the watermark splits); a key chunk stays for
//! the key retention. Big-endian sequence numbers sort numerically, so range scans read the backlog in order.

use chrono::{DateTime, Utc};
use protocol::{DeviceSerial, Punch, PunchKey};

pub const META_FORMAT: &[u8] = b"mformat";
pub const META_NEXT_SEQ: &[u8] = b"mnext_seq";
pub const META_ACKED: &[u8] = b"macked";
/// The bytes of live entries (keys plus values plus [`ENTRY_OVERHEAD`] each), kept with every change.
pub const META_LIVE_BYTES: &[u8] = b"mlive_bytes";
/// Written into a fresh buffer; a buffer without it (or with another value) is not ours and is moved aside.
pub const FORMAT_MARKER: &[u8] = b"attendance-edge-buffer/v1";

pub const PUNCH: u8 = b'p';
pub const KEY: u8 = b'k';
pub const ACK_LOG: u8 = b'a';
pub const CURSOR: u8 = b'c';
pub const QUARANTINE: u8 = b'q';
pub const DEAD_LETTER: u8 = b'd';
pub const RETRIED: u8 = b'r';

/// Most punches written in one chunk (about 2.4 KB). sled 0.34 keeps a tree node in memory until its page cache
/// evicts it, and that cache is 256 LRU shards that each keep at least the node they saw last; a leaf holds up to 16
/// entries. With chunks of 1,000 punches (about 75 KB) a 1,000,000-punch backlog had fewer leaves than shards and
/// stayed wholly in memory (`bench sql-backlog`: 111 MB RSS); chunks this small make leaves of a few tens of KB that
/// the cache pages out (with [`crate::malloc::release_free_pages`]: under 50 MB), at about a third more CPU per
/// punch appended (more sled entries per punch).
pub const CHUNK_PUNCHES: usize = 32;
/// Most punches a stored chunk may hold, and so what one read decodes: earlier versions wrote chunks of up to 1,000.
pub const MAX_CHUNK_PUNCHES: usize = 1000;
/// What sled spends per entry beyond its key and value, roughly; only used for the live-bytes estimate.
pub const ENTRY_OVERHEAD: u64 = 16;

/// The chunk format version, the first byte of every chunk.
const CHUNK_V1: u8 = 1;
/// version + appended-at ms + count.
const CHUNK_HEADER: usize = 1 + 8 + 4;
/// Largest encoded punch accepted when decoding (a punch is about 100 bytes; ids are bounded).
const MAX_PUNCH_BYTES: usize = 4096;

/// The live-bytes weight of one entry.
pub fn entry_bytes(key_len: usize, value_len: usize) -> u64 {
    (key_len + value_len) as u64 + ENTRY_OVERHEAD
}

pub fn seq_key(prefix: u8, seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = prefix;
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The keys of a chunk, packed.
pub fn encode_keys(punches: &[(PunchKey, Punch)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(punches.len() * 16);
    for (key, _) in punches {
        out.extend_from_slice(key.as_bytes());
    }
    out
}

/// Unpacks a key chunk; a trailing partial key (damage) is dropped.
pub fn decode_keys(value: &[u8]) -> impl Iterator<Item = [u8; 16]> + '_ {
    value.chunks_exact(16).filter_map(|raw| <[u8; 16]>::try_from(raw).ok())
}

pub fn ack_log_key(acked_at_ms: i64, seq: u64) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0] = ACK_LOG;
    out[1..9].copy_from_slice(&acked_at_ms.to_be_bytes());
    out[9..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// Reads `(acked_at_ms, seq)` back from an ack log key.
pub fn parse_ack_log_key(key: &[u8]) -> Option<(i64, u64)> {
    if key.len() != 17 || key[0] != ACK_LOG {
        return None;
    }
    let at = i64::from_be_bytes(key[1..9].try_into().ok()?);
    let seq = u64::from_be_bytes(key[9..].try_into().ok()?);
    Some((at, seq))
}

pub fn cursor_key(device: &DeviceSerial, name: &str) -> Vec<u8> {
    // A serial has no NUL (ids are validated), so the separator makes the key unambiguous.
    let mut key = Vec::with_capacity(2 + device.as_str().len() + name.len());
    key.push(CURSOR);
    key.extend_from_slice(device.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The first sequence of the chunk (under `prefix`) holding `seq`, or `seq` itself when no chunk holds it; `count`
/// tells how many sequence numbers a chunk's value covers.
///
/// # Errors
/// When sled fails.
pub fn chunk_start(db: &sled::Db, prefix: u8, seq: u64, count: impl Fn(&[u8]) -> u64) -> Result<u64, sled::Error> {
    if let Some(item) = db.range(seq_key(prefix, 0)..=seq_key(prefix, seq)).next_back() {
        let (key, value) = item?;
        if let Some(first) = read_u64(&key) {
            if first + count(&value) > seq {
                return Ok(first);
            }
        }
    }
    Ok(seq)
}

/// Punches a dead-letter entry holds (see `deadletter`); `None` when it is damaged.
pub fn dead_letter_count(value: &[u8]) -> Option<u64> {
    super::deadletter::decode_header(value).and_then(|(_, chunk)| chunk_count(chunk))
}

/// Reads a sequence number from a `seq_key` or a u64 value.
pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    let raw: [u8; 8] = match bytes.len() {
        8 => bytes.try_into().ok()?,
        9 => bytes[1..].try_into().ok()?,
        _ => return None,
    };
    Some(u64::from_be_bytes(raw))
}

/// A punch as stored: when it was appended, its key, and the punch itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPunch {
    pub appended_at: DateTime<Utc>,
    pub key: PunchKey,
    pub punch: Punch,
}

/// Why a stored chunk could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("chunk is {0} bytes, shorter than its header")]
    Short(usize),
    #[error("chunk format version {0} is unknown")]
    Version(u8),
    #[error("chunk body does not decode: {0}")]
    Body(String),
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_PUNCH_BYTES>()
}

/// Encodes a chunk of punches appended at `appended_at_ms`.
///
/// # Errors
/// When a punch cannot be serialised (it always can; the error is passed on rather than unwrapped).
pub fn encode_chunk(appended_at_ms: i64, punches: &[(PunchKey, Punch)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(CHUNK_HEADER + punches.len() * 120);
    out.push(CHUNK_V1);
    out.extend_from_slice(&appended_at_ms.to_be_bytes());
    let count = u32::try_from(punches.len()).map_err(|_| "too many punches for one chunk".to_owned())?;
    out.extend_from_slice(&count.to_be_bytes());
    for (key, punch) in punches {
        out.extend_from_slice(key.as_bytes());
        let body = bincode::serde::encode_to_vec(punch, bincode_config()).map_err(|e| e.to_string())?;
        let len = u16::try_from(body.len()).map_err(|_| format!("punch of {} bytes", body.len()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&body);
    }
    Ok(out)
}

/// How many punches a chunk holds, from its header only.
pub fn chunk_count(chunk: &[u8]) -> Option<u64> {
    if chunk.len() < CHUNK_HEADER || chunk[0] != CHUNK_V1 {
        return None;
    }
    chunk[9..13].try_into().ok().map(u32::from_be_bytes).map(u64::from)
}

/// When a chunk was appended, from its header only.
pub fn chunk_appended_at_ms(chunk: &[u8]) -> Option<i64> {
    if chunk.len() < CHUNK_HEADER || chunk[0] != CHUNK_V1 {
        return None;
    }
    chunk[1..9].try_into().ok().map(i64::from_be_bytes)
}

/// Decodes a chunk.
///
/// # Errors
/// [`RecordError`] naming what is wrong.
pub fn decode_chunk(chunk: &[u8]) -> Result<Vec<StoredPunch>, RecordError> {
    if chunk.len() < CHUNK_HEADER {
        return Err(RecordError::Short(chunk.len()));
    }
    if chunk[0] != CHUNK_V1 {
        return Err(RecordError::Version(chunk[0]));
    }
    let at_ms = chunk_appended_at_ms(chunk).ok_or(RecordError::Short(chunk.len()))?;
    let count = chunk_count(chunk).ok_or(RecordError::Short(chunk.len()))?;
    let appended_at = DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    let body_error = |what: String| RecordError::Body(what);
    if count > MAX_CHUNK_PUNCHES as u64 {
        return Err(body_error(format!("{count} punches, over the limit of {MAX_CHUNK_PUNCHES}")));
    }
    let mut rest = &chunk[CHUNK_HEADER..];
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for index in 0..count {
        if rest.len() < 18 {
            return Err(body_error(format!("punch {index} is cut short")));
        }
        let raw: [u8; 16] = rest[..16].try_into().map_err(|_| body_error(format!("punch {index} key")))?;
        let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        rest = &rest[18..];
        if rest.len() < len {
            return Err(body_error(format!("punch {index} needs {len} bytes, {} left", rest.len())));
        }
        let (punch, used): (Punch, usize) = bincode::serde::decode_from_slice(&rest[..len], bincode_config())
            .map_err(|e| body_error(format!("punch {index}: {e}")))?;
        if used != len {
            return Err(body_error(format!("punch {index}: {} trailing bytes", len - used)));
        }
        rest = &rest[len..];
        out.push(StoredPunch { appended_at, key: PunchKey::from_bytes(raw), punch });
    }
    if !rest.is_empty() {
        return Err(body_error(format!("{} trailing bytes after {count} punches", rest.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(second: u32) -> Punch {
        let local = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).and_then(|d| d.and_hms_opt(9, 5, second));
        Punch::from_device(
            "plant-1".parse().expect("site"),
            "CDQ9192960006".parse().expect("serial"),
            "1001".parse().expect("pin"),
            local.expect("time"),
            chrono_tz::Asia::Kolkata,
            protocol::PunchState::CheckIn,
            protocol::VerifyMode::Fingerprint,
            0,
            protocol::PunchSource::ZkPull,
            protocol::Direction::Both,
        )
    }

    fn chunk_of(n: u32) -> (Vec<(PunchKey, Punch)>, Vec<u8>) {
        let punches: Vec<_> = (0..n).map(sample).map(|p| (p.key(), p)).collect();
        let chunk = encode_chunk(1_700_000_000_123, &punches).expect("encode");
        (punches, chunk)
    }

    #[test]
    fn chunk_round_trips_and_header_is_readable_alone() {
        let (punches, chunk) = chunk_of(3);
        assert_eq!(chunk_appended_at_ms(&chunk), Some(1_700_000_000_123));
        assert_eq!(chunk_count(&chunk), Some(3));
        let stored = decode_chunk(&chunk).expect("decode");
        assert_eq!(stored.len(), 3);
        for (stored, (key, punch)) in stored.iter().zip(&punches) {
            assert_eq!((&stored.key, &stored.punch), (key, punch));
            assert_eq!(stored.appended_at.timestamp_millis(), 1_700_000_000_123);
        }
    }

    #[test]
    fn damaged_chunks_are_named() {
        let (_, mut chunk) = chunk_of(2);
        assert_eq!(decode_chunk(&chunk[..10]), Err(RecordError::Short(10)));
        assert!(matches!(decode_chunk(&chunk[..chunk.len() - 3]), Err(RecordError::Body(m)) if m.contains("punch 1")));
        chunk.push(0);
        assert!(matches!(decode_chunk(&chunk), Err(RecordError::Body(m)) if m.contains("trailing")));
        chunk[0] = 9;
        assert_eq!(decode_chunk(&chunk), Err(RecordError::Version(9)));
    }

    #[test]
    fn keys_sort_by_sequence() {
        assert!(seq_key(PUNCH, 255) < seq_key(PUNCH, 256));
        assert!(seq_key(PUNCH, u64::MAX).as_slice() < [QUARANTINE].as_slice());
        assert_eq!(read_u64(&seq_key(PUNCH, 77)), Some(77));
        assert_eq!(parse_ack_log_key(&ack_log_key(5, 9)), Some((5, 9)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_decode_or_are_refused_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_chunk(&bytes);
        }

        #[test]
        fn damaging_any_byte_of_a_chunk_never_panics_and_keeps_counts_bounded(index in 0usize..300, value: u8) {
            let (_, mut chunk) = chunk_of(2);
            let index = index % chunk.len();
            chunk[index] = value;
            if let Ok(stored) = decode_chunk(&chunk) {
                prop_assert!(stored.len() <= MAX_CHUNK_PUNCHES);
            }
        }
    }
}

//! Reading the buffer's state from the store (at open, and again after a reopen), and checking it against the
//! marker: a store holding fewer punches than the marker says were stored lost them.
//!
//! What counts as held: every punch chunk above the acknowledgement watermark, and chunks moved to quarantine or to
//! the dead letters (kept, just not forwarded). The punches the store should hold are those from the higher of the
//! two watermarks (store, marker) up to the marker's last appended sequence number. When some are missing, a sled
//! store is not trusted any further (measured: a store recovered from a truncated file may lose data again, or
//! panic, at a later open), so:
//! - what it still holds is salvaged ([`salvage`]: backlog punches, dead letters, quarantine, each scan stopping
//!   at the first error or panic), the store is renamed `<dir>.damaged-<time>` and a fresh one is created;
//! - the salvaged punches are appended to the fresh store after the marker's last sequence number, so numbers never
//!   go back; the dedup index starts empty, so devices re-reading their logs store every punch again (central's
//!   deduplication absorbs what it already has);
//! - the damage is reported to the caller, which raises `buffer_damaged` and asks the devices to resend.

use std::panic::AssertUnwindSafe;

use protocol::{Punch, PunchKey};

use super::layout::{
    chunk_count, read_u64, seq_key, DEAD_LETTER, KEY, META_ACKED, META_LIVE_BYTES, META_NEXT_SEQ, PUNCH, QUARANTINE,
    RETRIED,
};
use super::layout::{dead_letter_count, decode_chunk, encode_chunk, encode_keys, entry_bytes, CHUNK_PUNCHES};
use super::marker::{MarkerRead, MarkerValue};
use super::WriteState;
use super::{keylookup, scan};

/// What the store held when it was opened.
pub(super) struct Loaded {
    pub state: WriteState,
    /// Ranges of sequence numbers held (backlog above the watermark, quarantine, dead letters), sorted.
    pub held: Vec<(u64, u64)>,
}

/// What a damaged store lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Punches the marker says were stored that the store no longer holds.
    pub missing: u64,
    /// The last sequence number the store held / the marker recorded.
    pub store_last: u64,
    pub marker: MarkerValue,
    /// Why: a summary for the fault.
    pub reason: String,
}

/// Reads the counters, the key index and the held ranges.
///
/// # Errors
/// When sled fails.
pub(super) fn load(db: &sled::Db) -> Result<Loaded, sled::Error> {
    let next_seq = db.get(META_NEXT_SEQ)?.and_then(|v| read_u64(&v)).unwrap_or(1).max(1);
    let acked = db.get(META_ACKED)?.and_then(|v| read_u64(&v)).unwrap_or(0);
    let live_bytes = db.get(META_LIVE_BYTES)?.and_then(|v| read_u64(&v)).unwrap_or(0);
    let keys = keylookup::load(db, next_seq)?;
    let mut held = Vec::new();
    let mut pending = 0u64;
    let mut unsettled = Vec::new();
    for prefix in [PUNCH, QUARANTINE, DEAD_LETTER] {
        for item in scan::touching(db, db.range(seq_key(prefix, 0)..=seq_key(prefix, u64::MAX))) {
            let (key, value) = item?;
            let Some(first) = read_u64(&key) else { continue };
            let count = if prefix == DEAD_LETTER { dead_letter_count(&value) } else { chunk_count(&value) };
            let Some(count) = count.filter(|c| *c > 0) else { continue };
            let last = first + count - 1;
            if prefix == PUNCH {
                if last <= acked {
                    continue;
                }
                pending += last - first.max(acked + 1) + 1;
            }
            if prefix == DEAD_LETTER {
                unsettled.push((first, last));
            }
            held.push((first.max(if prefix == PUNCH { acked + 1 } else { first }), last));
        }
    }
    for item in db.scan_prefix([RETRIED]) {
        let (key, value) = item?;
        if let (Some(first), Some(last)) = (read_u64(&key), read_u64(&value)) {
            unsettled.push((first, last));
        }
    }
    held.sort_unstable();
    let state = WriteState { next_seq, acked, live_bytes, keys, pending, unsettled };
    Ok(Loaded { state, held })
}

/// Compares what the store holds with the marker.
pub(super) fn assess(loaded: &Loaded, marker: &MarkerRead) -> Option<Damage> {
    let store_last = loaded.state.next_seq - 1;
    let value = match marker {
        MarkerRead::Absent => return None,
        MarkerRead::Valid(value) => *value,
        MarkerRead::Unreadable(reason) => {
            return Some(Damage {
                missing: 0,
                store_last,
                marker: MarkerValue::default(),
                reason: format!("the buffer's marker is unreadable ({reason}), so losses cannot be ruled out"),
            })
        }
    };
    let from = loaded.state.acked.max(value.acked) + 1;
    let to = value.appended;
    let missing = if to < from { 0 } else { (to - from + 1) - covered(&loaded.held, from, to) };
    if missing == 0 {
        return None;
    }
    Some(Damage {
        missing,
        store_last,
        marker: value,
        reason: format!(
            "the buffer lost {missing} punches: its marker records punches up to sequence {} stored (acknowledged up \
             to {}), the store holds punches up to {store_last}",
            value.appended, value.acked
        ),
    })
}

/// How many of `from..=to` the sorted ranges cover.
fn covered(held: &[(u64, u64)], from: u64, to: u64) -> u64 {
    let mut total = 0;
    let mut next = from;
    for &(first, last) in held {
        let start = first.max(next);
        let end = last.min(to);
        if start <= end {
            total += end - start + 1;
            next = end + 1;
        }
    }
    total
}

/// What could still be read from a damaged store.
#[derive(Default)]
pub(super) struct Salvage {
    /// Backlog punches above the watermark, in order.
    pub punches: Vec<(PunchKey, Punch)>,
    /// Dead-letter and quarantine entries, and retried ranges, copied as they are.
    pub entries: Vec<(sled::IVec, sled::IVec)>,
}

/// Reads what it can; every scan stops at the first error or panic.
pub(super) fn salvage(db: &sled::Db, acked: u64) -> Salvage {
    let mut out = Salvage::default();
    let punches = &mut out.punches;
    let scan = std::panic::catch_unwind(AssertUnwindSafe(|| {
        for item in db.range(seq_key(PUNCH, 0)..=seq_key(PUNCH, u64::MAX)) {
            let Ok((key, value)) = item else { break };
            let (Some(first), Ok(chunk)) = (read_u64(&key), decode_chunk(&value)) else { continue };
            for (seq, stored) in (first..).zip(chunk) {
                if seq > acked {
                    punches.push((stored.key, stored.punch));
                }
            }
        }
    }));
    if scan.is_err() {
        tracing::warn!(salvaged = out.punches.len(), "reading the damaged backlog stopped at a panic inside sled");
    }
    for prefix in [DEAD_LETTER, QUARANTINE, RETRIED] {
        let entries = &mut out.entries;
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
            for item in db.scan_prefix([prefix]) {
                let Ok(pair) = item else { break };
                entries.push(pair);
            }
        }));
    }
    out
}

/// Fills a fresh store with what was salvaged: the sequence continues after `after` (the marker's last number) and
/// the watermark sits at it.
///
/// # Errors
/// When sled fails.
pub(super) fn restore(db: &sled::Db, salvage: &Salvage, after: u64) -> Result<(), sled::Error> {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut live = 0u64;
    let mut batch = sled::Batch::default();
    for (key, value) in &salvage.entries {
        live += entry_bytes(key.len(), value.len());
        batch.insert(key.clone(), value.clone());
    }
    let mut seq = after + 1;
    for chunk in salvage.punches.chunks(CHUNK_PUNCHES) {
        let value = encode_chunk(now_ms, chunk).map_err(sled::Error::Unsupported)?;
        let keys = encode_keys(chunk);
        live += entry_bytes(9, value.len()) + entry_bytes(9, keys.len());
        batch.insert(&seq_key(PUNCH, seq), value);
        batch.insert(&seq_key(KEY, seq), keys);
        seq += chunk.len() as u64;
    }
    batch.insert(META_NEXT_SEQ, &seq.to_be_bytes());
    batch.insert(META_ACKED, &after.to_be_bytes());
    batch.insert(META_LIVE_BYTES, &live.to_be_bytes());
    db.apply_batch(batch)?;
    db.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_each_sequence_once() {
        assert_eq!(covered(&[(1, 10), (5, 20), (30, 40)], 1, 35), 26);
        assert_eq!(covered(&[], 1, 10), 0);
        assert_eq!(covered(&[(11, 20)], 1, 10), 0);
    }
}

//! Dead letters: punches of a batch central refused for good, moved out of the backlog so that forwarding goes on
//! with the rest, and kept until an operator retries or exports them (nothing here deletes them otherwise).
//!
//! Each stored entry (`d` + first sequence number) is one run of consecutive sequence numbers from one punch chunk:
//! `version (1) | refused at, ms (8) | reason length (2) | reason (UTF-8) | the punches as a chunk`. Moving a batch
//! there and moving the watermark past it is one atomic batch, like an acknowledgement; the range is remembered
//! as unsettled, so a device log is never cleared on the strength of it (see `Buffer::unacknowledged_count`).
//! A retry appends the punches again under new sequence numbers and leaves an `r` entry for the old range.

use chrono::{DateTime, Utc};
use protocol::Punch;
use serde::{Deserialize, Serialize};

use super::layout::{
    ack_log_key, chunk_count, decode_chunk, encode_chunk, entry_bytes, read_u64, seq_key, StoredPunch, DEAD_LETTER,
    KEY, META_ACKED, META_LIVE_BYTES, PUNCH, RETRIED,
};
use super::{Buffer, BufferError};

const VERSION: u8 = 1;
/// Longest reason kept.
const MAX_REASON: usize = 1000;

/// One stored run of dead letters, for listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub first_seq: u64,
    pub last_seq: u64,
    pub punches: u64,
    pub refused_at: DateTime<Utc>,
    pub reason: String,
}

/// Splits an entry into (refused at ms, reason, chunk).
pub fn decode_header(value: &[u8]) -> Option<((i64, &str), &[u8])> {
    if value.len() < 11 || value[0] != VERSION {
        return None;
    }
    let at = i64::from_be_bytes(value[1..9].try_into().ok()?);
    let len = usize::from(u16::from_be_bytes([value[9], value[10]]));
    let reason = std::str::from_utf8(value.get(11..11 + len)?).ok()?;
    Some(((at, reason), value.get(11 + len..)?))
}

fn encode(at_ms: i64, reason: &str, chunk: &[u8]) -> Vec<u8> {
    let mut reason = reason.to_owned();
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    let mut out = Vec::with_capacity(11 + reason.len() + chunk.len());
    out.push(VERSION);
    out.extend_from_slice(&at_ms.to_be_bytes());
    out.extend_from_slice(&u16::try_from(reason.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(chunk);
    out
}

impl Buffer {
    /// Moves the punches `first..=last` (the batch at the head of the backlog) to the dead letters with `reason`,
    /// and the watermark past them. Returns how many punches moved.
    ///
    /// # Errors
    /// [`BufferError`]; nothing moved then.
    pub async fn dead_letter(&self, first: u64, last: u64, reason: &str) -> Result<u64, BufferError> {
        let _op = self.inner.ops.start("dead_letter");
        let db = self.db()?;
        let moved = {
            let mut state = self.lock_write();
            if first != state.acked + 1 || last < first || last >= state.next_seq {
                return Err(BufferError::Storage(format!(
                    "dead letters {first}..={last} are not the head of the backlog (acknowledged up to {})",
                    state.acked
                )));
            }
            let now_ms = Utc::now().timestamp_millis();
            let mut batch = sled::Batch::default();
            let mut moved = 0u64;
            let mut live = state.live_bytes;
            let start = super::layout::chunk_start(&db, PUNCH, first, |v| chunk_count(v).unwrap_or(0))
                .map_err(|e| self.storage_error("reading punches to dead-letter", e))?;
            for item in db.range(seq_key(PUNCH, start)..=seq_key(PUNCH, last)) {
                let (key, value) = item.map_err(|e| self.storage_error("reading punches to dead-letter", e))?;
                let Some(chunk_first) = read_u64(&key) else { continue };
                let punches = match decode_chunk(&value) {
                    Ok(punches) => punches,
                    Err(e) => {
                        tracing::warn!(chunk_first, error = %e, "undecodable chunk left for quarantine");
                        continue;
                    }
                };
                live = live.saturating_sub(entry_bytes(key.len(), value.len()));
                batch.remove(&key);
                let numbered: Vec<(u64, StoredPunch)> = (chunk_first..).zip(punches).collect();
                let dead: Vec<_> = numbered.iter().filter(|(s, _)| (first..=last).contains(s)).collect();
                let tail: Vec<_> = numbered.iter().filter(|(s, _)| *s > last).collect();
                if let Some((dead_first, _)) = dead.first() {
                    let pairs: Vec<_> = dead.iter().map(|(_, p)| (p.key, p.punch.clone())).collect();
                    let chunk = encode_chunk(now_ms, &pairs).map_err(BufferError::Storage)?;
                    let entry = encode(now_ms, reason, &chunk);
                    live += entry_bytes(9, entry.len());
                    batch.insert(&seq_key(DEAD_LETTER, *dead_first), entry);
                    moved += pairs.len() as u64;
                }
                if let Some((tail_first, stored)) = tail.first() {
                    let pairs: Vec<_> = tail.iter().map(|(_, p)| (p.key, p.punch.clone())).collect();
                    let chunk =
                        encode_chunk(stored.appended_at.timestamp_millis(), &pairs).map_err(BufferError::Storage)?;
                    live += entry_bytes(9, chunk.len());
                    batch.insert(&seq_key(PUNCH, *tail_first), chunk);
                }
            }
            batch.insert(META_ACKED, &last.to_be_bytes());
            batch.insert(META_LIVE_BYTES, &live.to_be_bytes());
            batch.insert(&ack_log_key(now_ms, last), &[]);
            db.apply_batch(batch).map_err(|e| self.storage_error("moving punches to the dead letters", e))?;
            state.live_bytes = live;
            state.acked = last;
            state.pending = state.pending.saturating_sub(moved);
            state.unsettled.push((first, last));
            self.inner.acked.store(last, std::sync::atomic::Ordering::SeqCst);
            moved
        };
        self.flush_store(&db, "flushing the dead letters").await?;
        self.inner.durable.acked(last);
        self.sync_marker().await?;
        tracing::warn!(first, last, moved, %reason, "punches moved to the dead letters");
        Ok(moved)
    }

    /// The stored dead letters, oldest first.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, BufferError> {
        let db = self.db()?;
        let mut out = Vec::new();
        for item in db.scan_prefix([DEAD_LETTER]) {
            let (key, value) = item.map_err(|e| self.storage_error("reading the dead letters", e))?;
            let (Some(first), Some(((at, reason), chunk))) = (read_u64(&key), decode_header(&value)) else { continue };
            let punches = chunk_count(chunk).unwrap_or(0);
            out.push(DeadLetter {
                first_seq: first,
                last_seq: first + punches.max(1) - 1,
                punches,
                refused_at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
                reason: reason.to_owned(),
            });
        }
        Ok(out)
    }

    /// Punches held in the dead letters.
    pub fn dead_letter_count(&self) -> u64 {
        self.dead_letters().map_or(0, |list| list.iter().map(|d| d.punches).sum())
    }

    /// The punches of the dead letters (all, or the entry starting at `first`), with their sequence numbers.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn dead_letter_punches(&self, first: Option<u64>) -> Result<Vec<(u64, DeadLetter, Punch)>, BufferError> {
        let db = self.db()?;
        let letters = self.dead_letters()?;
        let mut out = Vec::new();
        for letter in letters.into_iter().filter(|l| first.is_none_or(|f| f == l.first_seq)) {
            let Some(value) =
                db.get(seq_key(DEAD_LETTER, letter.first_seq)).map_err(|e| self.storage_error("reading", e))?
            else {
                continue;
            };
            let Some((_, chunk)) = decode_header(&value) else { continue };
            let punches = decode_chunk(chunk).map_err(|e| BufferError::Storage(e.to_string()))?;
            for (seq, stored) in (letter.first_seq..).zip(punches) {
                out.push((seq, letter.clone(), stored.punch));
            }
        }
        Ok(out)
    }

    /// Sends dead letters again: appends their punches to the backlog under new sequence numbers (all of them, or
    /// the entry starting at `first`) and removes them from the dead letters. Returns how many punches.
    ///
    /// # Errors
    /// [`BufferError`]; nothing moved then.
    pub async fn retry_dead_letters(&self, first: Option<u64>) -> Result<u64, BufferError> {
        let _op = self.inner.ops.start("retry_dead_letters");
        let db = self.db()?;
        let mut total = 0u64;
        let last_seq = {
            let mut state = self.lock_write();
            let now_ms = Utc::now().timestamp_millis();
            let mut batch = sled::Batch::default();
            let mut seq = state.next_seq;
            let mut live = state.live_bytes;
            let mut fresh = Vec::new();
            for item in db.scan_prefix([DEAD_LETTER]) {
                let (key, value) = item.map_err(|e| self.storage_error("reading the dead letters", e))?;
                let Some(entry_first) = read_u64(&key) else { continue };
                if first.is_some_and(|f| f != entry_first) {
                    continue;
                }
                let Some((_, chunk)) = decode_header(&value) else { continue };
                let punches = decode_chunk(chunk).map_err(|e| BufferError::Storage(e.to_string()))?;
                let count = punches.len() as u64;
                let pairs: Vec<_> = punches.into_iter().map(|p| (p.key, p.punch)).collect();
                let chunk = encode_chunk(now_ms, &pairs).map_err(BufferError::Storage)?;
                let keys: Vec<u8> = pairs.iter().flat_map(|(k, _)| k.as_bytes().to_vec()).collect();
                live = live.saturating_sub(entry_bytes(key.len(), value.len()));
                live += entry_bytes(9, chunk.len()) + entry_bytes(9, keys.len()) + entry_bytes(9, 8);
                batch.remove(&key);
                batch.insert(&seq_key(RETRIED, entry_first), &(entry_first + count.max(1) - 1).to_be_bytes());
                batch.insert(&seq_key(PUNCH, seq), chunk);
                batch.insert(&seq_key(KEY, seq), keys);
                fresh.extend(pairs.into_iter().zip(seq..).map(|((key, _), s)| (key, s)));
                seq += count;
                total += count;
            }
            if total == 0 {
                return Ok(0);
            }
            batch.insert(super::layout::META_NEXT_SEQ, &seq.to_be_bytes());
            batch.insert(META_LIVE_BYTES, &live.to_be_bytes());
            db.apply_batch(batch).map_err(|e| self.storage_error("retrying dead letters", e))?;
            state.next_seq = seq;
            state.live_bytes = live;
            state.pending += total;
            for (key, s) in fresh {
                state.keys.insert(&key, s);
            }
            seq - 1
        };
        self.flush_store(&db, "flushing retried dead letters").await?;
        self.inner.durable.appended(last_seq);
        self.sync_marker().await?;
        self.inner.last_seq_tx.send_replace(last_seq);
        tracing::info!(punches = total, "dead letters queued for sending again");
        Ok(total)
    }
}

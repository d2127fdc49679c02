//! Reading the backlog and acknowledging it: range scans over the chunks, a batch at a time.

use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, Utc};
use protocol::SequencedPunch;

use super::keylookup::key_count;
use super::layout::{
    ack_log_key, chunk_appended_at_ms, chunk_count, chunk_start, decode_chunk, entry_bytes, read_u64, seq_key,
    RecordError, StoredPunch, KEY, META_ACKED, META_LIVE_BYTES, PUNCH, QUARANTINE,
};
use super::{Buffer, BufferError, CHUNK, PRUNE_EVERY};
use crate::faults;

impl Buffer {
    /// Up to `max_punches` unacknowledged punches with sequence numbers after `after`, in order, read by a range scan
    /// starting at the chunk that holds `after + 1`. A chunk that cannot be decoded is moved to quarantine (kept, with
    /// a `buffer_storage` fault) and skipped.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn read_after(&self, after: u64, max_punches: usize) -> Result<Vec<(u64, StoredPunch)>, BufferError> {
        // Acknowledged punches may still sit in a chunk the watermark splits; they are not part of the backlog.
        let after = after.max(self.acked_up_to());
        let wanted = after.saturating_add(1);
        let db = &self.db()?;
        // The chunk holding `wanted` may start before it.
        let start = chunk_start(db, PUNCH, wanted, |v| chunk_count(v).unwrap_or(0))
            .map_err(|e| self.storage_error("reading the backlog", e))?;
        let mut out = Vec::with_capacity(max_punches.min(4096));
        let mut bad = Vec::new();
        'chunks: for item in db.range(seq_key(PUNCH, start)..=seq_key(PUNCH, u64::MAX)) {
            let (key, value) = item.map_err(|e| self.storage_error("reading the backlog", e))?;
            let Some(first) = read_u64(&key) else { continue };
            match decode_chunk(&value) {
                Ok(punches) => {
                    for (offset, stored) in (0u64..).zip(punches) {
                        let seq = first + offset;
                        if seq > after {
                            if out.len() >= max_punches {
                                break 'chunks;
                            }
                            out.push((seq, stored));
                        }
                    }
                }
                Err(e) => bad.push((first, value, e)),
            }
            if out.len() >= max_punches {
                break;
            }
        }
        for (first, value, error) in bad {
            self.quarantine(first, value, &error)?;
        }
        Ok(out)
    }

    /// Like [`Buffer::read_after`], as protocol items.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn batch_after(&self, after: u64, max_punches: usize) -> Result<Vec<SequencedPunch>, BufferError> {
        let items = self.read_after(after, max_punches)?;
        Ok(items.into_iter().map(|(seq, stored)| SequencedPunch { seq, punch: stored.punch }).collect())
    }

    fn quarantine(&self, first: u64, value: sled::IVec, error: &RecordError) -> Result<(), BufferError> {
        tracing::error!(first, %error, "a buffered chunk cannot be decoded; moved to quarantine");
        let key_chunk = seq_key(KEY, first);
        let db = self.db()?;
        let keys_held = {
            let mut state = self.lock_write();
            let keys_held = db
                .get(key_chunk)
                .map_err(|e| self.storage_error("quarantining a chunk", e))?
                .map_or(0, |v| key_count(&v));
            let count = chunk_count(&value).unwrap_or(keys_held);
            let mut batch = sled::Batch::default();
            batch.insert(&seq_key(QUARANTINE, first), value);
            batch.remove(&seq_key(PUNCH, first));
            // Its keys go too, so the devices' copies of these punches are taken again when re-read.
            batch.remove(&seq_key(KEY, first));
            db.apply_batch(batch).map_err(|e| self.storage_error("quarantining a chunk", e))?;
            let above = (first + count.max(1) - 1).saturating_sub(state.acked.max(first - 1));
            state.pending = state.pending.saturating_sub(above.min(count));
            keys_held
        };
        self.forget_keys(first, first + keys_held);
        self.inner.faults.raise(
            faults::BUFFER_STORAGE,
            format!("buffered chunk starting at seq {first} cannot be decoded ({error}); kept in quarantine"),
            Utc::now(),
        );
        Ok(())
    }

    /// Acknowledges every punch with a sequence number up to `up_to`: only a central acknowledgement covering them may
    /// call this. Chunks wholly acknowledged are deleted; a chunk the watermark splits stays until its last punch is
    /// acknowledged, and readers skip its acknowledged part. Returns how many punches were newly acknowledged.
    /// Idempotent; a watermark beyond the last sequence given out is cut to it.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub async fn acknowledge(&self, up_to: u64) -> Result<u64, BufferError> {
        let _op = self.inner.ops.start("acknowledge");
        let db = self.db()?;
        let Some((newly, up_to)) = self.apply_acknowledge(&db, up_to)? else { return Ok(0) };
        self.flush_store(&db, "flushing the acknowledgement").await?;
        self.inner.durable.acked(up_to);
        self.sync_marker().await?;
        self.check_disk();
        let due = {
            let mut last = self.inner.last_prune.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.elapsed() >= PRUNE_EVERY;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            self.prune_keys(Utc::now())?;
        }
        Ok(newly)
    }

    fn apply_acknowledge(&self, db: &sled::Db, up_to: u64) -> Result<Option<(u64, u64)>, BufferError> {
        let mut state = self.lock_write();
        let last_given = state.next_seq - 1;
        let up_to = if up_to > last_given {
            tracing::warn!(up_to, last_given, "acknowledgement beyond the last sequence number; cut to it");
            last_given
        } else {
            up_to
        };
        if up_to <= state.acked {
            return Ok(None);
        }
        let mut newly = 0u64;
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        // Chunks before the old watermark are gone, so this starts at the first chunk still held.
        for item in db.range(seq_key(PUNCH, 0)..=seq_key(PUNCH, up_to)) {
            let (key, value) = item.map_err(|e| self.storage_error("reading acknowledged punches", e))?;
            let (Some(first), Some(count)) = (read_u64(&key), chunk_count(&value)) else { continue };
            let last = first + count.max(1) - 1;
            // Punches of this chunk above the old watermark and up to the new one.
            let from = first.max(state.acked + 1);
            newly += (last.min(up_to) + 1).saturating_sub(from);
            if last > up_to {
                break;
            }
            state.live_bytes = state.live_bytes.saturating_sub(entry_bytes(key.len(), value.len()));
            batch.remove(key);
            in_batch += 1;
            if in_batch == CHUNK {
                let mut full = std::mem::take(&mut batch);
                full.insert(META_LIVE_BYTES, &state.live_bytes.to_be_bytes());
                db.apply_batch(full).map_err(|e| self.storage_error("deleting acknowledged punches", e))?;
                in_batch = 0;
            }
        }
        batch.insert(META_LIVE_BYTES, &state.live_bytes.to_be_bytes());
        batch.insert(META_ACKED, &up_to.to_be_bytes());
        batch.insert(&ack_log_key(Utc::now().timestamp_millis(), up_to), &[]);
        db.apply_batch(batch).map_err(|e| self.storage_error("recording the acknowledgement", e))?;
        state.acked = up_to;
        state.pending = state.pending.saturating_sub(newly);
        self.inner.acked.store(up_to, Ordering::SeqCst);
        Ok(Some((newly, up_to)))
    }

    /// When the oldest unacknowledged punch was appended: the first chunk still held is the one that holds it.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn oldest_unacked_at(&self) -> Result<Option<DateTime<Utc>>, BufferError> {
        let db = self.db()?;
        let first = db.range(seq_key(PUNCH, 0)..=seq_key(PUNCH, u64::MAX)).next();
        match first {
            None => Ok(None),
            Some(item) => {
                let (_, value) = item.map_err(|e| self.storage_error("reading the oldest punch", e))?;
                Ok(chunk_appended_at_ms(&value).and_then(DateTime::from_timestamp_millis))
            }
        }
    }
}

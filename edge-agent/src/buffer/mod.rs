//! The durable punch buffer: every punch from every source is stored here, in a sled 0.34.7 store, until the
//! central service acknowledges it.
//!
//! - **Sequence.** Each new punch gets the next sequence number (`u64`, monotonic, persisted with the punch in the same
//!   atomic batch, so it never goes back after a crash or restart).
//! - **Durability.** [`Buffer::append`] returns `Ok` only after `flush_async` completed, so a source may then answer a
//!   push `OK` or move its cursor. Every append flushes, even one of duplicates only: their keys may belong to another
//!   append whose flush is still running.
//! - **Deduplication.** A key index holds the [`PunchKey`] of every buffered punch and of acknowledged punches for
//!   `key_retention` after their acknowledgement. Devices re-send their whole log on every pull until it is cleared;
//!   the driver's cursor skips most of it, and the index catches the rest (a cursor lost with a moved-aside buffer, a
//!   resync). Keeping keys for weeks after the ack covers a log cleared monthly; past retention a re-read punch is
//!   stored again and the central service counts it as a duplicate, so retention trades disk for traffic, never
//!   correctness. The index is 16 bytes per key on disk and 8 in memory (see `keyset`: a fingerprint and the sequence
//!   number, confirmed against the stored key, so a distinct punch is never taken for a duplicate): 45 days of 4
//!   punches a day for 1,000 people is 180,000 keys, under 1.5 MB.
//! - **Acknowledgement.** [`Buffer::acknowledge`] deletes punches up to a watermark; nothing else deletes a punch.
//! - **Bounded memory and disk.** sled's page cache is capped (`cache_bytes`); the backlog is read by range scans, a
//!   batch at a time ([`Buffer::read_after`]). At the disk budget (see `check_disk` for how it is measured),
//!   or when the disk itself is full, appends are refused with [`SinkError::Full`], [`Buffer::accepting`] turns false
//!   and the `buffer_full` fault is raised, until forwarding frees space.
//! - **A broken store** is moved aside and replaced (see [`recovery`]).

mod backlog;
mod keylookup;
mod keyset;
mod layout;
mod recovery;
mod retention;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use protocol::{DeviceSerial, Punch, PunchKey};
use tokio::sync::watch;

use crate::faults::{self, Faults};
use crate::sink::{Appended, PunchSink, SinkError};
use keylookup::StoredKeys;
use keyset::KeySet;
use layout::{
    cursor_key, encode_chunk, encode_keys, entry_bytes, read_u64, seq_key, CHUNK_PUNCHES, KEY, META_ACKED,
    META_LIVE_BYTES, META_NEXT_SEQ, PUNCH,
};
pub use layout::{RecordError, StoredPunch};
pub use recovery::OpenError;

/// How often [`Buffer::accepting`] re-measures the disk, at most.
const DISK_RECHECK: Duration = Duration::from_millis(500);
/// How often acknowledgements trigger a pruning of the key index, at most.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Most keys removed in one atomic batch when acknowledging or pruning, to bound memory.
const CHUNK: usize = 10_000;

/// Where and how big the buffer is.
#[derive(Debug, Clone)]
pub struct BufferOptions {
    /// The sled directory.
    pub path: PathBuf,
    /// The disk budget for the directory; appends are refused at it.
    pub max_disk_bytes: u64,
    /// sled's page cache.
    pub cache_bytes: u64,
    /// How long keys of acknowledged punches stay in the dedup index.
    pub key_retention: Duration,
}

/// Why a buffer operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BufferError {
    #[error("buffer full: {0}")]
    Full(String),
    #[error("buffer storage failed: {0}")]
    Storage(String),
}

impl From<BufferError> for SinkError {
    fn from(e: BufferError) -> Self {
        match e {
            BufferError::Full(m) => SinkError::Full(m),
            BufferError::Storage(m) => SinkError::Storage(m),
        }
    }
}

/// A point-in-time view for status and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferStats {
    /// Punches stored and not yet acknowledged.
    pub depth: u64,
    /// Everything up to here is acknowledged.
    pub acked_up_to: u64,
    /// The last sequence number given out (0: none yet).
    pub last_seq: u64,
    pub oldest_unacked_at: Option<DateTime<Utc>>,
    pub size_on_disk: u64,
    /// Bytes of live punches and key index entries.
    pub live_bytes: u64,
    /// Keys in the dedup index (buffered punches plus acknowledged ones within retention).
    pub index_keys: u64,
    pub max_disk_bytes: u64,
    pub full: bool,
    pub new_total: u64,
    pub duplicates_total: u64,
}

/// The durable buffer. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    options: BufferOptions,
    faults: Faults,
    /// Serialises writers: the dedup check, the sequence allocation and the batch apply happen under it, so a
    /// sequence number visible to a reader means every smaller one is applied too.
    write: Mutex<WriteState>,
    acked: AtomicU64,
    full: AtomicBool,
    last_disk_check: Mutex<Option<Instant>>,
    new_total: AtomicU64,
    duplicates_total: AtomicU64,
    last_seq_tx: watch::Sender<u64>,
    last_prune: Mutex<Instant>,
}

struct WriteState {
    next_seq: u64,
    acked: u64,
    /// Bytes of live punches and index entries; see `check_disk`.
    live_bytes: u64,
    /// The keys in the index.
    keys: KeySet,
}

impl Buffer {
    /// Opens (or creates) the buffer, moving a broken store aside; prunes expired keys.
    ///
    /// # Errors
    /// [`OpenError`] when the store is locked, inaccessible, or cannot be created.
    pub fn open(options: BufferOptions, faults: Faults) -> Result<Self, OpenError> {
        if let Some(parent) = options.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| OpenError::Io { path: parent.to_owned(), reason: e.to_string() })?;
        }
        let opened = recovery::open_or_move_aside(&options.path, options.cache_bytes)?;
        if let Some((aside, reason)) = &opened.moved_aside {
            faults.raise(
                faults::BUFFER_MOVED_ASIDE,
                format!("buffer could not be opened ({reason}); moved to {} and started fresh", aside.display()),
                Utc::now(),
            );
        }
        let db = opened.db;
        let storage = |e: sled::Error| OpenError::Io { path: options.path.clone(), reason: e.to_string() };
        let next_seq = db.get(META_NEXT_SEQ).map_err(storage)?.and_then(|v| read_u64(&v)).unwrap_or(1);
        let acked = db.get(META_ACKED).map_err(storage)?.and_then(|v| read_u64(&v)).unwrap_or(0);
        let live_bytes = db.get(META_LIVE_BYTES).map_err(storage)?.and_then(|v| read_u64(&v)).unwrap_or(0);
        let keys = keylookup::load(&db, next_seq).map_err(storage)?;
        let (last_seq_tx, _) = watch::channel(next_seq - 1);
        let buffer = Self {
            inner: Arc::new(Inner {
                db,
                options,
                faults,
                write: Mutex::new(WriteState { next_seq, acked, live_bytes, keys }),
                acked: AtomicU64::new(acked),
                full: AtomicBool::new(false),
                last_disk_check: Mutex::new(None),
                new_total: AtomicU64::new(0),
                duplicates_total: AtomicU64::new(0),
                last_seq_tx,
                last_prune: Mutex::new(Instant::now()),
            }),
        };
        if let Err(e) = buffer.prune_keys(Utc::now()) {
            tracing::warn!(error = %e, "pruning the key index at open failed; will retry later");
        }
        buffer.check_disk();
        tracing::info!(
            path = %buffer.inner.options.path.display(),
            depth = buffer.depth(),
            next_seq,
            acked,
            "buffer open"
        );
        Ok(buffer)
    }

    /// Stores punches durably; see the module docs.
    ///
    /// # Errors
    /// [`BufferError::Full`] at the disk limit or on a full disk, [`BufferError::Storage`] otherwise. None of the
    /// punches may then be considered stored.
    pub async fn append(&self, punches: Vec<Punch>) -> Result<Appended, BufferError> {
        if punches.is_empty() {
            return Ok(Appended::default());
        }
        self.check_disk();
        if self.inner.full.load(Ordering::SeqCst) {
            return Err(BufferError::Full(self.full_message()));
        }
        let (outcome, last_seq) = self.apply_append(punches)?;
        self.inner.db.flush_async().await.map_err(|e| self.storage_error("flushing appended punches", e))?;
        self.inner.new_total.fetch_add(outcome.new as u64, Ordering::Relaxed);
        self.inner.duplicates_total.fetch_add(outcome.duplicates as u64, Ordering::Relaxed);
        if outcome.new > 0 {
            self.inner.last_seq_tx.send_replace(last_seq);
        }
        Ok(outcome)
    }

    fn apply_append(&self, punches: Vec<Punch>) -> Result<(Appended, u64), BufferError> {
        let now_ms = Utc::now().timestamp_millis();
        let mut state = self.lock_write();
        let mut seen = HashSet::with_capacity(punches.len());
        let mut fresh = Vec::with_capacity(punches.len());
        let mut outcome = Appended::default();
        let mut stored = StoredKeys::new(&self.inner.db);
        for punch in punches {
            let key = punch.key();
            let known = !seen.insert(key) || {
                let candidates = state.keys.candidates(&key, state.next_seq);
                !candidates.is_empty()
                    && stored
                        .find(&key, &candidates)
                        .map_err(|e| self.storage_error("reading the key index", e))?
                        .is_some()
            };
            if known {
                outcome.duplicates += 1;
            } else {
                fresh.push((key, punch));
            }
        }
        outcome.new = fresh.len();
        if fresh.is_empty() {
            return Ok((outcome, state.next_seq - 1));
        }
        let mut batch = sled::Batch::default();
        let mut seq = state.next_seq;
        let mut live_bytes = state.live_bytes;
        for chunk in fresh.chunks(CHUNK_PUNCHES) {
            let value = encode_chunk(now_ms, chunk).map_err(BufferError::Storage)?;
            let keys = encode_keys(chunk);
            live_bytes += entry_bytes(9, value.len()) + entry_bytes(9, keys.len());
            batch.insert(&seq_key(PUNCH, seq), value);
            batch.insert(&seq_key(KEY, seq), keys);
            seq += chunk.len() as u64;
        }
        batch.insert(META_NEXT_SEQ, &seq.to_be_bytes());
        batch.insert(META_LIVE_BYTES, &live_bytes.to_be_bytes());
        self.inner.db.apply_batch(batch).map_err(|e| self.storage_error("writing punches", e))?;
        let first_seq = state.next_seq;
        state.next_seq = seq;
        state.live_bytes = live_bytes;
        for ((key, _), seq) in fresh.iter().zip(first_seq..) {
            state.keys.insert(key, seq);
        }
        Ok((outcome, seq - 1))
    }

    /// Removes from the key index the keys of punches acknowledged before `now - key_retention`. Returns how many.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn prune_keys(&self, now: DateTime<Utc>) -> Result<u64, BufferError> {
        let retention = chrono::Duration::from_std(self.inner.options.key_retention).unwrap_or(chrono::Duration::MAX);
        let cutoff_ms = now.checked_sub_signed(retention).map_or(i64::MIN, |t| t.timestamp_millis());
        let (removed, deleted_through) = retention::prune(&self.inner.db, cutoff_ms, &|| self.lock_write())
            .map_err(|e| self.storage_error("pruning the key index", e))?;
        if let Some(last) = deleted_through {
            self.forget_keys(0, last.saturating_add(1));
        }
        Ok(removed)
    }

    /// How many of `keys` are not acknowledged (unknown or forgotten keys count as not acknowledged). A key counts as
    /// acknowledged only when it is read back from the key chunks at a sequence number the watermark covers.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn unacknowledged_count(&self, keys: &[PunchKey]) -> Result<usize, BufferError> {
        // Candidates are taken under the lock and read back without it: a chunk pruned meanwhile is not found, and its
        // keys count as not acknowledged, the safe side.
        let (acked, candidates) = {
            let state = self.lock_write();
            let candidates: Vec<Vec<u64>> = keys
                .iter()
                .map(|key| {
                    state.keys.candidates(key, state.next_seq).into_iter().filter(|&s| s <= state.acked).collect()
                })
                .collect();
            (state.acked, candidates)
        };
        debug_assert!(candidates.iter().flatten().all(|&s| s <= acked));
        let mut stored = StoredKeys::new(&self.inner.db);
        let mut unacked = 0;
        for (key, candidates) in keys.iter().zip(&candidates) {
            let found = !candidates.is_empty()
                && stored.find(key, candidates).map_err(|e| self.storage_error("reading the key index", e))?.is_some();
            if !found {
                unacked += 1;
            }
        }
        Ok(unacked)
    }

    /// Forgets the in-memory keys of sequence numbers `from..to`, whose key chunks were deleted.
    fn forget_keys(&self, from: u64, to: u64) {
        let mut state = self.lock_write();
        let next_seq = state.next_seq;
        state.keys.forget(from, to, next_seq);
    }

    /// Whether appends are taken now; re-measures the disk at most every half second.
    pub fn accepting(&self) -> bool {
        let due = {
            let mut last = self.inner.last_disk_check.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= DISK_RECHECK);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            self.check_disk();
        }
        !self.inner.full.load(Ordering::SeqCst)
    }

    /// Punches stored and not yet acknowledged.
    pub fn depth(&self) -> u64 {
        let state = self.lock_write();
        (state.next_seq - 1).saturating_sub(state.acked)
    }

    /// Everything up to this sequence number is acknowledged.
    pub fn acked_up_to(&self) -> u64 {
        self.inner.acked.load(Ordering::SeqCst)
    }

    /// Follows the last sequence number given out; changes on every append that stored something.
    pub fn watch_last_seq(&self) -> watch::Receiver<u64> {
        self.inner.last_seq_tx.subscribe()
    }

    /// Figures for status and metrics.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn stats(&self) -> Result<BufferStats, BufferError> {
        let (last_seq, acked, live_bytes, index_keys) = {
            let state = self.lock_write();
            (state.next_seq - 1, state.acked, state.live_bytes, state.keys.len() as u64)
        };
        Ok(BufferStats {
            depth: last_seq.saturating_sub(acked),
            acked_up_to: acked,
            last_seq,
            oldest_unacked_at: self.oldest_unacked_at()?,
            size_on_disk: self.inner.db.size_on_disk().unwrap_or(0),
            live_bytes,
            index_keys,
            max_disk_bytes: self.inner.options.max_disk_bytes,
            full: self.inner.full.load(Ordering::SeqCst),
            new_total: self.inner.new_total.load(Ordering::Relaxed),
            duplicates_total: self.inner.duplicates_total.load(Ordering::Relaxed),
        })
    }

    /// Flushes everything to disk (at shutdown).
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub async fn flush(&self) -> Result<(), BufferError> {
        self.inner.db.flush_async().await.map_err(|e| self.storage_error("flushing", e))?;
        Ok(())
    }

    /// The source state stored under `name` for `device`.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn get_cursor(&self, device: &DeviceSerial, name: &str) -> Result<Option<Vec<u8>>, BufferError> {
        let value =
            self.inner.db.get(cursor_key(device, name)).map_err(|e| self.storage_error("reading a cursor", e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// Stores source state durably.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub async fn put_cursor(&self, device: &DeviceSerial, name: &str, value: Vec<u8>) -> Result<(), BufferError> {
        self.inner.db.insert(cursor_key(device, name), value).map_err(|e| self.storage_error("writing a cursor", e))?;
        self.inner.db.flush_async().await.map_err(|e| self.storage_error("flushing a cursor", e))?;
        Ok(())
    }

    /// Measures the disk and updates the full flag and the `buffer_full` fault.
    ///
    /// Two measures, because sled's log-structured file neither shrinks when data is deleted nor holds data at a fixed
    /// ratio (measured: 12 MB of live punches took 27 to 110 MB while being written and deleted in turns; freed space is
    /// reused, so the file plateaus). The buffer is full when
    /// - its live data (punches and key index, counted exactly as they are written and deleted) reaches half the
    ///   budget: the other half is room for sled's rewriting; or
    /// - the file reached the budget while live data is still above an eighth of it. Once the backlog drained below
    ///   that, punches are taken again although the file has not shrunk: sled writes them into the space it freed.
    fn check_disk(&self) {
        let size = match self.inner.db.size_on_disk() {
            Ok(size) => size,
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure the buffer's size on disk");
                return;
            }
        };
        let live = self.lock_write().live_bytes;
        let limit = self.inner.options.max_disk_bytes;
        let full = live >= limit / 2 || (size >= limit && live >= limit / 8);
        let was_full = self.inner.full.swap(full, Ordering::SeqCst);
        if full {
            self.inner.faults.raise(faults::BUFFER_FULL, self.full_message(), Utc::now());
            if !was_full {
                tracing::error!(size, live, limit, "buffer at its disk limit: refusing new punches until it drains");
            }
        } else if was_full {
            tracing::info!(size, live, limit, "buffer below its disk limit again: taking punches");
            self.inner.faults.clear(faults::BUFFER_FULL);
        }
    }

    fn full_message(&self) -> String {
        let size = self.inner.db.size_on_disk().unwrap_or(0);
        let live = self.lock_write().live_bytes;
        format!(
            "buffer at its limit: {} MB of punches and keys, {} MB on disk, limit {} MB; new punches wait on the \
             devices until it drains",
            live / 1_000_000,
            size / 1_000_000,
            self.inner.options.max_disk_bytes / 1_000_000
        )
    }

    /// Maps a sled error, treating a full disk like the configured limit.
    fn storage_error(&self, what: &str, error: sled::Error) -> BufferError {
        if let sled::Error::Io(io) = &error {
            if is_disk_full(io) {
                self.inner.full.store(true, Ordering::SeqCst);
                let message = format!("disk full while {what}: {io}");
                self.inner.faults.raise(faults::BUFFER_FULL, &message, Utc::now());
                return BufferError::Full(message);
            }
        }
        let message = format!("{what}: {error}");
        self.inner.faults.raise(faults::BUFFER_STORAGE, &message, Utc::now());
        tracing::error!(%message, "buffer storage error");
        BufferError::Storage(message)
    }

    fn lock_write(&self) -> std::sync::MutexGuard<'_, WriteState> {
        self.inner.write.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn is_disk_full(error: &std::io::Error) -> bool {
    // ENOSPC and EDQUOT on Linux.
    matches!(error.kind(), std::io::ErrorKind::StorageFull) || matches!(error.raw_os_error(), Some(28 | 122))
}

impl PunchSink for Buffer {
    async fn append(&self, punches: Vec<Punch>) -> Result<Appended, SinkError> {
        Ok(Buffer::append(self, punches).await?)
    }

    fn accepting(&self) -> bool {
        Buffer::accepting(self)
    }

    async fn unacknowledged(&self, keys: &[PunchKey]) -> Result<usize, SinkError> {
        Ok(self.unacknowledged_count(keys)?)
    }

    async fn cursor(&self, device: &DeviceSerial, name: &str) -> Result<Option<Vec<u8>>, SinkError> {
        Ok(self.get_cursor(device, name)?)
    }

    async fn set_cursor(&self, device: &DeviceSerial, name: &str, value: Vec<u8>) -> Result<(), SinkError> {
        Ok(self.put_cursor(device, name, value).await?)
    }
}

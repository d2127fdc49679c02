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
//!   [`Buffer::dead_letter`] moves a refused batch out of the backlog into the dead letters ([`deadletter`]), where
//!   it stays until an operator retries it.
//! - **Bounded memory and disk.** sled's page cache is capped (`cache_bytes`); the backlog is read by range scans, a
//!   batch at a time ([`Buffer::read_after`]). At the disk budget, or when the filesystem has less than a reserve
//!   free (see [`disk`]), appends are refused with [`SinkError::Full`], [`Buffer::accepting`] turns false and the
//!   `buffer_full` fault is raised, until forwarding frees space.
//! - **A failed store** (an I/O error such as a full disk, after which sled refuses everything) is reopened in place
//!   by [`Buffer::maintain`] (see [`store`]); operations fail fast meanwhile and the watchdog sees the state.
//! - **Damage.** A marker beside the store ([`marker`]) records the last sequence number appended and the
//!   watermark, updated after each flush and before a source is told its punches are stored; at open a store that
//!   holds less is reported as damaged ([`Buffer::damage`], see [`startup`]).
//! - **A broken store** that will not open is moved aside and replaced (see [`recovery`]).

mod backlog;
#[cfg(test)]
mod compat_tests;
pub mod deadletter;
pub mod disk;
mod inflight;
mod keylookup;
mod keyset;
mod layout;
pub mod marker;
mod recovery;
mod retention;
mod scan;
mod startup;
pub mod store;

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use protocol::{DeviceSerial, Punch, PunchKey};
use tokio::sync::watch;

use crate::faults::{self, Faults};
use crate::sink::{Appended, PunchSink, SinkError};
pub use deadletter::DeadLetter;
use inflight::InFlight;
use keylookup::StoredKeys;
use keyset::KeySet;
use layout::{
    cursor_key, encode_chunk, encode_keys, entry_bytes, seq_key, CHUNK_PUNCHES, KEY, META_LIVE_BYTES, META_NEXT_SEQ,
    PUNCH,
};
pub use layout::{RecordError, StoredPunch};
use marker::{Marker, MarkerRead, MarkerValue};
pub use recovery::OpenError;
pub use startup::Damage;
use store::Store;
pub use store::StoreHealth;

/// How often [`Buffer::accepting`] re-measures the disk, at most.
const DISK_RECHECK: Duration = Duration::from_millis(500);
/// How often acknowledgements trigger a pruning of the key index, at most.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Most keys removed in one atomic batch when acknowledging or pruning, to bound memory.
const CHUNK: usize = 10_000;
/// Punches appended between two releases of free heap pages (`Buffer::release_heap_after`); at a backlog's
/// 100,000+ punches/s that is a few times a second, each costing well under a millisecond.
const TRIM_EVERY_PUNCHES: u64 = 32_768;

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

/// The highest sequence number known flushed, and the watermark known flushed: what the marker must cover.
#[derive(Debug, Default)]
struct Durable {
    appended: AtomicU64,
    acked: AtomicU64,
}

impl Durable {
    fn appended(&self, seq: u64) {
        self.appended.fetch_max(seq, Ordering::SeqCst);
    }

    fn acked(&self, seq: u64) {
        self.acked.fetch_max(seq, Ordering::SeqCst);
    }

    fn value(&self) -> MarkerValue {
        MarkerValue { appended: self.appended.load(Ordering::SeqCst), acked: self.acked.load(Ordering::SeqCst) }
    }
}

/// What the watchdog needs from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferHealth {
    pub store: StoreHealth,
    /// The operation running longest (append, acknowledge, ...), and for how long.
    pub oldest_operation: Option<(&'static str, Duration)>,
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
    /// Punches held in the dead letters.
    pub dead_letters: u64,
    /// The store lost punches (see [`Buffer::damage`]).
    pub damaged: bool,
}

/// The durable buffer. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct Buffer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
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
    ops: Arc<InFlight>,
    durable: Durable,
    /// `None` when the marker could not be created (logged; damage then goes undetected).
    marker: Arc<Mutex<Option<Marker>>>,
    damage: Option<Damage>,
    /// Punches appended since free heap pages were last released.
    untrimmed: AtomicU64,
}

struct WriteState {
    next_seq: u64,
    acked: u64,
    /// Bytes of live punches and index entries; see `check_disk`.
    live_bytes: u64,
    /// The keys in the index.
    keys: KeySet,
    /// Punches in the backlog (above the watermark). Not `next_seq - 1 - acked`: the sequence may have holes
    /// (numbers skipped after a damaged store, or given out before a store failure lost them).
    pending: u64,
    /// Ranges at or below the watermark that were moved to the dead letters, not acknowledged.
    unsettled: Vec<(u64, u64)>,
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
        let storage = |e: sled::Error| OpenError::Io { path: options.path.clone(), reason: e.to_string() };
        let marker_path = Marker::path_for(&options.path);
        let marker_read = Marker::read(&marker_path);
        let mut db = opened.db;
        // sled 0.34 may panic on a damaged store after opening it, too.
        let loaded = std::panic::catch_unwind(AssertUnwindSafe(|| startup::load(&db)));
        let (mut loaded, damage) = match loaded {
            Ok(Ok(loaded)) => {
                let damage = startup::assess(&loaded, &marker_read);
                (Some(loaded), damage)
            }
            Ok(Err(e)) if !matches!(e, sled::Error::Corruption { .. }) => return Err(storage(e)),
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "sled panicked while reading it".to_owned(),
                };
                let marker = match &marker_read {
                    MarkerRead::Valid(value) => *value,
                    _ => MarkerValue::default(),
                };
                let damage = Damage {
                    missing: marker.appended.saturating_sub(marker.acked),
                    store_last: 0,
                    marker,
                    reason: format!("the buffer's store cannot be read ({reason})"),
                };
                (None, Some(damage))
            }
        };
        if let Some(damage) = &damage {
            tracing::error!(reason = %damage.reason, "THE BUFFER LOST PUNCHES; asking the devices to send them again");
            let acked = loaded.as_ref().map_or(0, |l| l.state.acked).max(damage.marker.acked);
            let salvaged = startup::salvage(&db, acked);
            drop(db);
            let (fresh, aside) = recovery::replace_damaged(&options.path, options.cache_bytes)?;
            db = fresh;
            let after = damage.marker.appended.max(loaded.as_ref().map_or(0, |l| l.state.next_seq - 1));
            startup::restore(&db, &salvaged, after).map_err(storage)?;
            loaded = Some(startup::load(&db).map_err(storage)?);
            faults.raise(
                faults::BUFFER_DAMAGED,
                format!(
                    "{}; {} punches salvaged into a fresh store, the damaged one kept at {}",
                    damage.reason,
                    salvaged.punches.len(),
                    aside.display()
                ),
                Utc::now(),
            );
        }
        let Some(loaded) = loaded else { return Err(storage(sled::Error::ReportableBug("no store".into()))) };
        let state = loaded.state;
        let (next_seq, acked) = (state.next_seq, state.acked);
        let value = MarkerValue { appended: next_seq - 1, acked };
        let marker = match Marker::open(&marker_path, value) {
            Ok(marker) => Some(marker),
            Err(e) => {
                tracing::error!(path = %marker_path.display(), error = %e, "cannot write the buffer marker");
                return Err(OpenError::Io { path: marker_path, reason: e.to_string() });
            }
        };
        let (last_seq_tx, _) = watch::channel(next_seq - 1);
        let durable = Durable::default();
        durable.appended(value.appended);
        durable.acked(value.acked);
        let buffer = Self {
            inner: Arc::new(Inner {
                store: Store::new(db),
                options,
                faults,
                write: Mutex::new(state),
                acked: AtomicU64::new(acked),
                full: AtomicBool::new(false),
                last_disk_check: Mutex::new(None),
                new_total: AtomicU64::new(0),
                duplicates_total: AtomicU64::new(0),
                last_seq_tx,
                last_prune: Mutex::new(Instant::now()),
                ops: Arc::new(InFlight::default()),
                durable,
                marker: Arc::new(Mutex::new(marker)),
                damage,
                untrimmed: AtomicU64::new(0),
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

    /// What the store lost, when it was found damaged at open.
    pub fn damage(&self) -> Option<&Damage> {
        self.inner.damage.as_ref()
    }

    /// The sled handle, or why there is none now (the store failed and is being reopened).
    fn db(&self) -> Result<sled::Db, BufferError> {
        self.inner.store.db().map_err(BufferError::Full)
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
        let _op = self.inner.ops.start("append");
        self.check_disk();
        if self.inner.full.load(Ordering::SeqCst) {
            return Err(BufferError::Full(self.full_message()));
        }
        let db = self.db()?;
        let (outcome, last_seq) = self.apply_append(&db, punches)?;
        self.flush_store(&db, "flushing appended punches").await?;
        self.inner.durable.appended(last_seq);
        self.release_heap_after(outcome.new);
        self.sync_marker().await?;
        self.inner.new_total.fetch_add(outcome.new as u64, Ordering::Relaxed);
        self.inner.duplicates_total.fetch_add(outcome.duplicates as u64, Ordering::Relaxed);
        if outcome.new > 0 {
            self.inner.last_seq_tx.send_replace(last_seq);
        }
        Ok(outcome)
    }

    /// Hands free heap pages back to the kernel once every [`TRIM_EVERY_PUNCHES`] appended punches (see
    /// [`crate::malloc::release_free_pages`]): a backlog's appends free sled's replaced nodes and the encoded chunks
    /// in amounts the allocator keeps otherwise. Devices pushing a few punches a minute reach it once in days.
    fn release_heap_after(&self, appended: usize) {
        let appended = appended as u64;
        let total = self.inner.untrimmed.fetch_add(appended, Ordering::Relaxed) + appended;
        if total >= TRIM_EVERY_PUNCHES && self.inner.untrimmed.swap(0, Ordering::Relaxed) >= TRIM_EVERY_PUNCHES {
            crate::malloc::release_free_pages();
        }
    }

    fn apply_append(&self, db: &sled::Db, punches: Vec<Punch>) -> Result<(Appended, u64), BufferError> {
        let now_ms = Utc::now().timestamp_millis();
        let mut state = self.lock_write();
        let mut seen = HashSet::with_capacity(punches.len());
        let mut fresh = Vec::with_capacity(punches.len());
        let mut outcome = Appended::default();
        let mut stored = StoredKeys::new(db);
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
        db.apply_batch(batch).map_err(|e| self.storage_error("writing punches", e))?;
        let first_seq = state.next_seq;
        state.next_seq = seq;
        state.live_bytes = live_bytes;
        state.pending += fresh.len() as u64;
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
        let db = self.db()?;
        let (removed, deleted_through) = retention::prune(&db, cutoff_ms, &|| self.lock_write())
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
        // A key at or below the watermark in a dead-letter range was never acknowledged.
        let db = self.db().map_err(|e| BufferError::Storage(e.to_string()))?;
        let (acked, candidates) = {
            let state = self.lock_write();
            let settled = |s: u64| s <= state.acked && !state.unsettled.iter().any(|&(f, l)| (f..=l).contains(&s));
            let candidates: Vec<Vec<u64>> = keys
                .iter()
                .map(|key| state.keys.candidates(key, state.next_seq).into_iter().filter(|&s| settled(s)).collect())
                .collect();
            (state.acked, candidates)
        };
        debug_assert!(candidates.iter().flatten().all(|&s| s <= acked));
        let mut stored = StoredKeys::new(&db);
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

    /// Whether appends are taken now; re-measures the disk at most every half second. False while the store is
    /// being reopened.
    pub fn accepting(&self) -> bool {
        if self.inner.store.is_poisoned() {
            return false;
        }
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

    /// Punches stored and not yet acknowledged (nor moved to the dead letters).
    pub fn depth(&self) -> u64 {
        self.lock_write().pending
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
        let (last_seq, acked, live_bytes, index_keys, depth) = {
            let state = self.lock_write();
            (state.next_seq - 1, state.acked, state.live_bytes, state.keys.len() as u64, state.pending)
        };
        let size_on_disk = self.db().ok().and_then(|db| db.size_on_disk().ok()).unwrap_or(0);
        Ok(BufferStats {
            depth,
            acked_up_to: acked,
            last_seq,
            oldest_unacked_at: self.oldest_unacked_at()?,
            size_on_disk,
            live_bytes,
            index_keys,
            max_disk_bytes: self.inner.options.max_disk_bytes,
            full: self.inner.full.load(Ordering::SeqCst),
            new_total: self.inner.new_total.load(Ordering::Relaxed),
            duplicates_total: self.inner.duplicates_total.load(Ordering::Relaxed),
            dead_letters: self.dead_letter_count(),
            damaged: self.inner.damage.is_some(),
        })
    }

    /// Flushes everything to disk (at shutdown).
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub async fn flush(&self) -> Result<(), BufferError> {
        let db = self.db()?;
        self.flush_store(&db, "flushing").await
    }

    /// The source state stored under `name` for `device`.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub fn get_cursor(&self, device: &DeviceSerial, name: &str) -> Result<Option<Vec<u8>>, BufferError> {
        let value = self.db()?.get(cursor_key(device, name)).map_err(|e| self.storage_error("reading a cursor", e))?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// Forgets the source state stored under `name` for `device` (the source starts over).
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub async fn remove_cursor(&self, device: &DeviceSerial, name: &str) -> Result<(), BufferError> {
        let _op = self.inner.ops.start("remove_cursor");
        let db = self.db()?;
        db.remove(cursor_key(device, name)).map_err(|e| self.storage_error("removing a cursor", e))?;
        self.flush_store(&db, "flushing a cursor").await
    }

    /// Stores source state durably.
    ///
    /// # Errors
    /// [`BufferError::Storage`].
    pub async fn put_cursor(&self, device: &DeviceSerial, name: &str, value: Vec<u8>) -> Result<(), BufferError> {
        let _op = self.inner.ops.start("put_cursor");
        let db = self.db()?;
        db.insert(cursor_key(device, name), value).map_err(|e| self.storage_error("writing a cursor", e))?;
        self.flush_store(&db, "flushing a cursor").await
    }

    /// Measures the disk and updates the full flag and the `buffer_full` fault (see [`disk::is_full`]).
    fn check_disk(&self) {
        if self.inner.store.is_poisoned() {
            self.inner.full.store(true, Ordering::SeqCst);
            return;
        }
        let Ok(db) = self.db() else { return };
        let size = match db.size_on_disk() {
            Ok(size) => size,
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure the buffer's size on disk");
                return;
            }
        };
        drop(db);
        let live = self.lock_write().live_bytes;
        let limit = self.inner.options.max_disk_bytes;
        let space = disk::filesystem_space(&self.inner.options.path);
        let full = disk::is_full(live, size, limit, space);
        let was_full = self.inner.full.swap(full, Ordering::SeqCst);
        if full {
            self.inner.faults.raise(faults::BUFFER_FULL, self.full_message(), Utc::now());
            if !was_full {
                tracing::error!(
                    size,
                    live,
                    limit,
                    ?space,
                    "buffer at its disk limit: refusing new punches until it drains"
                );
            }
        } else if was_full {
            tracing::info!(size, live, limit, ?space, "buffer below its disk limit again: taking punches");
            self.inner.faults.clear(faults::BUFFER_FULL);
        }
    }

    fn full_message(&self) -> String {
        let size = self.db().ok().and_then(|db| db.size_on_disk().ok()).unwrap_or(0);
        let live = self.lock_write().live_bytes;
        let free = disk::filesystem_space(&self.inner.options.path).map_or_else(String::new, |(free, total)| {
            format!(", {} MB free of {} MB on its filesystem", free / 1_000_000, total / 1_000_000)
        });
        format!(
            "buffer at its limit: {} MB of punches and keys, {} MB on disk, limit {} MB{free}; new punches wait on \
             the devices until it drains",
            live / 1_000_000,
            size / 1_000_000,
            self.inner.options.max_disk_bytes / 1_000_000
        )
    }

    /// Maps a sled error. An I/O error poisons sled for good, so the store is marked for reopening; a full disk is
    /// reported like the configured limit.
    fn storage_error(&self, what: &str, error: sled::Error) -> BufferError {
        if let sled::Error::Io(io) = &error {
            let message = format!("{what}: {io}");
            self.inner.store.poison(&message);
            self.inner.full.store(true, Ordering::SeqCst);
            self.inner.faults.raise(
                faults::BUFFER_STORE_FAILED,
                format!("{message}; the store is reopened as soon as it can be"),
                Utc::now(),
            );
            if is_disk_full(io) {
                let message = format!("disk full while {message}");
                self.inner.faults.raise(faults::BUFFER_FULL, &message, Utc::now());
                return BufferError::Full(message);
            }
            return BufferError::Storage(message);
        }
        let message = format!("{what}: {error}");
        self.inner.faults.raise(faults::BUFFER_STORAGE, &message, Utc::now());
        tracing::error!(%message, "buffer storage error");
        BufferError::Storage(message)
    }

    /// Flushes `db`, bounded by [`store::FLUSH_TIMEOUT`]: a flush that never completes poisons the store.
    async fn flush_store(&self, db: &sled::Db, what: &str) -> Result<(), BufferError> {
        match tokio::time::timeout(store::FLUSH_TIMEOUT, db.flush_async()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.storage_error(what, e)),
            Err(_) => {
                let message = format!("{what}: no answer from the disk within {:?}", store::FLUSH_TIMEOUT);
                self.inner.store.poison(&message);
                self.inner.full.store(true, Ordering::SeqCst);
                self.inner.faults.raise(faults::BUFFER_STORE_FAILED, &message, Utc::now());
                Err(BufferError::Storage(message))
            }
        }
    }

    /// Brings the marker up to what is known flushed; concurrent callers share one write.
    async fn sync_marker(&self) -> Result<(), BufferError> {
        let marker = self.inner.marker.clone();
        let inner = self.inner.clone();
        let written = tokio::task::spawn_blocking(move || {
            let mut guard = marker.lock().unwrap_or_else(|p| p.into_inner());
            let Some(marker) = guard.as_mut() else { return Ok(()) };
            let wanted = inner.durable.value();
            let last = marker.last();
            if last.appended >= wanted.appended && last.acked >= wanted.acked {
                return Ok(());
            }
            let value =
                MarkerValue { appended: wanted.appended.max(last.appended), acked: wanted.acked.max(last.acked) };
            marker.write(value).map_err(|e| format!("writing the buffer marker {}: {e}", marker.path().display()))
        })
        .await
        .map_err(|e| BufferError::Storage(format!("writing the buffer marker: {e}")))?;
        written.map_err(|message| {
            self.inner.faults.raise(faults::BUFFER_STORAGE, &message, Utc::now());
            BufferError::Storage(message)
        })
    }

    /// Reopens a failed store (see [`store`]) when an attempt is due; call it regularly (the agent does, every
    /// quarter second, off the async threads). Returns true when the store was reopened.
    pub fn maintain(&self) -> bool {
        if !self.inner.store.reopen_due() {
            return false;
        }
        let reopened = match self.inner.store.reopen(&self.inner.options.path, self.inner.options.cache_bytes) {
            Ok(Some(db)) => db,
            Ok(None) => return false,
            Err(reason) => {
                tracing::warn!(%reason, "the buffer store cannot be reopened yet");
                return false;
            }
        };
        let loaded = match startup::load(&reopened) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::warn!(error = %e, "the reopened buffer store cannot be read yet");
                drop(reopened);
                self.inner.store.poison(&format!("reading the reopened store: {e}"));
                return false;
            }
        };
        {
            let mut state = self.lock_write();
            let mut fresh = loaded.state;
            // Numbers given out before the failure are never given out again, even if their punches were not
            // flushed: an answer for a batch sent before the failure must not cover punches appended after it.
            if fresh.next_seq < state.next_seq {
                fresh.next_seq = state.next_seq;
            }
            *state = fresh;
            self.inner.acked.store(state.acked, Ordering::SeqCst);
        }
        self.inner.store.install(reopened);
        self.inner.faults.clear(faults::BUFFER_STORE_FAILED);
        *self.inner.last_disk_check.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.check_disk();
        tracing::info!(depth = self.depth(), "buffer store reopened");
        let last = self.lock_write().next_seq - 1;
        self.inner.last_seq_tx.send_replace(last);
        true
    }

    /// The store's state and the longest-running operation, for the watchdog.
    pub fn health(&self) -> BufferHealth {
        BufferHealth { store: self.inner.store.health(), oldest_operation: self.inner.ops.oldest() }
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

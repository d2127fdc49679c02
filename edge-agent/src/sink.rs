//! The boundary between sources (device drivers, the push receiver, serial and Modbus readers) and the durable
//! buffer.
//!
//! Sources only ever see this trait. The buffer implements it; [`memory::MemorySink`] implements it for tests.
//!
//! The contract that keeps punches safe:
//! - [`PunchSink::append`] returns `Ok` only once the punches are durable. Only then may a source acknowledge
//!   upstream (answer an ADMS push `OK`, move a cursor past the records).
//! - A punch whose key the sink already holds is counted as a duplicate and not stored again.
//! - When the sink refuses ([`SinkError::Full`]), the source stops taking punches and retries later; the device
//!   keeps its own log, so nothing is lost.

use std::future::Future;

use protocol::{DeviceSerial, Punch, PunchKey};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Appended {
    /// Punches stored for the first time.
    pub new: usize,
    /// Punches whose key was already known.
    pub duplicates: usize,
}

/// Why a sink refused punches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The buffer reached its configured limit, or the disk is full. Retry after it drains.
    #[error("buffer full: {0}")]
    Full(String),
    /// The storage failed; the punches are not stored.
    #[error("buffer storage failed: {0}")]
    Storage(String),
}

/// Where sources put punches and keep their small per-device state.
pub trait PunchSink: Send + Sync + 'static {
    /// Stores the punches durably (flushed to disk) before returning `Ok`.
    ///
    /// # Errors
    /// [`SinkError::Full`] when the buffer is at its limit, [`SinkError::Storage`] when storage fails. In both cases
    /// none of the punches may be considered stored.
    fn append(&self, punches: Vec<Punch>) -> impl Future<Output = Result<Appended, SinkError>> + Send;

    /// Whether the sink takes punches right now (false at the disk limit). Pollers check it before reading a device.
    fn accepting(&self) -> bool;

    /// How many of `keys` are not yet acknowledged by the central service. A key the sink has never seen, or has
    /// forgotten, counts as not acknowledged. Used before clearing a device log: clear only when this is 0.
    ///
    /// # Errors
    /// [`SinkError::Storage`].
    fn unacknowledged(&self, keys: &[PunchKey]) -> impl Future<Output = Result<usize, SinkError>> + Send;

    /// A source's durable state for a device under `name` (a read cursor, an ADMS stamp, a Modbus counter).
    ///
    /// # Errors
    /// [`SinkError::Storage`].
    fn cursor(
        &self,
        device: &DeviceSerial,
        name: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, SinkError>> + Send;

    /// Stores a cursor durably. Store a cursor only after the punches it covers were appended.
    ///
    /// # Errors
    /// [`SinkError::Storage`].
    fn set_cursor(
        &self,
        device: &DeviceSerial,
        name: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

pub mod memory {
    //! An in-memory [`PunchSink`] for tests of sources. Not durable; never used by the daemon.

    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use super::*;

    /// Keeps every appended punch in order; tests can mark keys acknowledged and make it refuse.
    #[derive(Default)]
    pub struct MemorySink {
        state: Mutex<State>,
        refusing: AtomicBool,
    }

    #[derive(Default)]
    struct State {
        punches: Vec<Punch>,
        keys: HashSet<PunchKey>,
        acknowledged: HashSet<PunchKey>,
        cursors: BTreeMap<(String, String), Vec<u8>>,
        appends: usize,
    }

    impl MemorySink {
        pub fn new() -> Self {
            Self::default()
        }

        /// Every distinct punch appended so far, in append order.
        pub fn punches(&self) -> Vec<Punch> {
            self.lock().punches.clone()
        }

        /// How many successful `append` calls were made.
        pub fn append_calls(&self) -> usize {
            self.lock().appends
        }

        /// Marks every stored punch acknowledged, as if central had committed them all.
        pub fn acknowledge_all(&self) {
            let mut state = self.lock();
            let keys: Vec<PunchKey> = state.keys.iter().copied().collect();
            state.acknowledged.extend(keys);
        }

        /// Makes `append` refuse with [`SinkError::Full`] (and `accepting` return false) until set back.
        pub fn set_refusing(&self, refusing: bool) {
            self.refusing.store(refusing, Ordering::SeqCst);
        }

        /// Counts of punches per (device, pin), for assertions.
        pub fn counts_by_device(&self) -> HashMap<String, usize> {
            let mut counts = HashMap::new();
            for punch in &self.lock().punches {
                *counts.entry(punch.device.to_string()).or_default() += 1;
            }
            counts
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, State> {
            self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    impl PunchSink for MemorySink {
        async fn append(&self, punches: Vec<Punch>) -> Result<Appended, SinkError> {
            if self.refusing.load(Ordering::SeqCst) {
                return Err(SinkError::Full("test sink is refusing".into()));
            }
            let mut state = self.lock();
            let mut outcome = Appended::default();
            for punch in punches {
                if state.keys.insert(punch.key()) {
                    state.punches.push(punch);
                    outcome.new += 1;
                } else {
                    outcome.duplicates += 1;
                }
            }
            state.appends += 1;
            Ok(outcome)
        }

        fn accepting(&self) -> bool {
            !self.refusing.load(Ordering::SeqCst)
        }

        async fn unacknowledged(&self, keys: &[PunchKey]) -> Result<usize, SinkError> {
            let state = self.lock();
            Ok(keys.iter().filter(|k| !state.acknowledged.contains(k)).count())
        }

        async fn cursor(&self, device: &DeviceSerial, name: &str) -> Result<Option<Vec<u8>>, SinkError> {
            Ok(self.lock().cursors.get(&(device.to_string(), name.to_owned())).cloned())
        }

        async fn set_cursor(&self, device: &DeviceSerial, name: &str, value: Vec<u8>) -> Result<(), SinkError> {
            self.lock().cursors.insert((device.to_string(), name.to_owned()), value);
            Ok(())
        }
    }
}

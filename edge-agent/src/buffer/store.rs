//! The sled handle behind the buffer, and what happens when sled fails.
//!
//! sled 0.34 remembers the first I/O error of a write it could not complete (for instance `ENOSPC`) as a global
//! error and returns it from every later operation of that instance, even after space came back: the instance is
//! poisoned for good. So the first I/O error (or a flush that does not complete within [`FLUSH_TIMEOUT`]) marks the
//! store poisoned and takes the handle away; [`Store::reopen`] then drops it and opens the directory again, which
//! recovers everything that was durable (sled replays its log) and clears the error. Operations in between fail at
//! once with a clear reason instead of waiting. Reopening never moves the store aside: a full disk is not damage.
//!
//! A reopen needs every clone of the old handle gone (sled holds a file lock until then). A flush stuck inside sled
//! keeps one alive, and such a store is reported stuck, for the watchdog to stop pinging (see `agent::watchdog`).
//!
//! Dropping the last handle of a failed instance can itself hang for good: sled flushes in `Drop`, and after a blob
//! write failed for lack of space (sled 0.34 leaves that write's reservation open) the flush waits for a log position
//! that is never written. So the old handle is released on a thread of its own; reopening waits for that thread a
//! little at each attempt, and a release that has not finished after [`RELEASE_STUCK_AFTER`] makes the store stuck,
//! so that the watchdog has the agent restarted (a new process opens the directory and recovers everything durable).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use super::recovery::{self, OpenError};

/// How long a flush may take before the store is taken for poisoned.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(20);
/// Reopen attempts back off up to this.
const MAX_REOPEN_DELAY: Duration = Duration::from_secs(2);
/// A store that could not be reopened for this long, for a reason other than a full disk, is stuck.
const STUCK_AFTER: Duration = Duration::from_secs(60);
/// How long one reopen attempt waits for the old handle's release.
const RELEASE_WAIT: Duration = Duration::from_secs(1);
/// A release of the old handle still running after this long will not finish: the store is stuck.
pub const RELEASE_STUCK_AFTER: Duration = Duration::from_secs(10);

/// The shared sled handle and its health.
pub struct Store {
    db: RwLock<Option<sled::Db>>,
    poisoned: AtomicBool,
    state: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    /// Why and since when the store is poisoned.
    poisoned: Option<(String, Instant)>,
    next_attempt: Option<Instant>,
    failures: u32,
    /// The last reopen failure was not about space (a lock still held, another error).
    blocked: bool,
    /// The failed instance's last handle being dropped on its own thread: finished when this disconnects.
    release: Option<(std::sync::mpsc::Receiver<()>, Instant)>,
    /// Since when a release has been running; stays set while an attempt waits on it (the receiver is then out).
    releasing_since: Option<Instant>,
}

/// What the watchdog needs to know about the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    Healthy,
    /// Poisoned and being reopened (waiting for space counts as this): the agent is idle by choice.
    Recovering(String),
    /// Poisoned and not reopenable for long, for a reason a restart may clear.
    Stuck(String),
}

impl Store {
    pub fn new(db: sled::Db) -> Self {
        Self { db: RwLock::new(Some(db)), poisoned: AtomicBool::new(false), state: Mutex::default() }
    }

    /// A handle to use now, or why there is none.
    pub fn db(&self) -> Result<sled::Db, String> {
        let slot = self.db.read().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(db) if !self.poisoned.load(Ordering::SeqCst) => Ok(db.clone()),
            _ => Err(self.poison_reason()),
        }
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    fn poison_reason(&self) -> String {
        let state = self.lock();
        match &state.poisoned {
            Some((reason, _)) => format!("the buffer store is being reopened after a storage failure ({reason})"),
            None => "the buffer store is being reopened".into(),
        }
    }

    /// Marks the store poisoned (first reason wins) and drops the shared handle, so later operations fail fast.
    pub fn poison(&self, reason: &str) {
        {
            let mut state = self.lock();
            if state.poisoned.is_none() {
                tracing::error!(%reason, "buffer store failed; it will be reopened");
                state.poisoned = Some((reason.to_owned(), Instant::now()));
                state.next_attempt = Some(Instant::now());
                state.failures = 0;
            }
        }
        self.poisoned.store(true, Ordering::SeqCst);
    }

    /// Whether a reopen attempt is due now.
    pub fn reopen_due(&self) -> bool {
        let state = self.lock();
        state.poisoned.is_some() && state.next_attempt.is_none_or(|t| Instant::now() >= t)
    }

    /// Drops the poisoned handle and opens the directory again. `Ok(Some(db))`: reopened (the caller reloads its
    /// state from it and calls [`Store::install`]); `Ok(None)`: not poisoned; `Err`: try again later.
    ///
    /// # Errors
    /// Why the store could not be opened yet.
    pub fn reopen(&self, path: &Path, cache_bytes: u64) -> Result<Option<sled::Db>, String> {
        if !self.is_poisoned() {
            return Ok(None);
        }
        if let Some(old) = self.db.write().unwrap_or_else(|p| p.into_inner()).take() {
            let (done, released) = std::sync::mpsc::channel::<()>();
            let spawned = std::thread::Builder::new().name("sled-release".into()).spawn(move || {
                drop(old);
                drop(done);
            });
            match spawned {
                Ok(_) => {
                    let mut state = self.lock();
                    state.release = Some((released, Instant::now()));
                    state.releasing_since = Some(Instant::now());
                }
                Err(e) => tracing::error!(error = %e, "cannot start a thread to release the failed buffer store"),
            }
        }
        if let Some(waited) = self.wait_for_release() {
            let mut state = self.lock();
            state.next_attempt = Some(Instant::now() + MAX_REOPEN_DELAY);
            return Err(format!("sled has not released the failed store after {} s", waited.as_secs()));
        }
        match recovery::reopen(path, cache_bytes) {
            Ok(db) => Ok(Some(db)),
            Err(e) => {
                let mut state = self.lock();
                state.failures = state.failures.saturating_add(1);
                state.blocked = !matches!(e, OpenError::NoSpace { .. });
                let delay = Duration::from_millis(250u64 << state.failures.min(6)).min(MAX_REOPEN_DELAY);
                state.next_attempt = Some(Instant::now() + delay);
                Err(e.to_string())
            }
        }
    }

    /// Waits up to [`RELEASE_WAIT`] for the old handle's release; `Some(how long it has run)` when still running.
    fn wait_for_release(&self) -> Option<Duration> {
        let (released, since) = self.lock().release.take()?;
        match released.recv_timeout(RELEASE_WAIT) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let waited = since.elapsed();
                self.lock().release = Some((released, since));
                Some(waited)
            }
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                self.lock().releasing_since = None;
                None
            }
        }
    }

    /// Puts a freshly opened handle in place and clears the poison.
    pub fn install(&self, db: sled::Db) {
        *self.db.write().unwrap_or_else(|p| p.into_inner()) = Some(db);
        *self.lock() = Health::default();
        self.poisoned.store(false, Ordering::SeqCst);
    }

    pub fn health(&self) -> StoreHealth {
        let state = self.lock();
        if let Some(since) = &state.releasing_since {
            if since.elapsed() >= RELEASE_STUCK_AFTER {
                return StoreHealth::Stuck(format!(
                    "sled has not released the failed buffer store for {} s (a flush inside sled does not return); \
                     a restart recovers it",
                    since.elapsed().as_secs()
                ));
            }
        }
        match &state.poisoned {
            None => StoreHealth::Healthy,
            Some((reason, since)) if state.blocked && since.elapsed() >= STUCK_AFTER => StoreHealth::Stuck(format!(
                "the buffer store failed {} s ago ({reason}) and cannot be reopened",
                since.elapsed().as_secs()
            )),
            Some((reason, _)) => StoreHealth::Recovering(reason.clone()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poisoned_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().path(dir.path().join("s")).open().expect("open");
        let store = Store::new(db);
        store.poison("test: no space");
        (dir, store)
    }

    #[test]
    fn a_release_that_does_not_finish_holds_the_reopen_back_and_then_makes_the_store_stuck() {
        let (dir, store) = poisoned_store();
        // The old handle is released at once here; a release that hangs is stood in for by a thread that reports
        // only after a while.
        drop(store.db.write().expect("lock").take());
        let (done, released) = std::sync::mpsc::channel::<()>();
        let hang = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            drop(done);
        });
        {
            let mut state = store.lock();
            let since = Instant::now() - RELEASE_STUCK_AFTER;
            state.release = Some((released, since));
            state.releasing_since = Some(since);
        }
        let refused = store.reopen(&dir.path().join("s"), 1 << 20).expect_err("not while the release runs");
        assert!(refused.contains("has not released"), "{refused}");
        assert!(
            matches!(store.health(), StoreHealth::Stuck(ref why) if why.contains("restart")),
            "{:?}",
            store.health()
        );
        hang.join().expect("join");
        // Once the release finished, the next attempt reopens.
        let reopened = store.reopen(&dir.path().join("s"), 1 << 20).expect("reopens").expect("a handle");
        store.install(reopened);
        assert_eq!(store.health(), StoreHealth::Healthy);
    }

    #[test]
    fn a_failed_handle_is_released_off_the_calling_thread_and_the_store_reopens() {
        let (dir, store) = poisoned_store();
        let reopened = store.reopen(&dir.path().join("s"), 1 << 20).expect("reopens").expect("a handle");
        store.install(reopened);
        assert_eq!(store.health(), StoreHealth::Healthy);
        assert!(store.db().is_ok());
    }
}

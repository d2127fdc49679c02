//! Opening the sled store, and what happens when it cannot be opened.
//!
//! The reference points' worst failure is a corrupt buffer that stops the daemon: then no punch is taken at all. Here
//! a store that fails to open as ours (sled reports corruption, an unknown format, a panic inside sled while
//! recovering, or a missing format marker in a non-empty store) is renamed to `<dir>.corrupt-<UTC timestamp>`, intact,
//! for recovery by hand, with an error in the log, and a fresh store is created so the agent starts. The devices still
//! hold their logs, so what the old store held and had not forwarded is read again on the next pull.
//!
//! Not moved aside, because they are not the store's fault: another process holding the lock (a second agent on the
//! same directory), permission errors, and a full disk. Those stop the agent with a clear error (at start), or are
//! retried (when the running agent reopens its store, see `store`).

use std::io::ErrorKind;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::layout::{FORMAT_MARKER, META_FORMAT};

/// Why the store could not be opened at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("buffer at {path} is in use by another process (is another edge-agent running on it?): {reason}")]
    Locked { path: PathBuf, reason: String },
    #[error("cannot open the buffer at {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("cannot open the buffer at {path}: no space left on its disk ({reason})")]
    NoSpace { path: PathBuf, reason: String },
    #[error("the buffer at {path} could not be opened ({reason}), and moving it aside failed: {move_error}")]
    MoveAside { path: PathBuf, reason: String, move_error: String },
    #[error("a fresh buffer at {path} could not be opened either: {reason}")]
    Fresh { path: PathBuf, reason: String },
}

/// The opened store, and where a broken one was moved to, if that happened.
pub struct Opened {
    pub db: sled::Db,
    pub moved_aside: Option<(PathBuf, String)>,
}

enum Attempt {
    Ok(sled::Db),
    /// Not ours to fix: stop.
    Fatal(OpenError),
    /// The store itself is broken: move it aside.
    Broken(String),
}

/// Opens the store at `path`, moving a broken one aside and starting fresh.
///
/// # Errors
/// [`OpenError`] when the store is locked by another process, the directory is not accessible, or the fresh store
/// cannot be created either.
pub fn open_or_move_aside(path: &Path, cache_bytes: u64) -> Result<Opened, OpenError> {
    match attempt(path, cache_bytes) {
        Attempt::Ok(db) => Ok(Opened { db, moved_aside: None }),
        Attempt::Fatal(e) => Err(e),
        Attempt::Broken(reason) => {
            let aside = aside_path(path);
            std::fs::rename(path, &aside).map_err(|e| OpenError::MoveAside {
                path: path.to_owned(),
                reason: reason.clone(),
                move_error: e.to_string(),
            })?;
            tracing::error!(
                buffer = %path.display(),
                moved_to = %aside.display(),
                %reason,
                "THE BUFFER COULD NOT BE OPENED: it was moved aside intact and a fresh one was created; punches it held \
                 that were not yet forwarded are read again from the devices where they still hold them"
            );
            match attempt(path, cache_bytes) {
                Attempt::Ok(db) => Ok(Opened { db, moved_aside: Some((aside, reason)) }),
                Attempt::Fatal(e) => Err(e),
                Attempt::Broken(reason) => Err(OpenError::Fresh { path: path.to_owned(), reason }),
            }
        }
    }
}

/// Opens the store again in a running agent: never moves it aside (what failed was the disk or the handle, not the
/// data), and any failure is for the caller to retry.
///
/// # Errors
/// [`OpenError`]; a store sled cannot read is reported as [`OpenError::Io`] and left as it is.
pub fn reopen(path: &Path, cache_bytes: u64) -> Result<sled::Db, OpenError> {
    match attempt(path, cache_bytes) {
        Attempt::Ok(db) => Ok(db),
        Attempt::Fatal(e) => Err(e),
        Attempt::Broken(reason) => Err(OpenError::Io { path: path.to_owned(), reason }),
    }
}

fn attempt(path: &Path, cache_bytes: u64) -> Attempt {
    remove_unfinished_snapshots(path);
    let config = sled::Config::new().path(path).cache_capacity(cache_bytes).mode(sled::Mode::HighThroughput);
    // sled 0.34 panics on some kinds of damage instead of returning an error; such a store is as broken as one that
    // reports corruption, and must not stop the agent.
    let opened = match std::panic::catch_unwind(AssertUnwindSafe(|| config.open())) {
        Ok(result) => result,
        Err(panic) => return Attempt::Broken(format!("sled panicked while recovering: {}", panic_text(&panic))),
    };
    let db = match opened {
        Ok(db) => db,
        Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
            return Attempt::Fatal(OpenError::Locked { path: path.to_owned(), reason: e.to_string() })
        }
        Err(sled::Error::Io(e)) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem) => {
            return Attempt::Fatal(OpenError::Io { path: path.to_owned(), reason: e.to_string() })
        }
        Err(sled::Error::Io(e)) if super::is_disk_full(&e) => {
            return Attempt::Fatal(OpenError::NoSpace { path: path.to_owned(), reason: e.to_string() })
        }
        Err(e) => return Attempt::Broken(e.to_string()),
    };
    match check_format(&db) {
        Ok(()) => Attempt::Ok(db),
        Err(FormatError::Io(e)) => {
            drop(db);
            Attempt::Fatal(OpenError::NoSpace { path: path.to_owned(), reason: e })
        }
        Err(FormatError::Bad(reason)) => {
            drop(db);
            Attempt::Broken(reason)
        }
    }
}

/// Removes sled's unfinished snapshot files (`snap.<lsn>.generating`). sled 0.34 writes a snapshot under that name and
/// renames it when complete; a write cut short (a full disk) leaves it behind, and sled then reads it as the newest
/// snapshot and refuses the whole store as corrupt ("Read corrupted data at file offset None"). An unfinished snapshot
/// holds nothing the log and the last complete snapshot do not, so removing it loses nothing.
pub fn remove_unfinished_snapshots(path: &Path) {
    let Ok(entries) = std::fs::read_dir(path) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::warn!(file = %name, "removed an unfinished sled snapshot left by a failed write"),
                Err(e) => tracing::warn!(file = %name, error = %e, "cannot remove an unfinished sled snapshot"),
            }
        }
    }
}

enum FormatError {
    /// Writing the marker into a fresh store failed for lack of space.
    Io(String),
    Bad(String),
}

/// A fresh store gets the marker; an existing one must carry exactly ours.
fn check_format(db: &sled::Db) -> Result<(), FormatError> {
    let no_space = |what: &str, e: sled::Error| match e {
        sled::Error::Io(io) if super::is_disk_full(&io) => FormatError::Io(format!("{what}: {io}")),
        other => FormatError::Bad(format!("{what}: {other}")),
    };
    match db.get(META_FORMAT) {
        Ok(Some(marker)) if marker.as_ref() == FORMAT_MARKER => Ok(()),
        Ok(Some(marker)) => {
            Err(FormatError::Bad(format!("unknown buffer format {:?}", String::from_utf8_lossy(&marker))))
        }
        Ok(None) if db.is_empty() => {
            db.insert(META_FORMAT, FORMAT_MARKER).map_err(|e| no_space("writing the format marker", e))?;
            db.flush().map_err(|e| no_space("flushing the format marker", e))?;
            Ok(())
        }
        Ok(None) => {
            Err(FormatError::Bad("the store holds data but no format marker; it is not an edge-agent buffer".into()))
        }
        Err(e) => Err(FormatError::Bad(format!("reading the format marker: {e}"))),
    }
}

/// Renames a damaged store to `<dir>.damaged-<UTC timestamp>` (kept for recovery by hand) and opens a fresh one.
///
/// # Errors
/// [`OpenError`] when the rename or the fresh open fails.
pub fn replace_damaged(path: &Path, cache_bytes: u64) -> Result<(sled::Db, PathBuf), OpenError> {
    let aside = aside_path(path).to_string_lossy().replace(".corrupt-", ".damaged-").into();
    if path.exists() {
        std::fs::rename(path, &aside).map_err(|e| OpenError::MoveAside {
            path: path.to_owned(),
            reason: "the store lost punches".into(),
            move_error: e.to_string(),
        })?;
    }
    match attempt(path, cache_bytes) {
        Attempt::Ok(db) => Ok((db, aside)),
        Attempt::Fatal(e) => Err(e),
        Attempt::Broken(reason) => Err(OpenError::Fresh { path: path.to_owned(), reason }),
    }
}

fn aside_path(path: &Path) -> PathBuf {
    let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "buffer".into());
    name.push(format!(".corrupt-{stamp}"));
    path.with_file_name(name)
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits until no sled instance holds the store's lock. A dropped `Db` lets go of it only when its background
    /// thread ends, a moment later (on a loaded machine, after the next open had already been refused as locked).
    fn wait_until_unlocked(path: &Path) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let file = std::fs::File::open(path.join("db")).expect("the store's db file");
            match file.try_lock() {
                Ok(()) => return,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("the store is still locked after 10 s: {e:?}"),
            }
        }
    }

    #[test]
    fn an_unfinished_snapshot_left_by_a_full_disk_does_not_make_the_store_unreadable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("buffer");
        {
            let db = sled::Config::new().path(&path).open().expect("open");
            db.insert(META_FORMAT, FORMAT_MARKER).expect("marker");
            db.insert(b"k", b"punches").expect("insert");
            db.flush().expect("flush");
        }
        wait_until_unlocked(&path);
        // What a snapshot write cut short by ENOSPC leaves: a few bytes under the unfinished name.
        std::fs::write(path.join("snap.00000000FFFFFFFF.generating"), [0u8; 7]).expect("write");
        let bare = sled::Config::new().path(&path).open();
        assert!(
            bare.is_err(),
            "sled alone refuses the store with the unfinished snapshot (if not, drop this workaround)"
        );
        wait_until_unlocked(&path);
        let db = reopen(&path, 1 << 20).expect("our reopen removes it and opens");
        assert_eq!(db.get(b"k").expect("get").as_deref(), Some(&b"punches"[..]));
        assert!(!path.join("snap.00000000FFFFFFFF.generating").exists());
    }
}

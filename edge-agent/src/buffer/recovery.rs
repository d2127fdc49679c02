//! Opening the sled store, and what happens when it cannot be opened.
//!
//! The reference points' worst failure is a corrupt buffer that stops the daemon: then no punch is taken at all. Here
//! a store that fails to open as ours (sled reports corruption, an unknown format, a panic inside sled while
//! recovering, or a missing format marker in a non-empty store) is renamed to `<dir>.corrupt-<UTC timestamp>`, intact,
//! for recovery by hand, with an error in the log, and a fresh store is created so the agent starts. The devices still
//! hold their logs, so what the old store held and had not forwarded is read again on the next pull.
//!
//! Not moved aside, because they are not the store's fault: another process holding the lock (a second agent on the
//! same directory), and permission errors. Those stop the agent with a clear error.

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

fn attempt(path: &Path, cache_bytes: u64) -> Attempt {
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
        Err(e) => return Attempt::Broken(e.to_string()),
    };
    match check_format(&db) {
        Ok(()) => Attempt::Ok(db),
        Err(reason) => {
            drop(db);
            Attempt::Broken(reason)
        }
    }
}

/// A fresh store gets the marker; an existing one must carry exactly ours.
fn check_format(db: &sled::Db) -> Result<(), String> {
    match db.get(META_FORMAT) {
        Ok(Some(marker)) if marker.as_ref() == FORMAT_MARKER => Ok(()),
        Ok(Some(marker)) => Err(format!("unknown buffer format {:?}", String::from_utf8_lossy(&marker))),
        Ok(None) if db.is_empty() => {
            db.insert(META_FORMAT, FORMAT_MARKER).map_err(|e| format!("writing the format marker: {e}"))?;
            db.flush().map_err(|e| format!("flushing the format marker: {e}"))?;
            Ok(())
        }
        Ok(None) => Err("the store holds data but no format marker; it is not an edge-agent buffer".into()),
        Err(e) => Err(format!("reading the format marker: {e}")),
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

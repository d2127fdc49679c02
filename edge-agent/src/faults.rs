//! Faults of the agent itself (buffer full, link down, batch rejected, unverified acknowledgement), as opposed to a
//! device's faults, which live on the [`crate::device_status::DeviceStatusBoard`].
//!
//! Written by the buffer and the forwarder, read by the status envelope, `/healthz` and `/metrics`. One fault per code:
//! raising it again keeps its first `since` and takes the newest message; clearing it removes it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use protocol::Fault;

/// The buffer reached its disk limit, or the disk is full.
pub const BUFFER_FULL: &str = "buffer_full";
/// The buffer's storage failed.
pub const BUFFER_STORAGE: &str = "buffer_storage";
/// The buffer failed to open and was moved aside; a fresh one was created.
pub const BUFFER_MOVED_ASIDE: &str = "buffer_moved_aside";
/// The buffer's store failed (an I/O error, a flush that never completed) and is being reopened.
pub const BUFFER_STORE_FAILED: &str = "buffer_store_failed";
/// At start the buffer held fewer punches than its marker says were stored: some were lost with the store.
pub const BUFFER_DAMAGED: &str = "buffer_damaged";
/// Central refused the agent's token (HTTP 401, or an unauthorized refusal over MQTT).
pub const AUTH_FAILED: &str = "auth_failed";
/// Batches cannot be delivered (transport error, timeout, server error).
pub const LINK_DOWN: &str = "link_down";
/// The central service refused a batch or a request (rejected ack, 400/403/413).
pub const BATCH_REJECTED: &str = "batch_rejected";
/// A message on the MQTT acks topic carried no valid proof from central (forged, replayed from elsewhere, or central
/// holds another token for this agent); it was ignored.
pub const UNVERIFIED_ACK: &str = "unverified_ack";

/// The agent's own faults, shared between tasks.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<Vec<Fault>>>,
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    /// Raises (or refreshes) the fault `code`.
    pub fn raise(&self, code: &str, message: impl Into<String>, now: DateTime<Utc>) {
        let message = protocol::envelope::truncate_text(message.into());
        let mut faults = self.lock();
        match faults.iter_mut().find(|f| f.code == code) {
            Some(existing) => existing.message = message,
            None => faults.push(Fault { code: code.to_owned(), message, since: now }),
        }
    }

    /// Clears the fault `code`, if raised.
    pub fn clear(&self, code: &str) {
        self.lock().retain(|f| f.code != code);
    }

    /// Whether the fault `code` is raised.
    pub fn is_raised(&self, code: &str) -> bool {
        self.lock().iter().any(|f| f.code == code)
    }

    /// A copy of every raised fault, oldest first.
    pub fn snapshot(&self) -> Vec<Fault> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_keeps_first_since_and_clear_removes() {
        let faults = Faults::new();
        let t0 = DateTime::from_timestamp(100, 0).unwrap_or_default();
        faults.raise(LINK_DOWN, "refused", t0);
        faults.raise(LINK_DOWN, "timeout", t0 + chrono::Duration::seconds(9));
        faults.raise(BUFFER_FULL, "at 10 MB", t0);
        let snap = faults.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!((snap[0].message.as_str(), snap[0].since), ("timeout", t0));
        faults.clear(LINK_DOWN);
        assert!(!faults.is_raised(LINK_DOWN));
        assert!(faults.is_raised(BUFFER_FULL));
    }
}

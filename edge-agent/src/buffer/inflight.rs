//! Buffer operations in progress, with when each started, so the watchdog can tell a busy buffer from a stuck one
//! (an append or acknowledgement waiting on a flush that never completes).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The operations in progress.
#[derive(Debug, Default)]
pub struct InFlight {
    next: AtomicU64,
    started: Mutex<BTreeMap<u64, (&'static str, Instant)>>,
}

/// Ends its operation when dropped (also when the future holding it is cancelled).
pub struct Operation {
    owner: Arc<InFlight>,
    id: u64,
}

impl InFlight {
    pub fn start(self: &Arc<Self>, what: &'static str) -> Operation {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, (what, Instant::now()));
        Operation { owner: self.clone(), id }
    }

    /// The operation running longest, and for how long.
    pub fn oldest(&self) -> Option<(&'static str, Duration)> {
        self.lock().values().map(|(what, at)| (*what, at.elapsed())).max_by_key(|(_, age)| *age)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, (&'static str, Instant)>> {
        self.started.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        self.owner.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_counts_until_dropped() {
        let ops = Arc::new(InFlight::default());
        assert!(ops.oldest().is_none());
        let first = ops.start("append");
        std::thread::sleep(Duration::from_millis(20));
        let second = ops.start("acknowledge");
        let (what, age) = ops.oldest().expect("two in flight");
        assert_eq!(what, "append");
        assert!(age >= Duration::from_millis(20));
        drop(first);
        assert_eq!(ops.oldest().map(|(w, _)| w), Some("acknowledge"));
        drop(second);
        assert!(ops.oldest().is_none());
    }
}

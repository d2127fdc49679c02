//! Forgetting the keys of punches acknowledged longer ago than the retention.
//!
//! Each acknowledgement leaves an `a` entry (when, up to which sequence). Pruning finds the highest sequence
//! acknowledged before the cutoff and deletes the key chunks wholly at or below it (a chunk that straddles it stays a
//! little longer), in slices so the writer lock is held briefly. The caller then forgets the deleted range in the
//! in-memory key set.

use std::sync::MutexGuard;

use super::layout::{entry_bytes, parse_ack_log_key, read_u64, seq_key, ACK_LOG, KEY, META_LIVE_BYTES};
use super::{WriteState, CHUNK};

/// Prunes keys of punches acknowledged before `cutoff_ms`; returns how many keys were removed and the last sequence
/// number of the deleted chunks (every key chunk at or below it is gone).
pub(super) fn prune<'a>(
    db: &sled::Db,
    cutoff_ms: i64,
    lock: &dyn Fn() -> MutexGuard<'a, WriteState>,
) -> Result<(u64, Option<u64>), sled::Error> {
    let mut prune_up_to = None;
    let mut expired_log = Vec::new();
    for item in db.scan_prefix([ACK_LOG]) {
        let (key, _) = item?;
        let Some((at_ms, seq)) = parse_ack_log_key(&key) else { continue };
        if at_ms >= cutoff_ms {
            break;
        }
        prune_up_to = Some(prune_up_to.map_or(seq, |s: u64| s.max(seq)));
        expired_log.push(key);
    }
    let Some(up_to) = prune_up_to else { return Ok((0, None)) };
    let mut removed = 0u64;
    let mut deleted_through = None;
    loop {
        let mut state = lock();
        let mut batch = sled::Batch::default();
        let mut in_batch = 0;
        for item in db.range(seq_key(KEY, 0)..=seq_key(KEY, up_to)) {
            let (key, value) = item?;
            let Some(first) = read_u64(&key) else { continue };
            let count = (value.len() / 16) as u64;
            if first + count.max(1) - 1 > up_to {
                break;
            }
            state.live_bytes = state.live_bytes.saturating_sub(entry_bytes(key.len(), value.len()));
            batch.remove(key);
            removed += count;
            deleted_through = Some(first + count.max(1) - 1);
            in_batch += 1;
            if in_batch == CHUNK {
                break;
            }
        }
        let done = in_batch < CHUNK;
        if done {
            for key in &expired_log {
                batch.remove(key.clone());
            }
        }
        batch.insert(META_LIVE_BYTES, &state.live_bytes.to_be_bytes());
        db.apply_batch(batch)?;
        if done {
            break;
        }
    }
    if removed > 0 {
        tracing::info!(removed, up_to, "pruned keys of punches acknowledged before the retention");
    }
    Ok((removed, deleted_through))
}

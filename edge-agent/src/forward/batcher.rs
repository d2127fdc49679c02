//! Choosing the next batch: full batches go at once; a partial batch waits until its oldest punch has lingered long
//! enough, so a trickle of punches becomes a few requests per second at most, while a backlog goes at full size.

use std::time::Duration;

use chrono::Utc;
use protocol::SequencedPunch;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::buffer::Buffer;

/// How long to wait before reading again after a storage error.
const STORAGE_RETRY: Duration = Duration::from_secs(1);

/// The next batch after sequence `after`, or `None` at shutdown. Reads at most `max` punches at a time from the
/// buffer (a range scan): the backlog is never loaded whole.
pub async fn next_batch(
    buffer: &Buffer,
    after: u64,
    max: usize,
    linger: Duration,
    last_seq: &mut watch::Receiver<u64>,
    shutdown: &CancellationToken,
) -> Option<Vec<SequencedPunch>> {
    loop {
        // Mark the current value seen before reading, so an append after the read wakes us.
        last_seq.borrow_and_update();
        let wait = match buffer.read_after(after, max) {
            Ok(items) if items.len() >= max => return Some(into_batch(items)),
            Ok(items) => match items.first() {
                Some((_, oldest)) => {
                    let waited = (Utc::now() - oldest.appended_at).to_std().unwrap_or(Duration::ZERO);
                    if waited >= linger {
                        return Some(into_batch(items));
                    }
                    Some(linger - waited)
                }
                None => None,
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot read the backlog; retrying");
                Some(STORAGE_RETRY)
            }
        };
        let sleep = async {
            match wait {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = last_seq.changed() => {
                if changed.is_err() {
                    // The buffer is gone; nothing more will arrive.
                    shutdown.cancelled().await;
                    return None;
                }
            }
            () = sleep => {}
            () = shutdown.cancelled() => return None,
        }
    }
}

fn into_batch(items: Vec<(u64, crate::buffer::StoredPunch)>) -> Vec<SequencedPunch> {
    items.into_iter().map(|(seq, stored)| SequencedPunch { seq, punch: stored.punch }).collect()
}

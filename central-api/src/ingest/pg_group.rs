//! PostgreSQL group commit: batches that arrive while the writers are busy are stored together, in one transaction
//! and one insert statement ([`crate::store::ingest_group`]), so a busy central pays one commit, one statement and
//! one round of attendance-day marking per group rather than per batch (issue 19).
//!
//! [`WRITERS`] tasks take turns at the queue: each takes the first waiting batch and whatever else is already queued
//! (up to [`MAX_GROUP_BATCHES`] batches or [`MAX_GROUP_ROWS`] punches) and stores the group while the other
//! collects the next one. A lone batch is stored at once, by the same path. Each batch still gets its own answer, and
//! only after the transaction holding it committed; if the group's transaction fails, every batch of it is stored
//! again alone ([`Store::insert_batch`], with its retries) and answered with that result.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::store::ingest::Inserted;
use crate::store::ingest_group::{insert_group_postgres, RecentDuplicates};
use crate::store::rows::BatchRows;
use crate::store::writer_stats::WriterStats;
use crate::store::{Store, StoreError};

/// Groups stored at once (each on its own connection).
pub const WRITERS: usize = 2;
/// At most this many batches share one transaction.
pub const MAX_GROUP_BATCHES: usize = 16;
/// A group stops growing once it holds this many punches.
pub const MAX_GROUP_ROWS: usize = 20_000;
/// Batches waiting for a writer; senders wait when it is full.
const QUEUE: usize = 64;

struct Job {
    batch: BatchRows,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// Handle to the writer tasks; they stop when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct PgGroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("rows", &self.batch.rows.len()).finish()
    }
}

impl PgGroupCommit {
    /// Starts the writer tasks on `store` (a PostgreSQL store), counting their groups in `stats`. Must be called
    /// inside a tokio runtime.
    pub fn start(store: Store, stats: Arc<WriterStats>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        let recent = Arc::new(RecentDuplicates::default());
        for _ in 0..WRITERS {
            tokio::spawn(run(store.clone(), queue.clone(), recent.clone(), stats.clone()));
        }
        Self { jobs }
    }

    /// Stores `batch` in the next group transaction and returns its counts once that transaction committed.
    ///
    /// # Errors
    /// The batch's own [`StoreError`] (then none of its rows is stored), or [`StoreError::WriterStopped`].
    pub async fn insert(&self, batch: BatchRows) -> Result<Inserted, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { batch, reply }).await.map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// The next group: waits for one batch, then takes what is already queued.
async fn next_group(queue: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut queue = queue.lock().await;
    let first = queue.recv().await?;
    let mut rows = first.batch.rows.len();
    let mut group = vec![first];
    while group.len() < MAX_GROUP_BATCHES && rows < MAX_GROUP_ROWS {
        let Ok(job) = queue.try_recv() else { break };
        rows += job.batch.rows.len();
        group.push(job);
    }
    Some(group)
}

async fn run(
    store: Store,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    recent: Arc<RecentDuplicates>,
    stats: Arc<WriterStats>,
) {
    while let Some(group) = next_group(&queue).await {
        store_group(&store, group, &recent, &stats).await;
    }
    tracing::debug!("PostgreSQL group-commit writer stopped");
}

/// Stores `group` and answers each batch. The sender may have gone (client disconnected); the rows are committed all
/// the same, and a retry of the batch will count them as duplicates.
async fn store_group(store: &Store, group: Vec<Job>, recent: &RecentDuplicates, stats: &WriterStats) {
    if let Store::Postgres(pool) = store {
        let batches: Vec<&BatchRows> = group.iter().map(|job| &job.batch).collect();
        match insert_group_postgres(pool, &batches, recent, stats).await {
            Ok(results) => {
                for (job, result) in group.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, batches = group.len(), "group transaction failed; storing its batches one by one");
            }
        }
    }
    for job in group {
        let result = store.insert_batch(job.batch).await;
        let _ = job.reply.send(result);
    }
}

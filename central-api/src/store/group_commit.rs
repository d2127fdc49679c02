//! SQLite group commit: batches that arrive while the writer is busy are stored together in one transaction.
//!
//! SQLite has one writer and, with `synchronous = FULL`, every commit waits for the disk. One transaction per batch
//! therefore caps ingest at the disk's sync rate whatever the batch size. Here a single task owns the writer: it takes
//! the first waiting batch and whatever else is already queued (up to [`MAX_GROUP_BATCHES`] batches or
//! [`MAX_GROUP_ROWS`] punches), stores each under its own savepoint, marks the attendance days of every new punch
//! once, and commits once. Each batch still gets its own answer:
//!
//! - a batch whose statements fail is rolled back to its savepoint and answered with its error; the others commit;
//! - if the group transaction itself fails (commit, dirty marking), every batch of the group is stored again alone,
//!   in its own transaction, and answered with that result, so one batch's failure is never reported for another.
//!
//! No batch is answered before the transaction holding it committed.

use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::ingest::{insert_sqlite_rows, Inserted};
use super::ingest_sqlite::{mark_days, NewDays};
use super::rows::BatchRows;
use super::StoreError;

/// At most this many batches share one transaction.
pub const MAX_GROUP_BATCHES: usize = 32;
/// A group stops growing once it holds this many punches.
pub const MAX_GROUP_ROWS: usize = 32_000;
/// Batches waiting for the writer; senders wait when it is full.
const QUEUE: usize = 64;

struct Job {
    batch: BatchRows,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// Handle to the writer task. Cloning shares the task; it stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer task on `writer` (the single-connection pool). Must be called inside a tokio runtime.
    pub fn start(writer: SqlitePool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(writer, queue));
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

async fn run(writer: SqlitePool, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut rows = first.batch.len();
        let mut group = vec![first];
        while group.len() < MAX_GROUP_BATCHES && rows < MAX_GROUP_ROWS {
            let Ok(job) = queue.try_recv() else { break };
            rows += job.batch.len();
            group.push(job);
        }
        let batches: Vec<&BatchRows> = group.iter().map(|job| &job.batch).collect();
        let results = match store_group(&writer, &batches).await {
            Ok(results) => results,
            Err(e) if group.len() > 1 => {
                tracing::warn!(error = %e, batches = group.len(), "group transaction failed; storing its batches one by one");
                let mut results = Vec::with_capacity(group.len());
                for batch in &batches {
                    results.push(store_group(&writer, &[batch]).await.and_then(single));
                }
                results
            }
            Err(e) => vec![Err(e)],
        };
        for (job, result) in group.into_iter().zip(results) {
            // The sender may have gone (client disconnected); the rows are committed all the same, and a retry of
            // the batch will count them as duplicates.
            let _ = job.reply.send(result);
        }
    }
    tracing::debug!("SQLite writer task stopped");
}

fn single(mut results: Vec<Result<Inserted, StoreError>>) -> Result<Inserted, StoreError> {
    results.pop().unwrap_or(Err(StoreError::WriterStopped))
}

/// One transaction for `batches`: each under a savepoint, the dirty days of every new punch marked once, one commit.
/// The outer error is the transaction's; the inner results are per batch.
async fn store_group(
    writer: &SqlitePool,
    batches: &[&BatchRows],
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let mut days = NewDays::new();
    let mut results = Vec::with_capacity(batches.len());
    for batch in batches {
        results.push(store_one(&mut tx, batch, &mut days).await?);
    }
    mark_days(&mut tx, &days).await?;
    tx.commit().await?;
    Ok(results)
}

/// Stores one batch under a savepoint and adds the days of its new punches to `days` once it is kept. The outer error
/// means the transaction is unusable; the inner is the batch's.
async fn store_one(
    tx: &mut Transaction<'_, Sqlite>,
    batch: &BatchRows,
    days: &mut NewDays,
) -> Result<Result<Inserted, StoreError>, StoreError> {
    sqlx::query("SAVEPOINT batch").execute(&mut **tx).await?;
    match insert_sqlite_rows(tx, batch).await {
        Ok((inserted, new_days)) => {
            sqlx::query("RELEASE batch").execute(&mut **tx).await?;
            days.extend(new_days);
            Ok(Ok(inserted))
        }
        Err(e) => {
            sqlx::query("ROLLBACK TO batch").execute(&mut **tx).await?;
            sqlx::query("RELEASE batch").execute(&mut **tx).await?;
            Ok(Err(e))
        }
    }
}

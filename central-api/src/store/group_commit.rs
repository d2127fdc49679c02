//! SQLite group commit: batches that arrive while the writer is busy are stored together in one transaction.
//!
//! SQLite has one writer and, with `synchronous = FULL`, every commit waits for the disk; each commit also writes
//! again every index page the transaction touched. One transaction per batch therefore caps ingest at the disk's
//! sync rate whatever the batch size. Here a single task owns the writer. It opens a transaction for the first
//! waiting batch and, after each batch it stored, takes whatever else has been queued meanwhile (up to
//! [`MAX_GROUP_BATCHES`] batches or [`MAX_GROUP_ROWS`] punches); then it marks the attendance days of every new punch
//! once and commits once. Each batch still gets its own answer:
//!
//! - if anything in the group transaction fails (a batch's statements, the dirty marking, the commit), the whole
//!   transaction is rolled back and every batch of the group is stored again alone, in its own transaction, and
//!   answered with that result, so one batch's failure is never reported for another;
//! - no batch is answered before the transaction holding it committed.
//!
//! The task also remembers the dirty rows it committed ([`MarkedDays`]): a day it marked is not marked again while
//! nothing else has written to the database since, which [`WriterStamp`] tells. That holds the punches of a busy
//! day to one dirty-row statement per employee-day rather than one per batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::ingest::{insert_sqlite_rows, Inserted};
use super::ingest_sqlite::{day_marks, mark_days, NewDays};
use super::rows::BatchRows;
use super::sqlite_raw::{writer_stamp, WriterStamp};
use super::writer_stats::{GroupFigures, WriterStats};
use super::StoreError;

/// At most this many batches share one transaction.
pub const MAX_GROUP_BATCHES: usize = 32;
/// A group stops growing once it holds this many punches.
pub const MAX_GROUP_ROWS: usize = 32_000;
/// Batches waiting for the writer; senders wait when it is full.
const QUEUE: usize = 64;
/// [`MarkedDays`] forgets everything past this many days (and starts again).
const MAX_REMEMBERED_MARKS: usize = 500_000;

struct Job {
    batch: BatchRows,
    reply: oneshot::Sender<Result<Inserted, StoreError>>,
}

/// Handle to the writer task. Cloning shares the task; it stops when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

impl GroupCommit {
    /// Starts the writer task on `writer` (the single-connection pool). Must be called inside a tokio runtime.
    pub fn start(writer: SqlitePool) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let stats = Arc::new(WriterStats::default());
        tokio::spawn(run(writer, queue, stats.clone()));
        Self { jobs, stats }
    }

    /// What the writer task did so far.
    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
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

/// The dirty rows (employee, day) this task committed, valid while the writer's [`WriterStamp`] is the one it read
/// just before that commit: then nothing (the attendance worker, a bulk job, another process) has written since, so
/// none of them has been consumed.
#[derive(Default)]
struct MarkedDays {
    days: HashMap<NaiveDate, HashSet<String>>,
    count: usize,
    stamp: Option<WriterStamp>,
}

impl MarkedDays {
    /// Called first in a group's transaction: forgets everything if anything was written since the last commit.
    async fn check(&mut self, conn: &mut sqlx::SqliteConnection) -> Result<(), StoreError> {
        let now = writer_stamp(conn).await?;
        if self.stamp != Some(now) {
            self.forget();
        }
        self.stamp = None;
        Ok(())
    }

    fn forget(&mut self) {
        self.days.clear();
        self.count = 0;
    }

    fn contains(&self, pin: &str, day: NaiveDate) -> bool {
        self.days.get(&day).is_some_and(|pins| pins.contains(pin))
    }

    /// After the commit of `marks`, with the stamp read just before it.
    fn committed(&mut self, marks: Vec<(&str, NaiveDate)>, stamp: WriterStamp) {
        if self.count + marks.len() > MAX_REMEMBERED_MARKS {
            self.forget();
        }
        for (pin, day) in marks {
            if self.days.entry(day).or_default().insert(pin.to_owned()) {
                self.count += 1;
            }
        }
        self.stamp = Some(stamp);
    }
}

async fn run(writer: SqlitePool, mut queue: mpsc::Receiver<Job>, stats: Arc<WriterStats>) {
    let mut marked = MarkedDays::default();
    let marked = &mut marked;
    let stats = stats.as_ref();
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        match store_group(&writer, &mut group, Some(&mut queue), marked, stats).await {
            Ok(results) => {
                for (job, result) in group.into_iter().zip(results) {
                    // The sender may have gone (client disconnected); the rows are committed all the same, and a
                    // retry of the batch will count them as duplicates.
                    let _ = job.reply.send(Ok(result));
                }
            }
            Err(e) if group.len() > 1 => {
                tracing::warn!(error = %e, batches = group.len(), "group transaction failed; storing its batches one by one");
                for job in group {
                    let mut one = vec![job];
                    let result = store_group(&writer, &mut one, None, marked, stats).await.and_then(single);
                    if let Some(job) = one.pop() {
                        let _ = job.reply.send(result);
                    }
                }
            }
            Err(e) => {
                if let Some(job) = group.pop() {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
    }
    tracing::debug!("SQLite writer task stopped");
}

fn single(mut results: Vec<Inserted>) -> Result<Inserted, StoreError> {
    results.pop().ok_or(StoreError::WriterStopped)
}

/// One transaction for `group`, which grows from `queue` (when given) while it is being stored: every batch, the
/// dirty days of every new punch, one commit. Returns each batch's counts, in order; on an error nothing of the group
/// is stored.
async fn store_group(
    writer: &SqlitePool,
    group: &mut Vec<Job>,
    mut queue: Option<&mut mpsc::Receiver<Job>>,
    marked: &mut MarkedDays,
    stats: &WriterStats,
) -> Result<Vec<Inserted>, StoreError> {
    let started = Instant::now();
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    marked.check(&mut tx).await?;
    let mut days = NewDays::new();
    let mut results = Vec::with_capacity(group.len());
    let mut next = 0;
    loop {
        if let Some(queue) = queue.as_deref_mut() {
            top_up(group, queue);
        }
        let Some(job) = group.get(next) else { break };
        results.push(store_one(&mut tx, &job.batch, &mut days).await?);
        next += 1;
    }
    let all_marks = day_marks(&days);
    let considered = all_marks.len();
    let marks: Vec<(&str, NaiveDate)> =
        all_marks.into_iter().filter(|(pin, day)| !marked.contains(pin, *day)).collect();
    mark_days(&mut tx, &marks).await?;
    let stamp = writer_stamp(&mut tx).await?;
    let committing = Instant::now();
    tx.commit().await?;
    let figures = GroupFigures {
        batches: group.len(),
        busy: started.elapsed(),
        commit: committing.elapsed(),
        marks_written: marks.len(),
        marks_skipped: considered - marks.len(),
    };
    stats.committed(figures);
    marked.committed(marks, stamp);
    Ok(results)
}

/// Adds to `group` the batches queued meanwhile, while it holds fewer than [`MAX_GROUP_BATCHES`] batches and
/// [`MAX_GROUP_ROWS`] punches.
fn top_up(group: &mut Vec<Job>, queue: &mut mpsc::Receiver<Job>) {
    let mut held: usize = group.iter().map(|job| job.batch.len()).sum();
    while group.len() < MAX_GROUP_BATCHES && held < MAX_GROUP_ROWS {
        let Ok(job) = queue.try_recv() else { break };
        held += job.batch.len();
        group.push(job);
    }
}

/// Stores one batch in the group's transaction and adds the days of its new punches to `days`.
async fn store_one(
    tx: &mut Transaction<'_, Sqlite>,
    batch: &BatchRows,
    days: &mut NewDays,
) -> Result<Inserted, StoreError> {
    let (inserted, new_days) = insert_sqlite_rows(tx, batch).await?;
    days.extend(new_days);
    Ok(inserted)
}

//! SQLite bulk jobs, one chunk ahead: while chunk n writes on the one writer connection, chunk n+1's inputs are
//! loaded and its days computed on a reader connection, so that reading (the larger half of a chunk) and writing run
//! side by side.
//!
//! How the rows computed ahead stay true:
//! - chunk n+1's snapshot is taken inside chunk n's transaction, after it took the write lock and before it wrote
//!   anything: the snapshot holds everything committed until then;
//! - chunk n writes only its own employees' attendance, man-days and dirty rows, and chunk n+1 reads nothing of
//!   theirs (chunks are disjoint), so the snapshot is what chunk n+1 would read itself after chunk n's commit,
//!   unless someone else wrote meanwhile;
//! - chunk n+1's transaction writes the rows computed ahead only if its writer connection's [`WriterStamp`] is the
//!   one chunk n left: nothing was written since by this process (whose writes all go through that connection) or
//!   another. Otherwise (ingest, an edit, a CLI command got in between) it loads and computes inside its own
//!   transaction, as every chunk did before, and the work done ahead is dropped.
//!
//! While something else keeps writing (ingest during the day), most chunks computed ahead are found stale: after one
//! is, the next chunk is not computed ahead, so that at most every other chunk's work is done twice. A chunk whose
//! transaction fails with a transient error is run again on its own ([`super::bulk::run_chunk`]).

use std::time::Instant;

use super::bulk::{fill_chunk, run_chunk, with_retries, ChunkJob, Control};
use super::{compute, Computed, JobError, Outcome};
use crate::store::attendance::inputs::load_reference;
use crate::store::sqlite_raw::{writer_stamp, WriterStamp};
use crate::store::{SqliteStore, Store, StoreError, Tx};

/// A chunk computed ahead: the task computing it on a reader, and the writer's stamp its rows are true for (known
/// once the chunk before it committed). Dropping it stops the task.
struct Ahead {
    task: tokio::task::JoinHandle<Result<Computed, JobError>>,
    true_at: Option<WriterStamp>,
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Ahead {
    /// Takes the snapshot of `reader` (a reader's transaction that has not read yet) now, when the caller holds
    /// the write lock and has written nothing yet, and starts computing `ids` from it.
    async fn start(
        mut snapshot: sqlx::Transaction<'static, sqlx::Sqlite>,
        ids: &[String],
        job: &ChunkJob,
    ) -> Result<Self, StoreError> {
        // A deferred transaction's snapshot is taken at its first read.
        sqlx::query("SELECT count(*) FROM sqlite_schema").fetch_one(&mut *snapshot).await?;
        let mut snapshot = Tx::Sqlite(snapshot);
        let (ids, job) = (ids.to_vec(), job.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let reference = load_reference(&mut snapshot).await?;
            let reference_time = started.elapsed();
            let mut computed = compute(&mut snapshot, &reference, &ids, job.at, &*job.plan, job.finish).await?;
            computed.done.outcome.load_time += reference_time;
            Ok(computed)
        });
        Ok(Self { task, true_at: None })
    }

    /// Waits for the rows computed ahead; with the stamp they are true at. A failure of the task is logged and
    /// only means the chunk computes its rows itself.
    async fn finish(mut self) -> Option<(Computed, WriterStamp)> {
        let computed = match (&mut self.task).await {
            Ok(Ok(computed)) => computed,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "computing an attendance chunk ahead failed; it is computed in its own turn");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "computing an attendance chunk ahead stopped; it is computed in its own turn");
                return None;
            }
        };
        Some((computed, self.true_at?))
    }
}

/// Runs `job` on every chunk of `ids` on SQLite, each chunk's successor computed ahead. Stops at the first error
/// (the chunks already committed stay) or when told to.
pub(super) async fn run_chunks(
    store: &Store,
    sqlite: &SqliteStore,
    ids: &[String],
    ctl: &Control,
    job: &ChunkJob,
) -> Result<Outcome, JobError> {
    let chunks: Vec<&[String]> = ids.chunks(ctl.chunk.max(1)).collect();
    let mut total = Outcome::default();
    let mut ahead: Option<Ahead> = None;
    let mut stale = false;
    for (n, chunk) in chunks.iter().enumerate() {
        ctl.between_chunks(n == 0).await?;
        let next = if stale { None } else { chunks.get(n + 1).copied() };
        let (outcome, next_ahead, found_stale) = match write_chunk(store, sqlite, chunk, ahead.take(), next, job).await
        {
            Ok(done) => done,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "attendance job hit a transient error; running the chunk again on its own");
                (with_retries(|| run_chunk(store, chunk, job)).await?, None, false)
            }
            Err(e) => return Err(e),
        };
        total += outcome;
        ctl.progress.advance(chunk.len() as u64);
        (ahead, stale) = (next_ahead, found_stale);
    }
    Ok(total)
}

/// One chunk's transaction: writes the rows computed ahead if they are still true (else computes them), and starts
/// computing `next` ahead before writing anything. Also says whether rows computed ahead were found stale.
async fn write_chunk(
    store: &Store,
    sqlite: &SqliteStore,
    chunk: &[String],
    ahead: Option<Ahead>,
    next: Option<&[String]>,
    job: &ChunkJob,
) -> Result<(Outcome, Option<Ahead>, bool), JobError> {
    // Waited for before the write lock is taken, so that ingest can write meanwhile (which makes these rows stale:
    // the stamps then differ and the chunk computes them itself).
    let ahead = match ahead {
        Some(ahead) => ahead.finish().await,
        None => None,
    };
    // The reader is taken before the write lock, so that no one waits on the lock while the pool finds one.
    let reader = match next {
        Some(_) => sqlite
            .reader
            .begin()
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "no reader to compute an attendance chunk ahead"))
            .ok(),
        None => None,
    };
    let mut tx = store.begin().await?;
    let stamp = stamp_of(&mut tx).await?;
    let (computed, stale) = match ahead {
        Some((computed, true_at)) if true_at == stamp => (Some(computed), false),
        Some(_) => {
            tracing::debug!("the database changed after an attendance chunk was computed ahead; computing it again");
            (None, true)
        }
        None => (None, false),
    };
    let mut next_ahead = match (next, reader) {
        (Some(ids), Some(reader)) => Ahead::start(reader, ids, job)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "could not compute an attendance chunk ahead"))
            .ok(),
        _ => None,
    };
    let computed_ahead = usize::from(computed.is_some());
    let outcome = fill_chunk(&mut tx, chunk, job, computed).await?;
    let left = stamp_of(&mut tx).await?;
    let started = Instant::now();
    tx.commit().await?;
    if let Some(next) = &mut next_ahead {
        next.true_at = Some(left);
    }
    Ok((Outcome { commit_time: started.elapsed(), computed_ahead, ..outcome }, next_ahead, stale))
}

async fn stamp_of(tx: &mut Tx) -> Result<WriterStamp, JobError> {
    match tx {
        Tx::Sqlite(t) => Ok(writer_stamp(t).await?),
        Tx::Postgres(_) => Err(JobError::Invalid("a chunk computed ahead on PostgreSQL".into())),
    }
}

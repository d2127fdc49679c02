//! The bulk jobs: reprocess a date range, apply or revert the sandwich rule, close the day (mark absentees). Each
//! works in transactions of [`CHUNK`] employees, holding their locks, and is idempotent: running it twice writes
//! the same rows.
//!
//! - reprocess / apply-sandwich: recompute `from..=to` (the engine applies the sandwich rule per the site's setting
//!   on every computation, so "apply" is a recomputation) and release the dirty rows of those days.
//! - revert-sandwich: recompute and restore every sandwiched day's original status. The rule is re-decided the next
//!   time a day is computed; to stop it for good, set the site's setting to `off` (which marks the days).
//! - close-day: for each site, the days whose check-out window closed since the job's last run (kept in
//!   `attendance_job_marks`; the first run looks back two days) are recomputed with the sandwich runs next to them.
//!   Days without a single punch get their A row this way: that is how absentees are marked.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::stream::{FuturesUnordered, StreamExt};

use super::{recompute, site_now, Computed, Finish, JobError, Outcome, Plan, Recomputed};
use crate::attendance::engine;
use crate::jobs::Progress;
use crate::store::attendance::dirty;
use crate::store::attendance::inputs::load_reference;
use crate::store::attendance::{employees_in, Scope};
use crate::store::{Store, Tx};

/// Employees per transaction in bulk jobs.
pub const CHUNK: usize = 500;

/// Transactions a bulk job runs at once on PostgreSQL (without a pause): one computes while the other waits for the
/// database. Their employees are disjoint, and each holds its employees' locks, so they never wait on each other.
/// SQLite has one writer: one at a time, the next chunk computed ahead on a reader ([`super::ahead`]).
pub const PARALLEL_CHUNKS: usize = 2;

/// How a bulk job runs: employees per transaction, the pause between two transactions (a throttle that leaves the
/// database to ingest while a long job runs), and the progress it reports (employees done of total) and whose stop
/// signal it obeys between transactions.
#[derive(Debug, Clone)]
pub struct Control {
    pub chunk: usize,
    pub pause: std::time::Duration,
    pub progress: Progress,
}

impl Default for Control {
    fn default() -> Self {
        Self { chunk: CHUNK, pause: std::time::Duration::ZERO, progress: Progress::new() }
    }
}

impl Control {
    /// Between two transactions: waits the pause (after the first), then fails with [`JobError::Stopped`] when the
    /// job was told to stop.
    pub(super) async fn between_chunks(&self, first: bool) -> Result<(), JobError> {
        if !first && !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
        if self.progress.should_stop() {
            return Err(JobError::Stopped);
        }
        Ok(())
    }
}

const CLOSE_DAY: &str = "close_day";

/// Whose days a bulk job covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    All,
    Site(String),
    Employee(String),
}

async fn ids_of(store: &Store, target: &Target) -> Result<Vec<String>, JobError> {
    let mut tx = store.begin().await?;
    let one;
    let scope = match target {
        Target::All => Scope::All,
        Target::Site(site) => Scope::Site(site),
        Target::Employee(id) => {
            one = [id.clone()];
            Scope::Employees(&one)
        }
    };
    let ids = employees_in(&mut tx, &scope).await?;
    tx.commit().await?;
    Ok(ids)
}

fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), JobError> {
    if to < from {
        return Err(JobError::Invalid(format!("date range {from} to {to} ends before it starts")));
    }
    if (to - from).num_days() >= i64::try_from(engine::MAX_RANGE_DAYS).unwrap_or(i64::MAX) {
        return Err(JobError::Invalid(format!(
            "date range {from} to {to} is longer than {} days; split it",
            engine::MAX_RANGE_DAYS
        )));
    }
    Ok(())
}

/// Recomputes `from..=to` for `target`, optionally transforming the rows before writing (`finish`).
///
/// # Errors
/// [`JobError::Invalid`] for a bad range; [`JobError::Store`] when the database fails (chunks already committed
/// stay; rerunning is harmless).
pub async fn reprocess(
    store: &Store,
    target: &Target,
    from: NaiveDate,
    to: NaiveDate,
    at: DateTime<Utc>,
    finish: Option<Finish>,
) -> Result<Outcome, JobError> {
    reprocess_with(store, target, from, to, at, finish, &Control::default()).await
}

/// [`reprocess`] with a [`Control`]: its chunk size, progress, and stop signal (then [`JobError::Stopped`]).
///
/// # Errors
/// As [`reprocess`].
pub async fn reprocess_with(
    store: &Store,
    target: &Target,
    from: NaiveDate,
    to: NaiveDate,
    at: DateTime<Utc>,
    finish: Option<Finish>,
    ctl: &Control,
) -> Result<Outcome, JobError> {
    check_range(from, to)?;
    let ids = ids_of(store, target).await?;
    ctl.progress.add_total(ids.len() as u64);
    let days: BTreeSet<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    let plan = Arc::new(move |_ctx: &engine::EmployeeContext<'_>, _now| days.clone());
    run_chunks(store, &ids, ctl, &ChunkJob { from, to, at, plan, finish }).await
}

/// What every chunk of a bulk job computes: for each of its employees, the days `plan` chooses (as of `at`), within
/// `from..=to` whose dirty rows are released; `finish` transforms the rows before they are written.
#[derive(Clone)]
pub(super) struct ChunkJob {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub at: DateTime<Utc>,
    pub plan: Arc<Plan<'static>>,
    pub finish: Option<Finish>,
}

/// Runs `job` on every chunk of `ids` ([`Control::chunk`] employees): without a pause, [`PARALLEL_CHUNKS`] at once
/// on PostgreSQL and one chunk computed ahead on SQLite ([`super::ahead`]); with one, one after the other. Stops at
/// the first error (transactions still running are rolled back; the chunks already committed stay) or when told
/// to. The outcome's times are summed over the chunks, so with chunks running at once they add up to more than the
/// job took.
async fn run_chunks(store: &Store, ids: &[String], ctl: &Control, job: &ChunkJob) -> Result<Outcome, JobError> {
    if let (Store::Sqlite(sqlite), true) = (store, ctl.pause.is_zero()) {
        return super::ahead::run_chunks(store, sqlite, ids, ctl, job).await;
    }
    let parallel = if matches!(store, Store::Postgres(_)) && ctl.pause.is_zero() { PARALLEL_CHUNKS } else { 1 };
    let mut chunks = ids.chunks(ctl.chunk.max(1)).enumerate();
    let mut running = FuturesUnordered::new();
    let mut total = Outcome::default();
    loop {
        while running.len() < parallel {
            let Some((n, chunk)) = chunks.next() else { break };
            ctl.between_chunks(n == 0).await?;
            let done = with_retries(move || run_chunk(store, chunk, job));
            running.push(async move { (chunk.len(), done.await) });
        }
        let Some((len, result)) = running.next().await else { break };
        total += result?;
        ctl.progress.advance(len as u64);
    }
    Ok(total)
}

/// Recomputes `from..=to` with the sandwich rule as each site's setting says.
///
/// # Errors
/// As [`reprocess`].
pub async fn apply_sandwich(
    store: &Store,
    target: &Target,
    from: NaiveDate,
    to: NaiveDate,
    at: DateTime<Utc>,
) -> Result<Outcome, JobError> {
    reprocess(store, target, from, to, at, None).await
}

/// Recomputes `from..=to` and restores the original status of every sandwiched day.
///
/// # Errors
/// As [`reprocess`].
pub async fn revert_sandwich(
    store: &Store,
    target: &Target,
    from: NaiveDate,
    to: NaiveDate,
    at: DateTime<Utc>,
) -> Result<Outcome, JobError> {
    reprocess(store, target, from, to, at, Some(engine::revert_sandwich)).await
}

/// Closes the days whose check-out window closed since the last run, at every site (or one), as of `at`.
///
/// # Errors
/// [`JobError::Store`].
pub async fn close_day(store: &Store, site: Option<&str>, at: DateTime<Utc>) -> Result<Outcome, JobError> {
    close_day_with(store, site, at, &Control::default()).await
}

/// [`close_day`] with a [`Control`].
///
/// # Errors
/// As [`close_day`], and [`JobError::Stopped`].
pub async fn close_day_with(
    store: &Store,
    site: Option<&str>,
    at: DateTime<Utc>,
    ctl: &Control,
) -> Result<Outcome, JobError> {
    let mut tx = store.begin().await?;
    let reference = load_reference(&mut tx).await?;
    tx.commit().await?;
    let mut sites: Vec<&String> = reference.sites.keys().filter(|s| site.is_none_or(|w| w == s.as_str())).collect();
    sites.sort();
    if let (Some(wanted), true) = (site, sites.is_empty()) {
        return Err(JobError::Invalid(format!("site {wanted} does not exist")));
    }
    let mut total = Outcome::default();
    for site_id in sites {
        let Some(info) = reference.sites.get(site_id) else { continue };
        let until = site_now(info, at);
        let mut tx = store.begin().await?;
        let after = dirty::job_mark(&mut tx, CLOSE_DAY, site_id).await?.unwrap_or(until - Duration::days(2));
        tx.commit().await?;
        if after >= until {
            continue;
        }
        let ids = ids_of(store, &Target::Site(site_id.clone())).await?;
        ctl.progress.add_total(ids.len() as u64);
        let plan = Arc::new(move |ctx: &engine::EmployeeContext<'_>, _now| {
            engine::affected_by_dates(ctx, engine::days_closing_between(ctx, after, until))
        });
        let (from, to) = (after.date() - Duration::days(2), until.date());
        total += run_chunks(store, &ids, ctl, &ChunkJob { from, to, at, plan, finish: None }).await?;
        let mut tx = store.begin().await?;
        dirty::set_job_mark(&mut tx, CLOSE_DAY, site_id, until).await?;
        tx.commit().await?;
    }
    Ok(total)
}

/// One transaction: lock the chunk's employees, read their dirty rows in `from..=to`, recompute, release.
pub(super) async fn run_chunk(store: &Store, chunk: &[String], job: &ChunkJob) -> Result<Outcome, JobError> {
    let mut tx = store.begin().await?;
    let outcome = fill_chunk(&mut tx, chunk, job, None).await?;
    let started = Instant::now();
    tx.commit().await?;
    Ok(Outcome { commit_time: started.elapsed(), ..outcome })
}

/// A chunk's work inside its transaction `tx`, up to the commit: lock its employees, read their dirty rows in
/// `from..=to`, recompute their days (or write `computed`, rows computed ahead from a snapshot that nothing but this
/// job's own chunks has written to since), release the dirty rows.
pub(super) async fn fill_chunk(
    tx: &mut Tx,
    chunk: &[String],
    job: &ChunkJob,
    computed: Option<Computed>,
) -> Result<Outcome, JobError> {
    let started = Instant::now();
    dirty::lock_employees(tx, chunk).await?;
    let sqlite = matches!(tx, Tx::Sqlite(_));
    // PostgreSQL: read (and lock) before the punches are loaded: a punch committed later marks its day again, so its
    // row is not released. SQLite: nothing else writes until this transaction ends (see `release_ranges_sqlite`).
    // (PostgreSQL takes them out of the queue at once: the delete holds their locks as `FOR UPDATE` would, and
    // those whose days were not written go back below.)
    let marked = if sqlite { Vec::new() } else { dirty::take_within(tx, chunk, job.from, job.to).await? };
    let mut queue_time = started.elapsed();
    let done = match computed {
        Some(computed) => computed.write(tx).await?,
        None => {
            let started = Instant::now();
            let reference = load_reference(tx).await?;
            let reference_time = started.elapsed();
            let mut done = recompute(tx, &reference, chunk, job.at, &*job.plan, job.finish).await?;
            done.outcome.load_time += reference_time;
            done
        }
    };
    let started = Instant::now();
    if sqlite {
        dirty::release_ranges_sqlite(tx, &released_ranges(&done, job.from, job.to)).await?;
    } else {
        let kept: Vec<_> = marked.into_iter().filter(|d| !done.covers(d)).collect();
        dirty::put_back(tx, &kept).await?;
    }
    queue_time += started.elapsed();
    Ok(Outcome { queue_time, ..done.outcome })
}

/// The (employee, first, last) day ranges within `from..=to` whose dirty rows [`Recomputed::covers`].
fn released_ranges(done: &Recomputed, from: NaiveDate, to: NaiveDate) -> Vec<(String, NaiveDate, NaiveDate)> {
    let mut out: Vec<(String, NaiveDate, NaiveDate)> = done.skipped.iter().map(|id| (id.clone(), from, to)).collect();
    for (id, ranges) in &done.written {
        for &(first, last) in ranges {
            let (first, last) = (first.max(from), last.min(to));
            if first <= last && !done.skipped.contains(id) {
                out.push((id.clone(), first, last));
            }
        }
    }
    out
}

pub(super) async fn with_retries<F, Fut>(mut attempt: F) -> Result<Outcome, JobError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Outcome, JobError>>,
{
    let mut tries = 0u64;
    loop {
        match attempt().await {
            Err(e) if e.is_transient() && tries < 5 => {
                tries += 1;
                tracing::warn!(error = %e, tries, "attendance job hit a transient error; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50 * tries)).await;
            }
            other => return other,
        }
    }
}

//! The `jobs` table: creating tracked jobs, claiming them (one replica per job), recording progress and the end,
//! cancelling, and reading them back in pages.
//!
//! A claim takes the oldest job that is pending, or running with a heartbeat older than the lease (its replica
//! died), and gives it a new `attempt`. Every later write of the runner (heartbeat, end) names its attempt and
//! replica, so a replica that lost its job (it stalled past the lease and another one claimed it) can neither move
//! the progress nor finish it: a job finishes once. PostgreSQL: the claim skips rows another transaction holds
//! (`FOR UPDATE SKIP LOCKED`), so two replicas never claim the same job.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{on_pool, on_reader, Store, StoreError};
use crate::jobs::{JobParams, JobProgress, JobRecord, JobStatus};

const COLUMNS: &str = "id, kind, params, site_id, status, requested_by, requested_at, started_at, finished_at, \
                       claimed_by, attempt, heartbeat_at, progress_done, progress_total, cancel_requested, result, \
                       error";

/// Which jobs to list.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// `None`: every job (root); otherwise the administrator whose granted sites bound the result (jobs without a
    /// site are then left out).
    pub scope: Option<String>,
    pub site: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub requested_by: Option<String>,
    /// Only jobs with a smaller id (the previous page's last).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEnd {
    Done(serde_json::Value),
    Failed(String),
    Cancelled,
}

macro_rules! job_from_row {
    ($row:expr) => {{
        let row = $row;
        let params: String = row.try_get("params")?;
        let result: Option<String> = row.try_get("result")?;
        let status: String = row.try_get("status")?;
        let id: i64 = row.try_get("id")?;
        JobRecord {
            id,
            kind: row.try_get("kind")?,
            status: JobStatus::from_name(&status)
                .ok_or_else(|| StoreError::Invalid(format!("job {id}: status {status:?}")))?,
            params: serde_json::from_str::<JobParams>(&params)
                .map_err(|e| StoreError::Invalid(format!("job {id}: params: {e}")))?,
            site_id: row.try_get("site_id")?,
            requested_by: row.try_get("requested_by")?,
            requested_at: row.try_get("requested_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            replica: row.try_get("claimed_by")?,
            attempt: i64::from(row.try_get::<i32, _>("attempt")?),
            heartbeat_at: row.try_get("heartbeat_at")?,
            progress: JobProgress { done: row.try_get("progress_done")?, total: row.try_get("progress_total")? },
            cancel_requested: row.try_get("cancel_requested")?,
            result: result
                .map(|r| serde_json::from_str(&r))
                .transpose()
                .map_err(|e| StoreError::Invalid(format!("job {id}: result: {e}")))?,
            error: row.try_get("error")?,
        }
    }};
}

impl Store {
    /// Adds a pending job.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn create_job(
        &self,
        kind: &str,
        params: &JobParams,
        site: Option<&str>,
        requested_by: &str,
    ) -> Result<JobRecord, StoreError> {
        let params = serde_json::to_string(params).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let sql = format!(
            "INSERT INTO jobs (kind, params, site_id, requested_by, requested_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING {COLUMNS}"
        );
        on_pool!(self, |pool| {
            let row = sqlx::query(&sql)
                .bind(kind)
                .bind(&params)
                .bind(site)
                .bind(requested_by)
                .bind(Utc::now())
                .fetch_one(pool)
                .await?;
            Ok(job_from_row!(&row))
        })
    }

    /// One job.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn job(&self, id: i64) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        on_reader!(self, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(job_from_row!(&row))),
                None => Ok(None),
            }
        })
    }

    /// A page of jobs, newest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs \
             WHERE ($1 IS NULL OR site_id IN (SELECT site_id FROM admin_sites WHERE username = $1)) \
             AND ($2 IS NULL OR site_id = $2) AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR status = $4) \
             AND ($5 IS NULL OR requested_by = $5) AND ($6 IS NULL OR id < $6) ORDER BY id DESC LIMIT $7"
        );
        on_reader!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(filter.scope.as_deref())
                .bind(filter.site.as_deref())
                .bind(filter.kind.as_deref())
                .bind(filter.status.as_deref())
                .bind(filter.requested_by.as_deref())
                .bind(filter.before_id)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|row| Ok(job_from_row!(row))).collect()
        })
    }

    /// Claims the oldest claimable job for `replica`: pending, or running with a heartbeat before `stale_before`
    /// (its replica died), with fewer than `max_attempts` attempts. Jobs whose replicas died `max_attempts` times
    /// are failed first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn claim_job(
        &self,
        replica: &str,
        stale_before: DateTime<Utc>,
        max_attempts: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        let now = Utc::now();
        let lock = match self {
            Self::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Self::Sqlite(_) => "",
        };
        let claim = format!(
            "UPDATE jobs SET status = 'running', claimed_by = $1, attempt = attempt + 1, heartbeat_at = $2, \
             started_at = COALESCE(started_at, $2) \
             WHERE id = (SELECT id FROM jobs WHERE (status = 'pending' OR (status = 'running' AND heartbeat_at < $3)) \
             AND attempt < $4 ORDER BY id LIMIT 1{lock}) RETURNING {COLUMNS}"
        );
        let abandon = "UPDATE jobs SET status = 'failed', finished_at = $1, \
                       error = 'abandoned: the replicas running it stopped answering ' || attempt || ' times' \
                       WHERE status = 'running' AND heartbeat_at < $2 AND attempt >= $3";
        let attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
        on_pool!(self, |pool| {
            sqlx::query(abandon).bind(now).bind(stale_before).bind(attempts).execute(pool).await?;
            match sqlx::query(&claim)
                .bind(replica)
                .bind(now)
                .bind(stale_before)
                .bind(attempts)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Ok(Some(job_from_row!(&row))),
                None => Ok(None),
            }
        })
    }

    /// Records that `replica` still runs attempt `attempt` of job `id`, with its progress. Returns whether a cancel
    /// was requested, or `None` when the job is no longer this attempt's (another replica claimed it, or it ended).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn job_heartbeat(
        &self,
        id: i64,
        attempt: i64,
        replica: &str,
        progress: JobProgress,
    ) -> Result<Option<bool>, StoreError> {
        let sql = "UPDATE jobs SET heartbeat_at = $4, progress_done = $5, progress_total = $6 \
                   WHERE id = $1 AND attempt = $2 AND claimed_by = $3 AND status = 'running' \
                   RETURNING cancel_requested";
        let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
        let row: Option<(bool,)> = on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(id)
            .bind(attempt)
            .bind(replica)
            .bind(Utc::now())
            .bind(progress.done)
            .bind(progress.total)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(cancel,)| cancel))
    }

    /// Records the end of attempt `attempt` of job `id` by `replica`. Returns false (and changes nothing) when the
    /// job is no longer this attempt's.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn finish_job(
        &self,
        id: i64,
        attempt: i64,
        replica: &str,
        end: &JobEnd,
        progress: JobProgress,
    ) -> Result<bool, StoreError> {
        let (status, result, error) = match end {
            JobEnd::Done(result) => (JobStatus::Done, Some(result.to_string()), None),
            JobEnd::Failed(error) => (JobStatus::Failed, None, Some(error.clone())),
            JobEnd::Cancelled => (JobStatus::Cancelled, None, None),
        };
        let sql = "UPDATE jobs SET status = $4, finished_at = $5, heartbeat_at = $5, result = $6, error = $7, \
                   progress_done = $8, progress_total = $9 \
                   WHERE id = $1 AND attempt = $2 AND claimed_by = $3 AND status = 'running'";
        let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
        let done = on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(attempt)
            .bind(replica)
            .bind(status.as_str())
            .bind(Utc::now())
            .bind(result)
            .bind(error)
            .bind(progress.done)
            .bind(progress.total)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Gives attempt `attempt` of job `id` back (its replica is stopping): pending again, for any replica.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn release_job(&self, id: i64, attempt: i64, replica: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE jobs SET status = 'pending', claimed_by = NULL, heartbeat_at = NULL \
                   WHERE id = $1 AND attempt = $2 AND claimed_by = $3 AND status = 'running'";
        let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
        let done = on_pool!(self, |pool| sqlx::query(sql)
            .bind(id)
            .bind(attempt)
            .bind(replica)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Cancels a job: a pending one at once, a running one at its next step (its runner reads the request with its
    /// heartbeat). Returns the job as it is now; a finished job is left as it was.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Database`].
    pub async fn cancel_job(&self, id: i64) -> Result<JobRecord, StoreError> {
        let now = Utc::now();
        on_pool!(self, |pool| {
            sqlx::query("UPDATE jobs SET cancel_requested = TRUE WHERE id = $1 AND status IN ('pending', 'running')")
                .bind(id)
                .execute(pool)
                .await?;
            sqlx::query("UPDATE jobs SET status = 'cancelled', finished_at = $2 WHERE id = $1 AND status = 'pending'")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?;
            Ok::<(), StoreError>(())
        })?;
        self.job(id).await?.ok_or_else(|| StoreError::NotFound { what: "job", id: id.to_string() })
    }
}

//! The dirty-day queue (`attendance_dirty`): claiming marked days, locking employees, releasing what was written.
//!
//! Invariant: a dirty row is deleted only in the transaction that wrote the days it marked, and only if its
//! `marks` is still the value read when it was claimed. A re-mark (a punch or a change committed meanwhile) bumps
//! `marks`, so the row stays and the day is computed again with the new input.
//!
//! PostgreSQL: claims take the rows `FOR UPDATE SKIP LOCKED`, so replicas never claim the same row, and the worker
//! then takes a transaction-scoped advisory lock per employee with `pg_try_advisory_xact_lock` (skipping employees
//! another transaction holds), so two transactions never compute or write the same employee at once. Bulk jobs take
//! the same locks blocking, in employee order. SQLite has one writer connection: transactions are serial anyway.

use chrono::NaiveDate;

use crate::store::{on_reader, Store, StoreError, Tx};

/// One claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyDay {
    pub employee_id: String,
    pub work_date: NaiveDate,
    pub marks: i64,
}

/// Claims up to `limit` dirty rows of employees attendance can be computed for (active, with a site and a shift),
/// in key order (PostgreSQL: skipping rows other transactions hold, and locking the ones returned until the
/// transaction ends). Marks of unknown PINs and unconfigured employees wait, never dropped: once the employee is
/// configured, their days are computed.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn claim(tx: &mut Tx, limit: i64) -> Result<Vec<DirtyDay>, StoreError> {
    let rows: Vec<(String, NaiveDate, i64)> = match tx {
        Tx::Postgres(t) => {
            sqlx::query_as(
                "SELECT d.employee_id, d.work_date, d.marks FROM attendance_dirty d \
                 JOIN employees e ON e.employee_id = d.employee_id \
                 WHERE e.active AND e.site_id IS NOT NULL AND e.shift_code IS NOT NULL \
                 ORDER BY d.employee_id, d.work_date LIMIT $1 FOR UPDATE OF d SKIP LOCKED",
            )
            .bind(limit)
            .fetch_all(&mut **t)
            .await?
        }
        Tx::Sqlite(t) => {
            sqlx::query_as(
                "SELECT d.employee_id, d.work_date, d.marks FROM attendance_dirty d \
                 JOIN employees e ON e.employee_id = d.employee_id \
                 WHERE e.active AND e.site_id IS NOT NULL AND e.shift_code IS NOT NULL \
                 ORDER BY d.employee_id, d.work_date LIMIT ?1",
            )
            .bind(limit)
            .fetch_all(&mut **t)
            .await?
        }
    };
    Ok(rows.into_iter().map(|(employee_id, work_date, marks)| DirtyDay { employee_id, work_date, marks }).collect())
}

/// The dirty rows of `ids` within `from..=to` (for a bulk job, which releases them after writing those days).
/// PostgreSQL: locked until the transaction ends, like a claim, so a batch being ingested for those days either
/// committed before this read or waits and marks the day again after the release.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn dirty_within(
    tx: &mut Tx,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DirtyDay>, StoreError> {
    let rows: Vec<(String, NaiveDate, i64)> =
        match tx {
            Tx::Postgres(t) => {
                sqlx::query_as(
                    "SELECT employee_id, work_date, marks FROM attendance_dirty \
                 WHERE employee_id = ANY($1) AND work_date >= $2 AND work_date <= $3 \
                  ORDER BY employee_id, work_date FOR UPDATE",
                )
                .bind(ids)
                .bind(from)
                .bind(to)
                .fetch_all(&mut **t)
                .await?
            }
            Tx::Sqlite(t) => sqlx::query_as(
                "SELECT d.employee_id, d.work_date, d.marks FROM json_each(?1) AS e CROSS JOIN attendance_dirty AS d \
                 WHERE d.employee_id = e.value AND d.work_date >= ?2 AND d.work_date <= ?3",
            )
            .bind(serde_json::to_string(ids).map_err(|e| StoreError::Invalid(e.to_string()))?)
            .bind(from)
            .bind(to)
            .fetch_all(&mut **t)
            .await?,
        };
    Ok(rows.into_iter().map(|(employee_id, work_date, marks)| DirtyDay { employee_id, work_date, marks }).collect())
}

/// PostgreSQL: deletes the dirty rows of `ids` within `from..=to` and returns them (for a bulk job, which writes
/// those days and then [`put_back`]s the rows whose days it did not write). The delete holds the rows' locks until
/// the transaction ends, as [`dirty_within`]'s `FOR UPDATE` does: a batch being ingested for those days either
/// committed before (its punches are then loaded after this) or waits and marks the day afresh after the commit.
/// One pass over the rows instead of a locking read and a delete.
///
/// # Errors
/// [`StoreError::Database`]; [`StoreError::Invalid`] on SQLite, where it must not be used.
pub async fn take_within(
    tx: &mut Tx,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<DirtyDay>, StoreError> {
    let Tx::Postgres(t) = tx else {
        return Err(StoreError::Invalid("take_within on SQLite".into()));
    };
    let rows: Vec<(String, NaiveDate, i64)> = sqlx::query_as(
        "DELETE FROM attendance_dirty WHERE employee_id = ANY($1) AND work_date >= $2 AND work_date <= $3 \
         RETURNING employee_id, work_date, marks",
    )
    .bind(ids)
    .bind(from)
    .bind(to)
    .fetch_all(&mut **t)
    .await?;
    Ok(rows.into_iter().map(|(employee_id, work_date, marks)| DirtyDay { employee_id, work_date, marks }).collect())
}

/// PostgreSQL: puts rows [`take_within`] took back into the queue, unchanged (a row marked again meanwhile, which
/// waited for this transaction, stays as it is).
///
/// # Errors
/// [`StoreError::Database`].
pub async fn put_back(tx: &mut Tx, days: &[DirtyDay]) -> Result<(), StoreError> {
    let (Tx::Postgres(t), false) = (tx, days.is_empty()) else {
        return Ok(());
    };
    let ids: Vec<&str> = days.iter().map(|d| d.employee_id.as_str()).collect();
    let dates: Vec<NaiveDate> = days.iter().map(|d| d.work_date).collect();
    let marks: Vec<i64> = days.iter().map(|d| d.marks).collect();
    sqlx::query(
        "INSERT INTO attendance_dirty (employee_id, work_date, marks) \
         SELECT * FROM UNNEST($1::text[], $2::date[], $3::int8[]) ORDER BY 1, 2 \
         ON CONFLICT (employee_id, work_date) DO NOTHING",
    )
    .bind(&ids)
    .bind(&dates)
    .bind(&marks)
    .execute(&mut **t)
    .await?;
    Ok(())
}

/// Takes, for the rest of the transaction, the locks of those of `ids` no other transaction holds (the same locks
/// as [`lock_employees`], without waiting, in one statement) and returns their ids. All of them on SQLite (one
/// writer).
///
/// # Errors
/// [`StoreError::Database`].
pub async fn try_lock_employees(tx: &mut Tx, ids: &[String]) -> Result<Vec<String>, StoreError> {
    match tx {
        Tx::Postgres(t) => {
            let rows: Vec<(String,)> = sqlx::query_as(
                "SELECT e FROM UNNEST($1::text[]) AS u(e) WHERE pg_try_advisory_xact_lock(hashtextextended(e, 7001))",
            )
            .bind(ids)
            .fetch_all(&mut **t)
            .await?;
            Ok(rows.into_iter().map(|(id,)| id).collect())
        }
        Tx::Sqlite(_) => Ok(ids.to_vec()),
    }
}

/// Deletes the rows in `days` whose `marks` did not change since they were read. Returns the rows deleted.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn release(tx: &mut Tx, days: &[DirtyDay]) -> Result<Vec<DirtyDay>, StoreError> {
    if days.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, NaiveDate, i64)> = match tx {
        Tx::Postgres(t) => {
            let ids: Vec<&str> = days.iter().map(|d| d.employee_id.as_str()).collect();
            let dates: Vec<NaiveDate> = days.iter().map(|d| d.work_date).collect();
            let marks: Vec<i64> = days.iter().map(|d| d.marks).collect();
            sqlx::query_as(
                "DELETE FROM attendance_dirty d USING UNNEST($1::text[], $2::date[], $3::int8[]) AS r(e, w, m) \
                 WHERE d.employee_id = r.e AND d.work_date = r.w AND d.marks = r.m \
                 RETURNING d.employee_id, d.work_date, d.marks",
            )
            .bind(&ids)
            .bind(&dates)
            .bind(&marks)
            .fetch_all(&mut **t)
            .await?
        }
        Tx::Sqlite(t) => {
            // One statement: the JSON list drives index lookups on the primary key.
            let list: Vec<(&str, NaiveDate, i64)> =
                days.iter().map(|d| (d.employee_id.as_str(), d.work_date, d.marks)).collect();
            let json = serde_json::to_string(&list).map_err(|e| StoreError::Invalid(e.to_string()))?;
            sqlx::query_as(
                "DELETE FROM attendance_dirty WHERE rowid IN (SELECT d.rowid FROM json_each(?1) AS e \
                 CROSS JOIN attendance_dirty AS d ON d.employee_id = json_extract(e.value, '$[0]') \
                 AND d.work_date = json_extract(e.value, '$[1]') AND d.marks = json_extract(e.value, '$[2]')) \
                 RETURNING employee_id, work_date, marks",
            )
            .bind(json)
            .fetch_all(&mut **t)
            .await?
        }
    };
    Ok(rows.into_iter().map(|(employee_id, work_date, marks)| DirtyDay { employee_id, work_date, marks }).collect())
}

/// SQLite: deletes every dirty row of the given (employee, first day, last day) ranges. Used by the bulk jobs in
/// place of [`dirty_within`] + [`release`] on SQLite: no other write commits between the transaction's first read
/// (before its inputs are loaded) and its commit (this process has one writer connection, and in WAL mode a write
/// from a snapshot that another process's commit made stale fails with `SQLITE_BUSY_SNAPSHOT`, a transient error
/// the job retries), so no row can be marked or re-marked in between, and deleting the rows of the written days is
/// exactly deleting the rows read before loading whose `marks` did not change. (A chunk computed ahead loaded its
/// inputs from a reader's snapshot instead: it writes them only when the writer's stamp shows that nothing but the
/// chunk before, whose employees are others, committed since that snapshot; see `attendance::jobs::ahead`.)
/// (PostgreSQL keeps the
/// read-and-compare, whose row locks order the job against concurrent ingest.) Returns how many rows went.
///
/// # Errors
/// [`StoreError::Database`]; [`StoreError::Invalid`] on PostgreSQL, where it must not be used.
pub async fn release_ranges_sqlite(tx: &mut Tx, ranges: &[(String, NaiveDate, NaiveDate)]) -> Result<u64, StoreError> {
    let Tx::Sqlite(t) = tx else {
        return Err(StoreError::Invalid("release_ranges_sqlite on PostgreSQL".into()));
    };
    if ranges.is_empty() {
        return Ok(0);
    }
    let json = serde_json::to_string(ranges).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let done = sqlx::query(
        "DELETE FROM attendance_dirty WHERE rowid IN (SELECT d.rowid FROM json_each(?1) AS r \
         CROSS JOIN attendance_dirty AS d ON d.employee_id = r.value ->> 0 \
         AND d.work_date >= r.value ->> 1 AND d.work_date <= r.value ->> 2)",
    )
    .bind(json)
    .execute(&mut **t)
    .await?;
    Ok(done.rows_affected())
}

impl Store {
    /// How many employee-days are waiting for recomputation.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn dirty_days(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) =
            on_reader!(self, |pool| sqlx::query_as("SELECT count(*) FROM attendance_dirty").fetch_one(pool).await)?;
        Ok(n)
    }
}

/// Takes the locks of `ids` (sorted, so two bulk jobs never wait on each other in a cycle) for the rest of the
/// transaction, waiting for transactions that hold them. No-op on SQLite.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn lock_employees(tx: &mut Tx, ids: &[String]) -> Result<(), StoreError> {
    if let Tx::Postgres(t) = tx {
        let mut sorted = ids.to_vec();
        sorted.sort();
        sqlx::query(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(e, 7001))) FROM UNNEST($1::text[]) WITH ORDINALITY \
             AS u(e, n)",
        )
        .bind(&sorted)
        .execute(&mut **t)
        .await?;
    }
    Ok(())
}

/// Where the scheduled `job` got to at `site` (site-local time), if it ever ran.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn job_mark(tx: &mut Tx, job: &str, site: &str) -> Result<Option<chrono::NaiveDateTime>, StoreError> {
    let row: Option<(chrono::NaiveDateTime,)> = crate::store::on_tx!(tx, |conn| sqlx::query_as(
        "SELECT done_until FROM attendance_job_marks WHERE job = $1 AND site_id = $2"
    )
    .bind(job)
    .bind(site)
    .fetch_optional(&mut *conn)
    .await?);
    Ok(row.map(|(t,)| t))
}

/// Records that `job` got to `until` at `site`.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn set_job_mark(tx: &mut Tx, job: &str, site: &str, until: chrono::NaiveDateTime) -> Result<(), StoreError> {
    crate::store::on_tx!(tx, |conn| sqlx::query(
        "INSERT INTO attendance_job_marks (job, site_id, done_until, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (job, site_id) DO UPDATE SET done_until = excluded.done_until, updated_at = excluded.updated_at"
    )
    .bind(job)
    .bind(site)
    .bind(until)
    .bind(chrono::Utc::now())
    .execute(&mut *conn)
    .await?
    .rows_affected());
    Ok(())
}

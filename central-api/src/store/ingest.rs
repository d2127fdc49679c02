//! The batch insert: set-based, all or nothing per batch, deduplicated by the unique (device, local time, PIN) that
//! the punch key hashes.
//!
//! - PostgreSQL: one transaction and a single statement per batch. `UNNEST` turns column arrays into rows, already
//!   in the unique index's order ([`super::rows`] sorts them; the statement inserts in array order, sorting nothing),
//!   `INSERT ... ON CONFLICT DO NOTHING RETURNING` stores the new ones, and a second data-modifying CTE marks their
//!   attendance days dirty: the distinct (PIN, local date, afternoon or not) of the new rows first, then every day
//!   such a punch may belong to ([`crate::attendance::engine::days_a_punch_may_belong_to`], here in SQL).
//!   One round trip per batch whatever its size. The dirty rows are upserted with `DO UPDATE ... WHERE false`:
//!   nothing is written for a day already marked, but the row stays locked until the batch commits, so an attendance
//!   worker claiming days with `SKIP LOCKED` never takes a day whose new punches it cannot see yet, and one that
//!   claimed it first makes the batch wait and then re-mark the day.
//! - SQLite: one prepared single-row `INSERT ... ON CONFLICT DO NOTHING` stepped per row at C speed
//!   ([`super::ingest_sqlite`]); the days of the rows that were new are marked once per transaction. Batches that
//!   arrive together share a transaction ([`super::group_commit`]; if it fails, each is stored again alone), and a
//!   day that writer marked and nothing consumed since is not marked again. SQLite has one writer, so the worker that
//!   consumes dirty rows never runs beside an uncommitted batch.
//!
//! A punch already in `all_logs` (from an earlier delivery, another path, or earlier in the same batch) is counted as
//! a duplicate. Either the whole batch commits or nothing of it does.
//!
//! Before the insert, on both backends, [`super::device_guard`] sorts the punches in the same transaction: a punch
//! whose device is registered at another site than the batch's goes to the quarantine ([`super::quarantine`]) and
//! is counted as `quarantined`, never in `all_logs`; a device registered nowhere is registered at the batch's site.

use std::time::Duration;

use chrono::Utc;

use super::device_guard::{self, ForeignDevice};
use super::quarantine;
use super::rows::{BatchRows, PunchRow};
use super::{Store, StoreError};

/// What an insert did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inserted {
    pub new: u32,
    pub duplicates: u32,
    /// Punches naming another site's device, kept in the quarantine.
    pub quarantined: u32,
    /// The other sites' devices the batch named.
    pub foreign: Vec<ForeignDevice>,
}

const TRANSIENT_RETRIES: u32 = 5;

const PG_INSERT: &str = r"
WITH input AS (
    SELECT * FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::timestamp[], $5::timestamptz[], $6::int2[],
                         $7::int2[], $8::int8[], $9::text[], $10::text[], $11::int8[], $17::int8[], $18::int8[])
        AS t(punch_key, device_serial, pin, local_time, utc_time, state, verify, work_code, source, direction,
             agent_seq, raw_state, raw_verify)
), inserted AS (
    INSERT INTO all_logs (punch_key, site_id, device_serial, pin, local_time, utc_time, state, verify, work_code,
                          source, direction, agent_id, agent_seq, batch_first_seq, batch_last_seq, received_at,
                          raw_state, raw_verify)
    SELECT punch_key, $12, device_serial, pin, local_time, utc_time, state, verify, work_code, source, direction,
           $13, agent_seq, $14, $15, $16, raw_state, raw_verify
    FROM input
    ON CONFLICT (device_serial, local_time, pin) DO NOTHING
    RETURNING pin, local_date, local_time::time >= '12:00' AS afternoon
), dirty AS (
    INSERT INTO attendance_dirty (employee_id, work_date)
    SELECT DISTINCT pin, day FROM (SELECT DISTINCT pin, local_date, afternoon FROM inserted) AS n,
        LATERAL (VALUES (local_date - 1), (local_date), (CASE WHEN afternoon THEN local_date + 1 END)) AS d(day)
    WHERE day IS NOT NULL
    ORDER BY 1, 2
    ON CONFLICT (employee_id, work_date) DO UPDATE SET marked_at = excluded.marked_at WHERE false
)
SELECT count(*) FROM inserted";

impl Store {
    /// Stores a batch in one transaction and counts new and duplicate punches. Retries a few times on deadlock,
    /// serialization failure or a busy database; nothing is committed unless everything is.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the transaction fails (then no row of the batch is stored).
    pub async fn insert_batch(&self, batch: BatchRows) -> Result<Inserted, StoreError> {
        let mut attempt = 0;
        loop {
            let result = match self {
                // The group-commit task owns the batch while it waits; a retry needs its own copy.
                Store::Sqlite(s) if attempt < TRANSIENT_RETRIES => s.group_commit.insert(batch.clone()).await,
                Store::Sqlite(s) => return s.group_commit.insert(batch).await,
                Store::Postgres(pool) => insert_postgres(pool, &batch).await,
            };
            match result {
                Err(e) if e.is_transient() && attempt < TRANSIENT_RETRIES => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "batch insert hit a transient error; retrying");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }
}

/// The counts of a batch: `stored` punches offered to `all_logs` of which `new` were inserted, and `routed`'s
/// held ones.
pub(super) fn counts(stored: usize, new: u64, routed: device_guard::Routed) -> Result<Inserted, StoreError> {
    let total = u32::try_from(stored).map_err(|_| StoreError::Invalid("batch too large".into()))?;
    let new = u32::try_from(new).map_err(|_| StoreError::Invalid("insert count out of range".into()))?;
    let quarantined = u32::try_from(routed.held.len()).map_err(|_| StoreError::Invalid("batch too large".into()))?;
    Ok(Inserted { new, duplicates: total.saturating_sub(new), quarantined, foreign: routed.foreign })
}

async fn insert_postgres(pool: &sqlx::PgPool, batch: &BatchRows) -> Result<Inserted, StoreError> {
    let mut tx = pool.begin().await?;
    let mut routed = device_guard::route_postgres(&mut tx, batch).await?;
    let stored = std::mem::take(&mut routed.stored);
    let new = insert_postgres_rows(&mut tx, batch, &stored).await?;
    quarantine::insert_held_postgres(&mut tx, batch, &routed.held).await?;
    tx.commit().await?;
    counts(stored.len(), new, routed)
}

/// `PunchRow`s as one array per `all_logs` column, the shape PostgreSQL's `UNNEST` inserts take.
pub(super) struct PunchColumns<'a> {
    pub keys: Vec<Vec<u8>>,
    pub devices: Vec<&'a str>,
    pub pins: Vec<&'a str>,
    pub locals: Vec<chrono::NaiveDateTime>,
    pub utcs: Vec<chrono::DateTime<Utc>>,
    pub states: Vec<i16>,
    pub verifies: Vec<i16>,
    pub work_codes: Vec<i64>,
    pub sources: Vec<&'static str>,
    pub directions: Vec<&'static str>,
    pub seqs: Vec<i64>,
    pub raw_states: Vec<Option<i64>>,
    pub raw_verifies: Vec<Option<i64>>,
}

impl<'a> PunchColumns<'a> {
    /// The columns of `rows`, in order.
    pub(super) fn of(rows: impl ExactSizeIterator<Item = &'a PunchRow>) -> Self {
        let n = rows.len();
        let mut c = Self {
            keys: Vec::with_capacity(n),
            devices: Vec::with_capacity(n),
            pins: Vec::with_capacity(n),
            locals: Vec::with_capacity(n),
            utcs: Vec::with_capacity(n),
            states: Vec::with_capacity(n),
            verifies: Vec::with_capacity(n),
            work_codes: Vec::with_capacity(n),
            sources: Vec::with_capacity(n),
            directions: Vec::with_capacity(n),
            seqs: Vec::with_capacity(n),
            raw_states: Vec::with_capacity(n),
            raw_verifies: Vec::with_capacity(n),
        };
        for row in rows {
            c.keys.push(row.key.as_bytes().to_vec());
            c.devices.push(row.device.as_str());
            c.pins.push(row.pin.as_str());
            c.locals.push(row.local_time);
            c.utcs.push(row.utc_time);
            c.states.push(row.state);
            c.verifies.push(row.verify);
            c.work_codes.push(row.work_code);
            c.sources.push(row.source);
            c.directions.push(row.direction);
            c.seqs.push(row.agent_seq);
            c.raw_states.push(row.raw_state);
            c.raw_verifies.push(row.raw_verify);
        }
        c
    }
}

/// The one-statement insert of `rows` (of `batch`) into `all_logs`; returns how many were new.
async fn insert_postgres_rows(
    tx: &mut sqlx::PgConnection,
    batch: &BatchRows,
    rows: &[PunchRow],
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let c = PunchColumns::of(rows.iter());
    let (new,): (i64,) = sqlx::query_as(PG_INSERT)
        .bind(c.keys)
        .bind(c.devices)
        .bind(c.pins)
        .bind(c.locals)
        .bind(c.utcs)
        .bind(c.states)
        .bind(c.verifies)
        .bind(c.work_codes)
        .bind(c.sources)
        .bind(c.directions)
        .bind(c.seqs)
        .bind(&batch.site)
        .bind(&batch.agent)
        .bind(batch.first_seq)
        .bind(batch.last_seq)
        .bind(Utc::now())
        .bind(c.raw_states)
        .bind(c.raw_verifies)
        .fetch_one(&mut *tx)
        .await?;
    Ok(u64::try_from(new).unwrap_or_default())
}

/// Inserts one batch's rows inside `tx` (the caller owns the transaction and marks the days): those of devices
/// registered at the batch's site (or nowhere) into `all_logs`, the others into the quarantine. Returns the counts and
/// the (PIN, local time) of the punches that were new (distinct by PIN, date and half of the day).
pub(super) async fn insert_sqlite_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    batch: &BatchRows,
) -> Result<(Inserted, Vec<(String, chrono::NaiveDateTime)>), StoreError> {
    let mut routed = device_guard::route_sqlite(tx, batch).await?;
    let stored = std::mem::take(&mut routed.stored);
    let mut received_at = String::with_capacity(32);
    super::sqlite_text::push_utc(&mut received_at, Utc::now());
    let (new, days) = super::ingest_sqlite::insert_rows(tx, batch, &stored, &received_at).await?;
    quarantine::insert_held_sqlite(tx, batch, &routed.held).await?;
    Ok((counts(stored.len(), new, routed)?, days))
}

//! The punch quarantine (issue 12): punches an agent sent naming a device registered at another site. They are
//! written here in the batch's transaction instead of AllLogs ([`insert_held_sqlite`], [`insert_held_postgres`]),
//! listed to the administrators of both sites ([`Store::list_quarantine`]), and leave only by an administrator's
//! decision: [`release`] copies them into AllLogs under the device's site at that time (marking their days for
//! recomputation, a punch already there counting as a duplicate), [`discard`] keeps them marked discarded. Rows are
//! never deleted; the decision, who took it and when stay on the row, and the handler audits it.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, SqliteConnection};

use super::attendance::{mark_days, Scope};
use super::device_guard::Held;
use super::rows::BatchRows;
use super::{on_reader, Store, StoreError, Tx};
use crate::attendance::engine::days_a_punch_may_belong_to;

/// A quarantined punch as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QuarantinedPunch {
    pub id: i64,
    /// The site of the agent that sent it.
    pub site_id: String,
    pub agent_id: String,
    /// The site its device was registered at when it arrived.
    pub device_site_id: String,
    pub device_serial: String,
    pub pin: String,
    /// The device's local wall-clock time (no offset).
    #[schema(value_type = crate::http::api::local_time::LocalDateTime)]
    pub local_time: NaiveDateTime,
    pub utc_time: DateTime<Utc>,
    pub state: i16,
    pub source: String,
    pub direction: String,
    /// Why it was held.
    pub reason: String,
    pub received_at: DateTime<Utc>,
    /// `held`, `released` or `discarded`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    String,
    NaiveDateTime,
    DateTime<Utc>,
    i16,
    String,
    String,
    String,
    DateTime<Utc>,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
);

fn punch(row: Row) -> QuarantinedPunch {
    let (id, site_id, agent_id, device_site_id, device_serial, pin, local_time, utc_time, state, source, direction) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10);
    let (reason, received_at, status, decided_by, decided_at) = (row.11, row.12, row.13, row.14, row.15);
    QuarantinedPunch {
        id,
        site_id,
        agent_id,
        device_site_id,
        device_serial,
        pin,
        local_time,
        utc_time,
        state,
        source,
        direction,
        reason,
        received_at,
        status,
        decided_by,
        decided_at,
    }
}

const COLUMNS: &str = "q.id, q.site_id, q.agent_id, q.device_site_id, q.device_serial, q.pin, q.local_time, \
     q.utc_time, q.state, q.source, q.direction, q.reason, q.received_at, q.status, q.decided_by, q.decided_at";

/// Keeps rows either of whose sites is granted to the administrator bound at `$1` (every row when NULL).
const SCOPED: &str = "($1 IS NULL OR q.site_id IN (SELECT site_id FROM admin_sites WHERE username = $1) \
     OR q.device_site_id IN (SELECT site_id FROM admin_sites WHERE username = $1))";

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct QuarantineFilter<'a> {
    /// Rows with this site on either side.
    pub site: Option<&'a str>,
    pub device: Option<&'a str>,
    /// `held`, `released` or `discarded`.
    pub status: Option<&'a str>,
    /// Keyset: rows with a larger id.
    pub after: i64,
    pub limit: i64,
}

impl Store {
    /// Quarantined punches in scope (root: `None`; otherwise rows where the sender's or the device's site is
    /// granted to the administrator), by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_quarantine(
        &self,
        scope: Option<&str>,
        filter: &QuarantineFilter<'_>,
    ) -> Result<Vec<QuarantinedPunch>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM punch_quarantine q WHERE {SCOPED} \
             AND ($2 IS NULL OR q.site_id = $2 OR q.device_site_id = $2) AND ($3 IS NULL OR q.device_serial = $3) \
             AND ($4 IS NULL OR q.status = $4) AND q.id > $5 ORDER BY q.id LIMIT $6"
        );
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(scope)
            .bind(filter.site)
            .bind(filter.device)
            .bind(filter.status)
            .bind(filter.after)
            .bind(filter.limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(punch).collect())
    }

    /// The quarantined punches with these ids (any scope; the caller checks), by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn quarantined(&self, ids: &[i64]) -> Result<Vec<QuarantinedPunch>, StoreError> {
        let json = serde_json::to_string(ids).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let rows: Vec<Row> = match self {
            Store::Sqlite(s) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM punch_quarantine q WHERE q.id IN (SELECT value FROM json_each($1)) \
                     ORDER BY q.id"
                );
                sqlx::query_as(&sql).bind(json).fetch_all(&s.reader).await?
            }
            Store::Postgres(pool) => {
                let sql = format!("SELECT {COLUMNS} FROM punch_quarantine q WHERE q.id = ANY($1) ORDER BY q.id");
                sqlx::query_as(&sql).bind(ids).fetch_all(pool).await?
            }
        };
        Ok(rows.into_iter().map(punch).collect())
    }
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct Released {
    /// Punches added to AllLogs.
    pub new: u64,
    /// Punches AllLogs already held (the same device, time and PIN).
    pub duplicates: u64,
}

const PG_RELEASE: &str = "INSERT INTO all_logs (punch_key, site_id, device_serial, pin, local_time, utc_time, \
     state, verify, work_code, source, direction, agent_id, agent_seq, batch_first_seq, batch_last_seq, received_at) \
     SELECT q.punch_key, d.site_id, q.device_serial, q.pin, q.local_time, q.utc_time, q.state, q.verify, \
            q.work_code, q.source, q.direction, q.agent_id, q.agent_seq, q.batch_first_seq, q.batch_last_seq, $2 \
     FROM punch_quarantine q JOIN devices d ON d.serial = q.device_serial \
     WHERE q.id = ANY($1) AND q.status = 'held' ORDER BY q.device_serial, q.local_time, q.pin \
     ON CONFLICT (device_serial, local_time, pin) DO NOTHING RETURNING pin, local_time";

const SQLITE_RELEASE: &str = "INSERT INTO all_logs (punch_key, site_id, device_serial, pin, local_time, utc_time, \
     state, verify, work_code, source, direction, agent_id, agent_seq, batch_first_seq, batch_last_seq, received_at) \
     SELECT q.punch_key, d.site_id, q.device_serial, q.pin, q.local_time, q.utc_time, q.state, q.verify, \
            q.work_code, q.source, q.direction, q.agent_id, q.agent_seq, q.batch_first_seq, q.batch_last_seq, $2 \
     FROM punch_quarantine q JOIN devices d ON d.serial = q.device_serial \
     WHERE q.id IN (SELECT value FROM json_each($1)) AND q.status = 'held' \
     ORDER BY q.device_serial, q.local_time, q.pin \
     ON CONFLICT (device_serial, local_time, pin) DO NOTHING RETURNING pin, local_time";

/// Sets the decision on the held rows among `ids`; returns how many changed.
async fn decide(tx: &mut Tx, ids: &[i64], status: &str, who: &str, at: DateTime<Utc>) -> Result<u64, StoreError> {
    let done = match tx {
        Tx::Postgres(t) => sqlx::query(
            "UPDATE punch_quarantine SET status = $2, decided_by = $3, decided_at = $4 \
             WHERE id = ANY($1) AND status = 'held'",
        )
        .bind(ids)
        .bind(status)
        .bind(who)
        .bind(at)
        .execute(&mut **t)
        .await?
        .rows_affected(),
        Tx::Sqlite(t) => sqlx::query(
            "UPDATE punch_quarantine SET status = $2, decided_by = $3, decided_at = $4 \
             WHERE id IN (SELECT value FROM json_each($1)) AND status = 'held'",
        )
        .bind(serde_json::to_string(ids).map_err(|e| StoreError::Invalid(e.to_string()))?)
        .bind(status)
        .bind(who)
        .bind(at)
        .execute(&mut **t)
        .await?
        .rows_affected(),
    };
    Ok(done)
}

/// Releases the held punches among `ids` into AllLogs, under their device's current site, in `tx`: new punches
/// mark the days they may belong to for recomputation; the rows are marked released by `who`.
///
/// # Errors
/// [`StoreError::Database`]; [`StoreError::Invalid`] when a row's time cannot be read back.
pub async fn release(tx: &mut Tx, ids: &[i64], who: &str) -> Result<Released, StoreError> {
    let now = Utc::now();
    let inserted: Vec<(String, NaiveDateTime)> = match tx {
        Tx::Postgres(t) => sqlx::query_as(PG_RELEASE).bind(ids).bind(now).fetch_all(&mut **t).await?,
        Tx::Sqlite(t) => {
            let json = serde_json::to_string(ids).map_err(|e| StoreError::Invalid(e.to_string()))?;
            sqlx::query_as(SQLITE_RELEASE).bind(json).bind(now).fetch_all(&mut **t).await?
        }
    };
    let decided = decide(tx, ids, "released", who, now).await?;
    let mut days: Vec<(String, (NaiveDate, NaiveDate))> =
        inserted.iter().map(|(pin, t)| (pin.clone(), days_a_punch_may_belong_to(*t))).collect();
    days.sort();
    days.dedup();
    for (pin, (first, last)) in &days {
        let pins = [pin.clone()];
        mark_days(tx, &Scope::Employees(&pins), *first, *last).await?;
    }
    let new = inserted.len() as u64;
    Ok(Released { new, duplicates: decided.saturating_sub(new) })
}

/// Marks the held punches among `ids` discarded by `who`, in `tx`; returns how many.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn discard(tx: &mut Tx, ids: &[i64], who: &str) -> Result<u64, StoreError> {
    decide(tx, ids, "discarded", who, Utc::now()).await
}

const INSERT_HELD: &str = "INSERT INTO punch_quarantine (site_id, agent_id, device_site_id, punch_key, \
     device_serial, pin, local_time, utc_time, state, verify, work_code, source, direction, agent_seq, \
     batch_first_seq, batch_last_seq, reason, received_at) ";

/// Stores `held` punches of `batch` on SQLite (one statement per punch: held punches are rare).
///
/// # Errors
/// [`StoreError::Database`].
pub(super) async fn insert_held_sqlite(
    conn: &mut SqliteConnection,
    batch: &BatchRows,
    held: &[Held],
) -> Result<(), StoreError> {
    let sql = format!(
        "{INSERT_HELD} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (site_id, device_serial, local_time, pin) DO NOTHING"
    );
    let now = Utc::now();
    for h in held {
        let r = &h.row;
        sqlx::query(&sql)
            .bind(&batch.site)
            .bind(&batch.agent)
            .bind(&h.device_site)
            .bind(r.key.as_bytes().as_slice())
            .bind(&r.device)
            .bind(&r.pin)
            .bind(r.local_time)
            .bind(r.utc_time)
            .bind(r.state)
            .bind(r.verify)
            .bind(r.work_code)
            .bind(r.source)
            .bind(r.direction)
            .bind(r.agent_seq)
            .bind(batch.first_seq)
            .bind(batch.last_seq)
            .bind(&h.reason)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Stores `held` punches of `batch` on PostgreSQL in one statement.
///
/// # Errors
/// [`StoreError::Database`].
pub(super) async fn insert_held_postgres(
    conn: &mut PgConnection,
    batch: &BatchRows,
    held: &[Held],
) -> Result<(), StoreError> {
    if held.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "{INSERT_HELD} SELECT $1, $2, t.device_site, t.punch_key, t.device_serial, t.pin, t.local_time, t.utc_time, \
         t.state, t.verify, t.work_code, t.source, t.direction, t.agent_seq, $3, $4, t.reason, $5 \
         FROM UNNEST($6::text[], $7::bytea[], $8::text[], $9::text[], $10::timestamp[], $11::timestamptz[], \
                     $12::int2[], $13::int2[], $14::int8[], $15::text[], $16::text[], $17::int8[], $18::text[]) \
         AS t(device_site, punch_key, device_serial, pin, local_time, utc_time, state, verify, work_code, source, \
              direction, agent_seq, reason) \
         ON CONFLICT (site_id, device_serial, local_time, pin) DO NOTHING"
    );
    let rows = held.iter().map(|h| &h.row);
    sqlx::query(&sql)
        .bind(&batch.site)
        .bind(&batch.agent)
        .bind(batch.first_seq)
        .bind(batch.last_seq)
        .bind(Utc::now())
        .bind(held.iter().map(|h| h.device_site.as_str()).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.key.as_bytes().to_vec()).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.device.as_str()).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.pin.as_str()).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.local_time).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.utc_time).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.state).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.verify).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.work_code).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.source).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.direction).collect::<Vec<_>>())
        .bind(rows.clone().map(|r| r.agent_seq).collect::<Vec<_>>())
        .bind(held.iter().map(|h| h.reason.as_str()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Registers device `serial` at `site` and confirms it (moving a device between sites). Its stored punches keep
    /// the site they were stored under.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown serial; [`StoreError::Database`] (a foreign-key violation for an
    /// unknown site).
    pub async fn move_device(&self, serial: &str, site: &str) -> Result<(), StoreError> {
        let done = super::on_pool!(self, |pool| sqlx::query(
            "UPDATE devices SET site_id = $2, confirmed = $3 WHERE serial = $1"
        )
        .bind(serial)
        .bind(site)
        .bind(true)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound { what: "device", id: serial.to_owned() });
        }
        Ok(())
    }
}

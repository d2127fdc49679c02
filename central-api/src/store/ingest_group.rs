//! PostgreSQL: several batches stored in one transaction (the group commit of [`crate::ingest::pg_group`]). Each
//! batch keeps its own answer: its punches are routed by [`super::device_guard`] as when it is stored alone (in order,
//! so a device two batches name for the first time is registered at the first one's site), and its new punches are
//! counted per batch. The rows of the whole group are sorted here, in the unique index's order, written with one
//! binary `COPY` (PostgreSQL's own bulk path: a page of rows per heap write, no per-row speculative insertion), and
//! the attendance days of the new rows marked once, in key order, by one more statement (issue 19).
//!
//! Which rows are new: a group is first copied whole, under a savepoint, the unique constraint checking every row (a
//! stream of first deliveries then costs no read at all). If a row is already stored the `COPY` fails on the
//! constraint, the group goes back to the savepoint, the rows already stored are found with one read and only the
//! others are copied. After such a group the next ones read first, until a read finds nothing stored
//! ([`RecentDuplicates`]): a replay of old batches pays one failed `COPY`, not one per group.
//!
//! A punch that two batches of the group both carry is stored once and counted new for the first of them. If the
//! group's transaction fails (a punch another transaction stored between the read and the `COPY`), the caller stores
//! each batch alone with `INSERT ... ON CONFLICT DO NOTHING` (then one batch's failure is never reported for
//! another, and nothing is stored twice).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::{NaiveDate, NaiveDateTime, Utc};

use crate::attendance::engine::{days_a_punch_may_belong_to, half_day_start};

use super::device_guard;
use super::ingest::{counts, Inserted};
use super::pg_copy::CopyRows;
use super::quarantine;
use super::rows::{BatchRows, PunchRow};
use super::writer_stats::{GroupFigures, WriterStats};
use super::StoreError;

/// The rows of the group already in `all_logs`, by their 1-based position in the arrays (a read: the unique index
/// probed once per row).
const PG_EXISTING: &str = "SELECT k.n FROM UNNEST($1::text[], $2::timestamp[], $3::text[]) WITH ORDINALITY AS \
     k(device_serial, local_time, pin, n) WHERE EXISTS (SELECT 1 FROM all_logs a \
     WHERE a.device_serial = k.device_serial AND a.local_time = k.local_time AND a.pin = k.pin)";

/// The columns the binary `COPY` writes, in its order.
const PG_COPY_TARGET: &str = "all_logs (punch_key, site_id, device_serial, pin, local_time, utc_time, state, verify, \
     work_code, source, direction, agent_id, agent_seq, batch_first_seq, batch_last_seq, received_at, raw_state, \
     raw_verify)";

/// Marks the attendance days of the new rows, given in key order. A day already marked is not written, but its row
/// stays locked until the group commits (see [`super::ingest`]).
const PG_MARK_DAYS: &str = "INSERT INTO attendance_dirty (employee_id, work_date) \
     SELECT * FROM UNNEST($1::text[], $2::date[]) ORDER BY 1, 2 \
     ON CONFLICT (employee_id, work_date) DO UPDATE SET marked_at = excluded.marked_at WHERE false";

/// Whether the groups a group commit's writers stored lately met punches already stored; shared by those writers.
/// While it is set, a group's stored rows are read before the `COPY` instead of after a failed one.
#[derive(Debug, Default)]
pub struct RecentDuplicates(AtomicBool);

impl RecentDuplicates {
    /// Whether the last group stored met punches already stored (then the next group reads before it copies).
    pub fn seen(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, seen: bool) {
        self.0.store(seen, Ordering::Relaxed);
    }
}

/// Stores `batches` in one transaction. The outer error is the transaction's (nothing of the group is stored); the
/// inner results are per batch, in order.
///
/// # Errors
/// [`StoreError::Database`] when the transaction fails.
pub async fn insert_group_postgres(
    pool: &sqlx::PgPool,
    batches: &[&BatchRows],
    recent: &RecentDuplicates,
    stats: &WriterStats,
) -> Result<Vec<Result<Inserted, StoreError>>, StoreError> {
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let mut sites = HashMap::new();
    let mut routed = Vec::with_capacity(batches.len());
    for batch in batches {
        routed.push(device_guard::route_postgres_known(&mut tx, batch, &mut sites).await?);
    }
    let mut stored: Vec<(usize, &PunchRow)> =
        routed.iter().enumerate().flat_map(|(b, r)| r.stored.iter().map(move |row| (b, row))).collect();
    // The unique index's order (each batch is sorted already; a stable sort keeps the earlier batch first among equal
    // keys, so it is the one that stores the punch): the COPY writes them in this order.
    stored.sort_by(|(_, a), (_, b)| (&a.device, a.local_time, &a.pin).cmp(&(&b.device, b.local_time, &b.pin)));
    let (new_by_batch, marks) = insert_rows(&mut tx, batches, &stored, recent).await?;
    for (batch, r) in batches.iter().zip(&routed) {
        quarantine::insert_held_postgres(&mut tx, batch, &r.held).await?;
    }
    let committing = Instant::now();
    tx.commit().await?;
    stats.committed(GroupFigures {
        batches: batches.len(),
        busy: started.elapsed(),
        commit: committing.elapsed(),
        marks_written: marks,
        marks_skipped: 0,
    });
    let mut results = Vec::with_capacity(batches.len());
    let mut claimed: HashMap<(&str, i64, i64), bool> = HashMap::new();
    for (batch, mut r) in batches.iter().zip(routed) {
        let key = (batch.agent.as_str(), batch.first_seq, batch.last_seq);
        // Two identical batches in one group: the rows count as new for the first only.
        let new = if claimed.insert(key, true).is_none() { new_by_batch.get(&key).copied().unwrap_or(0) } else { 0 };
        let offered = std::mem::take(&mut r.stored).len();
        results.push(counts(offered, new, r));
    }
    Ok(results)
}

/// Inserts the new ones of `rows` (batch index, row; in the unique index's order) and marks their days; returns the
/// new rows per (agent, first seq, last seq), and how many dirty rows were marked.
///
/// Unless `recent` says duplicates were met lately, every row is copied at once under a savepoint; a row already
/// stored makes that `COPY` fail on the unique constraint, and then (or straight away when `recent` is set) the rows
/// already stored are found first ([`PG_EXISTING`]) and only the others copied. Of a punch the group carries twice,
/// the first (the earlier batch's) is kept. A punch that another transaction stores between the read and the second
/// `COPY` makes it fail: then the group's transaction fails and the caller stores its batches one by one with
/// `INSERT ... ON CONFLICT DO NOTHING`, so nothing is stored twice or counted wrongly.
async fn insert_rows<'b>(
    tx: &mut sqlx::PgConnection,
    batches: &[&'b BatchRows],
    rows: &[(usize, &PunchRow)],
    recent: &RecentDuplicates,
) -> Result<(HashMap<(&'b str, i64, i64), u64>, usize), StoreError> {
    if rows.is_empty() {
        return Ok((HashMap::new(), 0));
    }
    if !recent.seen() {
        sqlx::query("SAVEPOINT copy_whole_group").execute(&mut *tx).await?;
        match copy_new(tx, batches, rows, &vec![false; rows.len()]).await {
            Ok(out) => return Ok(out),
            Err(e) if e.unique_violation() => {
                sqlx::query("ROLLBACK TO SAVEPOINT copy_whole_group").execute(&mut *tx).await?;
                recent.set(true);
            }
            Err(e) => return Err(e),
        }
    }
    let stored = already_stored(tx, rows).await?;
    recent.set(stored.iter().any(|s| *s));
    copy_new(tx, batches, rows, &stored).await
}

/// Which of `rows` are in `all_logs` already (one read: the unique index probed once per row).
async fn already_stored(tx: &mut sqlx::PgConnection, rows: &[(usize, &PunchRow)]) -> Result<Vec<bool>, StoreError> {
    let devices: Vec<&str> = rows.iter().map(|(_, row)| row.device.as_str()).collect();
    let locals: Vec<chrono::NaiveDateTime> = rows.iter().map(|(_, row)| row.local_time).collect();
    let pins: Vec<&str> = rows.iter().map(|(_, row)| row.pin.as_str()).collect();
    let existing: Vec<i64> =
        sqlx::query_scalar(PG_EXISTING).bind(devices).bind(locals).bind(pins).fetch_all(&mut *tx).await?;
    let mut stored = vec![false; rows.len()];
    for n in existing {
        if let Some(flag) = usize::try_from(n).ok().and_then(|n| n.checked_sub(1)).and_then(|i| stored.get_mut(i)) {
            *flag = true;
        }
    }
    Ok(stored)
}

/// Copies the rows of `rows` not flagged in `stored` (nor repeating the row before) and marks their days; returns the
/// copied rows per (agent, first seq, last seq), and how many dirty rows were marked.
async fn copy_new<'b>(
    tx: &mut sqlx::PgConnection,
    batches: &[&'b BatchRows],
    rows: &[(usize, &PunchRow)],
    stored: &[bool],
) -> Result<(HashMap<(&'b str, i64, i64), u64>, usize), StoreError> {
    let mut out = HashMap::new();
    let received_at = Utc::now();
    let mut copy = CopyRows::with_capacity(rows.len() * 220);
    let mut days: Vec<(&str, NaiveDateTime)> = Vec::new();
    let mut previous: Option<&PunchRow> = None;
    let mut copied = 0u64;
    for (&(b, row), &already) in rows.iter().zip(stored) {
        let repeat =
            previous.is_some_and(|p| (&p.device, p.local_time, &p.pin) == (&row.device, row.local_time, &row.pin));
        previous = Some(row);
        if already || repeat {
            continue;
        }
        let batch = batches[b];
        copy_row(&mut copy, batch, row, received_at);
        copied += 1;
        *out.entry((batch.agent.as_str(), batch.first_seq, batch.last_seq)).or_insert(0) += 1;
        days.push((row.pin.as_str(), half_day_start(row.local_time)));
    }
    if copied == 0 {
        return Ok((out, 0));
    }
    let written = copy.send(&mut *tx, PG_COPY_TARGET).await?;
    if written != copied {
        return Err(StoreError::Invalid(format!("COPY stored {written} rows of {copied}")));
    }
    let marks = mark_days(tx, days).await?;
    Ok((out, marks))
}

/// One `all_logs` row in [`PG_COPY_TARGET`]'s order.
fn copy_row(copy: &mut CopyRows, batch: &BatchRows, row: &PunchRow, received_at: chrono::DateTime<Utc>) {
    copy.row(18);
    copy.bytea(row.key.as_bytes());
    copy.text(&batch.site);
    copy.text(&row.device);
    copy.text(&row.pin);
    copy.timestamp(row.local_time);
    copy.timestamptz(row.utc_time);
    copy.int2(row.state);
    copy.int2(row.verify);
    copy.int8(row.work_code);
    copy.text(row.source);
    copy.text(row.direction);
    copy.text(&batch.agent);
    copy.int8(row.agent_seq);
    copy.int8(batch.first_seq);
    copy.int8(batch.last_seq);
    copy.timestamptz(received_at);
    copy.opt_int8(row.raw_state);
    copy.opt_int8(row.raw_verify);
}

/// Marks every day the new rows' punches may belong to (`days`: PIN and [`half_day_start`] of each; see
/// [`days_a_punch_may_belong_to`]), distinct and in key order; returns how many.
async fn mark_days(tx: &mut sqlx::PgConnection, mut days: Vec<(&str, NaiveDateTime)>) -> Result<usize, StoreError> {
    days.sort_unstable();
    days.dedup();
    let mut marks: Vec<(&str, NaiveDate)> = Vec::with_capacity(days.len() * 3);
    for (pin, t) in days {
        let (first, last) = days_a_punch_may_belong_to(t);
        marks.extend(first.iter_days().take_while(|d| *d <= last).map(|d| (pin, d)));
    }
    marks.sort_unstable();
    marks.dedup();
    let count = marks.len();
    let (pins, dates): (Vec<&str>, Vec<NaiveDate>) = marks.into_iter().unzip();
    sqlx::query(PG_MARK_DAYS).bind(pins).bind(dates).execute(&mut *tx).await?;
    Ok(count)
}

//! SQLite: a batch's rows into `all_logs`, and the attendance days of the new ones into `attendance_dirty`, at the
//! speed of SQLite's own C interface.
//!
//! Through sqlx every statement is a message to the connection's worker thread and every bound value a boxed
//! argument; at ingest rates that costs more than SQLite's insert itself. Here the writer connection's handle is
//! wrapped by rusqlite ([`super::sqlite_raw::with_handle`]), which prepares one single-row statement and steps it
//! per row, inside the transaction sqlx opened.
//!
//! A row's step tells whether it was new (`ON CONFLICT DO NOTHING` changes nothing for a duplicate), so the days to
//! mark come from the rows actually inserted, without reading `all_logs` back: each new punch marks the days it may
//! belong to ([`days_a_punch_may_belong_to`]: the day before its local date to that date, and the next date for an
//! afternoon or evening punch), once per transaction, in key order.

use std::collections::BTreeSet;

use chrono::{NaiveDate, NaiveDateTime};
use sqlx::SqliteConnection;

use crate::attendance::engine::{days_a_punch_may_belong_to, half_day_start};

use super::rows::{BatchRows, PunchRow};
use super::sqlite_raw::with_handle;
use super::sqlite_text::{push_date, push_local, push_utc};
use super::StoreError;

/// (PIN, local time) of the punches a transaction inserted, distinct by PIN, local date and half of the day (which
/// is all that decides the days they may belong to).
pub(super) type NewDays = BTreeSet<(String, NaiveDateTime)>;

const INSERT_ROW: &str = "INSERT INTO all_logs (punch_key, site_id, device_serial, pin, local_time, utc_time, state, \
     verify, work_code, source, direction, agent_id, agent_seq, batch_first_seq, batch_last_seq, received_at, raw_state, \
     raw_verify) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
     ON CONFLICT (device_serial, local_time, pin) DO NOTHING";

const MARK_DAY: &str = "INSERT INTO attendance_dirty (employee_id, work_date) VALUES (?1, ?2) \
     ON CONFLICT (employee_id, work_date) DO NOTHING";

/// Inserts `rows` (of `batch`) into `all_logs` with `received_at`; returns how many were new and their (PIN, local
/// time), distinct by PIN, local date and half of the day.
pub(super) async fn insert_rows(
    conn: &mut SqliteConnection,
    batch: &BatchRows,
    rows: &[PunchRow],
    received_at: &str,
) -> Result<(u64, Vec<(String, NaiveDateTime)>), StoreError> {
    if rows.is_empty() {
        return Ok((0, Vec::new()));
    }
    with_handle(conn, |db| {
        let mut insert = db.prepare_cached(INSERT_ROW)?;
        let (mut local, mut utc) = (String::with_capacity(20), String::with_capacity(26));
        let mut new_days: Vec<(&str, NaiveDateTime)> = Vec::new();
        for row in rows {
            local.clear();
            push_local(&mut local, row.local_time);
            utc.clear();
            push_utc(&mut utc, row.utc_time);
            let changed = insert.execute(rusqlite::params![
                row.key.as_bytes().as_slice(),
                batch.site,
                row.device,
                row.pin,
                local,
                utc,
                row.state,
                row.verify,
                row.work_code,
                row.source,
                row.direction,
                batch.agent,
                row.agent_seq,
                batch.first_seq,
                batch.last_seq,
                received_at,
                row.raw_state,
                row.raw_verify,
            ])?;
            if changed > 0 {
                new_days.push((row.pin.as_str(), half_day_start(row.local_time)));
            }
        }
        let new = u64::try_from(new_days.len()).unwrap_or(u64::MAX);
        new_days.sort_unstable();
        new_days.dedup();
        Ok((new, new_days.into_iter().map(|(pin, day)| (pin.to_owned(), day)).collect()))
    })
    .await
}

/// The dirty rows `days` call for: every day each entry's punch may belong to, distinct, in key order.
pub(super) fn day_marks(days: &NewDays) -> BTreeSet<(&str, NaiveDate)> {
    let mut marks = BTreeSet::new();
    for (pin, t) in days {
        let (first, last) = days_a_punch_may_belong_to(*t);
        for day in first.iter_days().take_while(|d| *d <= last) {
            marks.insert((pin.as_str(), day));
        }
    }
    marks
}

/// Inserts the dirty rows `marks` (in the order given); a day already marked stays as it is.
pub(super) async fn mark_days(conn: &mut SqliteConnection, marks: &[(&str, NaiveDate)]) -> Result<(), StoreError> {
    if marks.is_empty() {
        return Ok(());
    }
    with_handle(conn, |db| {
        let mut mark = db.prepare_cached(MARK_DAY)?;
        let mut date = String::with_capacity(10);
        for (pin, day) in marks {
            date.clear();
            push_date(&mut date, *day);
            mark.execute(rusqlite::params![pin, date])?;
        }
        Ok(())
    })
    .await
}

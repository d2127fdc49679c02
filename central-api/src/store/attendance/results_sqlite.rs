//! SQLite: replacing the computed rows of a set of (employee, date range)s, through rusqlite on the writer
//! connection's raw handle ([`crate::store::sqlite_raw::with_handle`]).
//!
//! A month of 10,000 employees is 310,000 attendance rows of 27 columns: through sqlx, boxing every bound value and
//! sending each statement to the connection's worker cost more than SQLite's insert itself (a multi-row insert
//! from one JSON array was slower still). Here one prepared single-row insert per table is stepped per row, with the
//! values bound in place. Dates and times are written in exactly the text sqlx writes for them
//! ([`crate::store::sqlite_text`]), so rows written here read back through sqlx alike.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sqlx::SqliteConnection;

use super::results::{man_days_columns, AttendanceRecord, DayRange, ATTENDANCE_COLUMNS};
use crate::attendance::engine::{ManDaysRow, MAX_MAN_DAYS_SLOTS};
use crate::store::sqlite_raw::with_handle;
use crate::store::sqlite_text::{push_date, push_local, push_utc};
use crate::store::StoreError;

fn insert_sql(table: &str, columns: &[String]) -> String {
    let marks: Vec<String> = (1..=columns.len()).map(|n| format!("?{n}")).collect();
    format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), marks.join(", "))
}

/// The text of one date or time, in a buffer reused across values (SQLite copies a bound text).
#[derive(Default)]
struct Text(String);

impl Text {
    fn date(&mut self, date: NaiveDate) -> &str {
        self.0.clear();
        push_date(&mut self.0, date);
        &self.0
    }

    fn local(&mut self, time: NaiveDateTime) -> &str {
        self.0.clear();
        push_local(&mut self.0, time);
        &self.0
    }
}

/// Deletes every row of `ranges` from `attendance` and `man_days`, then inserts `records` and `man_days`, in the
/// connection's open transaction.
///
/// # Errors
/// [`StoreError::Sqlite`], [`StoreError::Database`] when the handle cannot be taken.
pub(super) async fn replace_days(
    conn: &mut SqliteConnection,
    ranges: &[DayRange],
    records: &[AttendanceRecord],
    man_days: &[ManDaysRow],
    computed_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    // One statement per table: the JSON list of ranges drives primary-key range scans.
    let list: Vec<(&str, NaiveDate, NaiveDate)> =
        ranges.iter().map(|r| (r.employee_id.as_str(), r.from, r.to)).collect();
    let json = serde_json::to_string(&list).map_err(|e| StoreError::Invalid(e.to_string()))?;
    with_handle(conn, |db| {
        for table in ["attendance", "man_days"] {
            db.prepare_cached(&format!(
                "DELETE FROM {table} WHERE (employee_id, work_date) IN (SELECT a.employee_id, a.work_date \
                 FROM json_each(?1) AS r CROSS JOIN {table} AS a ON a.employee_id = r.value ->> 0 \
                 AND a.work_date >= r.value ->> 1 AND a.work_date <= r.value ->> 2)"
            ))?
            .execute([&json])?;
        }
        let mut computed = String::with_capacity(32);
        push_utc(&mut computed, computed_at);
        insert_attendance(db, records, &computed)?;
        insert_man_days(db, man_days)
    })
    .await
}

fn insert_attendance(
    db: &rusqlite::Connection,
    records: &[AttendanceRecord],
    computed: &str,
) -> Result<(), StoreError> {
    let columns: Vec<String> = ATTENDANCE_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
    let mut insert = db.prepare_cached(&insert_sql("attendance", &columns))?;
    let mut text = Text::default();
    for r in records {
        insert.raw_bind_parameter(1, r.employee_id.as_str())?;
        insert.raw_bind_parameter(2, text.date(r.work_date))?;
        insert.raw_bind_parameter(3, r.shift_code.as_str())?;
        insert.raw_bind_parameter(4, r.day_kind.as_str())?;
        insert.raw_bind_parameter(5, r.status.as_deref())?;
        insert.raw_bind_parameter(6, r.provisional)?;
        insert.raw_bind_parameter(7, text.local(r.closes_at))?;
        insert.raw_bind_parameter(8, r.in_time.map(|t| text.local(t)))?;
        insert.raw_bind_parameter(9, r.out_time.map(|t| text.local(t)))?;
        for (index, value) in
            [r.total_work_secs, r.lunch_deducted_secs, r.overtime_secs, r.late_by_secs, r.early_exit_by_secs]
                .into_iter()
                .enumerate()
        {
            insert.raw_bind_parameter(10 + index, value)?;
        }
        insert.raw_bind_parameter(15, r.flags.as_str())?;
        for (index, value) in [
            r.punches_counted,
            r.punches_collapsed,
            r.punches_unmatched,
            r.punches_outside_window,
            r.punches_unapproved,
        ]
        .into_iter()
        .enumerate()
        {
            insert.raw_bind_parameter(16 + index, value)?;
        }
        insert.raw_bind_parameter(21, r.leave_kind.as_deref())?;
        insert.raw_bind_parameter(22, r.leave_paid)?;
        insert.raw_bind_parameter(23, r.sandwich_original.as_deref())?;
        insert.raw_bind_parameter(24, r.sandwich_before.map(|d| text.date(d)))?;
        insert.raw_bind_parameter(25, r.sandwich_after.map(|d| text.date(d)))?;
        insert.raw_bind_parameter(26, r.explanation.as_str())?;
        insert.raw_bind_parameter(27, computed)?;
        insert.raw_execute()?;
    }
    Ok(())
}

fn insert_man_days(db: &rusqlite::Connection, rows: &[ManDaysRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = db.prepare_cached(&insert_sql("man_days", &man_days_columns()))?;
    let mut text = Text::default();
    for row in rows {
        insert.raw_bind_parameter(1, row.employee_id.as_str())?;
        insert.raw_bind_parameter(2, text.date(row.date))?;
        insert.raw_bind_parameter(3, i64::try_from(row.slots.len()).unwrap_or(i64::MAX))?;
        for n in 0..MAX_MAN_DAYS_SLOTS {
            let slot = row.slots.get(n);
            let index = 4 + 3 * n;
            insert.raw_bind_parameter(index, slot.map(|s| text.local(s.in_time)))?;
            insert.raw_bind_parameter(index + 1, slot.map(|s| text.local(s.out_time)))?;
            insert.raw_bind_parameter(index + 2, slot.map_or(0, |s| s.worked.num_seconds()))?;
        }
        insert.raw_bind_parameter(4 + 3 * MAX_MAN_DAYS_SLOTS, row.total.num_seconds())?;
        insert.raw_execute()?;
    }
    Ok(())
}

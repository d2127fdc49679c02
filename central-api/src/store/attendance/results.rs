//! The computed rows: `attendance` (one per employee-day) and `man_days` (ManDays shifts only).
//!
//! [`write_days`] replaces every row of the given (employee, date range)s by the engine's rows, so a day that no
//! longer exists (outside a changed employment) disappears. It is set-based: a binary `COPY` on PostgreSQL
//! ([`crate::store::pg_copy`]); on SQLite one prepared single-row insert stepped per row through SQLite's C interface
//! ([`super::results_sqlite`]).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use crate::attendance::engine::{AttendanceDay, DayKind, ManDaysRow, MAX_MAN_DAYS_SLOTS};
use crate::store::pg_copy::CopyRows;
use crate::store::{StoreError, Tx};

/// An attendance row as stored (everything but the time it was computed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttendanceRecord {
    pub employee_id: String,
    pub work_date: NaiveDate,
    pub shift_code: String,
    /// `working`, `week_off` or `holiday`.
    pub day_kind: String,
    /// P, HD, A, WO, PH, WOP, PHP, L; `None` while provisional and pending.
    pub status: Option<String>,
    pub provisional: bool,
    pub closes_at: NaiveDateTime,
    pub in_time: Option<NaiveDateTime>,
    pub out_time: Option<NaiveDateTime>,
    pub total_work_secs: i64,
    pub lunch_deducted_secs: i64,
    pub overtime_secs: i64,
    pub late_by_secs: i64,
    pub early_exit_by_secs: i64,
    /// Comma-separated flag names.
    pub flags: String,
    pub punches_counted: i64,
    pub punches_collapsed: i64,
    pub punches_unmatched: i64,
    pub punches_outside_window: i64,
    pub punches_unapproved: i64,
    pub leave_kind: Option<String>,
    pub leave_paid: Option<bool>,
    /// The status before the sandwich rule made the day A.
    pub sandwich_original: Option<String>,
    pub sandwich_before: Option<NaiveDate>,
    pub sandwich_after: Option<NaiveDate>,
    pub explanation: String,
}

impl AttendanceRecord {
    /// The stored form of an engine row.
    pub fn from_day(day: &AttendanceDay) -> Self {
        Self {
            employee_id: day.employee_id.as_str().to_owned(),
            work_date: day.date,
            shift_code: day.shift.clone(),
            day_kind: match day.kind {
                DayKind::Working => "working",
                DayKind::WeekOff { .. } => "week_off",
                DayKind::Holiday { .. } => "holiday",
            }
            .to_owned(),
            status: day.status.map(|s| s.code().to_owned()),
            provisional: day.provisional,
            closes_at: day.closes_at,
            in_time: day.in_time,
            out_time: day.out_time,
            total_work_secs: day.total_work.num_seconds(),
            lunch_deducted_secs: day.lunch_deducted.num_seconds(),
            overtime_secs: day.overtime.num_seconds(),
            late_by_secs: day.late_by.num_seconds(),
            early_exit_by_secs: day.early_exit_by.num_seconds(),
            flags: day.flags.names().join(","),
            punches_counted: i64::from(day.punches.counted),
            punches_collapsed: i64::from(day.punches.collapsed),
            punches_unmatched: i64::from(day.punches.unmatched),
            punches_outside_window: i64::from(day.punches.outside_window),
            punches_unapproved: i64::from(day.punches.unapproved_manual),
            leave_kind: day.leave.as_ref().map(|l| l.kind.clone()),
            leave_paid: day.leave.as_ref().map(|l| l.paid),
            sandwich_original: day.sandwich.map(|s| s.original.code().to_owned()),
            sandwich_before: day.sandwich.map(|s| s.absent_before),
            sandwich_after: day.sandwich.map(|s| s.absent_after),
            explanation: day.explain(),
        }
    }
}

pub(super) const ATTENDANCE_COLUMNS: [&str; 27] = [
    "employee_id",
    "work_date",
    "shift_code",
    "day_kind",
    "status",
    "provisional",
    "closes_at",
    "in_time",
    "out_time",
    "total_work_secs",
    "lunch_deducted_secs",
    "overtime_secs",
    "late_by_secs",
    "early_exit_by_secs",
    "flags",
    "punches_counted",
    "punches_collapsed",
    "punches_unmatched",
    "punches_outside_window",
    "punches_unapproved",
    "leave_kind",
    "leave_paid",
    "sandwich_original",
    "sandwich_before",
    "sandwich_after",
    "explanation",
    "computed_at",
];

/// One employee's days `from..=to`, replaced as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRange {
    pub employee_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

pub(crate) fn man_days_columns() -> Vec<String> {
    let mut cols = vec!["employee_id".to_owned(), "work_date".to_owned(), "slot_count".to_owned()];
    for n in 1..=MAX_MAN_DAYS_SLOTS {
        cols.extend([format!("in_{n}"), format!("out_{n}"), format!("work_{n}_secs")]);
    }
    cols.push("total_secs".to_owned());
    cols
}

/// Replaces the rows of every range in `ranges` by `days` (which must lie inside them).
///
/// # Errors
/// [`StoreError::Database`].
pub async fn write_days(tx: &mut Tx, ranges: &[DayRange], days: &[AttendanceDay]) -> Result<(), StoreError> {
    let computed_at = Utc::now();
    let records: Vec<AttendanceRecord> = days.iter().map(AttendanceRecord::from_day).collect();
    let man_days: Vec<ManDaysRow> = days.iter().filter_map(ManDaysRow::from_day).collect();
    match tx {
        Tx::Postgres(t) => {
            let conn: &mut sqlx::PgConnection = t;
            delete_pg(conn, ranges).await?;
            insert_attendance_pg(conn, &records, computed_at).await?;
            insert_man_days_pg(conn, &man_days).await?;
        }
        Tx::Sqlite(t) => {
            super::results_sqlite::replace_days(t, ranges, &records, &man_days, computed_at).await?;
        }
    }
    Ok(())
}

async fn delete_pg(conn: &mut sqlx::PgConnection, ranges: &[DayRange]) -> Result<(), StoreError> {
    let ids: Vec<&str> = ranges.iter().map(|r| r.employee_id.as_str()).collect();
    let froms: Vec<NaiveDate> = ranges.iter().map(|r| r.from).collect();
    let tos: Vec<NaiveDate> = ranges.iter().map(|r| r.to).collect();
    for table in ["attendance", "man_days"] {
        sqlx::query(&format!(
            "DELETE FROM {table} a USING UNNEST($1::text[], $2::date[], $3::date[]) AS r(e, f, t) \
             WHERE a.employee_id = r.e AND a.work_date >= r.f AND a.work_date <= r.t"
        ))
        .bind(&ids)
        .bind(&froms)
        .bind(&tos)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Inserts `records` with a binary `COPY` ([`CopyRows`]): the server stores its own binary values without an
/// `INSERT`'s per-row executor (an `UNNEST` of 27 arrays was most of the month's write time).
async fn insert_attendance_pg(
    conn: &mut sqlx::PgConnection,
    records: &[AttendanceRecord],
    computed_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut rows = CopyRows::with_capacity(records.len() * 400);
    for r in records {
        rows.row(27);
        rows.text(&r.employee_id);
        rows.date(r.work_date);
        rows.text(&r.shift_code);
        rows.text(&r.day_kind);
        rows.opt_text(r.status.as_deref());
        rows.bool(r.provisional);
        rows.timestamp(r.closes_at);
        rows.opt_timestamp(r.in_time);
        rows.opt_timestamp(r.out_time);
        for value in [r.total_work_secs, r.lunch_deducted_secs, r.overtime_secs, r.late_by_secs, r.early_exit_by_secs] {
            rows.int8(value);
        }
        rows.text(&r.flags);
        for value in [
            r.punches_counted,
            r.punches_collapsed,
            r.punches_unmatched,
            r.punches_outside_window,
            r.punches_unapproved,
        ] {
            rows.int8(value);
        }
        rows.opt_text(r.leave_kind.as_deref());
        rows.opt_bool(r.leave_paid);
        rows.opt_text(r.sandwich_original.as_deref());
        rows.opt_date(r.sandwich_before);
        rows.opt_date(r.sandwich_after);
        rows.text(&r.explanation);
        rows.timestamptz(computed_at);
    }
    rows.send(conn, &format!("attendance ({})", ATTENDANCE_COLUMNS.join(", "))).await?;
    Ok(())
}

/// Inserts the ManDays `rows` with a binary `COPY`.
async fn insert_man_days_pg(conn: &mut sqlx::PgConnection, rows: &[ManDaysRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let fields = i16::try_from(4 + 3 * MAX_MAN_DAYS_SLOTS).unwrap_or(i16::MAX);
    let mut copy = CopyRows::with_capacity(rows.len() * 400);
    for row in rows {
        copy.row(fields);
        copy.text(row.employee_id.as_str());
        copy.date(row.date);
        copy.int8(i64::try_from(row.slots.len()).unwrap_or(i64::MAX));
        for n in 0..MAX_MAN_DAYS_SLOTS {
            let slot = row.slots.get(n);
            copy.opt_timestamp(slot.map(|s| s.in_time));
            copy.opt_timestamp(slot.map(|s| s.out_time));
            copy.int8(slot.map_or(0, |s| s.worked.num_seconds()));
        }
        copy.int8(row.total.num_seconds());
    }
    copy.send(conn, &format!("man_days ({})", man_days_columns().join(", "))).await?;
    Ok(())
}

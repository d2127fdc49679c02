//! The computed rows: `attendance` (one per employee-day) and `man_days` (ManDays shifts only).
//!
//! [`write_days`] replaces every row of the given (employee, date range)s by the engine's rows, so a day that no
//! longer exists (outside a changed employment) disappears. It is set-based: `UNNEST` arrays on PostgreSQL,
//! multi-row inserts on SQLite.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use crate::attendance::engine::{AttendanceDay, DayKind, ManDaysRow, MAX_MAN_DAYS_SLOTS};
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

const SQLITE_ROWS: usize = 400;

pub(crate) fn man_days_columns() -> Vec<String> {
    let mut cols = vec!["employee_id".to_owned(), "work_date".to_owned(), "slot_count".to_owned()];
    for n in 1..=MAX_MAN_DAYS_SLOTS {
        cols.extend([format!("in_{n}"), format!("out_{n}"), format!("work_{n}_secs")]);
    }
    cols.push("total_secs".to_owned());
    cols
}

fn sqlite_insert(table: &str, columns: &[String], rows: usize) -> String {
    let group = format!("({})", vec!["?"; columns.len()].join(","));
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(&group);
    }
    sql
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
            let conn: &mut sqlx::SqliteConnection = t;
            // One statement per table: the JSON list of ranges drives primary-key range scans.
            let list: Vec<(&str, NaiveDate, NaiveDate)> =
                ranges.iter().map(|r| (r.employee_id.as_str(), r.from, r.to)).collect();
            let json = serde_json::to_string(&list).map_err(|e| StoreError::Invalid(e.to_string()))?;
            for table in ["attendance", "man_days"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE (employee_id, work_date) IN (SELECT a.employee_id, a.work_date \
                     FROM json_each(?1) AS r CROSS JOIN {table} AS a ON a.employee_id = r.value ->> 0 \
                     AND a.work_date >= r.value ->> 1 AND a.work_date <= r.value ->> 2)"
                ))
                .bind(&json)
                .execute(&mut *conn)
                .await?;
            }
            let columns: Vec<String> = ATTENDANCE_COLUMNS.iter().map(|c| (*c).to_owned()).collect();
            for chunk in records.chunks(SQLITE_ROWS) {
                let sql = sqlite_insert("attendance", &columns, chunk.len());
                let mut q = sqlx::query(&sql);
                for r in chunk {
                    q = q
                        .bind(&r.employee_id)
                        .bind(r.work_date)
                        .bind(&r.shift_code)
                        .bind(&r.day_kind)
                        .bind(&r.status)
                        .bind(r.provisional)
                        .bind(r.closes_at)
                        .bind(r.in_time)
                        .bind(r.out_time)
                        .bind(r.total_work_secs)
                        .bind(r.lunch_deducted_secs)
                        .bind(r.overtime_secs)
                        .bind(r.late_by_secs)
                        .bind(r.early_exit_by_secs)
                        .bind(&r.flags)
                        .bind(r.punches_counted)
                        .bind(r.punches_collapsed)
                        .bind(r.punches_unmatched)
                        .bind(r.punches_outside_window)
                        .bind(r.punches_unapproved)
                        .bind(&r.leave_kind)
                        .bind(r.leave_paid)
                        .bind(&r.sandwich_original)
                        .bind(r.sandwich_before)
                        .bind(r.sandwich_after)
                        .bind(&r.explanation)
                        .bind(computed_at);
                }
                q.execute(&mut *conn).await?;
            }
            let columns = man_days_columns();
            for chunk in man_days.chunks(SQLITE_ROWS) {
                let sql = sqlite_insert("man_days", &columns, chunk.len());
                let mut q = sqlx::query(&sql);
                for row in chunk {
                    q = q
                        .bind(row.employee_id.as_str())
                        .bind(row.date)
                        .bind(i64::try_from(row.slots.len()).unwrap_or(i64::MAX));
                    for n in 0..MAX_MAN_DAYS_SLOTS {
                        let slot = row.slots.get(n);
                        q = q
                            .bind(slot.map(|s| s.in_time))
                            .bind(slot.map(|s| s.out_time))
                            .bind(slot.map_or(0, |s| s.worked.num_seconds()));
                    }
                    q = q.bind(row.total.num_seconds());
                }
                q.execute(&mut *conn).await?;
            }
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

async fn insert_attendance_pg(
    conn: &mut sqlx::PgConnection,
    records: &[AttendanceRecord],
    computed_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    macro_rules! col {
        ($field:ident) => {
            records.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    let columns = &ATTENDANCE_COLUMNS[..26];
    let types = [
        "text",
        "date",
        "text",
        "text",
        "text",
        "bool",
        "timestamp",
        "timestamp",
        "timestamp",
        "int8",
        "int8",
        "int8",
        "int8",
        "int8",
        "text",
        "int8",
        "int8",
        "int8",
        "int8",
        "int8",
        "text",
        "bool",
        "text",
        "date",
        "date",
        "text",
    ];
    let params: Vec<String> = types.iter().enumerate().map(|(i, t)| format!("${}::{t}[]", i + 1)).collect();
    let sql = format!(
        "INSERT INTO attendance ({}, computed_at) SELECT *, $27 FROM UNNEST({})",
        columns.join(", "),
        params.join(", ")
    );
    sqlx::query(&sql)
        .bind(col!(employee_id))
        .bind(col!(work_date))
        .bind(col!(shift_code))
        .bind(col!(day_kind))
        .bind(col!(status))
        .bind(col!(provisional))
        .bind(col!(closes_at))
        .bind(col!(in_time))
        .bind(col!(out_time))
        .bind(col!(total_work_secs))
        .bind(col!(lunch_deducted_secs))
        .bind(col!(overtime_secs))
        .bind(col!(late_by_secs))
        .bind(col!(early_exit_by_secs))
        .bind(col!(flags))
        .bind(col!(punches_counted))
        .bind(col!(punches_collapsed))
        .bind(col!(punches_unmatched))
        .bind(col!(punches_outside_window))
        .bind(col!(punches_unapproved))
        .bind(col!(leave_kind))
        .bind(col!(leave_paid))
        .bind(col!(sandwich_original))
        .bind(col!(sandwich_before))
        .bind(col!(sandwich_after))
        .bind(col!(explanation))
        .bind(computed_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_man_days_pg(conn: &mut sqlx::PgConnection, rows: &[ManDaysRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let columns = man_days_columns();
    let mut params = vec!["$1::text[]".to_owned(), "$2::date[]".to_owned(), "$3::int8[]".to_owned()];
    let mut n = 4;
    for _ in 0..MAX_MAN_DAYS_SLOTS {
        params.extend([
            format!("${n}::timestamp[]"),
            format!("${}::timestamp[]", n + 1),
            format!("${}::int8[]", n + 2),
        ]);
        n += 3;
    }
    params.push(format!("${n}::int8[]"));
    let sql = format!("INSERT INTO man_days ({}) SELECT * FROM UNNEST({})", columns.join(", "), params.join(", "));
    let mut q = sqlx::query(&sql)
        .bind(rows.iter().map(|r| r.employee_id.as_str().to_owned()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.date).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| i64::try_from(r.slots.len()).unwrap_or(i64::MAX)).collect::<Vec<_>>());
    for slot in 0..MAX_MAN_DAYS_SLOTS {
        q = q
            .bind(rows.iter().map(|r| r.slots.get(slot).map(|s| s.in_time)).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.slots.get(slot).map(|s| s.out_time)).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.slots.get(slot).map_or(0, |s| s.worked.num_seconds())).collect::<Vec<_>>());
    }
    q.bind(rows.iter().map(|r| r.total.num_seconds()).collect::<Vec<_>>()).execute(&mut *conn).await?;
    Ok(())
}

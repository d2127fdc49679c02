//! The attendance list of the admin API: computed rows joined with the employee, filtered, sorted by (date,
//! employee) or (employee, date) either way, and read in pages after a keyset cursor.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;
use sqlx::Row;

use crate::store::{on_reader, Store, StoreError};

/// How many punches a day counted, and why the others were not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PunchCountsView {
    /// Punches that took part in the day.
    pub counted: i64,
    /// Double taps collapsed into the punch before them (the shift's debounce).
    pub collapsed: i64,
    /// Punches left without a partner (an odd last punch, a second IN, an unknown state).
    pub unmatched: i64,
    /// Punches in the day's segment but outside its check-in/check-out window.
    pub outside_window: i64,
    /// Manual logs not (yet) approved, which therefore changed nothing.
    pub unapproved_manual: i64,
}

/// An attendance row with the employee's name, department and site, and everything the day page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AttendanceRow {
    pub employee_id: String,
    pub name: String,
    pub department: String,
    pub site_id: Option<String>,
    pub work_date: NaiveDate,
    pub shift_code: String,
    /// `working`, `week_off` or `holiday`.
    pub day_kind: String,
    /// P, HD, A, WO, PH, WOP, PHP, L; none while provisional.
    pub status: Option<String>,
    pub provisional: bool,
    /// When the day becomes final (the end of its check-out window, local time).
    #[schema(value_type = crate::http::api::local_time::LocalDateTime)]
    pub closes_at: NaiveDateTime,
    #[schema(value_type = Option<crate::http::api::local_time::LocalDateTime>)]
    pub in_time: Option<NaiveDateTime>,
    #[schema(value_type = Option<crate::http::api::local_time::LocalDateTime>)]
    pub out_time: Option<NaiveDateTime>,
    /// Work counted, lunch already deducted.
    pub total_work_secs: i64,
    /// The lunch break taken out of the work spans.
    pub lunch_deducted_secs: i64,
    pub overtime_secs: i64,
    pub late_by_secs: i64,
    pub early_exit_by_secs: i64,
    /// `missing_punch`, `unmatched_punch`, `manual_punch`, `worked_on_leave`, ..., and `sandwich` when the
    /// sandwich rule made the day A.
    pub flags: Vec<String>,
    pub punches: PunchCountsView,
    pub leave_kind: Option<String>,
    pub leave_paid: Option<bool>,
    /// The sandwich rule made the day A: its status before.
    pub sandwich_original: Option<String>,
    /// The sandwich rule: the absent working day before the run of days off.
    pub sandwich_before: Option<NaiveDate>,
    /// The sandwich rule: the absent working day after the run.
    pub sandwich_after: Option<NaiveDate>,
    /// Why the day got its status, in plain words.
    pub explanation: String,
}

/// Which attendance rows to read.
#[derive(Debug, Clone, Default)]
pub struct AttendanceFilter {
    /// `None`: every site (root); otherwise the administrator whose sites bound the result.
    pub scope: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub site: Option<String>,
    pub department: Option<String>,
    pub employee: Option<String>,
    pub status: Option<String>,
    /// Order by (employee, date) instead of (date, employee).
    pub by_employee: bool,
    pub descending: bool,
    /// The key of the last row of the previous page: (date, employee).
    pub after: Option<(NaiveDate, String)>,
    pub limit: i64,
    /// Only the rows of an exception report: `late`, `early` (early going), `overtime` or `absent`.
    pub exception: Option<&'static str>,
}

impl Store {
    /// A page of attendance rows matching `filter`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_attendance(&self, filter: &AttendanceFilter) -> Result<Vec<AttendanceRow>, StoreError> {
        let (first, second) =
            if filter.by_employee { ("a.employee_id", "a.work_date") } else { ("a.work_date", "a.employee_id") };
        let (cmp, dir) = if filter.descending { ("<", "DESC") } else { (">", "ASC") };
        let after = if filter.after.is_some() {
            if filter.by_employee {
                format!(" AND (a.employee_id {cmp} $9 OR (a.employee_id = $9 AND a.work_date {cmp} $8))")
            } else {
                format!(" AND (a.work_date {cmp} $8 OR (a.work_date = $8 AND a.employee_id {cmp} $9))")
            }
        } else {
            " AND ($8 IS NULL OR $9 IS NULL OR TRUE)".to_owned()
        };
        let exception = match filter.exception {
            Some("late") => " AND a.late_by_secs > 0",
            Some("early") => " AND a.early_exit_by_secs > 0",
            Some("overtime") => " AND a.overtime_secs > 0",
            Some("absent") => " AND a.status = 'A'",
            _ => "",
        };
        let sql = format!(
            "SELECT a.employee_id, e.name, e.department, e.site_id, a.work_date, a.shift_code, a.day_kind, a.status, \
             a.provisional, a.closes_at, a.in_time, a.out_time, a.total_work_secs, a.lunch_deducted_secs, \
             a.overtime_secs, a.late_by_secs, a.early_exit_by_secs, a.flags, a.punches_counted, \
             a.punches_collapsed, a.punches_unmatched, a.punches_outside_window, a.punches_unapproved, \
             a.leave_kind, a.leave_paid, a.sandwich_original, a.sandwich_before, a.sandwich_after, a.explanation \
             FROM attendance a JOIN employees e ON e.employee_id = a.employee_id WHERE {} \
             AND ($2 IS NULL OR a.work_date >= $2) AND ($3 IS NULL OR a.work_date <= $3) \
             AND ($4 IS NULL OR e.site_id = $4) AND ($5 IS NULL OR e.department = $5) \
             AND ($6 IS NULL OR a.employee_id = $6) AND ($7 IS NULL OR a.status = $7){after}{exception} \
             ORDER BY {first} {dir}, {second} {dir} LIMIT $10",
            scoped!("e.site_id", "1")
        );
        let (after_date, after_employee) = filter.after.clone().unzip();
        on_reader!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(filter.scope.as_deref())
                .bind(filter.from)
                .bind(filter.to)
                .bind(filter.site.as_deref())
                .bind(filter.department.as_deref())
                .bind(filter.employee.as_deref())
                .bind(filter.status.as_deref())
                .bind(after_date)
                .bind(after_employee)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let stored: String = row.try_get("flags")?;
                    let sandwich_original: Option<String> = row.try_get("sandwich_original")?;
                    let mut flags: Vec<String> =
                        stored.split(',').filter(|f| !f.is_empty()).map(str::to_owned).collect();
                    if sandwich_original.is_some() {
                        flags.push("sandwich".to_owned());
                    }
                    Ok(AttendanceRow {
                        employee_id: row.try_get("employee_id")?,
                        name: row.try_get("name")?,
                        department: row.try_get("department")?,
                        site_id: row.try_get("site_id")?,
                        work_date: row.try_get("work_date")?,
                        shift_code: row.try_get("shift_code")?,
                        day_kind: row.try_get("day_kind")?,
                        status: row.try_get("status")?,
                        provisional: row.try_get("provisional")?,
                        closes_at: row.try_get("closes_at")?,
                        in_time: row.try_get("in_time")?,
                        out_time: row.try_get("out_time")?,
                        total_work_secs: row.try_get("total_work_secs")?,
                        lunch_deducted_secs: row.try_get("lunch_deducted_secs")?,
                        overtime_secs: row.try_get("overtime_secs")?,
                        late_by_secs: row.try_get("late_by_secs")?,
                        early_exit_by_secs: row.try_get("early_exit_by_secs")?,
                        flags,
                        punches: PunchCountsView {
                            counted: row.try_get("punches_counted")?,
                            collapsed: row.try_get("punches_collapsed")?,
                            unmatched: row.try_get("punches_unmatched")?,
                            outside_window: row.try_get("punches_outside_window")?,
                            unapproved_manual: row.try_get("punches_unapproved")?,
                        },
                        leave_kind: row.try_get("leave_kind")?,
                        leave_paid: row.try_get("leave_paid")?,
                        sandwich_original,
                        sandwich_before: row.try_get("sandwich_before")?,
                        sandwich_after: row.try_get("sandwich_after")?,
                        explanation: row.try_get("explanation")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }
}

//! Reading the computed rows back: attendance and ManDays rows for one employee or everyone over a date range.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;
use sqlx::Row;

use super::results::{man_days_columns, AttendanceRecord, ATTENDANCE_COLUMNS};
use crate::attendance::engine::MAX_MAN_DAYS_SLOTS;
use crate::store::{on_reader, Store, StoreError};

/// A ManDays row as stored: the slots (in, out, seconds) and the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManDaysRecord {
    pub employee_id: String,
    pub work_date: NaiveDate,
    pub slots: Vec<(NaiveDateTime, NaiveDateTime, i64)>,
    pub total_secs: i64,
}

macro_rules! record_from_row {
    ($row:expr) => {{
        let row = $row;
        AttendanceRecord {
            employee_id: row.try_get("employee_id")?,
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
            flags: row.try_get("flags")?,
            punches_counted: row.try_get("punches_counted")?,
            punches_collapsed: row.try_get("punches_collapsed")?,
            punches_unmatched: row.try_get("punches_unmatched")?,
            punches_outside_window: row.try_get("punches_outside_window")?,
            punches_unapproved: row.try_get("punches_unapproved")?,
            leave_kind: row.try_get("leave_kind")?,
            leave_paid: row.try_get("leave_paid")?,
            sandwich_original: row.try_get("sandwich_original")?,
            sandwich_before: row.try_get("sandwich_before")?,
            sandwich_after: row.try_get("sandwich_after")?,
            explanation: row.try_get("explanation")?,
        }
    }};
}

impl Store {
    /// The attendance rows of `from..=to`, for one employee or everyone, by employee and date.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn attendance(
        &self,
        employee_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<AttendanceRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM attendance WHERE ($1 IS NULL OR employee_id = $1) AND work_date >= $2 AND work_date <= $3 \
             ORDER BY employee_id, work_date",
            ATTENDANCE_COLUMNS[..26].join(", ")
        );
        on_reader!(self, |pool| {
            let rows = sqlx::query(&sql).bind(employee_id).bind(from).bind(to).fetch_all(pool).await?;
            rows.iter().map(|row| Ok(record_from_row!(row))).collect::<Result<Vec<_>, StoreError>>()
        })
    }

    /// The ManDays rows of `from..=to`, for one employee or everyone, by employee and date.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn man_days(
        &self,
        employee_id: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<ManDaysRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM man_days WHERE ($1 IS NULL OR employee_id = $1) AND work_date >= $2 AND work_date <= $3 \
             ORDER BY employee_id, work_date",
            man_days_columns().join(", ")
        );
        on_reader!(self, |pool| {
            let rows = sqlx::query(&sql).bind(employee_id).bind(from).bind(to).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    let count: i64 = row.try_get("slot_count")?;
                    let mut slots = Vec::new();
                    for n in 1..=usize::try_from(count).unwrap_or(0).min(MAX_MAN_DAYS_SLOTS) {
                        let in_time: Option<NaiveDateTime> = row.try_get(format!("in_{n}").as_str())?;
                        let out_time: Option<NaiveDateTime> = row.try_get(format!("out_{n}").as_str())?;
                        let secs: i64 = row.try_get(format!("work_{n}_secs").as_str())?;
                        if let (Some(i), Some(o)) = (in_time, out_time) {
                            slots.push((i, o, secs));
                        }
                    }
                    Ok(ManDaysRecord {
                        employee_id: row.try_get("employee_id")?,
                        work_date: row.try_get("work_date")?,
                        slots,
                        total_secs: row.try_get("total_secs")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }
}

//! The ManDays list of the admin API: the slots (up to ten IN/OUT pairs) of ManDays-shift days with the employee,
//! filtered like the attendance list, sorted by (date, employee) or (employee, date) either way, in keyset pages.

use chrono::{NaiveDate, NaiveDateTime};
use serde::Serialize;
use sqlx::Row;

use super::AttendanceFilter;
use crate::attendance::engine::MAX_MAN_DAYS_SLOTS;
use crate::store::attendance::results::man_days_columns;
use crate::store::{on_reader, Store, StoreError};

/// One IN/OUT pair of a ManDays day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ManDaysSlot {
    /// 1 to 10.
    pub slot: i64,
    #[schema(value_type = crate::http::api::local_time::LocalDateTime)]
    pub in_time: NaiveDateTime,
    #[schema(value_type = crate::http::api::local_time::LocalDateTime)]
    pub out_time: NaiveDateTime,
    /// Work counted in the slot (lunch deducted; a merged tenth slot: the sum of its pairs).
    pub work_secs: i64,
}

/// A ManDaysAttendance row with the employee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ManDaysRow {
    pub employee_id: String,
    pub name: String,
    pub department: String,
    pub site_id: Option<String>,
    pub work_date: NaiveDate,
    /// The day's status (see the attendance row); none while provisional.
    pub status: Option<String>,
    pub slots: Vec<ManDaysSlot>,
    /// The sum of the slots' work.
    pub total_secs: i64,
}

impl Store {
    /// A page of ManDays rows matching `filter` (its status is the attendance row's).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_man_days(&self, filter: &AttendanceFilter) -> Result<Vec<ManDaysRow>, StoreError> {
        let (first, second) =
            if filter.by_employee { ("m.employee_id", "m.work_date") } else { ("m.work_date", "m.employee_id") };
        let (cmp, dir) = if filter.descending { ("<", "DESC") } else { (">", "ASC") };
        let after = if filter.after.is_some() {
            if filter.by_employee {
                format!(" AND (m.employee_id {cmp} $9 OR (m.employee_id = $9 AND m.work_date {cmp} $8))")
            } else {
                format!(" AND (m.work_date {cmp} $8 OR (m.work_date = $8 AND m.employee_id {cmp} $9))")
            }
        } else {
            " AND ($8 IS NULL OR $9 IS NULL OR TRUE)".to_owned()
        };
        let columns: Vec<String> = man_days_columns().iter().map(|c| format!("m.{c}")).collect();
        let sql = format!(
            "SELECT {}, e.name, e.department, e.site_id, a.status \
             FROM man_days m JOIN employees e ON e.employee_id = m.employee_id \
             LEFT JOIN attendance a ON a.employee_id = m.employee_id AND a.work_date = m.work_date WHERE {} \
             AND ($2 IS NULL OR m.work_date >= $2) AND ($3 IS NULL OR m.work_date <= $3) \
             AND ($4 IS NULL OR e.site_id = $4) AND ($5 IS NULL OR e.department = $5) \
             AND ($6 IS NULL OR m.employee_id = $6) AND ($7 IS NULL OR a.status = $7){after} \
             ORDER BY {first} {dir}, {second} {dir} LIMIT $10",
            columns.join(", "),
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
                    let count: i64 = row.try_get("slot_count")?;
                    let mut slots = Vec::new();
                    for n in 1..=usize::try_from(count).unwrap_or(0).min(MAX_MAN_DAYS_SLOTS) {
                        let in_time: Option<NaiveDateTime> = row.try_get(format!("in_{n}").as_str())?;
                        let out_time: Option<NaiveDateTime> = row.try_get(format!("out_{n}").as_str())?;
                        let work_secs: i64 = row.try_get(format!("work_{n}_secs").as_str())?;
                        if let (Some(in_time), Some(out_time)) = (in_time, out_time) {
                            slots.push(ManDaysSlot { slot: n as i64, in_time, out_time, work_secs });
                        }
                    }
                    Ok(ManDaysRow {
                        employee_id: row.try_get("employee_id")?,
                        name: row.try_get("name")?,
                        department: row.try_get("department")?,
                        site_id: row.try_get("site_id")?,
                        work_date: row.try_get("work_date")?,
                        status: row.try_get("status")?,
                        slots,
                        total_secs: row.try_get("total_secs")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }
}

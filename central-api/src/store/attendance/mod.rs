//! The attendance tables: the admin-managed inputs (shifts, week-off rules, holidays, site settings, employee
//! profiles, manual logs, leave), the dirty-day queue, and the computed rows (attendance, man_days).
//!
//! - [`masters`] and [`requests`] create, update and list inputs. Every change that can alter computed rows marks the
//!   affected employee-days in `attendance_dirty` in the same transaction (see [`mark_days`]).
//! - [`dirty`] claims marked days for the worker and releases them only if they were not re-marked meanwhile.
//! - [`inputs`] loads everything the engine needs for a set of employees; [`punches`] is the one punch query.
//! - [`results`] writes the computed rows; [`reads`] reads them back.
//!
//! Statements that are the same on both backends run through [`on_tx!`](crate::store::on_tx); set-based ones
//! (arrays on PostgreSQL, `json_each` on SQLite) are written per backend.

pub mod dirty;
pub mod employees;
pub mod inputs;
pub mod masters;
pub mod punches;
mod punches_pg;
mod punches_sqlite;
pub mod reads;
pub mod requests;
pub mod results;
mod results_sqlite;
pub mod shifts;
mod week_off_spec;

use chrono::NaiveDate;

pub use week_off_spec::{format_week_off, parse_week_off};

use super::{on_tx, StoreError, Tx};

/// Longest span of days one change may mark dirty at once (a shift change is applied from a date, not forever).
pub const MAX_MARK_DAYS: i64 = 400;

/// Which employees a change touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope<'a> {
    /// These employees.
    Employees(&'a [String]),
    /// Everyone on this shift.
    Shift(&'a str),
    /// Everyone with this week-off rule.
    WeekOffRule(&'a str),
    /// Everyone at this site.
    Site(&'a str),
    /// Everyone.
    All,
}

/// The ids of the employees in `scope`.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn employees_in(tx: &mut Tx, scope: &Scope<'_>) -> Result<Vec<String>, StoreError> {
    let (sql, arg) = match scope {
        Scope::Employees(ids) => return Ok(ids.to_vec()),
        Scope::Shift(code) => ("SELECT employee_id FROM employees WHERE shift_code = $1 ORDER BY employee_id", *code),
        Scope::WeekOffRule(code) => {
            ("SELECT employee_id FROM employees WHERE week_off_rule = $1 ORDER BY employee_id", *code)
        }
        Scope::Site(site) => ("SELECT employee_id FROM employees WHERE site_id = $1 ORDER BY employee_id", *site),
        Scope::All => ("SELECT employee_id FROM employees WHERE $1 = $1 ORDER BY employee_id", ""),
    };
    let rows: Vec<(String,)> = on_tx!(tx, |conn| sqlx::query_as(sql).bind(arg).fetch_all(&mut *conn).await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Marks `from..=to` dirty for every employee in `scope`, in `tx`. A day already marked gets a new `marks` (PostgreSQL:
/// the next value of a sequence, see migration 0004; SQLite: one more), so
/// a worker that claimed it before this change does not release it.
///
/// # Errors
/// [`StoreError::Invalid`] for a backwards range or one longer than [`MAX_MARK_DAYS`]; [`StoreError::Database`].
pub async fn mark_days(tx: &mut Tx, scope: &Scope<'_>, from: NaiveDate, to: NaiveDate) -> Result<u64, StoreError> {
    if to < from {
        return Err(StoreError::Invalid(format!("date range {from} to {to} ends before it starts")));
    }
    if (to - from).num_days() >= MAX_MARK_DAYS {
        return Err(StoreError::Invalid(format!(
            "date range {from} to {to} is longer than {MAX_MARK_DAYS} days; reprocess it with the reprocess job"
        )));
    }
    let employees = employees_in(tx, scope).await?;
    if employees.is_empty() {
        return Ok(0);
    }
    let done = match tx {
        Tx::Postgres(t) => sqlx::query(
            "INSERT INTO attendance_dirty (employee_id, work_date) \
             SELECT e, d::date FROM UNNEST($1::text[]) AS e, generate_series($2::date, $3::date, interval '1 day') d \
             ORDER BY 1, 2 \
             ON CONFLICT (employee_id, work_date) DO UPDATE \
             SET marked_at = excluded.marked_at, marks = excluded.marks",
        )
        .bind(&employees)
        .bind(from)
        .bind(to)
        .execute(&mut **t)
        .await?
        .rows_affected(),
        Tx::Sqlite(t) => {
            let json = serde_json::to_string(&employees).map_err(|e| StoreError::Invalid(e.to_string()))?;
            sqlx::query(
                "WITH RECURSIVE days(d) AS (SELECT date($2) UNION ALL SELECT date(d, '+1 day') FROM days \
                 WHERE d < date($3)) \
                 INSERT INTO attendance_dirty (employee_id, work_date) \
                 SELECT e.value, days.d FROM json_each($1) AS e, days WHERE true \
                 ON CONFLICT (employee_id, work_date) DO UPDATE \
                 SET marked_at = excluded.marked_at, marks = attendance_dirty.marks + 1",
            )
            .bind(json)
            .bind(from)
            .bind(to)
            .execute(&mut **t)
            .await?
            .rows_affected()
        }
    };
    Ok(done)
}

/// Today in UTC plus one day: the last day a configuration change marks (it covers today in every zone).
pub fn mark_horizon() -> NaiveDate {
    chrono::Utc::now().date_naive().succ_opt().unwrap_or(NaiveDate::MAX)
}

/// Whether a request (manual log, leave) was decided.
pub(crate) fn approval_name(approval: crate::attendance::engine::Approval) -> &'static str {
    use crate::attendance::engine::Approval;
    match approval {
        Approval::Pending => "pending",
        Approval::Approved => "approved",
        Approval::Rejected => "rejected",
    }
}

/// Parses a name produced by [`approval_name`].
pub(crate) fn parse_approval(name: &str) -> Result<crate::attendance::engine::Approval, StoreError> {
    use crate::attendance::engine::Approval;
    match name {
        "pending" => Ok(Approval::Pending),
        "approved" => Ok(Approval::Approved),
        "rejected" => Ok(Approval::Rejected),
        other => Err(StoreError::Invalid(format!("approval {other:?} is not pending, approved or rejected"))),
    }
}

//! Shifts: create, update (marking the days of the employees on the shift from the date the change applies), list.

use chrono::{NaiveDate, Utc};
use sqlx::Row;

use super::masters::{check_effective, invalid};
use super::{mark_days, mark_horizon, Scope};
use crate::attendance::engine::Shift;
use crate::store::{on_reader, on_tx, Store, StoreError, Tx};

/// A stored shift: its display name and the engine's [`Shift`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftRecord {
    pub name: String,
    pub shift: Shift,
}

const SHIFT_COLUMNS: &str = "code, name, start_time, end_time, grace_late_in_secs, grace_early_out_secs, \
    min_half_day_secs, max_work_for_half_day_secs, overtime_before_secs, overtime_after_secs, deduct_lunch_break, \
    lunch_break_start, lunch_break_duration_secs, check_in_window_secs, check_out_window_secs, pairing, \
    debounce_secs, single_punch";

/// Decodes a shift row selected with [`SHIFT_COLUMNS`] (either backend's row type).
macro_rules! shift_from_row {
    ($row:expr) => {{
        let row = $row;
        let secs = |name: &str| -> Result<chrono::Duration, $crate::store::StoreError> {
            Ok(chrono::Duration::seconds(row.try_get::<i64, _>(name)?))
        };
        let opt_secs = |name: &str| -> Result<Option<chrono::Duration>, $crate::store::StoreError> {
            Ok(row.try_get::<Option<i64>, _>(name)?.map(chrono::Duration::seconds))
        };
        let code: String = row.try_get("code")?;
        let pairing: String = row.try_get("pairing")?;
        let single: String = row.try_get("single_punch")?;
        let shift = $crate::attendance::engine::Shift {
            code: code.clone(),
            start: row.try_get::<chrono::NaiveTime, _>("start_time")?,
            end: row.try_get::<chrono::NaiveTime, _>("end_time")?,
            grace_late_in: secs("grace_late_in_secs")?,
            grace_early_out: secs("grace_early_out_secs")?,
            min_half_day: secs("min_half_day_secs")?,
            max_work_for_half_day: secs("max_work_for_half_day_secs")?,
            overtime_threshold_before_shift: opt_secs("overtime_before_secs")?,
            overtime_threshold_after_shift: opt_secs("overtime_after_secs")?,
            deduct_lunch_break: row.try_get::<bool, _>("deduct_lunch_break")?,
            lunch_break_start: row.try_get::<Option<chrono::NaiveTime>, _>("lunch_break_start")?,
            lunch_break_duration: secs("lunch_break_duration_secs")?,
            check_in_window_before_start: secs("check_in_window_secs")?,
            check_out_window_after_end: secs("check_out_window_secs")?,
            pairing: $crate::attendance::engine::PairingMode::from_name(&pairing)
                .ok_or_else(|| $crate::store::StoreError::Invalid(format!("shift {code}: pairing {pairing:?}")))?,
            debounce: secs("debounce_secs")?,
            single_punch: $crate::attendance::engine::SinglePunchPolicy::from_name(&single)
                .ok_or_else(|| $crate::store::StoreError::Invalid(format!("shift {code}: single_punch {single:?}")))?,
        };
        $crate::store::attendance::shifts::ShiftRecord { name: row.try_get("name")?, shift }
    }};
}

impl Store {
    /// Creates a shift after validating it.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the bad field, [`StoreError::AlreadyExists`].
    pub async fn create_shift(&self, name: &str, shift: &Shift) -> Result<(), StoreError> {
        shift.validate().map_err(invalid)?;
        let mut tx = self.begin().await?;
        if let Err(e) = write_shift(&mut tx, name, shift, true).await {
            if e.unique_violation() {
                return Err(StoreError::AlreadyExists { what: "shift", id: shift.code.clone() });
            }
            return Err(e);
        }
        tx.commit().await
    }

    /// Replaces a shift's settings and marks its employees' days from `effective_from` (clamped to the last
    /// [`MAX_MARK_DAYS`] days) to today for recomputation.
    ///
    /// # Errors
    /// [`StoreError::Invalid`], [`StoreError::NotFound`].
    pub async fn update_shift(&self, name: &str, shift: &Shift, effective_from: NaiveDate) -> Result<(), StoreError> {
        shift.validate().map_err(invalid)?;
        let mut tx = self.begin().await?;
        if write_shift(&mut tx, name, shift, false).await? == 0 {
            return Err(StoreError::NotFound { what: "shift", id: shift.code.clone() });
        }
        mark_days(&mut tx, &Scope::Shift(&shift.code), check_effective(effective_from), mark_horizon()).await?;
        tx.commit().await
    }

    /// Every shift, by code.
    ///
    /// # Errors
    /// [`StoreError::Database`], or [`StoreError::Invalid`] for a row no code could have written.
    pub async fn shifts(&self) -> Result<Vec<ShiftRecord>, StoreError> {
        let sql = format!("SELECT {SHIFT_COLUMNS} FROM shifts ORDER BY code");
        on_reader!(self, |pool| {
            let rows = sqlx::query(&sql).fetch_all(pool).await?;
            rows.iter().map(|row| Ok(shift_from_row!(row))).collect()
        })
    }
}

/// Inserts (`create`) or updates a shift row; returns the rows affected.
async fn write_shift(tx: &mut Tx, name: &str, s: &Shift, create: bool) -> Result<u64, StoreError> {
    let sql = if create {
        format!(
            "INSERT INTO shifts ({SHIFT_COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19)"
        )
    } else {
        "UPDATE shifts SET name = $2, start_time = $3, end_time = $4, grace_late_in_secs = $5, \
         grace_early_out_secs = $6, min_half_day_secs = $7, max_work_for_half_day_secs = $8, \
         overtime_before_secs = $9, overtime_after_secs = $10, deduct_lunch_break = $11, lunch_break_start = $12, \
         lunch_break_duration_secs = $13, check_in_window_secs = $14, check_out_window_secs = $15, pairing = $16, \
         debounce_secs = $17, single_punch = $18, updated_at = $19 WHERE code = $1"
            .to_owned()
    };
    let done = on_tx!(tx, |conn| sqlx::query(&sql)
        .bind(&s.code)
        .bind(name)
        .bind(s.start)
        .bind(s.end)
        .bind(s.grace_late_in.num_seconds())
        .bind(s.grace_early_out.num_seconds())
        .bind(s.min_half_day.num_seconds())
        .bind(s.max_work_for_half_day.num_seconds())
        .bind(s.overtime_threshold_before_shift.map(|d| d.num_seconds()))
        .bind(s.overtime_threshold_after_shift.map(|d| d.num_seconds()))
        .bind(s.deduct_lunch_break)
        .bind(s.lunch_break_start)
        .bind(s.lunch_break_duration.num_seconds())
        .bind(s.check_in_window_before_start.num_seconds())
        .bind(s.check_out_window_after_end.num_seconds())
        .bind(s.pairing.as_str())
        .bind(s.debounce.num_seconds())
        .bind(s.single_punch.as_str())
        .bind(Utc::now())
        .execute(&mut *conn)
        .await?
        .rows_affected());
    Ok(done)
}

pub(crate) use shift_from_row;

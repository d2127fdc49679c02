//! Inputs administrators manage: shifts, week-off rules, holidays, the site's sandwich setting and employees'
//! attendance profiles. Each change marks the employee-days it can alter, in the same transaction.

use chrono::{Duration, NaiveDate, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{format_week_off, mark_days, mark_horizon, parse_week_off, Scope, MAX_MARK_DAYS};
use crate::attendance::engine::{Holiday, HolidayKind, SandwichSetting, Shift, WeekOffRule};
use crate::store::{on_reader, on_tx, Store, StoreError, Tx};

/// A stored shift: its display name and the engine's [`Shift`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftRecord {
    pub name: String,
    pub shift: Shift,
}

/// A stored week-off rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekOffRuleRecord {
    pub code: String,
    pub name: String,
    pub rule: WeekOffRule,
}

/// A stored holiday with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolidayRecord {
    pub id: i64,
    pub holiday: Holiday,
}

/// An employee's attendance profile (the `employees` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmployeeProfile {
    pub employee_id: String,
    pub name: String,
    pub department: String,
    pub designation: String,
    pub site_id: Option<String>,
    pub shift_code: Option<String>,
    pub week_off_rule: Option<String>,
    pub date_of_joining: Option<NaiveDate>,
    pub date_of_leaving: Option<NaiveDate>,
    pub active: bool,
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
        $crate::store::attendance::masters::ShiftRecord { name: row.try_get("name")?, shift }
    }};
}

fn check_effective(from: NaiveDate) -> NaiveDate {
    let horizon = mark_horizon();
    let earliest = horizon - Duration::days(MAX_MARK_DAYS - 1);
    from.clamp(earliest, horizon)
}

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
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

    /// Creates a week-off rule.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`].
    pub async fn create_week_off_rule(&self, code: &str, name: &str, rule: &WeekOffRule) -> Result<(), StoreError> {
        let spec = format_week_off(rule);
        crate::store::on_pool!(self, |pool| sqlx::query(
            "INSERT INTO week_off_rules (code, name, spec, updated_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(code)
        .bind(name)
        .bind(&spec)
        .bind(Utc::now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| {
            let e = StoreError::from(e);
            if e.unique_violation() {
                StoreError::AlreadyExists { what: "week-off rule", id: code.to_owned() }
            } else {
                e
            }
        })?;
        Ok(())
    }

    /// Replaces a week-off rule and marks its employees' days from `effective_from` to today.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub async fn update_week_off_rule(
        &self,
        code: &str,
        name: &str,
        rule: &WeekOffRule,
        effective_from: NaiveDate,
    ) -> Result<(), StoreError> {
        let spec = format_week_off(rule);
        let mut tx = self.begin().await?;
        let done = on_tx!(&mut tx, |conn| sqlx::query(
            "UPDATE week_off_rules SET name = $2, spec = $3, updated_at = $4 WHERE code = $1"
        )
        .bind(code)
        .bind(name)
        .bind(&spec)
        .bind(Utc::now())
        .execute(&mut *conn)
        .await?
        .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound { what: "week-off rule", id: code.to_owned() });
        }
        mark_days(&mut tx, &Scope::WeekOffRule(code), check_effective(effective_from), mark_horizon()).await?;
        tx.commit().await
    }

    /// Every week-off rule, by code.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Invalid`] for a spec that does not parse.
    pub async fn week_off_rules(&self) -> Result<Vec<WeekOffRuleRecord>, StoreError> {
        let rows: Vec<(String, String, String)> =
            on_reader!(self, |pool| sqlx::query_as("SELECT code, name, spec FROM week_off_rules ORDER BY code")
                .fetch_all(pool)
                .await)?;
        rows.into_iter()
            .map(|(code, name, spec)| Ok(WeekOffRuleRecord { rule: parse_week_off(&spec)?, code, name }))
            .collect()
    }

    /// Adds a holiday (site-scoped, or global when `site` is `None`) and marks its date for the employees it
    /// applies to. Returns its id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown site.
    pub async fn add_holiday(&self, holiday: &Holiday) -> Result<i64, StoreError> {
        let site = holiday.site.as_ref().map(|s| s.as_str().to_owned());
        if let Some(site) = &site {
            if self.site(site).await?.is_none() {
                return Err(StoreError::NotFound { what: "site", id: site.clone() });
            }
        }
        let mut tx = self.begin().await?;
        let (id,): (i64,) = on_tx!(&mut tx, |conn| sqlx::query_as(
            "INSERT INTO holidays (holiday_date, name, kind, site_id, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id"
        )
        .bind(holiday.date)
        .bind(&holiday.name)
        .bind(holiday.kind.as_str())
        .bind(&site)
        .bind(Utc::now())
        .fetch_one(&mut *conn)
        .await?);
        let scope = site.as_deref().map_or(Scope::All, Scope::Site);
        mark_days(&mut tx, &scope, holiday.date, holiday.date).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Removes a holiday and marks its date for recomputation.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub async fn remove_holiday(&self, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let row: Option<(NaiveDate, Option<String>)> = on_tx!(&mut tx, |conn| sqlx::query_as(
            "DELETE FROM holidays WHERE id = $1 RETURNING holiday_date, site_id"
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?);
        let Some((date, site)) = row else {
            return Err(StoreError::NotFound { what: "holiday", id: id.to_string() });
        };
        let scope = site.as_deref().map_or(Scope::All, Scope::Site);
        mark_days(&mut tx, &scope, date, date).await?;
        tx.commit().await
    }

    /// Every holiday, by date.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Invalid`] for a stored value no code writes.
    pub async fn holidays(&self) -> Result<Vec<HolidayRecord>, StoreError> {
        let rows: Vec<(i64, NaiveDate, String, String, Option<String>)> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT id, holiday_date, name, kind, site_id FROM holidays ORDER BY holiday_date, id"
        )
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(id, date, name, kind, site)| {
                let kind = [HolidayKind::Public, HolidayKind::Company, HolidayKind::Optional]
                    .into_iter()
                    .find(|k| k.as_str() == kind)
                    .ok_or_else(|| StoreError::Invalid(format!("holiday {id}: kind {kind:?}")))?;
                let site = site.map(|s| s.parse()).transpose().map_err(invalid)?;
                Ok(HolidayRecord { id, holiday: Holiday { date, name, kind, site } })
            })
            .collect()
    }

    /// Sets a site's sandwich setting and marks its employees' days from `effective_from` to today.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub async fn set_site_sandwich(
        &self,
        site: &str,
        setting: SandwichSetting,
        effective_from: NaiveDate,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = on_tx!(&mut tx, |conn| sqlx::query("UPDATE sites SET sandwich = $2 WHERE site_id = $1")
            .bind(site)
            .bind(setting.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound { what: "site", id: site.to_owned() });
        }
        mark_days(&mut tx, &Scope::Site(site), check_effective(effective_from), mark_horizon()).await?;
        tx.commit().await
    }

    /// Replaces an employee's profile and marks their days from the earliest of `effective_from` and the old and
    /// new joining dates (clamped to the last [`MAX_MARK_DAYS`] days) to today.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when leaving precedes joining, [`StoreError::NotFound`] for an unknown employee,
    /// or a foreign key (site, shift, week-off rule) that does not exist ([`StoreError::Database`]).
    pub async fn update_employee_profile(
        &self,
        profile: &EmployeeProfile,
        effective_from: NaiveDate,
    ) -> Result<(), StoreError> {
        if let (Some(j), Some(l)) = (profile.date_of_joining, profile.date_of_leaving) {
            if l < j {
                return Err(StoreError::Invalid(format!(
                    "employee {}: date of leaving {l} is before date of joining {j}",
                    profile.employee_id
                )));
            }
        }
        let old = self
            .employee_profile(&profile.employee_id)
            .await?
            .ok_or_else(|| StoreError::NotFound { what: "employee", id: profile.employee_id.clone() })?;
        let from = [Some(effective_from), old.date_of_joining, profile.date_of_joining]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(effective_from);
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, |conn| sqlx::query(
            "UPDATE employees SET name = $2, department = $3, designation = $4, site_id = $5, shift_code = $6, \
             week_off_rule = $7, date_of_joining = $8, date_of_leaving = $9, active = $10 WHERE employee_id = $1"
        )
        .bind(&profile.employee_id)
        .bind(&profile.name)
        .bind(&profile.department)
        .bind(&profile.designation)
        .bind(&profile.site_id)
        .bind(&profile.shift_code)
        .bind(&profile.week_off_rule)
        .bind(profile.date_of_joining)
        .bind(profile.date_of_leaving)
        .bind(profile.active)
        .execute(&mut *conn)
        .await?
        .rows_affected());
        let ids = [profile.employee_id.clone()];
        mark_days(&mut tx, &Scope::Employees(&ids), check_effective(from), mark_horizon()).await?;
        tx.commit().await
    }

    /// One employee's profile.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn employee_profile(&self, employee_id: &str) -> Result<Option<EmployeeProfile>, StoreError> {
        Ok(self.employee_profiles(Some(employee_id), None).await?.into_iter().next())
    }

    /// Employees' profiles, all or one site's (or one employee), by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn employee_profiles(
        &self,
        employee_id: Option<&str>,
        site: Option<&str>,
    ) -> Result<Vec<EmployeeProfile>, StoreError> {
        on_reader!(self, |pool| {
            let rows = sqlx::query(
                "SELECT employee_id, name, department, designation, site_id, shift_code, week_off_rule, \
                 date_of_joining, date_of_leaving, active FROM employees \
                 WHERE ($1 IS NULL OR employee_id = $1) AND ($2 IS NULL OR site_id = $2) ORDER BY employee_id",
            )
            .bind(employee_id)
            .bind(site)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(EmployeeProfile {
                        employee_id: row.try_get("employee_id")?,
                        name: row.try_get("name")?,
                        department: row.try_get("department")?,
                        designation: row.try_get("designation")?,
                        site_id: row.try_get("site_id")?,
                        shift_code: row.try_get("shift_code")?,
                        week_off_rule: row.try_get("week_off_rule")?,
                        date_of_joining: row.try_get("date_of_joining")?,
                        date_of_leaving: row.try_get("date_of_leaving")?,
                        active: row.try_get("active")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
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

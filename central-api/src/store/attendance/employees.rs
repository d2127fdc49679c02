//! Employees' attendance profiles: creating one (the whole row in one transaction, so a refused reference leaves
//! nothing behind), replacing one, reading them. Both writes check the site, shift and week-off rule they name
//! first (a refusal names the field), and mark the employee's days from their joining date (or, without one, their
//! first punch still waiting in the queue), within a window, so days without punches (A, WO, PH) are computed
//! without a manual reprocess.

use chrono::{Duration, NaiveDate, Utc};
use sqlx::Row;

use super::masters::EmployeeProfile;
use super::{mark_days, mark_horizon, Scope, MAX_MARK_DAYS};
use crate::fleet::privilege::DevicePrivilege;
use crate::store::{on_pool, on_reader, on_tx, Store, StoreError, Tx};

/// Refuses a profile naming a site, shift or week-off rule that does not exist; the message starts with the field.
async fn check_references(tx: &mut Tx, profile: &EmployeeProfile) -> Result<(), StoreError> {
    let checks = [
        ("site_id", "site", "SELECT count(*) FROM sites WHERE site_id = $1", profile.site_id.as_deref()),
        ("shift_code", "shift", "SELECT count(*) FROM shifts WHERE code = $1", profile.shift_code.as_deref()),
        (
            "week_off_rule",
            "week-off rule",
            "SELECT count(*) FROM week_off_rules WHERE code = $1",
            profile.week_off_rule.as_deref(),
        ),
    ];
    for (field, what, sql, value) in checks {
        let Some(value) = value else { continue };
        let (n,): (i64,) = on_tx!(tx, |conn| sqlx::query_as(sql).bind(value).fetch_one(&mut *conn).await?);
        if n == 0 {
            return Err(StoreError::Invalid(format!("{field}: {what} {value:?} does not exist")));
        }
    }
    if let (Some(j), Some(l)) = (profile.date_of_joining, profile.date_of_leaving) {
        if l < j {
            return Err(StoreError::Invalid(format!("date_of_leaving: {l} is before date_of_joining {j}")));
        }
    }
    Ok(())
}

/// The earliest day still marked for `employee_id` (punches that arrived before the employee existed wait there).
async fn first_marked_day(tx: &mut Tx, employee_id: &str) -> Result<Option<NaiveDate>, StoreError> {
    let (day,): (Option<NaiveDate>,) =
        on_tx!(tx, |conn| sqlx::query_as("SELECT min(work_date) FROM attendance_dirty WHERE employee_id = $1")
            .bind(employee_id)
            .fetch_one(&mut *conn)
            .await?);
    Ok(day)
}

impl Store {
    /// Creates (`create`) or replaces an employee's profile in one transaction, after checking the site, shift and
    /// week-off rule it names, and marks their days from the earliest of `effective_from`, the old and new joining
    /// dates (without any: their first day still marked), no further back than `window_days` (at most
    /// [`MAX_MARK_DAYS`]), to today. Returns the profile before the change (`None` when created).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] naming the field, [`StoreError::AlreadyExists`] (create), [`StoreError::NotFound`]
    /// (replace).
    pub async fn save_employee(
        &self,
        profile: &EmployeeProfile,
        create: bool,
        effective_from: NaiveDate,
        window_days: i64,
    ) -> Result<Option<EmployeeProfile>, StoreError> {
        let old = if create { None } else { Some(self.employee_profile(&profile.employee_id).await?) };
        let old = match old {
            Some(None) => return Err(StoreError::NotFound { what: "employee", id: profile.employee_id.clone() }),
            Some(Some(old)) => Some(old),
            None => None,
        };
        let mut tx = self.begin().await?;
        check_references(&mut tx, profile).await?;
        let columns = "name = $2, department = $3, designation = $4, site_id = $5, shift_code = $6, \
                       week_off_rule = $7, date_of_joining = $8, date_of_leaving = $9, active = $10, \
                       card_number = $12, device_privilege = $13";
        let sql = if create {
            "INSERT INTO employees (employee_id, name, department, designation, site_id, shift_code, week_off_rule, \
             date_of_joining, date_of_leaving, active, created_at, card_number, device_privilege) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                .to_owned()
        } else {
            format!("UPDATE employees SET {columns} WHERE employee_id = $1 AND $11 = $11")
        };
        let written = on_tx!(&mut tx, |conn| sqlx::query(&sql)
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
            .bind(Utc::now())
            .bind(profile.card_number.map(i64::from))
            .bind(profile.device_privilege.map(|p| p.as_str()))
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected()));
        match written.map_err(StoreError::from) {
            Err(e) if e.unique_violation() => {
                return Err(StoreError::AlreadyExists { what: "employee", id: profile.employee_id.clone() })
            }
            Err(e) => return Err(e),
            Ok(0) => return Err(StoreError::NotFound { what: "employee", id: profile.employee_id.clone() }),
            Ok(_) => {}
        }
        let joined =
            [old.as_ref().and_then(|o| o.date_of_joining), profile.date_of_joining].into_iter().flatten().min();
        let first = match joined {
            Some(day) => Some(day),
            None => first_marked_day(&mut tx, &profile.employee_id).await?,
        };
        let horizon = mark_horizon();
        let earliest = horizon - Duration::days(window_days.clamp(1, MAX_MARK_DAYS) - 1);
        let from = first.map_or(effective_from, |f| f.min(effective_from)).clamp(earliest, horizon);
        let ids = [profile.employee_id.clone()];
        mark_days(&mut tx, &Scope::Employees(&ids), from, horizon).await?;
        tx.commit().await?;
        Ok(old)
    }

    /// Replaces an employee's profile and marks their days from the earliest of `effective_from` and the old and
    /// new joining dates (clamped to the last [`MAX_MARK_DAYS`] days) to today.
    ///
    /// # Errors
    /// As [`Store::save_employee`].
    pub async fn update_employee_profile(
        &self,
        profile: &EmployeeProfile,
        effective_from: NaiveDate,
    ) -> Result<(), StoreError> {
        self.save_employee(profile, false, effective_from, MAX_MARK_DAYS).await.map(|_| ())
    }

    /// Sets an employee's card number and privilege on the terminals (`None`: central knows none).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Database`].
    pub async fn set_employee_device_fields(
        &self,
        employee_id: &str,
        card_number: Option<u32>,
        device_privilege: Option<DevicePrivilege>,
    ) -> Result<(), StoreError> {
        let changed = on_pool!(self, |pool| sqlx::query(
            "UPDATE employees SET card_number = $2, device_privilege = $3 WHERE employee_id = $1"
        )
        .bind(employee_id)
        .bind(card_number.map(i64::from))
        .bind(device_privilege.map(DevicePrivilege::as_str))
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if changed == 0 {
            return Err(StoreError::NotFound { what: "employee", id: employee_id.to_owned() });
        }
        Ok(())
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
                 date_of_joining, date_of_leaving, active, card_number, device_privilege FROM employees \
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
                        card_number: row.try_get::<Option<i64>, _>("card_number")?.and_then(|n| u32::try_from(n).ok()),
                        device_privilege: row
                            .try_get::<Option<String>, _>("device_privilege")?
                            .and_then(|p| DevicePrivilege::parse(&p)),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
    }
}

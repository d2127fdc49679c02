//! Inputs administrators manage (shifts are in [`super::shifts`], employees in [`super::employees`]): week-off
//! rules, holidays and the sites' attendance settings. Each change marks the employee-days it can alter, in the same
//! transaction.

use chrono::{Duration, NaiveDate, Utc};
use serde::Serialize;

use super::{format_week_off, mark_days, mark_horizon, parse_week_off, Scope, MAX_MARK_DAYS};
use crate::attendance::engine::{Holiday, HolidayKind, SandwichSetting, WeekOffRule};
use crate::store::listing::SiteInfo;
use crate::store::{on_reader, on_tx, Store, StoreError};

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
    /// The card number pushed to the terminals (`None`: central knows none; the terminal's is kept).
    pub card_number: Option<u32>,
    /// The privilege pushed to the terminals (`None`: central knows none; the terminal's is kept).
    pub device_privilege: Option<crate::fleet::privilege::DevicePrivilege>,
}

pub(super) fn check_effective(from: NaiveDate) -> NaiveDate {
    let horizon = mark_horizon();
    let earliest = horizon - Duration::days(MAX_MARK_DAYS - 1);
    from.clamp(earliest, horizon)
}

pub(super) fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

impl Store {
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
        let inserted: Result<(i64,), sqlx::Error> = on_tx!(&mut tx, |conn| sqlx::query_as(
            "INSERT INTO holidays (holiday_date, name, kind, site_id, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id"
        )
        .bind(holiday.date)
        .bind(&holiday.name)
        .bind(holiday.kind.as_str())
        .bind(&site)
        .bind(Utc::now())
        .fetch_one(&mut *conn)
        .await);
        // A holiday is keyed by (site or all sites, date, name).
        let (id,) = inserted.map_err(|e| match StoreError::from(e) {
            e if e.unique_violation() => StoreError::AlreadyExists {
                what: "holiday",
                id: format!("{} on {} ({})", holiday.name, holiday.date, site.as_deref().unwrap_or("all sites")),
            },
            e => e,
        })?;
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

    /// Replaces a site's settings (name, zone, sandwich, default week-off rule) in one transaction and, from
    /// `mark_from` when given, marks its employees' days to today for recomputation. Returns the settings before.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Invalid`] naming `default_week_off_rule` or `sandwich`.
    pub async fn update_site_settings(
        &self,
        new: &SiteInfo,
        mark_from: Option<NaiveDate>,
    ) -> Result<SiteInfo, StoreError> {
        let old = self
            .list_sites(None)
            .await?
            .into_iter()
            .find(|s| s.site_id == new.site_id)
            .ok_or_else(|| StoreError::NotFound { what: "site", id: new.site_id.clone() })?;
        if SandwichSetting::from_name(&new.sandwich).is_none() {
            return Err(StoreError::Invalid(format!(
                "sandwich: {:?} is not off, week_offs or week_offs_and_holidays",
                new.sandwich
            )));
        }
        let mut tx = self.begin().await?;
        if let Some(rule) = &new.default_week_off_rule {
            let (n,): (i64,) =
                on_tx!(&mut tx, |conn| sqlx::query_as("SELECT count(*) FROM week_off_rules WHERE code = $1")
                    .bind(rule)
                    .fetch_one(&mut *conn)
                    .await?);
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "default_week_off_rule: week-off rule {rule:?} does not exist"
                )));
            }
        }
        on_tx!(&mut tx, |conn| sqlx::query(
            "UPDATE sites SET name = $2, time_zone = $3, sandwich = $4, default_week_off_rule = $5 WHERE site_id = $1"
        )
        .bind(&new.site_id)
        .bind(&new.name)
        .bind(&new.time_zone)
        .bind(&new.sandwich)
        .bind(&new.default_week_off_rule)
        .execute(&mut *conn)
        .await
        .map(|_| ()))?;
        if let Some(from) = mark_from {
            mark_days(&mut tx, &Scope::Site(&new.site_id), check_effective(from), mark_horizon()).await?;
        }
        tx.commit().await?;
        Ok(old)
    }
}

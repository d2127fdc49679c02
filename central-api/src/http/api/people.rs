//! Employees, week-off rules and holidays. Week-off rules are global (root changes them); a holiday belongs to one
//! site (its admins manage it) or to every site (root). Every change is audited. (Shifts: [`super::shifts`].)

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sites::{scoped_site, SiteFilter};
use super::updates::FieldError;
use super::{invalid, store_error, text, Body};
use crate::access::{Action, Caller};
use crate::attendance::engine::{Holiday, HolidayKind};
use crate::audit::{self, Entry};
use crate::fleet::privilege::{parse_card, DevicePrivilege, PRIVILEGE_NAMES};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::attendance::masters::EmployeeProfile;
use crate::store::attendance::{format_week_off, parse_week_off};

/// An employee (the `employees` row); `employee_id` is the PIN enrolled on the devices.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Employee {
    pub employee_id: String,
    pub name: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub designation: String,
    pub site_id: String,
    pub shift_code: Option<String>,
    pub week_off_rule: Option<String>,
    pub date_of_joining: Option<NaiveDate>,
    pub date_of_leaving: Option<NaiveDate>,
    #[serde(default = "yes")]
    pub active: bool,
    /// The card number pushed to the terminals: digits, 1 to 4294967295 (what both ZKTeco user layouts and the push
    /// protocol keep). Absent: central knows none, and a push keeps the card the terminal holds.
    #[serde(default)]
    pub card_number: Option<String>,
    /// The privilege pushed to the terminals: `user`, `enroller`, `admin` or `superadmin` (codes 0, 2, 6, 14).
    /// Absent: central knows none, and a push keeps the level the terminal holds (a new user is a `user`).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "user")]
    pub device_privilege: Option<String>,
}

fn yes() -> bool {
    true
}

impl Employee {
    /// The API view of a stored profile.
    pub fn from_profile(p: EmployeeProfile) -> Self {
        Self {
            employee_id: p.employee_id,
            name: p.name,
            department: p.department,
            designation: p.designation,
            site_id: p.site_id.unwrap_or_default(),
            shift_code: p.shift_code,
            week_off_rule: p.week_off_rule,
            date_of_joining: p.date_of_joining,
            date_of_leaving: p.date_of_leaving,
            active: p.active,
            card_number: p.card_number.map(|n| n.to_string()),
            device_privilege: p.device_privilege.map(|d| d.as_str().to_owned()),
        }
    }

    /// The store's profile of this employee (card and privilege as [`Self::validate`] accepts them).
    pub fn profile(&self) -> EmployeeProfile {
        EmployeeProfile {
            card_number: self.card_number.as_deref().and_then(|c| parse_card(c).ok()),
            device_privilege: self.device_privilege.as_deref().and_then(DevicePrivilege::parse),
            employee_id: self.employee_id.clone(),
            name: self.name.clone(),
            department: self.department.clone(),
            designation: self.designation.clone(),
            site_id: Some(self.site_id.clone()),
            shift_code: self.shift_code.clone(),
            week_off_rule: self.week_off_rule.clone(),
            date_of_joining: self.date_of_joining,
            date_of_leaving: self.date_of_leaving,
            active: self.active,
        }
    }

    /// Checks every field (the web form runs the same checks).
    ///
    /// # Errors
    /// The first field that is wrong, named.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.employee_id.parse::<protocol::Pin>().map_err(|e| FieldError::new("employee_id", e))?;
        if self.name.trim().is_empty() {
            return Err(FieldError::new("name", "must not be empty"));
        }
        for (field, value) in
            [("name", &self.name), ("department", &self.department), ("designation", &self.designation)]
        {
            if value.chars().count() > 200 {
                return Err(FieldError::new(field, "is longer than 200 characters"));
            }
        }
        if let (Some(j), Some(l)) = (self.date_of_joining, self.date_of_leaving) {
            if l < j {
                return Err(FieldError::new("date_of_leaving", format!("{l} is before date_of_joining {j}")));
            }
        }
        if let Some(card) = &self.card_number {
            parse_card(card).map_err(|e| FieldError::new("card_number", e))?;
        }
        if let Some(privilege) = &self.device_privilege {
            if DevicePrivilege::parse(privilege).is_none() {
                return Err(FieldError::new(
                    "device_privilege",
                    format!("{privilege:?} is not one of {}", PRIVILEGE_NAMES.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

/// A week-off rule: `spec` like `sun` or `sun,sat#2,sat#4`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeekOffRuleBody {
    pub code: String,
    pub name: String,
    pub spec: String,
}

/// A holiday; `site_id` absent: every site.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HolidayBody {
    #[serde(default)]
    pub id: i64,
    pub date: NaiveDate,
    pub name: String,
    /// `public`, `company` or `optional`.
    pub kind: String,
    pub site_id: Option<String>,
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} {id:?} does not exist"))
}

/// Employees of the caller's sites.
#[utoipa::path(get, path = "/api/v1/employees", tag = "employees", params(SiteFilter),
    responses((status = 200, body = [Employee])))]
pub async fn list_employees(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SiteFilter>,
) -> Result<Json<Vec<Employee>>, ApiError> {
    let site = scoped_site(&caller, q.site.as_deref())?;
    let all = state.store.employee_profiles(None, site).await.map_err(store_error)?;
    Ok(Json(
        all.into_iter()
            .filter(|p| p.site_id.as_deref().is_some_and(|s| caller.sees(s)))
            .map(Employee::from_profile)
            .collect(),
    ))
}

pub async fn visible_employee(state: &AppState, caller: &Caller, id: &str) -> Result<Employee, ApiError> {
    let profile = state.store.employee_profile(id).await.map_err(store_error)?;
    profile
        .filter(|p| p.site_id.as_deref().is_some_and(|s| caller.sees(s)))
        .map(Employee::from_profile)
        .ok_or_else(|| not_found("employee", id))
}

/// One employee.
#[utoipa::path(get, path = "/api/v1/employees/{id}", tag = "employees", params(("id" = String, Path)),
    responses((status = 200, body = Employee), (status = 404)))]
pub async fn get_employee(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Employee>, ApiError> {
    Ok(Json(visible_employee(&state, &caller, &id).await?))
}

/// Creates an employee (root, or admin of the site), in one transaction: an unknown site, shift or week-off rule is
/// refused naming the field and creates nothing. Their days from the joining date (within the backfill window) are
/// computed in the background.
#[utoipa::path(post, path = "/api/v1/employees", tag = "employees", request_body = Employee,
    responses((status = 201, body = Employee), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409), (status = 413), (status = 503)))]
pub async fn create_employee(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<Employee>,
) -> Result<(StatusCode, Json<Employee>), ApiError> {
    Ok((StatusCode::CREATED, Json(add_employee(&state, &caller, req).await?)))
}

/// Checks, creates and audits an employee (the API and the web form share it).
///
/// # Errors
/// `400` naming the field, `403`/`404` from the scope check, `409` for a taken id.
pub async fn add_employee(state: &AppState, caller: &Caller, req: Employee) -> Result<Employee, ApiError> {
    req.validate()?;
    caller.require(Action::Write, Some(&req.site_id))?;
    let from = state.backfill_from(None);
    state.store.save_employee(&req.profile(), true, from, state.backfill_window()).await.map_err(store_error)?;
    audit::record(
        &state.store,
        caller,
        Entry::new("create", "employee", &req.employee_id).site(Some(&req.site_id)).after(&req),
    )
    .await;
    Ok(req)
}

/// Replaces an employee's profile (root, or admin of both the old and the new site).
#[utoipa::path(put, path = "/api/v1/employees/{id}", tag = "employees", params(("id" = String, Path)),
    request_body = Employee, responses((status = 200, body = Employee), (status = 400), (status = 401),
        (status = 403), (status = 404), (status = 413), (status = 503)))]
pub async fn update_employee(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<Employee>,
) -> Result<Json<Employee>, ApiError> {
    Ok(Json(change_employee(&state, &caller, &id, req).await?))
}

/// Checks, stores and audits a change of employee `id` (the API and the web form share it).
///
/// # Errors
/// `400` naming the field, `404` for an employee the caller does not see, `403` from the scope checks.
pub async fn change_employee(state: &AppState, caller: &Caller, id: &str, req: Employee) -> Result<Employee, ApiError> {
    req.validate()?;
    if req.employee_id != id {
        return Err(invalid("employee_id", format!("{:?} differs from the path's {id:?}", req.employee_id)));
    }
    let old = visible_employee(state, caller, id).await?;
    caller.require(Action::Write, Some(&old.site_id))?;
    caller.require(Action::Write, Some(&req.site_id))?;
    let from = state.backfill_from(None);
    state.store.save_employee(&req.profile(), false, from, state.backfill_window()).await.map_err(store_error)?;
    let entry = Entry::new("update", "employee", id).before(&old).after(&req);
    if old.site_id != req.site_id {
        // Moved between sites: the old site's admins see the entry too.
        audit::record(&state.store, caller, entry.clone().site(Some(&old.site_id))).await;
    }
    audit::record(&state.store, caller, entry.site(Some(&req.site_id))).await;
    Ok(req)
}

/// Every week-off rule.
#[utoipa::path(get, path = "/api/v1/week-off-rules", tag = "settings",
    responses((status = 200, body = [WeekOffRuleBody])))]
pub async fn list_week_off_rules(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<WeekOffRuleBody>>, ApiError> {
    caller.require(Action::Read, None)?;
    let rules = state.store.week_off_rules().await.map_err(store_error)?;
    Ok(Json(
        rules
            .into_iter()
            .map(|r| WeekOffRuleBody { spec: format_week_off(&r.rule), code: r.code, name: r.name })
            .collect(),
    ))
}

/// Creates a week-off rule (root).
#[utoipa::path(post, path = "/api/v1/week-off-rules", tag = "settings", request_body = WeekOffRuleBody,
    responses((status = 201), (status = 400), (status = 403), (status = 409)))]
pub async fn create_week_off_rule(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<WeekOffRuleBody>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::Write, None)?;
    text("code", &req.code, 50)?;
    text("name", &req.name, 200)?;
    let rule = parse_week_off(&req.spec).map_err(|e| invalid("spec", e))?;
    state.store.create_week_off_rule(&req.code, &req.name, &rule).await.map_err(store_error)?;
    let after = WeekOffRuleBody { code: req.code.clone(), name: req.name.clone(), spec: format_week_off(&rule) };
    audit::record(&state.store, &caller, Entry::new("create", "week_off_rule", &req.code).after(&after)).await;
    Ok(StatusCode::CREATED)
}

/// Holidays of every site and of the caller's sites.
#[utoipa::path(get, path = "/api/v1/holidays", tag = "settings", responses((status = 200, body = [HolidayBody])))]
pub async fn list_holidays(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<HolidayBody>>, ApiError> {
    let all = state.store.holidays().await.map_err(store_error)?;
    Ok(Json(
        all.into_iter()
            .filter(|h| h.holiday.site.as_ref().is_none_or(|s| caller.sees(s.as_str())))
            .map(|h| HolidayBody {
                id: h.id,
                date: h.holiday.date,
                name: h.holiday.name,
                kind: h.holiday.kind.as_str().to_owned(),
                site_id: h.holiday.site.map(|s| s.as_str().to_owned()),
            })
            .collect(),
    ))
}

/// Adds a holiday (root for every site, admin for its site); marks the day for recomputation.
#[utoipa::path(post, path = "/api/v1/holidays", tag = "settings", request_body = HolidayBody,
    description = "A holiday is keyed by its site (or all sites), date and name: the same one again is a 409.",
    responses((status = 201, body = HolidayBody), (status = 400), (status = 403), (status = 409)))]
pub async fn create_holiday(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<HolidayBody>,
) -> Result<(StatusCode, Json<HolidayBody>), ApiError> {
    text("name", &req.name, 200)?;
    let kind = [HolidayKind::Public, HolidayKind::Company, HolidayKind::Optional]
        .into_iter()
        .find(|k| k.as_str() == req.kind)
        .ok_or_else(|| invalid("kind", format!("{:?} is not public, company or optional", req.kind)))?;
    let site =
        req.site_id.as_deref().map(str::parse::<protocol::SiteId>).transpose().map_err(|e| invalid("site_id", e))?;
    let holiday = Holiday { date: req.date, name: req.name.clone(), kind, site };
    Ok((StatusCode::CREATED, Json(add_holiday(&state, &caller, holiday).await?)))
}

fn holiday_body(id: i64, h: &Holiday) -> HolidayBody {
    HolidayBody {
        id,
        date: h.date,
        name: h.name.clone(),
        kind: h.kind.as_str().to_owned(),
        site_id: h.site.as_ref().map(|s| s.as_str().to_owned()),
    }
}

/// Stores and audits a checked holiday after the caller's check (the API and the web form share it).
///
/// # Errors
/// `403`/`404` from the scope check, `404` for an unknown site.
pub async fn add_holiday(state: &AppState, caller: &Caller, holiday: Holiday) -> Result<HolidayBody, ApiError> {
    let site = holiday.site.as_ref().map(|s| s.as_str().to_owned());
    caller.require(Action::Write, site.as_deref())?;
    let id = state.store.add_holiday(&holiday).await.map_err(store_error)?;
    let body = holiday_body(id, &holiday);
    audit::record(
        &state.store,
        caller,
        Entry::new("create", "holiday", id.to_string()).site(site.as_deref()).after(&body),
    )
    .await;
    Ok(body)
}

/// Removes a holiday (as for adding it).
#[utoipa::path(delete, path = "/api/v1/holidays/{id}", tag = "settings", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_holiday(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    remove_holiday(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes and audits holiday `id` after the caller's checks (the API and the web form share it).
///
/// # Errors
/// `404` for a holiday the caller does not see, `403` from the scope check.
pub async fn remove_holiday(state: &AppState, caller: &Caller, id: i64) -> Result<HolidayBody, ApiError> {
    let all = state.store.holidays().await.map_err(store_error)?;
    let holiday = all
        .into_iter()
        .find(|h| h.id == id && h.holiday.site.as_ref().is_none_or(|s| caller.sees(s.as_str())))
        .ok_or_else(|| not_found("holiday", &id.to_string()))?;
    let site = holiday.holiday.site.as_ref().map(|s| s.as_str().to_owned());
    caller.require(Action::Write, site.as_deref())?;
    state.store.remove_holiday(id).await.map_err(store_error)?;
    let body = holiday_body(id, &holiday.holiday);
    audit::record(
        &state.store,
        caller,
        Entry::new("delete", "holiday", id.to_string()).site(site.as_deref()).before(&body),
    )
    .await;
    Ok(body)
}

//! Employees and the attendance settings: shifts, week-off rules, holidays. Shifts and week-off rules are global
//! (root changes them); a holiday belongs to one site (its admins manage it) or to every site (root).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sites::{scoped_site, SiteFilter};
use super::updates::FieldError;
use super::{invalid, store_error, text, Body};
use crate::access::{Action, Caller};
use crate::attendance::engine::{Holiday, HolidayKind, Shift};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::attendance::masters::EmployeeProfile;
use crate::store::attendance::{format_week_off, mark_horizon, parse_week_off};

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
        }
    }

    /// The store's profile of this employee.
    pub fn profile(&self) -> EmployeeProfile {
        EmployeeProfile {
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
        Ok(())
    }
}

/// A shift as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShiftInfo {
    pub code: String,
    pub name: String,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub grace_late_in_mins: i64,
    pub grace_early_out_mins: i64,
    pub min_half_day_mins: i64,
    pub max_work_for_half_day_mins: i64,
}

/// A shift to create: the engine's defaults (see `Shift::new`) with these fields overridden.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShift {
    pub code: String,
    pub name: String,
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// Minutes of grace before an arrival counts as late.
    pub grace_late_in_mins: Option<i64>,
    /// Minutes of grace before a departure counts as early.
    pub grace_early_out_mins: Option<i64>,
    /// Minutes of work below which the day is absent (half day from there).
    pub min_half_day_mins: Option<i64>,
    /// Minutes of work up to which the day is a half day.
    pub max_work_for_half_day_mins: Option<i64>,
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

async fn visible_employee(state: &AppState, caller: &Caller, id: &str) -> Result<Employee, ApiError> {
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

/// Creates an employee (root, or admin of the site).
#[utoipa::path(post, path = "/api/v1/employees", tag = "employees", request_body = Employee,
    responses((status = 201, body = Employee), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn create_employee(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<Employee>,
) -> Result<(StatusCode, Json<Employee>), ApiError> {
    req.validate()?;
    caller.require(Action::Write, Some(&req.site_id))?;
    state.store.add_employee(&req.employee_id, &req.name, Some(&req.site_id)).await.map_err(store_error)?;
    let from = req.date_of_joining.unwrap_or_else(mark_horizon);
    state.store.update_employee_profile(&req.profile(), from).await.map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(req)))
}

/// Replaces an employee's profile (root, or admin of both the old and the new site).
#[utoipa::path(put, path = "/api/v1/employees/{id}", tag = "employees", params(("id" = String, Path)),
    request_body = Employee, responses((status = 200, body = Employee), (status = 400), (status = 403), (status = 404)))]
pub async fn update_employee(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(req): Body<Employee>,
) -> Result<Json<Employee>, ApiError> {
    req.validate()?;
    if req.employee_id != id {
        return Err(invalid("employee_id", format!("{:?} differs from the path's {id:?}", req.employee_id)));
    }
    let old = visible_employee(&state, &caller, &id).await?;
    caller.require(Action::Write, Some(&old.site_id))?;
    caller.require(Action::Write, Some(&req.site_id))?;
    let from = req.date_of_joining.unwrap_or_else(mark_horizon);
    state.store.update_employee_profile(&req.profile(), from).await.map_err(store_error)?;
    Ok(Json(req))
}

/// Every shift.
#[utoipa::path(get, path = "/api/v1/shifts", tag = "settings", responses((status = 200, body = [ShiftInfo])))]
pub async fn list_shifts(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<ShiftInfo>>, ApiError> {
    caller.require(Action::Read, None)?;
    let shifts = state.store.shifts().await.map_err(store_error)?;
    Ok(Json(
        shifts
            .into_iter()
            .map(|s| ShiftInfo {
                grace_late_in_mins: s.shift.grace_late_in.num_minutes(),
                grace_early_out_mins: s.shift.grace_early_out.num_minutes(),
                min_half_day_mins: s.shift.min_half_day.num_minutes(),
                max_work_for_half_day_mins: s.shift.max_work_for_half_day.num_minutes(),
                code: s.shift.code,
                name: s.name,
                start: s.shift.start,
                end: s.shift.end,
            })
            .collect(),
    ))
}

/// Creates a shift (root).
#[utoipa::path(post, path = "/api/v1/shifts", tag = "settings", request_body = NewShift,
    responses((status = 201), (status = 400), (status = 403), (status = 409)))]
pub async fn create_shift(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewShift>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::Write, None)?;
    text("code", &req.code, 50)?;
    text("name", &req.name, 200)?;
    let mut shift = Shift::new(&req.code, req.start, req.end);
    let minutes = |field: &str, v: Option<i64>, default: chrono::Duration| -> Result<chrono::Duration, ApiError> {
        match v {
            None => Ok(default),
            Some(m) if (0..=24 * 60).contains(&m) => Ok(chrono::Duration::minutes(m)),
            Some(m) => Err(invalid(field, format!("{m} is not between 0 and 1440 minutes"))),
        }
    };
    shift.grace_late_in = minutes("grace_late_in_mins", req.grace_late_in_mins, shift.grace_late_in)?;
    shift.grace_early_out = minutes("grace_early_out_mins", req.grace_early_out_mins, shift.grace_early_out)?;
    shift.min_half_day = minutes("min_half_day_mins", req.min_half_day_mins, shift.min_half_day)?;
    shift.max_work_for_half_day =
        minutes("max_work_for_half_day_mins", req.max_work_for_half_day_mins, shift.max_work_for_half_day)?;
    state.store.create_shift(&req.name, &shift).await.map_err(store_error)?;
    Ok(StatusCode::CREATED)
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
    responses((status = 201, body = HolidayBody), (status = 400), (status = 403)))]
pub async fn create_holiday(
    State(state): State<AppState>,
    caller: Caller,
    Body(mut req): Body<HolidayBody>,
) -> Result<(StatusCode, Json<HolidayBody>), ApiError> {
    text("name", &req.name, 200)?;
    let kind = [HolidayKind::Public, HolidayKind::Company, HolidayKind::Optional]
        .into_iter()
        .find(|k| k.as_str() == req.kind)
        .ok_or_else(|| invalid("kind", format!("{:?} is not public, company or optional", req.kind)))?;
    let site =
        req.site_id.as_deref().map(str::parse::<protocol::SiteId>).transpose().map_err(|e| invalid("site_id", e))?;
    caller.require(Action::Write, req.site_id.as_deref())?;
    let holiday = Holiday { date: req.date, name: req.name.clone(), kind, site };
    req.id = state.store.add_holiday(&holiday).await.map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(req)))
}

/// Removes a holiday (as for adding it).
#[utoipa::path(delete, path = "/api/v1/holidays/{id}", tag = "settings", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_holiday(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let all = state.store.holidays().await.map_err(store_error)?;
    let holiday = all
        .into_iter()
        .find(|h| h.id == id && h.holiday.site.as_ref().is_none_or(|s| caller.sees(s.as_str())))
        .ok_or_else(|| not_found("holiday", &id.to_string()))?;
    caller.require(Action::Write, holiday.holiday.site.as_ref().map(|s| s.as_str()))?;
    state.store.remove_holiday(id).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

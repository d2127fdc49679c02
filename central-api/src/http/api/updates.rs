//! Update endpoints for settings and devices: `PUT /api/v1/shifts/{code}`, `PUT /api/v1/week-off-rules/{code}`
//! (root; the employees on the shift or rule get their days from `effective_from` marked for recomputation through
//! the store) and `PUT /api/v1/devices/{serial}` (root, or admin of the device's site). The checks that turn a
//! submitted shift or device into a valid one live here as plain functions returning a [`FieldError`], so the web
//! forms refuse exactly what the API refuses, with the same field names.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sites::check_zone;
use super::{invalid, store_error, text, Body};
use crate::access::{Action, Caller};
use crate::attendance::engine::{Shift, ShiftError};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::admin::{DeviceRecord, NewDevice, DEVICE_STATUSES};
use crate::store::attendance::parse_week_off;

/// A refused value: the field it was in and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl std::fmt::Display) -> Self {
        Self { field, message: message.to_string() }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        invalid(e.field, e.message)
    }
}

/// A shift's new settings. Minutes left out keep their current value (the engine's defaults for a new shift).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShiftChange {
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
    /// First day the change applies to (its days are recomputed from there, at most 400 days back); today when
    /// absent.
    pub effective_from: Option<NaiveDate>,
}

/// A week-off rule's new name and spec (`sun`, `sun,sat#2,sat#4`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeekOffRuleChange {
    pub name: String,
    pub spec: String,
    /// First day the change applies to; today when absent.
    pub effective_from: Option<NaiveDate>,
}

/// A device's new settings; its serial and site do not change.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceChange {
    pub name: String,
    pub model: Option<String>,
    pub ip: Option<String>,
    pub port: Option<u16>,
    /// `zk-tcp`, `zk-udp`, `adms`, `serial`, `modbus`.
    pub kind: String,
    /// IANA zone of the device clock; the site's when absent.
    pub time_zone: Option<String>,
    /// `IN`, `OUT` or `BOTH` (default).
    pub direction: Option<String>,
    /// `active` (default) or `inactive`.
    pub status: Option<String>,
}

/// The shift `code` becomes after `change`: `current`'s settings (or the engine's defaults for a new shift) with the
/// submitted fields replaced, validated.
///
/// # Errors
/// The first field out of range, named as in [`ShiftChange`].
pub fn changed_shift(code: &str, current: Option<&Shift>, change: &ShiftChange) -> Result<Shift, FieldError> {
    if code.trim().is_empty() || code.chars().count() > 50 {
        return Err(FieldError::new("code", "must be 1 to 50 characters"));
    }
    if change.name.trim().is_empty() || change.name.chars().count() > 200 {
        return Err(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let mut shift = match current {
        Some(current) => {
            let fresh = Shift::new(code, change.start, change.end);
            Shift { start: fresh.start, end: fresh.end, ..current.clone() }
        }
        None => Shift::new(code, change.start, change.end),
    };
    let minutes = |field: &'static str, v: Option<i64>, current: chrono::Duration| match v {
        None => Ok(current),
        Some(m) if (0..=24 * 60).contains(&m) => Ok(chrono::Duration::minutes(m)),
        Some(m) => Err(FieldError::new(field, format!("{m} is not between 0 and 1440 minutes"))),
    };
    shift.grace_late_in = minutes("grace_late_in_mins", change.grace_late_in_mins, shift.grace_late_in)?;
    shift.grace_early_out = minutes("grace_early_out_mins", change.grace_early_out_mins, shift.grace_early_out)?;
    shift.min_half_day = minutes("min_half_day_mins", change.min_half_day_mins, shift.min_half_day)?;
    shift.max_work_for_half_day =
        minutes("max_work_for_half_day_mins", change.max_work_for_half_day_mins, shift.max_work_for_half_day)?;
    shift.validate().map_err(|e| FieldError::new(shift_error_field(&e), e))?;
    Ok(shift)
}

/// The [`ShiftChange`] field a validation error is about.
fn shift_error_field(e: &ShiftError) -> &'static str {
    match e {
        ShiftError::ZeroLength { .. } => "end",
        ShiftError::Negative { field, .. } | ShiftError::TooLong { field, .. } => match *field {
            "grace_late_in" => "grace_late_in_mins",
            "grace_early_out" => "grace_early_out_mins",
            "min_half_day" => "min_half_day_mins",
            "max_work_for_half_day" => "max_work_for_half_day_mins",
            other => other,
        },
        ShiftError::HalfDayBand { .. } => "min_half_day_mins",
        ShiftError::LunchOutsideShift { .. } => "lunch_break_start",
        ShiftError::EmptyCode { .. } => "code",
    }
}

/// The device `current` becomes after `change`, checked; `site_zone` is the default zone.
///
/// # Errors
/// The first field that is wrong, named as in [`DeviceChange`].
pub fn changed_device(current: &NewDevice, site_zone: &str, change: &DeviceChange) -> Result<DeviceRecord, FieldError> {
    if change.name.trim().is_empty() || change.name.chars().count() > 200 {
        return Err(FieldError::new("name", "must be 1 to 200 characters"));
    }
    if !["zk-tcp", "zk-udp", "adms", "serial", "modbus"].contains(&change.kind.as_str()) {
        return Err(FieldError::new(
            "kind",
            format!("{:?} is not zk-tcp, zk-udp, adms, serial or modbus", change.kind),
        ));
    }
    let direction = change.direction.clone().unwrap_or_else(|| "BOTH".to_owned());
    if !["IN", "OUT", "BOTH"].contains(&direction.as_str()) {
        return Err(FieldError::new("direction", format!("{direction:?} is not IN, OUT or BOTH")));
    }
    let time_zone = change.time_zone.clone().unwrap_or_else(|| site_zone.to_owned());
    if time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(FieldError::new("time_zone", format!("{time_zone:?} is not an IANA time zone")));
    }
    let status = change.status.clone().unwrap_or_else(|| "active".to_owned());
    if !DEVICE_STATUSES.contains(&status.as_str()) {
        return Err(FieldError::new("status", format!("{status:?} is not active or inactive")));
    }
    if let Some(ip) = &change.ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(FieldError::new("ip", format!("{ip:?} is not an IP address")));
        }
    }
    Ok(DeviceRecord {
        device: NewDevice {
            name: change.name.clone(),
            model: change.model.clone(),
            ip: change.ip.clone(),
            port: change.port,
            kind: change.kind.clone(),
            time_zone,
            direction,
            ..current.clone()
        },
        status,
    })
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} {id:?} does not exist"))
}

/// Changes a shift (root); the days of its employees from `effective_from` are recomputed.
#[utoipa::path(put, path = "/api/v1/shifts/{code}", tag = "settings", params(("code" = String, Path)),
    request_body = ShiftChange, responses((status = 204), (status = 400), (status = 403), (status = 404)))]
pub async fn update_shift(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    Body(change): Body<ShiftChange>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::Write, None)?;
    let shifts = state.store.shifts().await.map_err(store_error)?;
    let current = shifts.into_iter().find(|s| s.shift.code == code).ok_or_else(|| not_found("shift", &code))?;
    let shift = changed_shift(&code, Some(&current.shift), &change)?;
    let from = change.effective_from.unwrap_or_else(today);
    state.store.update_shift(change.name.trim(), &shift, from).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a week-off rule (root); the days of its employees from `effective_from` are recomputed.
#[utoipa::path(put, path = "/api/v1/week-off-rules/{code}", tag = "settings", params(("code" = String, Path)),
    request_body = WeekOffRuleChange, responses((status = 204), (status = 400), (status = 403), (status = 404)))]
pub async fn update_week_off_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    Body(change): Body<WeekOffRuleChange>,
) -> Result<StatusCode, ApiError> {
    caller.require(Action::Write, None)?;
    text("name", &change.name, 200)?;
    let rule = parse_week_off(&change.spec).map_err(|e| invalid("spec", e))?;
    let from = change.effective_from.unwrap_or_else(today);
    state.store.update_week_off_rule(&code, change.name.trim(), &rule, from).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a device's name, model, address, driver kind, zone, direction or status (root, or admin of its site).
#[utoipa::path(put, path = "/api/v1/devices/{serial}", tag = "sites", params(("serial" = String, Path)),
    request_body = DeviceChange, responses((status = 204), (status = 400), (status = 403), (status = 404)))]
pub async fn update_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(serial): Path<String>,
    Body(change): Body<DeviceChange>,
) -> Result<StatusCode, ApiError> {
    let current = state.store.device(&serial).await.map_err(store_error)?;
    let current = current.filter(|d| caller.sees(&d.device.site_id)).ok_or_else(|| not_found("device", &serial))?;
    caller.require(Action::Write, Some(&current.device.site_id))?;
    let site = state.store.site(&current.device.site_id).await.map_err(store_error)?;
    let site = site.ok_or_else(|| not_found("site", &current.device.site_id))?;
    if let Some(zone) = &change.time_zone {
        check_zone("time_zone", zone)?;
    }
    let record = changed_device(&current.device, &site.time_zone, &change)?;
    state.store.update_device(&record).await.map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(start: (u32, u32), end: (u32, u32)) -> ShiftChange {
        ShiftChange {
            name: "General".into(),
            start: NaiveTime::from_hms_opt(start.0, start.1, 0).expect("time"),
            end: NaiveTime::from_hms_opt(end.0, end.1, 0).expect("time"),
            ..ShiftChange::default()
        }
    }

    #[test]
    fn a_shift_change_keeps_what_it_does_not_name() {
        let mut current = Shift::new("GEN", NaiveTime::MIN, NaiveTime::from_hms_opt(8, 0, 0).expect("time"));
        current.grace_late_in = chrono::Duration::minutes(7);
        current.debounce = chrono::Duration::seconds(30);
        let mut c = change((9, 30), (18, 0));
        c.grace_early_out_mins = Some(5);
        let shift = changed_shift("GEN", Some(&current), &c).expect("valid");
        assert_eq!(shift.start, NaiveTime::from_hms_opt(9, 30, 0).expect("time"));
        assert_eq!(shift.grace_late_in, chrono::Duration::minutes(7));
        assert_eq!(shift.grace_early_out, chrono::Duration::minutes(5));
        assert_eq!(shift.debounce, chrono::Duration::seconds(30));
    }

    #[test]
    fn shift_refusals_name_the_field() {
        let field = |c: &ShiftChange| changed_shift("GEN", None, c).expect_err("refused").field;
        assert_eq!(field(&change((9, 0), (9, 0))), "end");
        let mut c = change((9, 0), (18, 0));
        c.grace_late_in_mins = Some(5000);
        assert_eq!(field(&c), "grace_late_in_mins");
        c.grace_late_in_mins = Some(600);
        assert_eq!(field(&c), "grace_late_in_mins", "longer than the 9 h shift");
        let mut c = change((9, 0), (18, 0));
        c.min_half_day_mins = Some(400);
        c.max_work_for_half_day_mins = Some(300);
        assert_eq!(field(&c), "min_half_day_mins");
        let mut c = change((9, 0), (18, 0));
        c.name = " ".into();
        assert_eq!(field(&c), "name");
        assert_eq!(changed_shift("", None, &change((9, 0), (18, 0))).expect_err("refused").field, "code");
    }

    #[test]
    fn device_refusals_name_the_field() {
        let current = NewDevice {
            serial: "DEV-1".into(),
            site_id: "A".into(),
            name: "Gate".into(),
            model: None,
            ip: None,
            port: None,
            kind: "zk-tcp".into(),
            time_zone: "Asia/Kolkata".into(),
            direction: "BOTH".into(),
        };
        let ok = DeviceChange {
            name: "Main gate".into(),
            model: Some("K40".into()),
            ip: Some("10.0.0.5".into()),
            port: Some(4370),
            kind: "zk-udp".into(),
            time_zone: None,
            direction: Some("IN".into()),
            status: Some("inactive".into()),
        };
        let record = changed_device(&current, "Asia/Dubai", &ok).expect("valid");
        assert_eq!((record.device.serial.as_str(), record.device.site_id.as_str()), ("DEV-1", "A"));
        assert_eq!((record.device.time_zone.as_str(), record.status.as_str()), ("Asia/Dubai", "inactive"));
        for (bad, field) in [
            (DeviceChange { kind: "telnet".into(), ..ok.clone() }, "kind"),
            (DeviceChange { direction: Some("UP".into()), ..ok.clone() }, "direction"),
            (DeviceChange { time_zone: Some("Mars/Base".into()), ..ok.clone() }, "time_zone"),
            (DeviceChange { status: Some("gone".into()), ..ok.clone() }, "status"),
            (DeviceChange { ip: Some("10.0.0".into()), ..ok.clone() }, "ip"),
            (DeviceChange { name: String::new(), ..ok.clone() }, "name"),
        ] {
            assert_eq!(changed_device(&current, "Asia/Dubai", &bad).expect_err("refused").field, field);
        }
    }
}

//! Update endpoints for settings and devices: `PUT /api/v1/week-off-rules/{code}` (root; the employees on the rule
//! get their days from `effective_from` marked for recomputation through the store) and
//! `PUT /api/v1/devices/{serial}` (root, or admin of the device's site). The checks that turn a submitted device
//! into a valid one live here as plain functions returning a [`FieldError`], so the web forms refuse exactly what
//! the API refuses, with the same field names. (Shifts: [`super::shifts`].)

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::sites::check_zone;
use super::{invalid, store_error, text, Body};
use crate::access::{Action, Caller};
use crate::audit::{self, Entry};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::admin::{DeviceRecord, NewDevice, DEVICE_STATUSES};
use crate::store::attendance::{format_week_off, parse_week_off};

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
    /// The driver's settings (see `POST /api/v1/devices`); the stored ones are kept when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// The agent that reads the device; `null`: every managed agent of the site; kept when absent.
    #[serde(default, deserialize_with = "super::shifts::present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub agent_id: Option<Option<String>>,
}

/// The device `current` becomes after `change`, checked; `site_zone` is the default zone.
///
/// # Errors
/// The first field that is wrong, named as in [`DeviceChange`].
pub fn changed_device(current: &NewDevice, site_zone: &str, change: &DeviceChange) -> Result<DeviceRecord, FieldError> {
    if change.name.trim().is_empty() || change.name.chars().count() > 200 {
        return Err(FieldError::new("name", "must be 1 to 200 characters"));
    }
    if !crate::fleet::entry::KINDS.contains(&change.kind.as_str()) {
        return Err(FieldError::new(
            "kind",
            format!("{:?} is not one of {}", change.kind, crate::fleet::entry::KINDS.join(", ")),
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

fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} {id:?} does not exist"))
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
    let rules = state.store.week_off_rules().await.map_err(store_error)?;
    let old = rules.into_iter().find(|r| r.code == code).ok_or_else(|| not_found("week-off rule", &code))?;
    let from = state.backfill_from(change.effective_from);
    state.store.update_week_off_rule(&code, change.name.trim(), &rule, from).await.map_err(store_error)?;
    let before = serde_json::json!({"code": code, "name": old.name, "spec": format_week_off(&old.rule)});
    let after = serde_json::json!({"code": code, "name": change.name.trim(), "spec": format_week_off(&rule),
        "effective_from": from});
    audit::record(&state.store, &caller, Entry::new("update", "week_off_rule", &code).before(&before).after(&after))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a device's name, model, address, driver kind, zone, direction, status, settings or agent (root, or admin
/// of its site), checked like a new device; managed agents apply the change in place.
#[utoipa::path(put, path = "/api/v1/devices/{serial}", tag = "sites", params(("serial" = String, Path)),
    request_body = DeviceChange, responses((status = 204), (status = 400), (status = 403), (status = 404)))]
pub async fn update_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(serial): Path<String>,
    Body(change): Body<DeviceChange>,
) -> Result<StatusCode, ApiError> {
    if let Some(zone) = &change.time_zone {
        check_zone("time_zone", zone)?;
    }
    super::fleet::change_device(&state, &caller, &serial, &change).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            settings: None,
            agent_id: None,
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

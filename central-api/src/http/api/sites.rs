//! Sites (with their settings), agents (with their tokens) and devices. Every change is audited.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::updates::FieldError;
use super::{invalid, store_error, text, Body};
use crate::access::{Action, Caller};
use crate::audit::{self, Entry};
use crate::auth::AgentToken;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::listing::{AgentInfo, DeviceInfo, SiteInfo};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SiteFilter {
    /// Only this site's records.
    pub site: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSite {
    pub site_id: String,
    pub name: String,
    /// IANA zone, e.g. `Asia/Kolkata`.
    pub time_zone: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub agent_id: String,
    pub site_id: String,
}

/// An agent just created: its token is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAgent {
    pub agent_id: String,
    pub site_id: String,
    pub token: String,
    /// The agent's MQTT broker user name (for `mosquitto_passwd`; the agent uses it when its transport is MQTT).
    pub broker_username: String,
    /// The agent's MQTT broker password, derived from its token (the agent derives the same one; `central-api
    /// mqtt-login` says it again later).
    pub broker_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceBody {
    pub serial: String,
    pub site_id: String,
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
    /// The driver's settings beyond the fields above: the agent's `[[device]]` keys (`comm_key`,
    /// `poll_interval_secs`, `port` of a serial line, `url` of a Hikvision terminal...), checked like
    /// `edge-agent check-config` checks a file.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// The agent that reads the device; every managed agent of the site when absent.
    pub agent_id: Option<String>,
}

pub(super) fn check_zone(field: &str, zone: &str) -> Result<(), ApiError> {
    zone.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| invalid(field, format!("{zone:?} is not an IANA time zone")))
}

/// A filter's site, checked against the caller's scope.
pub(super) fn scoped_site<'a>(caller: &Caller, site: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
    if let Some(site) = site {
        caller.require(Action::Read, Some(site))?;
    }
    Ok(site)
}

/// Sites the caller sees.
#[utoipa::path(get, path = "/api/v1/sites", tag = "sites", responses((status = 200, body = [SiteInfo])))]
pub async fn list_sites(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<SiteInfo>>, ApiError> {
    Ok(Json(state.store.list_sites(caller.scope()).await.map_err(store_error)?))
}

/// Creates a site (root).
#[utoipa::path(post, path = "/api/v1/sites", tag = "sites", request_body = NewSite,
    responses((status = 201, body = SiteInfo), (status = 400), (status = 403), (status = 409)))]
pub async fn create_site(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewSite>,
) -> Result<(StatusCode, Json<SiteInfo>), ApiError> {
    caller.require(Action::Write, None)?;
    req.site_id.parse::<protocol::SiteId>().map_err(|e| invalid("site_id", e))?;
    text("name", &req.name, 200)?;
    check_zone("time_zone", &req.time_zone)?;
    state.store.create_site(&req.site_id, &req.name, &req.time_zone).await.map_err(store_error)?;
    let site = SiteInfo {
        site_id: req.site_id,
        name: req.name,
        time_zone: req.time_zone,
        sandwich: "off".to_owned(),
        default_week_off_rule: None,
    };
    audit::record(
        &state.store,
        &caller,
        Entry::new("create", "site", &site.site_id).site(Some(&site.site_id)).after(&site),
    )
    .await;
    Ok((StatusCode::CREATED, Json(site)))
}

/// A site's new settings: anything left out keeps its value.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteChange {
    pub name: Option<String>,
    /// IANA zone, e.g. `Asia/Kolkata`: "now" and "today" for the site's days.
    pub time_zone: Option<String>,
    /// `off`, `week_offs` or `week_offs_and_holidays`: which runs of days off the sandwich rule may turn into
    /// absences when the working days on both sides are absences.
    pub sandwich: Option<String>,
    /// The week-off rule of employees without one of their own; `null`: none (no weekly off).
    #[serde(default, deserialize_with = "super::shifts::present", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, nullable)]
    pub default_week_off_rule: Option<Option<String>>,
    /// First day a change of zone, sandwich setting or default week-off rule applies to: the site's days from then
    /// (within the backfill window) are recomputed. Yesterday when absent.
    pub effective_from: Option<chrono::NaiveDate>,
}

/// The site `id` the caller sees, with its settings.
///
/// # Errors
/// `404` for a site the caller does not see.
pub async fn visible_site(state: &AppState, caller: &Caller, id: &str) -> Result<SiteInfo, ApiError> {
    let sites = state.store.list_sites(caller.scope()).await.map_err(store_error)?;
    sites
        .into_iter()
        .find(|s| s.site_id == id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("site {id:?} does not exist")))
}

/// One site with its settings.
#[utoipa::path(get, path = "/api/v1/sites/{id}", tag = "sites", params(("id" = String, Path)),
    responses((status = 200, body = SiteInfo), (status = 401), (status = 404), (status = 503)))]
pub async fn get_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SiteInfo>, ApiError> {
    Ok(Json(visible_site(&state, &caller, &id).await?))
}

/// Changes a site's name, zone, sandwich setting or default week-off rule (root, or admin of the site); a change
/// of anything but the name recomputes the site's days from `effective_from`.
#[utoipa::path(put, path = "/api/v1/sites/{id}", tag = "sites", params(("id" = String, Path)),
    request_body = SiteChange, responses((status = 200, body = SiteInfo), (status = 400), (status = 401),
        (status = 403), (status = 404), (status = 413), (status = 503)))]
pub async fn update_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<SiteChange>,
) -> Result<Json<SiteInfo>, ApiError> {
    Ok(Json(change_site(&state, &caller, &id, &change).await?))
}

/// The site `old` becomes after `change`, checked.
///
/// # Errors
/// The first field that is wrong, named.
pub fn changed_site(old: &SiteInfo, change: &SiteChange) -> Result<SiteInfo, FieldError> {
    let mut new = old.clone();
    if let Some(name) = &change.name {
        if name.trim().is_empty() || name.chars().count() > 200 {
            return Err(FieldError::new("name", "must be 1 to 200 characters"));
        }
        new.name = name.trim().to_owned();
    }
    if let Some(zone) = &change.time_zone {
        if zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(FieldError::new("time_zone", format!("{zone:?} is not an IANA time zone")));
        }
        new.time_zone = zone.clone();
    }
    if let Some(sandwich) = &change.sandwich {
        if crate::attendance::engine::SandwichSetting::from_name(sandwich).is_none() {
            return Err(FieldError::new(
                "sandwich",
                format!("{sandwich:?} is not off, week_offs or week_offs_and_holidays"),
            ));
        }
        new.sandwich = sandwich.clone();
    }
    if let Some(rule) = &change.default_week_off_rule {
        new.default_week_off_rule = rule.clone().filter(|r| !r.trim().is_empty());
    }
    Ok(new)
}

/// Checks, stores and audits a change of site `id` (the API, the web form and the command line share it).
///
/// # Errors
/// `404` for a site the caller does not see, `403` for a viewer, `400` naming the field.
pub async fn change_site(
    state: &AppState,
    caller: &Caller,
    id: &str,
    change: &SiteChange,
) -> Result<SiteInfo, ApiError> {
    let old = visible_site(state, caller, id).await?;
    caller.require(Action::Write, Some(id))?;
    let new = changed_site(&old, change)?;
    let attendance_changed = (&new.time_zone, &new.sandwich, &new.default_week_off_rule)
        != (&old.time_zone, &old.sandwich, &old.default_week_off_rule);
    let from = attendance_changed.then(|| state.backfill_from(change.effective_from));
    state.store.update_site_settings(&new, from).await.map_err(store_error)?;
    let mut after = serde_json::to_value(&new).unwrap_or_default();
    if let (Some(from), Some(map)) = (from, after.as_object_mut()) {
        map.insert("recomputed_from".into(), serde_json::json!(from));
    }
    audit::record(&state.store, caller, Entry::new("update", "site", id).site(Some(id)).before(&old).after(&after))
        .await;
    Ok(new)
}

/// Agents of the caller's sites.
#[utoipa::path(get, path = "/api/v1/agents", tag = "sites", params(SiteFilter),
    responses((status = 200, body = [AgentInfo])))]
pub async fn list_agents(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SiteFilter>,
) -> Result<Json<Vec<AgentInfo>>, ApiError> {
    let site = scoped_site(&caller, q.site.as_deref())?;
    Ok(Json(state.store.list_agents(caller.scope(), site).await.map_err(store_error)?))
}

/// Creates an agent on a site and issues its token (root, or admin of the site).
#[utoipa::path(post, path = "/api/v1/agents", tag = "sites", request_body = NewAgent,
    responses((status = 201, body = CreatedAgent), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn create_agent(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewAgent>,
) -> Result<(StatusCode, Json<CreatedAgent>), ApiError> {
    Ok((StatusCode::CREATED, Json(register_agent(&state, &caller, req).await?)))
}

/// Registers an agent after the caller's check and returns its token (the API and the dashboard's form share it).
///
/// # Errors
/// `400` naming `agent_id`, `403`/`404` from the scope check, `409` for a taken id.
pub async fn register_agent(state: &AppState, caller: &Caller, req: NewAgent) -> Result<CreatedAgent, ApiError> {
    let agent: protocol::AgentId = req.agent_id.parse().map_err(|e| invalid("agent_id", e))?;
    caller.require(Action::Write, Some(&req.site_id))?;
    let token = AgentToken::generate(agent.clone());
    state.store.create_agent(agent.as_str(), &req.site_id, &token.secret_hash()).await.map_err(store_error)?;
    let after = serde_json::json!({ "agent_id": agent.as_str(), "site_id": req.site_id });
    audit::record(
        &state.store,
        caller,
        Entry::new("create", "agent", agent.as_str()).site(Some(&req.site_id)).after(&after),
    )
    .await;
    let broker_password = protocol::AgentKeys::from_secret_hash(&token.secret_hash()).broker_password().to_owned();
    Ok(CreatedAgent {
        agent_id: agent.as_str().to_owned(),
        broker_username: agent.as_str().to_owned(),
        site_id: req.site_id,
        token: token.reveal(),
        broker_password,
    })
}

/// Revokes an agent's token (root, or admin of its site).
#[utoipa::path(post, path = "/api/v1/agents/{id}/revoke", tag = "sites", params(("id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn revoke_agent(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    revoke_agent_checked(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes agent `id` after the caller's check (the API and the dashboard's button share it).
///
/// # Errors
/// `404` for an agent the caller does not see, `403` from the scope check.
pub async fn revoke_agent_checked(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let agent = state.store.agent(id).await.map_err(store_error)?;
    let Some(agent) = agent.filter(|a| caller.sees(&a.site_id)) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("agent {id:?} does not exist")));
    };
    caller.require(Action::Write, Some(&agent.site_id))?;
    state.store.revoke_agent(id).await.map_err(store_error)?;
    let before = serde_json::json!({ "agent_id": id, "site_id": agent.site_id, "revoked": false });
    let after = serde_json::json!({ "agent_id": id, "site_id": agent.site_id, "revoked": true });
    audit::record(
        &state.store,
        caller,
        Entry::new("revoke", "agent", id).site(Some(&agent.site_id)).before(&before).after(&after),
    )
    .await;
    Ok(())
}

/// Devices of the caller's sites.
#[utoipa::path(get, path = "/api/v1/devices", tag = "sites", params(SiteFilter),
    responses((status = 200, body = [DeviceInfo])))]
pub async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SiteFilter>,
) -> Result<Json<Vec<DeviceInfo>>, ApiError> {
    let site = scoped_site(&caller, q.site.as_deref())?;
    Ok(Json(state.store.list_devices(caller.scope(), site).await.map_err(store_error)?))
}

/// Registers a device (root, or admin of the site), with its driver settings checked like `check-config` checks a
/// file; managed agents of the site start reading it within seconds.
#[utoipa::path(post, path = "/api/v1/devices", tag = "sites", request_body = NewDeviceBody,
    responses((status = 201, body = super::fleet::DeviceDetail), (status = 400), (status = 403), (status = 404),
        (status = 409)))]
pub async fn create_device(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewDeviceBody>,
) -> Result<(StatusCode, Json<super::fleet::DeviceDetail>), ApiError> {
    if let Some(zone) = &req.time_zone {
        check_zone("time_zone", zone)?;
    }
    Ok((StatusCode::CREATED, Json(super::fleet::add_device(&state, &caller, req).await?)))
}

//! Sites, agents (with their tokens) and devices.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{invalid, store_error, text, Body};
use crate::access::{Action, Caller};
use crate::auth::AgentToken;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::admin::NewDevice;
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
    Ok((StatusCode::CREATED, Json(SiteInfo { site_id: req.site_id, name: req.name, time_zone: req.time_zone })))
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
    Ok(CreatedAgent { agent_id: agent.as_str().to_owned(), site_id: req.site_id, token: token.reveal() })
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
    state.store.revoke_agent(id).await.map_err(store_error)
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

/// Registers a device (root, or admin of the site).
#[utoipa::path(post, path = "/api/v1/devices", tag = "sites", request_body = NewDeviceBody,
    responses((status = 201), (status = 400), (status = 403), (status = 404), (status = 409)))]
pub async fn create_device(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewDeviceBody>,
) -> Result<StatusCode, ApiError> {
    req.serial.parse::<protocol::DeviceSerial>().map_err(|e| invalid("serial", e))?;
    text("name", &req.name, 200)?;
    if !["zk-tcp", "zk-udp", "adms", "serial", "modbus"].contains(&req.kind.as_str()) {
        return Err(invalid("kind", format!("{:?} is not zk-tcp, zk-udp, adms, serial or modbus", req.kind)));
    }
    let direction = req.direction.unwrap_or_else(|| "BOTH".to_owned());
    if !["IN", "OUT", "BOTH"].contains(&direction.as_str()) {
        return Err(invalid("direction", format!("{direction:?} is not IN, OUT or BOTH")));
    }
    caller.require(Action::Write, Some(&req.site_id))?;
    let site = state.store.site(&req.site_id).await.map_err(store_error)?.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("site {:?} does not exist", req.site_id))
    })?;
    let time_zone = req.time_zone.unwrap_or(site.time_zone);
    check_zone("time_zone", &time_zone)?;
    let device = NewDevice {
        serial: req.serial,
        site_id: req.site_id,
        name: req.name,
        model: req.model,
        ip: req.ip,
        port: req.port,
        kind: req.kind,
        time_zone,
        direction,
    };
    state.store.add_device(&device).await.map_err(store_error)?;
    Ok(StatusCode::CREATED)
}

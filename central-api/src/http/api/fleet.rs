//! Running sites from the central office (issue 17): devices with their driver settings (add, change, remove, read)
//! and remote commands to one device or every device of a site. Employees on devices (push, remove, leavers, who
//! holds whom, fingerprint copies) are in [`super::fleet_users`].
//!
//! Every handler asks [`Caller::require`] for the site it touches: another site's administrator gets 404, a viewer
//! 403 for a change. A device's settings are checked by the agent's own code ([`crate::fleet::entry`]) and refused
//! with the API field named (`ip`, `settings.baud_rate`). Every change is audited; a device change raises the site's
//! configuration version, which managed agents pick up within seconds.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{NaiveDate, NaiveDateTime, Utc};
use protocol::{CommandAction, DeviceSerial, PushCommand};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::sites::{NewDeviceBody, SiteFilter};
use super::updates::DeviceChange;
use super::{invalid, page_size, store_error, text};
use crate::access::{Action, Caller};
use crate::audit::{self, Entry};
use crate::fleet::entry;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::admin::{DeviceRecord, NewDevice, DEVICE_STATUSES};
use crate::store::fleet::{CommandRecord, ManagedDeviceRecord, NewCommand};

pub(super) fn not_found(what: &str, id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} {id:?} does not exist"))
}

/// A device as the API shows it: its columns, its settings (secrets masked) and its agent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceDetail {
    pub serial: String,
    pub site_id: String,
    pub name: String,
    pub model: Option<String>,
    pub ip: Option<String>,
    pub port: Option<u16>,
    pub kind: String,
    pub time_zone: String,
    pub direction: String,
    pub status: String,
    /// The driver's settings (the agent's `[[device]]` keys); passwords read as `********`, and sending that back
    /// keeps the stored one.
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    pub agent_id: Option<String>,
    /// The site's configuration version after the last change.
    pub config_version: i64,
}

/// The API's view of a stored device (the dashboard's device page shows the same).
pub fn detail(record: &ManagedDeviceRecord, config_version: i64) -> DeviceDetail {
    let d = &record.record.device;
    let settings: Map<String, Value> = serde_json::from_str(&record.settings_json).unwrap_or_default();
    DeviceDetail {
        serial: d.serial.clone(),
        site_id: d.site_id.clone(),
        name: d.name.clone(),
        model: d.model.clone(),
        ip: d.ip.clone(),
        port: d.port,
        kind: d.kind.clone(),
        time_zone: d.time_zone.clone(),
        direction: d.direction.clone(),
        status: record.record.status.clone(),
        settings: entry::masked(&settings),
        agent_id: record.agent_id.clone(),
        config_version,
    }
}

/// The audit log's view of a device: its columns as before (`device`, `status`), its settings with secrets masked,
/// its agent.
fn audit_view(record: &ManagedDeviceRecord) -> Value {
    let settings: Map<String, Value> = serde_json::from_str(&record.settings_json).unwrap_or_default();
    serde_json::json!({
        "device": record.record.device,
        "status": record.record.status,
        "settings": entry::masked(&settings),
        "agent_id": record.agent_id,
    })
}

/// The device `serial` if the caller sees its site.
async fn visible_device(state: &AppState, caller: &Caller, serial: &str) -> Result<ManagedDeviceRecord, ApiError> {
    let device = state.store.managed_device(serial).await.map_err(store_error)?;
    device.filter(|d| caller.sees(&d.record.device.site_id)).ok_or_else(|| not_found("device", serial))
}

/// Checks an agent assignment: an agent of the same site, not revoked.
async fn check_agent(state: &AppState, site: &str, agent: Option<&str>) -> Result<(), ApiError> {
    let Some(agent) = agent else { return Ok(()) };
    let record = state.store.agent(agent).await.map_err(store_error)?;
    match record {
        Some(a) if a.site_id == site && !a.revoked => Ok(()),
        Some(a) if a.revoked => Err(invalid("agent_id", format!("agent {agent:?} is revoked"))),
        _ => Err(invalid("agent_id", format!("agent {agent:?} is not an agent of site {site:?}"))),
    }
}

/// Checks the settings with the agent's own code; returns them as stored.
fn checked_settings(device: &NewDevice, settings: &Map<String, Value>) -> Result<String, ApiError> {
    entry::entry(device, settings).map_err(|e| invalid(&e.field, e.message))?;
    Ok(Value::Object(settings.clone()).to_string())
}

/// Registers a device with its settings (the API and the dashboard share it).
///
/// # Errors
/// `400` naming the field, `403`/`404` from the scope check, `409` for a serial already registered.
pub async fn add_device(state: &AppState, caller: &Caller, req: NewDeviceBody) -> Result<DeviceDetail, ApiError> {
    req.serial.parse::<DeviceSerial>().map_err(|e| invalid("serial", e))?;
    text("name", &req.name, 200)?;
    let direction = req.direction.clone().unwrap_or_else(|| "BOTH".to_owned());
    if !["IN", "OUT", "BOTH"].contains(&direction.as_str()) {
        return Err(invalid("direction", format!("{direction:?} is not IN, OUT or BOTH")));
    }
    if !entry::KINDS.contains(&req.kind.as_str()) {
        return Err(invalid("kind", format!("{:?} is not one of {}", req.kind, entry::KINDS.join(", "))));
    }
    caller.require(Action::Write, Some(&req.site_id))?;
    let site = state.store.site(&req.site_id).await.map_err(store_error)?;
    let site = site.ok_or_else(|| not_found("site", &req.site_id))?;
    if let Some(ip) = &req.ip {
        ip.parse::<std::net::IpAddr>().map_err(|_| invalid("ip", format!("{ip:?} is not an IP address")))?;
    }
    let device = NewDevice {
        serial: req.serial,
        site_id: req.site_id,
        name: req.name.trim().to_owned(),
        model: req.model,
        ip: req.ip,
        port: req.port,
        kind: req.kind,
        time_zone: req.time_zone.unwrap_or(site.time_zone),
        direction,
    };
    let settings = req.settings.unwrap_or_default();
    let settings_json = checked_settings(&device, &settings)?;
    check_agent(state, &device.site_id, req.agent_id.as_deref()).await?;
    let record = ManagedDeviceRecord {
        record: DeviceRecord { device, status: "active".into() },
        settings_json,
        agent_id: req.agent_id,
    };
    let version = state.store.add_managed_device(&record).await.map_err(store_error)?;
    state.fleet.poke();
    let shown = detail(&record, version);
    let site = shown.site_id.clone();
    audit::record(
        &state.store,
        caller,
        Entry::new("create", "device", &shown.serial).site(Some(&site)).after(&audit_view(&record)),
    )
    .await;
    Ok(shown)
}

/// Changes a device (everything but its serial and site; settings left out are kept), checked like a new one.
///
/// # Errors
/// `400` naming the field, `403`/`404`.
pub async fn change_device(
    state: &AppState,
    caller: &Caller,
    serial: &str,
    change: &DeviceChange,
) -> Result<DeviceDetail, ApiError> {
    let current = visible_device(state, caller, serial).await?;
    let site_id = current.record.device.site_id.clone();
    caller.require(Action::Write, Some(&site_id))?;
    let site = state.store.site(&site_id).await.map_err(store_error)?.ok_or_else(|| not_found("site", &site_id))?;
    let record = super::updates::changed_device(&current.record.device, &site.time_zone, change)?;
    let old: Map<String, Value> = serde_json::from_str(&current.settings_json).unwrap_or_default();
    let settings = match &change.settings {
        Some(new) => entry::unmasked(new, &old),
        None => old,
    };
    let settings_json = checked_settings(&record.device, &settings)?;
    let agent_id = match &change.agent_id {
        Some(agent) => agent.clone().filter(|a| !a.trim().is_empty()),
        None => current.agent_id.clone(),
    };
    check_agent(state, &site_id, agent_id.as_deref()).await?;
    if !DEVICE_STATUSES.contains(&record.status.as_str()) {
        return Err(invalid("status", format!("{:?} is not active or inactive", record.status)));
    }
    let updated = ManagedDeviceRecord { record, settings_json, agent_id };
    let version = state.store.update_managed_device(&updated).await.map_err(store_error)?;
    state.fleet.poke();
    audit::record(
        &state.store,
        caller,
        Entry::new("update", "device", serial)
            .site(Some(&site_id))
            .before(&audit_view(&current))
            .after(&audit_view(&updated)),
    )
    .await;
    Ok(detail(&updated, version))
}

/// Removes a device from the registry (its punches stay in AllLogs); managed agents stop reading it and forward what
/// they buffered from it.
///
/// # Errors
/// `403`/`404`.
pub async fn remove_device(state: &AppState, caller: &Caller, serial: &str) -> Result<i64, ApiError> {
    let current = visible_device(state, caller, serial).await?;
    let site_id = current.record.device.site_id.clone();
    caller.require(Action::Write, Some(&site_id))?;
    let version = state.store.delete_device(serial, &site_id).await.map_err(store_error)?;
    state.fleet.poke();
    audit::record(
        &state.store,
        caller,
        Entry::new("delete", "device", serial).site(Some(&site_id)).before(&audit_view(&current)),
    )
    .await;
    Ok(version)
}

/// One device with its settings (secrets masked).
#[utoipa::path(get, path = "/api/v1/devices/{serial}", tag = "fleet", params(("serial" = String, Path)),
    responses((status = 200, body = DeviceDetail), (status = 404)))]
pub async fn get_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(serial): Path<String>,
) -> Result<Json<DeviceDetail>, ApiError> {
    let device = visible_device(&state, &caller, &serial).await?;
    let version = state.store.config_version(&device.record.device.site_id).await.map_err(store_error)?;
    Ok(Json(detail(&device, version)))
}

/// Removes a device (root, or admin of its site).
#[utoipa::path(delete, path = "/api/v1/devices/{serial}", tag = "fleet", params(("serial" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(serial): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_device(&state, &caller, &serial).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A command for one device, or for every device of a site (or every agent, for agent actions).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// The device; leave out (and give `site_id`) for every device of the site that the action applies to.
    pub device: Option<String>,
    pub site_id: Option<String>,
    /// `sync_clock`, `pull_now`, `reread` (with `since`), `refresh_info`, `clear_log`, `restart_source`,
    /// `reload_config`, `send_status`, and for push devices `push_set_time` (with `time`), `push_reupload` (with
    /// `from`, `until`), `push_info`.
    pub action: String,
    /// `reread`: the first day to read again (the whole log when absent).
    pub since: Option<NaiveDate>,
    /// `push_set_time`: the device's new local time.
    #[schema(value_type = Option<super::local_time::LocalDateTime>)]
    pub time: Option<NaiveDateTime>,
    /// `push_reupload`: the local time range.
    #[schema(value_type = Option<super::local_time::LocalDateTime>)]
    pub from: Option<NaiveDateTime>,
    #[schema(value_type = Option<super::local_time::LocalDateTime>)]
    pub until: Option<NaiveDateTime>,
    /// Seconds the command may wait to be delivered (default an hour, at most a week).
    pub expires_in_secs: Option<u32>,
}

/// The actions of [`CommandRequest::action`].
pub const ACTIONS: [&str; 11] = [
    "sync_clock",
    "pull_now",
    "reread",
    "refresh_info",
    "clear_log",
    "restart_source",
    "reload_config",
    "send_status",
    "push_set_time",
    "push_reupload",
    "push_info",
];

/// The commands created.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedCommands {
    pub commands: Vec<CommandRecord>,
}

/// Whether `action` applies to a device of central kind `kind` (for site-wide commands).
pub fn applies(action: &str, kind: &str) -> bool {
    let zk = kind.starts_with("zk-");
    match action {
        "clear_log" => zk,
        "sync_clock" => zk || kind == "adms",
        "push_set_time" | "push_reupload" | "push_info" => kind == "adms",
        "restart_source" => kind != "adms",
        _ => true,
    }
}

/// The protocol action for a request, for `device` (`None` for agent actions).
fn action_of(req: &CommandRequest, device: Option<DeviceSerial>) -> Result<CommandAction, ApiError> {
    let need = |device: Option<DeviceSerial>| device.ok_or_else(|| invalid("device", "this action needs a device"));
    let required = |field: &str, value: Option<NaiveDateTime>| value.ok_or_else(|| invalid(field, "is required"));
    Ok(match req.action.as_str() {
        "sync_clock" => CommandAction::SyncDeviceClock { device: need(device)? },
        "pull_now" => CommandAction::PullNow { device: need(device)? },
        "reread" => CommandAction::ResyncDevice { device: need(device)?, since: req.since },
        "refresh_info" => CommandAction::RefreshDeviceInfo { device: need(device)? },
        "clear_log" => CommandAction::ClearDeviceLog { device: need(device)? },
        "restart_source" => CommandAction::RestartSource { device: need(device)? },
        "reload_config" => CommandAction::ReloadConfig,
        "send_status" => CommandAction::SendStatus,
        "push_set_time" => CommandAction::PushDevice {
            device: need(device)?,
            command: PushCommand::SetTime { time: required("time", req.time)? },
        },
        "push_reupload" => {
            let (from, until) = (required("from", req.from)?, required("until", req.until)?);
            if from > until {
                return Err(invalid("until", "is before from"));
            }
            CommandAction::PushDevice { device: need(device)?, command: PushCommand::Reupload { from, until } }
        }
        "push_info" => CommandAction::PushDevice { device: need(device)?, command: PushCommand::Info },
        other => return Err(invalid("action", format!("{other:?} is not one of {}", ACTIONS.join(", ")))),
    })
}

/// Stores one command per target agent of `device` (or of the site for agent actions); returns them.
pub(super) async fn store_commands(
    state: &AppState,
    caller: &Caller,
    site: &str,
    device: Option<&str>,
    action: &CommandAction,
    expires_in_secs: Option<u32>,
) -> Result<Vec<CommandRecord>, ApiError> {
    let agents = match device {
        Some(serial) => state.store.agents_of_device(serial, site).await.map_err(store_error)?,
        None => state.store.site_agents(site).await.map_err(store_error)?,
    };
    if agents.is_empty() {
        return Err(invalid("site_id", format!("site {site:?} has no agent to carry the command out")));
    }
    let expires_at = crate::fleet::expiry(Utc::now(), expires_in_secs);
    let mut created = Vec::new();
    for agent in agents {
        let command = NewCommand {
            agent_id: agent,
            site_id: site.to_owned(),
            device_serial: device.map(str::to_owned),
            action: action.clone(),
            created_by: caller.username.clone(),
            expires_at,
        };
        let id = state.store.create_command(&command).await.map_err(store_error)?;
        if let Some(record) = state.store.command(id).await.map_err(store_error)? {
            created.push(record);
        }
    }
    Ok(created)
}

/// Creates the commands of a request (the API and the dashboard share it).
///
/// # Errors
/// `400` naming the field, `403`/`404` from the scope check.
pub async fn create_commands(
    state: &AppState,
    caller: &Caller,
    req: &CommandRequest,
) -> Result<Vec<CommandRecord>, ApiError> {
    if !ACTIONS.contains(&req.action.as_str()) {
        return Err(invalid("action", format!("{:?} is not one of {}", req.action, ACTIONS.join(", "))));
    }
    let agent_action = matches!(req.action.as_str(), "reload_config" | "send_status");
    let mut created = Vec::new();
    match (&req.device, &req.site_id) {
        (Some(serial), _) if !agent_action => {
            let device = visible_device(state, caller, serial).await?;
            let site = device.record.device.site_id.clone();
            if req.site_id.as_ref().is_some_and(|s| *s != site) {
                return Err(invalid("site_id", format!("device {serial} is at site {site}")));
            }
            caller.require(Action::Write, Some(&site))?;
            if !applies(&req.action, &device.record.device.kind) {
                return Err(invalid(
                    "action",
                    format!("{} does not apply to a {} device", req.action, device.record.device.kind),
                ));
            }
            let parsed = serial.parse().map_err(|e| invalid("device", e))?;
            let action = action_of(req, Some(parsed))?;
            created.extend(store_commands(state, caller, &site, Some(serial), &action, req.expires_in_secs).await?);
        }
        (_, Some(site)) => {
            caller.require(Action::Write, Some(site))?;
            state.store.site(site).await.map_err(store_error)?.ok_or_else(|| not_found("site", site))?;
            if agent_action {
                let action = action_of(req, None)?;
                created.extend(store_commands(state, caller, site, None, &action, req.expires_in_secs).await?);
            } else {
                let devices = state.store.site_devices(site).await.map_err(store_error)?;
                let targets: Vec<_> = devices.iter().filter(|d| applies(&req.action, &d.record.device.kind)).collect();
                if targets.is_empty() {
                    return Err(invalid("site_id", format!("site {site:?} has no device {} applies to", req.action)));
                }
                for device in targets {
                    let serial = &device.record.device.serial;
                    let parsed = serial.parse().map_err(|e| invalid("device", e))?;
                    let action = action_of(req, Some(parsed))?;
                    created
                        .extend(store_commands(state, caller, site, Some(serial), &action, req.expires_in_secs).await?);
                }
            }
        }
        (Some(_), None) => return Err(invalid("site_id", "is required for reload_config and send_status")),
        (None, None) => return Err(invalid("device", "give a device, or a site_id for every device of a site")),
    }
    state.fleet.poke();
    for command in &created {
        audit::record(
            &state.store,
            caller,
            Entry::new("create", "command", command.id.to_string()).site(Some(&command.site_id)).after(command),
        )
        .await;
    }
    Ok(created)
}

/// Sends a command to a device or to every device of a site (root, or admin of the site).
#[utoipa::path(post, path = "/api/v1/commands", tag = "fleet", request_body = CommandRequest,
    responses((status = 201, body = CreatedCommands), (status = 400), (status = 403), (status = 404)))]
pub async fn post_commands(
    State(state): State<AppState>,
    caller: Caller,
    super::Body(req): super::Body<CommandRequest>,
) -> Result<(StatusCode, Json<CreatedCommands>), ApiError> {
    let commands = create_commands(&state, &caller, &req).await?;
    Ok((StatusCode::CREATED, Json(CreatedCommands { commands })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommandFilter {
    pub site: Option<String>,
    pub device: Option<String>,
    /// `pending`, `delivered`, `done`, `failed` or `expired`.
    pub state: Option<String>,
    pub limit: Option<i64>,
}

/// Commands of the caller's sites, newest first.
#[utoipa::path(get, path = "/api/v1/commands", tag = "fleet", params(CommandFilter),
    responses((status = 200, body = [CommandRecord])))]
pub async fn list_commands(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<CommandFilter>,
) -> Result<Json<Vec<CommandRecord>>, ApiError> {
    let site = super::sites::scoped_site(&caller, q.site.as_deref())?;
    if let Some(s) = &q.state {
        if !["pending", "delivered", "done", "failed", "expired"].contains(&s.as_str()) {
            return Err(invalid("state", format!("{s:?} is not pending, delivered, done, failed or expired")));
        }
    }
    let limit = page_size(q.limit)?;
    let rows = state
        .store
        .list_commands(caller.scope(), site, q.device.as_deref(), q.state.as_deref(), limit)
        .await
        .map_err(store_error)?;
    Ok(Json(rows))
}

/// One command with its history.
#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "fleet", params(("id" = i64, Path)),
    responses((status = 200, body = CommandRecord), (status = 404)))]
pub async fn get_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<CommandRecord>, ApiError> {
    let command = state.store.command(id).await.map_err(store_error)?;
    command.filter(|c| caller.sees(&c.site_id)).map(Json).ok_or_else(|| not_found("command", &id.to_string()))
}

/// Wakes the dispatchers and audits the commands.
pub(super) async fn finish_created(state: &AppState, caller: &Caller, created: &[CommandRecord]) {
    state.fleet.poke();
    for command in created {
        audit::record(
            &state.store,
            caller,
            Entry::new("create", "command", command.id.to_string()).site(Some(&command.site_id)).after(command),
        )
        .await;
    }
}

/// Devices of the caller's sites with their settings, for the dashboard's forms.
///
/// # Errors
/// `404` for a site the caller does not see.
pub async fn device_details(
    state: &AppState,
    caller: &Caller,
    filter: &SiteFilter,
) -> Result<Vec<DeviceDetail>, ApiError> {
    let site = super::sites::scoped_site(caller, filter.site.as_deref())?;
    let listed = state.store.list_devices(caller.scope(), site).await.map_err(store_error)?;
    let mut out = Vec::with_capacity(listed.len());
    for d in listed {
        if let Some(record) = state.store.managed_device(&d.serial).await.map_err(store_error)? {
            let version = state.store.config_version(&d.site_id).await.map_err(store_error)?;
            out.push(detail(&record, version));
        }
    }
    Ok(out)
}

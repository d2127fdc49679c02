//! Employees on devices (issue 17): push an employee, or every current employee of a site, to the site's ZKTeco
//! and push devices (card and privilege: the request's, else the employee's; what central does not know is left out
//! and the terminal keeps its own); remove an employee, or every leaver of a site, from them; copy an employee's
//! fingerprint templates from the ZKTeco device where they enrolled to the site's other ZKTeco and push devices; list
//! the devices that hold an employee. Each change is one command per device through the commands machinery
//! ([`super::fleet`]); the agent reports the result, and `fleet::users` keeps each user's outcome and records who is
//! held where.
//!
//! Every change asks [`Caller::require`] for the employee's site: another site's administrator gets 404, a viewer
//! 403. The dashboard's employee page calls the same `*_commands` functions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{NaiveDate, Utc};
use protocol::{CommandAction, Pin, UserUpdate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fleet::{finish_created, not_found, store_commands, CreatedCommands};
use super::{invalid, store_error};
use crate::access::{Action, Caller, Role};
use crate::fleet::privilege::DevicePrivilege;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::attendance::masters::EmployeeProfile;
use crate::store::fleet::{CommandRecord, HeldBy, ManagedDeviceRecord, NewCommand};

/// Users (or PINs) per command. The protocol allows 5,000, but a ZKTeco terminal takes one request per user and the
/// agent waits at most two minutes for a device job, so a whole site is sent in commands of this many.
pub const USERS_PER_COMMAND: usize = 500;

/// Which devices to write an employee to, and how.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushUser {
    /// The devices; every ZKTeco and push device of the employee's site when absent.
    pub devices: Option<Vec<String>>,
    /// The card number for this push (0 or absent: the employee's `card_number`; without one the terminal keeps the
    /// card it has).
    pub card: Option<u32>,
    /// The privilege code for this push: 0 user, 2 enroller, 6 administrator, 14 super administrator (absent: the
    /// employee's `device_privilege`; without one the terminal keeps the level it has, a new user is a user).
    pub privilege: Option<u8>,
    pub expires_in_secs: Option<u32>,
}

/// Which devices to write a site's current employees to.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushSite {
    /// The devices; every ZKTeco and push device of the site when absent.
    pub devices: Option<Vec<String>>,
    pub expires_in_secs: Option<u32>,
}

/// Which devices to remove an employee from.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveUser {
    /// The devices; every ZKTeco and push device of the site when absent.
    pub devices: Option<Vec<String>>,
    pub expires_in_secs: Option<u32>,
}

/// Where to copy an employee's fingerprints from and to.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyTemplates {
    /// The ZKTeco device where the employee enrolled.
    pub from: String,
    /// The ZKTeco or push devices to write to; every other one of the site read by the same agent when absent.
    pub to: Option<Vec<String>>,
    pub expires_in_secs: Option<u32>,
}

/// Whether a device of central kind `kind` holds users we can write.
pub fn holds_users(kind: &str) -> bool {
    kind.starts_with("zk-") || kind == "adms"
}

/// The employee `id`'s site and profile, when the caller may change that site (else 404 or 403).
async fn employee_site(state: &AppState, caller: &Caller, id: &str) -> Result<(String, EmployeeProfile), ApiError> {
    let profile = state.store.employee_profile(id).await.map_err(store_error)?;
    let profile = profile.ok_or_else(|| not_found("employee", id))?;
    let Some(site) = profile.site_id.clone().filter(|s| caller.sees(s)) else {
        return Err(if caller.role == Role::Root {
            invalid("employee", format!("employee {id} has no site, so no devices"))
        } else {
            not_found("employee", id)
        });
    };
    caller.require(Action::Write, Some(&site))?;
    Ok((site, profile))
}

/// The devices of `site` a user command goes to: `chosen` (each checked to be at the site and to hold users), or all.
async fn user_devices(
    state: &AppState,
    site: &str,
    chosen: Option<&[String]>,
) -> Result<Vec<ManagedDeviceRecord>, ApiError> {
    let devices = state.store.site_devices(site).await.map_err(store_error)?;
    let out: Vec<ManagedDeviceRecord> = match chosen {
        None => devices.into_iter().filter(|d| holds_users(&d.record.device.kind)).collect(),
        Some(serials) => {
            let mut out = Vec::new();
            for serial in serials {
                let device = devices
                    .iter()
                    .find(|d| &d.record.device.serial == serial)
                    .ok_or_else(|| invalid("devices", format!("{serial:?} is not an active device of site {site}")))?;
                if !holds_users(&device.record.device.kind) {
                    return Err(invalid(
                        "devices",
                        format!("{serial} is a {} device: it holds no users", device.record.device.kind),
                    ));
                }
                out.push(device.clone());
            }
            out
        }
    };
    if out.is_empty() {
        return Err(invalid("devices", format!("site {site} has no ZKTeco or push device to hold users")));
    }
    Ok(out)
}

/// A name as a terminal keeps it: at most 24 bytes, cut on a character boundary, without control characters.
fn device_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    let mut end = clean.len().min(protocol::envelope::MAX_USER_NAME_LEN);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean[..end].to_owned()
}

/// One command per device and per [`USERS_PER_COMMAND`] users or PINs, made by `action`.
async fn per_device<T: Clone>(
    state: &AppState,
    caller: &Caller,
    site: &str,
    devices: &[ManagedDeviceRecord],
    items: &[T],
    expires_in_secs: Option<u32>,
    action: impl Fn(protocol::DeviceSerial, Vec<T>) -> CommandAction,
) -> Result<Vec<CommandRecord>, ApiError> {
    let mut created = Vec::new();
    for device in devices {
        let serial = device.record.device.serial.clone();
        for chunk in items.chunks(USERS_PER_COMMAND) {
            let parsed = serial.parse().map_err(|e| invalid("devices", e))?;
            let command = action(parsed, chunk.to_vec());
            created.extend(store_commands(state, caller, site, Some(&serial), &command, expires_in_secs).await?);
        }
    }
    finish_created(state, caller, &created).await;
    Ok(created)
}

/// The update for one employee: their PIN and name, and the card and privilege central knows (the request's, else
/// the employee's own); what central does not know is left out, so the terminal keeps its own.
fn user_update(profile: &EmployeeProfile, card: Option<u32>, privilege: Option<u8>) -> Option<UserUpdate> {
    Some(UserUpdate {
        pin: profile.employee_id.parse().ok()?,
        name: device_name(&profile.name),
        card: card.filter(|c| *c != 0).or(profile.card_number),
        privilege: privilege.or(profile.device_privilege.map(DevicePrivilege::code)),
    })
}

/// Writes employee `id` (PIN, name, card, privilege) to devices of their site.
///
/// # Errors
/// `400` naming the field, `403`/`404`.
pub async fn push_commands(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: &PushUser,
) -> Result<Vec<CommandRecord>, ApiError> {
    let (site, profile) = employee_site(state, caller, id).await?;
    let user = user_update(&profile, req.card, req.privilege)
        .ok_or_else(|| invalid("employee", format!("{id:?} is not a PIN a terminal keeps")))?;
    user.validate().map_err(|e| invalid("privilege", e))?;
    let devices = user_devices(state, &site, req.devices.as_deref()).await?;
    per_device(state, caller, &site, &devices, &[user], req.expires_in_secs, |device, users| {
        CommandAction::WriteUsers { device, users }
    })
    .await
}

/// Writes every current employee of `site` (active, no leaving date in the past) to devices of the site, each with
/// the card and privilege central keeps for them (left out when it keeps none: the terminal's own are kept).
///
/// # Errors
/// `400` when the site has no current employee or no device, `403`/`404`.
pub async fn push_site_commands(
    state: &AppState,
    caller: &Caller,
    site: &str,
    req: &PushSite,
) -> Result<Vec<CommandRecord>, ApiError> {
    let today = site_today(state, caller, site).await?;
    let employees = state.store.employee_profiles(None, Some(site)).await.map_err(store_error)?;
    let users: Vec<UserUpdate> = employees
        .iter()
        .filter(|e| e.active && e.date_of_leaving.is_none_or(|d| d >= today))
        .filter_map(|e| user_update(e, None, None))
        .collect();
    if users.is_empty() {
        return Err(invalid("site", format!("site {site} has no current employee to push")));
    }
    let devices = user_devices(state, site, req.devices.as_deref()).await?;
    per_device(state, caller, site, &devices, &users, req.expires_in_secs, |device, users| CommandAction::WriteUsers {
        device,
        users,
    })
    .await
}

/// Removes employee `id` (and their fingerprints) from devices of their site.
///
/// # Errors
/// `400` naming the field, `403`/`404`.
pub async fn remove_commands(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: &RemoveUser,
) -> Result<Vec<CommandRecord>, ApiError> {
    let (site, _) = employee_site(state, caller, id).await?;
    let pin: Pin = id.parse().map_err(|e| invalid("employee", e))?;
    let devices = user_devices(state, &site, req.devices.as_deref()).await?;
    per_device(state, caller, &site, &devices, &[pin], req.expires_in_secs, |device, pins| CommandAction::DeleteUsers {
        device,
        pins,
    })
    .await
}

/// Checks the caller may change `site` and returns its date today in its zone.
async fn site_today(state: &AppState, caller: &Caller, site: &str) -> Result<NaiveDate, ApiError> {
    caller.require(Action::Write, Some(site))?;
    let info = state.store.site(site).await.map_err(store_error)?.ok_or_else(|| not_found("site", site))?;
    let zone: chrono_tz::Tz = info.time_zone.parse().unwrap_or(chrono_tz::UTC);
    Ok(Utc::now().with_timezone(&zone).date_naive())
}

/// Removes every leaver of `site` (an employee whose leaving date is before today in the site's zone) from every
/// device of the site that holds users: one command per device with all their PINs. None when there is no leaver.
///
/// # Errors
/// `403`/`404`; `400` when there are leavers but no device.
pub async fn leaver_commands(state: &AppState, caller: &Caller, site: &str) -> Result<Vec<CommandRecord>, ApiError> {
    let today = site_today(state, caller, site).await?;
    let employees = state.store.employee_profiles(None, Some(site)).await.map_err(store_error)?;
    let pins: Vec<Pin> = employees
        .iter()
        .filter(|e| e.date_of_leaving.is_some_and(|d| d < today))
        .filter_map(|e| e.employee_id.parse().ok())
        .collect();
    if pins.is_empty() {
        return Ok(Vec::new());
    }
    let devices = user_devices(state, site, None).await?;
    per_device(state, caller, site, &devices, &pins, None, |device, pins| CommandAction::DeleteUsers { device, pins })
        .await
}

/// Copies employee `id`'s fingerprint templates from `req.from` to other ZKTeco or push devices of the site read by
/// the same agent (one command, carried out by that agent device by device: a push device gets `DATA UPDATE
/// USERINFO` and one `DATA UPDATE FINGERTMP` per finger).
///
/// # Errors
/// `400` naming `from` or `to`, `403`/`404`.
pub async fn copy_commands(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: &CopyTemplates,
) -> Result<Vec<CommandRecord>, ApiError> {
    let (site, _) = employee_site(state, caller, id).await?;
    let pin: Pin = id.parse().map_err(|e| invalid("employee", e))?;
    let devices = state.store.site_devices(&site).await.map_err(store_error)?;
    let is_zk = |serial: &str| {
        devices.iter().any(|d| d.record.device.serial == serial && d.record.device.kind.starts_with("zk-"))
    };
    if !is_zk(&req.from) {
        return Err(invalid("from", format!("{:?} is not an active ZKTeco device of site {site}", req.from)));
    }
    let agents = state.store.agents_of_device(&req.from, &site).await.map_err(store_error)?;
    let Some(agent) = agents.first().cloned() else {
        return Err(invalid("from", format!("no agent reads {}", req.from)));
    };
    let holds_templates = |serial: &str| {
        devices.iter().any(|d| {
            d.record.device.serial == serial
                && (d.record.device.kind.starts_with("zk-") || d.record.device.kind == "adms")
        })
    };
    let candidates: Vec<String> = match &req.to {
        Some(to) => to.clone(),
        None => devices
            .iter()
            .filter(|d| holds_templates(&d.record.device.serial) && d.record.device.serial != req.from)
            .map(|d| d.record.device.serial.clone())
            .collect(),
    };
    let mut to = Vec::new();
    for serial in candidates {
        if req.to.is_some() && !holds_templates(&serial) {
            return Err(invalid("to", format!("{serial:?} is not an active ZKTeco or push device of site {site}")));
        }
        let readers = state.store.agents_of_device(&serial, &site).await.map_err(store_error)?;
        if readers.contains(&agent) {
            to.push(serial);
        } else if req.to.is_some() {
            return Err(invalid("to", format!("{serial} is not read by agent {agent}, which reads {}", req.from)));
        }
    }
    if to.is_empty() {
        return Err(invalid("to", "no other ZKTeco or push device to copy to"));
    }
    let action = CommandAction::CopyTemplates {
        pin,
        from: req.from.parse().map_err(|e| invalid("from", e))?,
        to: to.iter().map(|s| s.parse()).collect::<Result<_, _>>().map_err(|e| invalid("to", e))?,
    };
    let command = NewCommand {
        agent_id: agent,
        site_id: site.clone(),
        device_serial: Some(req.from.clone()),
        action,
        created_by: caller.username.clone(),
        expires_at: crate::fleet::expiry(Utc::now(), req.expires_in_secs),
    };
    let id = state.store.create_command(&command).await.map_err(store_error)?;
    let created: Vec<CommandRecord> = state.store.command(id).await.map_err(store_error)?.into_iter().collect();
    finish_created(state, caller, &created).await;
    Ok(created)
}

/// The devices that hold employee `id`, as central's pushes and removals left them (readable by viewers).
///
/// # Errors
/// `404` for an employee the caller does not see.
pub async fn held_by(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<HeldBy>, ApiError> {
    let profile = state.store.employee_profile(id).await.map_err(store_error)?;
    let visible =
        profile.is_some_and(|p| caller.role == Role::Root || p.site_id.as_deref().is_some_and(|s| caller.sees(s)));
    if !visible {
        return Err(not_found("employee", id));
    }
    let held = state.store.devices_holding(id).await.map_err(store_error)?;
    Ok(held.into_iter().filter(|h| h.site_id.as_deref().is_none_or(|s| caller.sees(s))).collect())
}

fn created(commands: Vec<CommandRecord>) -> (StatusCode, Json<CreatedCommands>) {
    (StatusCode::CREATED, Json(CreatedCommands { commands }))
}

/// Writes an employee (PIN, name, card, privilege) to devices of their site.
#[utoipa::path(post, path = "/api/v1/employees/{id}/push", tag = "fleet", params(("id" = String, Path)),
    request_body = PushUser, responses((status = 201, body = CreatedCommands), (status = 400), (status = 403),
        (status = 404)))]
pub async fn push_employee(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::Body(req): super::Body<PushUser>,
) -> Result<(StatusCode, Json<CreatedCommands>), ApiError> {
    Ok(created(push_commands(&state, &caller, &id, &req).await?))
}

/// Writes every current employee of a site to the site's devices (one command per device).
#[utoipa::path(post, path = "/api/v1/sites/{id}/push-employees", tag = "fleet", params(("id" = String, Path)),
    request_body = PushSite, responses((status = 201, body = CreatedCommands), (status = 400), (status = 403),
        (status = 404)))]
pub async fn push_site(
    State(state): State<AppState>,
    caller: Caller,
    Path(site): Path<String>,
    super::Body(req): super::Body<PushSite>,
) -> Result<(StatusCode, Json<CreatedCommands>), ApiError> {
    Ok(created(push_site_commands(&state, &caller, &site, &req).await?))
}

/// Removes an employee (and their fingerprints) from devices of their site.
#[utoipa::path(post, path = "/api/v1/employees/{id}/remove-from-devices", tag = "fleet", params(("id" = String, Path)),
    request_body = RemoveUser, responses((status = 201, body = CreatedCommands), (status = 400), (status = 403),
        (status = 404)))]
pub async fn remove_employee(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::Body(req): super::Body<RemoveUser>,
) -> Result<(StatusCode, Json<CreatedCommands>), ApiError> {
    Ok(created(remove_commands(&state, &caller, &id, &req).await?))
}

/// Removes every leaver of the site (leaving date before today in the site's zone) from every device of the site.
#[utoipa::path(post, path = "/api/v1/sites/{id}/remove-leavers", tag = "fleet", params(("id" = String, Path)),
    responses((status = 201, body = CreatedCommands), (status = 400), (status = 403), (status = 404)))]
pub async fn remove_leavers(
    State(state): State<AppState>,
    caller: Caller,
    Path(site): Path<String>,
) -> Result<(StatusCode, Json<CreatedCommands>), ApiError> {
    Ok(created(leaver_commands(&state, &caller, &site).await?))
}

/// The devices that hold an employee, as central's pushes and removals left them.
#[utoipa::path(get, path = "/api/v1/employees/{id}/devices", tag = "fleet", params(("id" = String, Path)),
    responses((status = 200, body = [HeldBy]), (status = 404)))]
pub async fn employee_devices(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<HeldBy>>, ApiError> {
    Ok(Json(held_by(&state, &caller, &id).await?))
}

/// Copies an employee's fingerprint templates from the device where they enrolled to other devices of the site.
#[utoipa::path(post, path = "/api/v1/employees/{id}/copy-templates", tag = "fleet", params(("id" = String, Path)),
    request_body = CopyTemplates, responses((status = 201, body = CreatedCommands), (status = 400), (status = 403),
        (status = 404)))]
pub async fn copy_templates(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::Body(req): super::Body<CopyTemplates>,
) -> Result<(StatusCode, Json<CreatedCommands>), ApiError> {
    Ok(created(copy_commands(&state, &caller, &id, &req).await?))
}

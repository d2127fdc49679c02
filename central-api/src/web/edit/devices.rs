//! Devices from the dashboard (issue 17): `GET/POST /devices/new` adds one of any kind, `GET /devices/{serial}` shows
//! it with the commands form and its command history ([`super::commands`]), `GET/POST /devices/{serial}/edit`
//! changes it and `POST /devices/{serial}/delete` removes it (its punches stay). The forms go through the API's own
//! [`add_device`] / [`change_device`] / [`remove_device`] (same scope checks, same checks by the agent's code, same
//! audit, the same raise of the site's configuration version that managed agents pick up within seconds).
//!
//! The driver's settings beyond the columns are typed as a JSON object (the agent's `[[device]]` keys: `comm_key`,
//! `poll_interval_secs`, `url`, `baud_rate`, ...); a refusal comes back next to its field, a refused setting next to
//! the settings box naming the key (`settings.baud_rate: ...`).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{error_summary, field, form_page, input, select, status_for};
use crate::access::{Action, Caller};
use crate::fleet::entry::KINDS;
use crate::http::api::fleet::{add_device, change_device, detail, remove_device, DeviceDetail};
use crate::http::api::sites::NewDeviceBody;
use crate::http::api::updates::{DeviceChange, FieldError};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::flash_redirect;
use crate::web::muster::url_segment;

/// The device form as typed: every field as text.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeviceForm {
    serial: String,
    site_id: String,
    name: String,
    kind: String,
    ip: String,
    port: String,
    model: String,
    time_zone: String,
    direction: String,
    agent_id: String,
    status: String,
    /// A JSON object.
    settings: String,
}

impl DeviceForm {
    fn of(d: &DeviceDetail) -> Self {
        Self {
            serial: d.serial.clone(),
            site_id: d.site_id.clone(),
            name: d.name.clone(),
            kind: d.kind.clone(),
            ip: d.ip.clone().unwrap_or_default(),
            port: d.port.map(|p| p.to_string()).unwrap_or_default(),
            model: d.model.clone().unwrap_or_default(),
            time_zone: d.time_zone.clone(),
            direction: d.direction.clone(),
            agent_id: d.agent_id.clone().unwrap_or_default(),
            status: d.status.clone(),
            settings: serde_json::to_string_pretty(&d.settings).unwrap_or_default(),
        }
    }

    fn optional(text: &str) -> Option<String> {
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    }

    fn port(&self) -> Result<Option<u16>, FieldError> {
        match self.port.trim() {
            "" => Ok(None),
            t => t.parse().map(Some).map_err(|_| FieldError::new("port", format!("{t:?} is not a port (1 to 65535)"))),
        }
    }

    fn settings(&self) -> Result<Map<String, Value>, FieldError> {
        let text = self.settings.trim();
        if text.is_empty() {
            return Ok(Map::new());
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(FieldError::new("settings", "must be a JSON object ({\"key\": value, ...})")),
            Err(e) => Err(FieldError::new("settings", format!("is not JSON: {e}"))),
        }
    }

    fn new_device(&self) -> Result<NewDeviceBody, FieldError> {
        Ok(NewDeviceBody {
            serial: self.serial.trim().to_owned(),
            site_id: self.site_id.trim().to_owned(),
            name: self.name.clone(),
            model: Self::optional(&self.model),
            ip: Self::optional(&self.ip),
            port: self.port()?,
            kind: self.kind.trim().to_owned(),
            time_zone: Self::optional(&self.time_zone),
            direction: Self::optional(&self.direction),
            settings: Some(self.settings()?),
            agent_id: Self::optional(&self.agent_id),
        })
    }

    fn change(&self) -> Result<DeviceChange, FieldError> {
        Ok(DeviceChange {
            name: self.name.clone(),
            model: Self::optional(&self.model),
            ip: Self::optional(&self.ip),
            port: self.port()?,
            kind: self.kind.trim().to_owned(),
            time_zone: Self::optional(&self.time_zone),
            direction: Self::optional(&self.direction),
            status: Self::optional(&self.status),
            settings: Some(self.settings()?),
            agent_id: Some(Self::optional(&self.agent_id)),
        })
    }
}

/// The fields a refusal of the API may name (a `settings.<key>` refusal is shown at `settings`).
const FIELDS: [&str; 12] = [
    "serial",
    "site_id",
    "name",
    "kind",
    "ip",
    "port",
    "model",
    "time_zone",
    "direction",
    "agent_id",
    "status",
    "settings",
];

/// A `400` of the API's device functions (`field: message`) as the form's error.
fn field_refusal(message: &str) -> FieldError {
    let (field, rest) = message.split_once(": ").unwrap_or(("settings", message));
    if field.starts_with("settings") {
        return FieldError::new("settings", message);
    }
    match FIELDS.iter().find(|f| **f == field) {
        Some(field) => FieldError::new(field, rest),
        None => FieldError::new("serial", message),
    }
}

/// The sites the caller may add devices to.
async fn managed_sites(state: &AppState, caller: &Caller) -> Result<Vec<(String, String)>, WebError> {
    let sites = state.store.list_sites(caller.scope()).await?;
    Ok(sites
        .into_iter()
        .filter(|s| caller.require(Action::Write, Some(&s.site_id)).is_ok())
        .map(|s| (s.site_id.clone(), format!("{} ({})", s.name, s.site_id)))
        .collect())
}

fn render(
    ctx: &WebContext,
    form: &DeviceForm,
    sites: &[(String, String)],
    edit: bool,
    error: Option<&FieldError>,
) -> Response {
    let kinds: Vec<(String, String)> = KINDS.iter().map(|k| ((*k).to_owned(), (*k).to_owned())).collect();
    let directions: Vec<(String, String)> =
        ["BOTH", "IN", "OUT"].iter().map(|d| ((*d).to_owned(), (*d).to_owned())).collect();
    let statuses: Vec<(String, String)> =
        ["active", "inactive"].iter().map(|d| ((*d).to_owned(), (*d).to_owned())).collect();
    let (title, action) = if edit {
        (format!("Edit device {}", form.serial), format!("/devices/{}/edit", url_segment(&form.serial)))
    } else {
        ("Add a device".to_owned(), "/devices/new".to_owned())
    };
    let body = html! {
        h1 { (title) }
        (error_summary(error))
        form.stack method="post" action=(action) data-testid="device-form" {
            (csrf_field(ctx))
            @if edit {
                p { "Serial " strong { (form.serial) } ", site " strong { (form.site_id) } }
                (field("status", "Status", select("status", &statuses, &form.status, error), error))
            } @else {
                (field("serial", "Serial number", input("serial", "text", &form.serial, true, error), error))
                (field("site_id", "Site", select("site_id", sites, &form.site_id, error), error))
            }
            (field("name", "Name", input("name", "text", &form.name, true, error), error))
            (field("kind", "Kind", select("kind", &kinds, &form.kind, error), error))
            (field("ip", "IP address (ZKTeco)", input("ip", "text", &form.ip, false, error), error))
            (field("port", "Port (ZKTeco; 4370 when empty)", input("port", "text", &form.port, false, error), error))
            (field("model", "Model", input("model", "text", &form.model, false, error), error))
            (field("time_zone", "Time zone (the site's when empty)", input("time_zone", "text", &form.time_zone, false, error), error))
            (field("direction", "Direction", select("direction", &directions, &form.direction, error), error))
            (field("agent_id", "Agent (every agent of the site when empty)", input("agent_id", "text", &form.agent_id, false, error), error))
            (field("settings", "Driver settings (JSON object of the agent's [[device]] keys)", html! {
                textarea id="settings" name="settings" rows="6" aria-invalid=[error.is_some_and(|e| e.field == "settings").then_some("true")] { (form.settings) }
                small { "For example " code { "{\"poll_interval_secs\": 60, \"comm_key\": 0}" } " (ZKTeco), "
                    code { "{\"port\": \"/dev/ttyUSB0\", \"baud_rate\": 9600, ...}" } " (serial), "
                    code { "{\"url\": \"http://10.0.0.7\", \"user\": \"admin\", \"password\": \"...\"}" }
                    " (Hikvision, Dahua). Passwords read as ******** and are kept when left so." }
            }, error))
            button type="submit" { @if edit { "Save" } @else { "Add the device" } }
        }
    };
    form_page(status_for(error), &title, ctx, body)
}

/// `GET /devices/new`.
pub async fn new_form(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Response, WebError> {
    let sites = managed_sites(&state, &ctx.caller).await?;
    if sites.is_empty() {
        return Err(WebError::page(StatusCode::FORBIDDEN, "you may not add devices to any site"));
    }
    let form = DeviceForm { kind: "zk-tcp".into(), direction: "BOTH".into(), ..DeviceForm::default() };
    Ok(render(&ctx, &form, &sites, false, None))
}

/// `POST /devices/new`.
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<DeviceForm>,
) -> Result<Response, WebError> {
    let sites = managed_sites(&state, &ctx.caller).await?;
    let body = match form.new_device() {
        Ok(body) => body,
        Err(e) => return Ok(render(&ctx, &form, &sites, false, Some(&e))),
    };
    match add_device(&state, &ctx.caller, body).await {
        Ok(added) => Ok(flash_redirect(
            &format!("/devices/{}", url_segment(&added.serial)),
            &format!("Device {} added (configuration version {}).", added.serial, added.config_version),
        )),
        Err(e) => refused(&ctx, &form, &sites, false, e),
    }
}

fn refused(
    ctx: &WebContext,
    form: &DeviceForm,
    sites: &[(String, String)],
    edit: bool,
    e: ApiError,
) -> Result<Response, WebError> {
    match e.status {
        StatusCode::BAD_REQUEST => Ok(render(ctx, form, sites, edit, Some(&field_refusal(&e.message)))),
        StatusCode::CONFLICT => {
            let e = FieldError::new("serial", format!("{:?} is already registered", form.serial.trim()));
            Ok(render(ctx, form, sites, edit, Some(&e)))
        }
        _ => Err(e.into()),
    }
}

async fn visible(state: &AppState, caller: &Caller, serial: &str) -> Result<DeviceDetail, WebError> {
    let record = state.store.managed_device(serial).await?;
    let record = record
        .filter(|d| caller.sees(&d.record.device.site_id))
        .ok_or_else(|| WebError::not_found(format!("device {serial:?} does not exist")))?;
    let version = state.store.config_version(&record.record.device.site_id).await?;
    Ok(detail(&record, version))
}

/// `GET /devices/{serial}`: the device, its commands form and its command history.
pub async fn show(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(serial): Path<String>,
) -> Result<Response, WebError> {
    let d = visible(&state, &ctx.caller, &serial).await?;
    let may_change = ctx.caller.require(Action::Write, Some(&d.site_id)).is_ok();
    let history = state.store.list_commands(ctx.caller.scope(), Some(&d.site_id), Some(&d.serial), None, 50).await?;
    let segment = url_segment(&d.serial);
    let body = html! {
        h1 { "Device " (d.serial) }
        dl data-testid="device" {
            dt { "Name" } dd { (d.name) }
            dt { "Site" } dd { (d.site_id) }
            dt { "Kind" } dd { (d.kind) }
            dt { "Address" } dd { (d.ip.as_deref().unwrap_or("—")) @if let Some(p) = d.port { ":" (p) } }
            dt { "Time zone" } dd { (d.time_zone) }
            dt { "Direction" } dd { (d.direction) }
            dt { "Status" } dd { (d.status) }
            dt { "Agent" } dd { (d.agent_id.as_deref().unwrap_or("every agent of the site")) }
            dt { "Settings" } dd { code { (Value::Object(d.settings.clone())) } }
            dt { "Configuration version" } dd { (d.config_version) }
        }
        @if may_change {
            p {
                a href=(format!("/devices/{segment}/edit")) data-testid="edit-device" { "Edit" } " "
                form.inline method="post" action=(format!("/devices/{segment}/delete")) {
                    (csrf_field(&ctx))
                    button type="submit" data-testid="delete-device" { "Remove this device" }
                }
            }
            h2 { "Send a command" }
            (super::commands::command_form(&ctx, Some(&d.serial), &d.site_id, &d.kind, &format!("/devices/{segment}")))
        }
        h2 { "Commands" }
        (super::commands::history_table(&history))
    };
    Ok(form_page(StatusCode::OK, &format!("Device {}", d.serial), &ctx, body))
}

/// `GET /devices/{serial}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(serial): Path<String>,
) -> Result<Response, WebError> {
    let d = visible(&state, &ctx.caller, &serial).await?;
    ctx.caller.require(Action::Write, Some(&d.site_id))?;
    Ok(render(&ctx, &DeviceForm::of(&d), &[], true, None))
}

/// `POST /devices/{serial}/edit`.
pub async fn update(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(serial): Path<String>,
    CsrfForm(mut form): CsrfForm<DeviceForm>,
) -> Result<Response, WebError> {
    let d = visible(&state, &ctx.caller, &serial).await?;
    ctx.caller.require(Action::Write, Some(&d.site_id))?;
    form.serial.clone_from(&d.serial);
    form.site_id.clone_from(&d.site_id);
    let change = match form.change() {
        Ok(change) => change,
        Err(e) => return Ok(render(&ctx, &form, &[], true, Some(&e))),
    };
    match change_device(&state, &ctx.caller, &serial, &change).await {
        Ok(saved) => Ok(flash_redirect(
            &format!("/devices/{}", url_segment(&saved.serial)),
            &format!("Device {} saved (configuration version {}).", saved.serial, saved.config_version),
        )),
        Err(e) => refused(&ctx, &form, &[], true, e),
    }
}

/// `POST /devices/{serial}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(serial): Path<String>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let version = remove_device(&state, &ctx.caller, &serial).await?;
    Ok(flash_redirect(
        "/devices",
        &format!("Device {serial} removed (configuration version {version}); its punches stay."),
    ))
}

/// The "Add a device" link of the devices page, for callers who may add one somewhere.
pub fn add_link(ctx: &WebContext, sites: &[crate::store::listing::SiteInfo]) -> Markup {
    html! {
        @if sites.iter().any(|s| ctx.caller.require(Action::Write, Some(&s.site_id)).is_ok()) {
            p { a href="/devices/new" data-testid="new-device" { "Add a device" } " · "
                a href="/commands" { "Commands" } }
        } @else {
            p { a href="/commands" { "Commands" } }
        }
    }
}

/// A page for a device that the caller may see (for links).
pub fn device_link(serial: &str) -> Markup {
    html! { a href=(format!("/devices/{}", url_segment(serial))) { (serial) } }
}

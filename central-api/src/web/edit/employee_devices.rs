//! An employee on the terminals: `GET /employees/{employee_id}/devices` lists the devices that hold them (as
//! central's pushes and removals left them; viewers see it too) and, for those who may change the site, the buttons
//! "Push to devices", "Remove from devices" and "Copy fingerprints", posted to `.../devices/push`, `.../remove` and
//! `.../copy-templates`. Each button creates commands through the API's own functions
//! ([`crate::http::api::fleet_users`]); the flash message names the commands, whose results show on the page.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{field, form_page, input, select};
use crate::access::{Action, Caller};
use crate::fleet::privilege::DevicePrivilege;
use crate::http::api::fleet_users::{self, holds_users, CopyTemplates, PushUser, RemoveUser};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::fleet::CommandRecord;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller};
use crate::web::error::WebError;
use crate::web::layout::flash_redirect;
use crate::web::muster::url_segment;

/// Commands of the employee's site shown on the page.
const RECENT_COMMANDS: i64 = 20;

fn page_url(id: &str) -> String {
    format!("/employees/{}/devices", url_segment(id))
}

/// `GET /employees/{employee_id}/devices`.
pub async fn page(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let profile = state.store.employee_profile(&id).await?;
    let profile = profile.filter(|p| p.site_id.as_deref().is_some_and(|s| ctx.caller.sees(s)));
    let Some(profile) = profile else {
        return Err(WebError::not_found(format!("employee {id:?} does not exist")));
    };
    let site = profile.site_id.clone().unwrap_or_default();
    let held = fleet_users::held_by(&state, &ctx.caller, &id).await?;
    let may_write = ctx.caller.require(Action::Write, Some(&site)).is_ok();
    let devices = state.store.site_devices(&site).await?;
    let holders: Vec<(String, String)> = std::iter::once((String::new(), "Every device of the site".to_owned()))
        .chain(devices.iter().filter(|d| holds_users(&d.record.device.kind)).map(|d| {
            let dev = &d.record.device;
            (dev.serial.clone(), format!("{} ({}, {})", dev.name, dev.serial, dev.kind))
        }))
        .collect();
    let zk: Vec<(String, String)> = devices
        .iter()
        .filter(|d| d.record.device.kind.starts_with("zk-"))
        .map(|d| (d.record.device.serial.clone(), format!("{} ({})", d.record.device.name, d.record.device.serial)))
        .collect();
    let commands = state.store.list_commands(ctx.caller.scope(), Some(&site), None, None, RECENT_COMMANDS * 5).await?;
    let mine: Vec<&CommandRecord> =
        commands.iter().filter(|c| about(c, &id)).take(usize::try_from(RECENT_COMMANDS).unwrap_or(20)).collect();
    let url = page_url(&id);
    let title = format!("{} ({}) on devices", profile.name, profile.employee_id);
    let body = html! {
        h1 { (title) }
        p { a href=(format!("/employees/{}/edit", url_segment(&id))) { "Edit employee" } " · site " (site) }
        h2 { "Held by" }
        @if held.is_empty() { p data-testid="held-by-none" { "No device holds this employee (as far as central pushed)." } }
        @else {
            div.table-wrap { table data-testid="held-by" {
                thead { tr { th scope="col" { "Device" } th scope="col" { "Name on the device" }
                    th scope="col" { "Since" } th scope="col" { "Command" } } }
                tbody { @for h in &held { tr {
                    th scope="row" { (h.device_serial) } td { (h.name) }
                    td { (h.pushed_at.format("%Y-%m-%d %H:%M UTC")) } td { "#" (h.command_id) }
                } } }
            } }
        }
        @if may_write {
            h2 { "Push to devices" }
            form.stack method="post" action=(format!("{url}/push")) data-testid="push-form" {
                (csrf_field(&ctx))
                (field("device", "Device", select("device", &holders, "", None), None))
                p { "Card " (profile.card_number.map_or_else(|| "none known".to_owned(), |c| c.to_string()))
                    ", privilege " (profile.device_privilege.map_or("none known", |p| p.as_str()))
                    " (what central does not know, the terminal keeps)." }
                (field("card", "Card number for this push (empty: the employee's)", input("card", "text", "", false, None), None))
                (field("privilege", "Privilege for this push", select("privilege", &privileges(), "", None), None))
                button type="submit" { "Push to devices" }
            }
            h2 { "Remove from devices" }
            form.stack method="post" action=(format!("{url}/remove")) data-testid="remove-form" {
                (csrf_field(&ctx))
                (field("device", "Device", select("device", &holders, "", None), None))
                button type="submit" { "Remove from devices" }
            }
            h2 { "Copy fingerprints" }
            @if zk.is_empty() || holders.len() < 3 { p { "Copying needs a ZKTeco device and another ZKTeco or push device at the site." } } @else {
                form.stack method="post" action=(format!("{url}/copy-templates")) data-testid="copy-form" {
                    (csrf_field(&ctx))
                    (field("from", "From the device where they enrolled", select("from", &zk, &zk[0].0, None), None))
                    p { "To every other ZKTeco or push device of the site read by the same agent." }
                    button type="submit" { "Copy fingerprints" }
                }
            }
        }
        h2 { "Recent commands about this employee" }
        @if mine.is_empty() { p { "None." } } @else {
            div.table-wrap { table data-testid="employee-commands" {
                thead { tr { th scope="col" { "#" } th scope="col" { "Action" } th scope="col" { "Device" }
                    th scope="col" { "State" } th scope="col" { "Result" } } }
                tbody { @for c in &mine { tr data-command=(c.id) {
                    td { (c.id) } td { (c.action) } td { (c.device_serial.as_deref().unwrap_or("—")) }
                    td { (c.state) @if c.partial() { " (some refused)" } }
                    td { (c.detail.as_deref().unwrap_or("")) }
                } } }
            } }
        }
    };
    Ok(form_page(StatusCode::OK, &title, &ctx, body))
}

fn privileges() -> Vec<(String, String)> {
    std::iter::once((String::new(), "The employee's (none: keep the terminal's)".to_owned()))
        .chain(DevicePrivilege::ALL.iter().map(|p| (p.code().to_string(), format!("{} ({})", p.as_str(), p.code()))))
        .collect()
}

/// Whether a command is about employee `id` (its users or PINs name them).
fn about(command: &CommandRecord, id: &str) -> bool {
    let detail = &command.action_detail;
    let named = |v: &serde_json::Value| v.as_str() == Some(id);
    detail.as_object().into_iter().flat_map(|o| o.values()).any(|action| {
        named(&action["pin"])
            || action["pins"].as_array().is_some_and(|p| p.iter().any(named))
            || action["users"].as_array().is_some_and(|u| u.iter().any(|u| named(&u["pin"])))
    })
}

/// The form of the push and remove buttons.
#[derive(Debug, Default, Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    device: String,
    #[serde(default)]
    card: String,
    #[serde(default)]
    privilege: String,
}

/// The form of the copy button.
#[derive(Debug, Default, Deserialize)]
pub struct CopyForm {
    #[serde(default)]
    from: String,
}

fn chosen(device: &str) -> Option<Vec<String>> {
    let device = device.trim();
    (!device.is_empty()).then(|| vec![device.to_owned()])
}

/// The answer to a button: back to the page with the commands created, or with the refusal.
fn answer(id: &str, what: &str, result: Result<Vec<CommandRecord>, ApiError>) -> Result<Response, WebError> {
    match result {
        Ok(created) => {
            let ids: Vec<String> = created.iter().map(|c| format!("#{}", c.id)).collect();
            Ok(flash_redirect(&page_url(id), &format!("{what}: {} commands created ({}).", ids.len(), ids.join(", "))))
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            Ok(flash_redirect(&page_url(id), &format!("{what} not done: {}", e.message)))
        }
        Err(e) => Err(e.into()),
    }
}

fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| crate::http::api::invalid(field, format!("{text:?} is not a number")))
}

async fn push(state: &AppState, caller: &Caller, id: &str, form: &DeviceForm) -> Result<Vec<CommandRecord>, ApiError> {
    let req = PushUser {
        devices: chosen(&form.device),
        card: number("card", &form.card)?,
        privilege: number("privilege", &form.privilege)?,
        expires_in_secs: None,
    };
    fleet_users::push_commands(state, caller, id, &req).await
}

/// `POST /employees/{employee_id}/devices/push`.
pub async fn push_submit(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<DeviceForm>,
) -> Result<Response, WebError> {
    answer(&id, "Push to devices", push(&state, &ctx.caller, &id, &form).await)
}

/// `POST /employees/{employee_id}/devices/remove`.
pub async fn remove_submit(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<DeviceForm>,
) -> Result<Response, WebError> {
    let req = RemoveUser { devices: chosen(&form.device), expires_in_secs: None };
    answer(&id, "Remove from devices", fleet_users::remove_commands(&state, &ctx.caller, &id, &req).await)
}

/// `POST /employees/{employee_id}/devices/copy-templates`.
pub async fn copy_submit(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<CopyForm>,
) -> Result<Response, WebError> {
    let req = CopyTemplates { from: form.from.trim().to_owned(), to: None, expires_in_secs: None };
    answer(&id, "Copy fingerprints", fleet_users::copy_commands(&state, &ctx.caller, &id, &req).await)
}

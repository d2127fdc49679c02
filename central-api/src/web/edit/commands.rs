//! Remote commands from the dashboard (issue 17): the form on a device's page (one device) and on `GET /commands`
//! (every device of a site), posted to `POST /commands`, and the history tables with each command's state
//! (`pending -> delivered -> done | failed`, or `expired`) and result. Commands are created by the API's own
//! [`create_commands`] (same scope checks, same audit); a refusal comes back with status 400 naming the field.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDateTime;
use maud::{html, Markup};
use serde::Deserialize;

use super::{error_summary, form_page};
use crate::access::Action;
use crate::http::api::fleet::{applies, create_commands, CommandRequest, ACTIONS};
use crate::http::api::updates::FieldError;
use crate::http::AppState;
use crate::store::fleet::CommandRecord;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::flash_redirect;
use crate::web::muster::url_segment;

/// What each action does, for the form.
fn label(action: &str) -> &'static str {
    match action {
        "sync_clock" => "Set the device clock to the agent's",
        "pull_now" => "Read the device log now",
        "reread" => "Read the device log again since a date",
        "refresh_info" => "Read the device's identity again",
        "clear_log" => "Clear the device log (only where its clear-log rule allows)",
        "restart_source" => "Restart the agent's reader of the device",
        "reload_config" => "Reload the agent's configuration",
        "send_status" => "Ask the agent for a status now",
        "push_set_time" => "Push device: set its clock to a time",
        "push_reupload" => "Push device: upload a time range again",
        "push_info" => "Push device: report its information",
        _ => "",
    }
}

/// The command form for one device of kind `kind` (`device` set) or for every device of `site` (`device` `None`);
/// `back` is where the answer goes.
pub fn command_form(ctx: &WebContext, device: Option<&str>, site: &str, kind: &str, back: &str) -> Markup {
    let actions: Vec<&str> = ACTIONS
        .iter()
        .copied()
        .filter(|a| match device {
            Some(_) => !matches!(*a, "reload_config" | "send_status") && applies(a, kind),
            None => true,
        })
        .collect();
    let id = device.map_or_else(|| format!("site-{site}"), |d| format!("device-{d}"));
    html! {
        form.stack method="post" action="/commands" data-testid=(format!("command-form-{id}")) {
            (csrf_field(ctx))
            input type="hidden" name="back" value=(back);
            @if let Some(d) = device { input type="hidden" name="device" value=(d); }
            @else { input type="hidden" name="site_id" value=(site); }
            div.field {
                label for=(format!("action-{id}")) { "Command" }
                select id=(format!("action-{id}")) name="action" {
                    @for a in &actions { option value=(a) { (label(a)) " (" (a) ")" } }
                }
            }
            div.field {
                label for=(format!("since-{id}")) { "Since (read again; YYYY-MM-DD, empty: the whole log)" }
                input id=(format!("since-{id}")) name="since" type="date";
            }
            @if device.is_none() || kind == "adms" {
                div.field {
                    label for=(format!("time-{id}")) { "Time (push set time)" }
                    input id=(format!("time-{id}")) name="time" type="datetime-local" step="1";
                }
                div.field {
                    label for=(format!("from-{id}")) { "From / until (push upload again)" }
                    input id=(format!("from-{id}")) name="from" type="datetime-local" step="1";
                    input name="until" type="datetime-local" step="1" aria-label="until";
                }
            }
            div.field {
                label for=(format!("expires-{id}")) { "Expires after (seconds undelivered; an hour when empty)" }
                input id=(format!("expires-{id}")) name="expires_in_secs" type="number" min="1";
            }
            button type="submit" { @if device.is_some() { "Send" } @else { "Send to every device of " (site) } }
        }
    }
}

/// The history of commands, newest first.
pub fn history_table(commands: &[CommandRecord]) -> Markup {
    html! {
        @if commands.is_empty() { p data-testid="no-commands" { "No command yet." } } @else {
            div.table-wrap { table data-testid="commands" {
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { "Site" } th scope="col" { "Device" }
                    th scope="col" { "Agent" } th scope="col" { "Command" } th scope="col" { "State" }
                    th scope="col" { "Created" } th scope="col" { "Delivered" } th scope="col" { "Finished" }
                    th scope="col" { "Result" }
                } }
                tbody { @for c in commands {
                    tr data-command=(c.id) data-state=(c.state) {
                        th scope="row" { (c.id) } td { (c.site_id) }
                        td { @if let Some(d) = &c.device_serial {
                            a href=(format!("/devices/{}", url_segment(d))) { (d) } } @else { "—" } }
                        td { (c.agent_id) } td { (c.action) }
                        td { span class=(match c.state.as_str() { "done" if c.partial() => "warn", "done" => "ok", "failed" | "expired" => "bad", _ => "muted" }) { (c.state) }
                            @if c.partial() { " " span.warn data-partial="true" { "(some users refused)" } } }
                        td { (c.created_at.format("%Y-%m-%d %H:%M:%S UTC")) " by " (c.created_by) }
                        td { @if let Some(t) = c.delivered_at { (t.format("%H:%M:%S")) @if c.deliveries > 1 { " (" (c.deliveries) "×)" } } @else { "—" } }
                        td { @if let Some(t) = c.finished_at { (t.format("%H:%M:%S")) } @else { "—" } }
                        td { (c.detail.as_deref().unwrap_or("")) }
                    }
                } }
            } }
        }
    }
}

/// The command form as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CommandForm {
    back: String,
    device: String,
    site_id: String,
    action: String,
    since: String,
    time: String,
    from: String,
    until: String,
    expires_in_secs: String,
}

fn local_time(field: &'static str, text: &str) -> Result<Option<NaiveDateTime>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(Some)
        .ok_or_else(|| FieldError::new(field, format!("{text:?} is not a local time (YYYY-MM-DDTHH:MM:SS)")))
}

impl CommandForm {
    fn request(&self) -> Result<CommandRequest, FieldError> {
        let optional = |t: &str| Some(t.trim().to_owned()).filter(|t| !t.is_empty());
        Ok(CommandRequest {
            device: optional(&self.device),
            site_id: optional(&self.site_id),
            action: self.action.trim().to_owned(),
            since: super::date("since", &self.since)?,
            time: local_time("time", &self.time)?,
            from: local_time("from", &self.from)?,
            until: local_time("until", &self.until)?,
            expires_in_secs: match self.expires_in_secs.trim() {
                "" => None,
                t => Some(t.parse().map_err(|_| {
                    FieldError::new("expires_in_secs", format!("{t:?} is not a whole number of seconds"))
                })?),
            },
        })
    }

    /// Where to go after: a page of ours, else the commands page.
    fn back(&self) -> String {
        let back = self.back.trim();
        if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') {
            back.to_owned()
        } else {
            "/commands".to_owned()
        }
    }
}

fn refused(ctx: &WebContext, form: &CommandForm, e: &FieldError) -> Response {
    let body = html! {
        h1 { "Command refused" }
        (error_summary(Some(e)))
        p { a href=(form.back()) { "Back" } }
    };
    form_page(StatusCode::BAD_REQUEST, "Command refused", ctx, body)
}

/// `POST /commands`.
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<CommandForm>,
) -> Result<Response, WebError> {
    let request = match form.request() {
        Ok(r) => r,
        Err(e) => return Ok(refused(&ctx, &form, &e)),
    };
    match create_commands(&state, &ctx.caller, &request).await {
        Ok(created) => {
            let ids: Vec<String> = created.iter().map(|c| c.id.to_string()).collect();
            Ok(flash_redirect(
                &form.back(),
                &format!("{} sent as command {} (see its state below).", request.action, ids.join(", ")),
            ))
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let (field, message) = e.message.split_once(": ").unwrap_or(("action", e.message.as_str()));
            let field = ["device", "site_id", "action", "since", "time", "from", "until", "expires_in_secs"]
                .into_iter()
                .find(|f| *f == field)
                .unwrap_or("action");
            Ok(refused(&ctx, &form, &FieldError::new(field, message)))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    site: Option<String>,
}

/// `GET /commands`: the caller's sites' commands, and a site-wide form per site the caller manages.
pub async fn list(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, WebError> {
    let site = q.site.as_deref().filter(|s| !s.is_empty());
    if let Some(site) = site {
        ctx.caller.require(Action::Read, Some(site))?;
    }
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let history = state.store.list_commands(ctx.caller.scope(), site, None, None, 200).await?;
    let body = html! {
        h1 { "Commands" }
        @for s in sites.iter().filter(|s| site.is_none_or(|x| x == s.site_id)) {
            @if ctx.caller.require(Action::Write, Some(&s.site_id)).is_ok() {
                h2 { "Every device of " (s.name) " (" (s.site_id) ")" }
                (command_form(&ctx, None, &s.site_id, "", &format!("/commands?site={}", url_segment(&s.site_id))))
            }
        }
        h2 { "History" }
        (history_table(&history))
    };
    Ok(form_page(StatusCode::OK, "Commands", &ctx, body))
}

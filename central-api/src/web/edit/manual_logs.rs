//! Manual punches: `GET /manual-logs` (pending ones with Approve / Reject for those who may decide them, then the
//! recently decided), `GET /manual-logs/new?employee=&date=` and `POST /manual-logs` (employee, date, time,
//! direction, reason), `POST /manual-logs/{id}/approve|reject`. Requests and decisions go through the store's
//! functions, which mark the employee's days for the attendance worker.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::{error_summary, field, form_page, input, select, status_for};
use crate::access::{Action, Caller, Role};
use crate::http::api::requests;
use crate::http::api::updates::FieldError;
use crate::http::AppState;
use crate::store::attendance::requests::NewManualLog;
use crate::store::listing::{RequestRow, RequestTable};
use crate::store::StoreError;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::{flash_redirect, page};
use crate::web::muster::url_segment;

/// How many decided manual punches the list shows.
const RECENT: usize = 50;

/// The punch directions a manual punch may have: (state name, label).
const DIRECTIONS: [(&str, &str); 6] = [
    ("check_in", "In"),
    ("check_out", "Out"),
    ("break_out", "Break out"),
    ("break_in", "Break in"),
    ("overtime_in", "Overtime in"),
    ("overtime_out", "Overtime out"),
];

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    site: Option<String>,
}

/// `GET /manual-logs`.
pub async fn list(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Query(q): Query<ListQuery>,
) -> Result<Markup, WebError> {
    let site = q.site.filter(|s| !s.is_empty());
    if let Some(site) = &site {
        ctx.caller.require(Action::Read, Some(site))?;
    }
    let scope = ctx.caller.scope();
    let pending = state.store.list_manual_logs(scope, site.as_deref(), Some("pending")).await?;
    let all = state.store.list_manual_logs(scope, site.as_deref(), None).await?;
    let decided: Vec<&RequestRow> = all.iter().rev().filter(|r| r.approval != "pending").take(RECENT).collect();
    let body = html! {
        h1 { "Manual punches" }
        @if ctx.caller.role != Role::Viewer {
            p { a href="/manual-logs/new" data-testid="new-manual-log" { "Add a manual punch" } }
        }
        h2 { "Waiting for approval" }
        @if pending.is_empty() {
            p.muted data-testid="no-pending" { "Nothing is waiting." }
        } @else {
            (table(&ctx, &pending.iter().collect::<Vec<_>>(), true))
        }
        h2 { "Recently decided" }
        @if decided.is_empty() {
            p.muted { "None yet." }
        } @else {
            (table(&ctx, &decided, false))
        }
    };
    Ok(page("Manual punches", &ctx, body))
}

fn may_decide(caller: &Caller, row: &RequestRow) -> bool {
    row.site_id.as_deref().is_some_and(|s| caller.require(Action::Write, Some(s)).is_ok())
}

fn table(ctx: &WebContext, rows: &[&RequestRow], actions: bool) -> Markup {
    html! {
        div.table-wrap {
            table data-testid=(if actions { "pending-manual-logs" } else { "decided-manual-logs" }) {
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "Employee" } th scope="col" { "Time" }
                    th scope="col" { "Direction" } th scope="col" { "Reason" } th scope="col" { "Requested by" }
                    th scope="col" { @if actions { "Decision" } @else { "Decided" } }
                } }
                tbody {
                    @for row in rows {
                        tr data-manual-log=(row.id) {
                            td { (row.id) }
                            td { a href=(format!("/employees/{}/day/{}", url_segment(&row.employee_id), row.from.date())) { (row.employee_id) } }
                            td { (row.from.format("%Y-%m-%d %H:%M")) }
                            td { (direction_label(&row.kind)) }
                            td { (row.reason) }
                            td { (row.requested_by) }
                            td {
                                @if !actions {
                                    (row.approval) @if let Some(by) = &row.decided_by { " by " (by) }
                                } @else if may_decide(&ctx.caller, row) {
                                    form.inline method="post" action=(format!("/manual-logs/{}/approve", row.id)) {
                                        (csrf_field(ctx))
                                        button type="submit" data-testid=(format!("approve-{}", row.id))
                                            aria-label=(format!("Approve manual punch {}", row.id)) { "Approve" }
                                    }
                                    " "
                                    form.inline method="post" action=(format!("/manual-logs/{}/reject", row.id)) {
                                        (csrf_field(ctx))
                                        button type="submit" data-testid=(format!("reject-{}", row.id))
                                            aria-label=(format!("Reject manual punch {}", row.id)) { "Reject" }
                                    }
                                } @else {
                                    span.muted { "pending" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn direction_label(state: &str) -> &str {
    DIRECTIONS.iter().find(|(name, _)| *name == state).map_or(state, |(_, label)| label)
}

/// What the form holds (every field as typed).
#[derive(Debug, Default, Deserialize)]
pub struct ManualLogForm {
    #[serde(default)]
    employee: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    time: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    reason: String,
}

async fn employee_options(state: &AppState, caller: &Caller) -> Result<Vec<(String, String)>, WebError> {
    let all = state.store.employee_profiles(None, None).await?;
    let mut options = vec![(String::new(), "Choose an employee".to_owned())];
    options.extend(
        all.into_iter()
            .filter(|p| p.site_id.as_deref().is_some_and(|s| caller.require(Action::Write, Some(s)).is_ok()))
            .map(|p| (p.employee_id.clone(), format!("{} · {}", p.employee_id, p.name))),
    );
    Ok(options)
}

async fn render_form(
    state: &AppState,
    ctx: &WebContext,
    form: &ManualLogForm,
    error: Option<&FieldError>,
) -> Result<Response, WebError> {
    let employees = employee_options(state, &ctx.caller).await?;
    let directions: Vec<(String, String)> =
        DIRECTIONS.iter().map(|(n, l)| ((*n).to_owned(), (*l).to_owned())).collect();
    let body = html! {
        h1 { "Add a manual punch" }
        p.muted { "The punch counts once an administrator of the employee's site approves it. Times are the site's local time." }
        (error_summary(error))
        form.stack method="post" action="/manual-logs" data-testid="manual-log-form" {
            (csrf_field(ctx))
            (field("employee", "Employee", select("employee", &employees, &form.employee, error), error))
            (field("date", "Date", input("date", "date", &form.date, true, error), error))
            (field("time", "Time", input("time", "time", &form.time, true, error), error))
            (field("direction", "Direction", select("direction", &directions, &form.direction, error), error))
            (field("reason", "Reason", input("reason", "text", &form.reason, true, error), error))
            button type="submit" { "Save for approval" }
        }
    };
    Ok(form_page(status_for(error), "Add a manual punch", ctx, body))
}

#[derive(Debug, Default, Deserialize)]
pub struct NewQuery {
    employee: Option<String>,
    date: Option<String>,
}

/// `GET /manual-logs/new?employee=&date=`.
pub async fn new_form(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Query(q): Query<NewQuery>,
) -> Result<Response, WebError> {
    if ctx.caller.role == Role::Viewer {
        return Err(WebError::page(StatusCode::FORBIDDEN, "a viewer may not add manual punches"));
    }
    let form = ManualLogForm {
        employee: q.employee.unwrap_or_default(),
        date: q.date.unwrap_or_default(),
        direction: "check_in".to_owned(),
        ..ManualLogForm::default()
    };
    render_form(&state, &ctx, &form, None).await
}

/// The employee's site when the caller sees the employee.
async fn visible_site(state: &AppState, caller: &Caller, employee: &str) -> Result<Option<String>, StoreError> {
    let profile = state.store.employee_profile(employee).await?;
    Ok(profile.and_then(|p| p.site_id).filter(|s| caller.sees(s)))
}

/// Checks the form (as `POST /api/v1/manual-logs` does); returns the log and the employee's site.
async fn checked(
    state: &AppState,
    caller: &Caller,
    form: &ManualLogForm,
) -> Result<Result<(NewManualLog, String), FieldError>, WebError> {
    let employee = form.employee.trim();
    let Some(site) = visible_site(state, caller, employee).await? else {
        return Ok(Err(FieldError::new("employee", format!("employee {employee:?} does not exist"))));
    };
    let date = match super::date("date", &form.date) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(Err(FieldError::new("date", "is required"))),
        Err(e) => return Ok(Err(e)),
    };
    let time = match super::time("time", &form.time) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let Some(punch_state) = protocol::PunchState::from_name(&form.direction)
        .filter(|_| DIRECTIONS.iter().any(|(n, _)| *n == form.direction))
    else {
        return Ok(Err(FieldError::new("direction", format!("{:?} is not a direction such as In", form.direction))));
    };
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Ok(Err(FieldError::new("reason", "must be 1 to 500 characters")));
    }
    let log = NewManualLog {
        employee_id: employee.to_owned(),
        local_time: date.and_time(time),
        state: punch_state,
        reason: reason.to_owned(),
        requested_by: caller.username.clone(),
    };
    Ok(Ok((log, site)))
}

/// `POST /manual-logs`.
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<ManualLogForm>,
) -> Result<Response, WebError> {
    let (log, site) = match checked(&state, &ctx.caller, &form).await? {
        Ok(ok) => ok,
        Err(e) => return render_form(&state, &ctx, &form, Some(&e)).await,
    };
    let id = requests::request_manual_log(&state, &ctx.caller, &site, &log).await?;
    let message = format!(
        "Manual punch #{id} for {} at {} saved; it waits for approval.",
        log.employee_id,
        log.local_time.format("%Y-%m-%d %H:%M")
    );
    Ok(flash_redirect("/manual-logs", &message))
}

/// Approves or rejects through the API's own check and store call; an already decided log is a flash message.
async fn decide(state: &AppState, ctx: &WebContext, id: i64, approve: bool) -> Result<Response, WebError> {
    let message = match requests::decide(state, &ctx.caller, RequestTable::ManualLogs, id, approve).await {
        Ok(_) if approve => format!("Manual punch #{id} approved; the employee's day is being recomputed."),
        Ok(_) => format!("Manual punch #{id} rejected."),
        Err(e) if e.status == StatusCode::CONFLICT => format!("Manual punch #{id} was not changed: {}", e.message),
        Err(e) => return Err(e.into()),
    };
    Ok(flash_redirect("/manual-logs", &message))
}

/// `POST /manual-logs/{id}/approve`.
pub async fn approve(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    decide(&state, &ctx, id, true).await
}

/// `POST /manual-logs/{id}/reject`.
pub async fn reject(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    decide(&state, &ctx, id, false).await
}

//! Shifts: `GET /shifts` (everyone sees them), `GET/POST /shifts/new` and `GET/POST /shifts/{code}/edit` (root, as
//! in the API). A change is checked by [`changed_shift`] and stored by `update_shift`, which marks the days of the
//! shift's employees from the date it applies.

use axum::extract::{Path, State};
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::{error_summary, field, form_page, input, status_for};
use crate::access::{Action, Role};
use crate::attendance::engine::Shift;
use crate::http::api::updates::{changed_shift, FieldError, ShiftChange};
use crate::http::AppState;
use crate::store::StoreError;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::{flash_redirect, page};
use crate::web::muster::url_segment;

/// `GET /shifts`.
pub async fn list(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Markup, WebError> {
    ctx.caller.require(Action::Read, None)?;
    let shifts = state.store.shifts().await?;
    let root = ctx.caller.role == Role::Root;
    let body = html! {
        h1 { "Shifts" }
        @if root {
            p { a href="/shifts/new" data-testid="new-shift" { "Add a shift" } }
        } @else {
            p.muted { "Shifts apply to every site; only a root administrator changes them." }
        }
        div.table-wrap {
            table data-testid="shifts" {
                thead { tr {
                    th scope="col" { "Code" } th scope="col" { "Name" } th scope="col" { "Start" } th scope="col" { "End" }
                    th scope="col" { "Late after (min)" } th scope="col" { "Early before (min)" }
                    th scope="col" { "Half day from (min)" } th scope="col" { "Present from (min)" }
                    @if root { th scope="col" { "Edit" } }
                } }
                tbody {
                    @for s in &shifts {
                        tr data-shift=(s.shift.code) {
                            th scope="row" { (s.shift.code) }
                            td { (s.name) }
                            td { (s.shift.start.format("%H:%M")) }
                            td { (s.shift.end.format("%H:%M")) }
                            td { (s.shift.grace_late_in.num_minutes()) }
                            td { (s.shift.grace_early_out.num_minutes()) }
                            td { (s.shift.min_half_day.num_minutes()) }
                            td { (s.shift.max_work_for_half_day.num_minutes()) }
                            @if root {
                                td { a href=(format!("/shifts/{}/edit", url_segment(&s.shift.code))) aria-label=(format!("Edit shift {}", s.shift.code)) { "Edit" } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Shifts", &ctx, body))
}

/// The form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct ShiftForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    grace_late_in_mins: String,
    #[serde(default)]
    grace_early_out_mins: String,
    #[serde(default)]
    min_half_day_mins: String,
    #[serde(default)]
    max_work_for_half_day_mins: String,
    #[serde(default)]
    effective_from: String,
}

impl ShiftForm {
    fn of(name: &str, s: &Shift) -> Self {
        Self {
            code: s.code.clone(),
            name: name.to_owned(),
            start: s.start.format("%H:%M").to_string(),
            end: s.end.format("%H:%M").to_string(),
            grace_late_in_mins: s.grace_late_in.num_minutes().to_string(),
            grace_early_out_mins: s.grace_early_out.num_minutes().to_string(),
            min_half_day_mins: s.min_half_day.num_minutes().to_string(),
            max_work_for_half_day_mins: s.max_work_for_half_day.num_minutes().to_string(),
            effective_from: Utc::now().date_naive().to_string(),
        }
    }

    fn change(&self) -> Result<ShiftChange, FieldError> {
        Ok(ShiftChange {
            name: self.name.trim().to_owned(),
            start: super::time("start", &self.start)?,
            end: super::time("end", &self.end)?,
            grace_late_in_mins: super::minutes("grace_late_in_mins", &self.grace_late_in_mins)?,
            grace_early_out_mins: super::minutes("grace_early_out_mins", &self.grace_early_out_mins)?,
            min_half_day_mins: super::minutes("min_half_day_mins", &self.min_half_day_mins)?,
            max_work_for_half_day_mins: super::minutes("max_work_for_half_day_mins", &self.max_work_for_half_day_mins)?,
            effective_from: super::date("effective_from", &self.effective_from)?,
        })
    }
}

fn render_form(ctx: &WebContext, form: &ShiftForm, existing: bool, error: Option<&FieldError>) -> Response {
    let (title, action) = if existing {
        (format!("Edit shift {}", form.code), format!("/shifts/{}/edit", url_segment(&form.code)))
    } else {
        ("Add a shift".to_owned(), "/shifts/new".to_owned())
    };
    let body = html! {
        h1 { (title) }
        (error_summary(error))
        form.stack method="post" action=(action) data-testid="shift-form" {
            (csrf_field(ctx))
            @if existing {
                input type="hidden" name="code" value=(form.code);
            } @else {
                (field("code", "Code", input("code", "text", &form.code, true, error), error))
            }
            (field("name", "Name", input("name", "text", &form.name, true, error), error))
            (field("start", "Starts at", input("start", "time", &form.start, true, error), error))
            (field("end", "Ends at", input("end", "time", &form.end, true, error), error))
            (field("grace_late_in_mins", "Minutes of grace before an arrival is late", input("grace_late_in_mins", "number", &form.grace_late_in_mins, false, error), error))
            (field("grace_early_out_mins", "Minutes of grace before a departure is early", input("grace_early_out_mins", "number", &form.grace_early_out_mins, false, error), error))
            (field("min_half_day_mins", "Minutes of work for a half day", input("min_half_day_mins", "number", &form.min_half_day_mins, false, error), error))
            (field("max_work_for_half_day_mins", "Minutes of work above which the day is present", input("max_work_for_half_day_mins", "number", &form.max_work_for_half_day_mins, false, error), error))
            @if existing {
                (field("effective_from", "Applies from (days from then are recomputed)", input("effective_from", "date", &form.effective_from, false, error), error))
            }
            button type="submit" { "Save" }
        }
    };
    form_page(status_for(error), &title, ctx, body)
}

/// `GET /shifts/new`.
pub async fn new_form(WebCaller(ctx): WebCaller) -> Result<Response, WebError> {
    ctx.caller.require(Action::Write, None)?;
    let form = ShiftForm { start: "09:00".into(), end: "18:00".into(), ..ShiftForm::default() };
    Ok(render_form(&ctx, &form, false, None))
}

/// `POST /shifts/new`.
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<ShiftForm>,
) -> Result<Response, WebError> {
    ctx.caller.require(Action::Write, None)?;
    let code = form.code.trim().to_owned();
    let shift = match form.change().and_then(|c| changed_shift(&code, None, &c)) {
        Ok(s) => s,
        Err(e) => return Ok(render_form(&ctx, &form, false, Some(&e))),
    };
    match state.store.create_shift(form.name.trim(), &shift).await {
        Ok(()) => Ok(flash_redirect("/shifts", &format!("Shift {code} added."))),
        Err(StoreError::AlreadyExists { .. }) => {
            Ok(render_form(&ctx, &form, false, Some(&FieldError::new("code", format!("{code:?} is taken")))))
        }
        Err(e) => Err(e.into()),
    }
}

async fn current(state: &AppState, code: &str) -> Result<(String, Shift), WebError> {
    let shifts = state.store.shifts().await?;
    shifts
        .into_iter()
        .find(|s| s.shift.code == code)
        .map(|s| (s.name, s.shift))
        .ok_or_else(|| WebError::not_found(format!("shift {code:?} does not exist")))
}

/// `GET /shifts/{code}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(code): Path<String>,
) -> Result<Response, WebError> {
    ctx.caller.require(Action::Write, None)?;
    let (name, shift) = current(&state, &code).await?;
    Ok(render_form(&ctx, &ShiftForm::of(&name, &shift), true, None))
}

/// `POST /shifts/{code}/edit`.
pub async fn update(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(code): Path<String>,
    CsrfForm(mut form): CsrfForm<ShiftForm>,
) -> Result<Response, WebError> {
    ctx.caller.require(Action::Write, None)?;
    let (_, old) = current(&state, &code).await?;
    form.code = code.clone();
    let change = match form.change() {
        Ok(c) => c,
        Err(e) => return Ok(render_form(&ctx, &form, true, Some(&e))),
    };
    let shift = match changed_shift(&code, Some(&old), &change) {
        Ok(s) => s,
        Err(e) => return Ok(render_form(&ctx, &form, true, Some(&e))),
    };
    let from = change.effective_from.unwrap_or_else(|| Utc::now().date_naive());
    state.store.update_shift(&change.name, &shift, from).await?;
    Ok(flash_redirect("/shifts", &format!("Shift {code} saved; its employees' days from {from} are being recomputed.")))
}

//! Shifts: `GET /shifts` (everyone sees them, every setting), `GET/POST /shifts/new` and
//! `GET/POST /shifts/{code}/edit` (root, as in the API). The form shows every field of the engine's shift, grouped,
//! each with its default and one sentence saying what it does; it is checked by [`changed_shift`] and stored by the
//! API's own [`add_shift`] / [`change_shift`] (same refusals, same audit, same recomputation of past days).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::{error_summary, form_page, input, select, status_for};
use crate::access::{Action, Role};
use crate::attendance::engine::Shift;
use crate::http::api::shifts::{
    add_shift, change_shift, changed_shift, current_shift, ShiftInfo, ShiftSettings, PAIRING_MODES,
    SINGLE_PUNCH_POLICIES,
};
use crate::http::api::updates::FieldError;
use crate::http::AppState;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::{flash_redirect, page};
use crate::web::muster::url_segment;

fn mins(v: Option<i64>) -> String {
    v.map_or_else(|| "never".to_owned(), |m| format!("{m} min"))
}

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
                    th scope="col" { "Code" } th scope="col" { "Name" } th scope="col" { "Hours" }
                    th scope="col" { "Grace late / early (min)" } th scope="col" { "Half day from / present above (min)" }
                    th scope="col" { "Overtime before / after" } th scope="col" { "Lunch" }
                    th scope="col" { "Windows before / after (min)" } th scope="col" { "Pairing" }
                    th scope="col" { "Debounce (s)" } th scope="col" { "One punch" }
                    @if root { th scope="col" { "Edit" } }
                } }
                tbody {
                    @for s in &shifts {
                        @let i = ShiftInfo::of(&s.name, &s.shift);
                        tr data-shift=(i.code) {
                            th scope="row" { (i.code) }
                            td { (i.name) }
                            td { (i.start.format("%H:%M")) "–" (i.end.format("%H:%M")) @if i.overnight { " (overnight)" } }
                            td { (i.grace_late_in_mins) " / " (i.grace_early_out_mins) }
                            td { (i.min_half_day_mins) " / " (i.max_work_for_half_day_mins) }
                            td { (mins(i.overtime_threshold_before_shift_mins)) " / " (mins(i.overtime_threshold_after_shift_mins)) }
                            td {
                                @if i.deduct_lunch_break {
                                    (i.lunch_break_duration_mins) " min from "
                                    (i.lunch_break_start.map_or_else(|| "mid-shift".to_owned(), |t| t.format("%H:%M").to_string()))
                                } @else { "not deducted" }
                            }
                            td { (i.check_in_window_before_start_mins) " / " (i.check_out_window_after_end_mins) }
                            td { (i.pairing) }
                            td { (i.debounce_secs) }
                            td { (i.single_punch) }
                            @if root {
                                td { a href=(format!("/shifts/{}/edit", url_segment(&i.code))) aria-label=(format!("Edit shift {}", i.code)) { "Edit" } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Shifts", &ctx, body))
}

/// The form as typed: every field as text (a blank optional threshold or lunch start means "none").
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShiftForm {
    code: String,
    name: String,
    start: String,
    end: String,
    grace_late_in_mins: String,
    grace_early_out_mins: String,
    min_half_day_mins: String,
    max_work_for_half_day_mins: String,
    overtime_threshold_before_shift_mins: String,
    overtime_threshold_after_shift_mins: String,
    deduct_lunch_break: String,
    lunch_break_start: String,
    lunch_break_duration_mins: String,
    check_in_window_before_start_mins: String,
    check_out_window_after_end_mins: String,
    pairing: String,
    debounce_secs: String,
    single_punch: String,
    effective_from: String,
}

impl ShiftForm {
    fn of(name: &str, s: &Shift) -> Self {
        let i = ShiftInfo::of(name, s);
        let opt = |v: Option<i64>| v.map(|m| m.to_string()).unwrap_or_default();
        Self {
            code: i.code,
            name: i.name,
            start: i.start.format("%H:%M").to_string(),
            end: i.end.format("%H:%M").to_string(),
            grace_late_in_mins: i.grace_late_in_mins.to_string(),
            grace_early_out_mins: i.grace_early_out_mins.to_string(),
            min_half_day_mins: i.min_half_day_mins.to_string(),
            max_work_for_half_day_mins: i.max_work_for_half_day_mins.to_string(),
            overtime_threshold_before_shift_mins: opt(i.overtime_threshold_before_shift_mins),
            overtime_threshold_after_shift_mins: opt(i.overtime_threshold_after_shift_mins),
            deduct_lunch_break: if i.deduct_lunch_break { "on".into() } else { String::new() },
            lunch_break_start: i.lunch_break_start.map(|t| t.format("%H:%M").to_string()).unwrap_or_default(),
            lunch_break_duration_mins: i.lunch_break_duration_mins.to_string(),
            check_in_window_before_start_mins: i.check_in_window_before_start_mins.to_string(),
            check_out_window_after_end_mins: i.check_out_window_after_end_mins.to_string(),
            pairing: i.pairing,
            debounce_secs: i.debounce_secs.to_string(),
            single_punch: i.single_punch,
            effective_from: String::new(),
        }
    }

    fn settings(&self) -> Result<ShiftSettings, FieldError> {
        let optional = |field: &'static str, text: &str| super::minutes(field, text).map(Some);
        let lunch_start = match self.lunch_break_start.trim() {
            "" => None,
            text => Some(super::time("lunch_break_start", text)?),
        };
        Ok(ShiftSettings {
            code: Some(self.code.trim().to_owned()),
            name: Some(self.name.trim().to_owned()),
            start: Some(super::time("start", &self.start)?),
            end: Some(super::time("end", &self.end)?),
            grace_late_in_mins: super::minutes("grace_late_in_mins", &self.grace_late_in_mins)?,
            grace_early_out_mins: super::minutes("grace_early_out_mins", &self.grace_early_out_mins)?,
            min_half_day_mins: super::minutes("min_half_day_mins", &self.min_half_day_mins)?,
            max_work_for_half_day_mins: super::minutes("max_work_for_half_day_mins", &self.max_work_for_half_day_mins)?,
            overtime_threshold_before_shift_mins: optional(
                "overtime_threshold_before_shift_mins",
                &self.overtime_threshold_before_shift_mins,
            )?,
            overtime_threshold_after_shift_mins: optional(
                "overtime_threshold_after_shift_mins",
                &self.overtime_threshold_after_shift_mins,
            )?,
            deduct_lunch_break: Some(!self.deduct_lunch_break.is_empty()),
            lunch_break_start: Some(lunch_start),
            lunch_break_duration_mins: super::minutes("lunch_break_duration_mins", &self.lunch_break_duration_mins)?,
            check_in_window_before_start_mins: super::minutes(
                "check_in_window_before_start_mins",
                &self.check_in_window_before_start_mins,
            )?,
            check_out_window_after_end_mins: super::minutes(
                "check_out_window_after_end_mins",
                &self.check_out_window_after_end_mins,
            )?,
            pairing: Some(self.pairing.trim().to_owned()).filter(|p| !p.is_empty()),
            debounce_secs: match self.debounce_secs.trim() {
                "" => None,
                t => Some(t.parse().map_err(|_| {
                    FieldError::new("debounce_secs", format!("{t:?} is not a whole number of seconds"))
                })?),
            },
            single_punch: Some(self.single_punch.trim().to_owned()).filter(|p| !p.is_empty()),
            effective_from: super::date("effective_from", &self.effective_from)?,
        })
    }
}

/// A labelled control with its one-sentence help (and default) below it, and the error when it is about it.
fn described(name: &str, label: &str, control: Markup, help: &str, error: Option<&FieldError>) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            (control)
            small id=(format!("{name}-help")) { (help) }
            @if let Some(e) = error.filter(|e| e.field == name) {
                p.error id=(format!("{name}-error")) data-testid=(format!("error-{name}")) { (e.message) }
            }
        }
    }
}

fn number(name: &str, value: &str, error: Option<&FieldError>) -> Markup {
    input(name, "number", value, false, error)
}

fn render_form(ctx: &WebContext, form: &ShiftForm, existing: bool, error: Option<&FieldError>) -> Response {
    let (title, action) = if existing {
        (format!("Edit shift {}", form.code), format!("/shifts/{}/edit", url_segment(&form.code)))
    } else {
        ("Add a shift".to_owned(), "/shifts/new".to_owned())
    };
    let options = |names: &[&str]| -> Vec<(String, String)> {
        names.iter().map(|n| ((*n).to_owned(), (*n).replace('_', " "))).collect()
    };
    let body = html! {
        h1 { (title) }
        (error_summary(error))
        p.muted { "Every field shows the value a new shift starts with as its default." }
        form.stack method="post" action=(action) data-testid="shift-form" {
            (csrf_field(ctx))
            fieldset {
                legend { "Hours" }
                @if existing {
                    input type="hidden" name="code" value=(form.code);
                } @else {
                    (described("code", "Code", input("code", "text", &form.code, true, error), "The short code employees are given, such as GEN or NIGHT.", error))
                }
                (described("name", "Name", input("name", "text", &form.name, true, error), "The name people see in lists and reports.", error))
                (described("start", "Starts at", input("start", "time", &form.start, true, error), "Local time the shift starts; its days are dated by this.", error))
                (described("end", "Ends at", input("end", "time", &form.end, true, error), "Local time it ends; earlier than the start means it ends the next morning.", error))
            }
            fieldset {
                legend { "Late coming and early going" }
                (described("grace_late_in_mins", "Grace for arriving (minutes)", number("grace_late_in_mins", &form.grace_late_in_mins, error), "An arrival up to this long after the start is not late (default 0).", error))
                (described("grace_early_out_mins", "Grace for leaving (minutes)", number("grace_early_out_mins", &form.grace_early_out_mins, error), "A departure up to this long before the end is not early (default 0).", error))
            }
            fieldset {
                legend { "Day status" }
                (described("min_half_day_mins", "Work for a half day (minutes)", number("min_half_day_mins", &form.min_half_day_mins, error), "Less work than this on a working day is absent (default 240).", error))
                (described("max_work_for_half_day_mins", "Most work for a half day (minutes)", number("max_work_for_half_day_mins", &form.max_work_for_half_day_mins, error), "Work up to this is a half day, more is present (default 360).", error))
                (described("single_punch", "A day with one punch", select("single_punch", &options(&SINGLE_PUNCH_POLICIES), &form.single_punch, error), "Status of a working day with punches but no complete in/out pair; it is flagged either way (default absent).", error))
            }
            fieldset {
                legend { "Overtime" }
                (described("overtime_threshold_before_shift_mins", "Early arrival counts after (minutes)", number("overtime_threshold_before_shift_mins", &form.overtime_threshold_before_shift_mins, error), "Arriving more than this early is overtime; leave empty so early arrival is never overtime (default 30).", error))
                (described("overtime_threshold_after_shift_mins", "Staying late counts after (minutes)", number("overtime_threshold_after_shift_mins", &form.overtime_threshold_after_shift_mins, error), "Staying more than this after the end is overtime; leave empty for never (default 30).", error))
            }
            fieldset {
                legend { "Lunch break" }
                div.field {
                    label {
                        input type="checkbox" name="deduct_lunch_break" id="deduct_lunch_break" checked[!form.deduct_lunch_break.is_empty()];
                        " Deduct the lunch break from work time"
                    }
                    small { "When ticked, the break below is taken out of every work span that covers it (default off)." }
                }
                (described("lunch_break_start", "Lunch starts at", input("lunch_break_start", "time", &form.lunch_break_start, false, error), "When the break starts; leave empty to centre it on the middle of the shift (default).", error))
                (described("lunch_break_duration_mins", "Lunch length (minutes)", number("lunch_break_duration_mins", &form.lunch_break_duration_mins, error), "How long the break is (default 30).", error))
            }
            fieldset {
                legend { "Punches" }
                (described("check_in_window_before_start_mins", "Punches count from (minutes before the start)", number("check_in_window_before_start_mins", &form.check_in_window_before_start_mins, error), "Punches this long before the start already belong to the shift's day (default 120).", error))
                (described("check_out_window_after_end_mins", "Punches count until (minutes after the end)", number("check_out_window_after_end_mins", &form.check_out_window_after_end_mins, error), "Punches this long after the end still belong to it; the day is final after that (default 240).", error))
                (described("pairing", "How punches pair", select("pairing", &options(&PAIRING_MODES), &form.pairing, error), "first last: first punch in, last out; pairs: in/out alternately; by state: the device's in/out key; mandays: pairs kept as up to ten slots (default first last).", error))
                (described("debounce_secs", "Double taps within (seconds)", number("debounce_secs", &form.debounce_secs, error), "Punches closer together than this are one punch (default 60).", error))
            }
            @if existing {
                (described("effective_from", "Applies from", input("effective_from", "date", &form.effective_from, false, error), "The employees' days from this date are recomputed (empty: from yesterday; at most the backfill window back).", error))
            }
            button type="submit" { "Save" }
        }
    };
    form_page(status_for(error), &title, ctx, body)
}

/// `GET /shifts/new`: the engine's defaults.
pub async fn new_form(WebCaller(ctx): WebCaller) -> Result<Response, WebError> {
    ctx.caller.require(Action::Write, None)?;
    let defaults = Shift::new(
        "",
        chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
        chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default(),
    );
    let form = ShiftForm::of("", &defaults);
    Ok(render_form(&ctx, &form, false, None))
}

/// The form's error for a refusal of the API's functions (400 names a field), or the page error.
fn refusal(e: crate::http::error::ApiError) -> Result<FieldError, WebError> {
    match e.status {
        StatusCode::BAD_REQUEST | StatusCode::CONFLICT => {
            let (field, message) = e.message.split_once(": ").unwrap_or(("code", e.message.as_str()));
            let field = FIELDS.iter().find(|f| **f == field).copied().unwrap_or("code");
            let message = if e.status == StatusCode::CONFLICT { "is taken".to_owned() } else { message.to_owned() };
            Ok(FieldError::new(field, message))
        }
        _ => Err(e.into()),
    }
}

const FIELDS: &[&str] = &[
    "code",
    "name",
    "start",
    "end",
    "grace_late_in_mins",
    "grace_early_out_mins",
    "min_half_day_mins",
    "max_work_for_half_day_mins",
    "overtime_threshold_before_shift_mins",
    "overtime_threshold_after_shift_mins",
    "lunch_break_start",
    "lunch_break_duration_mins",
    "check_in_window_before_start_mins",
    "check_out_window_after_end_mins",
    "pairing",
    "debounce_secs",
    "single_punch",
    "effective_from",
];

/// `POST /shifts/new`.
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<ShiftForm>,
) -> Result<Response, WebError> {
    ctx.caller.require(Action::Write, None)?;
    let settings =
        match form.settings().and_then(|s| changed_shift(s.code.as_deref().unwrap_or(""), None, &s).map(|_| s)) {
            Ok(s) => s,
            Err(e) => return Ok(render_form(&ctx, &form, false, Some(&e))),
        };
    match add_shift(&state, &ctx.caller, &settings).await {
        Ok(info) => Ok(flash_redirect("/shifts", &format!("Shift {} added.", info.code))),
        Err(e) => Ok(render_form(&ctx, &form, false, Some(&refusal(e)?))),
    }
}

/// `GET /shifts/{code}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(code): Path<String>,
) -> Result<Response, WebError> {
    ctx.caller.require(Action::Write, None)?;
    let (name, shift) = current_shift(&state, &code).await?;
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
    current_shift(&state, &code).await?;
    form.code = code.clone();
    let settings = match form.settings() {
        Ok(s) => s,
        Err(e) => return Ok(render_form(&ctx, &form, true, Some(&e))),
    };
    match change_shift(&state, &ctx.caller, &code, &settings).await {
        Ok(_) => {
            let from = state.backfill_from(settings.effective_from);
            Ok(flash_redirect(
                "/shifts",
                &format!("Shift {code} saved; its employees' days from {from} are being recomputed."),
            ))
        }
        Err(e) => Ok(render_form(&ctx, &form, true, Some(&refusal(e)?))),
    }
}

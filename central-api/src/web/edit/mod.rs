//! The dashboard's editing pages (manual punches, employees and the devices that hold them, shifts, sites, holidays,
//! agents, devices, remote commands, alert rules, the caller's API tokens): forms posted with
//! [`CsrfForm`](super::auth::CsrfForm), answered with Post/Redirect/Get and a flash message.
//!
//! Every change goes through the same store functions as the JSON API (so the days it can alter are marked for
//! recomputation) after the same [`Caller::require`](crate::access::Caller::require) check. Forms decode every field
//! as text, so a bad value is never a bare decoding error: the form comes back with status 400 and the message next
//! to the field ([`FieldError`], the same checks and field names as the API's).

pub mod agents;
pub mod alert_rules;
pub mod commands;
pub mod devices;
pub mod employee_devices;
pub mod employees;
pub mod holidays;
pub mod manual_logs;
pub mod shifts;
pub mod sites;
pub mod tokens;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};

use super::auth::WebContext;
use super::layout::page;
use crate::http::api::updates::FieldError;
use crate::http::AppState;

/// The editing routes, merged into [`super::router`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/manual-logs", get(manual_logs::list).post(manual_logs::create))
        .route("/manual-logs/new", get(manual_logs::new_form))
        .route("/manual-logs/{id}/approve", post(manual_logs::approve))
        .route("/manual-logs/{id}/reject", post(manual_logs::reject))
        .route("/employees", get(employees::list))
        .route("/employees/new", get(employees::new_form).post(employees::create))
        .route("/employees/{employee_id}/edit", get(employees::edit_form).post(employees::update))
        .route("/employees/{employee_id}/devices", get(employee_devices::page))
        .route("/employees/{employee_id}/devices/push", post(employee_devices::push_submit))
        .route("/employees/{employee_id}/devices/remove", post(employee_devices::remove_submit))
        .route("/employees/{employee_id}/devices/copy-templates", post(employee_devices::copy_submit))
        .route("/shifts", get(shifts::list))
        .route("/shifts/new", get(shifts::new_form).post(shifts::create))
        .route("/shifts/{code}/edit", get(shifts::edit_form).post(shifts::update))
        .route("/sites", get(sites::list))
        .route("/sites/{id}/edit", get(sites::edit_form).post(sites::update))
        .route("/holidays", get(holidays::list).post(holidays::create))
        .route("/holidays/{id}/delete", post(holidays::delete))
        .route("/agents", post(agents::create))
        .route("/agents/{id}/revoke", post(agents::revoke))
        .route("/devices/new", get(devices::new_form).post(devices::create))
        .route("/devices/{serial}", get(devices::show))
        .route("/devices/{serial}/edit", get(devices::edit_form).post(devices::update))
        .route("/devices/{serial}/delete", post(devices::delete))
        .route("/commands", get(commands::list).post(commands::create))
        .route("/alerts/rules/new", get(alert_rules::new_form).post(alert_rules::create))
        .route("/alerts/rules/{id}/edit", get(alert_rules::edit_form).post(alert_rules::update))
        .route("/alerts/rules/{id}/delete", post(alert_rules::delete))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
}

/// A form page answered with `status` (400 when it comes back with an error).
pub fn form_page(status: StatusCode, title: &str, ctx: &WebContext, body: Markup) -> Response {
    (status, page(title, ctx, body)).into_response()
}

/// The status of a form page: 400 when it shows an error.
pub fn status_for(error: Option<&FieldError>) -> StatusCode {
    if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// The summary above a refused form.
pub fn error_summary(error: Option<&FieldError>) -> Markup {
    html! {
        @if let Some(e) = error {
            p.error role="alert" data-testid="form-error" { "Please correct " (e.field) ": " (e.message) }
        }
    }
}

/// A labelled control with, when `error` is about it, the message right below it.
pub fn field(name: &str, label: &str, control: Markup, error: Option<&FieldError>) -> Markup {
    html! {
        // The layout's stylesheet has no rule for a field; this keeps the label above its control.
        div.field {
            label for=(name) { (label) }
            (control)
            @if let Some(e) = error.filter(|e| e.field == name) {
                p.error id=(format!("{name}-error")) data-testid=(format!("error-{name}")) { (e.message) }
            }
        }
    }
}

/// An `<input>` named and identified `name`, marked invalid when `error` is about it.
pub fn input(name: &str, kind: &str, value: &str, required: bool, error: Option<&FieldError>) -> Markup {
    let invalid = error.is_some_and(|e| e.field == name);
    html! {
        input id=(name) name=(name) type=(kind) value=(value) required[required]
            aria-invalid=[invalid.then_some("true")] aria-describedby=[invalid.then(|| format!("{name}-error"))];
    }
}

/// A `<select>` of (value, label) with `selected` chosen.
pub fn select(name: &str, options: &[(String, String)], selected: &str, error: Option<&FieldError>) -> Markup {
    let invalid = error.is_some_and(|e| e.field == name);
    html! {
        select id=(name) name=(name) aria-invalid=[invalid.then_some("true")]
            aria-describedby=[invalid.then(|| format!("{name}-error"))] {
            @for (value, label) in options {
                option value=(value) selected[value == selected] { (label) }
            }
        }
    }
}

/// Parses an optional number of minutes typed in a form (empty: `None`).
///
/// # Errors
/// Naming `field` when the text is not a whole number.
pub fn minutes(field: &'static str, text: &str) -> Result<Option<i64>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| FieldError::new(field, format!("{text:?} is not a whole number of minutes")))
}

/// Parses a date typed in a form (`YYYY-MM-DD`); empty is `None`.
///
/// # Errors
/// Naming `field` when the text is not a date.
pub fn date(field: &'static str, text: &str) -> Result<Option<chrono::NaiveDate>, FieldError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| FieldError::new(field, format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// Parses a time of day typed in a form (`HH:MM` or `HH:MM:SS`).
///
/// # Errors
/// Naming `field` when the text is not a time.
pub fn time(field: &'static str, text: &str) -> Result<chrono::NaiveTime, FieldError> {
    let text = text.trim();
    chrono::NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| chrono::NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| FieldError::new(field, format!("{text:?} is not a time (HH:MM)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_are_parsed_or_named() {
        assert_eq!(minutes("grace", " 15 "), Ok(Some(15)));
        assert_eq!(minutes("grace", ""), Ok(None));
        assert_eq!(minutes("grace", "ten").map_err(|e| e.field), Err("grace"));
        assert_eq!(date("from", "2026-02-30").map_err(|e| e.field), Err("from"));
        assert_eq!(date("from", "2026-02-03"), Ok(chrono::NaiveDate::from_ymd_opt(2026, 2, 3)));
        assert_eq!(time("time", "09:05"), Ok(chrono::NaiveTime::from_hms_opt(9, 5, 0).unwrap_or_default()));
        assert_eq!(time("time", "9h").map_err(|e| e.field), Err("time"));
    }

    #[test]
    fn an_error_is_shown_next_to_its_field_only() {
        let error = FieldError::new("name", "must not be empty");
        let named = field("name", "Name", input("name", "text", "", true, Some(&error)), Some(&error)).into_string();
        assert!(named.contains("data-testid=\"error-name\""), "{named}");
        assert!(named.contains("aria-invalid=\"true\""), "{named}");
        let other = field("code", "Code", input("code", "text", "X", true, Some(&error)), Some(&error)).into_string();
        assert!(!other.contains("error-"), "{other}");
        assert_eq!(status_for(Some(&error)), StatusCode::BAD_REQUEST);
    }
}

//! Alert rules from the dashboard (issue 17): `GET/POST /alerts/rules/new`, `GET/POST /alerts/rules/{id}/edit` and
//! `POST /alerts/rules/{id}/delete` (root, or an admin of the rule's site), linked from the alerts page. They go
//! through the API's own [`add_rule`] / [`change_rule`] / [`remove_rule`] (the one check [`check_rule`] shares, the
//! same audit); a refusal comes back next to its field. A generated webhook secret is shown once, on the answer.
//!
//! [`check_rule`]: crate::alerts::rules::check_rule

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::{error_summary, field, form_page, input, select, status_for};
use crate::access::Action;
use crate::alerts::rules::{AlertRule, NewRule, RuleChange, RuleKind};
use crate::http::api::inventory::{add_rule, change_rule, remove_rule, visible_rule, SavedRule};
use crate::http::api::updates::FieldError;
use crate::http::AppState;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::{flash_redirect, page};

/// The rule form as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RuleForm {
    site_id: String,
    kind: String,
    for_minutes: String,
    threshold: String,
    buffer_limit: String,
    webhook_url: String,
    webhook_secret: String,
    /// Addresses separated by commas.
    email_to: String,
    max_per_hour: String,
    enabled: String,
}

const FIELDS: [&str; 10] = [
    "site_id",
    "kind",
    "for_minutes",
    "threshold",
    "buffer_limit",
    "webhook_url",
    "webhook_secret",
    "email_to",
    "max_per_hour",
    "enabled",
];

fn number<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<Option<T>, FieldError> {
    match text.trim() {
        "" => Ok(None),
        t => t.parse().map(Some).map_err(|_| FieldError::new(field, format!("{t:?} is not a number"))),
    }
}

impl RuleForm {
    fn of(r: &AlertRule) -> Self {
        Self {
            site_id: r.site_id.clone(),
            kind: r.kind.as_str().to_owned(),
            for_minutes: r.for_minutes.to_string(),
            threshold: r.threshold.map(|t| t.to_string()).unwrap_or_default(),
            buffer_limit: r.buffer_limit.map(|t| t.to_string()).unwrap_or_default(),
            webhook_url: r.webhook_url.clone().unwrap_or_default(),
            webhook_secret: String::new(),
            email_to: r.email_to.join(", "),
            max_per_hour: r.max_per_hour.to_string(),
            enabled: if r.enabled { "on".into() } else { String::new() },
        }
    }

    fn emails(&self) -> Vec<String> {
        self.email_to.split(',').map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect()
    }

    fn optional(text: &str) -> Option<String> {
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    }

    fn new_rule(&self) -> Result<NewRule, FieldError> {
        Ok(NewRule {
            site_id: self.site_id.trim().to_owned(),
            kind: self.kind.trim().to_owned(),
            for_minutes: number("for_minutes", &self.for_minutes)?,
            threshold: number("threshold", &self.threshold)?,
            buffer_limit: number("buffer_limit", &self.buffer_limit)?,
            webhook_url: Self::optional(&self.webhook_url),
            webhook_secret: Self::optional(&self.webhook_secret),
            email_to: Some(self.emails()),
            max_per_hour: number("max_per_hour", &self.max_per_hour)?,
            enabled: Some(!self.enabled.is_empty()),
        })
    }

    /// Every field as typed: an empty threshold, limit or webhook removes it; an empty secret keeps the stored one.
    fn change(&self) -> Result<RuleChange, FieldError> {
        Ok(RuleChange {
            for_minutes: number("for_minutes", &self.for_minutes)?,
            threshold: Some(number("threshold", &self.threshold)?),
            buffer_limit: Some(number("buffer_limit", &self.buffer_limit)?),
            webhook_url: Some(Self::optional(&self.webhook_url)),
            webhook_secret: Self::optional(&self.webhook_secret).map(Some),
            email_to: Some(Some(self.emails())),
            max_per_hour: number("max_per_hour", &self.max_per_hour)?,
            enabled: Some(!self.enabled.is_empty()),
        })
    }
}

fn field_refusal(message: &str) -> FieldError {
    let (field, rest) = message.split_once(": ").unwrap_or(("kind", message));
    match FIELDS.iter().find(|f| **f == field) {
        Some(field) => FieldError::new(field, rest),
        None => FieldError::new("kind", message),
    }
}

fn render(
    ctx: &WebContext,
    form: &RuleForm,
    sites: &[(String, String)],
    id: Option<i64>,
    error: Option<&FieldError>,
) -> Response {
    let kinds: Vec<(String, String)> =
        RuleKind::ALL.iter().map(|k| (k.as_str().to_owned(), k.as_str().to_owned())).collect();
    let (title, action) = match id {
        Some(id) => (format!("Edit alert rule {id}"), format!("/alerts/rules/{id}/edit")),
        None => ("Add an alert rule".to_owned(), "/alerts/rules/new".to_owned()),
    };
    let text = |name: &str, value: &str| input(name, "text", value, false, error);
    let body = html! {
        h1 { (title) }
        (error_summary(error))
        form.stack method="post" action=(action) data-testid="rule-form" {
            (csrf_field(ctx))
            @if id.is_some() {
                p { "Site " strong { (form.site_id) } ", kind " strong { (form.kind) } }
            } @else {
                (field("site_id", "Site", select("site_id", sites, &form.site_id, error), error))
                (field("kind", "Kind", select("kind", &kinds, &form.kind, error), error))
            }
            (field("for_minutes", "For (minutes the condition holds before the alert; the kind's default when empty)", text("for_minutes", &form.for_minutes), error))
            (field("threshold", "Threshold (drift seconds, buffer share 0–1, dead letters or records tolerated)", text("threshold", &form.threshold), error))
            (field("buffer_limit", "Buffer limit (buffer_high: punches)", text("buffer_limit", &form.buffer_limit), error))
            (field("webhook_url", "Webhook URL", text("webhook_url", &form.webhook_url), error))
            (field("webhook_secret", "Webhook secret (16–256 characters; generated, or kept, when empty)", input("webhook_secret", "password", "", false, error), error))
            (field("email_to", "E-mail to (separated by commas)", text("email_to", &form.email_to), error))
            (field("max_per_hour", "Notifications per hour at most (12 when empty)", text("max_per_hour", &form.max_per_hour), error))
            div.field {
                label { input type="checkbox" name="enabled" checked[!form.enabled.is_empty()]; " Enabled" }
            }
            button type="submit" { "Save the rule" }
        }
    };
    form_page(status_for(error), &title, ctx, body)
}

/// The answer to a saved rule: back to the alerts page, or a page showing a generated secret once.
fn saved(ctx: &WebContext, saved: &SavedRule, verb: &str) -> Response {
    let message = format!("Alert rule {} {verb}.", saved.rule.id);
    match &saved.webhook_secret {
        None => flash_redirect("/alerts", &message),
        Some(secret) => {
            let body = html! {
                h1 { (message) }
                p { "Its webhook secret is shown this once; the receiver checks each notification's signature with it." }
                p { code data-testid="webhook-secret" { (secret) } }
                p { a href="/alerts" { "Back to alerts" } }
            };
            let mut response = page("Alert rule saved", ctx, body).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
    }
}

async fn writable_sites(state: &AppState, ctx: &WebContext) -> Result<Vec<(String, String)>, WebError> {
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    Ok(sites
        .into_iter()
        .filter(|s| ctx.caller.require(Action::Write, Some(&s.site_id)).is_ok())
        .map(|s| (s.site_id.clone(), format!("{} ({})", s.name, s.site_id)))
        .collect())
}

/// `GET /alerts/rules/new`.
pub async fn new_form(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Response, WebError> {
    let sites = writable_sites(&state, &ctx).await?;
    if sites.is_empty() {
        return Err(WebError::page(StatusCode::FORBIDDEN, "you may not add alert rules to any site"));
    }
    let form = RuleForm { kind: "device_unreachable".into(), enabled: "on".into(), ..RuleForm::default() };
    Ok(render(&ctx, &form, &sites, None, None))
}

/// `POST /alerts/rules/new`.
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<RuleForm>,
) -> Result<Response, WebError> {
    let sites = writable_sites(&state, &ctx).await?;
    let rule = match form.new_rule() {
        Ok(rule) => rule,
        Err(e) => return Ok(render(&ctx, &form, &sites, None, Some(&e))),
    };
    match add_rule(&state, &ctx.caller, rule).await {
        Ok(rule) => Ok(saved(&ctx, &rule, "added")),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            Ok(render(&ctx, &form, &sites, None, Some(&field_refusal(&e.message))))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /alerts/rules/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let rule = visible_rule(&state, &ctx.caller, &id).await?;
    ctx.caller.require(Action::Write, Some(&rule.site_id))?;
    Ok(render(&ctx, &RuleForm::of(&rule), &[], Some(rule.id), None))
}

/// `POST /alerts/rules/{id}/edit`.
pub async fn update(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
    CsrfForm(mut form): CsrfForm<RuleForm>,
) -> Result<Response, WebError> {
    let rule = visible_rule(&state, &ctx.caller, &id).await?;
    ctx.caller.require(Action::Write, Some(&rule.site_id))?;
    form.site_id.clone_from(&rule.site_id);
    form.kind = rule.kind.as_str().to_owned();
    let change = match form.change() {
        Ok(change) => change,
        Err(e) => return Ok(render(&ctx, &form, &[], Some(rule.id), Some(&e))),
    };
    match change_rule(&state, &ctx.caller, &id, &change).await {
        Ok(rule) => Ok(saved(&ctx, &rule, "saved")),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            Ok(render(&ctx, &form, &[], Some(rule.id), Some(&field_refusal(&e.message))))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /alerts/rules/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let rule = remove_rule(&state, &ctx.caller, &id).await?;
    Ok(flash_redirect("/alerts", &format!("Alert rule {} removed; its history stays.", rule.id)))
}

/// The alerts page's links: add a rule (when the caller may), and per rule edit and remove.
pub fn add_link(ctx: &WebContext, may: bool) -> Markup {
    html! { @if may || ctx.caller.role == crate::access::Role::Root {
        p { a href="/alerts/rules/new" data-testid="new-rule" { "Add a rule" } }
    } }
}

/// The edit link and remove button of a rule row (nothing when the caller may not change it).
pub fn rule_actions(ctx: &WebContext, rule: &AlertRule) -> Markup {
    html! {
        @if ctx.caller.require(Action::Write, Some(&rule.site_id)).is_ok() {
            a href=(format!("/alerts/rules/{}/edit", rule.id)) data-testid=(format!("edit-rule-{}", rule.id)) { "Edit" } " "
            form.inline method="post" action=(format!("/alerts/rules/{}/delete", rule.id)) {
                (csrf_field(ctx))
                button type="submit" data-testid=(format!("delete-rule-{}", rule.id)) { "Remove" }
            }
        }
    }
}

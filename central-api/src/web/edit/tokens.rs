//! The caller's own administrator API tokens on the dashboard: `GET /tokens` lists them with their expiry and last
//! use, `POST /tokens` issues one (optionally expiring after some days) and shows it this once, and
//! `POST /tokens/{id}/revoke` revokes one. The same checks and records as `/api/v1/tokens`
//! ([`crate::http::api::session::issue`]); reached from the user name in the top bar.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::html;
use serde::Deserialize;

use crate::http::api::session::{issue, NewToken, MAX_TOKEN_DAYS};
use crate::http::api::store_error;
use crate::http::AppState;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller};
use crate::web::error::WebError;
use crate::web::layout::{flash_redirect, page};
use crate::web::muster::url_segment;

/// The new-token form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    label: String,
    /// Empty: never expires.
    #[serde(default)]
    expires_in_days: String,
}

fn when(t: Option<DateTime<Utc>>, none: &str) -> String {
    t.map_or_else(|| none.to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// `GET /tokens`.
pub async fn list(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Response, WebError> {
    let tokens = state.store.admin_tokens(&ctx.caller.username).await.map_err(store_error)?;
    let now = Utc::now();
    let body = html! {
        h1 { "Your API tokens" }
        p { "A token acts as you (" (ctx.caller.role.as_str()) ") on the JSON API: send it as "
            code { "Authorization: Bearer adm_..." } ". Its last use is recorded to the minute." }
        div.table-wrap { table data-testid="tokens" {
            thead { tr { th { "Id" } th { "Label" } th { "Created" } th { "Expires" } th { "Last used" }
                th { "State" } th { "" } } }
            tbody {
                @for t in &tokens {
                    @let expired = t.expires_at.is_some_and(|at| at <= now);
                    tr data-testid=(format!("token-{}", t.token_id)) {
                        td { code { (t.token_id) } } td { (t.label) } td { (when(Some(t.created_at), "")) }
                        td { (when(t.expires_at, "never")) } td { (when(t.last_used_at, "never")) }
                        td { @if t.revoked_at.is_some() { "revoked" } @else if expired { "expired" } @else { "active" } }
                        td {
                            @if t.revoked_at.is_none() {
                                form.inline method="post" action=(format!("/tokens/{}/revoke", url_segment(&t.token_id))) {
                                    (csrf_field(&ctx))
                                    button type="submit" data-testid=(format!("revoke-token-{}", t.token_id)) { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        } }
        h2 { "Issue a token" }
        form.stack method="post" action="/tokens" data-testid="token-form" {
            (csrf_field(&ctx))
            div.field { label for="label" { "What it is for" } input #label name="label" type="text" required maxlength="200"; }
            div.field {
                label for="expires_in_days" { "Expires after (days; empty: never)" }
                input #expires_in_days name="expires_in_days" type="number" min="1" max=(MAX_TOKEN_DAYS);
            }
            button type="submit" { "Issue and show it" }
        }
    };
    Ok(page("API tokens", &ctx, body).into_response())
}

/// `POST /tokens`: issues the token and answers with a page holding it (never cached).
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<TokenForm>,
) -> Result<Response, WebError> {
    let days = form.expires_in_days.trim();
    let expires_at = if days.is_empty() {
        None
    } else {
        let days: i64 = days.parse().ok().filter(|d| (1..=MAX_TOKEN_DAYS).contains(d)).ok_or_else(|| {
            WebError::bad_request(format!("expires_in_days: must be a whole number of days from 1 to {MAX_TOKEN_DAYS}"))
        })?;
        Some(Utc::now() + Duration::days(days))
    };
    let issued = issue(&state, &ctx.caller, NewToken { label: form.label.trim().to_owned(), expires_at }).await?;
    let body = html! {
        h1 { "Token " (issued.token_id) " issued" }
        p { "It is shown this once; only a hash of it is kept. It expires " (when(issued.expires_at, "never")) "." }
        p { code data-testid="admin-token" { (issued.token) } }
        p { a href="/tokens" { "Back to your tokens" } }
    };
    let mut response = page("Token issued", &ctx, body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /tokens/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    state.store.revoke_admin_token(&ctx.caller.username, &id).await.map_err(store_error)?;
    let before = serde_json::json!({ "token_id": id, "username": ctx.caller.username });
    crate::audit::record(&state.store, &ctx.caller, crate::audit::Entry::new("revoke", "token", &id).before(&before))
        .await;
    Ok(flash_redirect("/tokens", &format!("Token {id} revoked: it no longer works.")))
}

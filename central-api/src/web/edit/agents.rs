//! Agents from the dashboard: `POST /agents` registers an agent on a site and shows its token this once (root, or an
//! admin of the site); `POST /agents/{id}/revoke` revokes it, after which its batches are refused. The forms sit on
//! the devices page (`GET /devices`), which calls [`new_agent_form`] and [`revoke_button`].

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use crate::access::{Action, Caller};
use crate::http::api::sites::{register_agent, revoke_agent_checked, NewAgent};
use crate::http::AppState;
use crate::store::listing::SiteInfo;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::{flash_redirect, page};
use crate::web::muster::url_segment;

/// The new-agent form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct AgentForm {
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    site_id: String,
}

/// Whether `caller` may register or revoke agents of `site`.
pub fn may_manage(caller: &Caller, site: &str) -> bool {
    caller.require(Action::Write, Some(site)).is_ok()
}

/// The form that registers an agent, offering the sites the caller manages (nothing when there are none).
pub fn new_agent_form(ctx: &WebContext, sites: &[SiteInfo]) -> Markup {
    let mine: Vec<&SiteInfo> = sites.iter().filter(|s| may_manage(&ctx.caller, &s.site_id)).collect();
    html! {
        @if !mine.is_empty() {
            h3 { "Add an agent" }
            form.stack method="post" action="/agents" data-testid="agent-form" {
                (csrf_field(ctx))
                div.field {
                    label for="agent_id" { "Agent id" }
                    input #agent_id name="agent_id" type="text" required;
                }
                div.field {
                    label for="site_id" { "Site" }
                    select #site_id name="site_id" {
                        @for s in &mine { option value=(s.site_id) { (s.name) " (" (s.site_id) ")" } }
                    }
                }
                button type="submit" { "Add and show its token" }
            }
        }
    }
}

/// The revoke button of an agent row (nothing when the caller may not, or the agent is already revoked).
pub fn revoke_button(ctx: &WebContext, agent_id: &str, site_id: &str, revoked: bool) -> Markup {
    html! {
        @if !revoked && may_manage(&ctx.caller, site_id) {
            form.inline method="post" action=(format!("/agents/{}/revoke", url_segment(agent_id))) {
                (csrf_field(ctx))
                button type="submit" data-testid=(format!("revoke-{agent_id}"))
                    aria-label=(format!("Revoke agent {agent_id}")) { "Revoke" }
            }
        }
    }
}

/// `POST /agents`: registers the agent and answers with a page holding its token (never cached).
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<AgentForm>,
) -> Result<Response, WebError> {
    let site_id = form.site_id.trim().to_owned();
    if site_id.is_empty() {
        return Err(WebError::bad_request("site_id: must not be empty"));
    }
    let request = NewAgent { agent_id: form.agent_id.trim().to_owned(), site_id };
    let created = register_agent(&state, &ctx.caller, request).await?;
    tracing::info!(agent = %created.agent_id, site = %created.site_id, by = %ctx.caller.username,
        "agent registered from the dashboard");
    let body = html! {
        h1 { "Agent " (created.agent_id) " added" }
        p { "Its token is shown this once. Put it in the agent's configuration (" code { "[central] token" }
            " in edge-agent.toml) now; only a hash of it is kept." }
        p { code data-testid="agent-token" { (created.token) } }
        h2 { "If the agent sends over MQTT" }
        p { "Its broker login, derived from the token (" code { "central-api mqtt-login " (created.agent_id) }
            " shows it again). Add it to the broker's password file:" }
        dl {
            dt { "User name" } dd { code data-testid="broker-username" { (created.broker_username) } }
            dt { "Password" } dd { code data-testid="broker-password" { (created.broker_password) } }
        }
        p { code { "mosquitto_passwd -b /etc/mosquitto/attendance.passwd " (created.broker_username) " "
            (created.broker_password) } }
        p { a href="/devices" { "Back to devices and agents" } }
    };
    let mut response = page("Agent added", &ctx, body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /agents/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    revoke_agent_checked(&state, &ctx.caller, &id).await?;
    tracing::info!(agent = %id, by = %ctx.caller.username, "agent revoked from the dashboard");
    Ok(flash_redirect("/devices", &format!("Agent {id} revoked: its token no longer works.")))
}

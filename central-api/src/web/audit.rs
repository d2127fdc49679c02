//! `GET /audit?site=&actor=&resource=&action=&cursor=`: the audit log, newest first, with filters (root: every
//! entry; an admin: their sites'; a viewer: 403). Read-only: there is no form that changes an entry.

use axum::extract::{Query, State};
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::{WebCaller, WebContext};
use super::error::WebError;
use super::layout::page;
use crate::audit::AuditRecord;
use crate::http::api::audit::{audit_filter, AuditQuery};
use crate::http::AppState;

/// Entries per page.
const PAGE: i64 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    site: Option<String>,
    actor: Option<String>,
    resource: Option<String>,
    action: Option<String>,
    cursor: Option<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.trim().is_empty())
}

/// `GET /audit`.
pub async fn audit_page(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Query(f): Query<Filters>,
) -> Result<Markup, WebError> {
    let query = AuditQuery {
        site: blank(&f.site),
        actor: blank(&f.actor),
        resource: blank(&f.resource),
        action: blank(&f.action),
        cursor: blank(&f.cursor),
        limit: Some(PAGE),
        ..AuditQuery::default()
    };
    let filter = audit_filter(&ctx.caller, query)?;
    let entries = state.store.list_audit(&filter).await?;
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let next = (entries.len() as i64 == PAGE).then(|| entries.last().map(|e| e.id)).flatten();
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let next_url = next.map(|id| {
        let pairs = [
            ("site", value(&f.site)),
            ("actor", value(&f.actor)),
            ("resource", value(&f.resource)),
            ("action", value(&f.action)),
            ("cursor", id.to_string()),
        ];
        format!("/audit?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
    });
    let body = html! {
        h1 { "Audit log" }
        p.muted { "Every change made by an administrator, newest first. Entries are never changed or removed." }
        form.filters method="get" action="/audit" data-testid="audit-filters" {
            div { label for="site" { "Site" }
                select id="site" name="site" {
                    option value="" { "Any" }
                    @for s in &sites { option value=(s.site_id) selected[f.site.as_deref() == Some(s.site_id.as_str())] { (s.site_id) } }
                }
            }
            div { label for="actor" { "By" } input id="actor" name="actor" type="text" value=(value(&f.actor)); }
            div { label for="resource" { "What" }
                select id="resource" name="resource" {
                    option value="" { "Anything" }
                    @for r in RESOURCES { option value=(r) selected[f.resource.as_deref() == Some(*r)] { (r) } }
                }
            }
            div { label for="action" { "Action" } input id="action" name="action" type="text" value=(value(&f.action)); }
            button type="submit" { "Filter" }
        }
        @if entries.is_empty() {
            p.muted data-testid="no-audit" { "No entries." }
        } @else {
            div.table-wrap { table data-testid="audit" {
                thead { tr {
                    th scope="col" { "When (UTC)" } th scope="col" { "Who" } th scope="col" { "From" }
                    th scope="col" { "Action" } th scope="col" { "What" } th scope="col" { "Site" }
                    th scope="col" { "Before" } th scope="col" { "After" }
                } }
                tbody { @for e in &entries { (row(&ctx, e)) } }
            } }
        }
        @if let Some(url) = next_url { p { a href=(url) { "Older entries" } } }
    };
    Ok(page("Audit log", &ctx, body))
}

/// The resources the filter offers.
const RESOURCES: &[&str] = &[
    "shift",
    "employee",
    "holiday",
    "week_off_rule",
    "site",
    "manual_log",
    "leave",
    "agent",
    "device",
    "token",
    "job",
];

fn row(_ctx: &WebContext, e: &AuditRecord) -> Markup {
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(serde_json::Value::to_string).unwrap_or_default();
    html! {
        tr data-audit=(e.id) {
            td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
            td { (e.actor) " " small { "(" (e.role) ")" } }
            td { (e.address.as_deref().unwrap_or("")) }
            td { (e.action) }
            td { (e.resource) " " (e.resource_id) }
            td { (e.site_id.as_deref().unwrap_or("")) }
            td { code { (json(&e.before)) } }
            td { code { (json(&e.after)) } }
        }
    }
}

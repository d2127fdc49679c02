//! The fleet pages: `GET /inventory` (agents and devices with everything their agents report, and the recent
//! history of state changes), `GET /alerts` (rules, open alerts, raised and cleared alerts with their notifications)
//! and `GET /inventory/events`, a Server-Sent Events stream with one `status` event per change of state (JSON
//! [`StatusEvent`], id = its history id) on the caller's sites, which `/static/fleet.js` applies to the inventory and
//! devices pages without a reload. Like `/live/events`, the stream polls the history every second (so it sees
//! changes stored by any replica), applies the scope in each query and re-checks the session.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Instant;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::stream::{self, Stream};
use maud::{html, Markup};
use serde::Serialize;

use super::auth::WebCaller;
use super::day::duration_text;
use super::error::WebError;
use super::layout::page;
use super::live::{POLL, SESSION_RECHECK};
use crate::access::extract::live_session;
use crate::access::Via;
use crate::http::AppState;
use crate::store::history::{HistoryFilter, StatusChange};
use crate::store::inventory::{DeviceInventory, FaultView, Usage};

/// The script that applies `status` events to the pages.
pub const FLEET_JS: &str = include_str!("static/fleet.js");
/// History rows the inventory page shows.
const HISTORY_ROWS: i64 = 50;
/// Events read per poll.
const BATCH: i64 = 200;
/// How far back (history ids) a reconnecting stream may resume.
const MAX_REPLAY: i64 = 1000;

/// `GET /static/fleet.js`.
pub async fn fleet_js() -> Response {
    ([("content-type", "text/javascript; charset=utf-8"), ("cache-control", "public, max-age=300")], FLEET_JS)
        .into_response()
}

fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match t {
        None => html! { span.muted { "never" } },
        Some(t) => html! {
            time datetime=(t.to_rfc3339()) title=(t.to_rfc3339()) { (duration_text((now - t).num_seconds().max(0))) " ago" }
        },
    }
}

fn usage(u: Usage) -> Markup {
    html! {
        @match (u.count, u.capacity) {
            (Some(n), Some(c)) => { (n) " / " (c) },
            (Some(n), None) => { (n) },
            (None, Some(c)) => { "? / " (c) },
            (None, None) => span.muted { "—" },
        }
    }
}

/// The reachability cell, as the script also writes it.
pub fn reachable_cell(reachable: Option<bool>) -> Markup {
    html! {
        @match reachable {
            Some(true) => span.ok { "✓ yes" },
            Some(false) => span.bad { "✗ no" },
            None => span.muted { "unknown" },
        }
    }
}

/// The faults cell, as the script also writes it.
pub fn faults_cell(faults: &[FaultView]) -> Markup {
    html! {
        @if faults.is_empty() { span.ok { "none" } } @else {
            ul { @for f in faults { li.bad data-code=(f.code) { (f.code) ": " (f.message) } } }
        }
    }
}

fn text(value: Option<&str>) -> Markup {
    html! { @if let Some(v) = value.filter(|v| !v.is_empty()) { (v) } @else { span.muted { "—" } } }
}

fn history_table(rows: &[StatusChange]) -> Markup {
    html! {
        div.table-wrap { table data-testid="status-history" {
            thead { tr {
                th scope="col" { "When" } th scope="col" { "Site" } th scope="col" { "Agent" }
                th scope="col" { "Device" } th scope="col" { "Change" } th scope="col" { "Detail" }
            } }
            tbody aria-live="polite" { @for c in rows {
                tr data-change-id=(c.id) {
                    td { time datetime=(c.at.to_rfc3339()) { (c.at.format("%Y-%m-%d %H:%M:%S UTC")) } }
                    td { (c.site_id) } td { (c.agent_id) } td { (c.device_serial.as_deref().unwrap_or("—")) }
                    td { (c.change.as_str()) }
                    td { @if let Some(code) = &c.code { (code) ": " } (c.message) }
                }
            } }
        } }
    }
}

/// The inventory page.
pub async fn inventory_page(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Markup, WebError> {
    let scope = ctx.caller.scope();
    let agents = state.store.agent_inventory(scope, None).await?;
    let devices = state.store.device_inventory(scope, None).await?;
    let filter = HistoryFilter { scope, limit: HISTORY_ROWS, ..HistoryFilter::default() };
    let history = state.store.status_history(&filter).await?;
    let now = Utc::now();
    let body = html! {
        h1 { "Inventory" }
        p { "Status: " span data-testid="fleet-status" aria-live="polite" { "Connecting…" } }
        h2 { "Agents" }
        @if agents.is_empty() { p { "No agent yet." } } @else {
            div.table-wrap { table data-testid="inventory-agents" {
                thead { tr {
                    th scope="col" { "Agent" } th scope="col" { "Site" } th scope="col" { "Version" }
                    th scope="col" { "Host" } th scope="col" { "Up for" } th scope="col" { "Configuration" }
                    th scope="col" { "Last seen" } th scope="col" { "Buffer depth" } th scope="col" { "Dead letters" }
                    th scope="col" { "Faults" }
                } }
                tbody { @for a in &agents {
                    tr data-agent=(a.agent_id) data-site=(a.site_id) {
                        th scope="row" { (a.agent_id) @if a.revoked { " " span.bad { "(revoked)" } } }
                        td { (a.site_id) }
                        td { (text(a.version.as_deref())) }
                        td { (text(a.hostname.as_deref())) }
                        td { @if let Some(s) = a.uptime_secs { (duration_text(s)) } @else { span.muted { "—" } } }
                        td { @if let Some(v) = a.config_version { "v" (v) } @else { span.muted { "local file" } } }
                        td { (ago(a.last_seen, now)) }
                        td { @if let Some(d) = a.buffer_depth { (d) } @else { span.muted { "—" } } }
                        td { @match a.dead_letters { Some(0) => "0", Some(n) => span.bad { (n) }, None => span.muted { "—" } } }
                        td { (faults_cell(&a.faults)) }
                    }
                } }
            } }
        }
        h2 { "Devices" }
        @if devices.is_empty() { p { "No device yet." } } @else {
            div.table-wrap { table data-testid="inventory-devices" data-status-source="/inventory/events" {
                thead { tr {
                    th scope="col" { "Serial" } th scope="col" { "Name" } th scope="col" { "Site" }
                    th scope="col" { "Kind" } th scope="col" { "Model" } th scope="col" { "Firmware" }
                    th scope="col" { "Platform" } th scope="col" { "Users" } th scope="col" { "Fingerprints" }
                    th scope="col" { "Records" } th scope="col" { "Clock drift" } th scope="col" { "Last punch" }
                    th scope="col" { "Last read" } th scope="col" { "Reachable" } th scope="col" { "Faults" }
                } }
                tbody { @for d in &devices { (device_row(d, now)) } }
            } }
        }
        h2 { "State changes" }
        @if history.is_empty() { p data-testid="no-history" { "No change recorded." } }
        (history_table(&history))
        script src="/static/fleet.js" defer {}
    };
    Ok(page("Inventory", &ctx, body))
}

fn device_row(d: &DeviceInventory, now: DateTime<Utc>) -> Markup {
    html! {
        tr data-device=(d.serial) data-site=(d.site_id) {
            th scope="row" { (d.serial) @if !d.registered { " " span.bad { "(not registered)" } }
                @if d.stale { " " span.muted { "(no longer reported)" } } }
            td { (text(d.name.as_deref())) } td { (d.site_id) } td { (text(Some(&d.kind))) }
            td { (text(d.model.as_deref())) } td { (text(d.firmware.as_deref())) } td { (text(d.platform.as_deref())) }
            td { (usage(d.users)) } td { (usage(d.fingerprints)) } td { (usage(d.records)) }
            td { @match d.clock_drift_secs { Some(s) => { (s) " s" }, None => span.muted { "—" } } }
            td { (ago(d.last_punch, now)) }
            td data-field="last_success" { (ago(d.last_success, now)) }
            td data-field="reachable" { (reachable_cell(d.reachable)) }
            td data-field="faults" { (faults_cell(&d.faults)) }
        }
    }
}

/// The alerts page: rules, open alerts and recent raises and clears.
pub async fn alerts_page(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Markup, WebError> {
    let scope = ctx.caller.scope();
    let rules = state.store.alert_rules(scope, None).await?;
    let open = state.store.open_alerts(scope, None).await?;
    let events = state.store.alert_events(scope, None, None, None, 50).await?;
    let sites = state.store.list_sites(scope).await?;
    let may_add = sites.iter().any(|s| ctx.caller.require(crate::access::Action::Write, Some(&s.site_id)).is_ok());
    let body = html! {
        h1 { "Alerts" }
        p { "Rules are also created and changed through the API (" code { "POST /api/v1/alert-rules" } ", see "
            a href="/api/docs" { "the API documentation" } ")." }
        h2 { "Rules" }
        (super::edit::alert_rules::add_link(&ctx, may_add))
        @if rules.is_empty() { p { "No rule yet." } } @else {
            div.table-wrap { table data-testid="alert-rules" {
                thead { tr {
                    th scope="col" { "Rule" } th scope="col" { "Site" } th scope="col" { "Kind" }
                    th scope="col" { "After (min)" } th scope="col" { "Threshold" } th scope="col" { "Webhook" }
                    th scope="col" { "E-mail" } th scope="col" { "Per hour" } th scope="col" { "Enabled" }
                    th scope="col" { "Change" }
                } }
                tbody { @for r in &rules {
                    tr data-rule=(r.id) {
                        th scope="row" { (r.id) } td { (r.site_id) } td { (r.kind.as_str()) } td { (r.for_minutes) }
                        td { @if let Some(t) = r.threshold { (t) } @if let Some(l) = r.buffer_limit { " of " (l) } }
                        td { (text(r.webhook_url.as_deref())) } td { (r.email_to.join(", ")) }
                        td { (r.max_per_hour) } td { @if r.enabled { "yes" } @else { span.muted { "no" } } }
                        td { (super::edit::alert_rules::rule_actions(&ctx, r)) }
                    }
                } }
            } }
        }
        h2 { "Open alerts" }
        @if open.is_empty() { p data-testid="no-open-alerts" { "None." } } @else {
            div.table-wrap { table data-testid="open-alerts" {
                thead { tr {
                    th scope="col" { "Rule" } th scope="col" { "Site" } th scope="col" { "Subject" }
                    th scope="col" { "Since" } th scope="col" { "Raised" } th scope="col" { "Message" }
                } }
                tbody { @for a in &open {
                    tr {
                        td { (a.rule_id) " " (a.kind.as_str()) } td { (a.site_id) } td { (a.subject) }
                        td { (a.condition_since.format("%Y-%m-%d %H:%M:%S UTC")) }
                        td { @if let Some(t) = a.raised_at { (t.format("%Y-%m-%d %H:%M:%S UTC")) } @else { "waiting" } }
                        td { (a.message) }
                    }
                } }
            } }
        }
        h2 { "Raised and cleared" }
        @if events.is_empty() { p { "Nothing yet." } } @else {
            div.table-wrap { table data-testid="alert-events" {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Site" } th scope="col" { "Event" }
                    th scope="col" { "Subject" } th scope="col" { "Message" } th scope="col" { "Notifications" }
                } }
                tbody { @for e in &events {
                    tr data-event=(e.id) {
                        td { (e.at.format("%Y-%m-%d %H:%M:%S UTC")) } td { (e.site_id) }
                        td { (e.event) " " (e.kind) @if e.suppressed { " " span.muted { "(rate-limited, not sent)" } } }
                        td { (e.subject) } td { (e.message) }
                        td { ul { @for d in &e.deliveries {
                            li { (d.channel) ": " (d.state) " (" (d.attempts) " attempts)"
                                @if let Some(err) = &d.last_error { " " span.muted { (err) } } }
                        } } }
                    }
                } }
            } }
        }
    };
    Ok(page("Alerts", &ctx, body))
}

/// One `status` event: the change, and the device's state now (when it is about a device the caller sees).
#[derive(Debug, Clone, Serialize)]
pub struct StatusEvent {
    #[serde(flatten)]
    pub change: StatusChange,
    pub reachable: Option<bool>,
    pub faults: Vec<FaultView>,
    pub last_success: Option<DateTime<Utc>>,
}

struct StatusStream {
    state: AppState,
    ctx: super::auth::WebContext,
    after: i64,
    pending: VecDeque<StatusEvent>,
    checked: Instant,
}

fn status_event(e: &StatusEvent) -> Event {
    let id = e.change.id.to_string();
    Event::default()
        .event("status")
        .id(id.clone())
        .json_data(e)
        .unwrap_or_else(|_| Event::default().event("status").id(id).data("{}"))
}

async fn with_devices(state: &AppState, scope: Option<&str>, changes: Vec<StatusChange>) -> Vec<StatusEvent> {
    let devices = if changes.iter().any(|c| c.device_serial.is_some()) {
        state.store.device_inventory(scope, None).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    changes
        .into_iter()
        .map(|change| {
            let device = change.device_serial.as_deref().and_then(|s| devices.iter().find(|d| d.serial == s));
            StatusEvent {
                reachable: device.and_then(|d| d.reachable),
                faults: device.map(|d| d.faults.clone()).unwrap_or_default(),
                last_success: device.and_then(|d| d.last_success),
                change,
            }
        })
        .collect()
}

/// `GET /inventory/events`.
pub async fn status_events(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let last = state.store.last_status_change_id().await?;
    let after = match resume {
        Some(id) if id >= 0 => id.max(last - MAX_REPLAY),
        _ => last,
    };
    let live = StatusStream { state, ctx, after, pending: VecDeque::new(), checked: Instant::now() };
    let events = stream::unfold(live, |mut live| async move {
        loop {
            if let Some(e) = live.pending.pop_front() {
                return Some((Ok(status_event(&e)), live));
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = live.state.stopping.cancelled() => return None,
            }
            if live.checked.elapsed() >= SESSION_RECHECK {
                live.checked = Instant::now();
                if let Via::Session(hash) = &live.ctx.caller.via {
                    if live_session(&live.state, hash).await.is_err() {
                        return None;
                    }
                }
            }
            let scope = live.ctx.caller.scope();
            let filter = HistoryFilter { scope, after: Some(live.after), limit: BATCH, ..HistoryFilter::default() };
            match live.state.store.status_history(&filter).await {
                Ok(rows) => {
                    if let Some(last) = rows.last() {
                        live.after = last.id;
                    }
                    let events = with_devices(&live.state, scope, rows).await;
                    live.pending.extend(events);
                }
                Err(e) => tracing::warn!(error = %e, "status events: reading the history failed; retrying"),
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

//! `GET /devices`: agents and devices of the caller's sites with their latest reported health (last seen, buffer
//! depth, oldest unacknowledged punch, clock drift, reachability, current faults) and the recent fault history, its
//! times in the site's zone. An administrator also gets a revoke button per agent and the form that registers one
//! ([`super::edit::agents`]). Devices registered automatically are marked unconfirmed, and the punches held in the
//! quarantine (another site's agent naming the device) are listed to both sites (decided through the API).

use std::collections::HashMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use protocol::Fault;

use super::auth::WebCaller;
use super::day::duration_text;
use super::edit::agents::{new_agent_form, revoke_button};
use super::error::WebError;
use super::layout::page;
use crate::http::AppState;
use crate::store::quarantine::QuarantineFilter;

/// Fault history rows shown.
const FAULT_HISTORY: i64 = 50;

/// "3m ago" style age of an instant.
fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match t {
        None => html! { span.muted { "never" } },
        Some(t) => html! {
            time datetime=(t.to_rfc3339()) title=(t.to_rfc3339()) { (duration_text((now - t).num_seconds().max(0))) " ago" }
        },
    }
}

/// An instant as wall-clock time in the site's zone, with the zone's name (UTC when the zone does not parse).
fn in_zone(t: DateTime<Utc>, zone: Option<&str>) -> String {
    match zone.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
        Some(tz) => format!("{} {tz}", t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S")),
        None => format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S")),
    }
}

fn faults(json: Option<&str>) -> Markup {
    let parsed = json.map(serde_json::from_str::<Vec<Fault>>);
    html! {
        @match parsed {
            None => span.muted { "—" },
            Some(Err(_)) => span.bad { "unreadable fault list" },
            Some(Ok(list)) if list.is_empty() => span.ok { "none" },
            Some(Ok(list)) => ul {
                @for f in &list { li.bad { (f.code) ": " (f.message) } }
            },
        }
    }
}

/// The devices and agents page.
pub async fn devices_page(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Markup, WebError> {
    let scope = ctx.caller.scope();
    let agents = state.store.agent_health(scope).await?;
    let devices = state.store.device_health(scope).await?;
    let history = state.store.recent_faults(scope, FAULT_HISTORY).await?;
    let held = QuarantineFilter { status: Some("held"), limit: FAULT_HISTORY, ..QuarantineFilter::default() };
    let held = state.store.list_quarantine(scope, &held).await?;
    let sites = state.store.list_sites(scope).await?;
    let zones: HashMap<String, String> = sites.iter().map(|s| (s.site_id.clone(), s.time_zone.clone())).collect();
    let now = Utc::now();
    let body = html! {
        h1 { "Devices and agents" }
        h2 { "Agents" }
        @if agents.is_empty() { p { "No agent yet." } } @else {
            div.table-wrap { table data-testid="agents" {
                thead { tr {
                    th scope="col" { "Agent" } th scope="col" { "Site" } th scope="col" { "Last seen" }
                    th scope="col" { "Version" } th scope="col" { "Buffer depth" }
                    th scope="col" { "Oldest unacknowledged" } th scope="col" { "Faults" }
                    th scope="col" { "Token" }
                } }
                tbody { @for a in &agents {
                    tr data-agent=(a.agent_id) data-site=(a.site_id) {
                        th scope="row" { (a.agent_id) @if a.revoked { " " span.bad { "(revoked)" } } }
                        td { (a.site_id) }
                        td { (ago(a.received_at, now)) }
                        td { (a.agent_version.as_deref().unwrap_or("—")) }
                        td { @if let Some(d) = a.buffer_depth { (d) } @else { "—" } }
                        td { @if let Some(s) = a.oldest_unacked_age_secs { (duration_text(s)) } @else { "—" } }
                        td { (faults(a.faults_json.as_deref())) }
                        td { (revoke_button(&ctx, &a.agent_id, &a.site_id, a.revoked)) }
                    }
                } }
            } }
        }
        (new_agent_form(&ctx, &sites))
        h2 { "Devices" }
        (super::edit::devices::add_link(&ctx, &sites))
        @if devices.is_empty() { p { "No device yet." } } @else {
            div.table-wrap { table data-testid="devices" data-status-source="/inventory/events" {
                thead { tr {
                    th scope="col" { "Serial" } th scope="col" { "Name" } th scope="col" { "Site" }
                    th scope="col" { "Kind" } th scope="col" { "Zone" } th scope="col" { "Reachable" }
                    th scope="col" { "Last read" } th scope="col" { "Records" } th scope="col" { "Clock drift" }
                    th scope="col" { "Reported" } th scope="col" { "Faults" }
                } }
                tbody { @for d in &devices {
                    tr data-device=(d.serial) data-site=(d.site_id) {
                        th scope="row" {
                            (super::edit::devices::device_link(&d.serial))
                            @if !d.confirmed { " " span.bad data-testid="unconfirmed" { "(unconfirmed)" } }
                        }
                        td { (d.name) } td { (d.site_id) } td { (d.kind) } td { (d.time_zone) }
                        td data-field="reachable" { (super::fleet::reachable_cell(d.reachable)) }
                        td { (ago(d.last_success, now)) }
                        td { @if let Some(n) = d.record_count { (n) } @else { "—" } }
                        td { @match d.clock_drift_secs {
                            Some(0) => "0 s",
                            Some(s) if s < 0 => { (s) " s (device behind)" },
                            Some(s) => { "+" (s) " s (device ahead)" },
                            None => "—",
                        } }
                        td { (ago(d.received_at, now)) @if let Some(agent) = &d.agent_id { " by " (agent) } }
                        td data-field="faults" { (faults(d.faults_json.as_deref())) }
                    }
                } }
            } }
            // Rows update live from the state changes (issue 17).
            script src="/static/fleet.js" defer {}
        }
        h2 { "Quarantined punches" }
        @if held.is_empty() { p { "No punch held." } } @else {
            p { "Punches an agent sent naming a device registered at another site. Release them (after moving the \
                 device) or discard them with " code { "POST /api/v1/quarantine/release" } " or "
                code { "/discard" } "." }
            div.table-wrap { table data-testid="quarantine" {
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { "Sent by" } th scope="col" { "Device" }
                    th scope="col" { "PIN" } th scope="col" { "Local time" } th scope="col" { "Reason" }
                } }
                tbody { @for q in &held {
                    tr data-quarantine=(q.id) {
                        td { (q.id) } td { (q.agent_id) " (site " (q.site_id) ")" }
                        td { (q.device_serial) " (site " (q.device_site_id) ")" } td { (q.pin) }
                        td { (q.local_time.format("%Y-%m-%d %H:%M:%S")) } td { (q.reason) }
                    }
                } }
            } }
        }
        h2 { "Recent faults" }
        @if history.is_empty() { p { "No fault recorded." } } @else {
            div.table-wrap { table data-testid="fault-history" {
                thead { tr {
                    th scope="col" { "Since" } th scope="col" { "Site" } th scope="col" { "Agent" }
                    th scope="col" { "Device" } th scope="col" { "Fault" }
                } }
                tbody { @for f in &history {
                    tr data-site=(f.site_id) {
                        td { (in_zone(f.since, zones.get(&f.site_id).map(String::as_str))) }
                        td { (f.site_id) } td { (f.agent_id) }
                        td { (f.device_serial.as_deref().unwrap_or("—")) } td { (f.code) ": " (f.message) }
                    }
                } }
            } }
        }
    };
    Ok(page("Devices", &ctx, body))
}

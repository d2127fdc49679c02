//! Live punches: `GET /live` (a table the script fills) and `GET /live/events`, a Server-Sent Events stream with
//! one `punch` event (JSON [`PunchView`], id = its AllLogs id) per punch stored after the stream opened (or after
//! `Last-Event-ID` when the browser reconnects), for the caller's sites only.
//!
//! The stream polls AllLogs by id every [`POLL`], so it sees punches stored by any replica. The scope is applied by
//! the query each time (a revoked grant stops the flow at once) and the session is re-checked every
//! [`SESSION_RECHECK`]; the stream ends when the session did, and when the service stops.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};
use maud::{html, Markup};

use super::auth::WebCaller;
use super::error::WebError;
use super::layout::page;
use crate::access::extract::live_session;
use crate::access::Via;
use crate::http::AppState;
use crate::store::listing::PunchView;

/// How often the stream looks for new punches.
pub const POLL: Duration = Duration::from_secs(1);
/// How often the stream checks that its session is still alive.
pub const SESSION_RECHECK: Duration = Duration::from_secs(60);
/// Punches read per poll.
const BATCH: i64 = 500;
/// Punches the page shows when it opens.
const RECENT: usize = 20;

/// The live page.
pub async fn live_page(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Markup, WebError> {
    let last = state.store.last_log_id().await?;
    let recent = state.store.punches_after(ctx.caller.scope(), (last - MAX_REPLAY).max(0), MAX_REPLAY).await?;
    let body = html! {
        h1 { "Live punches" }
        p { "Status: " span data-testid="live-status" aria-live="polite" { "Connecting…" } }
        div.table-wrap {
            table data-testid="live-punches" data-source="/live/events" {
                thead { tr {
                    th scope="col" { "Local time" } th scope="col" { "Zone" } th scope="col" { "Site" }
                    th scope="col" { "Device" } th scope="col" { "PIN" } th scope="col" { "Employee" }
                    th scope="col" { "Direction" }
                } }
                tbody aria-live="polite" {
                    @for p in recent.iter().rev().take(RECENT) {
                        tr data-key=(p.key) {
                            td { (p.local_time.format("%Y-%m-%d %H:%M:%S")) }
                            td { (p.time_zone.as_deref().unwrap_or("")) }
                            td { (p.site_id) }
                            td { @if let Some(n) = &p.device_name { (n) " (" (p.device_serial) ")" } @else { (p.device_serial) } }
                            td { (p.pin) }
                            td { (p.employee_name.as_deref().unwrap_or("")) }
                            td { (p.direction) }
                        }
                    }
                }
            }
        }
        noscript { p { "This page needs JavaScript to update; reload it to see new punches." } }
    };
    Ok(page("Live", &ctx, body))
}

struct Live {
    state: AppState,
    ctx: super::auth::WebContext,
    after: i64,
    pending: VecDeque<PunchView>,
    checked: Instant,
}

fn punch_event(p: &PunchView) -> Event {
    let event = Event::default().event("punch").id(p.id.to_string());
    event.json_data(p).unwrap_or_else(|_| Event::default().event("punch").id(p.id.to_string()).data("{}"))
}

/// How far back (in AllLogs ids) a reconnecting stream may resume.
const MAX_REPLAY: i64 = 2000;

/// The event stream.
pub async fn live_events(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let last = state.store.last_log_id().await?;
    // A reconnecting browser resumes where it stopped, but never further back than the last MAX_REPLAY AllLogs ids:
    // a hand-made `Last-Event-ID: 0` does not replay the whole history.
    let after = match resume {
        Some(id) if id >= 0 => id.max(last - MAX_REPLAY),
        _ => last,
    };
    let live = Live { state, ctx, after, pending: VecDeque::new(), checked: Instant::now() };
    let events = stream::unfold(live, |mut live| async move {
        loop {
            if let Some(p) = live.pending.pop_front() {
                return Some((Ok(punch_event(&p)), live));
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
            match live.state.store.punches_after(live.ctx.caller.scope(), live.after, BATCH).await {
                Ok(rows) => {
                    if let Some(last) = rows.last() {
                        live.after = last.id;
                    }
                    live.pending.extend(rows);
                }
                Err(e) => tracing::warn!(error = %e, "live punches: reading AllLogs failed; retrying"),
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

//! The web dashboard: server-rendered HTML pages (maud) for administrators, logged in with the session cookie.
//!
//! [`auth`] holds the extractors every page uses ([`auth::WebCaller`], [`auth::CsrfForm`]), [`layout`] the page
//! shell and flash messages, [`error`] the HTML refusals. The read-only pages: [`login`] (login/logout),
//! [`dashboard`] (today per site, with the 30-day [`chart`]), [`muster`] (the month's grid), [`day`] (an employee's
//! day and why it got its status), [`devices`] (agents' and devices' health), [`live`] (punches as they arrive, over
//! Server-Sent Events). The editing pages live in [`edit`]. The stylesheet and script are embedded and served from
//! `/static/`. Every page checks scope with [`Caller::require`](crate::access::Caller::require) or reads through the
//! scoped store functions, exactly as the JSON API does.

pub mod audit;
pub mod auth;
pub mod backups;
pub mod chart;
pub mod dashboard;
pub mod day;
pub mod devices;
pub mod edit;
pub mod error;
pub mod fleet;
pub mod jobs;
pub mod layout;
pub mod live;
pub mod login;
pub mod muster;
pub mod reports;
pub mod today;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::http::AppState;

const APP_CSS: &str = include_str!("static/app.css");
const APP_JS: &str = include_str!("static/app.js");

/// The dashboard's routes, merged into [`crate::http::router`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/login", get(login::login_page).post(login::login_submit))
        .route("/logout", post(login::logout))
        .route("/dashboard", get(dashboard::dashboard))
        .route("/muster", get(muster::muster_page))
        .route("/employees/{employee_id}/day/{date}", get(day::day_page))
        .route("/devices", get(devices::devices_page))
        .route("/live", get(live::live_page))
        .route("/live/events", get(live::live_events))
        .route("/inventory", get(fleet::inventory_page))
        .route("/inventory/events", get(fleet::status_events))
        .route("/alerts", get(fleet::alerts_page))
        .route("/jobs", get(jobs::list).post(jobs::create))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/audit", get(audit::audit_page))
        .route("/reports", get(reports::reports_page))
        .merge(edit::router())
        .merge(backups::router())
        .layer(middleware::from_fn(clear_shown_flash))
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/static/fleet.js", get(fleet::fleet_js))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

/// After a page that received a flash message was rendered (2xx), the message is removed from the browser.
async fn clear_shown_flash(request: Request, next: Next) -> Response {
    let had_flash = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains(layout::FLASH_COOKIE)));
    let mut response = next.run(request).await;
    let sets_flash = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(layout::FLASH_COOKIE)));
    if had_flash && response.status().is_success() && !sets_flash {
        response.headers_mut().append(header::SET_COOKIE, HeaderValue::from_static(layout::CLEAR_FLASH_COOKIE));
    }
    response
}

//! `GET /dashboard`: today at a glance for every site the caller sees.

use axum::extract::State;
use maud::{html, Markup};

use super::auth::WebCaller;
use super::error::WebError;
use super::layout::page;
use crate::http::AppState;

/// The dashboard page.
pub async fn dashboard(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Markup, WebError> {
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let body = html! {
        h1 { "Today" }
        @if sites.is_empty() {
            p { "You have no sites yet." }
        }
        @for site in &sites {
            section.site data-site=(site.site_id) {
                h2 { (site.name) " " small { "(" (site.site_id) ", " (site.time_zone) ")" } }
            }
        }
    };
    Ok(page("Dashboard", &ctx, body))
}

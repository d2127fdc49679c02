//! The dashboard's editing pages (manual punches, employees, shifts, holidays): forms posted with
//! [`CsrfForm`](super::auth::CsrfForm), answered with Post/Redirect/Get and a flash message.

use axum::Router;

use crate::http::AppState;

/// The editing routes, merged into [`super::router`].
pub fn router() -> Router<AppState> {
    Router::new()
}

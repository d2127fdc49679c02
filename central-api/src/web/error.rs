//! What a page answers when it cannot be shown: a redirect to the login form for a visitor without a session, or an
//! HTML error page with the status the JSON API would have used (404 for a site out of scope, 403 for a refused
//! change or a missing CSRF token, 400 for bad input, 503 when the database fails).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;

use super::layout;
use crate::http::api::store_error;
use crate::http::error::ApiError;
use crate::store::StoreError;

/// A page's refusal.
#[derive(Debug)]
pub enum WebError {
    /// No (live) session: `303` to `/login?next=<next>`.
    Login { next: String },
    /// An error page.
    Page { status: StatusCode, message: String },
}

impl WebError {
    pub fn page(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Page { status, message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::page(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::page(StatusCode::BAD_REQUEST, message)
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        if e.status.is_server_error() {
            tracing::error!(status = %e.status, code = e.code, message = %e.message, "page failed");
        }
        Self::Page { status: e.status, message: e.message }
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        store_error(e).into()
    }
}

/// `/login?next=<next>` with `next` percent-encoded.
pub fn login_url(next: &str) -> String {
    match serde_urlencoded::to_string([("next", next)]) {
        Ok(query) if next != "/dashboard" && !next.is_empty() => format!("/login?{query}"),
        _ => "/login".to_owned(),
    }
}

/// A `303 See Other` to `to`.
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            Self::Login { next } => see_other(&login_url(&next)),
            Self::Page { status, message } => {
                let title = status.canonical_reason().unwrap_or("Error");
                let body = html! {
                    h1 { (status.as_u16()) " " (title) }
                    p.error role="alert" { (message) }
                    p { a href="/dashboard" { "Back to the dashboard" } }
                };
                (status, layout::bare_page(title, body)).into_response()
            }
        }
    }
}

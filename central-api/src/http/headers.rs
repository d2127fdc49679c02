//! Security headers on every answer (issue 12, finding 3), set by the [`security`] middleware unless the handler set
//! its own:
//!
//! - every answer: `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy: same-origin`
//!   (not `no-referrer`: a browser then sends `Origin: null` with a same-site form post, which the login form's
//!   origin check refuses);
//! - HTML pages: a `Content-Security-Policy` that allows scripts, styles, images, connections (the live pages'
//!   Server-Sent Events) and form posts from this origin only, no inline script or style (the API docs page's one
//!   inline stylesheet by its hash), `frame-ancestors 'none'`, no `<base>` and no plugins;
//! - everything else (JSON, CSV, scripts, event streams): `Content-Security-Policy: default-src 'none';
//!   frame-ancestors 'none'`, and API answers `Cache-Control: no-store`;
//! - `Strict-Transport-Security` only when browsers reach the service over HTTPS (`[tls]`, or an `https://`
//!   `public_url` behind a proxy): over plain HTTP the header is meaningless and on a proxy's HTTPS it is right.

use std::sync::OnceLock;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::AppState;

/// The policy of answers that are not HTML pages.
pub const NON_PAGE_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// One year, the usual HSTS lifetime.
pub const HSTS: &str = "max-age=31536000";

/// The policy of HTML pages (see the module docs).
pub fn page_csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let docs_style =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(super::api::docs::DOCS_STYLE.as_bytes()));
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self' 'sha256-{docs_style}'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        )
    })
}

/// The middleware (see the module docs).
pub async fn security(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: HeaderValue| {
        headers.entry(name).or_insert(value);
    };
    set(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    set(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    set(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    let csp = if html { HeaderValue::from_static(page_csp()) } else { HeaderValue::from_static(NON_PAGE_CSP) };
    set(header::CONTENT_SECURITY_POLICY, csp);
    if api {
        set(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.secure_cookies {
        set(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_policy_allows_only_this_origin_and_the_docs_style() {
        let csp = page_csp();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        let hash = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(crate::http::api::docs::DOCS_STYLE.as_bytes()));
        assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
    }
}

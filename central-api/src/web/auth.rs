//! Who is looking at a page, and forms that prove they came from our pages.
//!
//! - [`WebCaller`]: the session cookie's [`Caller`] plus the session's CSRF token, the request path and the flash
//!   message, as a [`WebContext`]. Without a live session a GET is redirected to `/login?next=<path>` (anything else
//!   to `/login`). Bearer tokens are not accepted here: pages are for browsers.
//! - [`CsrfForm<T>`]: an `application/x-www-form-urlencoded` body whose `_csrf` field must equal the session's CSRF
//!   token (else a 403 page); the other fields are decoded into `T` (a decoding error is a 400 page). Pages put
//!   the token in every form with [`csrf_field`].
//!
//! The session cookie is `HttpOnly` and `SameSite=Strict`; the token is the second line of defence.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use maud::{html, Markup};
use serde::de::DeserializeOwned;

use super::error::WebError;
use super::layout::FLASH_COOKIE;
use crate::access::extract::{caller_for, cookie, live_session, SESSION_COOKIE};
use crate::access::{secrets, Caller, Via};
use crate::http::AppState;

/// Largest form body a page accepts.
pub const MAX_FORM: usize = 64 * 1024;

/// What every page knows about its request.
#[derive(Debug, Clone)]
pub struct WebContext {
    pub caller: Caller,
    /// The session's CSRF token, put in forms by [`csrf_field`].
    pub csrf_token: String,
    /// The request's path (the nav marks the current page).
    pub path: String,
    /// A message left by the previous request (Post/Redirect/Get), shown once.
    pub flash: Option<String>,
}

/// The extractor of every page: a logged-in administrator (see the module doc).
#[derive(Debug, Clone)]
pub struct WebCaller(pub WebContext);

impl FromRequestParts<AppState> for WebCaller {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(ctx) = parts.extensions.get::<WebContext>() {
            return Ok(Self(ctx.clone()));
        }
        let next = if parts.method == Method::GET {
            parts.uri.path_and_query().map_or("/dashboard", |p| p.as_str()).to_owned()
        } else {
            "/dashboard".to_owned()
        };
        let login = || WebError::Login { next: next.clone() };
        let secret = cookie(parts, SESSION_COOKIE).ok_or_else(login)?;
        let hash = secrets::hash(secret);
        let session = live_session(state, &hash).await.map_err(|e| {
            if e.status == StatusCode::UNAUTHORIZED {
                login()
            } else {
                e.into()
            }
        })?;
        let mut caller = caller_for(state, session.username, Via::Session(hash)).await.map_err(|e| {
            if e.status == StatusCode::UNAUTHORIZED {
                login()
            } else {
                e.into()
            }
        })?;
        caller.address = crate::access::extract::peer_address(parts);
        let flash = cookie(parts, FLASH_COOKIE).and_then(super::layout::decode_flash);
        // The token is derived from the cookie's secret; the stored hash proves it is this session's.
        let csrf_token = secrets::csrf_token(secret);
        if !secrets::csrf_matches(&csrf_token, &session.csrf_hash) {
            return Err(login());
        }
        let ctx = WebContext { caller, csrf_token, path: parts.uri.path().to_owned(), flash };
        parts.extensions.insert(ctx.clone());
        Ok(Self(ctx))
    }
}

/// The hidden `_csrf` input every form of the dashboard carries.
pub fn csrf_field(ctx: &WebContext) -> Markup {
    html! { input type="hidden" name="_csrf" value=(ctx.csrf_token); }
}

/// A form posted from one of our pages (see the module doc).
#[derive(Debug, Clone)]
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let WebCaller(ctx) = WebCaller::from_request_parts(&mut parts, state).await?;
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(WebError::page(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a form must be sent as application/x-www-form-urlencoded",
            ));
        }
        let bytes = axum::body::to_bytes(body, MAX_FORM).await.map_err(|_| {
            WebError::page(StatusCode::PAYLOAD_TOO_LARGE, format!("a form is at most {MAX_FORM} bytes"))
        })?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| WebError::bad_request(format!("the form does not decode: {e}")))?;
        let sent = pairs.iter().find(|(k, _)| k == "_csrf").map_or("", |(_, v)| v.as_str());
        if !secrets::same(sent.as_bytes(), ctx.csrf_token.as_bytes()) {
            return Err(WebError::page(
                StatusCode::FORBIDDEN,
                "this form is out of date or did not come from this site; reload the page and try again",
            ));
        }
        let fields: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "_csrf").collect();
        let encoded = serde_urlencoded::to_string(&fields)
            .map_err(|e| WebError::bad_request(format!("the form does not decode: {e}")))?;
        let value = serde_urlencoded::from_str(&encoded).map_err(|e| WebError::bad_request(format!("form: {e}")))?;
        Ok(Self(value))
    }
}

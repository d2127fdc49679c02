//! `GET/POST /login` and `POST /logout`. The form login goes through the same
//! [`start_session`](crate::http::api::session::start_session) as `POST /api/v1/login` (rate limiter, argon2id,
//! session store), then redirects to `next` when it is a path of this site.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::{CsrfForm, WebCaller};
use super::error::{see_other, WebError};
use super::layout::{bare_page, decode_flash, flash_redirect, FLASH_COOKIE};
use crate::access::extract::{live_session, SESSION_COOKIE};
use crate::access::{secrets, Via};
use crate::http::api::session::{start_session, LoginRefused, CLEAR_SESSION_COOKIE};
use crate::http::AppState;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `next` when it is a local path (not `//host` or `/\host`), else the dashboard.
pub fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if local && next != "/" && !next.starts_with("/login") {
        next
    } else {
        "/dashboard"
    }
}

fn login_form(username: &str, next: &str, error: Option<&str>, flash: Option<&str>) -> Markup {
    bare_page(
        "Log in",
        html! {
            h1 { "Log in" }
            @if let Some(message) = flash {
                p.flash role="status" data-testid="flash" { (message) }
            }
            @if let Some(error) = error {
                p.error role="alert" data-testid="login-error" { (error) }
            }
            form.stack method="post" action="/login" {
                input type="hidden" name="next" value=(safe_next(next));
                label for="username" { "Username" }
                input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The login form (with the flash message left by a logout); someone already logged in goes on to `next`.
pub async fn login_page(State(state): State<AppState>, Query(q): Query<LoginQuery>, headers: HeaderMap) -> Response {
    let next = q.next.as_deref().unwrap_or("/dashboard");
    if let Some(secret) = crate::access::extract::header_cookie(&headers, SESSION_COOKIE) {
        if live_session(&state, &secrets::hash(secret)).await.is_ok() {
            return see_other(safe_next(next));
        }
    }
    let flash = crate::access::extract::header_cookie(&headers, FLASH_COOKIE).and_then(decode_flash);
    login_form("", next, None, flash.as_deref()).into_response()
}

/// A browser's form post must come from this site: an `Origin` header, when sent, must name the `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    !host.is_empty() && origin_host == host
}

/// Checks the credentials; on success sets the session cookie and redirects to `next`.
pub async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return WebError::page(StatusCode::FORBIDDEN, "the login form was posted from another site").into_response();
    }
    match start_session(&state, &form.username, &form.password, peer.ip()).await {
        Ok(started) => {
            let mut response = see_other(safe_next(&form.next));
            response.headers_mut().insert(header::SET_COOKIE, started.cookie);
            response
        }
        Err(LoginRefused::Blocked(wait)) => {
            let message = format!("Too many failed attempts. Try again in {} seconds.", wait.as_secs() + 1);
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, login_form(&form.username, &form.next, Some(&message), None))
                    .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs() + 1));
            response
        }
        Err(LoginRefused::Busy(wait)) => {
            let message =
                format!("The server is busy checking other logins. Try again in {} s.", wait.as_secs().max(1));
            let mut response =
                (StatusCode::SERVICE_UNAVAILABLE, login_form(&form.username, &form.next, Some(&message), None))
                    .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
            response
        }
        Err(LoginRefused::Error(e)) if e.status.is_client_error() => {
            let message = if e.status == StatusCode::UNAUTHORIZED {
                "Unknown user or wrong password.".to_owned()
            } else {
                e.message
            };
            (e.status, login_form(&form.username, &form.next, Some(&message), None)).into_response()
        }
        Err(LoginRefused::Error(e)) => WebError::from(e).into_response(),
    }
}

/// Ends the session and returns to the login form.
pub async fn logout(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(_): CsrfForm<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    if let Via::Session(hash) = &ctx.caller.via {
        state.store.delete_session(hash).await?;
    }
    let mut response = flash_redirect("/login", "You have been logged out.");
    response.headers_mut().append(header::SET_COOKIE, HeaderValue::from_static(CLEAR_SESSION_COOKIE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/muster?site=A"), "/muster?site=A");
        assert_eq!(safe_next("//evil.example/x"), "/dashboard");
        assert_eq!(safe_next("/\\evil.example"), "/dashboard");
        assert_eq!(safe_next("https://evil.example"), "/dashboard");
        assert_eq!(safe_next("/login?next=/x"), "/dashboard");
        assert_eq!(safe_next(""), "/dashboard");
    }

    #[test]
    fn origin_must_match_host() {
        let mut headers = HeaderMap::new();
        assert!(same_origin(&headers));
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers));
    }
}

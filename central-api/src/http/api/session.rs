//! Login, logout, who am I, and administrators' API tokens.
//!
//! `POST /api/v1/login` counts the attempt with the limiter before checking the argon2id hash on the bounded pool of
//! password checks, refuses with 429 once a username, an address or the whole service used its budget of failures
//! within a minute ([`crate::access::ratelimit`]), with 503 when every password check is in use (both with
//! `Retry-After`), and on success sets the session cookie (HttpOnly, SameSite=Strict, Path=/) and returns the CSRF token the pages send back
//! in `X-CSRF-Token`.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{store_error, text, Body};
use crate::access::extract::SESSION_COOKIE;
use crate::access::hashing::{Busy, PasswordChecks};
use crate::access::{secrets, Caller, Role, Via};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::access::AdminTokenInfo;

/// How long a web session lasts.
pub const SESSION_HOURS: i64 = 12;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub username: String,
    pub role: Role,
    /// Granted sites (root sees every site; the list is empty).
    pub sites: Vec<String>,
    /// The CSRF token to send in `X-CSRF-Token` (login answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for.
    pub label: String,
    /// When the token stops working (RFC 3339, in the future, at most [`MAX_TOKEN_DAYS`] days ahead); absent: it
    /// works until revoked.
    #[serde(default)]
    pub expires_at: Option<chrono::DateTime<Utc>>,
}

/// The farthest expiry a token may be given, in days.
pub const MAX_TOKEN_DAYS: i64 = 3660;

/// What is wrong with a token expiry `at` given at `now`: it must be in the future and within [`MAX_TOKEN_DAYS`].
pub fn expiry_problem(at: chrono::DateTime<Utc>, now: chrono::DateTime<Utc>) -> Option<String> {
    if at <= now {
        Some(format!("{} is not in the future", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
    } else if at > now + Duration::days(MAX_TOKEN_DAYS) {
        Some(format!("is more than {MAX_TOKEN_DAYS} days ahead"))
    } else {
        None
    }
}

/// A token just issued: its text is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedToken {
    pub token_id: String,
    pub token: String,
    pub expires_at: Option<chrono::DateTime<Utc>>,
}

fn bad_login() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown administrator or wrong password")
}

/// Logs in and starts a web session.
#[utoipa::path(post, path = "/api/v1/login", request_body = LoginRequest, tag = "access",
    responses((status = 200, body = Me), (status = 400), (status = 401), (status = 413), (status = 415),
        (status = 429), (status = 503)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(req): Body<LoginRequest>,
) -> Result<Response, ApiError> {
    let started = match start_session(&state, &req.username, &req.password, peer.ip()).await {
        Ok(started) => started,
        Err(LoginRefused::Blocked(wait)) => return Ok(too_many_attempts(&req.username, wait)),
        Err(LoginRefused::Busy(wait)) => return Ok(busy(wait)),
        Err(LoginRefused::Error(e)) => return Err(e),
    };
    let mut response = Json(started.me).into_response();
    response.headers_mut().insert(header::SET_COOKIE, started.cookie);
    Ok(response)
}

/// A session just started: the `Set-Cookie` value to send and who logged in (with the CSRF token).
pub struct StartedSession {
    pub cookie: HeaderValue,
    pub me: Me,
}

/// How long a client is asked to wait when every password check is in use.
pub const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a login did not start a session.
pub enum LoginRefused {
    /// Too many failed attempts for this username, from this address, or in all: wait this long.
    Blocked(std::time::Duration),
    /// Every password check is in use: wait this long (answered 503).
    Busy(std::time::Duration),
    /// Bad input, wrong credentials (401) or storage.
    Error(ApiError),
}

impl From<ApiError> for LoginRefused {
    fn from(e: ApiError) -> Self {
        Self::Error(e)
    }
}

/// The `429` answer for a blocked (username, address) pair, with `Retry-After`.
pub fn too_many_attempts(username: &str, wait: std::time::Duration) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed logins for {username}; retry in {} s", wait.as_secs() + 1),
    )
    .into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs() + 1));
    response
}

/// The `503` answer when every password check is in use, with `Retry-After`. Logged at debug level only: under a
/// storm of logins there is one per refused request.
pub fn busy(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs().max(1);
    tracing::debug!("login refused: every password check is in use");
    let body =
        serde_json::json!({ "code": "busy", "message": format!("every password check is in use; retry in {secs} s") });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// What both logins (`POST /api/v1/login` and the web form) do: reserve the attempt with the rate limiter (counted
/// before the hash, per username, per address and in all), check the argon2id hash on the bounded pool of
/// [`PasswordChecks`] (an unknown username costs the same), settle the attempt, and store a new session.
///
/// # Errors
/// [`LoginRefused::Blocked`] past the limiter's budget, [`LoginRefused::Busy`] when every password check is in use,
/// `400` for blank or oversized fields, `401` for an unknown administrator or a wrong password, `503` on storage.
pub async fn start_session(
    state: &AppState,
    username: &str,
    password: &str,
    ip: std::net::IpAddr,
) -> Result<StartedSession, LoginRefused> {
    text("username", username, 100)?;
    text("password", password, 1000)?;
    let attempt = state.limiter.begin(username, ip, Instant::now()).map_err(|(_, wait)| LoginRefused::Blocked(wait))?;
    let admin = match state.store.admin(username).await {
        Ok(admin) => admin,
        Err(e) => {
            attempt.not_checked();
            return Err(store_error(e).into());
        }
    };
    let hash = admin.as_ref().map(|a| a.password_hash.clone());
    let ok = match PasswordChecks::shared().verify(hash, password).await {
        Ok(ok) => ok,
        Err(Busy) => {
            attempt.not_checked();
            return Err(LoginRefused::Busy(BUSY_RETRY));
        }
    };
    let Some(admin) = admin.filter(|_| ok) else {
        attempt.failed();
        return Err(bad_login().into());
    };
    attempt.succeeded();
    let role = Role::parse(&admin.role).map_err(|m| ApiError::new(StatusCode::FORBIDDEN, "forbidden", m))?;
    let secret = secrets::random_hex(32);
    let csrf = secrets::csrf_token(&secret);
    let expires = Utc::now() + Duration::hours(SESSION_HOURS);
    state
        .store
        .create_session(&secrets::hash(&secret), &admin.username, &secrets::csrf_stored(&csrf), expires)
        .await
        .map_err(store_error)?;
    let sites = if role == Role::Root {
        Vec::new()
    } else {
        state.store.admin_sites(&admin.username).await.map_err(store_error)?
    };
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        SESSION_HOURS * 3600
    );
    let cookie = HeaderValue::from_str(&cookie)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(StartedSession { cookie, me: Me { username: admin.username, role, sites, csrf_token: Some(csrf) } })
}

/// The `Set-Cookie` value that ends the session cookie in the browser.
pub const CLEAR_SESSION_COOKIE: &str = "ac_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0";

/// Ends the caller's web session.
#[utoipa::path(post, path = "/api/v1/logout", tag = "access", responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    if let Via::Session(hash) = &caller.via {
        state.store.delete_session(hash).await.map_err(store_error)?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_static(CLEAR_SESSION_COOKIE));
    Ok(response)
}

/// The caller's identity, role and sites (and, for a web session, its CSRF token, so pages can send it).
#[utoipa::path(get, path = "/api/v1/me", tag = "access", responses((status = 200, body = Me)))]
pub async fn me(caller: Caller, headers: axum::http::HeaderMap) -> Result<Json<Me>, ApiError> {
    // The caller came in with this cookie (the extractor checked it), so the token derived from it is the session's.
    let csrf_token = match &caller.via {
        Via::Session(_) => crate::access::extract::header_cookie(&headers, SESSION_COOKIE).map(secrets::csrf_token),
        Via::Token(_) => None,
    };
    Ok(Json(Me { username: caller.username, role: caller.role, sites: caller.sites, csrf_token }))
}

/// The caller's API tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "access", responses((status = 200, body = [AdminTokenInfo])))]
pub async fn list_tokens(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<AdminTokenInfo>>, ApiError> {
    Ok(Json(state.store.admin_tokens(&caller.username).await.map_err(store_error)?))
}

/// Issues an API token for the caller (bearer `adm_<id>_<secret>`, shown once), optionally with an expiry.
#[utoipa::path(post, path = "/api/v1/tokens", request_body = NewToken, tag = "access",
    responses((status = 201, body = IssuedToken), (status = 400)))]
pub async fn issue_token(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    Ok((StatusCode::CREATED, Json(issue(&state, &caller, req).await?)))
}

/// What `POST /api/v1/tokens` and the dashboard's token page do: check the label and expiry, store the token's hash,
/// audit, and return the token (the only time its text exists).
///
/// # Errors
/// `400` naming `label` or `expires_at`, `503` on storage.
pub async fn issue(state: &AppState, caller: &Caller, req: NewToken) -> Result<IssuedToken, ApiError> {
    text("label", &req.label, 200)?;
    let now = Utc::now();
    if let Some(problem) = req.expires_at.and_then(|at| expiry_problem(at, now)) {
        return Err(super::invalid("expires_at", problem));
    }
    let token_id = secrets::random_hex(8);
    let secret = secrets::random_hex(32);
    state
        .store
        .create_admin_token(&token_id, &caller.username, &secrets::hash(&secret), &req.label, req.expires_at)
        .await
        .map_err(store_error)?;
    let token = format!("{}{token_id}_{secret}", secrets::TOKEN_PREFIX);
    let after = serde_json::json!({ "token_id": token_id, "username": caller.username, "label": req.label,
        "expires_at": req.expires_at });
    crate::audit::record(&state.store, caller, crate::audit::Entry::new("issue", "token", &token_id).after(&after))
        .await;
    Ok(IssuedToken { token_id, token, expires_at: req.expires_at })
}

/// Revokes one of the caller's API tokens; it is refused from the next request on.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "access", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.revoke_admin_token(&caller.username, &id).await.map_err(store_error)?;
    let before = serde_json::json!({ "token_id": id, "username": caller.username });
    crate::audit::record(&state.store, &caller, crate::audit::Entry::new("revoke", "token", &id).before(&before)).await;
    Ok(StatusCode::NO_CONTENT)
}

//! The extractor every admin handler takes: it turns a request into a [`Caller`] or refuses it.
//!
//! - `Authorization: Bearer adm_<id>_<secret>`: an administrator API token (not revoked, not expired: an expired one
//!   is `401` saying so). Its last use is recorded at most once a minute.
//! - Cookie [`SESSION_COOKIE`]: a web session (not expired). A state-changing method (anything but GET, HEAD,
//!   OPTIONS) must also carry the session's CSRF token in [`CSRF_HEADER`]; the cookie is `SameSite=Strict` as well.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use chrono::Utc;

use super::{secrets, Caller, Role, Via};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::access::{SessionRecord, LAST_USED_EVERY};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ac_session";
/// The header carrying the CSRF token on cookie-authenticated changes.
pub const CSRF_HEADER: &str = "x-csrf-token";

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn storage(e: crate::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", e.to_string())
}

/// The value of cookie `name` in the request's Cookie headers.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    header_cookie(&parts.headers, name)
}

/// The value of cookie `name` in these Cookie headers.
pub fn header_cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let (username, via) = if let Some(token) = bearer {
            let (id, secret) =
                secrets::parse_token(token.trim()).ok_or_else(|| unauthorized("malformed administrator token"))?;
            let record = state
                .store
                .admin_token(id)
                .await
                .map_err(storage)?
                .ok_or_else(|| unauthorized("unknown or revoked administrator token"))?;
            if !secrets::same(&record.token_hash, &secrets::hash(secret)) {
                return Err(unauthorized("unknown or revoked administrator token"));
            }
            let now = Utc::now();
            if let Some(expired) = record.expires_at.filter(|at| *at <= now) {
                return Err(unauthorized(&format!(
                    "administrator token {id} expired at {}; issue a new one (POST /api/v1/tokens)",
                    expired.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )));
            }
            if record.last_used_at.is_none_or(|at| at <= now - LAST_USED_EVERY) {
                // Best effort: a failed write must not refuse a valid token.
                if let Err(e) = state.store.touch_admin_token(id, now).await {
                    tracing::warn!(token = id, error = %e, "could not record the token's last use");
                }
            }
            (record.username, Via::Token(id.to_owned()))
        } else if let Some(secret) = cookie(parts, SESSION_COOKIE) {
            let hash = secrets::hash(secret);
            let session = live_session(state, &hash).await?;
            if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
                let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
                if !secrets::csrf_matches(sent, &session.csrf_hash) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "csrf_required",
                        format!("a change made with a session cookie needs the session's {CSRF_HEADER} header"),
                    ));
                }
            }
            (session.username, Via::Session(hash))
        } else {
            return Err(unauthorized("log in (POST /api/v1/login) or send an administrator bearer token"));
        };
        let mut caller = caller_for(state, username, via).await?;
        caller.address = peer_address(parts);
        Ok(caller)
    }
}

/// The TCP peer's address, when the server recorded it.
pub fn peer_address(parts: &Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

/// The unexpired session whose secret hashes to `hash`.
///
/// # Errors
/// `401 unauthorized` for an unknown or expired session, `503` when the store fails.
pub async fn live_session(state: &AppState, hash: &[u8]) -> Result<SessionRecord, ApiError> {
    state
        .store
        .session(hash)
        .await
        .map_err(storage)?
        .filter(|s| s.expires_at > Utc::now())
        .ok_or_else(|| unauthorized("the session expired; log in again"))
}

/// The [`Caller`] for an authenticated administrator: role and granted sites as stored now.
///
/// # Errors
/// `401` when the administrator no longer exists, `403` for a stored role that does not parse, `503` on storage.
pub async fn caller_for(state: &AppState, username: String, via: Via) -> Result<Caller, ApiError> {
    let admin = state
        .store
        .admin(&username)
        .await
        .map_err(storage)?
        .ok_or_else(|| unauthorized("the administrator no longer exists"))?;
    let role = Role::parse(&admin.role)
        .map_err(|m| ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("administrator {username}: {m}")))?;
    let sites =
        if role == Role::Root { Vec::new() } else { state.store.admin_sites(&username).await.map_err(storage)? };
    Ok(Caller { username, role, sites, via, address: None })
}

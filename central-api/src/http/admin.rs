//! Administrator endpoints. For now only the list of unknown PINs, behind HTTP Basic credentials checked against the
//! argon2id hashes `create-admin` stores. Issue 8 replaces this with sessions and roles.

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::Engine as _;

use super::error::ApiError;
use super::AppState;
use crate::store::admin::UnknownPin;

/// `GET /api/v1/unknown-pins`: PINs that punched but match no employee.
pub async fn unknown_pins(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<UnknownPin>>, ApiError> {
    require_admin(&state, &headers).await?;
    let pins = state.store.unknown_pins().await.map_err(storage)?;
    Ok(Json(pins))
}

fn storage(e: crate::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", e.to_string())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

async fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let encoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(|| unauthorized("administrator credentials required (HTTP Basic)"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let (username, password) = decoded.split_once(':').ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    let admin = state.store.admin(username).await.map_err(storage)?;
    let Some(admin) = admin else {
        return Err(unauthorized("unknown administrator or wrong password"));
    };
    let password = password.to_owned();
    // argon2 is deliberately slow; keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&admin.password_hash)
            .map(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(unauthorized("unknown administrator or wrong password"))
    }
}

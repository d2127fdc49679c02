//! The admin JSON API under `/api/v1`: every handler takes a [`Caller`](crate::access::Caller) and asks
//! [`Caller::require`](crate::access::Caller::require) before touching a site. Bodies are JSON with a size limit
//! ([`MAX_BODY`]); a body that does not decode, or a field that fails validation, is refused with `400 invalid` and a
//! message naming the field.

pub mod attendance;
pub mod audit;
pub mod backups;
pub mod docs;
pub mod exceptions;
pub mod fleet;
pub mod fleet_users;
pub mod inventory;
pub mod jobs;
pub mod local_time;
pub mod people;
pub mod quarantine;
pub mod reports;
pub mod requests;
pub mod session;
pub mod shifts;
pub mod sites;
pub mod updates;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;
use crate::store::StoreError;

/// Largest JSON body an admin request may carry.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest page a list returns.
pub const MAX_PAGE: i64 = 1000;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/login", post(session::login))
        .route("/api/v1/logout", post(session::logout))
        .route("/api/v1/me", get(session::me))
        .route("/api/v1/tokens", get(session::list_tokens).post(session::issue_token))
        .route("/api/v1/tokens/{id}", delete(session::revoke_token))
        .route("/api/v1/sites", get(sites::list_sites).post(sites::create_site))
        .route("/api/v1/sites/{id}", get(sites::get_site).put(sites::update_site))
        .route("/api/v1/agents", get(sites::list_agents).post(sites::create_agent))
        .route("/api/v1/agents/{id}/revoke", post(sites::revoke_agent))
        .route("/api/v1/devices", get(sites::list_devices).post(sites::create_device))
        .route(
            "/api/v1/devices/{serial}",
            put(updates::update_device).get(fleet::get_device).delete(fleet::delete_device),
        )
        .route("/api/v1/commands", get(fleet::list_commands).post(fleet::post_commands))
        .route("/api/v1/commands/{id}", get(fleet::get_command))
        .route("/api/v1/employees/{id}/push", post(fleet_users::push_employee))
        .route("/api/v1/employees/{id}/remove-from-devices", post(fleet_users::remove_employee))
        .route("/api/v1/employees/{id}/devices", get(fleet_users::employee_devices))
        .route("/api/v1/employees/{id}/copy-templates", post(fleet_users::copy_templates))
        .route("/api/v1/sites/{id}/remove-leavers", post(fleet_users::remove_leavers))
        .route("/api/v1/sites/{id}/push-employees", post(fleet_users::push_site))
        .route("/api/v1/employees", get(people::list_employees).post(people::create_employee))
        .route("/api/v1/employees/{id}", get(people::get_employee).put(people::update_employee))
        .route("/api/v1/shifts", get(shifts::list_shifts).post(shifts::create_shift))
        .route("/api/v1/shifts/{code}", get(shifts::get_shift).put(shifts::update_shift))
        .route("/api/v1/week-off-rules", get(people::list_week_off_rules).post(people::create_week_off_rule))
        .route("/api/v1/week-off-rules/{code}", put(updates::update_week_off_rule))
        .route("/api/v1/holidays", get(people::list_holidays).post(people::create_holiday))
        .route("/api/v1/holidays/{id}", delete(people::delete_holiday))
        .route("/api/v1/manual-logs", get(requests::list_manual_logs).post(requests::create_manual_log))
        .route("/api/v1/manual-logs/{id}/approve", post(requests::approve_manual_log))
        .route("/api/v1/manual-logs/{id}/reject", post(requests::reject_manual_log))
        .route("/api/v1/leaves", get(requests::list_leaves).post(requests::create_leave))
        .route("/api/v1/leaves/{id}/approve", post(requests::approve_leave))
        .route("/api/v1/leaves/{id}/reject", post(requests::reject_leave))
        .route("/api/v1/attendance", get(attendance::list_attendance))
        .route("/api/v1/man-days", get(attendance::list_man_days))
        .route("/api/v1/logs", get(attendance::list_logs))
        .route("/api/v1/unknown-pins", get(attendance::unknown_pins))
        .route("/api/v1/reports/muster", get(reports::muster))
        .route("/api/v1/reports/daily", get(reports::daily))
        .route("/api/v1/reports/late", get(exceptions::late))
        .route("/api/v1/reports/early-going", get(exceptions::early_going))
        .route("/api/v1/reports/overtime", get(exceptions::overtime))
        .route("/api/v1/reports/absentees", get(exceptions::absentees))
        .route("/api/v1/jobs", get(jobs::list_jobs).post(jobs::create_job))
        .route("/api/v1/jobs/{id}", get(jobs::get_job))
        .route("/api/v1/jobs/{id}/cancel", post(jobs::cancel_job))
        .route("/api/v1/audit", get(audit::list_audit))
        .route("/api/v1/backups", get(backups::list_backups).post(backups::create_backup))
        .route(
            "/api/v1/backups/{name}",
            get(backups::download_backup).put(backups::upload_backup).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/restores", post(backups::create_restore))
        .merge(inventory::router())
        .route("/api/openapi.json", get(docs::openapi_json))
        .route("/api/docs", get(docs::docs_page))
        .merge(quarantine::router())
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// A JSON body whose decoding errors name the field (serde's message) and become `400 invalid` (`413` past the
/// limit).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the body is larger than {MAX_BODY} bytes"),
                ))
            }
            Err(e) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.body_text())),
        };
        // A NUL character is valid JSON (`\u0000`) but no text column takes it: refuse it naming the field.
        if bytes.windows(6).any(|w| w == b"\\u0000") {
            if let Some(field) = serde_json::from_slice(&bytes).ok().as_ref().and_then(super::guard::nul_field) {
                return Err(invalid(&field, "contains a NUL character (\\u0000), which is not accepted"));
            }
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(invalid_body(e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(invalid_body(e.body_text())),
            Err(e) => Err(ApiError::new(e.status(), super::guard::code_of(e.status()), e.body_text())),
        }
    }
}

/// Whether the request says its body is JSON (`application/json`, or a `+json` type).
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// `400 invalid` for a body serde refused; the message starts with the field serde names (its prefix about the
/// JSON body is dropped), as every validation message does.
fn invalid_body(text: String) -> ApiError {
    const PREFIXES: [&str; 2] =
        ["Failed to deserialize the JSON body into the target type: ", "Failed to parse the request body as JSON: "];
    let message = PREFIXES.iter().find_map(|p| text.strip_prefix(p)).map_or(text.clone(), str::to_owned);
    ApiError::new(StatusCode::BAD_REQUEST, "invalid", message)
}

/// `400 invalid` naming `field`.
pub fn invalid(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid", format!("{field}: {message}"))
}

/// Checks a required text field: not blank, at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("is longer than {max} characters")));
    }
    Ok(())
}

/// A page size from a query (default 100, at most [`MAX_PAGE`]).
pub fn page_size(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(invalid("limit", format!("{n} is not between 1 and {MAX_PAGE}"))),
    }
}

/// The kinds whose ids are one space shared by every site (issue 12, finding 6): an employee's id is the PIN
/// enrolled on the devices and keys its punches and days everywhere, a device serial is a physical terminal's (at one
/// site at a time) and an agent id names the agent's MQTT topics and broker login. A create that collides answers
/// [`shared_id_taken`], the same text whichever site holds the id, so it reveals only that the id is in use.
pub const SHARED_ID_KINDS: [&str; 3] = ["employee", "device", "agent"];

/// The `409` message for a taken id of a [`SHARED_ID_KINDS`] kind: it never names the site holding it.
pub fn shared_id_taken(what: &str, id: &str) -> String {
    format!(
        "{what} id {id:?} is already taken: {what} ids are shared by every site, so it may be in use at a site you \
         cannot see; choose another id"
    )
}

/// Maps a store error to its answer. The database's own text never reaches the client (it is logged): a value
/// PostgreSQL cannot store (a NUL character) is `400`, a missing referenced record `400`, anything else `503`.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
        StoreError::AlreadyExists { what, ref id } if SHARED_ID_KINDS.contains(&what) => {
            ApiError::new(StatusCode::CONFLICT, "already_exists", shared_id_taken(what, id))
        }
        StoreError::AlreadyExists { .. } => ApiError::new(StatusCode::CONFLICT, "already_exists", e.to_string()),
        StoreError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", m),
        StoreError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            tracing::info!(error = %db, "refused: foreign key");
            ApiError::new(StatusCode::BAD_REQUEST, "invalid", "a referenced record does not exist")
        }
        StoreError::Database(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
            tracing::info!(error = %db, "refused: a value the database cannot store");
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid",
                "a text value contains a character that cannot be stored (a NUL character)",
            )
        }
        other => {
            tracing::error!(error = %other, "storage failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the database is unavailable or failed; try again later",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        n: i64,
    }

    fn decode(bytes: Vec<u8>) -> Result<Body<Sample>, ApiError> {
        let request = axum::http::Request::builder()
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(bytes))
            .expect("request");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(Body::<Sample>::from_request(request, &()))
    }

    #[test]
    fn refusals_name_the_field() {
        let err = decode(br#"{"name": "x", "n": "seven"}"#.to_vec()).err().expect("refused");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.starts_with("n: invalid type"), "{}", err.message);
        let err = decode(br#"{"n": 7}"#.to_vec()).err().expect("refused");
        assert!(err.message.contains("name"), "{}", err.message);
    }

    proptest! {
        // Arbitrary bytes as a JSON body: decoded or refused with 400, never a panic or a server error.
        #[test]
        fn arbitrary_bodies_are_refused_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Err(e) = decode(bytes) {
                prop_assert_eq!(e.status, StatusCode::BAD_REQUEST);
                prop_assert_eq!(e.code, "invalid");
            }
        }
    }
}

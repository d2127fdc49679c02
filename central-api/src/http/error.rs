//! The one place that turns refusals into HTTP answers: a status code and a JSON body `{"code", "message"}` whose
//! message says what was wrong.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::DecodeError;

use crate::auth::AuthError;
use crate::ingest::IngestError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, code = self.code, message = %self.message, "request failed");
        } else {
            tracing::info!(status = %self.status, code = self.code, message = %self.message, "request refused");
        }
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
        }
        response
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        let (status, code) = match &e {
            DecodeError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            DecodeError::TooMany { .. } | DecodeError::DecodedTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "too_many")
            }
            DecodeError::UnsupportedVersion { .. } => (StatusCode::BAD_REQUEST, "unsupported_version"),
            DecodeError::Malformed { .. } => (StatusCode::BAD_REQUEST, "malformed"),
            DecodeError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(inner) => crate::http::api::store_error(inner),
            AuthError::BadSite { .. } => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "bad_agent_record", e.to_string())
            }
            other => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", other.to_string()),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "forbidden", m),
            IngestError::Invalid(m) => Self::new(StatusCode::BAD_REQUEST, "invalid", m),
            IngestError::Storage(inner) => crate::http::api::store_error(inner),
        }
    }
}

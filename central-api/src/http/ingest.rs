//! `POST /api/v1/ingest` and `POST /api/v1/status`: agent envelopes in bincode or JSON behind a bearer token.
//!
//! Checks, in order: the token (401), the content type (415), the body size (413, read with a hard limit of
//! `protocol::limits::MAX_ENVELOPE_BYTES` so an oversize body is never buffered whole), the decoder (400 with its
//! reason, 413 for too many punches), the agent and site (403). A batch is answered 200 with its `BatchAck` in the
//! request's encoding only after the transaction committed. Both envelopes are read in the current protocol version
//! or the previous one; a batch is answered in the version it was written in.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::limits::MAX_ENVELOPE_BYTES;
use protocol::{AgentStatus, DecodeError, Encoding, PunchBatch};

use super::error::ApiError;
use super::AppState;
use crate::auth::AuthenticatedAgent;
use crate::metrics::IngestPath;

pub async fn ingest(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let sender = authenticate(&state, &headers).await?;
    let encoding = encoding(&headers)?;
    let bytes = read_limited(&headers, body).await?;
    let read = protocol::decode_upgrading::<PunchBatch>(&bytes, encoding).inspect_err(|_| {
        state.ingest.metrics().batch_rejected(IngestPath::Http);
    })?;
    let ack = state.ingest.store_batch(&sender, &read.value, IngestPath::Http).await?;
    // Answered in the version the batch was written in, so an agent of the previous release understands it.
    let body = protocol::encode_ack(&ack, encoding, read.wire_version)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "encode_failed", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, encoding.content_type())], body).into_response())
}

pub async fn status(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<StatusCode, ApiError> {
    let sender = authenticate(&state, &headers).await?;
    let encoding = encoding(&headers)?;
    let bytes = read_limited(&headers, body).await?;
    let status: AgentStatus = protocol::decode_upgrading(&bytes, encoding)?.value;
    state.ingest.store_status(&sender, &status, IngestPath::Http).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<AuthenticatedAgent, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(crate::auth::AuthError::Missing)?;
    Ok(state.auth.verify_token(token).await?)
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let value = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    Encoding::from_content_type(value).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content type {value:?} is not supported; send {} or {}",
                Encoding::BINCODE_CONTENT_TYPE,
                Encoding::JSON_CONTENT_TYPE
            ),
        )
    })
}

async fn read_limited(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = |size: Option<usize>| {
        let what = size.map_or_else(|| "the body".to_owned(), |s| format!("{s} bytes"));
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("{what} is over the limit of {MAX_ENVELOPE_BYTES} bytes"),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    if declared.is_some_and(|len: usize| len > MAX_ENVELOPE_BYTES) {
        return Err(too_large(declared));
    }
    axum::body::to_bytes(body, MAX_ENVELOPE_BYTES).await.map_err(|e| {
        // A stream that outgrows the limit and one that breaks off both end here; only the first is the client's size.
        let is_limit = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if is_limit {
            too_large(None)
        } else {
            ApiError::from(DecodeError::Malformed { encoding: "HTTP", kind: "body", reason: e.to_string() })
        }
    })
}

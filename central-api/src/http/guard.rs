//! Input and error hygiene around every route (issue 12, finding 6):
//!
//! - a URL whose path or query holds a NUL character (`%00`) is refused with `400 invalid` before any extractor can
//!   hand it to the database (PostgreSQL refuses NUL in text and answered with its own error text);
//! - under `/api/`, every error answer is the documented `{"code", "message"}` JSON: a refusal produced outside our
//!   handlers (axum's path and query rejections, an unknown route, a method the route does not have) is rewritten
//!   into that shape with the same status, keeping headers such as `Allow` and `Retry-After`;
//! - [`nul_field`] finds the first string of a JSON body holding a NUL character, for the API's body extractor.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ApiError;

/// The longest non-JSON error body read back to become a message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// The stable code of an error status.
pub fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        s if s.is_server_error() => "unavailable",
        _ => "error",
    }
}

/// Whether the URL's path or query carries a percent-encoded NUL.
fn has_nul(uri: &axum::http::Uri) -> bool {
    let hit = |s: &str| s.as_bytes().windows(3).any(|w| w == b"%00");
    hit(uri.path()) || uri.query().is_some_and(hit)
}

/// The middleware (see the module docs).
pub async fn hygiene(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    if has_nul(request.uri()) {
        let message = "the URL contains a NUL character (%00), which no field accepts";
        return if api {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid", message).into_response()
        } else {
            (StatusCode::BAD_REQUEST, message).into_response()
        };
    }
    let response = next.run(request).await;
    let status = response.status();
    if !api || !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    let body = serde_json::json!({ "code": code_of(status), "message": message }).to_string();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The path (`a.b[2].c`) of the first string or key in `value` that holds a NUL character.
pub fn nul_field(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut String) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(key, item)| {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key.replace('\0', "\\u0000"));
                let found = key.contains('\0') || walk(item, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { "body".to_owned() } else { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_fields_are_named_by_their_path() {
        let value: Value = serde_json::from_str(r#"{"a": "ok", "b": [1, {"c": "x\u0000y"}]}"#).unwrap();
        assert_eq!(nul_field(&value).as_deref(), Some("b[1].c"));
        let value: Value = serde_json::from_str(r#"{"username": "ro\u0000ot", "password": "p"}"#).unwrap();
        assert_eq!(nul_field(&value).as_deref(), Some("username"));
        assert_eq!(nul_field(&serde_json::json!({"a": ["b"]})), None);
        assert_eq!(nul_field(&serde_json::json!("\u{0}")).as_deref(), Some("body"));
    }

    #[test]
    fn percent_encoded_nul_is_found_in_path_and_query() {
        let uri: axum::http::Uri = "/api/v1/employees/ro%00ot".parse().unwrap();
        assert!(has_nul(&uri));
        let uri: axum::http::Uri = "/api/v1/logs?pin=1%00".parse().unwrap();
        assert!(has_nul(&uri));
        let uri: axum::http::Uri = "/api/v1/logs?pin=100".parse().unwrap();
        assert!(!has_nul(&uri));
    }
}

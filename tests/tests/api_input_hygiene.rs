//! Issue 12, finding 6 (central): bad input that reached the database or broke the error contract. On both
//! backends: a NUL character in a JSON field (without a login: `POST /api/v1/login`), in a path and in a query is
//! `400 invalid` naming the field or the URL, never a 5xx with the database's text; path and query rejections, an
//! unknown route, a wrong method and a wrong content type answer the documented `{code, message}` JSON.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{AdminFixture, Auth};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(nul_bytes_and_error_shapes);

async fn json_error(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body: Value = response.json().await.unwrap_or_else(|e| panic!("{status}: not JSON ({content_type}): {e}"));
    assert!(content_type.starts_with("application/json"), "{status} {content_type}");
    (status, body["code"].as_str().unwrap_or("").to_owned(), body["message"].as_str().unwrap_or("").to_owned())
}

async fn nul_bytes_and_error_shapes(backend: Backend) {
    let f = AdminFixture::new(backend).await.expect("fixture");
    let root = f.token("root").await.unwrap();
    let cases: Vec<(Method, &str, &Auth, Option<Value>, &str)> = vec![
        (
            Method::POST,
            "/api/v1/login",
            &Auth::None,
            Some(json!({"username": "ro\u{0}ot", "password": "x"})),
            "username",
        ),
        (
            Method::POST,
            "/api/v1/sites",
            &root,
            Some(json!({"site_id": "C", "name": "N\u{0}", "time_zone": "UTC"})),
            "name",
        ),
        (Method::GET, "/api/v1/employees/ro%00ot", &root, None, "NUL"),
        (Method::GET, "/api/v1/logs?pin=1%00", &root, None, "NUL"),
    ];
    for (method, path, auth, body, named) in cases {
        let response = f.send(method.clone(), path, auth, body).await.unwrap();
        let (status, code, message) = json_error(response).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid"), "{method} {path}: {message}");
        assert!(message.contains(named), "{method} {path}: {message}");
        assert!(!message.to_lowercase().contains("utf8") && !message.contains("0x00"), "database text: {message}");
    }
    // Not the JSON shape before: a path or query that does not parse, an unknown route, a method the route lacks,
    // a body that is not JSON.
    let cases: Vec<(Method, &str, Option<&str>, StatusCode)> = vec![
        (Method::GET, "/api/v1/jobs/not-a-number", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/api/v1/logs?limit=abc", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/api/v1/no-such-thing", None, StatusCode::NOT_FOUND),
        (Method::DELETE, "/api/v1/sites", None, StatusCode::METHOD_NOT_ALLOWED),
        (Method::POST, "/api/v1/sites", Some("text/plain"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ];
    for (method, path, content_type, expected) in cases {
        let Auth::Bearer(token) = &root else { unreachable!() };
        let mut request = f.http.request(method.clone(), format!("{}{path}", f.central.url)).bearer_auth(token);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type).body("{}");
        }
        let (status, code, message) = json_error(request.send().await.unwrap()).await;
        assert_eq!(status, expected, "{method} {path}: {code} {message}");
        assert!(!code.is_empty() && !message.is_empty(), "{method} {path}");
    }
    f.cleanup().await;
}

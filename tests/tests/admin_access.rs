//! Access to the admin API: login and its rate limit, session cookie flags, CSRF refusal, token revocation, bad
//! input named by field, the body limit, and the OpenAPI document and docs page.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{AdminFixture, Auth, PASSWORD};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(login_sessions_csrf_tokens_and_rate_limit, bad_input_names_the_field, openapi_and_docs);

async fn login_sessions_csrf_tokens_and_rate_limit(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let (session, set_cookie) = f.login("viewerA", PASSWORD).await.unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    let (s, me) = f.call(Method::GET, "/api/v1/me", &session, None).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!((me["role"].as_str(), me["sites"].clone()), (Some("viewer"), json!(["A"])));

    // A change with the cookie but without the CSRF token is refused; with it, accepted.
    let Auth::Session { cookie, csrf } = session.clone() else { unreachable!() };
    assert_eq!(me["csrf_token"].as_str(), csrf.as_deref(), "pages read the CSRF token from /me");
    let no_csrf = Auth::Session { cookie: cookie.clone(), csrf: None };
    let wrong_csrf = Auth::Session { cookie: cookie.clone(), csrf: Some("0".repeat(64)) };
    for auth in [&no_csrf, &wrong_csrf] {
        let (s, body) = f.call(Method::POST, "/api/v1/tokens", auth, Some(json!({"label": "x"}))).await.unwrap();
        assert_eq!((s, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_required")), "{body}");
    }
    let (s, _) = f.call(Method::GET, "/api/v1/tokens", &no_csrf, None).await.unwrap();
    assert_eq!(s, StatusCode::OK, "reads need no CSRF token");
    let (s, issued) = f.call(Method::POST, "/api/v1/tokens", &session, Some(json!({"label": "hr"}))).await.unwrap();
    assert_eq!(s, StatusCode::CREATED);
    assert!(csrf.is_some());

    // The bearer token works until revoked.
    let bearer = Auth::Bearer(issued["token"].as_str().unwrap().to_owned());
    let id = issued["token_id"].as_str().unwrap();
    let (s, _) = f.call(Method::GET, "/api/v1/me", &bearer, None).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    let (_, tokens) = f.call(Method::GET, "/api/v1/tokens", &bearer, None).await.unwrap();
    assert_eq!(tokens[0]["label"], "hr");
    let (s, _) = f.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), &bearer, None).await.unwrap();
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = f.call(Method::GET, "/api/v1/me", &bearer, None).await.unwrap();
    assert_eq!((s, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    let forged = Auth::Bearer(format!("adm_{id}_{}", "a".repeat(64)));
    let (s, _) = f.call(Method::GET, "/api/v1/me", &forged, None).await.unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Logout ends the session.
    let (s, _) = f.call(Method::POST, "/api/v1/logout", &session, None).await.unwrap();
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = f.call(Method::GET, "/api/v1/me", &session, None).await.unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Five failures for a username from this address, then 429 even with the right password; others unaffected.
    for _ in 0..5 {
        assert!(f.login("adminA", "wrong password").await.is_err());
    }
    let response = f
        .send(Method::POST, "/api/v1/login", &Auth::None, Some(json!({"username": "adminA", "password": PASSWORD})))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");
    // Five failures also use this address's budget (issue 12: a password sprayed over usernames); another
    // username from another address is not limited.
    let response = f
        .send(Method::POST, "/api/v1/login", &Auth::None, Some(json!({"username": "root", "password": PASSWORD})))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "the address's budget is used");
    let elsewhere = reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().unwrap();
    let response = elsewhere
        .post(format!("{}/api/v1/login", f.central.url))
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "another username from another address is not limited");
    f.cleanup().await;
}

async fn bad_input_names_the_field(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let root = f.token("root").await.unwrap();
    let cases: Vec<(Method, &str, Option<Value>, &str)> = vec![
        (
            Method::POST,
            "/api/v1/sites",
            Some(json!({"site_id": "C", "name": "C", "time_zone": "Mars/Base"})),
            "time_zone",
        ),
        (Method::POST, "/api/v1/sites", Some(json!({"site_id": "C", "name": " ", "time_zone": "UTC"})), "name"),
        (Method::POST, "/api/v1/sites", Some(json!({"site_id": "C", "time_zone": "UTC"})), "name"),
        (
            Method::POST,
            "/api/v1/sites",
            Some(json!({"site_id": "C", "name": "C", "time_zone": "UTC", "colour": 1})),
            "colour",
        ),
        (
            Method::POST,
            "/api/v1/employees",
            Some(json!({"employee_id": "104", "name": "N", "site_id": "A", "date_of_joining": "2026-02-30"})),
            "date_of_joining",
        ),
        (
            Method::POST,
            "/api/v1/employees",
            Some(
                json!({"employee_id": "104", "name": "N", "site_id": "A", "date_of_joining": "2026-03-02", "date_of_leaving": "2026-03-01"}),
            ),
            "date_of_leaving",
        ),
        (
            Method::POST,
            "/api/v1/devices",
            Some(json!({"serial": "D1", "site_id": "A", "name": "G", "kind": "telex"})),
            "kind",
        ),
        (
            Method::POST,
            "/api/v1/devices",
            Some(json!({"serial": "D1", "site_id": "A", "name": "G", "kind": "adms", "direction": "UP"})),
            "direction",
        ),
        (
            Method::POST,
            "/api/v1/manual-logs",
            Some(json!({"employee_id": "101", "local_time": "2026-01-05T09:00:00", "state": "lunch", "reason": "r"})),
            "state",
        ),
        (
            Method::POST,
            "/api/v1/manual-logs",
            Some(json!({"employee_id": "101", "local_time": "2026-01-05T09:00:00", "state": "check_in", "reason": ""})),
            "reason",
        ),
        (
            Method::POST,
            "/api/v1/manual-logs",
            Some(
                json!({"employee_id": "777", "local_time": "2026-01-05T09:00:00", "state": "check_in", "reason": "r"}),
            ),
            "employee_id",
        ),
        (
            Method::POST,
            "/api/v1/leaves",
            Some(json!({"employee_id": "101", "from": "2026-01-06", "to": "2026-01-05", "kind": "CL"})),
            "to",
        ),
        (Method::POST, "/api/v1/week-off-rules", Some(json!({"code": "X", "name": "X", "spec": "funday"})), "spec"),
        (Method::GET, "/api/v1/attendance?status=Q", None, "status"),
        (Method::GET, "/api/v1/attendance?sort=name", None, "sort"),
        (Method::GET, "/api/v1/attendance?limit=0", None, "limit"),
        (Method::GET, "/api/v1/attendance?cursor=%21%21", None, "cursor"),
        (Method::GET, "/api/v1/attendance?from=2026-02-02&to=2026-02-01", None, "to"),
        (Method::GET, "/api/v1/logs?cursor=bm9wZQ", None, "cursor"),
        (Method::GET, "/api/v1/reports/muster?site=A&month=2026-13", None, "month"),
        (Method::GET, "/api/v1/reports/muster?site=A&month=2026-01&format=pdf", None, "format"),
        (Method::GET, "/api/v1/manual-logs?approval=maybe", None, "approval"),
    ];
    for (method, path, body, field) in cases {
        let (s, answer) = f.call(method.clone(), path, &root, body.clone()).await.unwrap();
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path} {body:?}: {answer}");
        assert_eq!(answer["code"], "invalid", "{path}: {answer}");
        let message = answer["message"].as_str().unwrap_or("");
        assert!(message.contains(field), "{method} {path}: {message:?} does not name {field}");
    }
    let huge = json!({"site_id": "C", "name": "x".repeat(70_000), "time_zone": "UTC"});
    let (s, answer) = f.call(Method::POST, "/api/v1/sites", &root, Some(huge)).await.unwrap();
    assert_eq!((s, answer["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large")), "{answer}");
    let (s, _) = f.call(Method::GET, "/api/v1/sites", &Auth::Bearer("adm_x_short".into()), None).await.unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(f.store.site("C").await.unwrap(), None, "nothing refused was stored");
    f.cleanup().await;
}

async fn openapi_and_docs(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let (s, doc) = f.call(Method::GET, "/api/openapi.json", &Auth::None, None).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/sites",
        "/api/v1/employees/{id}",
        "/api/v1/attendance",
        "/api/v1/logs",
        "/api/v1/unknown-pins",
        "/api/v1/reports/muster",
        "/api/v1/reports/daily",
        "/api/v1/tokens/{id}",
        "/api/v1/leaves/{id}/approve",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is not in the document");
    }
    let params: Vec<&str> = doc["paths"]["/api/v1/attendance"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for p in ["from", "to", "site", "department", "employee", "status", "sort", "cursor", "limit"] {
        assert!(params.contains(&p), "{p} missing from {params:?}");
    }
    let page = f.send(Method::GET, "/api/docs", &Auth::None, None).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/v1/reports/muster") && html.contains("<h1>"), "{html}");
    assert!(!html.contains("<script"), "the docs page needs no script");
    f.cleanup().await;
}

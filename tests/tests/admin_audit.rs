//! The audit trail of every kind of change an administrator makes through the API: who, from which address, what,
//! the site, and the values before and after; root reads it all, an admin their sites', a viewer nothing; no
//! endpoint edits it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{first, AdminFixture, Auth};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(every_change_is_audited);

async fn call(f: &AdminFixture, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> (StatusCode, Value) {
    f.call(method, path, auth, body).await.unwrap()
}

async fn ok(f: &AdminFixture, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> Value {
    let (s, answer) = call(f, method.clone(), path, auth, body).await;
    assert!(s.is_success(), "{method} {path}: {s} {answer}");
    answer
}

/// The newest entry about `resource` `id`.
async fn entry(f: &AdminFixture, root: &Auth, resource: &str, id: &str) -> Value {
    let (_, page) =
        call(f, Method::GET, &format!("/api/v1/audit?resource={resource}&resource_id={id}"), root, None).await;
    page["items"][0].clone()
}

async fn every_change_is_audited(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let root = f.token("root").await.unwrap();
    let admin = f.token("adminA").await.unwrap();
    let viewer = f.token("viewerA").await.unwrap();
    let admin_b = f.token("adminB").await.unwrap();
    let thu = first(f.month, chrono::Weekday::Thu);

    ok(
        &f,
        Method::POST,
        "/api/v1/sites",
        &root,
        Some(json!({"site_id": "C", "name": "Plant C", "time_zone": "Asia/Dubai"})),
    )
    .await;
    let e = entry(&f, &root, "site", "C").await;
    assert_eq!(
        (e["action"].as_str(), e["after"]["time_zone"].as_str(), e["before"].clone()),
        (Some("create"), Some("Asia/Dubai"), Value::Null)
    );

    ok(
        &f,
        Method::POST,
        "/api/v1/week-off-rules",
        &root,
        Some(json!({"code": "SAT", "name": "Saturdays", "spec": "sat"})),
    )
    .await;
    assert_eq!(entry(&f, &root, "week_off_rule", "SAT").await["after"]["spec"], "sat");

    let mut employee = ok(&f, Method::GET, "/api/v1/employees/101", &admin, None).await;
    employee["designation"] = json!("Supervisor");
    ok(&f, Method::PUT, "/api/v1/employees/101", &admin, Some(employee)).await;
    let e = entry(&f, &admin, "employee", "101").await;
    assert_eq!(
        (e["action"].as_str(), e["actor"].as_str(), e["role"].as_str(), e["site_id"].as_str()),
        (Some("update"), Some("adminA"), Some("admin"), Some("A"))
    );
    assert_eq!(
        (e["before"]["designation"].as_str(), e["after"]["designation"].as_str()),
        (Some("Operator"), Some("Supervisor"))
    );
    assert_eq!(e["address"], "127.0.0.1");

    let log = ok(
        &f,
        Method::POST,
        "/api/v1/manual-logs",
        &admin,
        Some(json!({"employee_id": "101",
        "local_time": format!("{thu}T09:00:00"), "state": "check_in", "reason": "forgot the card"})),
    )
    .await;
    let id = log["id"].to_string();
    assert_eq!(entry(&f, &admin, "manual_log", &id).await["after"]["reason"], "forgot the card");
    ok(&f, Method::POST, &format!("/api/v1/manual-logs/{id}/approve"), &admin, None).await;
    let e = entry(&f, &admin, "manual_log", &id).await;
    assert_eq!(
        (e["action"].as_str(), e["before"]["approval"].as_str(), e["after"]["approval"].as_str()),
        (Some("approve"), Some("pending"), Some("approved"))
    );

    let leave = ok(
        &f,
        Method::POST,
        "/api/v1/leaves",
        &admin,
        Some(json!({"employee_id": "102", "from": thu, "to": thu,
        "kind": "CL", "paid": true})),
    )
    .await;
    let id = leave["id"].to_string();
    assert_eq!(entry(&f, &admin, "leave", &id).await["after"]["kind"], "CL");
    ok(&f, Method::POST, &format!("/api/v1/leaves/{id}/reject"), &admin, None).await;
    assert_eq!(entry(&f, &admin, "leave", &id).await["after"]["approval"], "rejected");

    ok(&f, Method::POST, "/api/v1/agents", &admin, Some(json!({"agent_id": "gate-a", "site_id": "A"}))).await;
    let e = entry(&f, &admin, "agent", "gate-a").await;
    assert!(!e.to_string().contains("agt_"), "no token in the log: {e}");
    ok(&f, Method::POST, "/api/v1/agents/gate-a/revoke", &admin, None).await;
    let e = entry(&f, &admin, "agent", "gate-a").await;
    assert_eq!((e["action"].as_str(), e["after"]["revoked"].as_bool()), (Some("revoke"), Some(true)));

    ok(
        &f,
        Method::POST,
        "/api/v1/devices",
        &admin,
        Some(json!({"serial": "DEV-A2", "site_id": "A", "name": "Gate", "kind": "zk-tcp", "ip": "10.0.0.2"})),
    )
    .await;
    ok(
        &f,
        Method::PUT,
        "/api/v1/devices/DEV-A2",
        &admin,
        Some(json!({"name": "Back gate", "kind": "zk-udp", "ip": "10.0.0.2"})),
    )
    .await;
    let e = entry(&f, &admin, "device", "DEV-A2").await;
    assert_eq!(
        (e["before"]["device"]["name"].as_str(), e["after"]["device"]["name"].as_str()),
        (Some("Gate"), Some("Back gate"))
    );

    let token = ok(&f, Method::POST, "/api/v1/tokens", &admin, Some(json!({"label": "payroll"}))).await;
    let token_id = token["token_id"].as_str().unwrap().to_owned();
    let e = entry(&f, &root, "token", &token_id).await;
    assert_eq!((e["action"].as_str(), e["after"]["label"].as_str()), (Some("issue"), Some("payroll")));
    assert!(!e.to_string().contains(token["token"].as_str().unwrap()), "the token itself is never logged");
    ok(&f, Method::DELETE, &format!("/api/v1/tokens/{token_id}"), &admin, None).await;
    assert_eq!(entry(&f, &root, "token", &token_id).await["action"], "revoke");

    // Reading: root everything, A's admin only A's entries, B's admin none of A's, the viewer nothing.
    let (_, all) = call(&f, Method::GET, "/api/v1/audit?limit=1000", &root, None).await;
    let all = all["items"].as_array().unwrap().clone();
    assert!(all.len() >= 12, "{all:?}");
    let (_, mine) = call(&f, Method::GET, "/api/v1/audit?limit=1000", &admin, None).await;
    let mine = mine["items"].as_array().unwrap();
    assert!(mine.iter().all(|e| e["site_id"] == "A"), "{mine:?}");
    assert_eq!(mine.len(), all.iter().filter(|e| e["site_id"] == "A").count());
    let (_, theirs) = call(&f, Method::GET, "/api/v1/audit?limit=1000", &admin_b, None).await;
    assert!(theirs["items"].as_array().unwrap().iter().all(|e| e["site_id"] == "B"));
    let (s, _) = call(&f, Method::GET, "/api/v1/audit", &viewer, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Filters and pages: newest first, a cursor to older entries.
    let (_, page) = call(&f, Method::GET, "/api/v1/audit?limit=2&actor=adminA", &root, None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, older) =
        call(&f, Method::GET, &format!("/api/v1/audit?limit=2&actor=adminA&cursor={cursor}"), &root, None).await;
    assert!(older["items"][0]["id"].as_i64() < page["items"][1]["id"].as_i64());
    let (s, body) = call(&f, Method::GET, "/api/v1/audit?cursor=x", &root, None).await;
    assert!(s == StatusCode::BAD_REQUEST && body["message"].as_str().unwrap().starts_with("cursor"));
    // Never editable.
    let id = all[0]["id"].as_i64().unwrap();
    for method in [Method::PUT, Method::DELETE, Method::PATCH] {
        let (s, _) = call(&f, method.clone(), &format!("/api/v1/audit/{id}"), &root, Some(json!({}))).await;
        assert!(s == StatusCode::NOT_FOUND || s == StatusCode::METHOD_NOT_ALLOWED, "{method}: {s}");
    }
    f.cleanup().await;
}

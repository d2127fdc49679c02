//! The admin API's update endpoints against a real central-api: `PUT /api/v1/shifts/{code}`,
//! `PUT /api/v1/week-off-rules/{code}` (root only; the employees' days from `effective_from` are recomputed) and
//! `PUT /api/v1/devices/{serial}` (root, or admin of the device's site), with refusals naming the field.

use chrono::{Datelike, Weekday};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{first, strings, AdminFixture, Auth};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(shift_and_week_off_changes_recompute_the_days, devices_are_changed_within_their_site);

async fn call(f: &AdminFixture, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> (StatusCode, Value) {
    f.call(method, path, auth, body).await.unwrap()
}

/// The fixture's employee 101 on `day`, recomputed by our worker until `done` holds (the service's worker may be
/// the one that gets there first).
async fn day_until(f: &AdminFixture, root: &Auth, day: chrono::NaiveDate, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/v1/attendance?employee=101&from={day}&to={day}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        central_api::attendance::jobs::worker::drain(&f.store, 10_000).await.unwrap();
        let (_, page) = call(f, Method::GET, &path, root, None).await;
        let row = page["items"][0].clone();
        if done(&row) {
            return row;
        }
        assert!(std::time::Instant::now() < deadline, "the change never reached {day}: {row}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn shift_and_week_off_changes_recompute_the_days(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let root = f.token("root").await.unwrap();
    let admin = f.token("adminA").await.unwrap();
    let viewer = f.token("viewerA").await.unwrap();
    let tue = first(f.month, Weekday::Tue);
    let before = day_until(&f, &root, tue, |r| r["status"] == "P").await;
    assert_eq!(before["late_by_secs"], 20 * 60, "09:20 on a 09:00 shift: {before}");

    // GEN starts at 09:30 from the fixture's month: the 09:20 arrival is no longer late.
    let change = json!({"name": "General", "start": "09:30:00", "end": "18:00:00", "grace_early_out_mins": 5,
        "effective_from": f.month.to_string()});
    for caller in [&admin, &viewer] {
        let (s, body) = call(&f, Method::PUT, "/api/v1/shifts/GEN", caller, Some(change.clone())).await;
        assert_eq!((s, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    }
    let (s, body) = call(&f, Method::PUT, "/api/v1/shifts/NOPE", &root, Some(change.clone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    for (bad, field) in [
        (json!({"name": "General", "start": "09:30:00", "end": "09:30:00"}), "end"),
        (json!({"name": "General", "start": "09:30:00", "end": "18:00:00", "grace_late_in_mins": -5}), "grace_late_in"),
        (json!({"name": "", "start": "09:30:00", "end": "18:00:00"}), "name"),
        (json!({"name": "General", "start": "25:00:00", "end": "18:00:00"}), "start"),
        (json!({"name": "General", "start": "09:30:00", "end": "18:00:00", "pay": 1}), "pay"),
    ] {
        let (s, body) = call(&f, Method::PUT, "/api/v1/shifts/GEN", &root, Some(bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{field}: {body}");
    }
    let (_, shifts) = call(&f, Method::GET, "/api/v1/shifts", &viewer, None).await;
    let gen = shifts.as_array().unwrap().iter().find(|s| s["code"] == "GEN").unwrap().clone();
    assert_eq!(gen["start"], "09:00:00", "refused changes changed nothing");
    let (s, body) = call(&f, Method::PUT, "/api/v1/shifts/GEN", &root, Some(change)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!((body["start"].as_str(), body["grace_early_out_mins"].as_i64()), (Some("09:30:00"), Some(5)));
    let (_, shifts) = call(&f, Method::GET, "/api/v1/shifts", &viewer, None).await;
    let gen = shifts.as_array().unwrap().iter().find(|s| s["code"] == "GEN").unwrap().clone();
    assert_eq!((gen["start"].as_str(), gen["grace_early_out_mins"].as_i64()), (Some("09:30:00"), Some(5)));
    let after = day_until(&f, &root, tue, |r| r["late_by_secs"] == 0).await;
    assert_eq!(after["status"], "P", "{after}");

    // Saturdays become week-offs too.
    let sat = first(f.month, Weekday::Sat);
    assert_eq!(sat.weekday(), Weekday::Sat);
    let before = day_until(&f, &root, sat, |r| r["status"].is_string()).await;
    assert_eq!(before["status"], "A", "{before}");
    let rule = json!({"name": "Weekends", "spec": "sun,sat", "effective_from": f.month.to_string()});
    let (s, _) = call(&f, Method::PUT, "/api/v1/week-off-rules/SUN", &admin, Some(rule.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = call(
        &f,
        Method::PUT,
        "/api/v1/week-off-rules/SUN",
        &root,
        Some(json!({"name": "Weekends", "spec": "sun,someday"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("spec"), "{body}");
    let (s, _) = call(&f, Method::PUT, "/api/v1/week-off-rules/NOPE", &root, Some(rule.clone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = call(&f, Method::PUT, "/api/v1/week-off-rules/SUN", &root, Some(rule)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let after = day_until(&f, &root, sat, |r| r["status"] == "WO").await;
    assert_eq!(after["day_kind"], "week_off", "{after}");
    let (_, rules) = call(&f, Method::GET, "/api/v1/week-off-rules", &viewer, None).await;
    assert_eq!(strings(&rules, "name"), ["Weekends"]);

    // The OpenAPI document describes the new operations.
    let (_, doc) = call(&f, Method::GET, "/api/openapi.json", &Auth::None, None).await;
    for path in ["/api/v1/shifts/{code}", "/api/v1/week-off-rules/{code}", "/api/v1/devices/{serial}"] {
        assert!(doc["paths"][path]["put"].is_object(), "{path} is documented");
    }
    f.cleanup().await;
}

async fn devices_are_changed_within_their_site(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let root = f.token("root").await.unwrap();
    let admin = f.token("adminA").await.unwrap();
    let admin_b = f.token("adminB").await.unwrap();
    let viewer = f.token("viewerA").await.unwrap();
    let device = json!({"serial": "DEV-A9", "site_id": "A", "name": "Gate", "kind": "zk-tcp", "ip": "10.1.2.3"});
    let (s, body) = call(&f, Method::POST, "/api/v1/devices", &admin, Some(device)).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    let change = json!({"name": "Main gate", "model": "K40", "ip": "10.1.2.3", "port": 4370, "kind": "zk-udp",
        "time_zone": "Asia/Dubai", "direction": "IN", "status": "inactive"});
    let (s, _) = call(&f, Method::PUT, "/api/v1/devices/DEV-A9", &viewer, Some(change.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&f, Method::PUT, "/api/v1/devices/DEV-A9", &admin_b, Some(change.clone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "admin of B does not see A's device");
    let (s, _) = call(&f, Method::PUT, "/api/v1/devices/DEV-NONE", &root, Some(change.clone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for (field, value) in [
        ("kind", json!("telnet")),
        ("direction", json!("SIDEWAYS")),
        ("time_zone", json!("Mars/Olympus")),
        ("status", json!("gone")),
        ("ip", json!("10.1.2")),
        ("port", json!(70000)),
        ("name", json!(" ")),
    ] {
        let mut bad = change.clone();
        bad[field] = value;
        let (s, body) = call(&f, Method::PUT, "/api/v1/devices/DEV-A9", &admin, Some(bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{field}: {body}");
    }
    // The list also holds devices first seen in punches (unconfirmed); this test's device is DEV-A9.
    let a9 = |devices: &Value| devices.as_array().unwrap().iter().find(|d| d["serial"] == "DEV-A9").unwrap().clone();
    let (_, devices) = call(&f, Method::GET, "/api/v1/devices", &viewer, None).await;
    let device = a9(&devices);
    assert_eq!((device["name"].as_str(), device["kind"].as_str()), (Some("Gate"), Some("zk-tcp")));

    let (s, body) = call(&f, Method::PUT, "/api/v1/devices/DEV-A9", &admin, Some(change)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let (_, devices) = call(&f, Method::GET, "/api/v1/devices", &viewer, None).await;
    let device = a9(&devices);
    assert_eq!(device["name"], "Main gate");
    assert_eq!(device["kind"], "zk-udp");
    assert_eq!(device["time_zone"], "Asia/Dubai");
    assert_eq!(device["direction"], "IN");
    assert_eq!(device["site_id"], "A", "the site does not change");
    let stored = f.store.device("DEV-A9").await.unwrap().unwrap();
    assert_eq!((stored.status.as_str(), stored.device.ip.as_deref()), ("inactive", Some("10.1.2.3")));
    assert_eq!(stored.device.port, Some(4370));

    // Left out: the site's zone, BOTH, active.
    let (s, _) =
        call(&f, Method::PUT, "/api/v1/devices/DEV-A9", &root, Some(json!({"name": "Gate 2", "kind": "adms"}))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let stored = f.store.device("DEV-A9").await.unwrap().unwrap();
    assert_eq!(stored.device.time_zone, "Asia/Kolkata");
    assert_eq!((stored.device.direction.as_str(), stored.status.as_str()), ("BOTH", "active"));
    assert_eq!(stored.device.ip, None);
    f.cleanup().await;
}

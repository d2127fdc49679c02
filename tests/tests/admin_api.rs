//! The admin JSON API against a real central-api: role and site scope on every resource, manual-log approval
//! reaching the computed day, agent tokens issued and revoked.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{first, strings, AdminFixture, Auth};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(
    viewer_of_a_sees_only_a_and_changes_nothing,
    admin_of_a_manages_a_only,
    manual_log_approval_recomputes_the_day,
    attendance_filters_sorts_and_pages
);

async fn get(f: &AdminFixture, path: &str, auth: &Auth) -> (StatusCode, Value) {
    f.call(Method::GET, path, auth, None).await.unwrap()
}

async fn post(f: &AdminFixture, path: &str, auth: &Auth, body: Value) -> (StatusCode, Value) {
    f.call(Method::POST, path, auth, Some(body)).await.unwrap()
}

async fn viewer_of_a_sees_only_a_and_changes_nothing(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let viewer = f.token("viewerA").await.unwrap();
    let root = f.token("root").await.unwrap();

    let (s, sites) = get(&f, "/api/v1/sites", &viewer).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(strings(&sites, "site_id"), ["A"]);
    let (_, sites) = get(&f, "/api/v1/sites", &root).await;
    assert_eq!(strings(&sites, "site_id"), ["A", "B"]);

    let (_, employees) = get(&f, "/api/v1/employees", &viewer).await;
    assert_eq!(strings(&employees, "employee_id"), ["101", "102"]);
    for path in [
        "/api/v1/employees/201",
        "/api/v1/employees?site=B",
        "/api/v1/devices?site=B",
        "/api/v1/agents?site=B",
        "/api/v1/attendance?site=B",
        "/api/v1/logs?site=B",
        "/api/v1/manual-logs?site=B",
        "/api/v1/leaves?site=B",
    ] {
        let (s, body) = get(&f, path, &viewer).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "not_found", "{path}");
    }
    let (s, page) = get(&f, "/api/v1/attendance?limit=1000", &viewer).await;
    assert_eq!(s, StatusCode::OK);
    let ids = strings(&page["items"], "employee_id");
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|e| e == "101" || e == "102"), "{ids:?}");
    let (_, page) = get(&f, "/api/v1/attendance?limit=1000", &root).await;
    assert!(strings(&page["items"], "employee_id").contains(&"201".to_owned()));
    let (_, logs) = get(&f, "/api/v1/logs", &viewer).await;
    assert_eq!(strings(&logs["items"], "site_id").iter().filter(|s| *s == "A").count(), 6);
    assert!(strings(&logs["items"], "site_id").iter().all(|s| s == "A"));
    let (_, pins) = get(&f, "/api/v1/unknown-pins", &viewer).await;
    assert_eq!(strings(&pins, "pin"), ["999"]);
    let (_, pins) = get(&f, "/api/v1/unknown-pins", &root).await;
    assert_eq!(strings(&pins, "pin"), ["999", "998"]);
    let (_, holidays) = get(&f, "/api/v1/holidays", &viewer).await;
    assert_eq!(strings(&holidays, "site_id"), ["A"]);

    // The viewer changes nothing, at A or anywhere.
    let employee = json!({"employee_id": "103", "name": "New", "site_id": "A"});
    let changes = [
        ("/api/v1/employees", employee.clone()),
        ("/api/v1/agents", json!({"agent_id": "gate-9", "site_id": "A"})),
        (
            "/api/v1/devices",
            json!({"serial": "DEV-9", "site_id": "A", "name": "Gate", "kind": "zk-tcp", "ip": "10.0.0.9"}),
        ),
        ("/api/v1/holidays", json!({"date": "2026-01-26", "name": "R", "kind": "public", "site_id": "A"})),
        (
            "/api/v1/manual-logs",
            json!({"employee_id": "101", "local_time": "2026-01-05T09:00:00", "state": "check_in", "reason": "forgot"}),
        ),
        ("/api/v1/leaves", json!({"employee_id": "101", "from": "2026-01-05", "to": "2026-01-06", "kind": "CL"})),
        ("/api/v1/sites", json!({"site_id": "C", "name": "C", "time_zone": "Asia/Kolkata"})),
        ("/api/v1/week-off-rules", json!({"code": "SAT", "name": "Saturdays", "spec": "sat"})),
    ];
    for (path, body) in changes {
        let (s, answer) = post(&f, path, &viewer, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(answer["code"], "forbidden");
    }
    let (s, _) = f
        .call(
            Method::PUT,
            "/api/v1/employees/101",
            &viewer,
            Some(json!({"employee_id": "101", "name": "X", "site_id": "A"})),
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(f.store.employee_profile("103").await.unwrap(), None, "nothing was created");
    let (s, _) =
        post(&f, "/api/v1/employees", &viewer, json!({"employee_id": "203", "name": "New", "site_id": "B"})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(&f, "/api/v1/sites", &Auth::None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    f.cleanup().await;
}

async fn admin_of_a_manages_a_only(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let admin = f.token("adminA").await.unwrap();
    let admin_b = f.token("adminB").await.unwrap();
    let root = f.token("root").await.unwrap();

    let (s, body) = post(
        &f,
        "/api/v1/employees",
        &admin,
        json!({"employee_id": "103", "name": "New", "department": "Packing", "site_id": "A", "shift_code": "GEN"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = get(&f, "/api/v1/employees/103", &admin).await;
    assert_eq!((s, body["department"].as_str()), (StatusCode::OK, Some("Packing")));
    let (s, _) = get(&f, "/api/v1/employees/103", &admin_b).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "admin of B does not see A's employee");
    for (path, body) in [
        ("/api/v1/employees", json!({"employee_id": "203", "name": "New", "site_id": "B"})),
        ("/api/v1/agents", json!({"agent_id": "gate-b", "site_id": "B"})),
        (
            "/api/v1/devices",
            json!({"serial": "DEV-B9", "site_id": "B", "name": "Gate", "kind": "zk-tcp", "ip": "10.0.0.9"}),
        ),
        ("/api/v1/holidays", json!({"date": "2026-01-26", "name": "R", "kind": "public", "site_id": "B"})),
        (
            "/api/v1/manual-logs",
            json!({"employee_id": "201", "local_time": "2026-01-05T09:00:00", "state": "check_in", "reason": "x"}),
        ),
    ] {
        let (s, answer) = post(&f, path, &admin, body).await;
        assert!(s == StatusCode::NOT_FOUND || s == StatusCode::BAD_REQUEST, "{path}: {s} {answer}");
    }
    // Moving an employee of A to B is a change at B.
    let (s, _) = f
        .call(
            Method::PUT,
            "/api/v1/employees/101",
            &admin,
            Some(json!({"employee_id": "101", "name": "X", "site_id": "B"})),
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Global settings are root's.
    let (s, _) =
        post(&f, "/api/v1/sites", &admin, json!({"site_id": "C", "name": "C", "time_zone": "Asia/Kolkata"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) =
        post(&f, "/api/v1/holidays", &admin, json!({"date": "2026-01-26", "name": "R", "kind": "public"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = post(
        &f,
        "/api/v1/holidays",
        &admin,
        json!({"date": "2026-01-27", "name": "Local", "kind": "company", "site_id": "A"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().unwrap();
    // A holiday is keyed by (site, date, name): the same one again is a conflict; the same name on another date is not.
    let (s, body) = post(
        &f,
        "/api/v1/holidays",
        &admin,
        json!({"date": "2026-01-27", "name": "Local", "kind": "public", "site_id": "A"}),
    )
    .await;
    assert_eq!((s, body["code"].as_str()), (StatusCode::CONFLICT, Some("already_exists")), "{body}");
    let (s, body) = post(
        &f,
        "/api/v1/holidays",
        &admin,
        json!({"date": "2026-01-28", "name": "Local", "kind": "company", "site_id": "A"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, _) = f.call(Method::DELETE, &format!("/api/v1/holidays/{id}"), &admin_b, None).await.unwrap();
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = f.call(Method::DELETE, &format!("/api/v1/holidays/{id}"), &admin, None).await.unwrap();
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) =
        post(&f, "/api/v1/sites", &root, json!({"site_id": "C", "name": "C", "time_zone": "Asia/Kolkata"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) =
        post(&f, "/api/v1/week-off-rules", &root, json!({"code": "SAT", "name": "Saturdays", "spec": "sat"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, rules) = get(&f, "/api/v1/week-off-rules", &admin).await;
    assert!(strings(&rules, "code").contains(&"SAT".to_owned()));
    let shift =
        json!({"code": "EARLY", "name": "Early", "start": "06:00:00", "end": "14:00:00", "grace_late_in_mins": 10});
    let (s, _) = post(&f, "/api/v1/shifts", &admin, shift.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = post(
        &f,
        "/api/v1/shifts",
        &root,
        json!({"code": "BAD", "name": "Bad", "start": "06:00:00", "end": "14:00:00", "grace_late_in_mins": 5000}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("grace_late_in_mins"), "{body}");
    let (s, body) = post(&f, "/api/v1/shifts", &root, shift).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (_, shifts) = get(&f, "/api/v1/shifts", &admin).await;
    assert_eq!(strings(&shifts, "code"), ["EARLY", "GEN", "MD", "NIGHT"]);

    // Devices.
    let (s, body) = post(
        &f,
        "/api/v1/devices",
        &admin,
        json!({"serial": "DEV-A9", "site_id": "A", "name": "Gate", "kind": "zk-tcp", "ip": "10.0.0.9"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (_, devices) = get(&f, "/api/v1/devices", &admin).await;
    // DEV-A was registered (unconfirmed) by the fixture's punches.
    assert_eq!(strings(&devices, "serial"), ["DEV-A", "DEV-A9"]);
    assert_eq!((&devices[0]["confirmed"], &devices[1]["confirmed"]), (&json!(false), &json!(true)));
    assert_eq!(devices[1]["time_zone"], "Asia/Kolkata", "the site's zone by default");
    let (_, devices) = get(&f, "/api/v1/devices", &admin_b).await;
    assert_eq!(strings(&devices, "serial"), ["DEV-B"], "B's own device only");

    // Agent tokens: issued to the admin of the site, they work for ingest until revoked.
    let (s, agent) = post(&f, "/api/v1/agents", &admin, json!({"agent_id": "gate-a", "site_id": "A"})).await;
    assert_eq!(s, StatusCode::CREATED, "{agent}");
    let token = agent["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("agt_gate-a_"));
    let (_, keys) = protocol::AgentKeys::from_token(&token).unwrap();
    assert_eq!(agent["broker_username"], "gate-a", "{agent}");
    assert_eq!(agent["broker_password"].as_str(), Some(keys.broker_password()), "the login the agent derives");
    let punches = system_tests::central::punches("A", "DEV-A9", &["101"], system_tests::central::day_at(8), 2);
    let batch = system_tests::central::batch("gate-a", "A", 1, punches);
    let sent = f.central.post_batch(&f.http, &token, &batch, protocol::Encoding::Json).await.unwrap();
    assert_eq!(sent.status(), StatusCode::OK, "the issued token ingests");
    let (_, agents) = get(&f, "/api/v1/agents", &admin).await;
    assert_eq!(strings(&agents, "agent_id"), ["gate-a"]);
    assert!(agents[0]["revoked_at"].is_null());
    let (s, _) = post(&f, "/api/v1/agents/gate-a/revoke", &admin_b, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "admin of B cannot revoke A's agent");
    let (s, _) = post(&f, "/api/v1/agents/gate-a/revoke", &admin, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, agents) = get(&f, "/api/v1/agents", &admin).await;
    assert!(agents[0]["revoked_at"].is_string());
    assert!(f.store.agent("gate-a").await.unwrap().unwrap().revoked);
    let refused = f.central.post_batch(&f.http, &token, &batch, protocol::Encoding::Json).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "the revoked token does not");
    f.cleanup().await;
}

async fn manual_log_approval_recomputes_the_day(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let admin = f.token("adminA").await.unwrap();
    let viewer = f.token("viewerA").await.unwrap();
    let thu = first(f.month, chrono::Weekday::Thu);
    let day_path = format!("/api/v1/attendance?employee=101&from={thu}&to={thu}");
    let (_, before) = get(&f, &day_path, &viewer).await;
    assert!(before["items"][0]["in_time"].is_null(), "{before}");

    let (s, created) = post(
        &f,
        "/api/v1/manual-logs",
        &admin,
        json!({"employee_id": "101",
        "local_time": format!("{thu}T09:00:00"), "state": "check_in", "reason": "forgot to punch"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (_, pending) = get(&f, "/api/v1/manual-logs?approval=pending", &viewer).await;
    assert_eq!(pending[0]["employee_id"], "101");
    assert_eq!(pending[0]["requested_by"], "adminA");
    let (s, _) = post(&f, &format!("/api/v1/manual-logs/{id}/approve"), &viewer, json!({})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = post(&f, &format!("/api/v1/manual-logs/{id}/approve"), &admin, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, again) = post(&f, &format!("/api/v1/manual-logs/{id}/reject"), &admin, json!({})).await;
    assert_eq!((s, again["code"].as_str()), (StatusCode::CONFLICT, Some("already_decided")));

    // The approval marked the day; the worker (ours or the service's) recomputes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        f.settle().await.unwrap();
        let (_, after) = get(&f, &day_path, &viewer).await;
        if after["items"][0]["in_time"].as_str() == Some(&format!("{thu}T09:00:00")) {
            assert_eq!(after["items"][0]["status"], "P", "{after}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the approved manual log never reached the day: {after}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // B's requests are out of reach for A's administrators, and the other way round.
    let root = f.token("root").await.unwrap();
    let admin_b = f.token("adminB").await.unwrap();
    let (s, b_log) = post(
        &f,
        "/api/v1/manual-logs",
        &root,
        json!({"employee_id": "201", "local_time": format!("{thu}T09:00:00"), "state": "check_in", "reason": "r"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let b_id = b_log["id"].as_i64().unwrap();
    let (s, _) = post(&f, &format!("/api/v1/manual-logs/{b_id}/reject"), &admin, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = post(&f, &format!("/api/v1/manual-logs/{id}/reject"), &admin_b, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, listed) = get(&f, "/api/v1/manual-logs", &viewer).await;
    assert_eq!(strings(&listed, "employee_id"), ["101"], "the viewer of A does not see B's request");
    let (s, _) = post(&f, &format!("/api/v1/manual-logs/{b_id}/reject"), &admin_b, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // A manual log is keyed by (employee, local time, state): asking again for an approved one is a conflict, and
    // asking again for a rejected one makes that same request pending again with the new reason.
    let again = |employee: &str, reason: &str| json!({"employee_id": employee, "local_time": format!("{thu}T09:00:00"), "state": "check_in", "reason": reason});
    let (s, body) = post(&f, "/api/v1/manual-logs", &admin, again("101", "twice")).await;
    assert_eq!((s, body["code"].as_str()), (StatusCode::CONFLICT, Some("already_exists")), "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("manual log"), "{body}");
    let (s, body) = post(&f, "/api/v1/manual-logs", &admin_b, again("201", "badge was broken")).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"].as_i64(), Some(b_id), "the rejected request is asked again, not duplicated");
    let (_, listed) = get(&f, "/api/v1/manual-logs", &admin_b).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(
        (listed[0]["approval"].as_str(), listed[0]["reason"].as_str()),
        (Some("pending"), Some("badge was broken"))
    );
    assert!(listed[0]["decided_by"].is_null(), "{listed}");
    let (s, _) = post(&f, "/api/v1/manual-logs", &admin_b, again("201", "and again")).await;
    assert_eq!(s, StatusCode::CONFLICT, "a pending request is not asked twice");

    // Leave: requested, listed, approved.
    let (s, leave) = post(
        &f,
        "/api/v1/leaves",
        &admin,
        json!({"employee_id": "102", "from": thu.to_string(), "to": thu.to_string(), "kind": "CL", "paid": true}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{leave}");
    let lid = leave["id"].as_i64().unwrap();
    let (s, _) = post(&f, &format!("/api/v1/leaves/{lid}/approve"), &admin, json!({})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, leaves) = get(&f, "/api/v1/leaves?approval=approved", &viewer).await;
    assert_eq!(strings(&leaves, "employee_id"), ["102"]);
    let (s, _) = post(&f, &format!("/api/v1/leaves/{lid}/reject"), &admin_b, json!({})).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "admin of B cannot decide A's leave");
    let (_, leaves) = get(&f, "/api/v1/leaves", &admin_b).await;
    assert!(strings(&leaves, "employee_id").is_empty());
    f.cleanup().await;
}

/// Every page of `path` (which has no cursor yet), following `next_cursor`.
async fn all_pages(f: &AdminFixture, path: &str, auth: &Auth) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            None => path.to_owned(),
            Some(c) => format!("{path}&cursor={c}"),
        };
        let (s, page) = get(f, &url, auth).await;
        assert_eq!(s, StatusCode::OK, "{url}: {page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

fn keys(rows: &[Value]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| (r["work_date"].as_str().unwrap().to_owned(), r["employee_id"].as_str().unwrap().to_owned()))
        .collect()
}

async fn attendance_filters_sorts_and_pages(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let root = f.token("root").await.unwrap();
    // The fixture's month only: the service's worker may still be computing the current days.
    let last = first(f.month, chrono::Weekday::Mon) + chrono::Duration::days(20);
    let range = format!("from={}&to={last}", f.month);
    let all = all_pages(&f, &format!("/api/v1/attendance?limit=1000&{range}"), &root).await;
    let mut expected = keys(&all);
    assert_eq!(expected.len(), 3 * usize::try_from((last - f.month).num_days() + 1).unwrap(), "three employees");
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(expected, sorted, "by date, then employee");
    // Small pages give the same rows in the same order, in every sort.
    assert_eq!(keys(&all_pages(&f, &format!("/api/v1/attendance?limit=7&{range}"), &root).await), expected);
    expected.reverse();
    assert_eq!(keys(&all_pages(&f, &format!("/api/v1/attendance?limit=5&sort=-date&{range}"), &root).await), expected);
    let mut by_employee = expected.clone();
    by_employee.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    assert_eq!(
        keys(&all_pages(&f, &format!("/api/v1/attendance?limit=9&sort=employee&{range}"), &root).await),
        by_employee
    );
    by_employee.reverse();
    assert_eq!(
        keys(&all_pages(&f, &format!("/api/v1/attendance?limit=9&sort=-employee&{range}"), &root).await),
        by_employee
    );

    // Filters.
    let thu = first(f.month, chrono::Weekday::Thu);
    let week_offs = all_pages(&f, "/api/v1/attendance?status=WO&site=A&limit=1000", &root).await;
    assert!(!week_offs.is_empty());
    assert!(week_offs.iter().all(|r| r["status"] == "WO" && r["site_id"] == "A"));
    let packing = all_pages(&f, "/api/v1/attendance?department=Packing&limit=1000", &root).await;
    assert!(!packing.is_empty() && packing.iter().all(|r| r["employee_id"] == "102"));
    let one_day = all_pages(&f, &format!("/api/v1/attendance?from={thu}&to={thu}&employee=101"), &root).await;
    assert_eq!(keys(&one_day), [(thu.to_string(), "101".to_owned())]);

    // Raw logs page by id.
    let logs = all_pages(&f, "/api/v1/logs?limit=2", &root).await;
    assert_eq!(logs.len(), 8);
    let ids: Vec<i64> = logs.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let pin = all_pages(&f, "/api/v1/logs?pin=999", &root).await;
    assert_eq!(pin.len(), 1);
    f.cleanup().await;
}

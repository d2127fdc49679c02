//! The fleet inventory, the history of status changes and alert rules through the real central-api, on SQLite and
//! PostgreSQL: statuses posted as an agent does, read back per site and role (another site's admin sees nothing, a
//! viewer reads but cannot change); an alert raised and cleared notified by a signed webhook to an HTTP server the
//! test runs and by e-mail to aiosmtpd, a refused webhook retried, and the rule's rate limit.

use std::time::Duration;

use chrono::Utc;
use protocol::{AgentStatus, DeviceInfo, DeviceStatus, Encoding, Fault, PROTOCOL_VERSION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{strings, AdminFixture, Auth};
use system_tests::alert_sinks::{signature_ok, SmtpSink, WebhookSink};
use system_tests::central::Backend;
use system_tests::on_both_backends;
use system_tests::web_client::Web;

on_both_backends!(inventory_and_history_by_site_and_role, alerts_by_webhook_and_email, pages_and_live_status_events);

const WAIT: Duration = Duration::from_secs(20);

async fn call(f: &AdminFixture, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> (StatusCode, Value) {
    f.call(method, path, auth, body).await.unwrap()
}

/// Registers an agent through the API and returns its token.
async fn agent(f: &AdminFixture, root: &Auth, id: &str, site: &str) -> String {
    let (s, body) = call(f, Method::POST, "/api/v1/agents", root, Some(json!({"agent_id": id, "site_id": site}))).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

fn device(serial: &str, reachable: bool) -> DeviceStatus {
    let since = Utc::now() - chrono::Duration::seconds(30);
    DeviceStatus {
        kind: "zk-tcp".into(),
        reachable,
        last_success: Some(since),
        faults: if reachable {
            vec![]
        } else {
            vec![Fault { code: "device_unreachable".into(), message: "connection refused".into(), since }]
        },
        ..DeviceStatus::new(serial.parse().unwrap())
    }
}

fn status(agent: &str, site: &str, devices: Vec<DeviceStatus>) -> AgentStatus {
    AgentStatus {
        version: PROTOCOL_VERSION,
        agent: agent.parse().unwrap(),
        site: site.parse().unwrap(),
        sent_at: Utc::now(),
        agent_version: "9.8.7".into(),
        uptime_secs: 3600,
        buffer_depth: 12,
        oldest_unacked_age_secs: Some(4),
        devices,
        faults: vec![],
        command_results: vec![],
        hostname: format!("{agent}-pc"),
        dead_letters: 2,
        config_version: Some(7),
    }
}

/// Posts a status as the agent does (JSON over HTTP with its token).
async fn post_status(f: &AdminFixture, token: &str, status: &AgentStatus) {
    let body = protocol::encode(status, Encoding::Json).unwrap();
    let response =
        f.central.post_raw(&f.http, "/api/v1/status", Some(token), Encoding::Json.content_type(), body).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

async fn inventory_and_history_by_site_and_role(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let root = f.token("root").await.unwrap();
    let (admin_a, viewer_a, admin_b) =
        (f.token("adminA").await.unwrap(), f.token("viewerA").await.unwrap(), f.token("adminB").await.unwrap());
    let token_a = agent(&f, &root, "gate-A", "A").await;
    let token_b = agent(&f, &root, "gate-B", "B").await;
    let (s, _) = call(
        &f,
        Method::POST,
        "/api/v1/devices",
        &root,
        Some(json!({"serial": "DEV-A1", "site_id": "A", "name": "Main gate", "kind": "zk-tcp", "ip": "10.0.1.1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    let mut known = device("DEV-A1", true);
    known.record_count = Some(1500);
    known.user_count = Some(40);
    known.clock_drift_secs = Some(-3);
    known.info = Some(DeviceInfo {
        model: Some("K40".into()),
        firmware: Some("Ver 6.60".into()),
        platform: Some("ZMM220_TFT".into()),
        reported_serial: Some("DEV-A1".into()),
        user_capacity: Some(1000),
        fingerprint_count: Some(80),
        fingerprint_capacity: Some(2000),
        record_capacity: Some(100_000),
        ..DeviceInfo::default()
    });
    post_status(&f, &token_a, &status("gate-A", "A", vec![known.clone(), device("X-9", false)])).await;
    post_status(&f, &token_b, &status("gate-B", "B", vec![device("DEV-B1", true)])).await;
    // DEV-A1 stops answering; X-9 comes back.
    let mut down = device("DEV-A1", false);
    down.info = known.info.clone();
    post_status(&f, &token_a, &status("gate-A", "A", vec![down, device("X-9", true)])).await;

    // Agents: every inventory field, each caller only its sites.
    for auth in [&admin_a, &viewer_a] {
        let (s, agents) = call(&f, Method::GET, "/api/v1/inventory/agents", auth, None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(strings(&agents, "agent_id"), vec!["gate-A"]);
        let a = &agents[0];
        assert_eq!(
            (&a["version"], &a["hostname"], &a["uptime_secs"], &a["config_version"]),
            (&json!("9.8.7"), &json!("gate-A-pc"), &json!(3600), &json!(7))
        );
        assert_eq!((&a["buffer_depth"], &a["dead_letters"]), (&json!(12), &json!(2)));
        assert!(a["last_seen"].is_string());
    }
    let (_, agents) = call(&f, Method::GET, "/api/v1/inventory/agents", &admin_b, None).await;
    assert_eq!(strings(&agents, "agent_id"), vec!["gate-B"]);
    let (_, agents) = call(&f, Method::GET, "/api/v1/inventory/agents", &root, None).await;
    assert_eq!(strings(&agents, "agent_id"), vec!["gate-A", "gate-B"]);
    for path in ["/api/v1/inventory/agents?site=A", "/api/v1/inventory/devices?site=A", "/api/v1/status-history?site=A"]
    {
        let (s, body) = call(&f, Method::GET, path, &admin_b, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {body}");
    }

    // Devices: registered and only reported ones, identity and counts against capacities.
    let (_, devices) = call(&f, Method::GET, "/api/v1/inventory/devices", &viewer_a, None).await;
    // DEV-A is the fixture's punching device, registered (unconfirmed) when its punches first arrived.
    assert_eq!(strings(&devices, "serial"), vec!["DEV-A", "DEV-A1", "X-9"]);
    let d = &devices[1];
    assert_eq!((&d["registered"], &d["name"], &d["kind"]), (&json!(true), &json!("Main gate"), &json!("zk-tcp")));
    assert_eq!(
        (&d["model"], &d["firmware"], &d["platform"]),
        (&json!("K40"), &json!("Ver 6.60"), &json!("ZMM220_TFT"))
    );
    assert_eq!(d["reachable"], json!(false));
    assert_eq!(d["faults"][0]["code"], "device_unreachable");
    assert_eq!(d["fingerprints"], json!({"count": 80, "capacity": 2000}));
    assert_eq!(d["users"]["capacity"], 1000);
    assert_eq!(d["records"]["capacity"], 100_000);
    assert!(d["last_success"].is_string() && d["reachable_since"].is_string());
    // X-9, only reported in a status, was registered (unconfirmed) at the agent's site when first seen.
    assert_eq!((&devices[2]["registered"], &devices[2]["reachable"]), (&json!(true), &json!(true)));
    let (_, devices) = call(&f, Method::GET, "/api/v1/inventory/devices", &admin_b, None).await;
    assert_eq!(strings(&devices, "serial"), vec!["DEV-B", "DEV-B1"], "B's fixture device and its own");

    // History: DEV-A1 was first reachable, then unreachable with its fault; newest first.
    let (s, history) = call(&f, Method::GET, "/api/v1/status-history?device=DEV-A1", &viewer_a, None).await;
    assert_eq!(s, StatusCode::OK);
    let changes: Vec<(String, Option<String>)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["change"].as_str().unwrap().to_owned(), c["code"].as_str().map(str::to_owned)))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("fault_raised".into(), Some("device_unreachable".into())),
            ("unreachable".into(), None),
            ("reachable".into(), None),
        ]
    );
    let (_, x9) = call(&f, Method::GET, "/api/v1/status-history?device=X-9", &admin_a, None).await;
    assert_eq!(strings(&x9, "change"), vec!["fault_cleared", "reachable", "fault_raised", "unreachable"]);
    // Paging by id, and another site's admin sees none of it.
    let newest = history[0]["id"].as_i64().unwrap();
    let (_, older) =
        call(&f, Method::GET, &format!("/api/v1/status-history?device=DEV-A1&before={newest}&limit=1"), &admin_a, None)
            .await;
    assert_eq!(strings(&older, "change"), vec!["unreachable"]);
    let (_, none) = call(&f, Method::GET, "/api/v1/status-history?device=DEV-A1", &admin_b, None).await;
    assert_eq!(none, json!([]));
    let (_, theirs) = call(&f, Method::GET, "/api/v1/status-history", &admin_b, None).await;
    assert_eq!(strings(&theirs, "agent_id"), vec!["gate-B"]);
    let (s, _) = call(&f, Method::GET, "/api/v1/status-history?limit=0", &admin_a, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    f.cleanup().await;
}

fn events_of(list: &Value) -> Vec<(String, bool)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"].as_str().unwrap().to_owned(), e["suppressed"].as_bool().unwrap()))
        .collect()
}

async fn alerts_by_webhook_and_email(backend: Backend) {
    let hooks = WebhookSink::start().await.unwrap();
    let smtp = SmtpSink::start().await.unwrap();
    let mut env = smtp.central_env();
    env.push(("CENTRAL_API_ALERTS__INTERVAL_MS".into(), "200".into()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let f = AdminFixture::new_with_env(backend, &env_refs).await.unwrap();
    let root = f.token("root").await.unwrap();
    let (admin_a, viewer_a, admin_b) =
        (f.token("adminA").await.unwrap(), f.token("viewerA").await.unwrap(), f.token("adminB").await.unwrap());
    let token_a = agent(&f, &root, "gate-A", "A").await;
    post_status(&f, &token_a, &status("gate-A", "A", vec![device("DEV-A1", true)])).await;

    // Bad rules are refused naming the field; only root and the site's admin create one.
    let hook = hooks.url();
    for (body, field) in [
        (json!({"site_id": "A", "kind": "volcano", "webhook_url": hook}), "kind"),
        (json!({"site_id": "A", "kind": "clock_drift", "webhook_url": hook}), "threshold"),
        (json!({"site_id": "A", "kind": "device_unreachable", "webhook_url": "gopher://x"}), "webhook_url"),
        (json!({"site_id": "A", "kind": "device_unreachable", "email_to": ["nobody"]}), "email_to"),
        (json!({"site_id": "A", "kind": "device_unreachable"}), "webhook_url"),
        (json!({"site_id": "A", "kind": "device_unreachable", "webhook_url": hook, "colour": 1}), "colour"),
    ] {
        let (s, err) = call(&f, Method::POST, "/api/v1/alert-rules", &admin_a, Some(body)).await;
        assert_eq!((s, err["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")), "{err}");
        assert!(err["message"].as_str().unwrap().starts_with(field), "{field}: {err}");
    }
    let rule_body = json!({"site_id": "A", "kind": "device_unreachable", "for_minutes": 0, "webhook_url": hook,
        "email_to": ["ops@site-a.test"], "max_per_hour": 2});
    let (s, _) = call(&f, Method::POST, "/api/v1/alert-rules", &viewer_a, Some(rule_body.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&f, Method::POST, "/api/v1/alert-rules", &admin_b, Some(rule_body.clone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, created) = call(&f, Method::POST, "/api/v1/alert-rules", &admin_a, Some(rule_body)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let secret = created["webhook_secret"].as_str().expect("the generated secret is shown once").to_owned();
    let id = created["id"].as_i64().unwrap();
    let rule_path = format!("/api/v1/alert-rules/{id}");
    let (s, listed) = call(&f, Method::GET, &rule_path, &viewer_a, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(listed.get("webhook_secret").is_none(), "the secret is never listed: {listed}");
    for (method, body) in [(Method::GET, None), (Method::PUT, Some(json!({"max_per_hour": 5}))), (Method::DELETE, None)]
    {
        let (s, _) = call(&f, method.clone(), &rule_path, &admin_b, body.clone()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} by another site's admin");
        if method != Method::GET {
            let (s, _) = call(&f, method.clone(), &rule_path, &viewer_a, body).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{method} by a viewer");
        }
    }
    let (s, _) = call(&f, Method::GET, "/api/v1/alert-rules/seven", &admin_a, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, theirs) = call(&f, Method::GET, "/api/v1/alert-rules", &admin_b, None).await;
    assert_eq!(theirs, json!([]));

    // The device stops answering: raised, by a signed webhook and an e-mail.
    post_status(&f, &token_a, &status("gate-A", "A", vec![device("DEV-A1", false)])).await;
    let raised =
        hooks.wait_for("raised", WAIT, |b| b["event"] == "raised" && b["subject"] == "device:DEV-A1").await.unwrap();
    assert!(signature_ok(&raised, &secret), "the webhook's signature checks out with the rule's secret");
    assert!(!signature_ok(&raised, "another secret of some length"));
    let body = raised.json();
    assert_eq!(
        (&body["kind"], &body["site_id"], &body["rule_id"]),
        (&json!("device_unreachable"), &json!("A"), &json!(id))
    );
    assert!(body["message"].as_str().unwrap().contains("connection refused"), "{body}");
    assert_eq!(raised.header("x-alert-event"), Some("raised"));
    let mail = smtp.wait_for("RAISED device_unreachable", WAIT).await.unwrap();
    assert_eq!(mail.to, vec!["ops@site-a.test".to_owned()]);
    assert!(mail.from.contains("alerts@central.test"), "{mail:?}");
    assert!(mail.data.contains("device:DEV-A1") && mail.data.contains("connection refused"), "{}", mail.data);
    let (_, open) = call(&f, Method::GET, "/api/v1/alerts", &viewer_a, None).await;
    assert_eq!(strings(&open, "subject"), vec!["device:DEV-A1"]);
    assert!(open[0]["raised_at"].is_string());
    let (_, open_b) = call(&f, Method::GET, "/api/v1/alerts", &admin_b, None).await;
    assert_eq!(open_b, json!([]));

    // It answers again: cleared. The receiver refuses the first attempt; the notification is sent again.
    hooks.fail_next(1);
    post_status(&f, &token_a, &status("gate-A", "A", vec![device("DEV-A1", true)])).await;
    hooks.wait_for("cleared", WAIT, |b| b["event"] == "cleared" && b["subject"] == "device:DEV-A1").await.unwrap();
    smtp.wait_for("CLEARED device_unreachable", WAIT).await.unwrap();
    let refused = hooks.received().iter().filter(|h| !h.accepted).count();
    assert_eq!(refused, 1, "one refused attempt before the accepted one");
    let (_, events) = call(&f, Method::GET, "/api/v1/alert-events", &viewer_a, None).await;
    assert_eq!(events_of(&events), vec![("cleared".into(), false), ("raised".into(), false)]);
    let cleared_hook = events[0]["deliveries"].as_array().unwrap().iter().find(|d| d["channel"] == "webhook").unwrap();
    assert_eq!((&cleared_hook["state"], &cleared_hook["attempts"]), (&json!("sent"), &json!(2)));
    assert!(cleared_hook["last_error"].as_str().unwrap().contains("500"), "{cleared_hook}");
    let (_, events_b) = call(&f, Method::GET, "/api/v1/alert-events", &admin_b, None).await;
    assert_eq!(events_b, json!([]));
    let (_, open) = call(&f, Method::GET, "/api/v1/alerts", &admin_a, None).await;
    assert_eq!(open, json!([]));

    // Rate limit: two raises an hour are sent; the third is recorded, suppressed, and so is its clear.
    for (reachable, want) in [(false, 3), (true, 4), (false, 5), (true, 6)] {
        post_status(&f, &token_a, &status("gate-A", "A", vec![device("DEV-A1", reachable)])).await;
        let start = std::time::Instant::now();
        loop {
            let (_, events) = call(&f, Method::GET, "/api/v1/alert-events", &admin_a, None).await;
            if events.as_array().unwrap().len() == want {
                break;
            }
            assert!(start.elapsed() < WAIT, "event {want} did not come: {events}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (_, events) = call(&f, Method::GET, "/api/v1/alert-events", &admin_a, None).await;
    assert_eq!(
        events_of(&events),
        vec![
            ("cleared".into(), true),
            ("raised".into(), true),
            ("cleared".into(), false),
            ("raised".into(), false),
            ("cleared".into(), false),
            ("raised".into(), false)
        ]
    );
    assert_eq!(events[0]["deliveries"], json!([]));
    hooks.wait_for("the second clear", WAIT, |b| b["event_id"] == events[2]["id"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let raised_hooks = hooks.received().iter().filter(|h| h.json()["event"] == "raised").count();
    assert_eq!(raised_hooks, 2, "the suppressed raise was not sent");

    // Switched off, then deleted by the site's admin; the history stays.
    let (s, changed) = call(&f, Method::PUT, &rule_path, &admin_a, Some(json!({"enabled": false}))).await;
    assert_eq!((s, &changed["enabled"]), (StatusCode::OK, &json!(false)));
    assert!(changed.get("webhook_secret").is_none(), "a kept secret is not shown again");
    let (s, _) = call(&f, Method::DELETE, &rule_path, &admin_a, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&f, Method::GET, &rule_path, &root, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, events) = call(&f, Method::GET, "/api/v1/alert-events", &root, None).await;
    assert_eq!(events.as_array().unwrap().len(), 6);
    f.cleanup().await;
}

/// Opens `/inventory/events` with `username`'s session; returns the stream of `status` events' JSON.
async fn status_stream(f: &AdminFixture, username: &str) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let (Auth::Session { cookie, .. }, _) = f.login(username, system_tests::admin::PASSWORD).await.unwrap() else {
        panic!("a session")
    };
    let mut response = f
        .http
        .get(format!("{}/inventory/events", f.central.url))
        .header("cookie", format!("ac_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if block.lines().any(|l| l == "event: status") {
                    let data: String = block.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                    if let Ok(v) = serde_json::from_str::<Value>(&data) {
                        let _ = tx.send(v);
                    }
                }
            }
        }
    });
    rx
}

async fn pages_and_live_status_events(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let root = f.token("root").await.unwrap();
    let token_a = agent(&f, &root, "gate-A", "A").await;
    let token_b = agent(&f, &root, "gate-B", "B").await;
    post_status(&f, &token_a, &status("gate-A", "A", vec![device("DEV-A1", true)])).await;
    post_status(&f, &token_b, &status("gate-B", "B", vec![device("DEV-B1", true)])).await;

    // The pages show each caller its sites only.
    for (user, mine, theirs) in
        [("adminA", "DEV-A1", "DEV-B1"), ("viewerA", "DEV-A1", "DEV-B1"), ("adminB", "DEV-B1", "DEV-A1")]
    {
        let web = Web::login(&f, user).await;
        let page = web.get("/inventory").await;
        assert_eq!(page.status, StatusCode::OK, "{user}");
        assert!(page.body.contains(&format!("data-device=\"{mine}\"")), "{user} sees {mine}");
        assert!(!page.body.contains(theirs), "{user} does not see {theirs}");
        assert!(page.body.contains("gate-A-pc") == (mine == "DEV-A1"), "{user}: the agent's host");
        assert!(page.body.contains("data-status-source=\"/inventory/events\""));
        let alerts = web.get("/alerts").await;
        assert_eq!(alerts.status, StatusCode::OK, "{user}");
        let devices = web.get("/devices").await;
        assert!(
            devices.body.contains("data-status-source=\"/inventory/events\"")
                && devices.body.contains("/static/fleet.js")
        );
    }
    let script = f.http.get(format!("{}/static/fleet.js", f.central.url)).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.text().await.unwrap().contains("addEventListener(\"status\""));

    // Live: a change of state reaches the streams of the callers who see its site, and only theirs.
    let mut stream_a = status_stream(&f, "viewerA").await;
    let mut stream_b = status_stream(&f, "adminB").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    post_status(&f, &token_b, &status("gate-B", "B", vec![device("DEV-B1", false)])).await;
    post_status(&f, &token_a, &status("gate-A", "A", vec![device("DEV-A1", false)])).await;
    let mut seen_a = Vec::new();
    while !seen_a.iter().any(|e: &Value| e["change"] == "fault_raised") {
        let event = tokio::time::timeout(WAIT, stream_a.recv()).await.expect("a status event").expect("the stream");
        assert_eq!(event["device_serial"], "DEV-A1", "viewerA sees only site A: {event}");
        assert_eq!(event["reachable"], false, "{event}");
        seen_a.push(event);
    }
    assert_eq!(seen_a[0]["change"], "unreachable");
    assert_eq!(seen_a[1]["faults"][0]["code"], "device_unreachable");
    let event = tokio::time::timeout(WAIT, stream_b.recv()).await.expect("a status event").expect("the stream");
    assert_eq!((&event["device_serial"], &event["change"]), (&json!("DEV-B1"), &json!("unreachable")));
    // Without a session the stream is refused (a redirect to the login page).
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let refused = anonymous.get(format!("{}/inventory/events", f.central.url)).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    f.cleanup().await;
}

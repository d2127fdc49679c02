//! Issue 12, finding 1: an agent of site A writing site B's attendance. Reproduced through the real HTTP ingest path
//! of a served central-api on both backends: A's agent names B's device in punches and in a status. After the fix
//! the punches are held in the quarantine (counted in the acknowledgement), B's real punches are stored, B's device
//! status is untouched, a fault is raised that root and both sites see (and a third site does not), and the
//! quarantine is listed, released and discarded under site and role scope, each decision audited.

use protocol::{AckOutcome, AgentStatus, BatchAck, DeviceStatus, Encoding, Fault, PROTOCOL_VERSION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{strings, AdminFixture, Auth};
use system_tests::central::{batch, day_at, punches, Backend};
use system_tests::on_both_backends;
use system_tests::web_client::Web;

on_both_backends!(another_sites_agent_cannot_write_its_attendance);

async fn call(f: &AdminFixture, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> (StatusCode, Value) {
    f.call(method, path, auth, body).await.expect("request")
}

/// Posts a batch and returns its acknowledgement.
async fn send(f: &AdminFixture, token: &str, agent: &str, site: &str, device: &str, pin: &str, n: usize) -> BatchAck {
    let http = system_tests::central::client(None);
    let b = batch(agent, site, 1, punches(site, device, &[pin], day_at(9), n));
    let response = f.central.post_batch(&http, token, &b, Encoding::Json).await.expect("post");
    assert_eq!(response.status(), StatusCode::OK);
    protocol::decode(&response.bytes().await.expect("body"), Encoding::Json).expect("ack")
}

fn status(agent: &str, site: &str, device: &str, reachable: bool) -> AgentStatus {
    let fault = Fault { code: format!("fault_from_{agent}"), message: "x".into(), since: chrono::Utc::now() };
    AgentStatus {
        version: PROTOCOL_VERSION,
        agent: agent.parse().expect("agent"),
        site: site.parse().expect("site"),
        sent_at: chrono::Utc::now(),
        agent_version: "0.1.0".into(),
        uptime_secs: 1,
        buffer_depth: 0,
        oldest_unacked_age_secs: None,
        devices: vec![DeviceStatus {
            reachable,
            faults: vec![fault],
            ..DeviceStatus::new(device.parse().expect("serial"))
        }],
        faults: Vec::new(),
        command_results: Vec::new(),
        hostname: "pc".into(),
        dead_letters: 0,
        config_version: None,
    }
}

async fn post_status(f: &AdminFixture, token: &str, status: &AgentStatus) -> StatusCode {
    let http = system_tests::central::client(None);
    let body = protocol::encode(status, Encoding::Json).expect("encode");
    f.central.post_raw(&http, "/api/v1/status", Some(token), "application/json", body).await.expect("post").status()
}

async fn count(f: &AdminFixture, sql: &str) -> i64 {
    f.db.scalar(sql).await.expect(sql)
}

async fn another_sites_agent_cannot_write_its_attendance(backend: Backend) {
    let f = AdminFixture::new(backend).await.expect("fixture");
    let (root, admin_a, viewer_a, admin_b) = (
        f.token("root").await.unwrap(),
        f.token("adminA").await.unwrap(),
        f.token("viewerA").await.unwrap(),
        f.token("adminB").await.unwrap(),
    );
    let (s, _) =
        call(&f, Method::POST, "/api/v1/sites", &root, Some(json!({"site_id": "C", "name": "C", "time_zone": "UTC"})))
            .await;
    assert_eq!(s, StatusCode::CREATED);
    f.create_admin("adminC", "admin", Some("C")).await.unwrap();
    let admin_c = f.token("adminC").await.unwrap();
    // Site A's zone differs from the fixture's, so a device registered there visibly takes A's zone.
    let (s, body) = call(&f, Method::PUT, "/api/v1/sites/A", &admin_a, Some(json!({"time_zone": "Asia/Dubai"}))).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // A's admin creates an agent for A; B's admin an agent and two devices for B.
    let token = |body: &Value| body["token"].as_str().expect("token").to_owned();
    let (_, agent) =
        call(&f, Method::POST, "/api/v1/agents", &admin_a, Some(json!({"agent_id": "gate-a", "site_id": "A"}))).await;
    let token_a = token(&agent);
    let (_, agent) =
        call(&f, Method::POST, "/api/v1/agents", &admin_b, Some(json!({"agent_id": "gate-b", "site_id": "B"}))).await;
    let token_b = token(&agent);
    for serial in ["GATE-B", "GATE-B2"] {
        let device = json!({"serial": serial, "site_id": "B", "name": "Gate", "kind": "zk-tcp", "ip": "10.0.2.1"});
        let (s, body) = call(&f, Method::POST, "/api/v1/devices", &admin_b, Some(device)).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
    }

    // The attack: A's agent sends three punches of B's device and B's employee 201.
    let ack = send(&f, &token_a, "gate-a", "A", "GATE-B", "201", 3).await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 0, duplicates: 0, quarantined: 3 }, "held, acknowledged");
    assert_eq!(count(&f, "SELECT count(*) FROM all_logs WHERE device_serial = 'GATE-B'").await, 0);
    assert_eq!(count(&f, "SELECT count(*) FROM punch_quarantine WHERE status = 'held'").await, 3);
    // Resent (the agent retries): still counted, not held twice.
    let ack = send(&f, &token_a, "gate-a", "A", "GATE-B", "201", 3).await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 0, duplicates: 0, quarantined: 3 });
    assert_eq!(count(&f, "SELECT count(*) FROM punch_quarantine").await, 3);

    // B's real punches for the same (device, time, PIN) are stored, not taken for duplicates.
    let ack = send(&f, &token_b, "gate-b", "B", "GATE-B", "201", 2).await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 2, duplicates: 0, quarantined: 0 });
    assert_eq!(
        count(&f, "SELECT count(*) FROM all_logs WHERE device_serial = 'GATE-B' AND agent_id = 'gate-b'").await,
        2
    );

    // A device seen for the first time is A's, unconfirmed, in A's zone; B does not see it; a change confirms it.
    let ack = send(&f, &token_a, "gate-a", "A", "GATE-NEW", "101", 2).await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 2, duplicates: 0, quarantined: 0 });
    let (_, devices) = call(&f, Method::GET, "/api/v1/devices?site=A", &admin_a, None).await;
    let new = devices.as_array().unwrap().iter().find(|d| d["serial"] == "GATE-NEW").expect("registered").clone();
    assert_eq!(
        (&new["confirmed"], &new["time_zone"], &new["site_id"]),
        (&json!(false), &json!("Asia/Dubai"), &json!("A"))
    );
    let (_, devices) = call(&f, Method::GET, "/api/v1/devices", &admin_b, None).await;
    assert!(!strings(&devices, "serial").contains(&"GATE-NEW".to_owned()));
    let page = Web::login(&f, "adminA").await.get("/devices").await.body;
    assert!(page.contains(r#"data-device="GATE-NEW""#) && page.contains(r#"data-testid="unconfirmed""#), "{page}");
    let change = json!({"name": "Side door", "kind": "zk-tcp", "ip": "10.0.1.9"});
    let (s, _) = call(&f, Method::PUT, "/api/v1/devices/GATE-NEW", &admin_a, Some(change)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, devices) = call(&f, Method::GET, "/api/v1/devices?site=A", &admin_a, None).await;
    assert!(devices.as_array().unwrap().iter().any(|d| d["serial"] == "GATE-NEW" && d["confirmed"] == json!(true)));

    // Status: B reports its device; A's agent reporting it (or B's other device) changes nothing.
    assert_eq!(post_status(&f, &token_b, &status("gate-b", "B", "GATE-B", true)).await, StatusCode::NO_CONTENT);
    for device in ["GATE-B", "GATE-B2"] {
        assert_eq!(post_status(&f, &token_a, &status("gate-a", "A", device, false)).await, StatusCode::NO_CONTENT);
    }
    assert_eq!(count(&f, "SELECT count(*) FROM device_status WHERE agent_id = 'gate-a'").await, 0);
    assert_eq!(
        count(&f, "SELECT count(*) FROM device_status WHERE device_serial = 'GATE-B' AND agent_id = 'gate-b'").await,
        1
    );
    assert_eq!(count(&f, "SELECT count(*) FROM fault_history WHERE code = 'fault_from_gate-a'").await, 0);

    // The fault: one for the punches, one for the status of the other device; root and both sites see it.
    let faults = "SELECT count(*) FROM fault_history WHERE code = 'cross_site_device' AND agent_id = 'gate-a' \
                  AND other_site_id = 'B'";
    assert_eq!(count(&f, faults).await, 2);
    for (user, sees) in [("root", true), ("adminA", true), ("viewerA", true), ("adminB", true), ("adminC", false)] {
        let page = Web::login(&f, user).await.get("/devices").await.body;
        assert_eq!(page.contains("cross_site_device"), sees, "{user}: {page}");
        assert_eq!(page.contains(r#"data-testid="quarantine""#), sees, "{user}");
    }

    // The quarantine list: both sites and root; not a third site's admin.
    for (auth, n) in [(&root, 3), (&admin_a, 3), (&viewer_a, 3), (&admin_b, 3), (&admin_c, 0)] {
        let (s, list) = call(&f, Method::GET, "/api/v1/quarantine?status=held", auth, None).await;
        assert_eq!((s, list.as_array().map(Vec::len)), (StatusCode::OK, Some(n)), "{list}");
    }
    let (s, _) = call(&f, Method::GET, "/api/v1/quarantine?site=B", &admin_c, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = call(&f, Method::GET, "/api/v1/quarantine", &admin_b, None).await;
    let ids: Vec<i64> = list.as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(list[0]["reason"].as_str().unwrap().contains("registered at site B, not at site A"), "{list}");

    // Decisions: a viewer and A's admin (the device is B's) may not; a third site's admin does not see them.
    let first = json!({"ids": [ids[0]]});
    let (s, _) = call(&f, Method::POST, "/api/v1/quarantine/discard", &viewer_a, Some(first.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&f, Method::POST, "/api/v1/quarantine/discard", &admin_c, Some(first.clone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&f, Method::POST, "/api/v1/quarantine/release", &admin_c, Some(first.clone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = call(&f, Method::POST, "/api/v1/quarantine/release", &admin_a, Some(first.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, body) = call(&f, Method::POST, "/api/v1/quarantine/discard", &admin_b, Some(first.clone())).await;
    assert_eq!((s, &body["discarded"]), (StatusCode::OK, &json!(1)), "{body}");
    let (s, body) = call(&f, Method::POST, "/api/v1/quarantine/discard", &admin_b, Some(first)).await;
    assert_eq!((s, body["code"].as_str()), (StatusCode::CONFLICT, Some("already_decided")));

    // Moving the device takes an admin of both sites; then A's admin releases the rest into A's AllLogs.
    let to_a = json!({"site_id": "A"});
    for auth in [&admin_a, &admin_b, &admin_c] {
        let (s, _) = call(&f, Method::POST, "/api/v1/devices/GATE-B/move", auth, Some(to_a.clone())).await;
        assert!(s == StatusCode::NOT_FOUND || s == StatusCode::FORBIDDEN, "{s}");
    }
    let (s, _) = call(&f, Method::POST, "/api/v1/devices/GATE-B/move", &root, Some(to_a)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let rest = json!({"ids": [ids[1], ids[2]]});
    let (s, _) = call(&f, Method::POST, "/api/v1/quarantine/release", &viewer_a, Some(rest.clone())).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = call(&f, Method::POST, "/api/v1/quarantine/release", &admin_a, Some(rest)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Minute 1 was also punched at B (a duplicate); minute 2 is new, stored under A.
    assert_eq!((&body["released"], &body["new"], &body["duplicates"]), (&json!(2), &json!(1), &json!(1)), "{body}");
    assert_eq!(count(&f, "SELECT count(*) FROM all_logs WHERE device_serial = 'GATE-B' AND site_id = 'A'").await, 1);
    assert_eq!(count(&f, "SELECT count(*) FROM punch_quarantine WHERE status = 'held'").await, 0);

    // Both decisions are in both sites' audit logs, not in a third site's.
    for (auth, n) in [(&admin_a, 2), (&admin_b, 2), (&admin_c, 0)] {
        let (_, log) = call(&f, Method::GET, "/api/v1/audit?resource=quarantined_punches&limit=1000", auth, None).await;
        let decided =
            log["items"].as_array().map_or(0, |a| a.iter().filter(|e| e["resource"] == "quarantined_punches").count());
        assert_eq!(decided, n, "{log}");
    }
    f.cleanup().await;
}

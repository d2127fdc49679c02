//! Employees on devices (issue 17) through the real `central-api serve` and a managed `edge-agent run` (HTTPS on
//! both central backends, and MQTT on PostgreSQL): employees pushed from central are readable from two ZKTeco
//! simulators (one 72-byte over TCP, one 28-byte over UDP; and by pyzk) and from a push terminal's command log; a
//! leaver is removed from every device; an employee's fingerprint templates are copied from the terminal where they
//! enrolled to the other one and to the push terminal (byte for byte); the API shows which devices hold whom. Each
//! employee's card number and privilege reach every device (pyzk reads them back); a privilege central does not know
//! is kept on the device (an administrator is not demoted); a write the device refuses in part is `done`, flagged
//! partial, with the refused users named. The endpoints are scoped: another site's admin gets 404, a viewer 403.

use std::time::Duration;

use chrono::Utc;
use edge_agent::zk::templates::Template;
use edge_agent::zk::{RecordLayout, UserLayout};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::adms_sim::AdmsSim;
use system_tests::central::Backend;
use system_tests::fleet::{start_agent, wait_until, FleetRig, Transport};
use system_tests::web_client::Web;
use system_tests::zk_sim::{SimConfig, ZkSim};

system_tests::on_both_backends!(employees_reach_every_device_and_leavers_leave, user_endpoints_are_scoped);

/// The same scenario with the agent on MQTT (the commands topic), on PostgreSQL as in production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn employees_reach_every_device_and_leavers_leave_over_mqtt_postgres() {
    users_scenario(Backend::Postgres, Transport::Mqtt).await;
}

async fn employees_reach_every_device_and_leavers_leave(backend: Backend) {
    users_scenario(backend, Transport::Https).await;
}

fn ids(created: &Value) -> Vec<i64> {
    created["commands"].as_array().expect("commands").iter().map(|c| c["id"].as_i64().expect("id")).collect()
}

/// Waits until every command in `ids` finished, letting the push terminal poll meanwhile; returns them.
async fn finish_all(rig: &FleetRig, ids: &[i64], adms: &mut AdmsSim) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        adms.poll_commands().await.expect("push terminal polls");
        let mut done = Vec::new();
        for id in ids {
            let (_, c) = rig.call(Method::GET, &format!("/api/v1/commands/{id}"), &rig.root, None).await.unwrap();
            if ["done", "failed", "expired"].contains(&c["state"].as_str().unwrap_or("")) {
                done.push(c);
            }
        }
        if done.len() == ids.len() {
            return done;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "commands {ids:?} not finished: {done:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assert_done(commands: &[Value]) {
    for c in commands {
        assert_eq!(c["state"], "done", "{c}");
    }
}

async fn post(rig: &FleetRig, path: &str, body: Value) -> Value {
    let (status, created) = rig.call(Method::POST, path, &rig.admin_a, Some(body)).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
    created
}

async fn held_by(rig: &FleetRig, pin: &str) -> Vec<String> {
    let (status, body) =
        rig.call(Method::GET, &format!("/api/v1/employees/{pin}/devices"), &rig.viewer_a, None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut serials: Vec<String> =
        body.as_array().unwrap().iter().map(|h| h["device_serial"].as_str().unwrap().to_owned()).collect();
    serials.sort();
    serials
}

async fn add_employees(rig: &FleetRig) {
    let today = Utc::now().date_naive();
    for (id, name, leaving) in
        [("7001", "Nadia Rahman", None), ("7002", "Leaving Soon", Some(today - chrono::Duration::days(3)))]
    {
        let (card, privilege) = if id == "7001" { (Some("04822257"), Some("admin")) } else { (None, None) };
        let body = json!({"employee_id": id, "name": name, "site_id": "A",
            "date_of_joining": (today - chrono::Duration::days(300)).to_string(),
            "date_of_leaving": leaving.map(|d: chrono::NaiveDate| d.to_string()),
            "card_number": card, "device_privilege": privilege});
        let (status, body) = rig.call(Method::POST, "/api/v1/employees", &rig.admin_a, Some(body)).await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

fn fingers() -> Vec<Template> {
    vec![
        Template { finger: 1, valid: 1, data: (0..1_200u32).map(|i| (i * 11 % 241) as u8).collect() },
        Template { finger: 5, valid: 1, data: (0..700u32).map(|i| (i * 3 % 199) as u8).collect() },
    ]
}

async fn users_scenario(backend: Backend, transport: Transport) {
    let rig = FleetRig::new(backend, transport).await.expect("central");
    let zk_a = ZkSim::start(SimConfig { serial: "ZKU-A".into(), users: 5, records: 5, ..SimConfig::default() })
        .await
        .expect("zk-sim A");
    let zk_b = ZkSim::start(SimConfig {
        serial: "ZKU-B".into(),
        users: 5,
        records: 5,
        user_layout: UserLayout::Small,
        record_layout: RecordLayout::Short,
        ..SimConfig::default()
    })
    .await
    .expect("zk-sim B");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agent = start_agent(&rig.agent_config(dir.path()).expect("config")).await.expect("agent");

    for (serial, kind, port) in
        [("ZKU-A", "zk-tcp", zk_a.tcp_addr().port()), ("ZKU-B", "zk-udp", zk_b.udp_addr().port())]
    {
        let body = json!({"serial": serial, "site_id": "A", "name": serial, "kind": kind, "ip": "127.0.0.1",
            "port": port, "settings": {"poll_interval_secs": 2}});
        let (status, body) = rig.call(Method::POST, "/api/v1/devices", &rig.admin_a, Some(body)).await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let body = json!({"serial": "ADMS-U1", "site_id": "A", "name": "Push gate", "kind": "adms"});
    let (status, body) = rig.call(Method::POST, "/api/v1/devices", &rig.admin_a, Some(body)).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let push_url = agent.wait_for_line("edge-agent adms listening on ", Duration::from_secs(30)).await.expect("adms");
    let mut adms = AdmsSim::new(&push_url, "ADMS-U1");
    let version = rig.site_version().await.unwrap();
    wait_until("the agent runs the three devices", Duration::from_secs(20), async || {
        rig.reported_version().await.unwrap() == Some(version)
    })
    .await;
    wait_until("both terminals polled", Duration::from_secs(20), async || {
        zk_a.counters().sessions > 0 && zk_b.counters().sessions > 0
    })
    .await;
    adms.handshake().await.expect("push terminal handshake");
    add_employees(&rig).await;
    // 7003: central knows no card or privilege; A-17: a PIN the 28-byte terminal cannot hold, and one the push
    // terminal refuses.
    for (id, name) in [("7003", "Tariq Admin"), ("A-17", "Ravi Kumar")] {
        let body = json!({"employee_id": id, "name": name, "site_id": "A"});
        let (status, body) = rig.call(Method::POST, "/api/v1/employees", &rig.admin_a, Some(body)).await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    adms.refuse_pins.insert("A-17".to_owned());
    let (_, nadia_api) = rig.call(Method::GET, "/api/v1/employees/7001", &rig.viewer_a, None).await.unwrap();
    assert_eq!((&nadia_api["card_number"], &nadia_api["device_privilege"]), (&json!("4822257"), &json!("admin")));

    // 7003 is made an administrator on every device by a one-off push (its request's privilege, not central's).
    let created = post(&rig, "/api/v1/employees/7003/push", json!({"privilege": 14})).await;
    assert_done(&finish_all(&rig, &ids(&created), &mut adms).await);
    assert_eq!(zk_a.user_by_pin("7003").map(|u| u.privilege), Some(14));

    // One employee pushed with a card, then every current employee of the site (7002 is a leaver: not pushed).
    let created = post(&rig, "/api/v1/employees/7002/push", json!({"card": 55})).await;
    assert_eq!(ids(&created).len(), 3, "one command per device holding users: {created}");
    assert_done(&finish_all(&rig, &ids(&created), &mut adms).await);
    let created = post(&rig, "/api/v1/sites/A/push-employees", json!({})).await;
    let finished = finish_all(&rig, &ids(&created), &mut adms).await;
    assert_done(&finished);
    for c in &finished {
        let users = c["action_detail"]["write_users"]["users"].as_array().unwrap();
        let pins: Vec<&str> = users.iter().map(|u| u["pin"].as_str().unwrap()).collect();
        assert_eq!(pins, ["7001", "7003", "A-17"], "the current employees, not the leaver: {c}");
        let outcome = &c["user_outcome"];
        if c["device_serial"] == "ZKU-A" {
            assert_eq!(outcome["written"], json!(["7001", "7003", "A-17"]), "{c}");
            assert_eq!(outcome["partial"], false, "{c}");
        } else {
            // Refused in part: the command is done, flagged partial, the refused user named with why.
            assert_eq!(outcome["written"], json!(["7001", "7003"]), "{c}");
            assert_eq!(outcome["partial"], true, "{c}");
            assert_eq!(outcome["refused"][0]["pin"], "A-17", "{c}");
            let why = outcome["refused"][0]["reason"].as_str().unwrap();
            let expected = if c["device_serial"] == "ZKU-B" { "28-byte" } else { "Return=-1" };
            assert!(why.contains(expected), "{c}");
        }
    }
    let nadia = zk_a.user_by_pin("7001").expect("7001 on the 72-byte terminal");
    assert_eq!(nadia.name, "Nadia Rahman");
    assert_eq!((nadia.card, nadia.privilege), (4_822_257, 6), "the employee's card and privilege");
    let nadia_b = zk_b.user_by_pin("7001").expect("7001 on the 28-byte terminal");
    assert_eq!((nadia_b.name.as_str(), nadia_b.card, nadia_b.privilege), ("Nadia Ra", 4_822_257, 6));
    assert_eq!(zk_a.user_by_pin("7002").map(|u| u.card), Some(55));
    // Central knows no privilege for 7003: the administrator stays one on every device.
    assert_eq!(zk_a.user_by_pin("7003").map(|u| u.privilege), Some(14));
    assert_eq!(zk_b.user_by_pin("7003").map(|u| u.privilege), Some(14));
    let on_push = |pin: &str, field: &str| adms.users.get(pin).and_then(|u| u.get(field)).cloned();
    assert_eq!(on_push("7001", "Name").as_deref(), Some("Nadia Rahman"));
    assert_eq!((on_push("7001", "Pri").as_deref(), on_push("7001", "Card").as_deref()), (Some("6"), Some("4822257")));
    assert_eq!(on_push("7003", "Pri").as_deref(), Some("14"), "kept: the site push left Pri out");
    assert!(!adms.users.contains_key("A-17"));
    assert!(
        adms.command_log.iter().any(|c| c == "DATA UPDATE USERINFO PIN=7003\tName=Tariq Admin"),
        "{:?}",
        adms.command_log
    );
    let page = rig.call(Method::GET, "/api/v1/commands?site=A&state=done", &rig.viewer_a, None).await.unwrap().1;
    assert!(page.as_array().unwrap().iter().any(|c| c["user_outcome"]["partial"] == true), "{page}");
    assert!(
        adms.command_log.iter().any(|c| c.starts_with("DATA UPDATE USERINFO PIN=7002\t")),
        "{:?}",
        adms.command_log
    );
    let addr = zk_a.tcp_addr();
    let py = tokio::task::spawn_blocking(move || system_tests::pyzk::read_users(addr, 0, false)).await.unwrap();
    let py = py.unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        py["users"].as_array().unwrap().iter().any(|u| u["user_id"] == "7001"
            && u["name"] == "Nadia Rahman"
            && u["privilege"] == 6
            && u["card"] == 4_822_257),
        "pyzk reads the card and privilege: {py}"
    );
    assert_eq!(held_by(&rig, "7001").await, ["ADMS-U1", "ZKU-A", "ZKU-B"]);
    assert_eq!(held_by(&rig, "A-17").await, ["ZKU-A"], "held only where it was written");
    assert_eq!(held_by(&rig, "7002").await, ["ADMS-U1", "ZKU-A", "ZKU-B"]);

    // The leaver leaves every device.
    let created = post(&rig, "/api/v1/sites/A/remove-leavers", json!(null)).await;
    assert_eq!(ids(&created).len(), 3, "{created}");
    assert_done(&finish_all(&rig, &ids(&created), &mut adms).await);
    assert!(zk_a.user_by_pin("7002").is_none() && zk_b.user_by_pin("7002").is_none());
    assert!(!adms.users.contains_key("7002"));
    assert!(adms.command_log.iter().any(|c| c == "DATA DELETE USERINFO PIN=7002"), "{:?}", adms.command_log);
    assert!(held_by(&rig, "7002").await.is_empty());
    assert!(zk_a.user_by_pin("7001").is_some(), "a current employee stays");

    // Fingers enrolled on A are copied to B and to the push terminal, byte for byte.
    zk_a.enroll_fingers(nadia.uid, &fingers());
    let created = post(&rig, "/api/v1/employees/7001/copy-templates", json!({"from": "ZKU-A"})).await;
    let finished = finish_all(&rig, &ids(&created), &mut adms).await;
    assert_done(&finished);
    let detail = finished[0]["detail"].as_str().unwrap();
    assert!(detail.contains("2 templates of 7001 from ZKU-A written to"), "{detail}");
    assert!(detail.contains("ZKU-B") && detail.contains("ADMS-U1"), "{detail}");
    assert_eq!(zk_b.templates_of("7001"), fingers());
    let on_push: Vec<(u8, u8, Vec<u8>)> =
        adms.templates_of("7001").into_iter().map(|(finger, t)| (finger, t.valid, t.data)).collect();
    let expected: Vec<(u8, u8, Vec<u8>)> = fingers().into_iter().map(|t| (t.finger, t.valid, t.data)).collect();
    assert_eq!(on_push, expected, "the push terminal holds the fingers read from zk-sim");
    assert!(adms.command_log.iter().any(|c| c.starts_with("DATA UPDATE FINGERTMP PIN=7001\tFID=5\t")));
    let addr = zk_b.udp_addr();
    let py = tokio::task::spawn_blocking(move || system_tests::pyzk::read_users(addr, 0, true)).await.unwrap();
    let py = py.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(py["templates"].as_array().unwrap().len(), 2, "pyzk reads the copied fingers over UDP: {py}");
    assert_eq!(held_by(&rig, "7001").await, ["ADMS-U1", "ZKU-A", "ZKU-B"]);
    drop(agent);
    rig.cleanup().await;
}

async fn user_endpoints_are_scoped(backend: Backend) {
    let rig = FleetRig::new(backend, Transport::Https).await.expect("central");
    let body = json!({"serial": "ZKU-S", "site_id": "A", "name": "Gate", "kind": "zk-tcp", "ip": "10.9.8.7"});
    let (status, body) = rig.call(Method::POST, "/api/v1/devices", &rig.admin_a, Some(body)).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    add_employees(&rig).await;
    let changes: [(&str, Value); 5] = [
        ("/api/v1/employees/7001/push", json!({})),
        ("/api/v1/employees/7001/remove-from-devices", json!({})),
        ("/api/v1/employees/7001/copy-templates", json!({"from": "ZKU-S"})),
        ("/api/v1/sites/A/push-employees", json!({})),
        ("/api/v1/sites/A/remove-leavers", json!(null)),
    ];
    for (path, body) in &changes {
        let (status, answer) = rig.call(Method::POST, path, &rig.admin_b, Some(body.clone())).await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} as site B's admin: {answer}");
        let (status, answer) = rig.call(Method::POST, path, &rig.viewer_a, Some(body.clone())).await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} as a viewer: {answer}");
    }
    let (status, _) = rig.call(Method::GET, "/api/v1/employees/7001/devices", &rig.admin_b, None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(held_by(&rig, "7001").await.is_empty(), "nothing pushed yet");

    // Bad input is named, never a 5xx.
    let refusals: [(&str, Value, &str); 5] = [
        ("/api/v1/employees/7001/push", json!({"privilege": 3}), "privilege"),
        ("/api/v1/employees/7001/push", json!({"devices": ["NOPE"]}), "devices"),
        ("/api/v1/employees/7001/copy-templates", json!({"from": "NOPE"}), "from"),
        ("/api/v1/employees/7001/copy-templates", json!({"from": "ZKU-S"}), "to"),
        ("/api/v1/employees/7001/push", json!({"colour": "red"}), "colour"),
    ];
    for (path, body, field) in refusals {
        let (status, answer) = rig.call(Method::POST, path, &rig.admin_a, Some(body)).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "{path}: {answer}");
    }
    let (status, _) =
        rig.call(Method::POST, "/api/v1/employees/9999/push", &rig.admin_a, Some(json!({}))).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The employee's card and privilege are checked by field, for a create and a change.
    let today = Utc::now().date_naive().to_string();
    for (card, privilege, field) in
        [("12a", "user", "card_number"), ("4294967296", "user", "card_number"), ("42", "boss", "device_privilege")]
    {
        let body = json!({"employee_id": "7009", "name": "X", "site_id": "A", "date_of_joining": today,
            "card_number": card, "device_privilege": privilege});
        let (status, answer) = rig.call(Method::POST, "/api/v1/employees", &rig.admin_a, Some(body)).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "{field}: {answer}");
        let body = json!({"employee_id": "7001", "name": "Nadia Rahman", "site_id": "A", "card_number": card,
            "device_privilege": privilege});
        let (status, answer) = rig.call(Method::PUT, "/api/v1/employees/7001", &rig.admin_a, Some(body)).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "{field}: {answer}");
    }
    let change = json!({"employee_id": "7001", "name": "Nadia Rahman", "site_id": "A", "card_number": "99",
        "device_privilege": "superadmin"});
    for caller in [&rig.admin_b, &rig.viewer_a] {
        let (status, _) = rig.call(Method::PUT, "/api/v1/employees/7001", caller, Some(change.clone())).await.unwrap();
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN, "{status}");
    }
    let (_, seen) = rig.call(Method::GET, "/api/v1/employees/7001", &rig.viewer_a, None).await.unwrap();
    assert_eq!((&seen["card_number"], &seen["device_privilege"]), (&json!("4822257"), &json!("admin")), "unchanged");
    // The command line takes them too, checked before anything is created.
    let db = &rig.fixture.db;
    db.cli(&[
        "add-employee",
        "7010",
        "--name",
        "Card Holder",
        "--site",
        "A",
        "--card-number",
        "31",
        "--device-privilege",
        "enroller",
    ])
    .await
    .expect("add-employee with card and privilege");
    let (_, seen) = rig.call(Method::GET, "/api/v1/employees/7010", &rig.viewer_a, None).await.unwrap();
    assert_eq!((&seen["card_number"], &seen["device_privilege"]), (&json!("31"), &json!("enroller")), "{seen}");
    let err =
        db.cli(&["add-employee", "7011", "--name", "X", "--site", "A", "--card-number", "12a"]).await.unwrap_err();
    assert!(format!("{err:#}").contains("card number"), "{err:#}");
    let (status, _) = rig.call(Method::GET, "/api/v1/employees/7011", &rig.root, None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing created");

    // Site A's admin creates commands for gate-1 (nothing runs them here).
    let created = post(&rig, "/api/v1/employees/7001/push", json!({"card": 12, "privilege": 14})).await;
    let users = &created["commands"][0]["action_detail"]["write_users"]["users"][0];
    assert_eq!((&users["pin"], &users["card"], &users["privilege"]), (&json!("7001"), &json!(12), &json!(14)));
    let created = post(&rig, "/api/v1/sites/A/remove-leavers", json!(null)).await;
    assert_eq!(created["commands"][0]["action_detail"]["delete_users"]["pins"], json!(["7002"]));
    // Without a request value, the employee's own card and privilege are pushed.
    let created = post(&rig, "/api/v1/employees/7001/push", json!({})).await;
    let users = &created["commands"][0]["action_detail"]["write_users"]["users"][0];
    assert_eq!((&users["card"], &users["privilege"]), (&json!(4_822_257), &json!(6)), "{created}");
    let (status, page) = rig.call(Method::GET, "/api/v1/commands?site=A", &rig.admin_b, None).await.unwrap();
    assert!(status == StatusCode::NOT_FOUND || page.as_array().is_some_and(Vec::is_empty), "{status} {page}");

    // The dashboard's employee page: the held-by list for everyone who sees the site, the buttons for its admins.
    let admin = Web::login(&rig.fixture, "adminA").await;
    let viewer = Web::login(&rig.fixture, "viewerA").await;
    let admin_b = Web::login(&rig.fixture, "adminB").await;
    let page = viewer.get("/employees/7001/devices").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Held by") && !page.body.contains("push-form"), "{}", page.body);
    assert_eq!(admin_b.get("/employees/7001/devices").await.status, StatusCode::NOT_FOUND);
    let page = admin.get("/employees/7001/devices").await;
    for form in ["push-form", "remove-form"] {
        assert!(page.body.contains(form), "{form}: {}", page.body);
    }
    assert!(page.body.contains("Copying needs a ZKTeco device and another"), "one ZKTeco device only: {}", page.body);
    assert!(page.body.contains("data-command="), "the commands made above are listed: {}", page.body);
    let fields = [("device", "ZKU-S"), ("card", "9"), ("privilege", "6")];
    assert_eq!(viewer.post("/employees/7001/devices/push", &fields).await.status, StatusCode::FORBIDDEN);
    let answer = admin.post("/employees/7001/devices/push", &fields).await;
    assert_eq!((answer.status, answer.location.as_deref()), (StatusCode::SEE_OTHER, Some("/employees/7001/devices")));
    let (_, commands) = rig.call(Method::GET, "/api/v1/commands?site=A", &rig.admin_a, None).await.unwrap();
    let newest = &commands[0]["action_detail"]["write_users"];
    assert_eq!((&newest["device"], &newest["users"][0]["card"]), (&json!("ZKU-S"), &json!(9)), "{commands}");
    let answer = admin.post("/employees/7001/devices/remove", &[("device", "")]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let (_, commands) = rig.call(Method::GET, "/api/v1/commands?site=A", &rig.admin_a, None).await.unwrap();
    assert_eq!(commands[0]["action_detail"]["delete_users"]["pins"], json!(["7001"]), "{commands}");
    let edit = admin.get("/employees/7001/edit").await;
    assert!(edit.body.contains("/employees/7001/devices"), "the edit page links to it");
    assert!(edit.body.contains("4822257") && edit.body.contains("name=\"device_privilege\""), "{}", edit.body);
    rig.cleanup().await;
}

//! The fleet's dashboard forms (issue 17) against a real central-api, spoken to as a browser would (session cookie,
//! the CSRF field, redirects not followed), on both backends:
//!
//! - devices of every kind added, edited and removed from forms; a bad value comes back with status 400 next to its
//!   field (a refused driver setting next to the settings box, naming the key); a viewer and another site's admin
//!   change nothing (403 / 404);
//! - commands issued from a device's page and site-wide from `/commands`, refusals naming the field, their state in
//!   the history;
//! - alert rules added, edited and removed from forms, refusals next to their field, a generated webhook secret
//!   shown once;
//! - end to end, on HTTPS and MQTT: a terminal added on the dashboard is polled by the running managed agent within
//!   seconds (no restart), a pull issued from its page is shown `done` there, and once removed there it is no
//!   longer read.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use system_tests::central::Backend;
use system_tests::fleet::{start_agent, wait_until, FleetRig, Transport};
use system_tests::web_client::{Answer, Web};
use system_tests::zk_sim::{SimConfig, ZkSim};

system_tests::on_both_backends!(devices_are_added_edited_and_removed, commands_are_sent_from_the_pages, alert_rules);

mod https {
    use super::*;
    system_tests::on_both_backends!(a_device_added_on_the_dashboard_is_polled);

    async fn a_device_added_on_the_dashboard_is_polled(backend: Backend) {
        super::added_on_the_dashboard(backend, Transport::Https).await;
    }
}

mod mqtt {
    use super::*;
    system_tests::on_both_backends!(a_device_added_on_the_dashboard_is_polled);

    async fn a_device_added_on_the_dashboard_is_polled(backend: Backend) {
        super::added_on_the_dashboard(backend, Transport::Mqtt).await;
    }
}

/// A form's fields.
type Fields = Vec<(&'static str, &'static str)>;

/// Asserts a form came back refused with the message next to `field`.
fn refused_at(answer: &Answer, field: &str, what: &str) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{what}: {}", answer.body);
    assert!(
        answer.body.contains(&format!("data-testid=\"error-{field}\"")),
        "{what}: error at {field}: {}",
        answer.body
    );
}

fn redirected_to(answer: &Answer, to: &str, what: &str) {
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{what}: {}", answer.body);
    assert_eq!(answer.location.as_deref(), Some(to), "{what}");
}

async fn devices_are_added_edited_and_removed(backend: Backend) {
    let rig = FleetRig::new(backend, Transport::Https).await.expect("central");
    let (admin, viewer, other) = (
        Web::login(&rig.fixture, "adminA").await,
        Web::login(&rig.fixture, "viewerA").await,
        Web::login(&rig.fixture, "adminB").await,
    );
    let page = admin.get("/devices").await;
    assert!(page.body.contains("data-testid=\"new-device\""), "the admin may add devices");
    assert_eq!(admin.get("/devices/new").await.status, StatusCode::OK);
    assert_eq!(viewer.get("/devices/new").await.status, StatusCode::FORBIDDEN);
    assert!(!viewer.get("/devices").await.body.contains("data-testid=\"new-device\""));

    // One device of every kind, each with the settings its driver needs.
    let kinds: [(&str, &str, &str, &str); 7] = [
        ("Z-TCP", "zk-tcp", "10.0.0.5", r#"{"poll_interval_secs": 30, "comm_key": 1234}"#),
        ("Z-UDP", "zk-udp", "10.0.0.6", ""),
        ("P-1", "adms", "", r#"{"allow_from": ["10.0.0.0/24"]}"#),
        ("S-1", "serial", "", r#"{"port": "/dev/ttyUSB0", "delimiter": ",", "pin_field": 0, "time_field": 1}"#),
        (
            "M-1",
            "modbus",
            "",
            r#"{"address": "10.0.0.9:502", "counter_register": 0, "ring_start": 100, "ring_slots": 64}"#,
        ),
        ("H-1", "hikvision", "", r#"{"url": "http://10.0.0.7", "password": "s3cret"}"#),
        ("D-1", "dahua", "", r#"{"url": "https://10.0.0.8:8443", "password": "s3cret"}"#),
    ];
    let before = rig.site_version().await.unwrap();
    for (serial, kind, ip, settings) in kinds {
        let answer = admin
            .post(
                "/devices/new",
                &[
                    ("serial", serial),
                    ("site_id", "A"),
                    ("name", &format!("{kind} device")),
                    ("kind", kind),
                    ("ip", ip),
                    ("port", ""),
                    ("time_zone", ""),
                    ("direction", "BOTH"),
                    ("settings", settings),
                ],
            )
            .await;
        redirected_to(&answer, &format!("/devices/{serial}"), kind);
        let stored = rig.fixture.store.managed_device(serial).await.unwrap().expect("stored");
        assert_eq!(stored.record.device.kind, kind);
    }
    assert_eq!(rig.site_version().await.unwrap(), before + 7, "each addition is a configuration version");
    let page = admin.get("/devices/H-1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("********") && !page.body.contains("s3cret"), "secrets are masked: {}", page.body);

    // Refusals come back next to their field.
    let base = [("site_id", "A"), ("name", "X"), ("direction", "BOTH"), ("time_zone", ""), ("port", "")];
    let cases: Vec<(&str, Fields, &str)> = vec![
        ("ip", vec![("serial", "Z-9"), ("kind", "zk-tcp"), ("ip", ""), ("settings", "")], "a zk device without ip"),
        ("ip", vec![("serial", "Z-9"), ("kind", "zk-tcp"), ("ip", "ten"), ("settings", "")], "a bad ip"),
        ("port", vec![("serial", "Z-9"), ("kind", "zk-tcp"), ("ip", "10.0.0.1"), ("port", "70000")], "a bad port"),
        (
            "settings",
            vec![("serial", "Z-9"), ("kind", "zk-tcp"), ("ip", "10.0.0.1"), ("settings", "{oops")],
            "not JSON",
        ),
        (
            "settings",
            vec![("serial", "Z-9"), ("kind", "zk-tcp"), ("ip", "10.0.0.1"), ("settings", r#"{"colour": 1}"#)],
            "unknown key",
        ),
        (
            "settings",
            vec![
                ("serial", "M-9"),
                ("kind", "modbus"),
                ("settings", r#"{"address": "10.0.0.9:502", "counter_register": 0, "ring_start": 1, "ring_slots": 3}"#),
            ],
            "ring_slots",
        ),
        (
            "time_zone",
            vec![("serial", "Z-9"), ("kind", "zk-tcp"), ("ip", "10.0.0.1"), ("time_zone", "Mars/Base")],
            "zone",
        ),
        ("kind", vec![("serial", "Z-9"), ("kind", "telex")], "kind"),
        ("serial", vec![("serial", "Z-TCP"), ("kind", "zk-tcp"), ("ip", "10.0.0.1")], "a serial already registered"),
    ];
    for (field, fields, what) in cases {
        let mut all: Vec<(&str, &str)> =
            base.iter().filter(|(k, _)| !fields.iter().any(|(f, _)| f == k)).copied().collect();
        all.extend(fields);
        let answer = admin.post("/devices/new", &all).await;
        refused_at(&answer, field, what);
        if what == "unknown key" || what == "ring_slots" {
            let named = if what == "unknown key" { "settings.colour" } else { "settings.ring_slots" };
            assert!(answer.body.contains(named), "{what}: names the key: {}", answer.body);
        }
    }
    assert!(rig.fixture.store.managed_device("Z-9").await.unwrap().is_none(), "nothing refused was stored");
    let sneak = [("serial", "Z-8"), ("site_id", "A"), ("name", "X"), ("kind", "zk-tcp"), ("ip", "10.0.0.1")];
    assert_eq!(other.post("/devices/new", &sneak).await.status, StatusCode::NOT_FOUND, "another site's admin");
    assert_eq!(viewer.post("/devices/new", &sneak).await.status, StatusCode::FORBIDDEN, "a viewer");

    // Editing: the masked secret is kept, a new poll interval applied; bad values refused next to their field.
    let form = admin.get("/devices/Z-TCP/edit").await;
    assert_eq!(form.status, StatusCode::OK);
    let edit = |settings: &'static str, ip: &'static str| {
        vec![
            ("name", "Main gate"),
            ("kind", "zk-tcp"),
            ("ip", ip),
            ("port", "4370"),
            ("time_zone", "Asia/Kolkata"),
            ("direction", "IN"),
            ("status", "active"),
            ("agent_id", ""),
            ("settings", settings),
        ]
    };
    let version = rig.site_version().await.unwrap();
    let saved = admin
        .post("/devices/Z-TCP/edit", &edit(r#"{"poll_interval_secs": 45, "comm_key": "********"}"#, "10.0.0.50"))
        .await;
    redirected_to(&saved, "/devices/Z-TCP", "edit");
    let stored = rig.fixture.store.managed_device("Z-TCP").await.unwrap().unwrap();
    assert_eq!(stored.record.device.name, "Main gate");
    assert_eq!(stored.record.device.ip.as_deref(), Some("10.0.0.50"));
    assert!(stored.settings_json.contains("1234") && stored.settings_json.contains("45"), "{}", stored.settings_json);
    assert_eq!(rig.site_version().await.unwrap(), version + 1);
    refused_at(
        &admin.post("/devices/Z-TCP/edit", &edit(r#"{"poll_interval_secs": "often"}"#, "10.0.0.50")).await,
        "settings",
        "edit settings",
    );
    refused_at(&admin.post("/devices/Z-TCP/edit", &edit("", "")).await, "ip", "edit without ip");
    assert_eq!(rig.site_version().await.unwrap(), version + 1, "refused edits change nothing");
    assert_eq!(viewer.post("/devices/Z-TCP/edit", &edit("", "10.0.0.50")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(other.post("/devices/Z-TCP/edit", &edit("", "10.0.0.50")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(other.get("/devices/Z-TCP").await.status, StatusCode::NOT_FOUND);
    assert_eq!(viewer.get("/devices/Z-TCP").await.status, StatusCode::OK, "a viewer reads the device page");
    assert!(!viewer.get("/devices/Z-TCP").await.body.contains("data-testid=\"delete-device\""));

    // Removing.
    assert_eq!(viewer.post("/devices/S-1/delete", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(other.post("/devices/S-1/delete", &[]).await.status, StatusCode::NOT_FOUND);
    redirected_to(&admin.post("/devices/S-1/delete", &[]).await, "/devices", "delete");
    assert_eq!(admin.get("/devices/S-1").await.status, StatusCode::NOT_FOUND);
    assert!(rig.fixture.store.managed_device("S-1").await.unwrap().is_none());
    rig.cleanup().await;
}

async fn commands_are_sent_from_the_pages(backend: Backend) {
    let rig = FleetRig::new(backend, Transport::Https).await.expect("central");
    let (admin, viewer, other) = (
        Web::login(&rig.fixture, "adminA").await,
        Web::login(&rig.fixture, "viewerA").await,
        Web::login(&rig.fixture, "adminB").await,
    );
    for (serial, kind, ip) in [("Z-1", "zk-tcp", "10.0.0.5"), ("P-1", "adms", "")] {
        let fields = [("serial", serial), ("site_id", "A"), ("name", serial), ("kind", kind), ("ip", ip)];
        redirected_to(&admin.post("/devices/new", &fields).await, &format!("/devices/{serial}"), serial);
    }
    let page = admin.get("/devices/Z-1").await;
    assert!(page.body.contains("data-testid=\"command-form-device-Z-1\""), "{}", page.body);
    assert!(page.body.contains("value=\"clear_log\"") && !page.body.contains("value=\"push_info\""), "actions for zk");
    assert!(page.body.contains("data-testid=\"no-commands\""));
    let page = admin.get("/devices/P-1").await;
    assert!(
        page.body.contains("value=\"push_info\"") && !page.body.contains("value=\"clear_log\""),
        "actions for push"
    );
    assert!(!viewer.get("/devices/Z-1").await.body.contains("command-form"), "no form for a viewer");

    // One device, from its page.
    let sent = admin.post("/commands", &[("back", "/devices/Z-1"), ("device", "Z-1"), ("action", "pull_now")]).await;
    redirected_to(&sent, "/devices/Z-1", "pull_now");
    let page = admin.get("/devices/Z-1").await;
    assert!(page.body.contains("data-state=\"pending\"") && page.body.contains("pull_now"), "{}", page.body);

    // Every device of the site, from /commands: the fan-out is in the history.
    let page = admin.get("/commands").await;
    assert!(page.body.contains("data-testid=\"command-form-site-A\"") && !page.body.contains("command-form-site-B"));
    let sent =
        admin.post("/commands", &[("back", "/commands?site=A"), ("site_id", "A"), ("action", "sync_clock")]).await;
    redirected_to(&sent, "/commands?site=A", "site-wide");
    let page = viewer.get("/commands?site=A").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body.matches("<tr data-command=").count(), 3, "pull_now, and sync_clock for Z-1 and P-1");
    assert!(!page.body.contains("command-form"), "a viewer sees the history, not the form");
    let push =
        admin.post("/commands", &[("device", "P-1"), ("action", "push_set_time"), ("time", "2026-03-04T05:06")]).await;
    redirected_to(&push, "/commands", "push_set_time");
    let expired =
        admin.post("/commands", &[("device", "Z-1"), ("action", "sync_clock"), ("expires_in_secs", "1")]).await;
    redirected_to(&expired, "/commands", "expiring");
    wait_until("the undelivered command expires", Duration::from_secs(10), async || {
        admin.get("/devices/Z-1").await.body.contains("data-state=\"expired\"")
    })
    .await;

    // Refusals name the field; a viewer and another site's admin send nothing.
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("device", "Z-1"), ("action", "reread"), ("since", "yesterday")], "since"),
        (&[("device", "Z-1"), ("action", "push_info")], "action"),
        (&[("device", "P-1"), ("action", "push_set_time"), ("time", "soon")], "time"),
        (&[("device", "P-1"), ("action", "push_set_time")], "time"),
        (&[("device", "Z-1"), ("action", "sync_clock"), ("expires_in_secs", "-3")], "expires_in_secs"),
    ];
    for (fields, field) in cases {
        let answer = admin.post("/commands", fields).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{fields:?}: {}", answer.body);
        assert!(answer.body.contains(&format!("Please correct {field}:")), "{fields:?} names {field}: {}", answer.body);
    }
    assert_eq!(
        viewer.post("/commands", &[("device", "Z-1"), ("action", "pull_now")]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        other.post("/commands", &[("device", "Z-1"), ("action", "pull_now")]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other.post("/commands", &[("site_id", "A"), ("action", "pull_now")]).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(other.get("/commands?site=A").await.status, StatusCode::NOT_FOUND);
    assert!(!other.get("/commands").await.body.contains("data-command="), "another site's admin sees none");
    let total = rig.fixture.db.scalar("SELECT count(*) FROM agent_commands").await.unwrap();
    assert_eq!(total, 5, "only the accepted commands were stored");
    rig.cleanup().await;
}

async fn alert_rules(backend: Backend) {
    let rig = FleetRig::new(backend, Transport::Https).await.expect("central");
    let (admin, viewer, other) = (
        Web::login(&rig.fixture, "adminA").await,
        Web::login(&rig.fixture, "viewerA").await,
        Web::login(&rig.fixture, "adminB").await,
    );
    assert!(admin.get("/alerts").await.body.contains("data-testid=\"new-rule\""));
    assert!(!viewer.get("/alerts").await.body.contains("data-testid=\"new-rule\""));
    assert_eq!(viewer.get("/alerts/rules/new").await.status, StatusCode::FORBIDDEN);

    let rule = |kind: &'static str, threshold: &'static str, email: &'static str, webhook: &'static str| {
        vec![
            ("site_id", "A"),
            ("kind", kind),
            ("for_minutes", "5"),
            ("threshold", threshold),
            ("buffer_limit", ""),
            ("webhook_url", webhook),
            ("webhook_secret", ""),
            ("email_to", email),
            ("max_per_hour", ""),
            ("enabled", "on"),
        ]
    };
    let added = admin.post("/alerts/rules/new", &rule("device_unreachable", "", "ops@example.com", "")).await;
    redirected_to(&added, "/alerts", "add");
    let id = rig.fixture.db.scalar("SELECT max(id) FROM alert_rules").await.unwrap();
    let page = admin.get("/alerts").await;
    assert!(page.body.contains(&format!("data-testid=\"edit-rule-{id}\"")), "{}", page.body);
    assert!(!viewer.get("/alerts").await.body.contains("edit-rule-"), "a viewer gets no edit link");

    // A webhook without a secret gets one, shown once.
    let hooked = admin.post("/alerts/rules/new", &rule("dead_letters", "", "", "https://hooks.example.com/x")).await;
    assert_eq!(hooked.status, StatusCode::OK, "{}", hooked.body);
    assert!(hooked.body.contains("data-testid=\"webhook-secret\""), "{}", hooked.body);

    let cases = [
        (rule("clock_drift", "", "ops@example.com", ""), "threshold"),
        (rule("device_unreachable", "", "", "ftp://x"), "webhook_url"),
        (rule("device_unreachable", "", "not an address", ""), "email_to"),
        (rule("device_unreachable", "", "", ""), "webhook_url"),
        (rule("device_unreachable", "lots", "ops@example.com", ""), "threshold"),
        (rule("sunspots", "", "ops@example.com", ""), "kind"),
    ];
    for (fields, field) in &cases {
        refused_at(&admin.post("/alerts/rules/new", fields).await, field, field);
    }
    let rules = rig.fixture.db.scalar("SELECT count(*) FROM alert_rules").await.unwrap();
    assert_eq!(rules, 2, "refused rules are not stored");
    assert_eq!(
        other.post("/alerts/rules/new", &rule("device_unreachable", "", "a@b.c", "")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        viewer.post("/alerts/rules/new", &rule("device_unreachable", "", "a@b.c", "")).await.status,
        StatusCode::FORBIDDEN
    );

    // Editing and removing.
    let path = format!("/alerts/rules/{id}/edit");
    assert_eq!(admin.get(&path).await.status, StatusCode::OK);
    assert_eq!(other.get(&path).await.status, StatusCode::NOT_FOUND);
    let change = [("for_minutes", "12.5"), ("email_to", "ops@example.com, night@example.com"), ("max_per_hour", "3")];
    redirected_to(&admin.post(&path, &change).await, "/alerts", "edit");
    let (status, shown) =
        rig.call(reqwest::Method::GET, &format!("/api/v1/alert-rules/{id}"), &rig.admin_a, None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!((shown["for_minutes"].as_f64(), shown["max_per_hour"].as_i64()), (Some(12.5), Some(3)), "{shown}");
    assert_eq!(shown["enabled"], false, "the unticked box disables the rule");
    assert_eq!(shown["email_to"].as_array().map(Vec::len), Some(2), "{shown}");
    refused_at(
        &admin.post(&path, &[("for_minutes", "-1"), ("email_to", "ops@example.com")]).await,
        "for_minutes",
        "edit",
    );
    refused_at(
        &admin.post(&path, &[("buffer_limit", "10"), ("email_to", "ops@example.com")]).await,
        "buffer_limit",
        "edit",
    );
    assert_eq!(viewer.post(&path, &change).await.status, StatusCode::FORBIDDEN);
    assert_eq!(other.post(&format!("/alerts/rules/{id}/delete"), &[]).await.status, StatusCode::NOT_FOUND);
    redirected_to(&admin.post(&format!("/alerts/rules/{id}/delete"), &[]).await, "/alerts", "delete");
    assert_eq!(admin.get(&path).await.status, StatusCode::NOT_FOUND);
    rig.cleanup().await;
}

async fn added_on_the_dashboard(backend: Backend, transport: Transport) {
    let rig = FleetRig::new(backend, transport).await.expect("central");
    let sim = ZkSim::start(SimConfig { records: 40, ..SimConfig::default() }).await.expect("zk-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut agent = start_agent(&rig.agent_config(dir.path()).expect("config")).await.expect("agent");
    wait_until("the agent reports its configuration version", Duration::from_secs(20), async || {
        rig.reported_version().await.unwrap().is_some()
    })
    .await;
    let admin = Web::login(&rig.fixture, "adminA").await;
    let serial = sim.config().serial.clone();
    let port = sim.tcp_addr().port().to_string();
    let fields = [
        ("serial", serial.as_str()),
        ("site_id", "A"),
        ("name", "Gate"),
        ("kind", "zk-tcp"),
        ("ip", "127.0.0.1"),
        ("port", port.as_str()),
        ("time_zone", "Asia/Kolkata"),
        ("settings", r#"{"poll_interval_secs": 300}"#),
    ];
    let added = Instant::now();
    redirected_to(&admin.post("/devices/new", &fields).await, &format!("/devices/{serial}"), "add");
    let want = sim.records().len() as i64;
    wait_until("the device's log in AllLogs", Duration::from_secs(15), async || {
        rig.logs_of(&serial).await.unwrap() == want
    })
    .await;
    println!(
        "{transport:?} ({backend:?}): device added on the dashboard -> its {want} records in AllLogs in {:?}",
        added.elapsed()
    );

    // A pull from the device's page brings a punch the terminal stored without an event, and shows `done`.
    sim.add_records_silently(1);
    let path = format!("/devices/{serial}");
    redirected_to(
        &admin.post("/commands", &[("back", &path), ("device", &serial), ("action", "pull_now")]).await,
        &path,
        "pull",
    );
    wait_until("the pull shown done on the device page", Duration::from_secs(20), async || {
        admin.get(&path).await.body.contains("data-state=\"done\"")
    })
    .await;
    assert_eq!(rig.logs_of(&serial).await.unwrap(), want + 1);

    // Removed on the dashboard: the agent runs the new version without the device and stops reading it.
    redirected_to(&admin.post(&format!("{path}/delete"), &[]).await, "/devices", "remove");
    let version = rig.site_version().await.unwrap();
    wait_until("the agent runs the version without the device", Duration::from_secs(15), async || {
        rig.reported_version().await.unwrap() == Some(version)
    })
    .await;
    // A realtime punch would arrive within a second while the device is read; now it stays on the terminal.
    let sessions = sim.counters().sessions;
    sim.punch_now().expect("a punch");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rig.logs_of(&serial).await.unwrap(), want + 1, "nothing read after the removal; earlier punches stay");
    assert_eq!(sim.counters().sessions, sessions, "no new session with a removed device");
    agent.kill().await.expect("stop the agent");
    rig.cleanup().await;
}

//! Central's device list drives managed agents (issue 17), through the real binaries on both backends and both
//! transports (HTTPS long poll; MQTT through the Mosquitto at `TEST_MQTT_ADDR`): a ZKTeco terminal added through the API is polled by the running agent within seconds (no restart),
//! its whole log reaches AllLogs, the agent reports the configuration version it runs, a change is applied in place
//! and a removal stops the polling; the agent restarted while central is down runs on the configuration it stored.
//! The device endpoints are scoped (another site's admin: 404, a viewer: 403) and refuse bad settings naming the
//! field, with the agent's own checks.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use system_tests::central::Backend;
use system_tests::fleet::{start_agent, wait_until, FleetRig, Transport};
use system_tests::zk_sim::{SimConfig, ZkSim};

mod https {
    use super::*;
    system_tests::on_both_backends!(device_added_in_central_is_polled_without_restart);

    async fn device_added_in_central_is_polled_without_restart(backend: Backend) {
        super::scenario(backend, Transport::Https).await;
    }
}

mod mqtt {
    use super::*;
    system_tests::on_both_backends!(device_added_in_central_is_polled_without_restart);

    async fn device_added_in_central_is_polled_without_restart(backend: Backend) {
        super::scenario(backend, Transport::Mqtt).await;
    }
}

system_tests::on_both_backends!(device_endpoints_are_scoped_and_checked);

async fn scenario(backend: Backend, transport: Transport) {
    let mut rig = FleetRig::new(backend, transport).await.expect("central");
    let sim = ZkSim::start(SimConfig { records: 60, ..SimConfig::default() }).await.expect("zk-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = rig.agent_config(dir.path()).expect("agent config");
    let agent = start_agent(&config).await.expect("agent");

    // The agent starts with no configuration and says so (version 0) before any device exists.
    wait_until("the agent reports its configuration version", Duration::from_secs(20), async || {
        rig.reported_version().await.unwrap().is_some()
    })
    .await;
    assert_eq!(sim.counters().sessions, 0, "no device is configured yet");

    let body = json!({"serial": sim.config().serial, "site_id": "A", "name": "Main gate", "kind": "zk-tcp",
        "ip": "127.0.0.1", "port": sim.tcp_addr().port(), "settings": {"poll_interval_secs": 2}});
    let added = std::time::Instant::now();
    let (status, created) = rig.call(Method::POST, "/api/v1/devices", &rig.admin_a, Some(body)).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let version = created["config_version"].as_i64().expect("config_version");
    assert_eq!(version, rig.site_version().await.unwrap());

    let want = sim.records().len() as i64;
    wait_until("the new device's log in AllLogs", Duration::from_secs(15), async || {
        rig.fixture.db.all_logs().await == want
    })
    .await;
    let took = added.elapsed();
    println!("{transport:?} ({backend:?}): device added through the API -> its {want} records in AllLogs in {took:?}");
    wait_until("the agent reports the new version", Duration::from_secs(10), async || {
        rig.reported_version().await.unwrap() == Some(version)
    })
    .await;

    // A change (the name, a new poll interval) is a new version, applied in place: the agent keeps running.
    let change = json!({"name": "Main gate (east)", "kind": "zk-tcp", "ip": "127.0.0.1",
        "port": sim.tcp_addr().port(), "settings": {"poll_interval_secs": 3}});
    let serial = sim.config().serial.clone();
    let (status, body) =
        rig.call(Method::PUT, &format!("/api/v1/devices/{serial}"), &rig.admin_a, Some(change)).await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let changed = rig.site_version().await.unwrap();
    assert!(changed > version);
    wait_until("the agent runs the changed configuration", Duration::from_secs(10), async || {
        rig.reported_version().await.unwrap() == Some(changed)
    })
    .await;
    let (_, shown) = rig.call(Method::GET, &format!("/api/v1/devices/{serial}"), &rig.viewer_a, None).await.unwrap();
    assert_eq!(shown["settings"]["poll_interval_secs"], 3, "{shown}");

    // A realtime punch still arrives after the change.
    sim.punch_now().expect("a punch");
    wait_until("a punch after the change", Duration::from_secs(15), async || {
        rig.fixture.db.all_logs().await == want + 1
    })
    .await;

    // Central down: the restarted agent runs on the configuration it stored and polls the device.
    drop(agent);
    let sessions = sim.counters().sessions;
    rig.fixture.central.process.kill().await.expect("stop central");
    let restarted = start_agent(&config).await.expect("agent restarted");
    wait_until("the restarted agent polls from its stored configuration", Duration::from_secs(15), async || {
        sim.counters().sessions > sessions
    })
    .await;
    drop(restarted);
    let stored = std::fs::read_to_string(dir.path().join("data/managed-config.json")).expect("stored configuration");
    assert!(stored.contains(&serial) && stored.contains(&format!("\"config_version\":{changed}")), "{stored}");
    rig.cleanup().await;
}

async fn device_endpoints_are_scoped_and_checked(backend: Backend) {
    let rig = FleetRig::new(backend, Transport::Https).await.expect("central");
    let device = json!({"serial": "GATE-7", "site_id": "A", "name": "Gate 7", "kind": "zk-udp", "ip": "10.1.2.3",
        "settings": {"comm_key": 1234}});
    // Another site's admin does not see site A; a viewer may not change it.
    let (status, _) = rig.call(Method::POST, "/api/v1/devices", &rig.admin_b, Some(device.clone())).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = rig.call(Method::POST, "/api/v1/devices", &rig.viewer_a, Some(device.clone())).await.unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = rig.call(Method::POST, "/api/v1/devices", &rig.admin_a, Some(device.clone())).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["settings"]["comm_key"], "********", "secrets are not shown: {body}");

    for (who, expected) in [(&rig.admin_b, StatusCode::NOT_FOUND), (&rig.viewer_a, StatusCode::OK)] {
        let (status, _) = rig.call(Method::GET, "/api/v1/devices/GATE-7", who, None).await.unwrap();
        assert_eq!(status, expected);
    }
    let change = json!({"name": "Gate 7", "kind": "zk-udp", "ip": "10.1.2.3"});
    for (who, expected) in [(&rig.admin_b, StatusCode::NOT_FOUND), (&rig.viewer_a, StatusCode::FORBIDDEN)] {
        let (status, _) = rig.call(Method::PUT, "/api/v1/devices/GATE-7", who, Some(change.clone())).await.unwrap();
        assert_eq!(status, expected);
        let (status, _) = rig.call(Method::DELETE, "/api/v1/devices/GATE-7", who, None).await.unwrap();
        assert_eq!(status, expected);
    }

    // The agent's own checks, refusals named by the API's fields.
    let refused = [
        (
            json!({"serial": "S-1", "site_id": "A", "name": "Line", "kind": "serial", "settings": {"baud_rate": 9600}}),
            "settings",
        ),
        (
            json!({"serial": "M-1", "site_id": "A", "name": "PLC", "kind": "modbus", "settings": {"address":
            "10.0.0.9:502", "counter_register": 0, "ring_start": 10, "ring_slots": 3}}),
            "settings.ring_slots",
        ),
        (json!({"serial": "Z-1", "site_id": "A", "name": "Z", "kind": "zk-tcp"}), "ip"),
        (
            json!({"serial": "Z-2", "site_id": "A", "name": "Z", "kind": "zk-tcp", "ip": "10.0.0.1",
            "settings": {"colour": "red"}}),
            "settings.colour",
        ),
        (
            json!({"serial": "Z-3", "site_id": "A", "name": "Z", "kind": "zk-tcp", "ip": "10.0.0.1",
            "time_zone": "Mars/Base"}),
            "time_zone",
        ),
        (json!({"serial": "P-1", "site_id": "A", "name": "P", "kind": "adms", "agent_id": "nobody"}), "agent_id"),
        (
            json!({"serial": "H-1", "site_id": "A", "name": "H", "kind": "hikvision",
            "settings": {"url": "http://10.0.0.7", "user": "admin"}}),
            "settings",
        ),
    ];
    for (body, field) in refused {
        let (status, answer) =
            rig.call(Method::POST, "/api/v1/devices", &rig.admin_a, Some(body.clone())).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{body}: the refusal names {field}: {message}");
    }
    // A change that breaks the settings is refused the same way and changes nothing.
    let version = rig.site_version().await.unwrap();
    let bad =
        json!({"name": "Gate 7", "kind": "zk-udp", "ip": "10.1.2.3", "settings": {"poll_interval_secs": "often"}});
    let (status, answer) = rig.call(Method::PUT, "/api/v1/devices/GATE-7", &rig.admin_a, Some(bad)).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(rig.site_version().await.unwrap(), version);
    // The masked secret sent back keeps the stored one.
    let keep = json!({"name": "Gate 7b", "kind": "zk-udp", "ip": "10.1.2.3", "settings": {"comm_key": "********"}});
    let (status, _) = rig.call(Method::PUT, "/api/v1/devices/GATE-7", &rig.admin_a, Some(keep)).await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stored = rig.fixture.store.managed_device("GATE-7").await.unwrap().unwrap();
    assert!(stored.settings_json.contains("1234"), "{}", stored.settings_json);

    let (status, _) = rig.call(Method::DELETE, "/api/v1/devices/GATE-7", &rig.admin_a, None).await.unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = rig.call(Method::GET, "/api/v1/devices/GATE-7", &rig.root, None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(rig.site_version().await.unwrap() > version);
    rig.cleanup().await;
}

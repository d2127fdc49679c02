//! A device that stops answering raises its alert, and clears it when it returns, through the real binaries on both
//! backends and both transports: zk-sim -> a managed `edge-agent run` (the device added through central's API; status
//! every second, over HTTPS or through Mosquitto) -> `central-api serve` (alerts evaluated every 300 ms) -> a signed
//! webhook to an HTTP server the test runs and an e-mail to aiosmtpd. The time from the device going away (and
//! coming back) to each notification is printed.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::Auth;
use system_tests::alert_sinks::{signature_ok, SmtpSink, WebhookSink};
use system_tests::central::Backend;
use system_tests::fleet::{start_agent, FleetRig, Transport};
use system_tests::zk_sim::{SimConfig, ZkSim};

mod https {
    use super::*;
    system_tests::on_both_backends!(unreachable_device_alert_raised_and_cleared);

    async fn unreachable_device_alert_raised_and_cleared(backend: Backend) {
        super::scenario(backend, Transport::Https).await;
    }
}

mod mqtt {
    use super::*;
    system_tests::on_both_backends!(unreachable_device_alert_raised_and_cleared);

    async fn unreachable_device_alert_raised_and_cleared(backend: Backend) {
        super::scenario(backend, Transport::Mqtt).await;
    }
}

const WAIT: Duration = Duration::from_secs(30);

fn sim_config(serial: &str) -> SimConfig {
    SimConfig { serial: serial.to_owned(), records: 5, users: 3, ..SimConfig::default() }
}

async fn call(rig: &FleetRig, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> (StatusCode, Value) {
    rig.call(method, path, auth, body).await.unwrap()
}

async fn device_reachable(rig: &FleetRig, serial: &str) -> Option<bool> {
    let (_, devices) = call(rig, Method::GET, "/api/v1/inventory/devices", &rig.root, None).await;
    devices.as_array()?.iter().find(|d| d["serial"] == serial)?["reachable"].as_bool()
}

async fn scenario(backend: Backend, transport: Transport) {
    let hooks = WebhookSink::start().await.unwrap();
    let smtp = SmtpSink::start().await.unwrap();
    let mut env = smtp.central_env();
    env.push(("CENTRAL_API_ALERTS__INTERVAL_MS".into(), "300".into()));
    let rig = FleetRig::with_env(backend, transport, env).await.unwrap();
    // Unique per test: the serial is the subject of the alert and its history.
    let serial = format!("ZK-ALERT-{:06x}", rand::random::<u32>() >> 8);

    let sim = ZkSim::start(sim_config(&serial)).await.unwrap();
    let addr = sim.tcp_addr();
    let dir = tempfile::tempdir().unwrap();
    let config = rig.agent_config(dir.path()).unwrap();
    let agent = start_agent(&config).await.unwrap();
    let body = json!({"serial": serial, "site_id": "A", "name": "Main gate", "kind": "zk-tcp", "ip": "127.0.0.1",
        "port": addr.port(), "settings": {"poll_interval_secs": 1}});
    let (s, created) = call(&rig, Method::POST, "/api/v1/devices", &rig.admin_a, Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let start = Instant::now();
    while device_reachable(&rig, &serial).await != Some(true) {
        assert!(start.elapsed() < WAIT, "the device never showed as reachable at central");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, devices) = call(&rig, Method::GET, "/api/v1/inventory/devices", &rig.root, None).await;
    let inventory = devices.as_array().unwrap().iter().find(|d| d["serial"] == serial).unwrap().clone();
    assert_eq!((&inventory["records"]["count"], &inventory["users"]["count"]), (&json!(5), &json!(3)), "{inventory}");
    assert_eq!((&inventory["kind"], &inventory["agent_id"]), (&json!("zk-tcp"), &json!(rig.agent)), "{inventory}");
    // What the terminal says it is, read by the ZKTeco poller.
    let told = sim.config();
    assert_eq!(
        (&inventory["model"], &inventory["firmware"], &inventory["platform"]),
        (&json!(told.device_name), &json!(told.firmware), &json!(told.platform)),
        "{inventory}"
    );

    let (s, rule) = call(
        &rig,
        Method::POST,
        "/api/v1/alert-rules",
        &rig.admin_a,
        Some(json!({"site_id": "A", "kind": "device_unreachable", "for_minutes": 0,
            "webhook_url": hooks.url(), "email_to": ["gatekeeper@plant-a.test"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let secret = rule["webhook_secret"].as_str().unwrap().to_owned();
    let subject = format!("device:{serial}");

    // The device goes away.
    sim.stop();
    drop(sim);
    let gone = Instant::now();
    let raised = hooks.wait_for("raised", WAIT, |b| b["event"] == "raised" && b["subject"] == subject).await.unwrap();
    let raised_after = gone.elapsed();
    assert!(signature_ok(&raised, &secret));
    let mail = smtp.wait_for("RAISED device_unreachable", WAIT).await.unwrap();
    let mailed_after = gone.elapsed();
    assert_eq!(mail.to, vec!["gatekeeper@plant-a.test".to_owned()]);
    assert!(mail.data.contains(&serial), "{}", mail.data);
    assert_eq!(device_reachable(&rig, &serial).await, Some(false));

    // It comes back on the same address.
    let back = Instant::now();
    let sim = ZkSim::start_on(sim_config(&serial), addr).await.unwrap();
    hooks.wait_for("cleared", WAIT, |b| b["event"] == "cleared" && b["subject"] == subject).await.unwrap();
    let cleared_after = back.elapsed();
    smtp.wait_for("CLEARED device_unreachable", WAIT).await.unwrap();
    let cleared_mail_after = back.elapsed();
    println!(
        "{transport:?} ({backend:?}): device gone -> webhook {raised_after:?}, e-mail {mailed_after:?}; device back \
         -> webhook {cleared_after:?}, e-mail {cleared_mail_after:?}"
    );

    // The history tells the same story, and only one raise and one clear were sent.
    let path = format!("/api/v1/status-history?device={serial}");
    let (_, history) = call(&rig, Method::GET, &path, &rig.root, None).await;
    let mut reachability: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["change"].as_str())
        .filter(|c| matches!(*c, "reachable" | "unreachable"))
        .collect();
    reachability.reverse();
    assert!(reachability.ends_with(&["reachable", "unreachable", "reachable"]), "{reachability:?}");
    let (_, events) = call(&rig, Method::GET, "/api/v1/alert-events", &rig.root, None).await;
    let kinds: Vec<&str> = events.as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, vec!["cleared", "raised"]);
    // The other site's admin sees neither the device's history nor the alert events.
    let (_, theirs) = call(&rig, Method::GET, &path, &rig.admin_b, None).await;
    assert_eq!(theirs.as_array().map(Vec::len), Some(0), "{theirs}");
    let (_, theirs) = call(&rig, Method::GET, "/api/v1/alert-events", &rig.admin_b, None).await;
    assert_eq!(theirs.as_array().map(Vec::len), Some(0), "{theirs}");
    drop(agent);
    drop(sim);
    rig.cleanup().await;
}

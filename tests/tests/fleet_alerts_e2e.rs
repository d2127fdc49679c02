//! A device that stops answering raises its alert, and clears it when it returns, through the real binaries:
//! zk-sim -> `edge-agent run` (status every second) -> `central-api serve` (alerts evaluated every 300 ms) -> a
//! signed webhook to an HTTP server the test runs and an e-mail to aiosmtpd. On SQLite and PostgreSQL. The time from
//! the device going away (and coming back) to each notification is printed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{AdminFixture, Auth};
use system_tests::alert_sinks::{signature_ok, SmtpSink, WebhookSink};
use system_tests::central::Backend;
use system_tests::on_both_backends;
use system_tests::pipeline::start_agent;
use system_tests::zk_sim::{SimConfig, ZkSim};

on_both_backends!(unreachable_device_alert_raised_and_cleared);

const SERIAL: &str = "ZK-ALERT-1";
const WAIT: Duration = Duration::from_secs(30);

fn sim_config() -> SimConfig {
    SimConfig { serial: SERIAL.to_owned(), records: 5, users: 3, ..SimConfig::default() }
}

fn write_config(dir: &Path, central_url: &str, token: &str, sim: &ZkSim) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nid = \"gate-1\"\nsite = \"plant-1\"\ndata_dir = \"{}\"\n\n\
             [central]\ntransport = \"https\"\nurl = \"{central_url}\"\ntoken = \"{token}\"\n\n\
             [forward]\nlinger_ms = 20\ninitial_backoff_ms = 50\nmax_backoff_secs = 1\n\n\
             [status]\ninterval_secs = 1\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
             [[device]]\nkind = \"zk\"\nserial = \"{SERIAL}\"\ntime_zone = \"Asia/Kolkata\"\nhost = \"127.0.0.1\"\n\
             port = {}\npoll_interval_secs = 1\n",
            dir.join("data").display(),
            sim.tcp_addr().port()
        ),
    )
    .unwrap();
    path
}

async fn call(f: &AdminFixture, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> (StatusCode, Value) {
    f.call(method, path, auth, body).await.unwrap()
}

async fn device_reachable(f: &AdminFixture, auth: &Auth) -> Option<bool> {
    let (_, devices) = call(f, Method::GET, "/api/v1/inventory/devices", auth, None).await;
    devices.as_array()?.iter().find(|d| d["serial"] == SERIAL)?["reachable"].as_bool()
}

async fn unreachable_device_alert_raised_and_cleared(backend: Backend) {
    let hooks = WebhookSink::start().await.unwrap();
    let smtp = SmtpSink::start().await.unwrap();
    let mut env = smtp.central_env();
    env.push(("CENTRAL_API_ALERTS__INTERVAL_MS".into(), "300".into()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let f = AdminFixture::blank(backend, &env_refs).await.unwrap();
    let root = f.token("root").await.unwrap();
    let (s, _) = call(
        &f,
        Method::POST,
        "/api/v1/sites",
        &root,
        Some(json!({"site_id": "plant-1", "name": "Plant 1", "time_zone": "Asia/Kolkata"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, created) =
        call(&f, Method::POST, "/api/v1/agents", &root, Some(json!({"agent_id": "gate-1", "site_id": "plant-1"})))
            .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = created["token"].as_str().unwrap().to_owned();
    let (s, _) = call(
        &f,
        Method::POST,
        "/api/v1/devices",
        &root,
        Some(json!({"serial": SERIAL, "site_id": "plant-1", "name": "Main gate", "kind": "zk-tcp", "ip": "127.0.0.1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    let sim = ZkSim::start(sim_config()).await.unwrap();
    let addr = sim.tcp_addr();
    let dir = tempfile::tempdir().unwrap();
    let _agent = start_agent(&write_config(dir.path(), &f.central.url, &token, &sim)).await.unwrap();
    let start = Instant::now();
    while device_reachable(&f, &root).await != Some(true) {
        assert!(start.elapsed() < WAIT, "the device never showed as reachable at central");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, devices) = call(&f, Method::GET, "/api/v1/inventory/devices", &root, None).await;
    let inventory = devices.as_array().unwrap().iter().find(|d| d["serial"] == SERIAL).unwrap().clone();
    assert_eq!((&inventory["records"]["count"], &inventory["users"]["count"]), (&json!(5), &json!(3)), "{inventory}");
    assert_eq!((&inventory["kind"], &inventory["agent_id"]), (&json!("zk-tcp"), &json!("gate-1")), "{inventory}");
    // What the terminal says it is, read by the ZKTeco poller.
    let told = sim.config();
    assert_eq!(
        (&inventory["model"], &inventory["firmware"], &inventory["platform"]),
        (&json!(told.device_name), &json!(told.firmware), &json!(told.platform)),
        "{inventory}"
    );

    let (s, rule) = call(
        &f,
        Method::POST,
        "/api/v1/alert-rules",
        &root,
        Some(json!({"site_id": "plant-1", "kind": "device_unreachable", "for_minutes": 0,
            "webhook_url": hooks.url(), "email_to": ["gatekeeper@plant-1.test"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let secret = rule["webhook_secret"].as_str().unwrap().to_owned();

    // The device goes away.
    sim.stop();
    drop(sim);
    let gone = Instant::now();
    let raised = hooks
        .wait_for("raised", WAIT, |b| b["event"] == "raised" && b["subject"] == format!("device:{SERIAL}"))
        .await
        .unwrap();
    let raised_after = gone.elapsed();
    assert!(signature_ok(&raised, &secret));
    let mail = smtp.wait_for("RAISED device_unreachable", WAIT).await.unwrap();
    let mailed_after = gone.elapsed();
    assert_eq!(mail.to, vec!["gatekeeper@plant-1.test".to_owned()]);
    assert!(mail.data.contains(SERIAL), "{}", mail.data);
    assert_eq!(device_reachable(&f, &root).await, Some(false));

    // It comes back on the same address.
    let back = Instant::now();
    let sim = ZkSim::start_on(sim_config(), addr).await.unwrap();
    hooks
        .wait_for("cleared", WAIT, |b| b["event"] == "cleared" && b["subject"] == format!("device:{SERIAL}"))
        .await
        .unwrap();
    let cleared_after = back.elapsed();
    smtp.wait_for("CLEARED device_unreachable", WAIT).await.unwrap();
    let cleared_mail_after = back.elapsed();
    println!(
        "{backend:?}: device gone -> webhook {raised_after:?}, e-mail {mailed_after:?}; device back -> webhook \
         {cleared_after:?}, e-mail {cleared_mail_after:?}"
    );

    // The history tells the same story, and only one raise and one clear were sent.
    let (_, history) = call(&f, Method::GET, &format!("/api/v1/status-history?device={SERIAL}"), &root, None).await;
    let mut reachability: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["change"].as_str())
        .filter(|c| matches!(*c, "reachable" | "unreachable"))
        .collect();
    reachability.reverse();
    assert!(reachability.ends_with(&["reachable", "unreachable", "reachable"]), "{reachability:?}");
    let (_, events) = call(&f, Method::GET, "/api/v1/alert-events", &root, None).await;
    let kinds: Vec<&str> = events.as_array().unwrap().iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds, vec!["cleared", "raised"]);
    drop(sim);
    f.cleanup().await;
}

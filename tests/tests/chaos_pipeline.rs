//! A TCP proxy that cuts and stalls connections at random sits between the real `edge-agent` and the real
//! `central-api` (HTTPS path), or between the agent and the MQTT broker (MQTT path), while simulated terminals
//! produce punches. At the end AllLogs holds exactly the punches the terminals produced.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use system_tests::central::CentralDb;
use system_tests::harness::Spawned;
use system_tests::pipeline::{
    agent_config, assert_all_logs_exact, central_db, free_addr, serve_central, start_agent, Fleet, AGENT,
};
use system_tests::proxy::{ChaosProxy, ProxyMode};
use system_tests::{services, tls};
use tokio_util::sync::CancellationToken;

const TOTAL: usize = 40_000;
const CHAOS: ProxyMode = ProxyMode::Chaos { cut_per_mille: 20, stall_per_mille: 20, max_stall_ms: 3000 };

fn seed() -> u64 {
    let seed = std::env::var("CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("chaos: CHAOS_SEED={seed}");
    seed
}

/// Runs the terminals' production through `proxy` while switching it between chaos, cuts of every connection,
/// stalls and refusals; then lets it pass and checks AllLogs.
async fn produce_through_chaos(fleet: &std::sync::Arc<Fleet>, proxy: &ChaosProxy, db: &CentralDb, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let stop = CancellationToken::new();
    let producer = fleet.produce(TOTAL, Duration::from_millis(50), 25, 2, stop.clone());
    let mut rounds = 0;
    // Random cuts are rare per chunk, so cuts of open connections by `cut_all` count too; keep the chaos on until at
    // least one connection was cut while open.
    let cut_open = |proxy: &ChaosProxy| proxy.cuts() + proxy.forced_cuts();
    while !producer.is_finished() || rounds < 10 || (cut_open(proxy) == 0 && rounds < 40) {
        rounds += 1;
        match rng.random_range(0..4) {
            0 => proxy.cut_all(),
            1 => proxy.set_mode(ProxyMode::Stall),
            2 => proxy.set_mode(ProxyMode::Refuse),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        proxy.set_mode(CHAOS);
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
        eprintln!(
            "chaos: round {rounds}: {} produced, {} in AllLogs, {} connections, {} random cuts, {} forced cuts",
            fleet.produced(),
            db.scalar("SELECT count(*) FROM all_logs").await.unwrap_or(-1),
            proxy.connections(),
            proxy.cuts(),
            proxy.forced_cuts()
        );
        assert!(rounds < 200, "production did not finish");
    }
    producer.await.expect("producer");
    assert_eq!(fleet.produced(), TOTAL);
    let (connections, cuts, forced) = (proxy.connections(), proxy.cuts(), proxy.forced_cuts());
    assert!(cuts + forced > 0, "the chaos cut no open connection ({connections} connections)");
    eprintln!("chaos: {rounds} rounds, {connections} connections through the proxy, {cuts} cut at random, {forced} cut by cut_all");
    proxy.set_mode(ProxyMode::Pass);
    proxy.cut_all();
    let expected = fleet.expected_keys();
    assert_eq!(expected.len(), TOTAL);
    assert_all_logs_exact(db, &expected, Duration::from_secs(120)).await.expect("AllLogs is exact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_path_through_a_chaos_proxy_loses_and_duplicates_nothing() {
    let seed = seed();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = tls::make_pki(dir.path()).expect("test certificates");
    let (db, token) = central_db().await.expect("central database");
    let central_addr = free_addr().expect("port");
    let tls_env = vec![
        ("CENTRAL_API_TLS__CERT_FILE".to_owned(), pki.server_cert.display().to_string()),
        ("CENTRAL_API_TLS__KEY_FILE".to_owned(), pki.server_key.display().to_string()),
    ];
    let _central = serve_central(&db, central_addr, &tls_env).await.expect("central-api over HTTPS");
    let proxy = ChaosProxy::start(central_addr, CHAOS, seed).await.expect("proxy");
    let fleet = Fleet::start(3, 5_000, 40).await.expect("simulators");
    let config = dir.path().join("agent.toml");
    let link = format!(
        "transport = \"https\"\nurl = \"https://127.0.0.1:{}\"\ntoken = \"{token}\"\nca_file = \"{}\"\n\
         request_timeout_secs = 2",
        proxy.addr().port(),
        pki.ca.display()
    );
    std::fs::write(&config, agent_config(&dir.path().join("data"), &link, &fleet)).expect("config");
    let _agent: Spawned = start_agent(&config).await.expect("edge-agent");
    produce_through_chaos(&fleet, &proxy, &db, seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_path_through_a_chaos_proxy_loses_and_duplicates_nothing() {
    let seed = seed();
    let broker = services::require_mqtt();
    let broker_addr = broker.parse().expect("TEST_MQTT_ADDR is host:port with an IP address");
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    let prefix = format!("chaos{:08x}", rand::random::<u32>());
    let (db, token) = central_db().await.expect("central database");
    let mqtt_env: Vec<(String, String)> = [
        ("CENTRAL_API_MQTT__HOST", host),
        ("CENTRAL_API_MQTT__PORT", port),
        ("CENTRAL_API_MQTT__TOPIC_PREFIX", &prefix),
        ("CENTRAL_API_MQTT__GROUP", &prefix),
        ("CENTRAL_API_MQTT__CLIENT_ID", &format!("central-{prefix}")),
        ("CENTRAL_API_MQTT__SESSION_EXPIRY_SECS", "60"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let mut central = serve_central(&db, free_addr().expect("port"), &mqtt_env).await.expect("central-api");
    central.wait_for_line("central-api consuming MQTT", Duration::from_secs(30)).await.expect("subscribed");
    let proxy = ChaosProxy::start(broker_addr, CHAOS, seed).await.expect("proxy");
    let fleet = Fleet::start(3, 5_000, 40).await.expect("simulators");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.toml");
    let link = format!("transport = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{}\"\ntoken = \"{token}\"", proxy.addr().port());
    let text = agent_config(&dir.path().join("data"), &link, &fleet).replace(
        "[buffer]",
        &format!("[mqtt]\ntopic_prefix = \"{prefix}\"\nkeep_alive_secs = 5\nack_timeout_secs = 3\n\n[buffer]"),
    );
    std::fs::write(&config, text).expect("config");
    let _agent: Spawned = start_agent(&config).await.expect("edge-agent");
    assert_eq!(AGENT, "soak-agent");
    produce_through_chaos(&fleet, &proxy, &db, seed).await;
}

//! Kill -9 soak of the whole pipeline: simulated terminals produce 200,000 distinct punches while the real
//! `edge-agent` is killed with SIGKILL at random moments and restarted, and the real `central-api` is killed the same
//! way now and then and restarted on the same SQLite file and address. At the end AllLogs holds exactly the punches
//! the terminals produced: none lost, none twice.
//!
//! `SOAK_CYCLES` sets the number of agent kills (default 20; 200 by hand); `SOAK_SEED` replays a run's random moments.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use system_tests::pipeline::{
    agent_config, assert_all_logs_exact, central_db, free_addr, serve_central, start_agent, Fleet,
};
use tokio_util::sync::CancellationToken;

/// Distinct punches the terminals produce in all (not configurable: the proof is about this many).
const TOTAL: usize = 200_000;
const DEVICES: usize = 4;
/// Records each terminal's log holds before the agent first reads it; the rest is produced while the kills happen.
const PRELOADED: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_punch_is_lost_or_duplicated_when_agent_and_central_are_killed() {
    let cycles: u32 = std::env::var("SOAK_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("SOAK_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("soak: {cycles} cycles, SOAK_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    let (db, token) = central_db().await.expect("central database");
    let central_addr = free_addr().expect("free port");
    let mut central = serve_central(&db, central_addr, &[]).await.expect("central-api");
    let fleet = Fleet::start(DEVICES, PRELOADED, 60).await.expect("simulators");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.toml");
    let link = format!(
        "transport = \"https\"\nurl = \"http://{central_addr}\"\ntoken = \"{token}\"\nrequest_timeout_secs = 10"
    );
    std::fs::write(&config, agent_config(&dir.path().join("data"), &link, &fleet)).expect("agent config");
    let mut agent = start_agent(&config).await.expect("edge-agent");

    // Per 50 ms tick and terminal: 40 records straight into the log and 2 realtime punches.
    let stop = CancellationToken::new();
    let producer = fleet.produce(TOTAL, Duration::from_millis(50), 40, 2, stop.clone());

    let mut central_kills = 0;
    for cycle in 0..cycles {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..2000))).await;
        agent.kill().await.expect("SIGKILL the agent");
        if rng.random_bool(0.3) {
            central.kill().await.expect("SIGKILL central");
            central_kills += 1;
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..500))).await;
            central = serve_central(&db, central_addr, &[]).await.unwrap_or_else(|e| panic!("cycle {cycle}: {e:#}"));
        }
        agent = start_agent(&config).await.unwrap_or_else(|e| panic!("cycle {cycle}: restarting the agent: {e:#}"));
    }
    tokio::time::timeout(Duration::from_secs(120), producer).await.expect("production finished").expect("producer");
    assert_eq!(fleet.produced(), TOTAL, "the terminals produced exactly the planned number of punches");
    let produced_at = started.elapsed();

    let expected = fleet.expected_keys();
    assert_eq!(expected.len(), TOTAL, "every produced punch has its own key");
    assert_all_logs_exact(&db, &expected, Duration::from_secs(120)).await.expect("AllLogs is exact");
    eprintln!(
        "soak: {TOTAL} punches, {cycles} agent kills, {central_kills} central kills; produced in {:.1} s, all stored \
         exactly once after {:.1} s",
        produced_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    agent.kill().await.expect("stop agent");
    central.kill().await.expect("stop central");
}

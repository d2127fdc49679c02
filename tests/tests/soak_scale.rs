//! The scale-out soak with short settings (issue 19; `bench soak` is the long run): 5 sites x 4 terminals through
//! the agent-protocol generator into two central-api replicas on the soak's own PostgreSQL and Mosquitto, with
//! shift-change bursts, while a replica is killed with SIGKILL, Mosquitto and PostgreSQL are restarted and the
//! network to PostgreSQL and to the broker is stalled. At the end AllLogs is exactly the distinct punches generated
//! and every attendance row equals a full reprocess. Also the large factory in small: one real agent with 20
//! terminals, every punch in AllLogs once.
//!
//! Needs PostgreSQL's server binaries and Mosquitto installed (`.ci/test` installs both); the machine's running
//! servers are not used.

use std::time::Duration;

use system_tests::soak::factory::{self, FactorySettings};
use system_tests::soak::faults::FaultSettings;
use system_tests::soak::generator::ForwardSettings;
use system_tests::soak::workload::Load;
use system_tests::soak::world::Shape;
use system_tests::soak::{checks, run, Settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_mid_run_lose_nothing_and_attendance_equals_a_reprocess() {
    let out = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts/soak");
    let shape = Shape { sites: 5, devices: 4, workforce: 100 };
    let settings = Settings {
        shape,
        replicas: 2,
        load: Load {
            duration: Duration::from_secs(50),
            burst: Duration::from_secs(10),
            burst_every: Duration::from_secs(12),
            background_per_site: 2.0,
        },
        forward: ForwardSettings {
            max_batch: 200,
            linger: Duration::from_millis(100),
            ack_timeout: Duration::from_secs(5),
        },
        faults: true,
        fault: FaultSettings { replica_down: Duration::from_secs(2), stall: Duration::from_secs(3) },
        drain_timeout: Duration::from_secs(90),
        out_dir: out,
    };
    let outcome = run(settings).await.expect("the soak ran");
    eprintln!("{}", outcome.report);
    assert_eq!(outcome.unacknowledged, 0, "every generated punch was acknowledged");
    assert_eq!(outcome.attendance_left, 0, "the attendance queue drained");
    let labels: Vec<&str> = outcome.faults.iter().map(|f| f.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "kill -9 replica",
            "restart Mosquitto",
            "restart PostgreSQL",
            "stall replicas-PostgreSQL",
            "stall agents-broker"
        ]
    );
    for mark in &outcome.faults {
        assert!(mark.evidence.is_some(), "the fault {:?} left no trace (no new pid, no connection cut)", mark.label);
    }
    // Five bursts of half the workforce at least, plus the background.
    assert!(outcome.all_logs.generated >= 5 * 5 * 50, "generated {}", outcome.all_logs.generated);
    checks::ensure_exact(&outcome.all_logs, &outcome.attendance).expect("AllLogs exact, attendance = reprocess");
    assert_eq!(outcome.attendance.rows, 2 * shape.sites * shape.workforce, "a row per employee and closed day");
    assert!(outcome.report.contains("latency punch -> AllLogs (every punch): p50"), "{}", outcome.report);
    assert!(outcome.report.contains("restart PostgreSQL         whole again after"), "{}", outcome.report);
    assert!(outcome.report.contains("connections cut or held"), "{}", outcome.report);
    let svg = std::fs::read_to_string(&outcome.plot).expect("the plot was written");
    assert!(svg.starts_with("<svg") && svg.contains("restart PostgreSQL"), "an SVG with the fault marks");
    let figures = std::fs::read_to_string(&outcome.figures).expect("the figures were written");
    assert_eq!(figures, outcome.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_with_many_terminals_delivers_every_punch_once() {
    let settings = FactorySettings {
        terminals: 20,
        rate: 10.0,
        duration: Duration::from_secs(15),
        drain_timeout: Duration::from_secs(60),
    };
    let outcome = factory::run(settings).await.expect("the factory ran");
    eprintln!("{}", outcome.report);
    assert!(outcome.produced >= 100, "punches made: {}", outcome.produced);
    assert_eq!((outcome.missing, outcome.extra), (0, 0), "{}", outcome.report);
    assert_eq!(outcome.stored, outcome.produced);
    assert!(outcome.agent_peak_rss_kib > 0, "the agent's memory was read");
}

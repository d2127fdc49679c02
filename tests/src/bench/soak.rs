//! `bench soak`: the scale-out soak with faults in the middle (issue 19), and the large-factory run.
//!
//! ```text
//! cargo build --release --workspace --bins
//! target/release/bench soak --sites 200 --devices 20 --minutes 10          # the long run, by hand
//! target/release/bench soak --factory --terminals 200 --rate 20 --minutes 3  # one agent, 200 terminals
//! ```
//!
//! The soak (see `system_tests::soak`) starts its own PostgreSQL and Mosquitto, `--replicas` central-api replicas,
//! and one generator speaking for every site's agent; it prints the figures and writes `figures.txt` and `soak.svg`
//! to `--out` (default `target/soak/<UTC time>`), then fails if AllLogs is not exactly the distinct punches
//! generated or an attendance row differs from a full reprocess. The figures come with the load average: this
//! machine is shared, so compare CPU seconds and peak memory rather than wall-clock rates across runs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::Parser;

use super::Bench;
use crate::soak::factory::{self, FactorySettings};
use crate::soak::faults::FaultSettings;
use crate::soak::generator::ForwardSettings;
use crate::soak::workload::Load;
use crate::soak::world::Shape;
use crate::soak::{checks, Settings};

pub const BENCH: Bench = Bench {
    name: "soak",
    about: "N sites x M terminals into 2-3 replicas with faults mid-run; figures + SVG plot (--factory: 1 agent)",
    run,
};

#[derive(Debug, Parser)]
#[command(name = "bench soak")]
struct Args {
    /// Sites, one agent each.
    #[arg(long, default_value_t = 200)]
    sites: usize,
    /// Terminals per site.
    #[arg(long, default_value_t = 20)]
    devices: usize,
    /// Employees per terminal (a site's workforce is this times --devices).
    #[arg(long, default_value_t = 10)]
    per_device: usize,
    /// central-api replicas.
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Length of the load.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Half a site's workforce punches within this many seconds at each shift change.
    #[arg(long, default_value_t = 600)]
    burst_secs: u64,
    /// A shift change every this many seconds (default: back to back).
    #[arg(long)]
    burst_every_secs: Option<u64>,
    /// Background punches per second per site, besides the bursts.
    #[arg(long, default_value_t = 0.05)]
    background: f64,
    /// Run without the faults.
    #[arg(long)]
    no_faults: bool,
    /// How long a stall lasts, seconds.
    #[arg(long, default_value_t = 15)]
    stall_secs: u64,
    /// Where figures.txt and soak.svg go.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run the large factory instead: one real agent with --terminals simulated terminals.
    #[arg(long)]
    factory: bool,
    /// Terminals of the factory.
    #[arg(long, default_value_t = 200)]
    terminals: usize,
    /// Punches per second over the factory's terminals.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let args = Args::try_parse_from(std::iter::once("bench soak".to_owned()).chain(args.iter().cloned()))?;
    if args.minutes.is_nan() || args.minutes <= 0.0 || args.sites == 0 || args.devices == 0 || args.replicas == 0 {
        bail!("--minutes, --sites, --devices and --replicas must be above 0");
    }
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.factory {
        let settings = FactorySettings {
            terminals: args.terminals,
            rate: args.rate,
            duration,
            drain_timeout: Duration::from_secs(300),
        };
        let outcome = runtime.block_on(factory::run(settings))?;
        print!("{}", outcome.report);
        if outcome.missing > 0 || outcome.extra > 0 {
            bail!("the factory's AllLogs is not exactly what the terminals made");
        }
        return Ok(());
    }
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/soak")
            .join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
    });
    let settings = Settings {
        shape: Shape { sites: args.sites, devices: args.devices, workforce: args.devices * args.per_device },
        replicas: args.replicas,
        load: Load {
            duration,
            burst: Duration::from_secs(args.burst_secs),
            burst_every: Duration::from_secs(args.burst_every_secs.unwrap_or(args.burst_secs)),
            background_per_site: args.background,
        },
        forward: ForwardSettings {
            max_batch: 1000,
            linger: Duration::from_millis(200),
            ack_timeout: Duration::from_secs(10),
        },
        faults: !args.no_faults,
        fault: FaultSettings { replica_down: Duration::from_secs(5), stall: Duration::from_secs(args.stall_secs) },
        drain_timeout: Duration::from_secs(600),
        out_dir: out,
    };
    let outcome = runtime.block_on(crate::soak::run(settings))?;
    print!("{}", outcome.report);
    println!("figures: {}\nplot: {}", outcome.figures.display(), outcome.plot.display());
    checks::ensure_exact(&outcome.all_logs, &outcome.attendance)
}

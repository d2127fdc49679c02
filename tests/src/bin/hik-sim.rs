//! The Hikvision ISAPI terminal simulator as a program: `cargo run -p system-tests --bin hik-sim -- --events 200`.
//! Prints `hik-sim listening on <url>` and serves until Ctrl-C, adding a live face punch every `--every-secs`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use system_tests::hik_sim::{HikSim, HikSimConfig};

/// A simulated Hikvision face terminal (ISAPI over HTTP with digest authentication).
#[derive(Parser)]
#[command(about)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[arg(long, default_value = "DS-K1T671M-SIM0001")]
    serial: String,
    #[arg(long, default_value = "admin")]
    user: String,
    #[arg(long, default_value = "Hik12345")]
    password: String,
    /// Face authentications already in the log.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Most events per search answer.
    #[arg(long, default_value_t = 30)]
    page_cap: usize,
    /// Answer the history search with `notSupport`.
    #[arg(long)]
    no_history: bool,
    /// Seconds the device clock is ahead (negative: behind).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    clock_offset: i64,
    #[arg(long, default_value = "Asia/Kolkata")]
    zone: String,
    /// A live punch every this many seconds (0: none).
    #[arg(long, default_value_t = 0)]
    every_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let config = HikSimConfig {
        serial: args.serial,
        user: args.user,
        password: args.password,
        zone: protocol::time::parse_zone(&args.zone).map_err(anyhow::Error::msg)?,
        page_cap: args.page_cap.max(1),
        history_supported: !args.no_history,
        clock_offset_secs: args.clock_offset,
        ..HikSimConfig::default()
    };
    let sim = HikSim::start_on(config, args.listen).await?;
    sim.preload(args.events);
    println!("hik-sim listening on {}", sim.url());
    let live = sim.clone();
    if args.every_secs > 0 {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(args.every_secs)).await;
                live.punch(1, false);
            }
        });
    }
    tokio::signal::ctrl_c().await?;
    sim.stop();
    Ok(())
}

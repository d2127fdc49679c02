//! The Dahua CGI access terminal simulator as a program: `cargo run -p system-tests --bin dahua-sim -- --events 200`.
//! Prints `dahua-sim listening on <url>` and serves until Ctrl-C, adding a live face punch every `--every-secs`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use system_tests::dahua_sim::{DahuaSim, DahuaSimConfig};

/// A simulated Dahua access terminal (CGI over HTTP with digest authentication).
#[derive(Parser)]
#[command(about)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    #[arg(long, default_value = "7F0A1B2PAG00001")]
    serial: String,
    #[arg(long, default_value = "admin")]
    user: String,
    #[arg(long, default_value = "Dahua12345")]
    password: String,
    /// Face accesses already recorded.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Most records per find.
    #[arg(long, default_value_t = 20)]
    page_cap: usize,
    /// Answer recordFinder with Bad Request.
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
    let config = DahuaSimConfig {
        serial: args.serial,
        user: args.user,
        password: args.password,
        zone: protocol::time::parse_zone(&args.zone).map_err(anyhow::Error::msg)?,
        page_cap: args.page_cap.max(1),
        history_supported: !args.no_history,
        clock_offset_secs: args.clock_offset,
        ..DahuaSimConfig::default()
    };
    let sim = DahuaSim::start_on(config, args.listen).await?;
    sim.preload(args.events);
    println!("dahua-sim listening on {}", sim.url());
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

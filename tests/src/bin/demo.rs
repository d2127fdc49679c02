//! The README's first command: the whole pipeline on this machine (central-api on SQLite, an edge-agent, simulated
//! ZKTeco terminals), see [`system_tests::demo`]. Prints where to look and stops cleanly on Ctrl-C or SIGTERM.

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        .init();
    let options = system_tests::demo::DemoOptions::from_env()?;
    system_tests::demo::run(options, central_api::cli::shutdown_signal()).await
}

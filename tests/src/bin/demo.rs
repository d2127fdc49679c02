//! The README's first command: runs the pipeline on this machine on embedded defaults, prints where to look, and
//! stops cleanly on Ctrl-C.
//!
//! Today it starts the central service only (the agent and the simulated devices join as they are built).

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen: SocketAddr = std::env::var("DEMO_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into()).parse()?;
    // Embedded defaults (SQLite under ./data), with the usual CENTRAL_API_* overrides.
    let mut config = central_api::config::Config::load(None)?;
    config.listen = listen;
    let app = central_api::app::Application::build(config).await?;
    println!("central-api is running: {}/healthz", app.url()?);
    println!("(the edge agent and simulated devices are not part of the demo yet)");
    println!("Press Ctrl-C to stop.");
    app.run(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    println!("stopped");
    Ok(())
}

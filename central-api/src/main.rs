use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = central_api::cli::Cli::parse();
    central_api::logging::init(cli.log_format, central_api::logging::stderr_is_terminal());
    central_api::cli::run(cli).await
}

//! The `edge-agent` binary: parses the command line, sets up logging and signals, and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use edge_agent::config::Config;
use edge_agent::zk::probe::{probe, ProbeRequest, StepOutcome};
use edge_agent::zk::{Timeouts, TransportKind};
use tokio_util::sync::CancellationToken;

/// On-site attendance agent.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// `text` (coloured only on a terminal) or `json` (one object per line, for log shippers).
    #[arg(long, global = true, value_enum, default_value = "text", env = "EDGE_AGENT_LOG_FORMAT")]
    log_format: edge_agent::logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: read devices, buffer every punch durably, forward to central until acknowledged.
    Run {
        /// The configuration file.
        #[arg(long, short, env = "EDGE_AGENT_CONFIG")]
        config: PathBuf,
    },
    /// Validate a configuration file and name every wrong key.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Print a running agent's health, buffer, forwarding and devices.
    Status {
        /// The agent's local HTTP endpoint (its `metrics.listen`).
        #[arg(long, default_value = "http://127.0.0.1:9187", conflicts_with = "config")]
        url: String,
        /// Read the endpoint from this configuration file instead.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Read a device once (ZKTeco by default; `--kind hikvision|dahua URL`) and print its identity, counts, clock
    /// drift and last punches; `--sql DEVICE --config FILE` looks at a configured SQL source.
    Probe(ProbeArgs),
    /// List, send again or export the punches central refused for good (works on a running or a stopped agent).
    DeadLetters {
        /// The configuration file.
        #[arg(long, short, env = "EDGE_AGENT_CONFIG")]
        config: PathBuf,
        #[command(subcommand)]
        action: DeadLetterAction,
    },
}

#[derive(Subcommand, Clone, Copy)]
enum DeadLetterAction {
    /// Print the dead letters: sequence ranges, counts, when and why refused.
    List,
    /// Queue them to be sent again (all, or the entry starting at --first).
    Retry {
        #[arg(long)]
        first: Option<u64>,
    },
    /// Print every dead punch as one JSON object per line.
    Export,
}

#[derive(Args)]
struct ProbeArgs {
    /// The device's address: `host` or `host:port` (zk), the base URL `http(s)://host[:port]` (hikvision, dahua).
    #[arg(required_unless_present = "sql")]
    address: Option<String>,
    /// A SQL source of the configuration (its serial): print the row count, the newest rows as punches, the cursor.
    #[arg(long, value_name = "DEVICE", requires = "config")]
    sql: Option<String>,
    /// The configuration file (with --sql).
    #[arg(long, short, env = "EDGE_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// `zk`, `hikvision` or `dahua`.
    #[arg(long, default_value = "zk")]
    kind: String,
    /// Hikvision/Dahua: the device account.
    #[arg(long, default_value = "admin")]
    user: String,
    /// Hikvision/Dahua: a file holding the password (else `EDGE_AGENT_DEVICE_PASSWORD`, else a prompt).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Hikvision/Dahua: accept a self-signed certificate.
    #[arg(long)]
    insecure: bool,
    /// Hikvision/Dahua: days of history to read for the last punches.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Dahua: `CreateTime` is the device's wall clock written as UTC (older firmware).
    #[arg(long)]
    epoch_is_local: bool,
    /// Port, when the address has none.
    #[arg(long, default_value_t = edge_agent::zk::config::DEFAULT_PORT)]
    port: u16,
    /// The device's comm key (communication password), 0 when none.
    #[arg(long, default_value_t = 0)]
    key: u32,
    /// Speak UDP instead of TCP (older devices).
    #[arg(long)]
    udp: bool,
    /// IANA zone of the device's clock, for the drift and the UTC times.
    #[arg(long, env = "TZ", default_value = "UTC")]
    zone: String,
    /// How many of the newest punches to list.
    #[arg(long, default_value_t = 10)]
    last: usize,
    /// Seconds to wait for the connection and for each answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// UDP: accept replies with a wrong checksum (some implementations compute it off by one).
    #[arg(long)]
    no_strict_checksum: bool,
}

fn main() -> ExitCode {
    edge_agent::malloc::one_arena();
    let cli = Cli::parse();
    edge_agent::logging::init(cli.log_format, edge_agent::logging::stderr_is_terminal());
    let result = match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Run { config } => runtime().and_then(|rt| rt.block_on(run(config))),
        Command::Status { url, config } => runtime().and_then(|rt| rt.block_on(status(url, config))),
        Command::Probe(args) => runtime().and_then(|rt| rt.block_on(probe_device(args))),
        Command::DeadLetters { config, action } => runtime().and_then(|rt| rt.block_on(dead_letters(config, action))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("edge-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn check_config(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    match Config::load(file) {
        Ok(config) => {
            // SQL sources are checked against their databases: the table and every named column.
            let sql = runtime()?.block_on(edge_agent::sql::check::check_sources(&config));
            let mut failed = false;
            for check in &sql {
                match &check.outcome {
                    Ok(summary) => println!("{}: {}: {summary}", file.display(), check.device),
                    Err(problem) => {
                        failed = true;
                        eprintln!("{}: {}: {problem}", file.display(), check.device);
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "{}: OK ({} devices, transport {:?})",
                file.display(),
                config.devices.len(),
                config.central.transport
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn run(file: PathBuf) -> anyhow::Result<ExitCode> {
    let config = Config::load(&file)?;
    let shutdown = CancellationToken::new();
    let signals = tokio::spawn(wait_for_signal(shutdown.clone()));
    edge_agent::agent::arm_stop_deadline(&shutdown);
    let result = edge_agent::agent::run(config, shutdown.clone()).await;
    shutdown.cancel();
    signals.abort();
    result.map(|()| ExitCode::SUCCESS)
}

/// Cancels `shutdown` on SIGTERM (systemd stop) or SIGINT (Ctrl-C).
async fn wait_for_signal(shutdown: CancellationToken) {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the agent cleanly");
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
        () = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}

async fn dead_letters(config: PathBuf, action: DeadLetterAction) -> anyhow::Result<ExitCode> {
    use edge_agent::agent::dead_letters::{run, Action};
    let config = Config::load(&config)?;
    let action = match action {
        DeadLetterAction::List => Action::List,
        DeadLetterAction::Retry { first } => Action::Retry(first),
        DeadLetterAction::Export => Action::Export,
    };
    print!("{}", run(&config, action).await?);
    Ok(ExitCode::SUCCESS)
}

async fn status(url: String, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let url = match config {
        Some(file) => {
            let config = Config::load(&file)?;
            let mut addr = config.metrics.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
        None => url,
    };
    print!("{}", edge_agent::agent::status_cli::fetch_summary(&url).await?);
    Ok(ExitCode::SUCCESS)
}

async fn probe_device(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    if let (Some(serial), Some(file)) = (&args.sql, &args.config) {
        let config = Config::load(file)?;
        print!("{}", edge_agent::sql::probe::probe(&config, serial, args.last).await?);
        return Ok(ExitCode::SUCCESS);
    }
    let zone = protocol::time::parse_zone(&args.zone).map_err(anyhow::Error::msg)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    if args.kind != "zk" {
        return probe_terminal(args, zone, timeout).await;
    }
    let request = ProbeRequest {
        address: args.address.unwrap_or_default(),
        port: args.port,
        transport: if args.udp { TransportKind::Udp } else { TransportKind::Tcp },
        comm_key: args.key,
        zone,
        last: args.last,
        timeouts: Timeouts { connect: timeout, request: timeout },
        strict_checksum: !args.no_strict_checksum,
    };
    let report = probe(&request).await;
    print!("{report}");
    match report.failure() {
        None => Ok(ExitCode::SUCCESS),
        Some(step) => {
            if let StepOutcome::Failed { error, advice, .. } = &step.outcome {
                eprintln!("edge-agent: probing {}: {} failed: {error}", report.address, step.name.as_str());
                if let Some(advice) = advice {
                    eprintln!("edge-agent: try: {advice}");
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `probe --kind hikvision|dahua`.
async fn probe_terminal(args: ProbeArgs, zone: chrono_tz::Tz, timeout: Duration) -> anyhow::Result<ExitCode> {
    use edge_agent::http_terminal::probe::{probe, ProbeKind, ProbeRequest};
    let kind: ProbeKind = args.kind.parse().map_err(anyhow::Error::msg)?;
    let address = args.address.clone().unwrap_or_default();
    let password = match (&args.password_file, std::env::var("EDGE_AGENT_DEVICE_PASSWORD")) {
        (Some(file), _) => std::fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
        (None, Ok(password)) => password,
        (None, Err(_)) => rpassword::prompt_password(format!("password of {} at {address}: ", args.user))
            .context("reading the password")?,
    };
    let base_url = address.parse().with_context(|| format!("{address:?} is not a URL"))?;
    let client = edge_agent::http_terminal::digest::ClientOptions {
        base_url,
        user: args.user,
        password,
        timeout,
        accept_invalid_certs: args.insecure,
        ca_pem: None,
    };
    let request =
        ProbeRequest { kind, client, zone, last: args.last, days: args.days, epoch_is_local: args.epoch_is_local };
    let report = probe(&request).await.with_context(|| format!("probing {address}"))?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

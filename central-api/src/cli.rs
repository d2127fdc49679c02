//! The command line: `serve`, `migrate`, the administration commands, the attendance settings ([`settings`]:
//! shifts and sites) and the attendance jobs (`close-day`, `apply-sandwich`, `revert-sandwich`, `reprocess`,
//! `process-dirty`, kept for cron) and administrators' API tokens ([`tokens`]). `main.rs` only parses and calls
//! [`run`].
//!
//! Every command takes `--config <file>` (or `CENTRAL_API_CONFIG`) and honours the environment overrides described
//! in [`crate::config`]. Output meant for people goes to stdout; logs go to stderr.

mod backup;
mod settings;
pub mod tls;
mod tokens;

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use argon2::password_hash::{rand_core::OsRng, SaltString};
use argon2::{Argon2, PasswordHasher};
use clap::{Parser, Subcommand};
use protocol::{AgentId, DeviceSerial, Direction, Pin, SiteId};

use crate::app::Application;
use crate::attendance::jobs::bulk::{self, Target};
use crate::attendance::jobs::{worker, Outcome};
use crate::auth::AgentToken;
use crate::config::Config;
use crate::store::admin::NewDevice;
use crate::store::Store;

/// Central attendance service.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file (TOML); see configs/central-api.toml.
    #[arg(long, global = true, env = crate::config::CONFIG_FILE_ENV)]
    pub config: Option<PathBuf>,
    /// `text` (coloured only on a terminal) or `json` (one object per line, for log shippers).
    #[arg(long, global = true, value_enum, default_value = "text", env = "CENTRAL_API_LOG_FORMAT")]
    pub log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP(S) API and, when configured, the MQTT consumer.
    Serve {
        /// Address to listen on, overriding `listen`; port 0 picks a free port.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a site.
    CreateSite {
        id: SiteId,
        #[arg(long)]
        name: String,
        /// IANA time zone, e.g. Asia/Kolkata.
        #[arg(long)]
        time_zone: String,
    },
    /// Create an agent bound to a site and print its token once (stdout), with its MQTT broker login (stderr).
    CreateAgent {
        id: AgentId,
        #[arg(long)]
        site: SiteId,
    },
    /// Revoke an agent's token.
    RevokeAgent { id: AgentId },
    /// Print an agent's MQTT broker login (derived from its token) and what to do with it.
    MqttLogin { id: AgentId },
    /// Create an administrator (password from a prompt, or the first line of stdin with --password-stdin).
    CreateAdmin {
        username: String,
        /// root (every site), admin (manages its sites) or viewer (reads its sites).
        #[arg(long, default_value = "root")]
        role: String,
        /// A site the administrator may see (repeat for several; ignored for root).
        #[arg(long = "site")]
        sites: Vec<SiteId>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Register a device (BiometricDeviceConfiguration).
    AddDevice {
        serial: DeviceSerial,
        #[arg(long)]
        site: SiteId,
        /// IANA zone of the device clock; defaults to the site's.
        #[arg(long)]
        time_zone: Option<String>,
        #[arg(long, default_value = "BOTH", value_parser = parse_direction)]
        direction: Direction,
        /// Driver kind: zk-tcp, zk-udp, adms, serial, modbus, sql.
        #[arg(long, default_value = "zk-tcp")]
        kind: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        ip: Option<String>,
        #[arg(long)]
        port: Option<u16>,
    },
    /// Create an employee; the id is the PIN enrolled on the devices.
    AddEmployee {
        id: Pin,
        #[arg(long)]
        name: String,
        #[arg(long)]
        site: Option<SiteId>,
        /// The card number pushed to the terminals (digits, 1 to 4294967295).
        #[arg(long, value_parser = crate::fleet::privilege::parse_card)]
        card_number: Option<u32>,
        /// The privilege on the terminals: user, enroller, admin or superadmin (or 0, 2, 6, 14).
        #[arg(long, value_parser = parse_privilege)]
        device_privilege: Option<crate::fleet::privilege::DevicePrivilege>,
    },
    /// List PINs that punched but match no employee (JSON, one per line).
    UnknownPins,
    /// Create a shift with any of its settings (the engine's defaults for the rest); prints it as JSON.
    AddShift(settings::ShiftArgs),
    /// Change a shift's settings (the rest kept); its employees' days from --effective-from are recomputed.
    UpdateShift(settings::ShiftArgs),
    /// Create or update the shifts of a JSON file (an array of the API's shift settings, each with its code).
    ImportShifts { file: PathBuf },
    /// List every shift with every setting (JSON, one per line).
    ListShifts,
    /// Change a site's name, zone, sandwich setting or default week-off rule; prints it as JSON.
    UpdateSite(settings::SiteArgs),
    /// List the sites with their settings (JSON, one per line).
    ListSites,
    /// Attendance: finalise the days whose check-out window closed since the last run and mark absentees.
    CloseDay {
        /// Only this site.
        #[arg(long)]
        site: Option<SiteId>,
        /// Act as if it were this instant (RFC 3339); default now.
        #[arg(long)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Attendance: recompute a date range with the sandwich rule as each site's setting says.
    ApplySandwich(RangeArgs),
    /// Attendance: recompute a date range and restore the original status of every sandwiched day.
    RevertSandwich(RangeArgs),
    /// Attendance: recompute a date range from the punches, for everyone, a site or an employee.
    Reprocess(RangeArgs),
    /// Attendance: recompute every marked day now (what the worker inside `serve` does continuously).
    ProcessDirty,
    /// Write a backup (full, or incremental since a date) to a file; gzip when its name ends in .gz.
    Backup(backup::BackupArgs),
    /// Validate, preview or restore a backup file (merging by key with a strategy).
    Restore(backup::RestoreArgs),
    /// TLS certificates for HTTPS between agents and central.
    Tls {
        #[command(subcommand)]
        command: TlsCommand,
    },
    /// Issue an administrator API token (printed once on stdout), optionally expiring.
    IssueToken(tokens::IssueArgs),
    /// List an administrator's API tokens with expiry and last use (JSON, one per line).
    ListTokens { username: String },
    /// Revoke one of an administrator's API tokens.
    RevokeToken { username: String, token_id: String },
}

/// `central-api tls ...`.
#[derive(Debug, Subcommand)]
pub enum TlsCommand {
    /// Make a small CA and a server certificate signed by it (names as SANs), print the [tls] lines and the CA's
    /// file and SHA-256 fingerprint for the agents.
    Init(tls::InitArgs),
}

/// The date range and whose days a bulk attendance job covers.
#[derive(Debug, clap::Args)]
pub struct RangeArgs {
    /// First day (YYYY-MM-DD).
    #[arg(long)]
    pub from: chrono::NaiveDate,
    /// Last day, included (YYYY-MM-DD).
    #[arg(long)]
    pub to: chrono::NaiveDate,
    /// Only this site.
    #[arg(long, conflicts_with = "employee")]
    pub site: Option<SiteId>,
    /// Only this employee.
    #[arg(long)]
    pub employee: Option<Pin>,
}

impl RangeArgs {
    fn target(&self) -> Target {
        match (&self.site, &self.employee) {
            (Some(site), _) => Target::Site(site.to_string()),
            (None, Some(employee)) => Target::Employee(employee.to_string()),
            (None, None) => Target::All,
        }
    }
}

fn parse_direction(text: &str) -> Result<Direction, String> {
    match text.to_ascii_uppercase().as_str() {
        "IN" => Ok(Direction::In),
        "OUT" => Ok(Direction::Out),
        "BOTH" => Ok(Direction::Both),
        _ => Err(format!("direction {text:?} must be IN, OUT or BOTH")),
    }
}

const DEVICE_KINDS: &[&str] = &["zk-tcp", "zk-udp", "adms", "serial", "modbus", "sql"];

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the command failed at, with context.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            serve(config).await
        }
        Command::Tls { command: TlsCommand::Init(args) } => tls::run(&args, &config.data_dir),
        Command::Migrate => {
            let store = Store::connect(&config).await.context("connecting to the database")?;
            store.migrate().await.context("applying migrations")?;
            println!("migrations applied");
            Ok(())
        }
        command => {
            let store = Store::connect(&config).await.context("connecting to the database")?;
            if config.auto_migrate {
                store.migrate().await.context("applying migrations")?;
            }
            let result = match command {
                Command::AddShift(args) => settings::shift(&store, &config, &args, true).await,
                Command::UpdateShift(args) => settings::shift(&store, &config, &args, false).await,
                Command::ImportShifts { file } => settings::import_shifts(&store, &config, &file).await,
                Command::ListShifts => settings::list_shifts(&store).await,
                Command::UpdateSite(args) => settings::update_site(&store, &config, &args).await,
                Command::ListSites => settings::list_sites(&store).await,
                Command::Backup(args) => backup::backup(&store, &args).await,
                Command::Restore(args) => backup::restore(&store, &args).await,
                Command::IssueToken(args) => tokens::issue(&store, &args).await,
                Command::ListTokens { username } => tokens::list(&store, &username).await,
                Command::RevokeToken { username, token_id } => tokens::revoke(&store, &username, &token_id).await,
                command => admin(&store, command).await,
            };
            store.close().await;
            result
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    // Install the signal handlers before announcing the address: a SIGTERM sent right after the line must be a clean
    // stop, not the default action.
    let shutdown = shutdown_signal();
    // Tests and people read this line; it is printed once the listener accepts connections.
    println!("central-api listening on {}", app.url()?);
    std::io::stdout().flush()?;
    app.run(shutdown).await
}

/// Completes when `signal` fires; never when its handler could not be installed.
#[cfg(unix)]
async fn wait(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Installs the Ctrl-C and SIGTERM handlers now and returns a future that completes on either.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut handlers = {
        use tokio::signal::unix::{signal, SignalKind};
        [signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok()]
    };
    async move {
        #[cfg(unix)]
        {
            let [interrupt, terminate] = &mut handlers;
            tokio::select! {
                () = wait(interrupt.as_mut()) => {}
                () = wait(terminate.as_mut()) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
    }
}

async fn admin(store: &Store, command: Command) -> anyhow::Result<()> {
    match command {
        Command::CreateSite { id, name, time_zone } => {
            protocol::time::parse_zone(&time_zone).map_err(anyhow::Error::msg)?;
            store.create_site(id.as_str(), &name, &time_zone).await?;
            println!("site {id} created");
        }
        Command::CreateAgent { id, site } => {
            let token = AgentToken::generate(id.clone());
            store.create_agent(id.as_str(), site.as_str(), &token.secret_hash()).await?;
            let keys = protocol::AgentKeys::from_secret_hash(&token.secret_hash());
            eprintln!("{}", crate::mqtt::login::broker_login(&id, &site, &keys));
            eprintln!("agent {id} created for site {site}; its token is printed below, once. Store it now.");
            println!("{}", token.reveal());
        }
        Command::MqttLogin { id } => {
            let agent = store.agent(id.as_str()).await?.with_context(|| format!("agent {id} does not exist"))?;
            let site: SiteId = agent.site_id.parse().map_err(|e| anyhow::anyhow!("agent {id}'s site: {e}"))?;
            let keys = protocol::AgentKeys::from_secret_hash(&agent.token_hash);
            print!("{}", crate::mqtt::login::broker_login(&id, &site, &keys));
        }
        Command::RevokeAgent { id } => {
            store.revoke_agent(id.as_str()).await?;
            println!("agent {id} revoked");
        }
        Command::CreateAdmin { username, role, sites, password_stdin } => {
            if username.trim().is_empty() {
                bail!("the username is empty");
            }
            crate::access::Role::parse(&role).map_err(anyhow::Error::msg)?;
            for site in &sites {
                if store.site(site.as_str()).await?.is_none() {
                    bail!("site {site} does not exist");
                }
            }
            let password = read_password(password_stdin)?;
            if password.len() < 8 {
                bail!("the password must be at least 8 characters");
            }
            let salt = SaltString::generate(&mut OsRng);
            let hash = Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
                .to_string();
            store.create_admin(&username, &hash, &role).await?;
            for site in &sites {
                store.grant_site(&username, site.as_str()).await?;
            }
            println!("administrator {username} created with role {role}");
        }
        Command::AddDevice { serial, site, time_zone, direction, kind, name, model, ip, port } => {
            if !DEVICE_KINDS.contains(&kind.as_str()) {
                bail!("device kind {kind:?} is not one of {}", DEVICE_KINDS.join(", "));
            }
            let site_row = store.site(site.as_str()).await?.with_context(|| format!("site {site} does not exist"))?;
            let time_zone = time_zone.unwrap_or(site_row.time_zone);
            protocol::time::parse_zone(&time_zone).map_err(anyhow::Error::msg)?;
            let device = NewDevice {
                serial: serial.to_string(),
                site_id: site.to_string(),
                name: name.unwrap_or_else(|| serial.to_string()),
                model,
                ip,
                port,
                kind,
                time_zone,
                direction: direction.as_str().to_owned(),
            };
            store.add_device(&device).await?;
            println!("device {serial} added to site {site}");
        }
        Command::AddEmployee { id, name, site, card_number, device_privilege } => {
            store.add_employee(id.as_str(), &name, site.as_ref().map(SiteId::as_str)).await?;
            if card_number.is_some() || device_privilege.is_some() {
                store.set_employee_device_fields(id.as_str(), card_number, device_privilege).await?;
            }
            println!("employee {id} created");
        }
        Command::UnknownPins => {
            for pin in store.unknown_pins().await? {
                println!("{}", serde_json::to_string(&pin)?);
            }
        }
        Command::CloseDay { site, now } => {
            let outcome =
                bulk::close_day(store, site.as_ref().map(SiteId::as_str), now.unwrap_or_else(chrono::Utc::now)).await?;
            report("close-day", &outcome);
        }
        Command::ApplySandwich(range) => {
            let outcome =
                bulk::apply_sandwich(store, &range.target(), range.from, range.to, chrono::Utc::now()).await?;
            report("apply-sandwich", &outcome);
        }
        Command::RevertSandwich(range) => {
            let outcome =
                bulk::revert_sandwich(store, &range.target(), range.from, range.to, chrono::Utc::now()).await?;
            report("revert-sandwich", &outcome);
        }
        Command::Reprocess(range) => {
            let outcome =
                bulk::reprocess(store, &range.target(), range.from, range.to, chrono::Utc::now(), None).await?;
            report("reprocess", &outcome);
        }
        Command::ProcessDirty => {
            let round = worker::drain(store, 500).await?;
            report("process-dirty", &round.outcome);
        }
        Command::Serve { .. } | Command::Migrate => bail!("serve and migrate are not administration commands"),
        _ => bail!("this command is handled in cli::settings"),
    }
    Ok(())
}

fn report(job: &str, outcome: &Outcome) {
    println!(
        "{job}: {} employee-days of {} employees written from {} punches",
        outcome.days, outcome.employees, outcome.punches
    );
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    let second = rpassword::prompt_password("Repeat password: ").context("reading the password")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

/// A `--device-privilege` value: a level's name or code.
fn parse_privilege(text: &str) -> Result<crate::fleet::privilege::DevicePrivilege, String> {
    crate::fleet::privilege::DevicePrivilege::parse(text)
        .ok_or_else(|| format!("{text:?} is not one of {}", crate::fleet::privilege::PRIVILEGE_NAMES.join(", ")))
}

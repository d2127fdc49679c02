//! Run from the central office (issue 17): the managed configuration and remote commands, on the agent's side.
//!
//! - **Managed configuration** (`[central] managed = true`): central's device list is the source of truth. The agent
//!   starts on the last configuration it stored ([`managed`]), receives central's ([`Inbound::Config`]: on MQTT a
//!   signed frame on its `commands` topic, on HTTPS in the answer to its poll, [`inbox`]) whenever it runs another
//!   version, checks it exactly as `check-config` checks a file, stores it, and moves its sources to it in place
//!   ([`crate::agent::sources::SourceSet::apply`]). It reports the version it runs in every status. A configuration
//!   that fails the checks is not applied: the agent keeps running the one it has and raises `config_rejected`.
//! - **Commands** ([`commands`]): each `command_id` is carried out at most once ([`journal`]), not at all after its
//!   expiry, and its result is reported in the following statuses until one of them is delivered ([`Report`]).

pub mod commands;
pub mod inbox;
pub mod journal;
pub mod managed;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use protocol::{AgentCommand, AgentId, CommandResult, ManagedConfig, SiteId};
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::adms::CommandQueue;
use crate::agent::sources::SourceSet;
use crate::buffer::Buffer;
use crate::faults::Faults;

/// The fault raised while central's configuration fails the agent's checks.
pub const CONFIG_REJECTED: &str = "config_rejected";
/// The fault raised for a message on the commands topic without central's proof.
pub const UNVERIFIED_COMMAND: &str = "unverified_command";
/// Results kept for the status while they wait to be delivered.
const MAX_PENDING_RESULTS: usize = protocol::limits::MAX_LIST_ITEMS;

/// Something central sent the agent.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// A configuration; `newer_only` when it came over a path where an old message could be replayed (MQTT), so
    /// only a version above the running one is taken.
    Config {
        config: ManagedConfig,
        newer_only: bool,
    },
    Command(AgentCommand),
}

/// What the status envelope reports about the fleet side: the configuration version and command results.
#[derive(Debug)]
pub struct Report {
    config_version: Mutex<Option<u64>>,
    results: Mutex<Vec<CommandResult>>,
    /// Wakes the status sender to send at once (a command finished).
    pub send_now: Notify,
    interval: watch::Sender<Duration>,
}

impl Report {
    pub fn new(interval: Duration) -> Self {
        Self {
            config_version: Mutex::new(None),
            results: Mutex::default(),
            send_now: Notify::new(),
            interval: watch::Sender::new(interval),
        }
    }

    /// The configuration version to report (`None` when the agent is not managed).
    pub fn config_version(&self) -> Option<u64> {
        *self.config_version.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_config_version(&self, version: Option<u64>) {
        *self.config_version.lock().unwrap_or_else(|p| p.into_inner()) = version;
    }

    /// Results waiting to be delivered.
    pub fn results(&self) -> Vec<CommandResult> {
        self.results.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds a result (replacing an earlier one of the same command) and asks for a status now.
    pub fn push(&self, result: CommandResult) {
        {
            let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
            results.retain(|r| r.command_id != result.command_id);
            if results.len() >= MAX_PENDING_RESULTS {
                results.remove(0);
            }
            results.push(result);
        }
        self.send_now.notify_one();
    }

    /// Forgets the results a delivered status carried.
    pub fn delivered(&self, sent: &[CommandResult]) {
        let mut results = self.results.lock().unwrap_or_else(|p| p.into_inner());
        results.retain(|r| !sent.contains(r));
    }

    /// The status interval, which a managed configuration may change.
    pub fn interval(&self) -> watch::Receiver<Duration> {
        self.interval.subscribe()
    }

    pub fn set_interval(&self, interval: Duration) {
        self.interval.send_if_modified(|current| {
            let changed = *current != interval;
            *current = interval;
            changed
        });
    }
}

/// The fleet side of one agent.
pub struct Fleet {
    pub agent: AgentId,
    pub site: SiteId,
    pub data_dir: PathBuf,
    pub managed: bool,
    pub sources: Arc<SourceSet>,
    pub push_commands: Arc<CommandQueue>,
    pub buffer: Buffer,
    pub faults: Faults,
    pub report: Arc<Report>,
    journal: tokio::sync::Mutex<journal::Journal>,
    /// The configuration running now (managed agents).
    running: tokio::sync::Mutex<Option<ManagedConfig>>,
    /// Asks the HTTPS poll to fetch the configuration now.
    pub fetch_config: Notify,
    /// The configuration fetched on request, for the command that asked.
    fetched: watch::Sender<u64>,
    /// Whether the link is HTTPS (a reload then fetches the configuration itself).
    https_link: std::sync::atomic::AtomicBool,
}

impl Fleet {
    /// Opens the command journal (reporting the commands a restart interrupted).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        agent: AgentId,
        site: SiteId,
        data_dir: PathBuf,
        managed: bool,
        sources: Arc<SourceSet>,
        push_commands: Arc<CommandQueue>,
        buffer: Buffer,
        faults: Faults,
        report: Arc<Report>,
    ) -> Arc<Self> {
        let (journal, interrupted) = journal::Journal::open(&data_dir);
        for result in interrupted {
            report.push(result);
        }
        Arc::new(Self {
            agent,
            site,
            data_dir,
            managed,
            sources,
            push_commands,
            buffer,
            faults,
            report,
            journal: tokio::sync::Mutex::new(journal),
            running: tokio::sync::Mutex::new(None),
            fetch_config: Notify::new(),
            fetched: watch::Sender::new(0),
            https_link: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Says whether the link to central is HTTPS.
    pub fn set_https(&self, https: bool) {
        self.https_link.store(https, std::sync::atomic::Ordering::Relaxed);
    }

    /// The devices to start with: the stored managed configuration (recorded as running), or none.
    pub async fn start_managed(&self) -> Vec<crate::config::DeviceConfig> {
        self.report.set_config_version(Some(0));
        let Some(stored) = managed::load(&self.data_dir) else {
            tracing::info!("no stored managed configuration yet; starting without devices until central sends one");
            return Vec::new();
        };
        match managed::devices_of(&stored) {
            Ok(devices) => {
                tracing::info!(
                    version = stored.config_version,
                    devices = devices.len(),
                    "starting on the stored managed configuration"
                );
                self.report.set_config_version(Some(stored.config_version));
                if let Some(secs) = stored.status_interval_secs {
                    self.report.set_interval(Duration::from_secs(u64::from(secs)));
                }
                *self.running.lock().await = Some(stored);
                devices
            }
            Err(problems) => {
                tracing::error!(
                    ?problems,
                    "the stored managed configuration fails the checks; starting without devices"
                );
                Vec::new()
            }
        }
    }

    /// Takes what central sent until `shutdown`: configurations in order, commands each in a task of its own.
    pub async fn run(self: Arc<Self>, mut inbound: mpsc::UnboundedReceiver<Inbound>, shutdown: CancellationToken) {
        loop {
            let next = tokio::select! {
                next = inbound.recv() => next,
                () = shutdown.cancelled() => return,
            };
            match next {
                None => return,
                Some(Inbound::Config { config, newer_only }) => {
                    if let Err(message) = self.apply_config(config, newer_only).await {
                        tracing::warn!(%message, "managed configuration not applied");
                    }
                }
                Some(Inbound::Command(command)) => {
                    let fleet = self.clone();
                    tokio::spawn(async move { fleet.execute(command).await });
                }
            }
        }
    }

    /// Checks, stores and applies a configuration from central; returns a summary.
    ///
    /// # Errors
    /// Why it was not applied (not managed, stale, for another agent, fails the checks, cannot be stored).
    pub async fn apply_config(&self, config: ManagedConfig, newer_only: bool) -> Result<String, String> {
        if !self.managed {
            return Err("this agent is not managed (central.managed = false); its devices come from its file".into());
        }
        if config.agent != self.agent || config.site != self.site {
            return Err(format!(
                "the configuration is for agent {} at site {}, not this agent ({} at {})",
                config.agent, config.site, self.agent, self.site
            ));
        }
        let mut running = self.running.lock().await;
        let current = running.as_ref().map_or(0, |c| c.config_version);
        if newer_only && config.config_version <= current && running.is_some() {
            return Ok(format!("configuration version {} is already running", current));
        }
        let devices = match managed::devices_of(&config) {
            Ok(devices) => devices,
            Err(problems) => {
                let list: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect();
                let message = format!(
                    "central's configuration version {} fails the agent's checks; still running version {current}: {}",
                    config.config_version,
                    list.join("; ")
                );
                self.faults.raise(CONFIG_REJECTED, message.clone(), Utc::now());
                return Err(message);
            }
        };
        let data_dir = self.data_dir.clone();
        let to_store = config.clone();
        tokio::task::spawn_blocking(move || managed::store(&data_dir, &to_store))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot store the configuration: {e}"))?;
        let applied = self.sources.apply(devices).await.map_err(|e| format!("{e:#}"))?;
        if let Some(secs) = config.status_interval_secs {
            self.report.set_interval(Duration::from_secs(u64::from(secs)));
        }
        self.faults.clear(CONFIG_REJECTED);
        let version = config.config_version;
        *running = Some(config);
        self.report.set_config_version(Some(version));
        self.report.send_now.notify_one();
        let summary = format!("configuration version {version} applied: {}", applied.summary());
        tracing::info!(%summary, "managed configuration");
        Ok(summary)
    }

    /// Applies the running configuration again (a reload on MQTT, where central sends its configuration before the
    /// command), or fetches it first (HTTPS).
    pub async fn reload(&self, https: bool) -> Result<String, String> {
        if !self.managed {
            return Err("this agent is not managed (central.managed = false); nothing to reload".into());
        }
        if https {
            let mut fetched = self.fetched.subscribe();
            let before = *fetched.borrow_and_update();
            self.fetch_config.notify_one();
            let waited = tokio::time::timeout(Duration::from_secs(30), fetched.wait_for(|n| *n != before)).await;
            if !matches!(waited, Ok(Ok(_))) {
                return Err("could not fetch the configuration from central within 30 s".into());
            }
        }
        let running = self.running.lock().await.clone();
        let Some(config) = running else { return Err("central has sent no configuration yet".into()) };
        let devices = managed::devices_of(&config).map_err(|p| format!("{p:?}"))?;
        let applied = self.sources.apply(devices).await.map_err(|e| format!("{e:#}"))?;
        Ok(format!("configuration version {} reloaded: {}", config.config_version, applied.summary()))
    }

    /// Called by the HTTPS poll after a requested fetch was answered.
    pub fn fetched(&self) {
        self.fetched.send_modify(|n| *n += 1);
    }
}

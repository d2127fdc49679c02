//! The punch sources of the configured devices, started, changed and stopped in place.
//!
//! Every device is registered on the status board first, so it shows as unreachable until it is reached. Drivers
//! plug in here, one arm per kind; each gets the buffer as its [`crate::sink::PunchSink`], the board and its own
//! stop token (a child of the agent's shutdown). ZKTeco devices (`kind = "zk"`) are polled by [`crate::zk::poller`]
//! (which also takes remote jobs, [`crate::zk::jobs`]), serial lines read by [`crate::serial`], Modbus terminals
//! polled by [`crate::modbus`], Hikvision and Dahua terminals read by [`crate::hikvision`] and [`crate::dahua`],
//! vendor databases (`kind = "sql"`) read by [`crate::sql`].
//!
//! Push (ADMS) devices share one HTTP receiver on `adms.listen`, started when the first one is configured; it
//! announces itself on stdout as `edge-agent adms listening on http://<addr>` (after the agent's own announcement)
//! and keeps running when the last push device goes (it then refuses every serial).
//!
//! [`SourceSet::apply`] moves the running sources to a new device list (a managed configuration changed): sources
//! of removed or changed devices are stopped (a source appends punches before it moves any cursor, so stopping one
//! at any point loses nothing: what it buffered stays in the buffer until central acknowledges it, and what it had
//! not read stays on the device), changed and added ones are started, and the push receiver's device list is
//! replaced. A source that ends on its own (not stopped) ends the set's supervisor task, which the watchdog sees.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use protocol::{DeviceSerial, SiteId};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::adms::{AdmsDevice, AdmsOptions, AdmsReceiver, CommandQueue};
use crate::buffer::Buffer;
use crate::config::{AdmsConfig, DeviceConfig, DeviceSettings, ZkSettings};
use crate::device_status::DeviceStatusBoard;
use crate::zk::jobs::ZkJobs;
use crate::zk::{poller, TransportKind, ZkDeviceConfig};

/// How long a stopped source gets to end before it is aborted.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What changed in one [`SourceSet::apply`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: Vec<DeviceSerial>,
    pub changed: Vec<DeviceSerial>,
    pub removed: Vec<DeviceSerial>,
    /// Devices whose source could not be built, with why (they are not running).
    pub failed: Vec<(DeviceSerial, String)>,
}

impl Applied {
    /// A one-line summary for logs and command results.
    pub fn summary(&self) -> String {
        let list = |v: &[DeviceSerial]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        for (what, serials) in [("added", &self.added), ("changed", &self.changed), ("removed", &self.removed)] {
            if !serials.is_empty() {
                parts.push(format!("{what} {}", list(serials)));
            }
        }
        for (serial, why) in &self.failed {
            parts.push(format!("{serial} not started: {why}"));
        }
        if parts.is_empty() {
            "no device changed".into()
        } else {
            parts.join("; ")
        }
    }
}

/// One running device.
struct Running {
    config: DeviceConfig,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    zk: Option<ZkJobs>,
}

#[derive(Default)]
struct Inner {
    devices: BTreeMap<DeviceSerial, Running>,
    receiver: Option<Arc<AdmsReceiver<Buffer>>>,
}

/// The running sources of the agent.
pub struct SourceSet {
    site: SiteId,
    buffer: Buffer,
    board: DeviceStatusBoard,
    push_commands: Arc<CommandQueue>,
    adms: AdmsConfig,
    shutdown: CancellationToken,
    inner: tokio::sync::Mutex<Inner>,
    ended: mpsc::UnboundedSender<DeviceSerial>,
    ended_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<DeviceSerial>>>,
    /// Tasks that outlive a device: the push receiver.
    background: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl SourceSet {
    pub fn new(
        site: SiteId,
        buffer: Buffer,
        board: DeviceStatusBoard,
        push_commands: Arc<CommandQueue>,
        adms: AdmsConfig,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (ended, ended_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            site,
            buffer,
            board,
            push_commands,
            adms,
            shutdown,
            inner: tokio::sync::Mutex::default(),
            ended,
            ended_rx: std::sync::Mutex::new(Some(ended_rx)),
            background: std::sync::Mutex::default(),
        })
    }

    /// Runs until shutdown, or until a source ends on its own (then the watchdog sees this task end).
    pub async fn supervise(self: Arc<Self>) {
        let taken = self.ended_rx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut ended) = taken else { return };
        tokio::select! {
            () = self.shutdown.cancelled() => {}
            serial = ended.recv() => {
                if let Some(serial) = serial {
                    tracing::error!(device = %serial, "a device source ended on its own");
                }
            }
        }
    }

    /// Stops every source and the push receiver; waits for them (shutdown has been signalled).
    pub async fn stop_all(&self) {
        let mut inner = self.inner.lock().await;
        let devices = std::mem::take(&mut inner.devices);
        for (_, running) in devices {
            stop(running).await;
        }
        let background: Vec<_> = std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
        for task in background {
            if tokio::time::timeout(STOP_WAIT, task).await.is_err() {
                tracing::warn!("the push receiver did not stop in time");
            }
        }
    }

    /// The configured devices, as running now.
    pub async fn devices(&self) -> Vec<DeviceConfig> {
        self.inner.lock().await.devices.values().map(|r| r.config.clone()).collect()
    }

    /// The running configuration of `device`.
    pub async fn device(&self, device: &DeviceSerial) -> Option<DeviceConfig> {
        self.inner.lock().await.devices.get(device).map(|r| r.config.clone())
    }

    /// The job channel of a ZKTeco device's poller.
    pub async fn zk_jobs(&self, device: &DeviceSerial) -> Option<ZkJobs> {
        self.inner.lock().await.devices.get(device).and_then(|r| r.zk.clone())
    }

    /// Moves the running sources to `devices`.
    ///
    /// # Errors
    /// When the push receiver's address cannot be bound (then no push device runs; the rest do).
    pub async fn apply(&self, devices: Vec<DeviceConfig>) -> anyhow::Result<Applied> {
        let mut inner = self.inner.lock().await;
        let mut applied = Applied::default();
        let wanted: BTreeMap<DeviceSerial, DeviceConfig> = devices.into_iter().map(|d| (d.serial.clone(), d)).collect();
        let current: Vec<DeviceSerial> = inner.devices.keys().cloned().collect();
        for serial in current {
            match wanted.get(&serial) {
                Some(config) if inner.devices.get(&serial).is_some_and(|r| &r.config == config) => {}
                Some(_) => {
                    if let Some(running) = inner.devices.remove(&serial) {
                        stop(running).await;
                    }
                    applied.changed.push(serial);
                }
                None => {
                    if let Some(running) = inner.devices.remove(&serial) {
                        stop(running).await;
                    }
                    self.board.forget(&serial);
                    applied.removed.push(serial);
                }
            }
        }
        for (serial, config) in wanted {
            if inner.devices.contains_key(&serial) {
                continue;
            }
            if !applied.changed.contains(&serial) {
                applied.added.push(serial.clone());
            }
            match self.start(&config) {
                Ok(running) => {
                    inner.devices.insert(serial, running);
                }
                Err(e) => {
                    let why = format!("{e:#}");
                    self.board.register(&serial);
                    self.board.fault(&serial, chrono::Utc::now(), "source_not_started", why.clone());
                    applied.failed.push((serial, why));
                }
            }
        }
        let push: Vec<AdmsDevice> = inner.devices.values().filter_map(|r| adms_device(&r.config)).collect();
        let bound = self.update_receiver(&mut inner, push).await;
        if !applied.added.is_empty() || !applied.changed.is_empty() || !applied.removed.is_empty() {
            tracing::info!(summary = %applied.summary(), "device sources updated");
        }
        bound.map(|()| applied)
    }

    /// Stops the device's source and starts it again with the same configuration.
    ///
    /// # Errors
    /// For a device that is not configured, or a push device (which has no source of its own).
    pub async fn restart(&self, device: &DeviceSerial) -> Result<(), String> {
        let mut inner = self.inner.lock().await;
        let Some(running) = inner.devices.remove(device) else {
            return Err(format!("device {device} is not configured on this agent"));
        };
        let config = running.config.clone();
        if config.settings.kind() == "adms" {
            inner.devices.insert(device.clone(), running);
            return Err(format!("device {device} pushes to the agent: it has no source to restart"));
        }
        stop(running).await;
        let started = self.start(&config).map_err(|e| format!("{e:#}"))?;
        inner.devices.insert(device.clone(), started);
        Ok(())
    }

    /// Builds and spawns the source of one device.
    fn start(&self, device: &DeviceConfig) -> anyhow::Result<Running> {
        self.board.register(&device.serial);
        let stop = self.shutdown.child_token();
        let sink = Arc::new(self.buffer.clone());
        let site = self.site.clone();
        let board = self.board.clone();
        let context = || format!("device {}", device.serial);
        let mut zk = None;
        let task: Option<JoinHandle<()>> = match &device.settings {
            DeviceSettings::Adms(settings) => {
                settings.allowed_networks().map_err(anyhow::Error::msg).with_context(context)?;
                None
            }
            DeviceSettings::Serial(settings) => {
                let reader = crate::serial::settings::device_config(&site, device, settings)
                    .map_err(anyhow::Error::msg)
                    .with_context(context)?;
                Some(tokio::spawn(crate::serial::run(reader, sink, board, stop.clone())))
            }
            DeviceSettings::Modbus(settings) => {
                let poller = crate::modbus::settings::device_config(&site, device, settings)
                    .map_err(anyhow::Error::msg)
                    .with_context(context)?;
                Some(tokio::spawn(crate::modbus::run(poller, sink, board, stop.clone())))
            }
            DeviceSettings::Hikvision(settings) => {
                let (terminal, session) = crate::hikvision::build(&site, device, settings)
                    .map_err(anyhow::Error::msg)
                    .with_context(context)?;
                Some(tokio::spawn(crate::hikvision::run(terminal, session, sink, board, stop.clone())))
            }
            DeviceSettings::Dahua(settings) => {
                let (terminal, session) =
                    crate::dahua::build(&site, device, settings).map_err(anyhow::Error::msg).with_context(context)?;
                Some(tokio::spawn(crate::dahua::run(terminal, session, sink, board, stop.clone())))
            }
            DeviceSettings::Sql(settings) => {
                let source =
                    crate::sql::build(&site, device, settings).map_err(anyhow::Error::msg).with_context(context)?;
                Some(tokio::spawn(crate::sql::run(source, sink, board, stop.clone())))
            }
            DeviceSettings::Zk(settings) => {
                let (jobs, inbox) = crate::zk::jobs::channel();
                zk = Some(jobs);
                let config = zk_config(device, settings);
                Some(tokio::spawn(poller::run_with_jobs(site, config, sink, board, stop.clone(), Some(inbox))))
            }
        };
        let task = task.map(|task| {
            let (ended, serial, token) = (self.ended.clone(), device.serial.clone(), stop.clone());
            tokio::spawn(async move {
                let _ = task.await;
                if !token.is_cancelled() {
                    let _ = ended.send(serial);
                }
            })
        });
        Ok(Running { config: device.clone(), stop, task, zk })
    }

    /// Gives the push receiver its devices, binding it when the first push device appears.
    async fn update_receiver(&self, inner: &mut Inner, push: Vec<AdmsDevice>) -> anyhow::Result<()> {
        if let Some(receiver) = &inner.receiver {
            receiver.set_devices(push);
            return Ok(());
        }
        self.push_commands.set_known(push.iter().map(|d| d.serial.clone()));
        if push.is_empty() {
            return Ok(());
        }
        let adms = &self.adms;
        let listener = TcpListener::bind(adms.listen)
            .await
            .with_context(|| format!("binding the push receiver address {} (adms.listen)", adms.listen))?;
        let address = listener.local_addr()?;
        let receiver = Arc::new(AdmsReceiver::new(
            Arc::new(self.buffer.clone()),
            self.board.clone(),
            AdmsOptions {
                site: self.site.clone(),
                devices: push,
                max_body_bytes: adms.max_body_bytes,
                unknown_log_interval: adms.unknown_log_interval,
                poll_delay_secs: adms.poll_delay_secs,
                error_delay_secs: adms.error_delay_secs,
            },
            self.push_commands.clone(),
        ));
        let stop = self.shutdown.clone();
        let served = receiver.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = crate::adms::server::serve(listener, served, stop).await {
                tracing::error!(error = %e, "push receiver stopped");
            }
        });
        self.background.lock().unwrap_or_else(|p| p.into_inner()).push(task);
        inner.receiver = Some(receiver);
        println!("edge-agent adms listening on http://{address}");
        Ok(())
    }
}

/// Stops one source and waits for it (aborting it after [`STOP_WAIT`]).
async fn stop(running: Running) {
    running.stop.cancel();
    if let Some(mut task) = running.task {
        if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
            tracing::warn!(device = %running.config.serial, "the source did not stop in time; aborting it");
            task.abort();
        }
    }
}

/// The push receiver's view of a push device.
fn adms_device(device: &DeviceConfig) -> Option<AdmsDevice> {
    let DeviceSettings::Adms(settings) = &device.settings else { return None };
    Some(AdmsDevice {
        serial: device.serial.clone(),
        zone: device.time_zone,
        direction: device.direction,
        allow_from: settings.allowed_networks().ok()?,
    })
}

/// The poller's settings for a `[[device]]` of kind `zk`. The configured serial is the expected one: a device
/// answering with another serial at that address is refused rather than filed under the wrong name.
pub fn zk_config(device: &DeviceConfig, settings: &ZkSettings) -> ZkDeviceConfig {
    let mut config = ZkDeviceConfig::new(settings.host.clone(), device.time_zone);
    config.port = settings.port;
    config.comm_key = settings.comm_key;
    config.poll_interval_secs = settings.poll_interval_secs.max(1);
    config.transport =
        if settings.protocol.as_deref() == Some("udp") { TransportKind::Udp } else { TransportKind::Tcp };
    config.direction = device.direction;
    config.expected_serial = Some(device.serial.clone());
    if let Some(strict) = settings.strict_checksum {
        config.strict_checksum = strict;
    }
    if let Some(max) = settings.max_clock_drift_secs {
        config.max_clock_drift_secs = max;
    }
    config.clear_log_when_acknowledged = settings.clear_log_when_acknowledged;
    config.set_clock = settings.set_clock;
    config
}

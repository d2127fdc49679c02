//! What the push receiver does with each request, apart from HTTP: who the device is, the handshake options, storing
//! rows and stamps, the PIN->name map, commands. The handlers in `server` only translate to and from HTTP.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use chrono_tz::Tz;
use protocol::{DeviceSerial, Direction, Pin, Punch, PunchSource, PunchState, SiteId, VerifyMode};

use super::attlog::{self, Parsed};
use super::commands::CommandQueue;
use crate::device_status::{Contact, DeviceStatusBoard};
use crate::sink::{PunchSink, SinkError};

/// The device fault raised for a serial that is not configured at this site.
pub const UNKNOWN_DEVICE_FAULT: &str = "unknown_push_device";
/// The device fault raised for a push naming a configured serial from an address outside its `allow_from`.
pub const FOREIGN_ADDRESS_FAULT: &str = "push_from_unexpected_address";
/// Distinct unknown serials raised as device faults; more are only logged, so strangers cannot grow the board.
const MAX_UNKNOWN_FAULTS: usize = 16;
/// Distinct unknown serials whose last log time is remembered.
const MAX_UNKNOWN_TRACKED: usize = 1024;
/// Users remembered per device.
const MAX_USERS: usize = 100_000;
/// Skipped rows logged one by one per body; the rest are summarised.
const LOGGED_SKIPS: usize = 10;

/// The cursor holding a table's stamp: `adms.stamp.ATTLOG`, `adms.stamp.OPERLOG`.
pub fn stamp_cursor(table: &str) -> String {
    format!("adms.stamp.{table}")
}
/// The cursor holding the PIN->name map (JSON).
pub const USERS_CURSOR: &str = "adms.users";

/// A configured push device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmsDevice {
    pub serial: DeviceSerial,
    pub zone: Tz,
    pub direction: Direction,
    /// Networks the device may push from; empty accepts any address.
    pub allow_from: Vec<ipnet::IpNet>,
}

impl AdmsDevice {
    /// Whether a push from `peer` may speak for this device.
    pub fn allows(&self, peer: std::net::IpAddr) -> bool {
        // An IPv4 sender reaching a dual-stack listener shows up as ::ffff:a.b.c.d.
        let peer = match peer {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.allow_from.is_empty() || self.allow_from.iter().any(|net| net.contains(&peer))
    }
}

/// How the receiver behaves.
#[derive(Debug, Clone)]
pub struct AdmsOptions {
    pub site: SiteId,
    pub devices: Vec<AdmsDevice>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// An unknown serial is logged at most once per this interval.
    pub unknown_log_interval: Duration,
    /// `Delay`: seconds between a device's command polls.
    pub poll_delay_secs: u32,
    /// `ErrorDelay`: seconds a device waits after a failed request.
    pub error_delay_secs: u32,
}

/// The outcome of a request, for the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with this text.
    Text(String),
    /// The serial is not configured here (403).
    UnknownDevice,
    /// The rows are not stored; the device must retry later (503).
    Retry(String),
}

/// The receiver's state, shared by the handlers.
pub struct AdmsReceiver<S> {
    sink: Arc<S>,
    board: DeviceStatusBoard,
    options: AdmsOptions,
    /// The configured push devices by serial; replaced in place when a managed configuration changes them.
    devices: std::sync::RwLock<HashMap<String, AdmsDevice>>,
    commands: Arc<CommandQueue>,
    unknown: Mutex<HashMap<String, Instant>>,
    users: tokio::sync::Mutex<HashMap<DeviceSerial, BTreeMap<String, String>>>,
    stamps: tokio::sync::Mutex<()>,
}

impl<S: PunchSink> AdmsReceiver<S> {
    pub fn new(sink: Arc<S>, board: DeviceStatusBoard, options: AdmsOptions, commands: Arc<CommandQueue>) -> Self {
        let devices = options.devices.iter().map(|d| (d.serial.as_str().to_owned(), d.clone())).collect();
        Self {
            sink,
            board,
            options,
            devices: std::sync::RwLock::new(devices),
            commands,
            unknown: Mutex::default(),
            users: tokio::sync::Mutex::default(),
            stamps: tokio::sync::Mutex::new(()),
        }
    }

    pub fn options(&self) -> &AdmsOptions {
        &self.options
    }

    pub fn commands(&self) -> &Arc<CommandQueue> {
        &self.commands
    }

    /// Replaces the configured push devices (a managed configuration changed them); the command queue takes
    /// commands for exactly these serials from now on.
    pub fn set_devices(&self, devices: Vec<AdmsDevice>) {
        self.commands.set_known(devices.iter().map(|d| d.serial.clone()));
        let map = devices.into_iter().map(|d| (d.serial.as_str().to_owned(), d)).collect();
        *self.devices.write().unwrap_or_else(|p| p.into_inner()) = map;
    }

    /// The configured device with serial `sn` pushing from `peer`; an unknown serial, or a known one pushing from an
    /// address outside its `allow_from`, is refused, logged (once per interval) and raised as a fault.
    pub fn device(&self, sn: Option<&str>, peer: std::net::IpAddr, path: &str) -> Option<AdmsDevice> {
        let sn = sn.unwrap_or("");
        let known = self.devices.read().unwrap_or_else(|p| p.into_inner()).get(sn).cloned();
        if let Some(device) = known {
            if device.allows(peer) {
                return Some(device);
            }
            if self.due(&format!("{sn}@{peer}")) {
                tracing::warn!(
                    device = %device.serial, %peer, path,
                    "push for a configured serial from an address outside its allow_from; refused"
                );
                self.board.fault(
                    &device.serial,
                    Utc::now(),
                    FOREIGN_ADDRESS_FAULT,
                    format!("a push naming {} came from {peer}, which its allow_from does not list", device.serial),
                );
            }
            return None;
        }
        let now = Instant::now();
        let mut unknown = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        let due = unknown.get(sn).is_none_or(|last| now.duration_since(*last) >= self.options.unknown_log_interval);
        if due {
            if unknown.len() >= MAX_UNKNOWN_TRACKED {
                unknown.clear();
            }
            let first = !unknown.contains_key(sn);
            unknown.insert(sn.to_owned(), now);
            tracing::warn!(serial = %sn.escape_debug(), path, "push from a serial not configured at this site; refused");
            if let (true, Ok(serial)) = (first && unknown.len() <= MAX_UNKNOWN_FAULTS, sn.parse::<DeviceSerial>()) {
                self.board.fault(
                    &serial,
                    Utc::now(),
                    UNKNOWN_DEVICE_FAULT,
                    format!("device {serial} pushes to this agent but is not configured for the site"),
                );
            }
        }
        None
    }

    /// Whether a refusal named `key` is due to be logged again (once per `unknown_log_interval`).
    fn due(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(key).is_some_and(|last| now.duration_since(*last) < self.options.unknown_log_interval) {
            return false;
        }
        if seen.len() >= MAX_UNKNOWN_TRACKED {
            seen.clear();
        }
        seen.insert(key.to_owned(), now);
        true
    }

    /// The handshake: the options block, with the stamps stored for the device.
    ///
    /// # Errors
    /// When the stored stamps cannot be read.
    pub async fn handshake(&self, device: &AdmsDevice) -> Result<String, SinkError> {
        let attlog = self.stamp(&device.serial, "ATTLOG").await?;
        let operlog = self.stamp(&device.serial, "OPERLOG").await?;
        self.board.success(&device.serial, Utc::now(), Contact::default());
        tracing::info!(device = %device.serial, attlog_stamp = attlog, "push device handshake");
        Ok(format!(
            "GET OPTION FROM: {sn}\nATTLOGStamp={attlog}\nOPERLOGStamp={operlog}\nATTPHOTOStamp=0\n\
             ErrorDelay={error}\nDelay={delay}\nTransTimes=00:00;14:05\nTransInterval=1\n\
             TransFlag=TransData AttLog\tOpLog\tEnrollUser\nRealtime=1\nEncrypt=None\n\
             ServerVer=edge-agent {version}\nPushProtVer=2.4.1\n",
            sn = device.serial,
            error = self.options.error_delay_secs,
            delay = self.options.poll_delay_secs,
            version = env!("CARGO_PKG_VERSION"),
        ))
    }

    /// The stored stamp of `table` for a device (0 when none).
    ///
    /// # Errors
    /// When the sink cannot be read.
    pub async fn stamp(&self, device: &DeviceSerial, table: &str) -> Result<u64, SinkError> {
        let raw = self.sink.cursor(device, &stamp_cursor(table)).await?;
        Ok(raw.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok()).map_or(0, u64::from_be_bytes))
    }

    /// Stores `stamp` for `table` if it is higher than the one stored.
    async fn advance_stamp(&self, device: &DeviceSerial, table: &str, stamp: u64) -> Result<(), SinkError> {
        let _guard = self.stamps.lock().await;
        if stamp > self.stamp(device, table).await? {
            self.sink.set_cursor(device, &stamp_cursor(table), stamp.to_be_bytes().to_vec()).await?;
        }
        Ok(())
    }

    /// A posted table. `ATTLOG` rows are stored and answered `OK` only once durable; user records update the
    /// PIN->name map; anything else is accepted and dropped.
    pub async fn upload(&self, device: &AdmsDevice, table: &str, stamp: Option<u64>, body: &[u8]) -> Reply {
        let result = match table {
            "ATTLOG" => self.attlog(device, body).await,
            "OPERLOG" | "USERINFO" | "USER" => self.users(device, body).await.map(|()| Ok(())),
            other => {
                tracing::debug!(device = %device.serial, table = %other.escape_debug(), bytes = body.len(), "table ignored");
                Ok(Ok(()))
            }
        };
        match result {
            Ok(Ok(())) => {}
            Ok(Err(reply)) => return reply,
            Err(e) => return self.refuse(device, &e),
        }
        if let (Some(stamp), "ATTLOG" | "OPERLOG") = (stamp, table) {
            if let Err(e) = self.advance_stamp(&device.serial, table, stamp).await {
                return self.refuse(device, &e);
            }
        }
        self.board.success(&device.serial, Utc::now(), Contact::default());
        Reply::Text("OK".into())
    }

    fn refuse(&self, device: &AdmsDevice, error: &SinkError) -> Reply {
        tracing::warn!(device = %device.serial, error = %error, "push not stored; the device will send it again");
        Reply::Retry(format!("ERROR: {error}"))
    }

    async fn attlog(&self, device: &AdmsDevice, body: &[u8]) -> Result<Result<(), Reply>, SinkError> {
        let Parsed { rows, skipped, skipped_total, truncated } = attlog::parse_attlog(body);
        let mut punches = Vec::with_capacity(rows.len());
        let mut bad_pins = 0usize;
        for row in rows {
            match row.pin.parse::<Pin>() {
                Ok(pin) => punches.push(
                    Punch::from_device(
                        self.options.site.clone(),
                        device.serial.clone(),
                        pin,
                        row.time,
                        device.zone,
                        PunchState::from_code(row.status),
                        VerifyMode::from_code(row.verify),
                        row.work_code,
                        PunchSource::AdmsPush,
                        device.direction,
                    )
                    .with_raw_codes(Some(u32::from(row.status)), Some(u32::from(row.verify))),
                ),
                Err(e) => {
                    bad_pins += 1;
                    tracing::warn!(device = %device.serial, pin = %row.pin.escape_debug(), error = %e,
                        "push row skipped: bad PIN");
                }
            }
        }
        for skip in skipped.iter().take(LOGGED_SKIPS) {
            tracing::warn!(device = %device.serial, line = skip.line, reason = %skip.reason, "push row skipped");
        }
        if skipped_total > LOGGED_SKIPS {
            tracing::warn!(device = %device.serial, more = skipped_total - LOGGED_SKIPS, "more push rows skipped");
        }
        let count = punches.len();
        let appended = self.sink.append(punches).await?;
        self.board.punches_read(&device.serial, appended.new as u64);
        tracing::debug!(device = %device.serial, rows = count, new = appended.new, skipped = skipped_total + bad_pins,
            "push rows stored");
        if truncated {
            // The rows read are stored; the device sends the body again and the key index drops them.
            return Ok(Err(Reply::Retry(format!("ERROR: more than {} lines in one body", attlog::MAX_ROWS))));
        }
        Ok(Ok(()))
    }

    async fn users(&self, device: &AdmsDevice, body: &[u8]) -> Result<(), SinkError> {
        let parsed = attlog::parse_users(body);
        if parsed.rows.is_empty() {
            return Ok(());
        }
        let mut users = self.users.lock().await;
        let map = self.user_map(&mut users, &device.serial).await?;
        for user in parsed.rows {
            if map.len() < MAX_USERS || map.contains_key(&user.pin) {
                map.insert(user.pin, user.name);
            }
        }
        let json = serde_json::to_vec(&*map).map_err(|e| SinkError::Storage(e.to_string()))?;
        self.sink.set_cursor(&device.serial, USERS_CURSOR, json).await
    }

    async fn user_map<'a>(
        &self,
        users: &'a mut HashMap<DeviceSerial, BTreeMap<String, String>>,
        device: &DeviceSerial,
    ) -> Result<&'a mut BTreeMap<String, String>, SinkError> {
        if !users.contains_key(device) {
            let stored = self.sink.cursor(device, USERS_CURSOR).await?;
            let map = stored.and_then(|raw| serde_json::from_slice(&raw).ok()).unwrap_or_default();
            users.insert(device.clone(), map);
        }
        Ok(users.entry(device.clone()).or_default())
    }

    /// The name a device gave for `pin`, from its user records.
    ///
    /// # Errors
    /// When the stored map cannot be read.
    pub async fn user_name(&self, device: &DeviceSerial, pin: &str) -> Result<Option<String>, SinkError> {
        let mut users = self.users.lock().await;
        Ok(self.user_map(&mut users, device).await?.get(pin).cloned())
    }

    /// `getrequest`: the waiting commands as `C:<id>:<command>` lines, or `OK`. `info` is the device's `INFO`
    /// parameter (`firmware,users,fingerprints,records,ip,...`), which updates its counts.
    pub fn poll(&self, device: &AdmsDevice, info: Option<&str>) -> String {
        let mut contact = Contact::default();
        if let Some(info) = info {
            let fields: Vec<&str> = info.split(',').collect();
            contact.user_count = fields.get(1).and_then(|v| v.trim().parse().ok());
            contact.record_count = fields.get(3).and_then(|v| v.trim().parse().ok());
        }
        self.board.success(&device.serial, Utc::now(), contact);
        let commands = self.commands.take(&device.serial);
        if commands.is_empty() {
            return "OK".into();
        }
        commands.iter().map(|(id, text)| format!("C:{id}:{text}\n")).collect()
    }

    /// `devicecmd`: records the results the device reports.
    pub fn command_results(&self, device: &AdmsDevice, body: &[u8]) -> String {
        let parsed = attlog::parse_command_returns(body);
        let now = Utc::now();
        for result in &parsed.rows {
            if !self.commands.record(&device.serial, result, now) {
                tracing::warn!(device = %device.serial, id = result.id, "result for a command not sent to this device");
            }
        }
        for skip in parsed.skipped.iter().take(LOGGED_SKIPS) {
            tracing::warn!(device = %device.serial, line = skip.line, reason = %skip.reason, "command result skipped");
        }
        "OK".into()
    }
}

//! The four messages that travel between agent and central, each carrying [`crate::PROTOCOL_VERSION`] first.
//!
//! - [`PunchBatch`]: agent -> central, punches with the agent's buffer sequence numbers.
//! - [`BatchAck`]: central -> agent, sent only after the batch is committed (or refused, with the reason).
//! - [`AgentStatus`]: agent -> central heartbeat: buffer depth, devices, faults, command results.
//! - [`AgentCommand`]: central -> agent, something for the agent to do to a device.
//!
//! Each type's `validate` enforces what serde cannot: counts, text lengths and the consistency between fields.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::DecodeError;
use crate::ids::{AgentId, DeviceSerial, Pin, SiteId};
use crate::limits::{
    MAX_DEVICES_PER_STATUS, MAX_LIST_ITEMS, MAX_PUNCHES_PER_BATCH, MAX_TEXT_LEN, MAX_USERS_PER_COMMAND,
};
use crate::punch::Punch;

/// A punch together with the sequence number the agent's buffer gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencedPunch {
    pub seq: u64,
    pub punch: Punch,
}

/// Punches from one agent, covering the agent's sequence numbers `first_seq..=last_seq`.
///
/// Sequence numbers are strictly increasing within the batch; there may be gaps (numbers whose punches were already
/// acknowledged). Every punch belongs to the batch's site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PunchBatch {
    pub version: u16,
    pub agent: AgentId,
    pub site: SiteId,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Chosen at random for every batch the agent sends, and echoed in its [`BatchAck`], so that an answer to one
    /// batch can never be taken for the answer to another batch over the same range. Since protocol version 2 (a
    /// version 1 batch decodes with [`BatchId::NONE`]).
    pub batch_id: BatchId,
    #[serde(with = "crate::time::wire_utc")]
    pub sent_at: DateTime<Utc>,
    pub punches: Vec<SequencedPunch>,
}

impl PunchBatch {
    /// Builds a batch from punches already in sequence order, with a fresh random [`BatchId`]; the range is taken
    /// from the first and last.
    pub fn new(agent: AgentId, site: SiteId, sent_at: DateTime<Utc>, punches: Vec<SequencedPunch>) -> Self {
        let first_seq = punches.first().map_or(0, |p| p.seq);
        let last_seq = punches.last().map_or(0, |p| p.seq);
        Self {
            version: crate::PROTOCOL_VERSION,
            agent,
            site,
            first_seq,
            last_seq,
            batch_id: BatchId::random(),
            sent_at,
            punches,
        }
    }

    /// Checks counts, the sequence range and that every punch belongs to the batch's site.
    ///
    /// # Errors
    /// [`DecodeError::TooMany`] over [`MAX_PUNCHES_PER_BATCH`], [`DecodeError::Invalid`] naming the field otherwise.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.punches.len() > MAX_PUNCHES_PER_BATCH {
            return Err(DecodeError::TooMany {
                what: "punches",
                count: self.punches.len(),
                limit: MAX_PUNCHES_PER_BATCH,
            });
        }
        if self.punches.is_empty() {
            return Err(DecodeError::invalid("punches", "a batch must carry at least one punch"));
        }
        if self.first_seq > self.last_seq {
            return Err(DecodeError::invalid(
                "first_seq",
                format!("first_seq {} is after last_seq {}", self.first_seq, self.last_seq),
            ));
        }
        let mut previous: Option<u64> = None;
        for (index, item) in self.punches.iter().enumerate() {
            if item.seq < self.first_seq || item.seq > self.last_seq {
                return Err(DecodeError::invalid(
                    "punches.seq",
                    format!("punch {index} has seq {} outside {}..={}", item.seq, self.first_seq, self.last_seq),
                ));
            }
            if previous.is_some_and(|p| item.seq <= p) {
                return Err(DecodeError::invalid(
                    "punches.seq",
                    format!("punch {index} has seq {}, not after the one before it", item.seq),
                ));
            }
            previous = Some(item.seq);
            if item.punch.site != self.site {
                return Err(DecodeError::invalid(
                    "punches.site",
                    format!("punch {index} is for site {} in a batch for site {}", item.punch.site, self.site),
                ));
            }
        }
        Ok(())
    }
}

/// A batch's random identity (128 bits), echoed by its acknowledgement.
///
/// In bincode it is 16 bytes; in JSON 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BatchId(pub [u8; 16]);

impl BatchId {
    /// The id of a batch that has none (a version 1 batch, upgraded).
    pub const NONE: BatchId = BatchId([0; 16]);

    /// A fresh id from the thread's cryptographically secure generator.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The id as 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for BatchId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for BatchId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            Self::from_hex(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("batch_id {text:?} is not 32 hex digits")))
        } else {
            <[u8; 16]>::deserialize(d).map(Self)
        }
    }
}

/// The central service's answer to one [`PunchBatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAck {
    pub version: u16,
    pub agent: AgentId,
    /// The batch's `first_seq`, echoed so the agent can match the answer to what it sent.
    pub first_seq: u64,
    /// The batch's `last_seq`.
    pub last_seq: u64,
    /// The batch's [`BatchId`], echoed: an answer whose id differs from the batch in flight is not its answer.
    /// Since protocol version 2.
    pub batch_id: BatchId,
    pub outcome: AckOutcome,
}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckOutcome {
    /// Committed: every punch of the batch is accounted for. `new` were stored and not seen before, `duplicates`
    /// were already stored, `quarantined` were kept aside at central for an administrator (for example a punch
    /// naming another site's device). The agent may delete all of them.
    Stored { new: u32, duplicates: u32, quarantined: u32 },
    /// Refused without storing anything; the agent keeps the batch and reports the reason as a fault. `kind` says
    /// whether sending the same batch again can succeed.
    Rejected { reason: String, kind: RejectionKind },
}

/// Whether a refused batch may succeed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    /// A passing condition (storage unavailable, overloaded): send it again after a backoff.
    Retry,
    /// The batch itself will never be accepted (invalid content, a site the agent is not bound to): the agent sets it
    /// aside as a dead letter and goes on with the rest.
    Permanent,
    /// The agent's credentials were refused (unknown, revoked, wrong proof): nothing will be accepted until an operator
    /// fixes them; the agent keeps everything and waits.
    Unauthorized,
}

impl BatchAck {
    /// An acknowledgement that the batch `first_seq..=last_seq` is committed.
    pub fn stored(batch: &PunchBatch, new: u32, duplicates: u32, quarantined: u32) -> Self {
        Self {
            version: crate::PROTOCOL_VERSION,
            agent: batch.agent.clone(),
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            batch_id: batch.batch_id,
            outcome: AckOutcome::Stored { new, duplicates, quarantined },
        }
    }

    /// A refusal of a batch; the reason is cut to [`MAX_TEXT_LEN`].
    pub fn rejected(batch: &PunchBatch, kind: RejectionKind, reason: impl Into<String>) -> Self {
        Self::rejected_range(batch.agent.clone(), batch.first_seq, batch.last_seq, batch.batch_id, kind, reason)
    }

    /// A refusal of the batch `first_seq..=last_seq` with id `batch_id`, for a sender that could not decode the whole
    /// batch (only its range and id are known).
    pub fn rejected_range(
        agent: AgentId,
        first_seq: u64,
        last_seq: u64,
        batch_id: BatchId,
        kind: RejectionKind,
        reason: impl Into<String>,
    ) -> Self {
        let reason = truncate_text(reason.into());
        Self {
            version: crate::PROTOCOL_VERSION,
            agent,
            first_seq,
            last_seq,
            batch_id,
            outcome: AckOutcome::Rejected { reason, kind },
        }
    }

    /// Whether this answer is the answer to `batch`: same agent, range and id.
    pub fn answers(&self, batch: &PunchBatch) -> bool {
        self.agent == batch.agent
            && self.first_seq == batch.first_seq
            && self.last_seq == batch.last_seq
            && self.batch_id == batch.batch_id
    }

    /// The highest sequence number this answer makes safe to delete from the agent's buffer: `Some(last_seq)` when
    /// stored, `None` when rejected. Nothing else acknowledges a punch.
    pub fn acknowledged_up_to(&self) -> Option<u64> {
        match self.outcome {
            AckOutcome::Stored { .. } => Some(self.last_seq),
            AckOutcome::Rejected { .. } => None,
        }
    }

    /// Checks the range and text lengths.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.first_seq > self.last_seq {
            return Err(DecodeError::invalid("first_seq", "first_seq is after last_seq"));
        }
        if let AckOutcome::Rejected { reason, .. } = &self.outcome {
            check_text("outcome.reason", reason)?;
        }
        Ok(())
    }
}

/// A fault the agent raises about itself or a device (buffer full, device unreachable, unknown push serial...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// A short stable code, such as `buffer_full` or `device_unreachable`.
    pub code: String,
    /// What a person needs to know.
    pub message: String,
    /// When the fault was first raised.
    #[serde(with = "crate::time::wire_utc")]
    pub since: DateTime<Utc>,
}

/// The agent's view of one device.
///
/// Fields marked "since version 2" are absent (`None`, empty) in statuses upgraded from version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub device: DeviceSerial,
    /// The configured kind of source (`zk-tcp`, `zk-udp`, `adms`, `serial`, `modbus`, `sql`, `hikvision`, `dahua`,
    /// ...). Since version 2; empty when unknown.
    #[serde(default)]
    pub kind: String,
    /// Whether the last attempt to reach the device (or the last push from it) succeeded.
    pub reachable: bool,
    #[serde(with = "crate::time::wire_utc_opt")]
    pub last_success: Option<DateTime<Utc>>,
    /// When the newest punch read from this device happened (its UTC instant), when known. Since version 2.
    #[serde(default, with = "crate::time::wire_utc_opt")]
    pub last_punch: Option<DateTime<Utc>>,
    /// Attendance records stored on the device, when known.
    pub record_count: Option<u32>,
    /// Users enrolled on the device, when known.
    pub user_count: Option<u32>,
    /// Device clock minus agent clock, in seconds, when known.
    pub clock_drift_secs: Option<i64>,
    /// Model, firmware, platform and capacities as the device reports them. Since version 2.
    #[serde(default)]
    pub info: Option<DeviceInfo>,
    pub faults: Vec<Fault>,
}

impl DeviceStatus {
    /// A status that knows nothing yet but the device's serial: unreachable, no counts, no faults.
    pub fn new(device: DeviceSerial) -> Self {
        Self {
            device,
            kind: String::new(),
            reachable: false,
            last_success: None,
            last_punch: None,
            record_count: None,
            user_count: None,
            clock_drift_secs: None,
            info: None,
            faults: Vec::new(),
        }
    }
}

/// What a device says about itself, for the central inventory. Every field is optional: devices report what they
/// can. Since protocol version 2.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub platform: Option<String>,
    /// The serial number the device reports (it may differ from the configured one; that is a fault).
    pub reported_serial: Option<String>,
    pub user_capacity: Option<u32>,
    pub fingerprint_count: Option<u32>,
    pub fingerprint_capacity: Option<u32>,
    pub face_count: Option<u32>,
    pub face_capacity: Option<u32>,
    pub record_capacity: Option<u32>,
}

/// The result of an [`AgentCommand`], reported in the next status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    pub command_id: u64,
    pub ok: bool,
    pub detail: String,
    #[serde(with = "crate::time::wire_utc")]
    pub finished_at: DateTime<Utc>,
}

/// The agent's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub version: u16,
    pub agent: AgentId,
    pub site: SiteId,
    #[serde(with = "crate::time::wire_utc")]
    pub sent_at: DateTime<Utc>,
    /// The agent's software version.
    pub agent_version: String,
    pub uptime_secs: u64,
    /// Punches buffered and not yet acknowledged.
    pub buffer_depth: u64,
    /// Age of the oldest unacknowledged punch, when there is one.
    pub oldest_unacked_age_secs: Option<u64>,
    pub devices: Vec<DeviceStatus>,
    /// Faults of the agent itself (buffer, disk, link).
    pub faults: Vec<Fault>,
    pub command_results: Vec<CommandResult>,
    /// The host the agent runs on. Since version 2; empty in upgraded version 1 statuses.
    #[serde(default)]
    pub hostname: String,
    /// Punches set aside as dead letters (refused for good by central), kept until an operator acts. Since version 2.
    #[serde(default)]
    pub dead_letters: u64,
    /// The version of the centrally managed configuration the agent runs, when it is managed. Since version 2.
    #[serde(default)]
    pub config_version: Option<u64>,
}

impl AgentStatus {
    /// Checks list sizes and text lengths.
    ///
    /// # Errors
    /// [`DecodeError::TooMany`] or [`DecodeError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_text("agent_version", &self.agent_version)?;
        check_text("hostname", &self.hostname)?;
        check_count("devices", self.devices.len(), MAX_DEVICES_PER_STATUS)?;
        check_faults("faults", &self.faults)?;
        check_count("command_results", self.command_results.len(), MAX_LIST_ITEMS)?;
        for result in &self.command_results {
            check_text("command_results.detail", &result.detail)?;
        }
        for device in &self.devices {
            check_faults("devices.faults", &device.faults)?;
            check_text("devices.kind", &device.kind)?;
            if let Some(info) = &device.info {
                for text in [&info.model, &info.firmware, &info.platform, &info.reported_serial].into_iter().flatten() {
                    check_text("devices.info", text)?;
                }
            }
        }
        Ok(())
    }
}

/// Something the central service asks an agent to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCommand {
    pub version: u16,
    /// Chosen by the central service; echoed in the [`CommandResult`].
    pub command_id: u64,
    pub agent: AgentId,
    #[serde(with = "crate::time::wire_utc")]
    pub issued_at: DateTime<Utc>,
    /// After this instant the agent must not carry the command out (it reports it as expired). Since version 2.
    #[serde(default, with = "crate::time::wire_utc_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    pub action: CommandAction,
}

/// The actions an agent understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandAction {
    /// Set the device clock to the agent's clock in the device's zone.
    SyncDeviceClock { device: DeviceSerial },
    /// Read the device log again (from `since`, or all of it); the buffer drops what it already has.
    ResyncDevice { device: DeviceSerial, since: Option<NaiveDate> },
    /// Read device info and counts now and report them in the next status.
    RefreshDeviceInfo { device: DeviceSerial },
    /// Clear the device log, but only if every record on it is already acknowledged by the central service.
    ClearDeviceLog { device: DeviceSerial },
    /// Send a status envelope now.
    SendStatus,
    // Variants below were added for central fleet management (issue 17), at the end so that the bytes of the ones
    // above do not change.
    /// Read the device now: its source reads what is new without waiting for its interval.
    PullNow { device: DeviceSerial },
    /// Stop the device's source and start it again (a new connection, a history read from its cursor).
    RestartSource { device: DeviceSerial },
    /// Fetch the managed configuration now and apply it.
    ReloadConfig,
    /// A command for a push (ADMS) device, queued for its next poll; the result is the device's return code.
    PushDevice { device: DeviceSerial, command: PushCommand },
    /// Write these users to the device: added, or replaced when the PIN is already there.
    SetUsers { device: DeviceSerial, users: Vec<DeviceUser> },
    /// Delete these PINs (and their fingerprint templates) from the device; a PIN that is not there is not an error.
    DeleteUsers { device: DeviceSerial, pins: Vec<Pin> },
    /// Read the fingerprint templates of `pin` from the device `from` (where the person enrolled) and write them,
    /// with the user, to each device of `to`.
    CopyTemplates { pin: Pin, from: DeviceSerial, to: Vec<DeviceSerial> },
    /// Write these users to the device (added, or replaced when the PIN is already there), each with only what
    /// central knows: a card or privilege left out keeps the device's. Supersedes [`Self::SetUsers`], which agents
    /// still carry out.
    WriteUsers { device: DeviceSerial, users: Vec<crate::users::UserUpdate> },
}

/// The commands a push (ADMS) device understands today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushCommand {
    /// Set the device clock to this local wall-clock time.
    SetTime {
        #[serde(with = "crate::time::wire_local")]
        time: NaiveDateTime,
    },
    /// Upload the attendance log again between these local times.
    Reupload {
        #[serde(with = "crate::time::wire_local")]
        from: NaiveDateTime,
        #[serde(with = "crate::time::wire_local")]
        until: NaiveDateTime,
    },
    /// Report the device's identity and counts.
    Info,
}

/// A person as a terminal stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceUser {
    pub pin: Pin,
    /// At most [`MAX_USER_NAME_LEN`] bytes (the 72-byte record's name field).
    pub name: String,
    /// The card number, 0 when none (a ZKTeco terminal then keeps the card it holds).
    pub card: u32,
    /// 0 user, 2 enroller, 6 administrator, 14 super administrator (the ZKTeco levels).
    pub privilege: u8,
}

/// The longest name a terminal keeps, in bytes.
pub const MAX_USER_NAME_LEN: usize = 24;
/// The privilege levels a terminal knows.
pub const USER_PRIVILEGES: [u8; 4] = [0, 2, 6, 14];

impl DeviceUser {
    /// Checks the name's length and characters and the privilege level.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_user_name(&self.pin, &self.name)?;
        check_privilege(&self.pin, self.privilege)
    }
}

/// Checks a user's name: its length and characters.
pub(crate) fn check_user_name(pin: &Pin, name: &str) -> Result<(), DecodeError> {
    if name.len() > MAX_USER_NAME_LEN {
        return Err(DecodeError::invalid(
            "users.name",
            format!("{} bytes for PIN {pin}, over the limit of {MAX_USER_NAME_LEN}", name.len()),
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(DecodeError::invalid("users.name", format!("control character in the name of {pin}")));
    }
    Ok(())
}

/// Checks a user's privilege level.
pub(crate) fn check_privilege(pin: &Pin, privilege: u8) -> Result<(), DecodeError> {
    if !USER_PRIVILEGES.contains(&privilege) {
        return Err(DecodeError::invalid("users.privilege", format!("{privilege} for PIN {pin} is not 0, 2, 6 or 14")));
    }
    Ok(())
}

impl CommandAction {
    /// The device the action is about, when it is about one.
    pub fn device(&self) -> Option<&DeviceSerial> {
        match self {
            Self::SyncDeviceClock { device }
            | Self::ResyncDevice { device, .. }
            | Self::RefreshDeviceInfo { device }
            | Self::ClearDeviceLog { device }
            | Self::PullNow { device }
            | Self::RestartSource { device }
            | Self::PushDevice { device, .. }
            | Self::SetUsers { device, .. }
            | Self::DeleteUsers { device, .. }
            | Self::WriteUsers { device, .. } => Some(device),
            Self::CopyTemplates { from, .. } => Some(from),
            Self::SendStatus | Self::ReloadConfig => None,
        }
    }

    /// A short stable name: `sync_clock`, `pull_now`, ...
    pub fn name(&self) -> &'static str {
        match self {
            Self::SyncDeviceClock { .. } => "sync_clock",
            Self::ResyncDevice { .. } => "reread",
            Self::RefreshDeviceInfo { .. } => "refresh_info",
            Self::ClearDeviceLog { .. } => "clear_log",
            Self::SendStatus => "send_status",
            Self::PullNow { .. } => "pull_now",
            Self::RestartSource { .. } => "restart_source",
            Self::ReloadConfig => "reload_config",
            Self::PushDevice { .. } => "push_command",
            Self::SetUsers { .. } => "set_users",
            Self::DeleteUsers { .. } => "delete_users",
            Self::CopyTemplates { .. } => "copy_templates",
            Self::WriteUsers { .. } => "write_users",
        }
    }
}

impl AgentCommand {
    /// Checks list sizes and the users carried.
    ///
    /// # Errors
    /// [`DecodeError::TooMany`] or [`DecodeError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        match &self.action {
            CommandAction::SetUsers { users, .. } => {
                check_count("users", users.len(), MAX_USERS_PER_COMMAND)?;
                for user in users {
                    user.validate()?;
                }
            }
            CommandAction::WriteUsers { users, .. } => {
                check_count("users", users.len(), MAX_USERS_PER_COMMAND)?;
                for user in users {
                    user.validate()?;
                }
            }
            CommandAction::DeleteUsers { pins, .. } => check_count("pins", pins.len(), MAX_USERS_PER_COMMAND)?,
            CommandAction::CopyTemplates { to, .. } => check_count("to", to.len(), MAX_DEVICES_PER_STATUS)?,
            _ => {}
        }
        Ok(())
    }
}

fn check_text(field: &'static str, text: &str) -> Result<(), DecodeError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(DecodeError::invalid(field, format!("{} bytes, over the limit of {MAX_TEXT_LEN}", text.len())));
    }
    Ok(())
}

fn check_count(what: &'static str, count: usize, limit: usize) -> Result<(), DecodeError> {
    if count > limit {
        return Err(DecodeError::TooMany { what, count, limit });
    }
    Ok(())
}

fn check_faults(field: &'static str, faults: &[Fault]) -> Result<(), DecodeError> {
    check_count(field, faults.len(), MAX_LIST_ITEMS)?;
    for fault in faults {
        check_text(field, &fault.code)?;
        check_text(field, &fault.message)?;
    }
    Ok(())
}

/// Cuts text to at most [`MAX_TEXT_LEN`] bytes on a character boundary.
pub fn truncate_text(mut text: String) -> String {
    if text.len() > MAX_TEXT_LEN {
        let mut end = MAX_TEXT_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

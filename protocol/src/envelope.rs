//! The four messages that travel between agent and central, each carrying [`crate::PROTOCOL_VERSION`] first.
//!
//! - [`PunchBatch`]: agent -> central, punches with the agent's buffer sequence numbers.
//! - [`BatchAck`]: central -> agent, sent only after the batch is committed (or refused, with the reason).
//! - [`AgentStatus`]: agent -> central heartbeat: buffer depth, devices, faults, command results.
//! - [`AgentCommand`]: central -> agent, something for the agent to do to a device.
//!
//! Each type's `validate` enforces what serde cannot: counts, text lengths and the consistency between fields.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::DecodeError;
use crate::ids::{AgentId, DeviceSerial, SiteId};
use crate::limits::{MAX_DEVICES_PER_STATUS, MAX_LIST_ITEMS, MAX_PUNCHES_PER_BATCH, MAX_TEXT_LEN};
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
    #[serde(with = "crate::time::wire_utc")]
    pub sent_at: DateTime<Utc>,
    pub punches: Vec<SequencedPunch>,
}

impl PunchBatch {
    /// Builds a batch from punches already in sequence order; the range is taken from the first and last.
    pub fn new(agent: AgentId, site: SiteId, sent_at: DateTime<Utc>, punches: Vec<SequencedPunch>) -> Self {
        let first_seq = punches.first().map_or(0, |p| p.seq);
        let last_seq = punches.last().map_or(0, |p| p.seq);
        Self { version: crate::PROTOCOL_VERSION, agent, site, first_seq, last_seq, sent_at, punches }
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

/// The central service's answer to one [`PunchBatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAck {
    pub version: u16,
    pub agent: AgentId,
    /// The batch's `first_seq`, echoed so the agent can match the answer to what it sent.
    pub first_seq: u64,
    /// The batch's `last_seq`.
    pub last_seq: u64,
    pub outcome: AckOutcome,
}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckOutcome {
    /// Committed: every punch of the batch is stored. `new` were not seen before, `duplicates` were.
    Stored { new: u32, duplicates: u32 },
    /// Refused without storing anything; the agent keeps the batch and reports the reason as a fault.
    Rejected { reason: String },
}

impl BatchAck {
    /// An acknowledgement that the batch `first_seq..=last_seq` is committed.
    pub fn stored(agent: AgentId, first_seq: u64, last_seq: u64, new: u32, duplicates: u32) -> Self {
        Self {
            version: crate::PROTOCOL_VERSION,
            agent,
            first_seq,
            last_seq,
            outcome: AckOutcome::Stored { new, duplicates },
        }
    }

    /// A refusal of the batch `first_seq..=last_seq`; the reason is cut to [`MAX_TEXT_LEN`].
    pub fn rejected(agent: AgentId, first_seq: u64, last_seq: u64, reason: impl Into<String>) -> Self {
        let reason = truncate_text(reason.into());
        Self { version: crate::PROTOCOL_VERSION, agent, first_seq, last_seq, outcome: AckOutcome::Rejected { reason } }
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
        if let AckOutcome::Rejected { reason } = &self.outcome {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub device: DeviceSerial,
    /// Whether the last attempt to reach the device (or the last push from it) succeeded.
    pub reachable: bool,
    #[serde(with = "crate::time::wire_utc_opt")]
    pub last_success: Option<DateTime<Utc>>,
    /// Attendance records stored on the device, when known.
    pub record_count: Option<u32>,
    /// Users enrolled on the device, when known.
    pub user_count: Option<u32>,
    /// Device clock minus agent clock, in seconds, when known.
    pub clock_drift_secs: Option<i64>,
    pub faults: Vec<Fault>,
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
}

impl AgentStatus {
    /// Checks list sizes and text lengths.
    ///
    /// # Errors
    /// [`DecodeError::TooMany`] or [`DecodeError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        check_text("agent_version", &self.agent_version)?;
        check_count("devices", self.devices.len(), MAX_DEVICES_PER_STATUS)?;
        check_faults("faults", &self.faults)?;
        check_count("command_results", self.command_results.len(), MAX_LIST_ITEMS)?;
        for result in &self.command_results {
            check_text("command_results.detail", &result.detail)?;
        }
        for device in &self.devices {
            check_faults("devices.faults", &device.faults)?;
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
}

impl AgentCommand {
    /// Nothing to check beyond what serde enforces; present so every envelope has the same shape.
    ///
    /// # Errors
    /// Never, today.
    pub fn validate(&self) -> Result<(), DecodeError> {
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

//! Protocol version 1, frozen: the envelopes agents of the first release send, and the acknowledgement they expect.
//!
//! A version 2 central service still accepts what a version 1 agent sends: [`crate::codec::decode_upgrading`]
//! decodes these types and turns them into the current ones, and [`crate::codec::encode_ack`] answers such an agent
//! in version 1. Nothing here changes any more; the golden vectors `tests/golden/v1_*` hold their bytes.
//!
//! What an upgrade fills in: a batch gets [`BatchId::NONE`] (version 1 acknowledgements carry no id), punches get no
//! raw codes, a device status gets no kind, info or last punch, an agent status no hostname, dead letters or
//! configuration version. What a downgrade drops: an acknowledgement's quarantined count is reported as duplicates
//! (the version 1 agent may delete them either way), and a refusal's kind is dropped (version 1 agents retry every
//! refusal).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::{self, BatchId};
use crate::ids::{AgentId, DeviceSerial, Pin, SiteId};
use crate::punch::{self, Direction, PunchState, VerifyMode};

/// The version number these types carry.
pub const VERSION: u16 = 1;

/// A version 1 punch: the current [`punch::Punch`] without raw codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Punch {
    pub site: SiteId,
    pub device: DeviceSerial,
    pub pin: Pin,
    #[serde(with = "crate::time::wire_local")]
    pub local_time: NaiveDateTime,
    #[serde(with = "crate::time::wire_utc")]
    pub utc_time: DateTime<Utc>,
    pub state: PunchState,
    pub verify: VerifyMode,
    pub work_code: u32,
    pub source: PunchSource,
    pub direction: Direction,
}

/// The sources version 1 knew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PunchSource {
    ZkPull,
    ZkRealtime,
    AdmsPush,
    Serial,
    Modbus,
    Sql,
    Manual,
}

impl From<PunchSource> for punch::PunchSource {
    fn from(source: PunchSource) -> Self {
        match source {
            PunchSource::ZkPull => Self::ZkPull,
            PunchSource::ZkRealtime => Self::ZkRealtime,
            PunchSource::AdmsPush => Self::AdmsPush,
            PunchSource::Serial => Self::Serial,
            PunchSource::Modbus => Self::Modbus,
            PunchSource::Sql => Self::Sql,
            PunchSource::Manual => Self::Manual,
        }
    }
}

impl From<Punch> for punch::Punch {
    fn from(p: Punch) -> Self {
        Self {
            site: p.site,
            device: p.device,
            pin: p.pin,
            local_time: p.local_time,
            utc_time: p.utc_time,
            state: p.state,
            verify: p.verify,
            work_code: p.work_code,
            source: p.source.into(),
            direction: p.direction,
            raw_state: None,
            raw_verify: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequencedPunch {
    pub seq: u64,
    pub punch: Punch,
}

/// A version 1 batch.
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

impl From<PunchBatch> for envelope::PunchBatch {
    fn from(b: PunchBatch) -> Self {
        Self {
            version: crate::PROTOCOL_VERSION,
            agent: b.agent,
            site: b.site,
            first_seq: b.first_seq,
            last_seq: b.last_seq,
            batch_id: BatchId::NONE,
            sent_at: b.sent_at,
            punches: b
                .punches
                .into_iter()
                .map(|p| envelope::SequencedPunch { seq: p.seq, punch: p.punch.into() })
                .collect(),
        }
    }
}

/// A version 1 acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAck {
    pub version: u16,
    pub agent: AgentId,
    pub first_seq: u64,
    pub last_seq: u64,
    pub outcome: AckOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckOutcome {
    Stored { new: u32, duplicates: u32 },
    Rejected { reason: String },
}

impl From<&envelope::BatchAck> for BatchAck {
    fn from(ack: &envelope::BatchAck) -> Self {
        let outcome = match &ack.outcome {
            envelope::AckOutcome::Stored { new, duplicates, quarantined } => {
                AckOutcome::Stored { new: *new, duplicates: duplicates.saturating_add(*quarantined) }
            }
            envelope::AckOutcome::Rejected { reason, .. } => AckOutcome::Rejected { reason: reason.clone() },
        };
        Self { version: VERSION, agent: ack.agent.clone(), first_seq: ack.first_seq, last_seq: ack.last_seq, outcome }
    }
}

/// A version 1 device status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceStatus {
    pub device: DeviceSerial,
    pub reachable: bool,
    #[serde(with = "crate::time::wire_utc_opt")]
    pub last_success: Option<DateTime<Utc>>,
    pub record_count: Option<u32>,
    pub user_count: Option<u32>,
    pub clock_drift_secs: Option<i64>,
    pub faults: Vec<envelope::Fault>,
}

/// A version 1 agent status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub version: u16,
    pub agent: AgentId,
    pub site: SiteId,
    #[serde(with = "crate::time::wire_utc")]
    pub sent_at: DateTime<Utc>,
    pub agent_version: String,
    pub uptime_secs: u64,
    pub buffer_depth: u64,
    pub oldest_unacked_age_secs: Option<u64>,
    pub devices: Vec<DeviceStatus>,
    pub faults: Vec<envelope::Fault>,
    pub command_results: Vec<envelope::CommandResult>,
}

impl From<AgentStatus> for envelope::AgentStatus {
    fn from(s: AgentStatus) -> Self {
        Self {
            version: crate::PROTOCOL_VERSION,
            agent: s.agent,
            site: s.site,
            sent_at: s.sent_at,
            agent_version: s.agent_version,
            uptime_secs: s.uptime_secs,
            buffer_depth: s.buffer_depth,
            oldest_unacked_age_secs: s.oldest_unacked_age_secs,
            devices: s
                .devices
                .into_iter()
                .map(|d| envelope::DeviceStatus {
                    reachable: d.reachable,
                    last_success: d.last_success,
                    record_count: d.record_count,
                    user_count: d.user_count,
                    clock_drift_secs: d.clock_drift_secs,
                    faults: d.faults,
                    ..envelope::DeviceStatus::new(d.device)
                })
                .collect(),
            faults: s.faults,
            command_results: s.command_results,
            hostname: String::new(),
            dead_letters: 0,
            config_version: None,
        }
    }
}

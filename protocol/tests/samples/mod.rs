//! Fixed sample values shared by the golden-vector and limit tests. Changing a sample changes its golden file: add a
//! new sample instead.

#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use protocol::*;

pub fn local(d: u32, h: u32, m: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap().and_hms_opt(h, m, s).unwrap()
}

pub fn utc(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

pub fn site() -> SiteId {
    "plant-1".parse().unwrap()
}

pub fn agent() -> AgentId {
    "gate-pc-01".parse().unwrap()
}

pub fn punch(pin: &str, time: NaiveDateTime, state: PunchState, source: PunchSource) -> Punch {
    Punch::from_device(
        site(),
        "CDQ9192960006".parse().unwrap(),
        pin.parse().unwrap(),
        time,
        chrono_tz::Asia::Kolkata,
        state,
        VerifyMode::Fingerprint,
        0,
        source,
        Direction::Both,
    )
}

/// The version 1 sample batch as a version 2 central reads it (`tests/golden/v1_batch.*`): no batch id, no raw codes.
pub fn batch_v1_upgraded() -> PunchBatch {
    let mut night = punch("A-17", local(21, 22, 1, 5), PunchState::Unknown(9), PunchSource::AdmsPush);
    night.verify = VerifyMode::Other(200);
    night.work_code = 70000;
    night.direction = Direction::Out;
    let mut batch = PunchBatch::new(
        agent(),
        site(),
        utc(1_795_300_000),
        vec![
            SequencedPunch {
                seq: 41,
                punch: punch("1001", local(21, 9, 5, 0), PunchState::CheckIn, PunchSource::ZkPull),
            },
            SequencedPunch {
                seq: 42,
                punch: punch("4822257", local(21, 18, 2, 59), PunchState::CheckOut, PunchSource::ZkRealtime),
            },
            SequencedPunch { seq: 300, punch: night },
        ],
    );
    batch.batch_id = BatchId::NONE;
    batch
}

pub fn batch() -> PunchBatch {
    let mut batch = batch_v1_upgraded();
    batch.batch_id = BatchId([0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xf0]);
    let card = &mut batch.punches[2].punch;
    card.verify = VerifyMode::Card;
    card.raw_verify = Some(4);
    card.raw_state = Some(9);
    let mut face = punch("2002", local(22, 7, 59, 58), PunchState::CheckIn, PunchSource::Hikvision);
    face.verify = VerifyMode::Face;
    face = face.with_raw_codes(None, Some(75));
    batch.punches.push(SequencedPunch { seq: 301, punch: face });
    batch.last_seq = 301;
    batch
}

/// The version 1 sample acknowledgement of a stored batch, as a version 2 central builds it.
pub fn ack_stored_v1() -> BatchAck {
    BatchAck::stored(&batch_v1_upgraded(), 2, 1, 0)
}

/// The version 1 sample refusal, as a version 2 central builds it.
pub fn ack_rejected_v1() -> BatchAck {
    BatchAck::rejected(
        &batch_v1_upgraded(),
        RejectionKind::Retry,
        "punch 2 is for site plant-2 in a batch for site plant-1",
    )
}

pub fn ack_stored() -> BatchAck {
    BatchAck::stored(&batch(), 2, 1, 1)
}

pub fn ack_rejected() -> BatchAck {
    BatchAck::rejected(&batch(), RejectionKind::Permanent, "punch 2 has a PIN over 32 bytes")
}

pub fn ack_unauthorized() -> BatchAck {
    BatchAck::rejected(&batch(), RejectionKind::Unauthorized, "agent gate-pc-01 is revoked")
}

/// The version 1 sample status as a version 2 central reads it (`tests/golden/v1_status.*`).
pub fn status_v1_upgraded() -> AgentStatus {
    AgentStatus {
        version: PROTOCOL_VERSION,
        agent: agent(),
        site: site(),
        sent_at: utc(1_795_300_030),
        agent_version: "0.1.0".into(),
        uptime_secs: 86_400,
        buffer_depth: 1_250,
        oldest_unacked_age_secs: Some(95),
        devices: vec![
            DeviceStatus {
                reachable: true,
                last_success: Some(utc(1_795_300_020)),
                record_count: Some(48_211),
                user_count: Some(312),
                clock_drift_secs: Some(-4),
                ..DeviceStatus::new("CDQ9192960006".parse().unwrap())
            },
            DeviceStatus {
                faults: vec![Fault {
                    code: "device_unreachable".into(),
                    message: "connect to 192.168.1.201:4370 timed out".into(),
                    since: utc(1_795_290_000),
                }],
                ..DeviceStatus::new("OIN7030067".parse().unwrap())
            },
        ],
        faults: vec![Fault {
            code: "link_down".into(),
            message: "central unreachable".into(),
            since: utc(1_795_299_000),
        }],
        command_results: vec![CommandResult {
            command_id: 7,
            ok: true,
            detail: "clock set".into(),
            finished_at: utc(1_795_300_010),
        }],
        hostname: String::new(),
        dead_letters: 0,
        config_version: None,
    }
}

pub fn status() -> AgentStatus {
    let mut status = status_v1_upgraded();
    status.hostname = "gate-pc-01.plant-1.local".into();
    status.dead_letters = 17;
    status.config_version = Some(12);
    let zk = &mut status.devices[0];
    zk.kind = "zk-tcp".into();
    zk.last_punch = Some(utc(1_795_299_900));
    zk.info = Some(DeviceInfo {
        model: Some("MB460".into()),
        firmware: Some("Ver 6.60 Apr 28 2017".into()),
        platform: Some("ZMM220_TFT".into()),
        reported_serial: Some("CDQ9192960006".into()),
        user_capacity: Some(3_000),
        fingerprint_count: Some(590),
        fingerprint_capacity: Some(3_000),
        face_count: None,
        face_capacity: None,
        record_capacity: Some(100_000),
    });
    status.devices[1].kind = "adms".into();
    status
}

pub fn commands() -> Vec<AgentCommand> {
    let device: DeviceSerial = "CDQ9192960006".parse().unwrap();
    let actions = vec![
        CommandAction::SyncDeviceClock { device: device.clone() },
        CommandAction::ResyncDevice { device: device.clone(), since: NaiveDate::from_ymd_opt(2026, 11, 1) },
        CommandAction::RefreshDeviceInfo { device: device.clone() },
        CommandAction::ClearDeviceLog { device: device.clone() },
        CommandAction::SendStatus,
        // Fleet commands (issue 17), added after the first five.
        CommandAction::PullNow { device: device.clone() },
        CommandAction::RestartSource { device: device.clone() },
        CommandAction::ReloadConfig,
        CommandAction::PushDevice {
            device: "OIN7030067".parse().unwrap(),
            command: PushCommand::Reupload { from: local(1, 0, 0, 0), until: local(2, 23, 59, 59) },
        },
        CommandAction::PushDevice {
            device: "OIN7030067".parse().unwrap(),
            command: PushCommand::SetTime { time: local(21, 9, 0, 0) },
        },
        CommandAction::SetUsers {
            device: device.clone(),
            users: vec![
                DeviceUser { pin: "1001".parse().unwrap(), name: "Asha Rao".into(), card: 0, privilege: 0 },
                DeviceUser { pin: "A-17".parse().unwrap(), name: "Ravi Kumar".into(), card: 4_822_257, privilege: 14 },
            ],
        },
        CommandAction::DeleteUsers { device: device.clone(), pins: vec!["4822257".parse().unwrap()] },
        CommandAction::CopyTemplates {
            pin: "1001".parse().unwrap(),
            from: device,
            to: vec!["CDQ9192960007".parse().unwrap(), "CDQ9192960008".parse().unwrap()],
        },
        CommandAction::PushDevice { device: "OIN7030067".parse().unwrap(), command: PushCommand::Info },
        CommandAction::WriteUsers {
            device: "CDQ9192960006".parse().unwrap(),
            users: vec![
                protocol::UserUpdate {
                    pin: "1001".parse().unwrap(),
                    name: "Asha Rao".into(),
                    card: None,
                    privilege: None,
                },
                protocol::UserUpdate {
                    pin: "A-17".parse().unwrap(),
                    name: "Ravi Kumar".into(),
                    card: Some(4_822_257),
                    privilege: Some(6),
                },
            ],
        },
    ];
    actions
        .into_iter()
        .enumerate()
        .map(|(i, action)| AgentCommand {
            version: PROTOCOL_VERSION,
            command_id: 1000 + i as u64,
            agent: agent(),
            issued_at: utc(1_795_300_100),
            expires_at: if i % 2 == 0 { Some(utc(1_795_303_700)) } else { None },
            action,
        })
        .collect()
}

/// A managed configuration: a ZKTeco terminal and a push terminal.
pub fn config() -> ManagedConfig {
    ManagedConfig {
        version: PROTOCOL_VERSION,
        agent: agent(),
        site: site(),
        config_version: 12,
        issued_at: utc(1_795_300_200),
        devices: vec![
            ManagedDevice {
                serial: "CDQ9192960006".parse().unwrap(),
                entry: r#"{"kind":"zk","serial":"CDQ9192960006","name":"Gate 1","time_zone":"Asia/Kolkata","direction":"BOTH","host":"192.168.1.201","port":4370}"#.into(),
            },
            ManagedDevice {
                serial: "OIN7030067".parse().unwrap(),
                entry: r#"{"kind":"adms","serial":"OIN7030067","time_zone":"Asia/Kolkata","allow_from":["192.168.1.0/24"]}"#.into(),
            },
        ],
        status_interval_secs: Some(30),
    }
}

/// An inbox with the configuration and two commands.
pub fn inbox() -> AgentInbox {
    AgentInbox {
        version: PROTOCOL_VERSION,
        agent: agent(),
        config: Some(config()),
        commands: commands()[5..7].to_vec(),
    }
}

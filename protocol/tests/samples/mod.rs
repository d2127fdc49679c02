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

pub fn batch() -> PunchBatch {
    let mut night = punch("A-17", local(21, 22, 1, 5), PunchState::Unknown(9), PunchSource::AdmsPush);
    night.verify = VerifyMode::Other(200);
    night.work_code = 70000;
    night.direction = Direction::Out;
    PunchBatch::new(
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
    )
}

pub fn ack_stored() -> BatchAck {
    BatchAck::stored(agent(), 41, 300, 2, 1)
}

pub fn ack_rejected() -> BatchAck {
    BatchAck::rejected(agent(), 41, 300, "punch 2 is for site plant-2 in a batch for site plant-1")
}

pub fn status() -> AgentStatus {
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
                device: "CDQ9192960006".parse().unwrap(),
                reachable: true,
                last_success: Some(utc(1_795_300_020)),
                record_count: Some(48_211),
                user_count: Some(312),
                clock_drift_secs: Some(-4),
                faults: vec![],
            },
            DeviceStatus {
                device: "OIN7030067".parse().unwrap(),
                reachable: false,
                last_success: None,
                record_count: None,
                user_count: None,
                clock_drift_secs: None,
                faults: vec![Fault {
                    code: "device_unreachable".into(),
                    message: "connect to 192.168.1.201:4370 timed out".into(),
                    since: utc(1_795_290_000),
                }],
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
    }
}

pub fn commands() -> Vec<AgentCommand> {
    let device: DeviceSerial = "CDQ9192960006".parse().unwrap();
    let actions = vec![
        CommandAction::SyncDeviceClock { device: device.clone() },
        CommandAction::ResyncDevice { device: device.clone(), since: NaiveDate::from_ymd_opt(2026, 11, 1) },
        CommandAction::RefreshDeviceInfo { device: device.clone() },
        CommandAction::ClearDeviceLog { device },
        CommandAction::SendStatus,
    ];
    actions
        .into_iter()
        .enumerate()
        .map(|(i, action)| AgentCommand {
            version: PROTOCOL_VERSION,
            command_id: 1000 + i as u64,
            agent: agent(),
            issued_at: utc(1_795_300_100),
            action,
        })
        .collect()
}

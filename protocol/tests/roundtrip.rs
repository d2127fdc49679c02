//! Property tests: every envelope survives both encodings unchanged, and no byte string makes a decoder panic.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use proptest::prelude::*;
use protocol::*;

fn site() -> impl Strategy<Value = SiteId> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|s| s.parse().unwrap())
}
fn agent() -> impl Strategy<Value = AgentId> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|s| s.parse().unwrap())
}
fn serial() -> impl Strategy<Value = DeviceSerial> {
    "[A-Za-z0-9_.-]{1,64}".prop_map(|s| s.parse().unwrap())
}
fn pin() -> impl Strategy<Value = Pin> {
    // Any non-control characters, including non-ASCII, within 32 bytes.
    "[^\\p{Cc}]{1,8}".prop_map(|s| s.parse().unwrap())
}
fn local_time() -> impl Strategy<Value = NaiveDateTime> {
    (0i64..4_102_444_800).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap().naive_utc())
}
fn utc_time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_102_444_800).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}
fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}
fn source() -> impl Strategy<Value = PunchSource> {
    prop_oneof![
        Just(PunchSource::ZkPull),
        Just(PunchSource::ZkRealtime),
        Just(PunchSource::AdmsPush),
        Just(PunchSource::Serial),
        Just(PunchSource::Modbus),
        Just(PunchSource::Sql),
        Just(PunchSource::Manual),
        Just(PunchSource::Hikvision),
        Just(PunchSource::Dahua),
    ]
}
fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::In), Just(Direction::Out), Just(Direction::Both)]
}

fn punch(site: SiteId) -> impl Strategy<Value = Punch> {
    (
        (serial(), pin(), local_time(), utc_time()),
        (any::<u8>(), any::<u8>(), any::<u32>(), source(), direction()),
        (any::<Option<u32>>(), any::<Option<u32>>()),
    )
        .prop_map(
            move |((device, pin, local_time, utc_time), (state, verify, work_code, source, direction), raw)| Punch {
                site: site.clone(),
                device,
                pin,
                local_time,
                utc_time,
                state: PunchState::from_code(state),
                verify: VerifyMode::from_code(verify),
                work_code,
                source,
                direction,
                raw_state: raw.0,
                raw_verify: raw.1,
            },
        )
}

fn batch() -> impl Strategy<Value = PunchBatch> {
    (agent(), site(), utc_time(), 0u64..u64::MAX / 2)
        .prop_flat_map(|(agent, site, sent_at, start)| {
            let items = prop::collection::vec((1u64..1_000, punch(site.clone())), 1..20);
            (Just(agent), Just(site), Just(sent_at), Just(start), items)
        })
        .prop_map(|(agent, site, sent_at, start, items)| {
            let mut seq = start;
            let punches = items
                .into_iter()
                .map(|(gap, punch)| {
                    seq += gap;
                    SequencedPunch { seq, punch }
                })
                .collect();
            PunchBatch::new(agent, site, sent_at, punches)
        })
}

fn rejection_kind() -> impl Strategy<Value = RejectionKind> {
    prop_oneof![Just(RejectionKind::Retry), Just(RejectionKind::Permanent), Just(RejectionKind::Unauthorized)]
}

fn ack() -> impl Strategy<Value = BatchAck> {
    (
        (agent(), any::<u64>(), any::<u64>(), any::<[u8; 16]>()),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        prop::option::of((text(), rejection_kind())),
    )
        .prop_map(|((agent, a, b, id), (new, duplicates, quarantined), reason)| {
            let (first_seq, last_seq) = (a.min(b), a.max(b));
            let outcome = match reason {
                None => AckOutcome::Stored { new, duplicates, quarantined },
                Some((reason, kind)) => AckOutcome::Rejected { reason, kind },
            };
            BatchAck { version: PROTOCOL_VERSION, agent, first_seq, last_seq, batch_id: BatchId(id), outcome }
        })
}

fn fault() -> impl Strategy<Value = Fault> {
    (text(), text(), utc_time()).prop_map(|(code, message, since)| Fault { code, message, since })
}

fn device_info() -> impl Strategy<Value = DeviceInfo> {
    (
        (prop::option::of(text()), prop::option::of(text()), prop::option::of(text()), prop::option::of(text())),
        any::<[Option<u32>; 6]>(),
    )
        .prop_map(|((model, firmware, platform, reported_serial), c)| DeviceInfo {
            model,
            firmware,
            platform,
            reported_serial,
            user_capacity: c[0],
            fingerprint_count: c[1],
            fingerprint_capacity: c[2],
            face_count: c[3],
            face_capacity: c[4],
            record_capacity: c[5],
        })
}

fn device_status() -> impl Strategy<Value = DeviceStatus> {
    (
        (serial(), text(), any::<bool>(), prop::option::of(utc_time()), prop::option::of(utc_time())),
        (any::<Option<u32>>(), any::<Option<u32>>(), any::<Option<i64>>()),
        prop::option::of(device_info()),
        prop::collection::vec(fault(), 0..3),
    )
        .prop_map(
            |((device, kind, reachable, last_success, last_punch), (record_count, user_count, drift), info, faults)| {
                DeviceStatus {
                    device,
                    kind,
                    reachable,
                    last_success,
                    last_punch,
                    record_count,
                    user_count,
                    clock_drift_secs: drift,
                    info,
                    faults,
                }
            },
        )
}

fn status() -> impl Strategy<Value = AgentStatus> {
    (
        agent(),
        site(),
        utc_time(),
        text(),
        any::<u64>(),
        any::<u64>(),
        any::<Option<u64>>(),
        prop::collection::vec(device_status(), 0..4),
        prop::collection::vec(fault(), 0..3),
        prop::collection::vec((any::<u64>(), any::<bool>(), text(), utc_time()), 0..3),
        (text(), any::<u64>(), any::<Option<u64>>()),
    )
        .prop_map(
            |(
                agent,
                site,
                sent_at,
                agent_version,
                uptime_secs,
                buffer_depth,
                oldest,
                devices,
                faults,
                results,
                (hostname, dead_letters, config_version),
            )| {
                AgentStatus {
                    version: PROTOCOL_VERSION,
                    agent,
                    site,
                    sent_at,
                    agent_version,
                    uptime_secs,
                    buffer_depth,
                    oldest_unacked_age_secs: oldest,
                    devices,
                    faults,
                    command_results: results
                        .into_iter()
                        .map(|(command_id, ok, detail, finished_at)| CommandResult {
                            command_id,
                            ok,
                            detail,
                            finished_at,
                        })
                        .collect(),
                    hostname,
                    dead_letters,
                    config_version,
                }
            },
        )
}

fn command() -> impl Strategy<Value = AgentCommand> {
    let since = prop::option::of(
        (2000i32..2100, 1u32..=12, 1u32..=28).prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap()),
    );
    let action = prop_oneof![
        serial().prop_map(|device| CommandAction::SyncDeviceClock { device }),
        (serial(), since).prop_map(|(device, since)| CommandAction::ResyncDevice { device, since }),
        serial().prop_map(|device| CommandAction::RefreshDeviceInfo { device }),
        serial().prop_map(|device| CommandAction::ClearDeviceLog { device }),
        Just(CommandAction::SendStatus),
        serial().prop_map(|device| CommandAction::PullNow { device }),
        serial().prop_map(|device| CommandAction::RestartSource { device }),
        Just(CommandAction::ReloadConfig),
        (serial(), push_command()).prop_map(|(device, command)| CommandAction::PushDevice { device, command }),
        (serial(), prop::collection::vec(device_user(), 0..4))
            .prop_map(|(device, users)| CommandAction::SetUsers { device, users }),
        (serial(), prop::collection::vec(pin(), 0..4))
            .prop_map(|(device, pins)| CommandAction::DeleteUsers { device, pins }),
        (pin(), serial(), prop::collection::vec(serial(), 0..4))
            .prop_map(|(pin, from, to)| CommandAction::CopyTemplates { pin, from, to }),
        (serial(), prop::collection::vec(user_update(), 0..4))
            .prop_map(|(device, users)| CommandAction::WriteUsers { device, users }),
    ];
    (any::<u64>(), agent(), utc_time(), prop::option::of(utc_time()), action).prop_map(
        |(command_id, agent, issued_at, expires_at, action)| AgentCommand {
            version: PROTOCOL_VERSION,
            command_id,
            agent,
            issued_at,
            expires_at,
            action,
        },
    )
}

fn push_command() -> impl Strategy<Value = PushCommand> {
    prop_oneof![
        local_time().prop_map(|time| PushCommand::SetTime { time }),
        (local_time(), local_time()).prop_map(|(from, until)| PushCommand::Reupload { from, until }),
        Just(PushCommand::Info),
    ]
}

fn device_user() -> impl Strategy<Value = DeviceUser> {
    (pin(), "[A-Za-z .]{0,24}", any::<u32>(), prop::sample::select(protocol::envelope::USER_PRIVILEGES.to_vec()))
        .prop_map(|(pin, name, card, privilege)| DeviceUser { pin, name, card, privilege })
}

fn user_update() -> impl Strategy<Value = protocol::UserUpdate> {
    (
        pin(),
        "[A-Za-z .]{0,24}",
        prop::option::of(1u32..),
        prop::option::of(prop::sample::select(protocol::envelope::USER_PRIVILEGES.to_vec())),
    )
        .prop_map(|(pin, name, card, privilege)| protocol::UserUpdate { pin, name, card, privilege })
}

fn config() -> impl Strategy<Value = ManagedConfig> {
    let device = (serial(), text()).prop_map(|(serial, name)| ManagedDevice {
        entry: serde_json::json!({ "kind": "zk", "serial": serial.as_str(), "name": name, "host": "10.0.0.1" })
            .to_string(),
        serial,
    });
    (
        agent(),
        site(),
        any::<u64>(),
        utc_time(),
        prop::collection::btree_map(any::<u8>(), device, 0..4),
        prop::option::of(1u32..3600),
    )
        .prop_map(|(agent, site, config_version, issued_at, devices, status_interval_secs)| {
            // Distinct serials: a configuration names each device once.
            let mut seen = std::collections::HashSet::new();
            let devices = devices.into_values().filter(|d| seen.insert(d.serial.clone())).collect();
            ManagedConfig {
                version: PROTOCOL_VERSION,
                agent,
                site,
                config_version,
                issued_at,
                devices,
                status_interval_secs,
            }
        })
}

fn inbox() -> impl Strategy<Value = AgentInbox> {
    (config(), prop::option::of(Just(())), prop::collection::vec(command(), 0..3)).prop_map(
        |(config, with, commands)| {
            let agent = config.agent.clone();
            let commands = commands.into_iter().map(|c| AgentCommand { agent: agent.clone(), ..c }).collect();
            AgentInbox { version: PROTOCOL_VERSION, agent, config: with.map(|()| config), commands }
        },
    )
}

fn round_trip<E: Envelope + PartialEq + std::fmt::Debug>(value: &E) -> Result<(), TestCaseError> {
    for encoding in [Encoding::Bincode, Encoding::Json] {
        let bytes = encode(value, encoding).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: E = decode(&bytes, encoding).map_err(|e| TestCaseError::fail(format!("{encoding:?}: {e}")))?;
        prop_assert_eq!(&back, value, "{:?}", encoding);
    }
    Ok(())
}

/// Decoding must return, never panic; on success the value must encode again.
fn survives<E: Envelope>(bytes: &[u8]) -> Result<(), TestCaseError> {
    for encoding in [Encoding::Bincode, Encoding::Json] {
        if let Ok(value) = decode::<E>(bytes, encoding) {
            prop_assert!(encode(&value, encoding).is_ok());
        }
    }
    Ok(())
}

/// The central service's decoder (current and previous version) must return, never panic.
fn survives_upgrading<E: Upgradable>(bytes: &[u8]) -> Result<(), TestCaseError> {
    for encoding in [Encoding::Bincode, Encoding::Json] {
        if let Ok(read) = decode_upgrading::<E>(bytes, encoding) {
            prop_assert!(encode(&read.value, encoding).is_ok());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn batch_round_trips(value in batch()) { round_trip(&value)?; }

    #[test]
    fn ack_round_trips(value in ack()) { round_trip(&value)?; }

    #[test]
    fn status_round_trips(value in status()) { round_trip(&value)?; }

    #[test]
    fn command_round_trips(value in command()) { round_trip(&value)?; }

    #[test]
    fn config_round_trips(value in config()) { round_trip(&value)?; }

    #[test]
    fn inbox_round_trips(value in inbox()) { round_trip(&value)?; }

    #[test]
    fn punch_key_ignores_everything_but_device_pin_and_time(a in punch("s".parse().unwrap()), b in punch("t".parse().unwrap())) {
        let mut same = b.clone();
        same.device = a.device.clone();
        same.pin = a.pin.clone();
        same.local_time = a.local_time;
        prop_assert_eq!(same.key(), a.key());
        if (a.device != b.device) || (a.pin != b.pin) || (a.local_time != b.local_time) {
            prop_assert_ne!(a.key(), b.key());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        survives::<PunchBatch>(&bytes)?;
        survives::<BatchAck>(&bytes)?;
        survives::<AgentStatus>(&bytes)?;
        survives::<AgentCommand>(&bytes)?;
        survives::<ManagedConfig>(&bytes)?;
        survives::<AgentInbox>(&bytes)?;
        survives_upgrading::<PunchBatch>(&bytes)?;
        survives_upgrading::<AgentStatus>(&bytes)?;
        // The same bytes claiming to be version 1 reach the version 1 parser.
        let mut v1 = bytes.clone();
        if let Some(first) = v1.first_mut() {
            *first = 1;
            survives_upgrading::<PunchBatch>(&v1)?;
            survives_upgrading::<AgentStatus>(&v1)?;
        }
    }

    #[test]
    fn mutated_valid_bytes_never_panic(value in batch(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>()) {
        for encoding in [Encoding::Bincode, Encoding::Json] {
            let mut bytes = encode(&value, encoding).unwrap();
            for (index, byte) in &flips {
                let i = index.index(bytes.len());
                bytes[i] = *byte;
            }
            survives::<PunchBatch>(&bytes)?;
            survives_upgrading::<PunchBatch>(&bytes)?;
            let end = cut.index(bytes.len() + 1);
            survives::<PunchBatch>(&bytes[..end])?;
            survives_upgrading::<PunchBatch>(&bytes[..end])?;
        }
    }
}

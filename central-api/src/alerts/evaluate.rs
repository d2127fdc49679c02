//! Which subjects (agents, devices) meet a rule's condition now: a pure function of the inventory, the rule and the
//! time, so every kind is tested without a database or a clock. The engine ([`super::engine`]) turns conditions
//! into raised and cleared alerts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::rules::{AlertRule, RuleKind};
use crate::store::inventory::{AgentInventory, DeviceInventory};

/// The fault an agent raises when a push comes from a serial it does not know.
pub const UNKNOWN_PUSH_DEVICE: &str = "unknown_push_device";
/// The fault an agent raises when its buffer reached its limit.
pub const BUFFER_FULL: &str = "buffer_full";

/// What the rules are evaluated against.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub agents: Vec<AgentInventory>,
    pub devices: Vec<DeviceInventory>,
    /// Punches central stored per device serial (only read when a record count rule needs it).
    pub stored_punches: HashMap<String, i64>,
}

/// A subject meeting a rule's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `device:<serial>` or `agent:<id>`.
    pub subject: String,
    /// Since when it holds, when the data tells; `None`: since it was first seen holding.
    pub since: Option<DateTime<Utc>>,
    pub message: String,
}

fn device_subject(d: &DeviceInventory) -> String {
    format!("device:{}", d.serial)
}

fn agent_subject(a: &AgentInventory) -> String {
    format!("agent:{}", a.agent_id)
}

fn named(d: &DeviceInventory) -> String {
    match &d.name {
        Some(name) if !name.is_empty() => format!("device {} ({name})", d.serial),
        _ => format!("device {}", d.serial),
    }
}

/// The subjects of `rule`'s site that meet its condition at `now`.
pub fn conditions(rule: &AlertRule, snapshot: &Snapshot, now: DateTime<Utc>) -> Vec<Condition> {
    let site = rule.site_id.as_str();
    let devices = snapshot.devices.iter().filter(|d| d.site_id == site && !d.stale);
    let agents = snapshot.agents.iter().filter(|a| a.site_id == site && !a.revoked);
    let threshold = rule.threshold.unwrap_or(0.0);
    let mut found: Vec<Condition> = Vec::new();
    match rule.kind {
        RuleKind::DeviceUnreachable => {
            for d in devices.filter(|d| d.reachable == Some(false)) {
                let since = d.reachable_since.or(d.reported_at);
                let why = d.faults.first().map(|f| format!(": {} ({})", f.message, f.code)).unwrap_or_default();
                found.push(Condition {
                    subject: device_subject(d),
                    since,
                    message: format!("{} at site {site} does not answer{why}", named(d)),
                });
            }
        }
        RuleKind::AgentNotSeen => {
            let wait = chrono::Duration::seconds(rule.for_secs());
            for a in agents {
                let last = a.last_seen.unwrap_or(a.created_at);
                if now - last >= wait {
                    let seen = a.last_seen.map_or_else(|| "never reported".to_owned(), |t| format!("last seen {t}"));
                    found.push(Condition {
                        subject: agent_subject(a),
                        since: Some(last),
                        message: format!("agent {} at site {site} sends no status: {seen}", a.agent_id),
                    });
                }
            }
        }
        RuleKind::ClockDrift => {
            for d in devices {
                if let Some(drift) = d.clock_drift_secs.filter(|s| s.unsigned_abs() as f64 > threshold) {
                    let way = if drift < 0 { "behind" } else { "ahead of" };
                    found.push(Condition {
                        subject: device_subject(d),
                        since: None,
                        message: format!(
                            "the clock of {} at site {site} is {} s {way} the agent's (limit {threshold} s)",
                            named(d),
                            drift.unsigned_abs()
                        ),
                    });
                }
            }
        }
        RuleKind::BufferHigh => {
            let limit = rule.buffer_limit.unwrap_or(i64::MAX) as f64;
            for a in agents {
                let depth = a.buffer_depth.unwrap_or(0);
                let full = a.faults.iter().find(|f| f.code == BUFFER_FULL);
                if depth as f64 >= threshold * limit || full.is_some() {
                    let extra = full.map(|f| format!("; {}", f.message)).unwrap_or_default();
                    found.push(Condition {
                        subject: agent_subject(a),
                        since: full.map(|f| f.since),
                        message: format!(
                            "agent {} at site {site} buffers {depth} punches, {:.0}% of its limit of {}{extra}",
                            a.agent_id,
                            100.0 * depth as f64 / limit.max(1.0),
                            rule.buffer_limit.unwrap_or(0)
                        ),
                    });
                }
            }
        }
        RuleKind::DeadLetters => {
            for a in agents {
                let n = a.dead_letters.unwrap_or(0);
                if n as f64 > threshold {
                    found.push(Condition {
                        subject: agent_subject(a),
                        since: None,
                        message: format!(
                            "agent {} at site {site} holds {n} dead letters (punches central refused for good)",
                            a.agent_id
                        ),
                    });
                }
            }
        }
        RuleKind::UnknownSerial => {
            for d in devices {
                let unknown_push = d.faults.iter().find(|f| f.code == UNKNOWN_PUSH_DEVICE);
                let other_serial = d
                    .reported_serial
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty() && !r.eq_ignore_ascii_case(&d.serial));
                let message = if let Some(f) = unknown_push {
                    Some(format!("agent {} at site {site}: {}", d.agent_id.as_deref().unwrap_or("?"), f.message))
                } else if let Some(reported) = other_serial {
                    Some(format!("{} at site {site} reports serial {reported}", named(d)))
                } else if !d.registered {
                    Some(format!(
                        "agent {} at site {site} reads device {}, which is not registered at central",
                        d.agent_id.as_deref().unwrap_or("?"),
                        d.serial
                    ))
                } else {
                    None
                };
                if let Some(message) = message {
                    found.push(Condition { subject: device_subject(d), since: None, message });
                }
            }
            for a in agents {
                if let Some(f) = a.faults.iter().find(|f| f.code == UNKNOWN_PUSH_DEVICE) {
                    found.push(Condition {
                        subject: agent_subject(a),
                        since: Some(f.since),
                        message: format!("agent {} at site {site}: {}", a.agent_id, f.message),
                    });
                }
            }
        }
        RuleKind::RecordCountMismatch => {
            for d in devices {
                let (Some(held), Some(stored)) = (d.records.count, snapshot.stored_punches.get(&d.serial)) else {
                    continue;
                };
                let missing = held - stored;
                if missing as f64 > threshold {
                    found.push(Condition {
                        subject: device_subject(d),
                        since: None,
                        message: format!(
                            "{} at site {site} holds {held} records, central stored {stored} from it ({missing} not \
                             at central)",
                            named(d)
                        ),
                    });
                }
            }
        }
    }
    found
}

/// Whether a condition holding since `since` has held long enough for `rule` at `now`.
pub fn due(rule: &AlertRule, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    (now - since).num_seconds() >= rule.for_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::inventory::{FaultView, Usage};
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).single().expect("valid")
    }

    fn rule(kind: RuleKind, for_minutes: f64, threshold: Option<f64>) -> AlertRule {
        AlertRule {
            id: 1,
            site_id: "A".into(),
            kind,
            for_minutes,
            threshold,
            buffer_limit: (kind == RuleKind::BufferHigh).then_some(1000),
            webhook_url: None,
            webhook_secret: None,
            email_to: vec![],
            max_per_hour: 12,
            enabled: true,
            created_by: "root".into(),
            created_at: t(0),
            updated_at: t(0),
        }
    }

    fn usage(count: Option<i64>) -> Usage {
        Usage { count, capacity: None }
    }

    fn device(serial: &str, site: &str) -> DeviceInventory {
        DeviceInventory {
            serial: serial.into(),
            site_id: site.into(),
            registered: true,
            name: Some("Gate".into()),
            kind: "zk-tcp".into(),
            agent_id: Some("gate-1".into()),
            reachable: Some(true),
            reachable_since: Some(t(0)),
            last_success: Some(t(0)),
            last_punch: None,
            reported_at: Some(t(0)),
            stale: false,
            model: None,
            firmware: None,
            platform: None,
            reported_serial: None,
            users: usage(None),
            fingerprints: usage(None),
            faces: usage(None),
            records: usage(None),
            clock_drift_secs: None,
            faults: vec![],
        }
    }

    fn agent(id: &str, site: &str) -> AgentInventory {
        AgentInventory {
            agent_id: id.into(),
            site_id: site.into(),
            created_at: t(0),
            revoked: false,
            last_seen: Some(t(100)),
            version: Some("0.1.0".into()),
            hostname: Some("h".into()),
            uptime_secs: Some(5),
            config_version: None,
            buffer_depth: Some(0),
            oldest_unacked_age_secs: None,
            dead_letters: Some(0),
            faults: vec![],
        }
    }

    fn fault(code: &str) -> FaultView {
        FaultView { code: code.into(), message: format!("{code}!"), since: t(40) }
    }

    fn subjects(rule: &AlertRule, s: &Snapshot, now: DateTime<Utc>) -> Vec<String> {
        conditions(rule, s, now).into_iter().map(|c| c.subject).collect()
    }

    #[test]
    fn unreachable_devices_of_the_rule_site_only_and_not_stale_ones() {
        let mut down = device("D1", "A");
        down.reachable = Some(false);
        down.reachable_since = Some(t(30));
        down.faults = vec![fault("device_unreachable")];
        let mut elsewhere = down.clone();
        elsewhere.serial = "D2".into();
        elsewhere.site_id = "B".into();
        let mut stale = down.clone();
        stale.serial = "D3".into();
        stale.stale = true;
        let s = Snapshot { devices: vec![down, elsewhere, stale, device("D4", "A")], ..Default::default() };
        let r = rule(RuleKind::DeviceUnreachable, 5.0, None);
        let found = conditions(&r, &s, t(60));
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].subject.as_str(), found[0].since), ("device:D1", Some(t(30))));
        assert!(found[0].message.contains("device_unreachable!"), "{}", found[0].message);
        // Five minutes after it went down, not before.
        assert!(!due(&r, t(30), t(30 + 299)));
        assert!(due(&r, t(30), t(30 + 300)));
    }

    #[test]
    fn agents_not_seen_for_the_rule_time_and_never_seen_ones_by_their_creation() {
        let mut never = agent("new", "A");
        never.last_seen = None;
        let mut revoked = agent("old", "A");
        revoked.revoked = true;
        let s = Snapshot { agents: vec![agent("gate-1", "A"), never, revoked], ..Default::default() };
        let r = rule(RuleKind::AgentNotSeen, 10.0, None);
        assert!(subjects(&r, &s, t(100 + 599)).iter().all(|s| s != "agent:gate-1"));
        assert_eq!(subjects(&r, &s, t(100 + 600)), vec!["agent:gate-1", "agent:new"]);
        assert_eq!(subjects(&r, &s, t(599)), Vec::<String>::new());
    }

    #[test]
    fn drift_buffer_dead_letters_and_counts_against_their_thresholds() {
        let mut ahead = device("D1", "A");
        ahead.clock_drift_secs = Some(-120);
        let mut close = device("D2", "A");
        close.clock_drift_secs = Some(60);
        let mut busy = agent("busy", "A");
        busy.buffer_depth = Some(800);
        busy.dead_letters = Some(3);
        let mut full = agent("full", "A");
        full.faults = vec![fault(BUFFER_FULL)];
        let mut counted = device("D3", "A");
        counted.records = usage(Some(105));
        let mut s = Snapshot {
            agents: vec![busy, full, agent("calm", "A")],
            devices: vec![ahead, close, counted],
            ..Default::default()
        };
        s.stored_punches.insert("D3".into(), 100);
        let now = t(1000);
        assert_eq!(subjects(&rule(RuleKind::ClockDrift, 0.0, Some(60.0)), &s, now), vec!["device:D1"]);
        assert_eq!(subjects(&rule(RuleKind::BufferHigh, 0.0, Some(0.8)), &s, now), vec!["agent:busy", "agent:full"]);
        assert_eq!(subjects(&rule(RuleKind::BufferHigh, 0.0, Some(0.9)), &s, now), vec!["agent:full"]);
        assert_eq!(subjects(&rule(RuleKind::DeadLetters, 0.0, Some(0.0)), &s, now), vec!["agent:busy"]);
        assert!(subjects(&rule(RuleKind::DeadLetters, 0.0, Some(3.0)), &s, now).is_empty());
        assert_eq!(subjects(&rule(RuleKind::RecordCountMismatch, 0.0, Some(0.0)), &s, now), vec!["device:D3"]);
        assert!(subjects(&rule(RuleKind::RecordCountMismatch, 0.0, Some(5.0)), &s, now).is_empty());
    }

    #[test]
    fn unknown_serials_three_ways() {
        let mut unregistered = device("X1", "A");
        unregistered.registered = false;
        let mut other = device("D1", "A");
        other.reported_serial = Some("D9".into());
        let mut same = device("D2", "A");
        same.reported_serial = Some("d2".into());
        let mut pushing = agent("gate-1", "A");
        pushing.faults = vec![fault(UNKNOWN_PUSH_DEVICE)];
        let s = Snapshot { agents: vec![pushing], devices: vec![unregistered, other, same], ..Default::default() };
        assert_eq!(
            subjects(&rule(RuleKind::UnknownSerial, 0.0, None), &s, t(0)),
            vec!["device:X1", "device:D1", "agent:gate-1"]
        );
    }
}

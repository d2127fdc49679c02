//! The `cross_site_device` fault (issue 12): an agent named a device registered at another site, in punches (held
//! in the quarantine) or in a status (the entry ignored). The fault goes to the agent's fault history with the
//! device's site as `other_site_id`, so root, the agent's site and the device's site all see it on the devices page.
//!
//! An agent can repeat this with every batch, so the history gets at most one row per agent and device every
//! [`RECORD_INTERVAL`] (per replica), the next one saying how many punches and statuses were left out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::store::Store;

/// The fault's code.
pub const CODE: &str = "cross_site_device";
/// At most one history row per agent and device in this time.
pub const RECORD_INTERVAL: Duration = Duration::from_secs(60);
/// (agent, device) pairs remembered before stale ones are dropped.
const MAX_KEYS: usize = 10_000;

/// What the agent sent about the other site's device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// This many punches, now in the quarantine.
    Punches(u32),
    /// A status entry, ignored.
    Status,
}

#[derive(Debug, Default, Clone, Copy)]
struct Left {
    punches: u64,
    statuses: u64,
}

impl Left {
    fn add(&mut self, what: Naming) {
        match what {
            Naming::Punches(n) => self.punches += u64::from(n),
            Naming::Status => self.statuses += 1,
        }
    }
}

/// The rate-limited fault of one replica.
#[derive(Debug, Default)]
pub struct CrossSiteAlarm {
    recent: Mutex<HashMap<(String, String), (Instant, Left)>>,
}

/// The fault's text.
pub fn message(agent: &str, agent_site: &str, device: &str, device_site: &str, what: Naming) -> String {
    match what {
        Naming::Punches(n) => format!(
            "agent {agent} of site {agent_site} sent {n} punch(es) naming device {device}, which is registered at \
             site {device_site}: they are held in the quarantine until an administrator releases or discards them"
        ),
        Naming::Status => format!(
            "agent {agent} of site {agent_site} reported a status for device {device}, which is registered at site \
             {device_site}: the entry was ignored"
        ),
    }
}

impl CrossSiteAlarm {
    /// `Some(left out since the last report)` when a report is due for (agent, device), counting `what` otherwise.
    fn due(&self, agent: &str, device: &str, what: Naming, now: Instant) -> Option<Left> {
        let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() >= MAX_KEYS {
            recent.retain(|_, (at, _)| now.duration_since(*at) < RECORD_INTERVAL);
        }
        match recent.get_mut(&(agent.to_owned(), device.to_owned())) {
            Some((at, left)) if now.duration_since(*at) < RECORD_INTERVAL => {
                left.add(what);
                None
            }
            Some((at, left)) => {
                let before = *left;
                *at = now;
                *left = Left::default();
                Some(before)
            }
            None => {
                recent.insert((agent.to_owned(), device.to_owned()), (now, Left::default()));
                Some(Left::default())
            }
        }
    }

    /// Logs the fault and records it in the history unless one was recorded for this agent and device within
    /// [`RECORD_INTERVAL`]. A failure to record is logged; it never fails the batch (already committed).
    pub async fn raise(
        &self,
        store: &Store,
        agent: &str,
        agent_site: &str,
        device: &str,
        device_site: &str,
        what: Naming,
    ) {
        let mut text = message(agent, agent_site, device, device_site, what);
        let Some(left) = self.due(agent, device, what, Instant::now()) else {
            tracing::debug!(agent, device, device_site, "cross-site device (already reported within the interval)");
            return;
        };
        if left.punches + left.statuses > 0 {
            text.push_str(&format!(
                " (and {} punch(es), {} status(es) like it since the previous report)",
                left.punches, left.statuses
            ));
        }
        tracing::warn!(agent, agent_site, device, device_site, message = %text, "cross-site device");
        let text = protocol::envelope::truncate_text(text);
        if let Err(e) = store.record_cross_site_fault(agent, device, device_site, CODE, &text, Utc::now()).await {
            tracing::warn!(error = %e, agent, device, "cannot record the cross-site fault");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_report_per_interval_per_agent_and_device() {
        let alarm = CrossSiteAlarm::default();
        let t0 = Instant::now();
        assert!(alarm.due("a", "D", Naming::Punches(3), t0).is_some());
        assert!(alarm.due("a", "D", Naming::Punches(2), t0).is_none());
        assert!(alarm.due("a", "D", Naming::Status, t0).is_none());
        assert!(alarm.due("a", "E", Naming::Status, t0).is_some(), "another device is reported");
        let left = alarm.due("a", "D", Naming::Status, t0 + RECORD_INTERVAL).expect("due again");
        assert_eq!((left.punches, left.statuses), (2, 1));
    }

    #[test]
    fn messages_name_both_sites() {
        let text = message("gate-a", "A", "DEV-B", "B", Naming::Punches(4));
        assert!(text.contains("site A") && text.contains("site B") && text.contains("4 punch"), "{text}");
    }
}

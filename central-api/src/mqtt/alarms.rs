//! Faults central raises about an agent's MQTT topics: a message without valid proof ([`BAD_PROOF`]), and an
//! unsigned message, refused or (with `mqtt.allow_unsigned`) accepted ([`UNSIGNED`]).
//!
//! Each is logged and, when the topic names a registered agent, appended to the agent's fault history (shown on the
//! devices page). Whoever can publish on the broker can send many of them, so the history gets at most one row (and
//! the log one warning) per agent, code and kind of message every [`RECORD_INTERVAL`], the next one saying how many
//! were left out; topics naming unknown agents share one such allowance, and keep no memory per name. The
//! acceptance of an unsigned message is warned about once per agent for the life of the process.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use protocol::{AgentId, FrameKind};

use crate::store::Store;

/// A message on an agent's topic whose signed frame is malformed, names another agent or kind, or whose MAC does
/// not match the agent's key.
pub const BAD_PROOF: &str = "mqtt_bad_proof";
/// A message on an agent's topic without a signed frame.
pub const UNSIGNED: &str = "mqtt_unsigned";
/// At most one history row per agent, code and kind of message in this time.
pub const RECORD_INTERVAL: Duration = Duration::from_secs(60);

struct Recent {
    recorded: Instant,
    suppressed: u64,
}

/// Raises and rate-limits the MQTT faults of one replica.
pub struct Alarms {
    store: Store,
    recent: Mutex<HashMap<(AgentId, &'static str, FrameKind), Recent>>,
    unregistered: Mutex<Option<Recent>>,
    warned_unsigned: Mutex<HashSet<AgentId>>,
}

/// Whether a fault may be reported now (with how many were left out since the last report), counting it otherwise.
fn allowance(slot: &mut Option<Recent>) -> Option<u64> {
    match slot {
        Some(entry) if entry.recorded.elapsed() < RECORD_INTERVAL => {
            entry.suppressed += 1;
            None
        }
        _ => {
            let suppressed = slot.as_ref().map_or(0, |e| e.suppressed);
            *slot = Some(Recent { recorded: Instant::now(), suppressed: 0 });
            Some(suppressed)
        }
    }
}

impl Alarms {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            recent: Mutex::new(HashMap::new()),
            unregistered: Mutex::new(None),
            warned_unsigned: Mutex::new(HashSet::new()),
        }
    }

    /// Reports a fault about a `kind` of message on `agent`'s topic: logged, and for a `registered` agent appended
    /// to its history, unless one was reported within [`RECORD_INTERVAL`].
    pub async fn raise(&self, agent: &AgentId, registered: bool, code: &'static str, kind: FrameKind, message: String) {
        let allowed = if registered {
            let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut slot = recent.remove(&(agent.clone(), code, kind));
            let allowed = allowance(&mut slot);
            if let Some(entry) = slot {
                recent.insert((agent.clone(), code, kind), entry);
            }
            allowed
        } else {
            allowance(&mut self.unregistered.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
        };
        let Some(suppressed) = allowed else {
            tracing::debug!(%agent, code, %message, "MQTT fault (already reported within the interval)");
            return;
        };
        let message = if suppressed > 0 {
            format!("{message} (and {suppressed} more like it since the previous report)")
        } else {
            message
        };
        tracing::warn!(%agent, code, %message, "MQTT fault");
        if !registered {
            return;
        }
        let message = protocol::envelope::truncate_text(message);
        if let Err(e) = self.store.record_central_fault(agent.as_str(), code, &message, Utc::now()).await {
            tracing::warn!(error = %e, %agent, code, "cannot record the fault");
        }
    }

    /// Warns, once per agent, that an unsigned message was accepted because `mqtt.allow_unsigned` is on.
    pub async fn unsigned_accepted(&self, agent: &AgentId, registered: bool, kind: FrameKind, topic: &str) {
        let first =
            self.warned_unsigned.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(agent.clone());
        if first {
            let message = format!(
                "accepted an unsigned {kind} on {topic} because mqtt.allow_unsigned is on: nothing proves agent \
                 {agent} sent it; upgrade the agent, then turn the setting off"
            );
            self.raise(agent, registered, UNSIGNED, kind, message).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_report_per_interval_then_the_count_of_the_rest() {
        let mut slot = None;
        assert_eq!(allowance(&mut slot), Some(0));
        assert_eq!(allowance(&mut slot), None);
        assert_eq!(allowance(&mut slot), None);
        let entry = slot.as_mut().expect("reported once");
        entry.recorded = Instant::now().checked_sub(RECORD_INTERVAL).expect("the clock is past one interval");
        assert_eq!(allowance(&mut slot), Some(2), "the next report counts the two left out");
        assert_eq!(allowance(&mut slot), None);
    }
}

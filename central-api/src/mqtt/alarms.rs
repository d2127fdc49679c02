//! Faults central raises about an agent's MQTT topics: a message without valid proof ([`BAD_PROOF`]), and an
//! unsigned message, refused or (with `mqtt.allow_unsigned`) accepted ([`UNSIGNED`]).
//!
//! Each is logged, and appended to the agent's fault history (shown on the devices page) when the topic names a
//! registered agent. Whoever can publish on the broker can send many of them, so the history gets at most one row
//! per agent, code and kind of message every [`RECORD_INTERVAL`]; the next row says how many were not recorded. The acceptance of an
//! unsigned message is warned about once per agent for the life of the process.

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
    warned_unsigned: Mutex<HashSet<AgentId>>,
}

impl Alarms {
    pub fn new(store: Store) -> Self {
        Self { store, recent: Mutex::new(HashMap::new()), warned_unsigned: Mutex::new(HashSet::new()) }
    }

    /// Logs the fault about a `kind` of message and, for a `registered` agent, appends it to its history unless one
    /// was recorded within [`RECORD_INTERVAL`].
    pub async fn raise(&self, agent: &AgentId, registered: bool, code: &'static str, kind: FrameKind, message: String) {
        tracing::warn!(%agent, code, %message, "MQTT fault");
        if !registered {
            return;
        }
        let suppressed = {
            let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let key = (agent.clone(), code, kind);
            match recent.get_mut(&key) {
                Some(entry) if entry.recorded.elapsed() < RECORD_INTERVAL => {
                    entry.suppressed += 1;
                    return;
                }
                Some(entry) => {
                    let suppressed = entry.suppressed;
                    *entry = Recent { recorded: Instant::now(), suppressed: 0 };
                    suppressed
                }
                None => {
                    recent.insert(key, Recent { recorded: Instant::now(), suppressed: 0 });
                    0
                }
            }
        };
        let message = if suppressed > 0 {
            format!("{message} (and {suppressed} more like it since the previous report)")
        } else {
            message
        };
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

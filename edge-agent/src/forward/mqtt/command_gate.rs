//! What the MQTT link believes on its `commands` topic: only a command or a configuration central signed for this
//! agent (a [`SignedFrame`] of kind `Command` or `Config` whose MAC checks out with central's key for the agent).
//! Anything else is dropped and raises [`crate::fleet::UNVERIFIED_COMMAND`]; nothing is carried out or applied.
//!
//! Replays: a command carries its id (the journal carries each out once) and its expiry; a configuration from MQTT
//! is taken only when its version is above the running one ([`crate::fleet::Inbound::Config`]'s `newer_only`).

use chrono::Utc;
use protocol::{AgentCommand, AgentId, AgentKeys, Encoding, FrameKind, ManagedConfig, SignedFrame};

use crate::faults::Faults;
use crate::fleet::{Inbound, UNVERIFIED_COMMAND};

/// Checks every message arriving on the agent's commands topic.
pub struct CommandGate {
    keys: AgentKeys,
    agent: AgentId,
    faults: Faults,
}

impl CommandGate {
    pub fn new(keys: AgentKeys, agent: AgentId, faults: Faults) -> Self {
        Self { keys, agent, faults }
    }

    /// The command or configuration in `payload` when central signed it for this agent; otherwise `None`, with the
    /// fault raised.
    pub fn admit(&self, topic: &str, payload: &[u8]) -> Option<Inbound> {
        match self.check(payload) {
            Ok(inbound) => Some(inbound),
            Err(reason) => {
                let message = format!("ignored a message on {topic}: {reason}; nothing was carried out");
                tracing::warn!(%message, "unverified command");
                self.faults.raise(UNVERIFIED_COMMAND, message, Utc::now());
                None
            }
        }
    }

    fn check(&self, payload: &[u8]) -> Result<Inbound, String> {
        let frame = SignedFrame::from_bytes(payload).map_err(|e| format!("it is not a signed frame ({e})"))?;
        match frame.kind {
            FrameKind::Command => {
                let bytes = self.keys.open(&frame, &self.agent, FrameKind::Command).map_err(|e| e.to_string())?;
                let command: AgentCommand = protocol::decode(bytes, Encoding::Bincode)
                    .map_err(|e| format!("central signed a command this agent cannot read ({e})"))?;
                if command.agent != self.agent {
                    return Err(format!("the command is for agent {}", command.agent));
                }
                Ok(Inbound::Command(command))
            }
            FrameKind::Config => {
                let bytes = self.keys.open(&frame, &self.agent, FrameKind::Config).map_err(|e| e.to_string())?;
                let config: ManagedConfig = protocol::decode(bytes, Encoding::Bincode)
                    .map_err(|e| format!("central signed a configuration this agent cannot read ({e})"))?;
                Ok(Inbound::Config { config, newer_only: true })
            }
            other => Err(format!("a {other} frame does not belong on the commands topic")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "agt_gate-1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER: &str = "agt_gate-1_fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

    fn command(agent: &AgentId) -> AgentCommand {
        AgentCommand {
            version: protocol::PROTOCOL_VERSION,
            command_id: 5,
            agent: agent.clone(),
            issued_at: Utc::now(),
            expires_at: None,
            action: protocol::CommandAction::SendStatus,
        }
    }

    #[test]
    fn only_central_signed_commands_pass() {
        let (agent, keys) = AgentKeys::from_token(TOKEN).unwrap();
        let faults = Faults::new();
        let gate = CommandGate::new(keys.clone(), agent.clone(), faults.clone());
        let good = keys.seal_envelope(&agent, &command(&agent)).unwrap();
        assert!(matches!(gate.admit("t", &good), Some(Inbound::Command(c)) if c.command_id == 5));
        assert!(faults.snapshot().is_empty());

        // Signed with another token's key, signed as the agent (wrong direction), bare: all refused.
        let (_, other) = AgentKeys::from_token(OTHER).unwrap();
        let forged = other.seal_envelope(&agent, &command(&agent)).unwrap();
        assert!(gate.admit("t", &forged).is_none());
        let bytes = protocol::encode(&command(&agent), Encoding::Bincode).unwrap();
        let mut as_agent = keys.seal(&agent, FrameKind::Batch, bytes.clone());
        as_agent.kind = FrameKind::Command;
        assert!(gate.admit("t", &as_agent.to_bytes().unwrap()).is_none());
        assert!(gate.admit("t", &bytes).is_none());
        assert!(faults.is_raised(UNVERIFIED_COMMAND));
    }
}

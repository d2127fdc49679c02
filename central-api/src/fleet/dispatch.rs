//! The MQTT side of central -> agent, run by every replica with an MQTT consumer: once a second (or at once when
//! this replica creates a command or changes a device) it
//!
//! 1. expires the pending commands whose expiry passed (every backend, so HTTPS agents' commands expire too);
//! 2. sends its configuration to every managed MQTT agent that reported another version than its site's, at most
//!    once per [`RESEND_AFTER`] per version (`store::fleet::claim_config_send` makes one replica do it);
//! 3. publishes every pending command of an agent last heard over MQTT on its `commands` topic with QoS 1, after
//!    marking it delivered (a conditional update: of two replicas only one publishes it). A `reload_config` is
//!    preceded by the configuration, so the agent reloads what central holds.
//!
//! Everything is a [`protocol::SignedFrame`] signed with central's key for the agent: the agent believes nothing
//! else on that topic. The broker keeps QoS 1 messages for an agent's persistent session while it is offline.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use protocol::{AgentId, SiteId, TopicKind, Topics};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::AsyncClient;
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::auth::Authenticator;
use crate::store::Store;

/// A configuration not yet running at the agent is sent again after this long.
pub const RESEND_AFTER: chrono::Duration = chrono::Duration::seconds(30);
/// Commands published per round.
const PER_ROUND: i64 = 200;

/// What the dispatcher needs.
pub struct Dispatcher {
    pub store: Store,
    pub client: AsyncClient,
    pub topics: Topics,
    pub auth: Arc<Authenticator>,
    pub hub: Arc<Hub>,
}

impl Dispatcher {
    /// Runs rounds until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "fleet dispatch round failed; trying again");
            }
            tokio::select! {
                () = self.hub.wait(Duration::from_secs(1)) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    async fn round(&self) -> anyhow::Result<()> {
        let now = Utc::now();
        let expired = self.store.expire_commands(now).await?;
        if expired > 0 {
            tracing::info!(expired, "commands expired before they were delivered");
        }
        let resend_before = now - RESEND_AFTER;
        for (agent, site, version) in self.store.stale_mqtt_agents(resend_before).await? {
            if self.store.claim_config_send(&agent, version, resend_before).await? {
                let (Ok(agent), Ok(site)) = (agent.parse::<AgentId>(), site.parse::<SiteId>()) else { continue };
                self.send_config(&agent, &site).await?;
            }
        }
        for command in self.store.pending_mqtt_commands(now, PER_ROUND).await? {
            let (Ok(agent), Ok(site)) = (command.agent_id.parse::<AgentId>(), command.site_id.parse::<SiteId>()) else {
                continue;
            };
            let Some(wire) = super::wire_command(&command) else {
                tracing::warn!(id = command.id, "a stored command cannot be read; left pending until it expires");
                continue;
            };
            if matches!(wire.action, protocol::CommandAction::ReloadConfig) {
                self.send_config(&agent, &site).await?;
            }
            if !self.store.mark_delivered(command.id, "pending", now).await? {
                continue;
            }
            let Some(keys) = self.auth.frame_keys(&agent).await? else { continue };
            let payload = keys.seal_envelope(&agent, &wire)?;
            let topic = self.topics.topic(TopicKind::Commands, &site, &agent);
            self.client.publish(topic, QoS::AtLeastOnce, false, payload).await?;
            tracing::info!(id = command.id, %agent, action = %command.action, "command published");
        }
        Ok(())
    }

    /// Publishes the agent's configuration, signed, on its commands topic.
    async fn send_config(&self, agent: &AgentId, site: &SiteId) -> anyhow::Result<()> {
        let Some(keys) = self.auth.frame_keys(agent).await? else { return Ok(()) };
        let config = super::config_for(&self.store, agent, site).await?;
        let payload = keys.seal_envelope(agent, &config)?;
        let topic = self.topics.topic(TopicKind::Commands, site, agent);
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await?;
        tracing::info!(%agent, version = config.config_version, devices = config.devices.len(), "configuration sent");
        Ok(())
    }
}

/// Expires pending commands once a second where no MQTT dispatcher runs (HTTPS only): a poll hands out only
/// unexpired commands anyway; this keeps the history's states right.
pub async fn expire_only(store: Store, hub: Arc<Hub>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = store.expire_commands(Utc::now()).await {
            tracing::warn!(error = %e, "expiring commands failed");
        }
        tokio::select! {
            () = hub.wait(Duration::from_secs(1)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

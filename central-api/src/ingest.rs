//! What both ingest paths (HTTP and MQTT) do with a decoded batch or status once they know who sent it: check that
//! the sender may write for the batch's agent and site, store it, count it, and build the acknowledgement.
//!
//! The acknowledgement is built only from a committed insert: nothing here answers before the transaction commits.
//!
//! Punches naming a device registered at another site are held in the quarantine by the store and counted as
//! `quarantined` in the acknowledgement (so the agent does not block on them); such a device, in punches or in a
//! status, raises the [`cross_site`] fault.

pub mod cross_site;
pub mod pg_group;

use std::sync::Arc;

use protocol::{AgentStatus, BatchAck, PunchBatch};

use crate::auth::AuthenticatedAgent;
use crate::metrics::{IngestPath, Metrics};
use crate::store::rows::BatchRows;
use crate::store::writer_stats::WriterStats;
use crate::store::{Store, StoreError};

/// Why a batch or status was not stored.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The sender may not write for this agent or site.
    #[error("{0}")]
    Forbidden(String),
    /// The envelope decoded but cannot be stored.
    #[error("{0}")]
    Invalid(String),
    /// The database failed; nothing was stored; the sender should retry.
    #[error("storage unavailable: {0}")]
    Storage(#[from] StoreError),
}

/// The ingest service shared by the HTTP handlers and the MQTT consumer.
pub struct Ingest {
    store: Store,
    metrics: Arc<Metrics>,
    cross_site: cross_site::CrossSiteAlarm,
    /// PostgreSQL: the group commit, started on first use (SQLite has its own in the store).
    pg_group: std::sync::OnceLock<pg_group::PgGroupCommit>,
    /// What the group commit's writers did (SQLite: the store's writer task's counters).
    writer_stats: Arc<WriterStats>,
}

impl Ingest {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> Self {
        let writer_stats = match &store {
            Store::Sqlite(s) => s.group_commit.stats().clone(),
            Store::Postgres(_) => Arc::new(WriterStats::default()),
        };
        let cross_site = cross_site::CrossSiteAlarm::default();
        Self { store, metrics, cross_site, pg_group: std::sync::OnceLock::new(), writer_stats }
    }

    /// Stores a batch sent by `sender` and returns the `Stored` acknowledgement, after the commit.
    ///
    /// # Errors
    /// [`IngestError::Forbidden`] when the batch names another agent or site than the sender's,
    /// [`IngestError::Invalid`] when it cannot be stored, [`IngestError::Storage`] when the database fails.
    pub async fn store_batch(
        &self,
        sender: &AuthenticatedAgent,
        batch: &PunchBatch,
        path: IngestPath,
    ) -> Result<BatchAck, IngestError> {
        let result = self.try_store_batch(sender, batch, path).await;
        if matches!(result, Err(IngestError::Forbidden(_) | IngestError::Invalid(_))) {
            self.metrics.batch_rejected(path);
        }
        result
    }

    async fn try_store_batch(
        &self,
        sender: &AuthenticatedAgent,
        batch: &PunchBatch,
        path: IngestPath,
    ) -> Result<BatchAck, IngestError> {
        check_identity(sender, batch.agent.as_str(), batch.site.as_str())?;
        let rows = BatchRows::from_batch(batch).map_err(|e| IngestError::Invalid(e.to_string()))?;
        let inserted = match &self.store {
            Store::Postgres(_) => {
                self.pg_group
                    .get_or_init(|| pg_group::PgGroupCommit::start(self.store.clone(), self.writer_stats.clone()))
                    .insert(rows)
                    .await?
            }
            Store::Sqlite(_) => self.store.insert_batch(rows).await?,
        };
        self.metrics.batch_stored(path, inserted.new, inserted.duplicates);
        tracing::debug!(
            agent = %batch.agent, site = %batch.site, path = path.as_str(), first_seq = batch.first_seq,
            last_seq = batch.last_seq, new = inserted.new, duplicates = inserted.duplicates,
            quarantined = inserted.quarantined, "batch stored"
        );
        for device in &inserted.foreign {
            let what = cross_site::Naming::Punches(device.punches);
            self.cross_site
                .raise(&self.store, batch.agent.as_str(), batch.site.as_str(), &device.serial, &device.site, what)
                .await;
        }
        Ok(BatchAck::stored(batch, inserted.new, inserted.duplicates, inserted.quarantined))
    }

    /// Stores a status sent by `sender` over `path`, and what it tells the fleet side (the configuration version the
    /// agent runs, its command results: see [`crate::fleet::on_status`]).
    ///
    /// # Errors
    /// As [`Ingest::store_batch`].
    pub async fn store_status(
        &self,
        sender: &AuthenticatedAgent,
        status: &AgentStatus,
        path: IngestPath,
    ) -> Result<(), IngestError> {
        check_identity(sender, status.agent.as_str(), status.site.as_str())?;
        let stored = self.store.store_status(status).await?;
        crate::fleet::on_status(&self.store, status, if path == IngestPath::Mqtt { "mqtt" } else { "https" }).await?;
        self.metrics.status_stored();
        for (device, device_site) in &stored.foreign {
            let what = cross_site::Naming::Status;
            self.cross_site
                .raise(&self.store, status.agent.as_str(), status.site.as_str(), device, device_site, what)
                .await;
        }
        if stored.new_faults > 0 {
            tracing::info!(agent = %status.agent, new_faults = stored.new_faults, "agent reported new faults");
        }
        Ok(())
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The Prometheus text of the ingest counters and of the group commit's writers.
    pub fn render_metrics(&self) -> String {
        let mut out = self.metrics.render();
        self.writer_stats.render(&mut out);
        out
    }
}

fn check_identity(sender: &AuthenticatedAgent, agent: &str, site: &str) -> Result<(), IngestError> {
    if sender.agent.as_str() != agent {
        return Err(IngestError::Forbidden(format!(
            "this credential belongs to agent {}, not to agent {agent}",
            sender.agent
        )));
    }
    if sender.site.as_str() != site {
        return Err(IngestError::Forbidden(format!(
            "agent {} is bound to site {}, not to site {site}",
            sender.agent, sender.site
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> AuthenticatedAgent {
        AuthenticatedAgent { agent: "a1".parse().unwrap(), site: "s1".parse().unwrap() }
    }

    #[test]
    fn identity_must_match_agent_and_site() {
        assert!(check_identity(&sender(), "a1", "s1").is_ok());
        let err = check_identity(&sender(), "a1", "s2").unwrap_err().to_string();
        assert!(err.contains("bound to site s1, not to site s2"), "{err}");
        let err = check_identity(&sender(), "a2", "s1").unwrap_err().to_string();
        assert!(err.contains("not to agent a2"), "{err}");
    }
}

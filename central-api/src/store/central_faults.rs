//! Faults central raises about an agent itself (for example a message on the agent's MQTT topics without valid
//! proof), appended to the same history as the faults agents report, so the devices page lists them with the rest.

use chrono::{DateTime, Utc};

use super::{on_pool, Store, StoreError};

impl Store {
    /// Appends a fault about `agent_id` (not about one of its devices) to the fault history.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn record_central_fault(
        &self,
        agent_id: &str,
        code: &str,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO fault_history (agent_id, device_serial, code, message, since, recorded_at) \
             VALUES ($1, NULL, $2, $3, $4, $4)"
        )
        .bind(agent_id)
        .bind(code)
        .bind(message)
        .bind(at)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

impl Store {
    /// Appends a fault about `agent_id`'s use of `device_serial`, a device registered at `other_site`, to the fault
    /// history; the administrators of `other_site` see it as well as the agent's own.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn record_cross_site_fault(
        &self,
        agent_id: &str,
        device_serial: &str,
        other_site: &str,
        code: &str,
        message: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO fault_history (agent_id, device_serial, code, message, since, recorded_at, other_site_id) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)"
        )
        .bind(agent_id)
        .bind(device_serial)
        .bind(code)
        .bind(message)
        .bind(at)
        .bind(other_site)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

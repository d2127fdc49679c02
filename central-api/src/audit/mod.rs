//! The audit log: every change an administrator makes (who, when, from which address, which resource, the values
//! before and after), written once and never changed (no endpoint edits it, and the table's trigger refuses
//! updates).
//!
//! Handlers call [`record`] right after a change succeeded, with an [`Entry`] built from the resource's values
//! before and after (as JSON; secrets such as tokens are never put in them). Within a transaction that should
//! commit the change and its entry together, call [`record_in`]. A failure to write the entry is logged at error
//! level; the change itself stands (it is already committed).
//!
//! Reading: [`crate::store::audit`] lists entries (root sees every entry, an admin the entries of their sites);
//! the API is `GET /api/v1/audit`, the page `/audit`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::access::Caller;
use crate::store::{Store, StoreError, Tx};

/// One change to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// What was done: `create`, `update`, `delete`, `approve`, `reject`, `revoke`, `issue`, `start`, `cancel`.
    pub action: &'static str,
    /// What kind of thing: `shift`, `employee`, `holiday`, `week_off_rule`, `site`, `manual_log`, `leave`,
    /// `agent`, `device`, `token`, `job`, ...
    pub resource: &'static str,
    /// Its id (code, employee id, row id, serial).
    pub resource_id: String,
    /// The site it belongs to (`None`: a global setting, seen by root only).
    pub site_id: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl Entry {
    pub fn new(action: &'static str, resource: &'static str, resource_id: impl Into<String>) -> Self {
        Self { action, resource, resource_id: resource_id.into(), site_id: None, before: None, after: None }
    }

    /// The site the resource belongs to.
    #[must_use]
    pub fn site(mut self, site: Option<&str>) -> Self {
        self.site_id = site.map(str::to_owned);
        self
    }

    /// The values before the change.
    #[must_use]
    pub fn before(mut self, value: &impl Serialize) -> Self {
        self.before = serde_json::to_value(value).ok();
        self
    }

    /// The values after the change.
    #[must_use]
    pub fn after(mut self, value: &impl Serialize) -> Self {
        self.after = serde_json::to_value(value).ok();
        self
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub username: String,
    pub role: String,
    pub address: Option<String>,
}

impl Actor {
    /// The administrator behind a request.
    pub fn of(caller: &Caller) -> Self {
        Self {
            username: caller.username.clone(),
            role: caller.role.as_str().to_owned(),
            address: caller.address.map(|a| a.to_string()),
        }
    }

    /// A change made from the command line (`central-api <command>` run by an operator on the host).
    pub fn cli() -> Self {
        Self { username: "cli".to_owned(), role: "root".to_owned(), address: None }
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: String,
    /// The client's address.
    pub address: Option<String>,
    pub action: String,
    pub resource: String,
    pub resource_id: String,
    pub site_id: Option<String>,
    /// The values before the change (absent for a creation).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The values after the change (absent for a deletion).
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

/// Records `entry` as done by `caller`. Never fails the caller's request: a store failure is logged.
pub async fn record(store: &Store, caller: &Caller, entry: Entry) {
    record_as(store, &Actor::of(caller), entry).await;
}

/// Records `entry` as done by `actor` (see [`record`]).
pub async fn record_as(store: &Store, actor: &Actor, entry: Entry) {
    if let Err(e) = store.add_audit(actor, &entry, Utc::now()).await {
        tracing::error!(error = %e, actor = %actor.username, action = entry.action, resource = entry.resource,
            id = %entry.resource_id, "the audit entry of a change could not be written");
    }
}

/// Records `entry` inside `tx`, so it commits (or not) with the change.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn record_in(tx: &mut Tx, caller: &Caller, entry: Entry) -> Result<(), StoreError> {
    crate::store::audit::insert(tx, &Actor::of(caller), &entry, Utc::now()).await
}

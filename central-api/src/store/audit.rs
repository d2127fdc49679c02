//! The `audit_log` table: appending entries and reading them back, newest first, in pages by id, limited to the
//! caller's sites.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{on_pool, on_reader, on_tx, Store, StoreError, Tx};
use crate::audit::{Actor, AuditRecord, Entry};

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// `None`: every entry (root); otherwise the administrator whose granted sites bound the result (entries
    /// without a site are then left out).
    pub scope: Option<String>,
    pub site: Option<String>,
    pub actor: Option<String>,
    pub resource: Option<String>,
    pub resource_id: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only entries with a smaller id (the previous page's last).
    pub before_id: Option<i64>,
    pub limit: i64,
}

const INSERT: &str = "INSERT INTO audit_log (at, actor, role, address, action, resource, resource_id, site_id, \
                      before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

fn json(value: Option<&serde_json::Value>) -> Option<String> {
    value.map(serde_json::Value::to_string)
}

/// Appends an entry in `tx`.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn insert(tx: &mut Tx, actor: &Actor, entry: &Entry, at: DateTime<Utc>) -> Result<(), StoreError> {
    on_tx!(tx, |conn| sqlx::query(INSERT)
        .bind(at)
        .bind(&actor.username)
        .bind(&actor.role)
        .bind(&actor.address)
        .bind(entry.action)
        .bind(entry.resource)
        .bind(&entry.resource_id)
        .bind(&entry.site_id)
        .bind(json(entry.before.as_ref()))
        .bind(json(entry.after.as_ref()))
        .execute(&mut *conn)
        .await
        .map(|_| ()))?;
    Ok(())
}

impl Store {
    /// Appends an entry.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn add_audit(&self, actor: &Actor, entry: &Entry, at: DateTime<Utc>) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(INSERT)
            .bind(at)
            .bind(&actor.username)
            .bind(&actor.role)
            .bind(&actor.address)
            .bind(entry.action)
            .bind(entry.resource)
            .bind(&entry.resource_id)
            .bind(&entry.site_id)
            .bind(json(entry.before.as_ref()))
            .bind(json(entry.after.as_ref()))
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// A page of entries matching `filter`, newest first.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Invalid`] for a stored value that is not JSON.
    pub async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let sql = "SELECT id, at, actor, role, address, action, resource, resource_id, site_id, before_json, \
                   after_json FROM audit_log \
                   WHERE ($1 IS NULL OR site_id IN (SELECT site_id FROM admin_sites WHERE username = $1)) \
                   AND ($2 IS NULL OR site_id = $2) AND ($3 IS NULL OR actor = $3) AND ($4 IS NULL OR resource = $4) \
                   AND ($5 IS NULL OR resource_id = $5) AND ($6 IS NULL OR action = $6) AND ($7 IS NULL OR at >= $7) \
                   AND ($8 IS NULL OR at <= $8) AND ($9 IS NULL OR id < $9) ORDER BY id DESC LIMIT $10";
        on_reader!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(filter.scope.as_deref())
                .bind(filter.site.as_deref())
                .bind(filter.actor.as_deref())
                .bind(filter.resource.as_deref())
                .bind(filter.resource_id.as_deref())
                .bind(filter.action.as_deref())
                .bind(filter.from)
                .bind(filter.to)
                .bind(filter.before_id)
                .bind(filter.limit)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let parse = |name: &str| -> Result<Option<serde_json::Value>, StoreError> {
                        row.try_get::<Option<String>, _>(name)?
                            .map(|text| serde_json::from_str(&text))
                            .transpose()
                            .map_err(|e| StoreError::Invalid(format!("audit {name}: {e}")))
                    };
                    Ok(AuditRecord {
                        id: row.try_get("id")?,
                        at: row.try_get("at")?,
                        actor: row.try_get("actor")?,
                        role: row.try_get("role")?,
                        address: row.try_get("address")?,
                        action: row.try_get("action")?,
                        resource: row.try_get("resource")?,
                        resource_id: row.try_get("resource_id")?,
                        site_id: row.try_get("site_id")?,
                        before: parse("before_json")?,
                        after: parse("after_json")?,
                    })
                })
                .collect()
        })
    }
}

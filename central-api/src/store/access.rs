//! Administrator access records (migration `0003_access.sql`): the sites each administrator is granted, web sessions
//! and API tokens. Secrets are never stored: sessions and tokens are kept as the SHA-256 of their secret.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{on_pool, on_reader, Store, StoreError};

/// A web session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub username: String,
    /// The SHA-256 (hex) of the session's CSRF token ([`crate::access::secrets::csrf_stored`]).
    pub csrf_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// An administrator's API token as stored (without its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AdminTokenInfo {
    pub token_id: String,
    pub username: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// After this instant the token is refused (`401`); none: it works until revoked.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the token was last used, to the minute ([`LAST_USED_EVERY`]); none: never.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// An unrevoked administrator token as the request extractor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTokenRecord {
    pub username: String,
    pub token_hash: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token's last-used time is written at most this often (not on every request).
pub const LAST_USED_EVERY: chrono::Duration = chrono::Duration::minutes(1);

impl Store {
    /// Grants an administrator a site.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown site or administrator.
    pub async fn grant_site(&self, username: &str, site_id: &str) -> Result<(), StoreError> {
        if self.site(site_id).await?.is_none() {
            return Err(StoreError::NotFound { what: "site", id: site_id.to_owned() });
        }
        if self.admin(username).await?.is_none() {
            return Err(StoreError::NotFound { what: "admin", id: username.to_owned() });
        }
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO admin_sites (username, site_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        )
        .bind(username)
        .bind(site_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The sites granted to an administrator, sorted.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn admin_sites(&self, username: &str) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT site_id FROM admin_sites WHERE username = $1 ORDER BY site_id"
        )
        .bind(username)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Stores a new web session: the SHA-256 of its secret and of its CSRF token (column `csrf_token`).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn create_session(
        &self,
        session_hash: &[u8],
        username: &str,
        csrf_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO admin_sessions (session_hash, username, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(session_hash)
        .bind(username)
        .bind(csrf_hash)
        .bind(Utc::now())
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The session with this hash, expired or not.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn session(&self, session_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<(String, String, DateTime<Utc>)> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT username, csrf_token, expires_at FROM admin_sessions WHERE session_hash = $1"
        )
        .bind(session_hash)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(username, csrf_hash, expires_at)| SessionRecord { username, csrf_hash, expires_at }))
    }

    /// Ends a session (logout) and forgets expired ones.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn delete_session(&self, session_hash: &[u8]) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("DELETE FROM admin_sessions WHERE session_hash = $1 OR expires_at < $2")
            .bind(session_hash)
            .bind(Utc::now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Stores a new administrator API token.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] for a token id already used.
    pub async fn create_admin_token(
        &self,
        token_id: &str,
        username: &str,
        token_hash: &[u8],
        label: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO admin_tokens (token_id, username, token_hash, label, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(token_id)
        .bind(username)
        .bind(token_hash)
        .bind(label)
        .bind(Utc::now())
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// An unrevoked administrator token (expired or not).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn admin_token(&self, token_id: &str) -> Result<Option<AdminTokenRecord>, StoreError> {
        type Row = (String, Vec<u8>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
        let row: Option<Row> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT username, token_hash, expires_at, last_used_at FROM admin_tokens \
             WHERE token_id = $1 AND revoked_at IS NULL"
        )
        .bind(token_id)
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(username, token_hash, expires_at, last_used_at)| AdminTokenRecord {
            username,
            token_hash,
            expires_at,
            last_used_at,
        }))
    }

    /// Records that a token was used at `now`, unless that was already recorded less than [`LAST_USED_EVERY`]
    /// before (so a busy token costs one write a minute). Returns whether a row was written.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn touch_admin_token(&self, token_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let written = on_pool!(self, |pool| sqlx::query(
            "UPDATE admin_tokens SET last_used_at = $1 WHERE token_id = $2 \
             AND (last_used_at IS NULL OR last_used_at <= $3)"
        )
        .bind(now)
        .bind(token_id)
        .bind(now - LAST_USED_EVERY)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(written > 0)
    }

    /// An administrator's tokens (revoked ones too), newest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn admin_tokens(&self, username: &str) -> Result<Vec<AdminTokenInfo>, StoreError> {
        type Row = (
            String,
            String,
            String,
            DateTime<Utc>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT token_id, username, label, created_at, revoked_at, expires_at, last_used_at FROM admin_tokens \
             WHERE username = $1 ORDER BY created_at DESC, token_id"
        )
        .bind(username)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(token_id, username, label, created_at, revoked_at, expires_at, last_used_at)| AdminTokenInfo {
                token_id,
                username,
                label,
                created_at,
                revoked_at,
                expires_at,
                last_used_at,
            })
            .collect())
    }

    /// Revokes one of `username`'s tokens.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `username` has no such unrevoked token.
    pub async fn revoke_admin_token(&self, username: &str, token_id: &str) -> Result<(), StoreError> {
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE admin_tokens SET revoked_at = $1 WHERE token_id = $2 AND username = $3 AND revoked_at IS NULL"
        )
        .bind(Utc::now())
        .bind(token_id)
        .bind(username)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound { what: "token", id: token_id.to_owned() });
        }
        Ok(())
    }
}

//! Agent tokens: how they look, how they are stored, and how a request's bearer token is checked.
//!
//! A token is `agt_<agent id>_<secret>`, the secret being 32 random bytes as 64 hex digits. The agent id in the token
//! says which row to check; the secret proves possession. Only SHA-256 of the secret is stored, and the token is
//! printed once when the agent is created.
//!
//! Why SHA-256 and not argon2: argon2 exists to make guessing a *low-entropy* human password expensive, and it does
//! so by costing tens of milliseconds and megabytes per check. An agent token's secret has 256 bits of entropy, so a
//! stolen hash cannot be reversed by guessing however fast the hash is, while a slow hash on every request would cap
//! ingest at a few dozen batches per second per core. A fast hash plus a constant-time comparison gives the same
//! protection at the 100+ batches per second the service must take. Human passwords (`create-admin`) use argon2id.
//!
//! Each agent is bound to one site; the ingest paths refuse a batch whose agent or site is not the token's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use protocol::{AgentId, AgentKeys, SiteId};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{Store, StoreError};

const TOKEN_PREFIX: &str = "agt_";
const SECRET_BYTES: usize = 32;

/// Why a request's credentials were refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer agt_<agent>_<secret>`")]
    Missing,
    #[error("malformed agent token: {0}")]
    Malformed(String),
    #[error("unknown agent or wrong token")]
    BadToken,
    #[error("agent {0} is revoked")]
    Revoked(String),
    #[error("agent {agent} is bound to site {site}, which is not a valid site id")]
    BadSite { agent: String, site: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A parsed agent token.
pub struct AgentToken {
    agent: AgentId,
    secret: String,
}

impl std::fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentToken").field("agent", &self.agent).field("secret", &"<redacted>").finish()
    }
}

impl AgentToken {
    /// A fresh token for `agent` from the operating system's random generator.
    pub fn generate(agent: AgentId) -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        // ThreadRng is a CSPRNG seeded (and periodically reseeded) from the operating system.
        rand::rng().fill_bytes(&mut bytes);
        Self { agent, secret: hex::encode(bytes) }
    }

    /// Parses `agt_<agent id>_<64 hex digits>`. The agent id may itself contain `_`: the secret is after the last one.
    ///
    /// # Errors
    /// [`AuthError::Malformed`] saying which part is wrong.
    pub fn parse(token: &str) -> Result<Self, AuthError> {
        let rest = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or_else(|| AuthError::Malformed(format!("it does not start with {TOKEN_PREFIX:?}")))?;
        let (agent, secret) =
            rest.rsplit_once('_').ok_or_else(|| AuthError::Malformed("no secret after the agent id".into()))?;
        let agent: AgentId = agent.parse().map_err(|e| AuthError::Malformed(format!("{e}")))?;
        if secret.len() != SECRET_BYTES * 2 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::Malformed(format!("the secret is not {} hex digits", SECRET_BYTES * 2)));
        }
        Ok(Self { agent, secret: secret.to_ascii_lowercase() })
    }

    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// SHA-256 of the secret: what the database keeps.
    pub fn secret_hash(&self) -> Vec<u8> {
        Sha256::digest(self.secret.as_bytes()).to_vec()
    }

    /// The token's text, to show once.
    pub fn reveal(&self) -> String {
        format!("{TOKEN_PREFIX}{}_{}", self.agent, self.secret)
    }
}

/// Who a verified request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedAgent {
    pub agent: AgentId,
    pub site: SiteId,
}

struct Cached {
    view: CachedView,
    fetched: Instant,
}

/// Checks bearer tokens against the agents table, keeping each agent's record for a short time so that a busy agent
/// costs one hash, not one query, per batch.
pub struct Authenticator {
    store: Store,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Authenticator {
    pub fn new(store: Store, ttl: Duration) -> Self {
        Self { store, ttl, cache: Mutex::new(HashMap::new()) }
    }

    /// Verifies a bearer token.
    ///
    /// # Errors
    /// [`AuthError::Malformed`], [`AuthError::BadToken`] (unknown agent or wrong secret: deliberately the same answer),
    /// [`AuthError::Revoked`], or [`AuthError::Store`] when the database is unreachable.
    pub async fn verify_token(&self, token: &str) -> Result<AuthenticatedAgent, AuthError> {
        let token = AgentToken::parse(token)?;
        let record = self.record(token.agent()).await?.ok_or(AuthError::BadToken)?;
        let presented = token.secret_hash();
        if !bool::from(presented.as_slice().ct_eq(record.token_hash.as_slice())) {
            return Err(AuthError::BadToken);
        }
        if record.revoked {
            return Err(AuthError::Revoked(token.agent().to_string()));
        }
        let site = record
            .site
            .parse()
            .map_err(|_| AuthError::BadSite { agent: token.agent().to_string(), site: record.site.clone() })?;
        Ok(AuthenticatedAgent { agent: token.agent().clone(), site })
    }

    /// The site an agent is bound to, when it exists and is not revoked (MQTT: once the message's signed frame
    /// proved which agent wrote it).
    ///
    /// # Errors
    /// [`AuthError::BadToken`] for an unknown agent, [`AuthError::Revoked`], [`AuthError::Store`].
    pub async fn active_agent(&self, agent: &AgentId) -> Result<AuthenticatedAgent, AuthError> {
        let record = self.record(agent).await?.ok_or(AuthError::BadToken)?;
        if record.revoked {
            return Err(AuthError::Revoked(agent.to_string()));
        }
        let site = record
            .site
            .parse()
            .map_err(|_| AuthError::BadSite { agent: agent.to_string(), site: record.site.clone() })?;
        Ok(AuthenticatedAgent { agent: agent.clone(), site })
    }

    /// The keys an agent's MQTT frames are checked and answered with, derived from its stored secret hash; `None`
    /// for an agent central does not know. A revoked agent still has keys, so that its refusal can be signed.
    ///
    /// # Errors
    /// [`AuthError::Store`].
    pub async fn frame_keys(&self, agent: &AgentId) -> Result<Option<AgentKeys>, AuthError> {
        Ok(self.record(agent).await?.map(|record| AgentKeys::from_secret_hash(&record.token_hash)))
    }

    async fn record(&self, agent: &AgentId) -> Result<Option<CachedView>, AuthError> {
        if let Some(view) = self.cached(agent.as_str()) {
            return Ok(Some(view));
        }
        let Some(record) = self.store.agent(agent.as_str()).await? else {
            return Ok(None);
        };
        let view = CachedView { token_hash: record.token_hash, site: record.site_id, revoked: record.revoked };
        if !self.ttl.is_zero() {
            let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            cache.insert(record.agent_id, Cached { view: view.clone(), fetched: Instant::now() });
        }
        Ok(Some(view))
    }

    fn cached(&self, agent: &str) -> Option<CachedView> {
        let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.get(agent).filter(|c| c.fetched.elapsed() < self.ttl).map(|c| c.view.clone())
    }
}

#[derive(Clone)]
struct CachedView {
    token_hash: Vec<u8>,
    site: String,
    revoked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back_and_hash_the_same() {
        let agent: AgentId = "gate_pc-1".parse().unwrap();
        let token = AgentToken::generate(agent.clone());
        let text = token.reveal();
        assert!(text.starts_with("agt_gate_pc-1_"), "{text}");
        let parsed = AgentToken::parse(&text).unwrap();
        assert_eq!(parsed.agent(), &agent);
        assert_eq!(parsed.secret_hash(), token.secret_hash());
        assert_eq!(token.secret_hash().len(), 32);
    }

    #[test]
    fn the_protocol_reads_tokens_like_central() {
        let token = AgentToken::generate("gate_pc-1".parse().unwrap());
        let (agent, hash) = protocol::signed::token_secret_hash(&token.reveal()).unwrap();
        assert_eq!((&agent, hash.to_vec()), (token.agent(), token.secret_hash()));
    }

    #[test]
    fn two_tokens_differ() {
        let agent: AgentId = "a".parse().unwrap();
        assert_ne!(AgentToken::generate(agent.clone()).reveal(), AgentToken::generate(agent).reveal());
    }

    #[test]
    fn malformed_tokens_say_why() {
        let cases = [
            ("Bearer x", "does not start"),
            ("agt_nosecret", "no secret"),
            ("agt_a/b_00", "agent id"),
            ("agt_a_1234", "64 hex digits"),
        ];
        for (token, expected) in cases {
            let err = AgentToken::parse(token).unwrap_err().to_string();
            assert!(err.contains(expected), "{token}: {err}");
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let token = AgentToken::generate("a".parse().unwrap());
        let secret = token.reveal().rsplit_once('_').unwrap().1.to_owned();
        assert!(!format!("{token:?}").contains(&secret));
    }
}

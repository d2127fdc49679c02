//! Session and token secrets: random, shown once, stored only as SHA-256, compared in constant time.
//!
//! A session's CSRF token is derived from the session's secret ([`csrf_token`]), so a page can be given it again
//! from the cookie, and is stored only as its SHA-256 ([`csrf_stored`]): the database holds neither secret.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of administrator API tokens: `adm_<token id>_<64 hex>`.
pub const TOKEN_PREFIX: &str = "adm_";

/// `bytes` random bytes from the operating system's generator, hex-encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// SHA-256 of a secret's text.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The CSRF token of the session whose cookie holds `session_secret`: SHA-256 of a fixed label and the secret, hex.
pub fn csrf_token(session_secret: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"attendance csrf token\0");
    digest.update(session_secret.as_bytes());
    hex::encode(digest.finalize())
}

/// What is stored of a CSRF token: its SHA-256, hex.
pub fn csrf_stored(token: &str) -> String {
    hex::encode(hash(token))
}

/// Whether `sent` is the CSRF token whose stored form is `stored` (constant time).
pub fn csrf_matches(sent: &str, stored: &str) -> bool {
    same(csrf_stored(sent).as_bytes(), stored.as_bytes())
}

/// Constant-time equality.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Splits `adm_<id>_<secret>` into its id and secret (64 hex digits).
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.strip_prefix(TOKEN_PREFIX)?.rsplit_once('_')?;
    (!id.is_empty() && secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_hashes_compare() {
        let secret = random_hex(32);
        let token = format!("{TOKEN_PREFIX}abc_{secret}");
        assert_eq!(parse_token(&token), Some(("abc", secret.as_str())));
        assert_eq!(parse_token("adm_abc_123"), None);
        assert_eq!(parse_token("agt_abc_".to_owned().as_str()), None);
        assert!(same(&hash(&secret), &hash(&secret)));
        assert!(!same(&hash(&secret), &hash("other")));
    }

    #[test]
    fn csrf_tokens_are_derived_and_stored_hashed() {
        let secret = random_hex(32);
        let token = csrf_token(&secret);
        assert_eq!(token, csrf_token(&secret), "derived again from the same cookie");
        assert_ne!(token, csrf_token(&random_hex(32)));
        let stored = csrf_stored(&token);
        assert_ne!(stored, token);
        assert!(csrf_matches(&token, &stored));
        assert!(!csrf_matches(&stored, &stored), "the stored form is not a token");
        assert!(!csrf_matches("", &stored));
    }
}

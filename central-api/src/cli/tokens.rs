//! `issue-token`, `list-tokens`, `revoke-token`: administrators' API tokens from the command line (the same records
//! and checks as `POST/GET/DELETE /api/v1/tokens`), for an operator who scripts against the API.

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, Utc};

use crate::access::secrets;
use crate::http::api::session::expiry_problem;
use crate::store::Store;

/// `issue-token`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// The administrator the token acts as.
    pub username: String,
    /// What the token is for.
    #[arg(long)]
    pub label: String,
    /// When the token stops working (RFC 3339).
    #[arg(long, conflicts_with = "expires_in_days")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Days from now until the token stops working.
    #[arg(long)]
    pub expires_in_days: Option<u32>,
}

/// Issues the token and prints it (stdout, once); what it is goes to stderr.
///
/// # Errors
/// An unknown administrator, a bad label or expiry, or storage.
pub async fn issue(store: &Store, args: &IssueArgs) -> anyhow::Result<()> {
    let label = args.label.trim();
    if label.is_empty() || label.len() > 200 {
        bail!("--label must be 1 to 200 characters");
    }
    if store.admin(&args.username).await?.is_none() {
        bail!("administrator {:?} does not exist", args.username);
    }
    let now = Utc::now();
    let expires_at = match (args.expires_at, args.expires_in_days) {
        (Some(at), _) => Some(at),
        (None, Some(days)) => Some(now + Duration::days(i64::from(days))),
        (None, None) => None,
    };
    if let Some(problem) = expires_at.and_then(|at| expiry_problem(at, now)) {
        bail!("token expiry {problem}");
    }
    let token_id = secrets::random_hex(8);
    let secret = secrets::random_hex(32);
    store
        .create_admin_token(&token_id, &args.username, &secrets::hash(&secret), label, expires_at)
        .await
        .context("storing the token")?;
    let until = expires_at.map_or_else(|| "until revoked".to_owned(), |at| format!("until {}", at.to_rfc3339()));
    eprintln!("token {token_id} issued to {} ({until}); it is printed below, once.", args.username);
    println!("{}{token_id}_{secret}", secrets::TOKEN_PREFIX);
    Ok(())
}

/// Prints the administrator's tokens as JSON lines.
///
/// # Errors
/// Storage.
pub async fn list(store: &Store, username: &str) -> anyhow::Result<()> {
    for token in store.admin_tokens(username).await? {
        println!("{}", serde_json::to_string(&token)?);
    }
    Ok(())
}

/// Revokes the token.
///
/// # Errors
/// An unknown or already revoked token, or storage.
pub async fn revoke(store: &Store, username: &str, token_id: &str) -> anyhow::Result<()> {
    store.revoke_admin_token(username, token_id).await?;
    eprintln!("token {token_id} of {username} revoked");
    Ok(())
}

//! The evaluation loop: every interval, read the enabled rules and the inventory, find each rule's conditions
//! ([`super::evaluate`]), and move each (rule, subject) through waiting -> raised -> cleared in the store, which
//! records the events and queues their notifications. Every replica runs it; the store's conditional updates let
//! only one of them record each raise and clear.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::evaluate::{conditions, due, Snapshot};
use super::rules::RuleKind;
use crate::store::{Store, StoreError};

/// What one evaluation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evaluated {
    pub rules: usize,
    pub raised: usize,
    pub cleared: usize,
}

/// Evaluates every enabled rule once, as of `now`.
///
/// # Errors
/// [`StoreError`] when the store fails (the next round tries again).
pub async fn evaluate_once(store: &Store, now: DateTime<Utc>) -> Result<Evaluated, StoreError> {
    let rules = store.enabled_alert_rules().await?;
    let mut done = Evaluated { rules: rules.len(), ..Evaluated::default() };
    if rules.is_empty() {
        return Ok(done);
    }
    let mut snapshot = Snapshot {
        agents: store.agent_inventory(None, None).await?,
        devices: store.device_inventory(None, None).await?,
        ..Snapshot::default()
    };
    let counted_sites: HashSet<&str> =
        rules.iter().filter(|r| r.kind == RuleKind::RecordCountMismatch).map(|r| r.site_id.as_str()).collect();
    if !counted_sites.is_empty() {
        let serials: Vec<String> = snapshot
            .devices
            .iter()
            .filter(|d| counted_sites.contains(d.site_id.as_str()) && d.records.count.is_some())
            .map(|d| d.serial.clone())
            .collect();
        snapshot.stored_punches = store.stored_punches_of(&serials).await?.into_iter().collect();
    }

    for rule in &rules {
        let holding = conditions(rule, &snapshot, now);
        let states: HashMap<String, _> =
            store.alert_states(rule.id).await?.into_iter().map(|s| (s.subject.clone(), s)).collect();
        for condition in &holding {
            let since = match states.get(&condition.subject) {
                Some(state) if state.raised_at.is_some() => continue,
                Some(state) => state.condition_since,
                None => {
                    let since = condition.since.unwrap_or(now).min(now);
                    store.open_alert_state(rule.id, &condition.subject, since, &condition.message).await?;
                    since
                }
            };
            if due(rule, since, now) {
                if let Some(event) = store.raise_alert(rule, &condition.subject, &condition.message, now).await? {
                    tracing::info!(rule = rule.id, kind = rule.kind.as_str(), subject = %condition.subject, event,
                        "alert raised");
                    done.raised += 1;
                }
            }
        }
        let still: HashSet<&str> = holding.iter().map(|c| c.subject.as_str()).collect();
        for subject in states.keys().filter(|s| !still.contains(s.as_str())) {
            if let Some(event) = store.clear_alert(rule, subject, now).await? {
                tracing::info!(rule = rule.id, kind = rule.kind.as_str(), %subject, event, "alert cleared");
                done.cleared += 1;
            }
        }
    }
    Ok(done)
}

/// Evaluates every `interval` until `stop`.
pub async fn run(store: Store, interval: Duration, stop: CancellationToken) {
    loop {
        if let Err(e) = evaluate_once(&store, Utc::now()).await {
            tracing::warn!(error = %e, "alerts: evaluating the rules failed; trying again next round");
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return,
        }
    }
}

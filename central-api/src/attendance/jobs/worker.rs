//! The incremental worker: claims marked days from `attendance_dirty`, recomputes them (plus the sandwich runs next
//! to them, [`engine::affected_by_dates`]), writes the rows, and releases the claimed rows it wrote, all in one
//! transaction per claim.
//!
//! PostgreSQL: several replicas run this at once. Claims skip rows another transaction holds, and an employee is
//! only processed by the transaction that got their advisory lock; rows of employees it could not lock stay in the
//! queue for the next round. SQLite: one worker per database (its single writer connection serialises anyway).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};

use super::{recompute, JobError, Outcome};
use crate::attendance::engine;
use crate::store::attendance::dirty::{self, DirtyDay};
use crate::store::attendance::inputs::load_reference;
use crate::store::Store;

/// What one claim did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Dirty rows claimed.
    pub claimed: usize,
    /// Dirty rows deleted (the others were re-marked meanwhile or belong to an employee another replica holds).
    pub released: Vec<DirtyDay>,
    pub outcome: Outcome,
}

/// Claims up to `limit` marked days and processes them in one transaction.
///
/// # Errors
/// [`JobError`] when the database fails; the transaction is rolled back and the rows stay marked.
pub async fn process_once(store: &Store, limit: u32, at: DateTime<Utc>) -> Result<Round, JobError> {
    let mut tx = store.begin().await?;
    let claimed = dirty::claim(&mut tx, i64::from(limit)).await?;
    if claimed.is_empty() {
        tx.commit().await?;
        return Ok(Round::default());
    }
    let mut by_employee: BTreeMap<String, Vec<DirtyDay>> = BTreeMap::new();
    for day in &claimed {
        by_employee.entry(day.employee_id.clone()).or_default().push(day.clone());
    }
    let wanted: Vec<String> = by_employee.keys().cloned().collect();
    let locked: BTreeSet<String> = dirty::try_lock_employees(&mut tx, &wanted).await?.into_iter().collect();
    let mut mine: Vec<DirtyDay> = Vec::with_capacity(claimed.len());
    let mut dates: BTreeMap<String, BTreeSet<NaiveDate>> = BTreeMap::new();
    for (employee, days) in by_employee {
        if !locked.contains(&employee) {
            tracing::debug!(%employee, "employee held by another transaction; left for the next round");
            continue;
        }
        dates.insert(employee, days.iter().map(|d| d.work_date).collect());
        mine.extend(days);
    }
    let reference = load_reference(&mut tx).await?;
    let ids: Vec<String> = dates.keys().cloned().collect();
    let plan = |ctx: &engine::EmployeeContext<'_>, _now| {
        let id = ctx.employee().employee_id.as_str();
        dates.get(id).map(|d| engine::affected_by_dates(ctx, d.iter().copied())).unwrap_or_default()
    };
    let done = recompute(&mut tx, &reference, &ids, at, &plan, None).await?;
    let written: Vec<DirtyDay> = mine.into_iter().filter(|d| done.covers(d)).collect();
    let released = dirty::release(&mut tx, &written).await?;
    tx.commit().await?;
    Ok(Round { claimed: claimed.len(), released, outcome: done.outcome })
}

/// Processes claims until the queue is empty (or only holds rows other transactions have). Returns the total.
///
/// # Errors
/// As [`process_once`], after a few retries of transient failures.
pub async fn drain(store: &Store, limit: u32) -> Result<Round, JobError> {
    let mut total = Round::default();
    let mut transient = 0;
    loop {
        match process_once(store, limit, Utc::now()).await {
            Ok(round) => {
                transient = 0;
                let done = round.claimed == 0 || round.released.is_empty();
                total.claimed += round.claimed;
                total.released.extend(round.released);
                total.outcome += round.outcome;
                if done {
                    return Ok(total);
                }
            }
            Err(e) if e.is_transient() && transient < 5 => {
                transient += 1;
                tracing::warn!(error = %e, "attendance worker hit a transient error; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50 * transient)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

//! The soak's end checks and the per-punch figures read back from AllLogs.
//!
//! - AllLogs equals the distinct punches generated: same count, no key missing, none extra, and the same checksum
//!   (the XOR and the wrapping sum of the 16-byte keys, printed so two runs can be compared by eye).
//! - Every attendance row of the closed days equals a full reprocess: the rows are read, the `reprocess` job (the
//!   one `central-api reprocess` runs) recomputes every employee over those days, and the rows are read again.

use std::collections::HashSet;

use anyhow::{ensure, Context};
use central_api::attendance::jobs::bulk::{reprocess, Target};
use central_api::store::Store;
use chrono::{DateTime, NaiveDate, Utc};
use protocol::PunchKey;
use sqlx::PgPool;

/// A checksum of a set of punch keys that does not depend on order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeySum {
    pub xor: u128,
    pub sum: u128,
}

impl KeySum {
    pub fn of<'k>(keys: impl IntoIterator<Item = &'k PunchKey>) -> Self {
        let mut out = Self::default();
        for key in keys {
            let value = u128::from_be_bytes(*key.as_bytes());
            out.xor ^= value;
            out.sum = out.sum.wrapping_add(value);
        }
        out
    }
}

impl std::fmt::Display for KeySum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "xor {:032x} sum {:032x}", self.xor, self.sum)
    }
}

/// One stored punch, as the figures need it.
#[derive(Debug, Clone)]
pub struct StoredPunch {
    pub agent: String,
    pub seq: u64,
    pub received: DateTime<Utc>,
}

/// What AllLogs holds compared with what was generated.
#[derive(Debug)]
pub struct AllLogsCheck {
    pub rows: usize,
    pub generated: usize,
    pub missing: usize,
    pub extra: usize,
    pub stored_sum: KeySum,
    pub generated_sum: KeySum,
    pub punches: Vec<StoredPunch>,
}

impl AllLogsCheck {
    pub fn exact(&self) -> bool {
        self.rows == self.generated && self.missing == 0 && self.extra == 0 && self.stored_sum == self.generated_sum
    }
}

/// Reads AllLogs and compares it with `generated`.
///
/// # Errors
/// When the database cannot be read.
pub async fn all_logs(pool: &PgPool, generated: &HashSet<PunchKey>) -> anyhow::Result<AllLogsCheck> {
    let rows: Vec<(Vec<u8>, String, i64, DateTime<Utc>)> =
        sqlx::query_as("SELECT punch_key, agent_id, agent_seq, received_at FROM all_logs").fetch_all(pool).await?;
    let mut stored = HashSet::with_capacity(rows.len());
    let mut punches = Vec::with_capacity(rows.len());
    for (key, agent, seq, received) in rows {
        let array: [u8; 16] = key.as_slice().try_into().context("a punch key of 16 bytes")?;
        stored.insert(PunchKey::from_bytes(array));
        punches.push(StoredPunch { agent, seq: u64::try_from(seq).unwrap_or(0), received });
    }
    Ok(AllLogsCheck {
        rows: punches.len(),
        generated: generated.len(),
        missing: generated.difference(&stored).count(),
        extra: stored.difference(generated).count(),
        stored_sum: KeySum::of(&stored),
        generated_sum: KeySum::of(generated),
        punches,
    })
}

/// Attendance rows against a full reprocess.
#[derive(Debug)]
pub struct AttendanceCheck {
    pub rows: usize,
    pub differing: usize,
    pub only_before: usize,
    pub only_after: usize,
    pub example: Option<String>,
}

impl AttendanceCheck {
    pub fn equal(&self) -> bool {
        self.differing == 0 && self.only_before == 0 && self.only_after == 0
    }
}

/// Reads every row of `from..=to`, reprocesses everyone over those days, and compares.
///
/// # Errors
/// When the store refuses or the job fails.
pub async fn attendance_against_reprocess(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<AttendanceCheck> {
    let before = store.attendance(None, from, to).await?;
    reprocess(store, &Target::All, from, to, Utc::now(), None).await.context("the reprocess job")?;
    let after = store.attendance(None, from, to).await?;
    let key = |r: &central_api::store::attendance::results::AttendanceRecord| (r.employee_id.clone(), r.work_date);
    let before_map: std::collections::HashMap<_, _> = before.iter().map(|r| (key(r), r)).collect();
    let after_map: std::collections::HashMap<_, _> = after.iter().map(|r| (key(r), r)).collect();
    let mut check = AttendanceCheck { rows: before.len(), differing: 0, only_before: 0, only_after: 0, example: None };
    for (k, row) in &before_map {
        match after_map.get(k) {
            None => check.only_before += 1,
            Some(again) if again != row => {
                check.differing += 1;
                check.example.get_or_insert_with(|| format!("stored {row:?}\nreprocessed {again:?}"));
            }
            Some(_) => {}
        }
    }
    check.only_after = after_map.keys().filter(|k| !before_map.contains_key(*k)).count();
    Ok(check)
}

/// Waits up to `within` for the attendance queue to empty; returns the rows left.
///
/// # Errors
/// When the database cannot be read.
pub async fn wait_attendance_drained(pool: &PgPool, within: std::time::Duration) -> anyhow::Result<i64> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM attendance_dirty").fetch_one(pool).await?;
        if left == 0 || tokio::time::Instant::now() > deadline {
            return Ok(left);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Fails with every problem of both checks.
///
/// # Errors
/// When AllLogs is not exact or a row differs from its reprocess.
pub fn ensure_exact(logs: &AllLogsCheck, days: &AttendanceCheck) -> anyhow::Result<()> {
    ensure!(
        logs.exact(),
        "AllLogs holds {} rows for {} distinct punches generated: {} missing, {} not generated; stored {} vs generated {}",
        logs.rows,
        logs.generated,
        logs.missing,
        logs.extra,
        logs.stored_sum,
        logs.generated_sum
    );
    ensure!(
        days.equal(),
        "attendance differs from a full reprocess: {} of {} rows differ, {} only before, {} only after; e.g.\n{}",
        days.differing,
        days.rows,
        days.only_before,
        days.only_after,
        days.example.as_deref().unwrap_or("-")
    );
    Ok(())
}

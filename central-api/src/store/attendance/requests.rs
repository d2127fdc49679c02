//! Requests administrators decide on: manual logs (a punch someone forgot) and leave. Deciding one marks the days it
//! touches for recomputation, in the same transaction; a pending manual log is marked too, because the engine names
//! it in the day's explanation.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use protocol::PunchState;
use serde::Serialize;

use super::{approval_name, mark_days, parse_approval, Scope};
use crate::attendance::engine::{days_a_punch_may_belong_to, Approval};
use crate::store::{on_reader, on_tx, Store, StoreError};

/// A manual log to record (pending until decided).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewManualLog {
    pub employee_id: String,
    /// Local wall-clock time of the punch at the employee's site.
    pub local_time: NaiveDateTime,
    pub state: PunchState,
    pub reason: String,
    pub requested_by: String,
}

/// A stored manual log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualLogRecord {
    pub id: i64,
    pub employee_id: String,
    pub local_time: NaiveDateTime,
    pub state: PunchState,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub approval: Approval,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// A leave to record (pending until decided).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewLeave {
    pub employee_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub kind: String,
    pub paid: bool,
    pub requested_by: String,
}

/// A stored leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveRecord {
    pub id: i64,
    pub leave: NewLeave,
    pub approval: Approval,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

type ManualRow =
    (i64, String, NaiveDateTime, i16, String, String, DateTime<Utc>, String, Option<String>, Option<DateTime<Utc>>);
type LeaveRow =
    (i64, String, NaiveDate, NaiveDate, String, bool, String, String, Option<String>, Option<DateTime<Utc>>);

impl Store {
    async fn require_employee(&self, employee_id: &str) -> Result<(), StoreError> {
        if self.employee_profile(employee_id).await?.is_none() {
            return Err(StoreError::NotFound { what: "employee", id: employee_id.to_owned() });
        }
        Ok(())
    }

    /// Records a pending manual log and marks the days it may belong to (see [`days_a_punch_may_belong_to`]). Returns
    /// its id.
    ///
    /// A manual log is keyed by (employee, local time, state). Asking again for one that was rejected makes it pending
    /// again with the new reason (same id); asking for one that is pending or approved is refused.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown employee, [`StoreError::Invalid`] for an empty reason,
    /// [`StoreError::AlreadyExists`] when the same log is already pending or approved.
    pub async fn request_manual_log(&self, log: &NewManualLog) -> Result<i64, StoreError> {
        if log.reason.trim().is_empty() {
            return Err(StoreError::Invalid("a manual log needs a reason".into()));
        }
        self.require_employee(&log.employee_id).await?;
        let mut tx = self.begin().await?;
        let inserted: Option<(i64,)> = on_tx!(&mut tx, |conn| {
            sqlx::query_as(
            "INSERT INTO manual_logs (employee_id, local_time, state, reason, requested_by, requested_at, approval) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending') \
             ON CONFLICT (employee_id, local_time, state) DO UPDATE SET reason = excluded.reason, \
               requested_by = excluded.requested_by, requested_at = excluded.requested_at, approval = 'pending', \
               decided_by = NULL, decided_at = NULL \
             WHERE manual_logs.approval = 'rejected' \
             RETURNING id"
        )
        .bind(&log.employee_id)
        .bind(log.local_time)
        .bind(i16::from(log.state.code()))
        .bind(&log.reason)
        .bind(&log.requested_by)
        .bind(Utc::now())
        .fetch_optional(&mut *conn)
        .await?
        });
        let Some((id,)) = inserted else {
            return Err(StoreError::AlreadyExists {
                what: "manual log",
                id: format!("{} at {} ({})", log.employee_id, log.local_time, log.state.name()),
            });
        };
        let ids = [log.employee_id.clone()];
        let (first, last) = days_a_punch_may_belong_to(log.local_time);
        mark_days(&mut tx, &Scope::Employees(&ids), first, last).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Approves or rejects a pending manual log and marks its days.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Invalid`] when it was already decided.
    pub async fn decide_manual_log(&self, id: i64, approve: bool, by: &str) -> Result<(), StoreError> {
        let approval = if approve { Approval::Approved } else { Approval::Rejected };
        let mut tx = self.begin().await?;
        let row: Option<(String, NaiveDateTime, String)> = on_tx!(&mut tx, |conn| sqlx::query_as(
            "SELECT employee_id, local_time, approval FROM manual_logs WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?);
        let Some((employee, at, current)) = row else {
            return Err(StoreError::NotFound { what: "manual log", id: id.to_string() });
        };
        record_decision(&mut tx, RequestKind::ManualLog, id, &current, approval, by).await?;
        let ids = [employee];
        let (first, last) = days_a_punch_may_belong_to(at);
        mark_days(&mut tx, &Scope::Employees(&ids), first, last).await?;
        tx.commit().await
    }

    /// An employee's manual logs with `from <= local_time < to`, by time.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Invalid`] for a stored value no code writes.
    pub async fn manual_logs(
        &self,
        employee_id: &str,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Vec<ManualLogRecord>, StoreError> {
        let rows: Vec<ManualRow> = on_reader!(self, |pool| sqlx::query_as(
            "SELECT id, employee_id, local_time, state, reason, requested_by, requested_at, approval, decided_by, \
             decided_at FROM manual_logs WHERE employee_id = $1 AND local_time >= $2 AND local_time < $3 \
             ORDER BY local_time, id"
        )
        .bind(employee_id)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(id, employee_id, local_time, state, reason, requested_by, requested_at, approval, by, at)| {
                Ok(ManualLogRecord {
                    id,
                    employee_id,
                    local_time,
                    state: PunchState::from_code(u8::try_from(state).unwrap_or(u8::MAX)),
                    reason,
                    requested_by,
                    requested_at,
                    approval: parse_approval(&approval)?,
                    decided_by: by,
                    decided_at: at,
                })
            })
            .collect()
    }

    /// Records a pending leave. Pending leave changes no row, so nothing is marked yet. Returns its id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown employee, [`StoreError::Invalid`] for a backwards range.
    pub async fn request_leave(&self, leave: &NewLeave) -> Result<i64, StoreError> {
        if leave.to < leave.from {
            return Err(StoreError::Invalid(format!(
                "leave from {} to {} ends before it starts",
                leave.from, leave.to
            )));
        }
        if (leave.to - leave.from).num_days() >= super::MAX_MARK_DAYS {
            return Err(StoreError::Invalid(format!("leave from {} to {} is too long", leave.from, leave.to)));
        }
        self.require_employee(&leave.employee_id).await?;
        let (id,): (i64,) = crate::store::on_pool!(self, |pool| {
            sqlx::query_as(
            "INSERT INTO leaves (employee_id, from_date, to_date, kind, paid, approval, requested_by, requested_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) RETURNING id"
        )
        .bind(&leave.employee_id)
        .bind(leave.from)
        .bind(leave.to)
        .bind(&leave.kind)
        .bind(leave.paid)
        .bind(&leave.requested_by)
        .bind(Utc::now())
        .fetch_one(pool)
        .await
        })?;
        Ok(id)
    }

    /// Approves or rejects a pending leave and marks its days.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Invalid`] when it was already decided.
    pub async fn decide_leave(&self, id: i64, approve: bool, by: &str) -> Result<(), StoreError> {
        let approval = if approve { Approval::Approved } else { Approval::Rejected };
        let mut tx = self.begin().await?;
        let row: Option<(String, NaiveDate, NaiveDate, String)> = on_tx!(&mut tx, |conn| sqlx::query_as(
            "SELECT employee_id, from_date, to_date, approval FROM leaves WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?);
        let Some((employee, from, to, current)) = row else {
            return Err(StoreError::NotFound { what: "leave", id: id.to_string() });
        };
        record_decision(&mut tx, RequestKind::Leave, id, &current, approval, by).await?;
        let ids = [employee];
        mark_days(&mut tx, &Scope::Employees(&ids), from, to).await?;
        tx.commit().await
    }

    /// An employee's leave, by start date.
    ///
    /// # Errors
    /// [`StoreError::Database`], [`StoreError::Invalid`] for a stored value no code writes.
    pub async fn leaves(&self, employee_id: &str) -> Result<Vec<LeaveRecord>, StoreError> {
        let rows: Vec<LeaveRow> = on_reader!(self, |pool| {
            sqlx::query_as(
            "SELECT id, employee_id, from_date, to_date, kind, paid, approval, requested_by, decided_by, decided_at \
             FROM leaves WHERE employee_id = $1 ORDER BY from_date, id"
        )
        .bind(employee_id)
        .fetch_all(pool)
        .await
        })?;
        rows.into_iter()
            .map(|(id, employee_id, from, to, kind, paid, approval, requested_by, decided_by, decided_at)| {
                Ok(LeaveRecord {
                    id,
                    leave: NewLeave { employee_id, from, to, kind, paid, requested_by },
                    approval: parse_approval(&approval)?,
                    decided_by,
                    decided_at,
                })
            })
            .collect()
    }
}

/// Which request table a decision is for.
#[derive(Debug, Clone, Copy)]
enum RequestKind {
    ManualLog,
    Leave,
}

/// Records the decision on a pending request inside `tx`; a request already decided is refused.
async fn record_decision(
    tx: &mut crate::store::Tx,
    kind: RequestKind,
    id: i64,
    current: &str,
    approval: Approval,
    by: &str,
) -> Result<(), StoreError> {
    let (what, update) = match kind {
        RequestKind::ManualLog => {
            ("manual log", "UPDATE manual_logs SET approval = $2, decided_by = $3, decided_at = $4 WHERE id = $1")
        }
        RequestKind::Leave => {
            ("leave", "UPDATE leaves SET approval = $2, decided_by = $3, decided_at = $4 WHERE id = $1")
        }
    };
    if current != "pending" {
        return Err(StoreError::Invalid(format!("{what} {id} was already {current}")));
    }
    on_tx!(tx, |conn| sqlx::query(update)
        .bind(id)
        .bind(approval_name(approval))
        .bind(by)
        .bind(Utc::now())
        .execute(&mut *conn)
        .await?
        .rows_affected());
    Ok(())
}

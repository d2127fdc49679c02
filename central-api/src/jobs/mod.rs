//! Tracked jobs: long runs started from the API or the dashboard (reprocess a range, close the day, apply or
//! revert the sandwich rule; backup and restore plug in the same way), stored in the `jobs` table and run by
//! whichever replica claims them.
//!
//! - [`JobKind`] names what a job does; [`kinds`] is the table from a kind to its check and its run function
//!   ([`kinds::RunFn`]). A new kind is one enum variant plus one arm in [`JobKind::runner`] and [`JobKind::check`].
//! - [`Progress`] is what a run reports through (done of total) and how it learns it should stop (cancelled by an
//!   administrator, the job taken over, or the service stopping).
//! - [`runner`] is the loop `serve` runs on every replica: claim a job (one replica per job, see
//!   [`crate::store::jobs`]), run it with a heartbeat that stores the progress and reads cancel requests, record the
//!   end. A job whose replica died is claimed again once its heartbeat is older than the lease, and finishes once:
//!   only the latest attempt may record its end. The work of every kind is idempotent, so a second attempt redoes
//!   what the first may have half done, harmlessly.
//!
//! Status flow: pending -> running (progress done/total) -> done (with counts) | failed (with the error) |
//! cancelled.

pub mod kinds;
pub mod progress;
pub mod runner;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use kinds::{JobKind, RunFn, RunOutcome};
pub use progress::Progress;

/// What a job works on. Each kind reads the fields it needs ([`JobKind::check`] says which).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobParams {
    /// First day (reprocess, sandwich).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    /// Last day, included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
    /// Only this site (absent: every site, root only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Only this employee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee: Option<String>,
    /// close_day: act as if it were this instant (RFC 3339); now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<DateTime<Utc>>,
    /// backup and restore: the file and settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<crate::backup::jobs::BackupJob>,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [Self; 5] = [Self::Pending, Self::Running, Self::Done, Self::Failed, Self::Cancelled];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the job ended.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// How far a run got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobProgress {
    pub done: i64,
    pub total: i64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobRecord {
    pub id: i64,
    /// `reprocess`, `close_day`, `apply_sandwich`, `revert_sandwich`, ...
    pub kind: String,
    pub status: JobStatus,
    pub params: JobParams,
    /// The site the job is about (absent: every site).
    pub site_id: Option<String>,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The replica that runs (or ran) it.
    pub replica: Option<String>,
    /// How many times a replica claimed it (more than 1: a replica died while running it).
    pub attempt: i64,
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub progress: JobProgress,
    pub cancel_requested: bool,
    /// Done: what the run did (counts).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Failed: why.
    pub error: Option<String>,
}

/// The `[jobs]` configuration table: the tracked-job runner inside `serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Run tracked jobs on this replica.
    pub runner: bool,
    /// How often an idle runner looks for a job.
    pub poll_interval_ms: u64,
    /// A running job whose heartbeat is older than this is taken over by another replica; heartbeats are sent
    /// every third of it.
    pub lease_secs: u64,
    /// After this many attempts (replicas that died running it) a job is failed instead of claimed again.
    pub max_attempts: u32,
    /// This replica's name in the jobs it claims; the host name, process id and a random suffix when absent.
    pub replica_id: Option<String>,
    /// Employees per transaction in attendance jobs (progress moves by this many).
    pub chunk_employees: usize,
    /// A pause between two transactions of an attendance job, in milliseconds: a throttle so that a long reprocess
    /// leaves the database to ingest during working hours (0, the default, runs flat out).
    pub pause_between_chunks_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            runner: true,
            poll_interval_ms: 1000,
            lease_secs: 30,
            max_attempts: 3,
            replica_id: None,
            chunk_employees: crate::attendance::jobs::bulk::CHUNK,
            pause_between_chunks_ms: 0,
        }
    }
}

impl JobsConfig {
    /// This replica's name.
    pub fn replica(&self) -> String {
        self.replica_id.clone().unwrap_or_else(|| {
            let host = gethostname::gethostname().to_string_lossy().into_owned();
            format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
        })
    }

    /// Checks the values.
    ///
    /// # Errors
    /// A message naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.poll_interval_ms == 0 || self.lease_secs < 3 || self.max_attempts == 0 || self.chunk_employees == 0 {
            return Err("jobs.poll_interval_ms, jobs.max_attempts and jobs.chunk_employees must be at least 1, \
                        jobs.lease_secs at least 3"
                .into());
        }
        Ok(())
    }
}

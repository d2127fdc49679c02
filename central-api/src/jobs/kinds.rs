//! The kinds of tracked job and the table from a kind to its parameter check and its run function.
//!
//! Adding a kind (backup, restore, ...): a [`JobKind`] variant with its name in [`JobKind::as_str`], its required
//! parameters in [`JobKind::check`], whether a site admin may start it in [`JobKind::root_only`], and its run function
//! in [`JobKind::runner`]. A run function gets the store, the parameters and a [`Progress`]; it reports steps done of
//! total, returns [`RunOutcome::Stopped`] when told to stop between steps, and must be idempotent (a job whose
//! replica died is run again from the start by another one).

use std::future::Future;
use std::pin::Pin;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{JobParams, Progress};
use crate::attendance::engine;
use crate::attendance::jobs::bulk::{self, Control, Target};
use crate::attendance::jobs::{JobError, Outcome};
use crate::http::api::updates::FieldError;
use crate::store::Store;

/// What a tracked job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Recompute `from..=to` from the punches (everyone, a site or an employee).
    Reprocess,
    /// Finalise the days whose check-out window closed since the last run and mark absentees (every site or one).
    CloseDay,
    /// Recompute `from..=to` with the sandwich rule as each site's setting says.
    ApplySandwich,
    /// Recompute `from..=to` and restore the original status of every sandwiched day.
    RevertSandwich,
    /// Write a backup file (root only; see [`crate::backup::jobs`]).
    Backup,
    /// Validate, preview or restore a backup file (root only).
    Restore,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Finished; what it did (counts), shown as the job's result.
    Done(serde_json::Value),
    /// Could not finish; the message is the job's error.
    Failed(String),
    /// Told to stop ([`Progress::should_stop`]) and stopped between two steps.
    Stopped,
}

/// What a run function returns.
pub type RunFuture = Pin<Box<dyn Future<Output = RunOutcome> + Send + 'static>>;
/// A kind's run function: the store, the job's parameters and the progress to report through.
pub type RunFn = fn(Store, JobParams, Progress, RunSettings) -> RunFuture;

/// Settings of the replica that runs the job.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Employees per transaction in attendance jobs.
    pub chunk_employees: usize,
    /// The pause between two transactions of an attendance job.
    pub pause_between_chunks: std::time::Duration,
    /// The replica's whole configuration (data directory, database, ...), for kinds that need it.
    pub config: std::sync::Arc<crate::config::Config>,
}

impl JobKind {
    pub const ALL: [Self; 6] =
        [Self::Reprocess, Self::CloseDay, Self::ApplySandwich, Self::RevertSandwich, Self::Backup, Self::Restore];

    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reprocess => "reprocess",
            Self::CloseDay => "close_day",
            Self::ApplySandwich => "apply_sandwich",
            Self::RevertSandwich => "revert_sandwich",
            Self::Backup => "backup",
            Self::Restore => "restore",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// A short description for people (the jobs page).
    pub fn label(self) -> &'static str {
        match self {
            Self::Reprocess => "Reprocess a date range",
            Self::CloseDay => "Close the day (mark absentees)",
            Self::ApplySandwich => "Apply the sandwich rule",
            Self::RevertSandwich => "Revert the sandwich rule",
            Self::Backup => "Back up",
            Self::Restore => "Restore a backup",
        }
    }

    /// Whether only root may start it whatever its site (jobs over the whole installation).
    pub fn root_only(self) -> bool {
        self.file_based()
    }

    /// Whether it works on a backup file (started from the backup pages, not the jobs form).
    pub fn file_based(self) -> bool {
        matches!(self, Self::Backup | Self::Restore)
    }

    /// Checks the parameters this kind needs.
    ///
    /// # Errors
    /// The first parameter missing or wrong, named.
    pub fn check(self, params: &JobParams) -> Result<(), FieldError> {
        if params.site.is_some() && params.employee.is_some() {
            return Err(FieldError::new("employee", "give a site or an employee, not both"));
        }
        match self {
            Self::Backup | Self::Restore => {
                return crate::backup::jobs::check(params, self == Self::Restore)
                    .map_err(|(field, message)| FieldError::new(field, message));
            }
            _ if params.backup.is_some() => {
                return Err(FieldError::new(
                    "backup",
                    format!("is only for backup and restore, not {}", self.as_str()),
                ));
            }
            Self::Reprocess | Self::ApplySandwich | Self::RevertSandwich => {
                let from = params.from.ok_or_else(|| FieldError::new("from", "is required (YYYY-MM-DD)"))?;
                let to = params.to.ok_or_else(|| FieldError::new("to", "is required (YYYY-MM-DD)"))?;
                if to < from {
                    return Err(FieldError::new("to", format!("{to} is before from {from}")));
                }
                let max = i64::try_from(engine::MAX_RANGE_DAYS).unwrap_or(i64::MAX);
                if (to - from).num_days() >= max {
                    return Err(FieldError::new("to", format!("the range {from} to {to} is longer than {max} days")));
                }
                if params.now.is_some() {
                    return Err(FieldError::new("now", format!("is only for close_day, not {}", self.as_str())));
                }
            }
            Self::CloseDay => {
                if params.employee.is_some() {
                    return Err(FieldError::new("employee", "close_day works on a site or every site"));
                }
                if params.from.is_some() || params.to.is_some() {
                    return Err(FieldError::new(
                        "from",
                        "close_day takes no range; it closes what closed since its last run",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The run function of this kind.
    pub fn runner(self) -> RunFn {
        match self {
            Self::Reprocess => |store, params, progress, settings| {
                Box::pin(range_job(store, params, control(progress, settings), None))
            },
            Self::ApplySandwich => |store, params, progress, settings| {
                Box::pin(range_job(store, params, control(progress, settings), None))
            },
            Self::RevertSandwich => |store, params, progress, settings| {
                Box::pin(range_job(store, params, control(progress, settings), Some(engine::revert_sandwich)))
            },
            Self::CloseDay => {
                |store, params, progress, settings| Box::pin(close_day_job(store, params, control(progress, settings)))
            }
            Self::Backup => crate::backup::jobs::run_backup,
            Self::Restore => crate::backup::jobs::run_restore,
        }
    }
}

fn control(progress: Progress, settings: RunSettings) -> Control {
    Control { chunk: settings.chunk_employees, pause: settings.pause_between_chunks, progress }
}

fn target(params: &JobParams) -> Target {
    match (&params.site, &params.employee) {
        (Some(site), _) => Target::Site(site.clone()),
        (None, Some(employee)) => Target::Employee(employee.clone()),
        (None, None) => Target::All,
    }
}

fn outcome(result: Result<Outcome, JobError>) -> RunOutcome {
    match result {
        Ok(o) => RunOutcome::Done(serde_json::json!({
            "employees": o.employees,
            "days": o.days,
            "punches": o.punches,
        })),
        Err(JobError::Stopped) => RunOutcome::Stopped,
        Err(e) => RunOutcome::Failed(e.to_string()),
    }
}

async fn range_job(
    store: Store,
    params: JobParams,
    ctl: Control,
    finish: Option<crate::attendance::jobs::Finish>,
) -> RunOutcome {
    let (Some(from), Some(to)) = (params.from, params.to) else {
        return RunOutcome::Failed("from and to are required".into());
    };
    outcome(bulk::reprocess_with(&store, &target(&params), from, to, Utc::now(), finish, &ctl).await)
}

async fn close_day_job(store: Store, params: JobParams, ctl: Control) -> RunOutcome {
    let at = params.now.unwrap_or_else(Utc::now);
    outcome(bulk::close_day_with(&store, params.site.as_deref(), at, &ctl).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn names_round_trip_and_checks_name_the_field() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::from_name(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).unwrap_or_default();
            assert_eq!(json, kind.as_str());
        }
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d);
        let range = JobParams { from: day(1), to: day(30), ..JobParams::default() };
        assert_eq!(JobKind::Reprocess.check(&range), Ok(()));
        let field = |kind: JobKind, p: &JobParams| kind.check(p).map_err(|e| e.field);
        assert_eq!(field(JobKind::Reprocess, &JobParams::default()), Err("from"));
        assert_eq!(field(JobKind::ApplySandwich, &JobParams { to: None, ..range.clone() }), Err("to"));
        assert_eq!(field(JobKind::Reprocess, &JobParams { from: day(30), to: day(1), ..range.clone() }), Err("to"));
        let both = JobParams { site: Some("A".into()), employee: Some("1".into()), ..range.clone() };
        assert_eq!(field(JobKind::Reprocess, &both), Err("employee"));
        assert_eq!(JobKind::CloseDay.check(&JobParams::default()), Ok(()));
        assert_eq!(field(JobKind::CloseDay, &range), Err("from"));
    }
}

//! Backup and restore as tracked jobs (kinds `backup` and `restore`, root only): the parameters a job carries and
//! its run functions. The job's file lives in the server's backups directory ([`super::files`]); a restore job
//! validates, previews or restores as its mode says and stores the summary as the job's result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::format::BackupType;
use super::restore::{Mode, RestoreOptions, Strategy};
use super::{files, BackupError, BackupOptions};
use crate::audit::Actor;
use crate::jobs::kinds::{RunFuture, RunOutcome, RunSettings};
use crate::jobs::{JobParams, Progress};
use crate::store::Store;

/// The parameters of a backup or restore job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupJob {
    /// The file in the backups directory (written by a backup, read by a restore).
    pub file: String,
    /// Backup: full or incremental.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub backup_type: Option<BackupType>,
    /// Backup (incremental): changed at or after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Restore: validate, preview or restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Restore: backup_wins, database_wins or manual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Restore: keep attendance and ManDays rows as they are (mark nothing).
    #[serde(default)]
    pub keep_computed: bool,
    /// The administrator who started it (set by the server), for the audit log.
    pub by: String,
    /// Their address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl BackupJob {
    fn actor(&self) -> Actor {
        Actor { username: self.by.clone(), role: "root".to_owned(), address: self.address.clone() }
    }
}

/// Checks a backup job's parameters.
///
/// # Errors
/// The field that is wrong and why.
pub fn check(params: &JobParams, restore: bool) -> Result<(), (&'static str, String)> {
    let Some(job) = &params.backup else {
        return Err(("backup", "backup and restore jobs are started from /api/v1/backups and /api/v1/restores".into()));
    };
    if params.from.is_some() || params.to.is_some() || params.site.is_some() || params.employee.is_some() {
        return Err(("site", "backup and restore cover every site; they take no range, site or employee".into()));
    }
    files::check_name(&job.file).map_err(|m| ("file", m))?;
    if restore {
        if job.mode.is_none() {
            return Err(("mode", "is required (validate, preview or restore)".into()));
        }
        if job.strategy.is_none() {
            return Err(("strategy", "is required (backup_wins, database_wins or manual)".into()));
        }
    } else {
        match (job.backup_type, job.since) {
            (None, _) => return Err(("type", "is required (full or incremental)".into())),
            (Some(BackupType::Incremental), None) => {
                return Err(("since", "an incremental backup needs a date".into()))
            }
            (Some(BackupType::Full), Some(_)) => return Err(("since", "a full backup takes no date".into())),
            _ => {}
        }
    }
    Ok(())
}

fn stopped_or_failed(e: &BackupError) -> RunOutcome {
    match e {
        BackupError::Stopped => RunOutcome::Stopped,
        other => RunOutcome::Failed(other.to_string()),
    }
}

/// The `backup` kind's run function.
pub fn run_backup(store: Store, params: JobParams, progress: Progress, settings: RunSettings) -> RunFuture {
    Box::pin(async move {
        let Some(job) = params.backup else { return RunOutcome::Failed("backup parameters are missing".into()) };
        let path = match files::path_of(&settings.config.data_dir, &job.file) {
            Ok(p) => p,
            Err(m) => return RunOutcome::Failed(m),
        };
        if let Err(e) = std::fs::create_dir_all(files::dir(&settings.config.data_dir)) {
            return RunOutcome::Failed(format!("creating the backups directory: {e}"));
        }
        let options = BackupOptions {
            backup_type: job.backup_type.unwrap_or(BackupType::Full),
            since: job.since,
            created_by: job.by.clone(),
        };
        match super::backup_audited(&store, &path, &options, &progress, &job.actor()).await {
            Ok(summary) => RunOutcome::Done(serde_json::to_value(summary).unwrap_or_default()),
            Err(e) => stopped_or_failed(&e),
        }
    })
}

/// The `restore` kind's run function.
pub fn run_restore(store: Store, params: JobParams, progress: Progress, settings: RunSettings) -> RunFuture {
    Box::pin(async move {
        let Some(job) = params.backup else { return RunOutcome::Failed("restore parameters are missing".into()) };
        let path = match files::path_of(&settings.config.data_dir, &job.file) {
            Ok(p) => p,
            Err(m) => return RunOutcome::Failed(m),
        };
        if !path.is_file() {
            return RunOutcome::Failed(format!("backup {:?} does not exist", job.file));
        }
        let mut options = RestoreOptions::new(
            job.mode.unwrap_or(Mode::Validate),
            job.strategy.unwrap_or(Strategy::Manual),
            job.actor(),
        );
        options.keep_computed = job.keep_computed;
        match super::restore::run(&store, &path, &options, &progress).await {
            Ok(summary) if summary.mode == Mode::Restore && !summary.applied => {
                let mut lines = summary.problem_lines();
                lines.truncate(20);
                RunOutcome::Failed(format!("the file is not valid; nothing was restored: {}", lines.join("; ")))
            }
            Ok(summary) => RunOutcome::Done(serde_json::to_value(summary).unwrap_or_default()),
            Err(e) => stopped_or_failed(&e),
        }
    })
}

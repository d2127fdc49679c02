//! `central-api backup` and `central-api restore`: the command-line side of [`crate::backup`], audited as `cli`,
//! with a progress line on a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::audit::Actor;
use crate::backup::{self, BackupOptions, BackupType, Mode, RestoreOptions, RestoreSummary, Strategy};
use crate::jobs::Progress;
use crate::store::Store;

/// `central-api backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// full, or incremental (records added or changed since --since).
    #[arg(long = "type", default_value = "full", value_parser = BackupType::parse)]
    pub backup_type: BackupType,
    /// Incremental: a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 instant.
    #[arg(long, value_parser = backup::parse_since)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// The file to write; gzip-compressed when its name ends in .gz.
    #[arg(long)]
    pub output: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `central-api restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file (plain or gzip).
    #[arg(long)]
    pub input: PathBuf,
    /// backup_wins, database_wins or manual: what happens to a record whose key exists with other data.
    #[arg(long, value_parser = Strategy::parse, required_unless_present = "validate")]
    pub strategy: Option<Strategy>,
    /// Show what would be added, updated, skipped and in conflict; write nothing.
    #[arg(long, conflicts_with = "validate")]
    pub preview: bool,
    /// Only check the file (structure, version, checksums, references); write nothing.
    #[arg(long)]
    pub validate: bool,
    /// Restore attendance and ManDays rows as they are instead of marking the affected days for recomputation.
    #[arg(long)]
    pub keep_computed: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// For tests: fail after this many records were written (nothing is committed).
    #[arg(long, hide = true)]
    pub fail_after: Option<u64>,
}

/// Prints `label: done / total records` on stderr every 200 ms while `progress` runs, when stderr is a terminal.
fn progress_line(label: &'static str, progress: &Progress) -> Option<tokio::task::JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let progress = progress.clone();
    Some(tokio::spawn(async move {
        loop {
            let p = progress.snapshot();
            let percent = if p.total > 0 { p.done * 100 / p.total } else { 0 };
            eprint!("\r{label}: {} / {} records ({percent}%)   ", p.done, p.total);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }))
}

fn end_line(handle: Option<tokio::task::JoinHandle<()>>) {
    if let Some(h) = handle {
        h.abort();
        eprintln!();
    }
}

/// Writes a backup.
///
/// # Errors
/// When the backup fails (no file is left behind).
pub async fn backup(store: &Store, args: &BackupArgs) -> anyhow::Result<()> {
    if args.backup_type == BackupType::Incremental && args.since.is_none() {
        bail!("--since is required for an incremental backup");
    }
    if args.backup_type == BackupType::Full && args.since.is_some() {
        bail!("--since is only for --type incremental");
    }
    let options = BackupOptions { backup_type: args.backup_type, since: args.since, created_by: "cli".to_owned() };
    let progress = Progress::new();
    let line = progress_line("backup", &progress);
    let result = backup::backup_audited(store, &args.output, &options, &progress, &Actor::cli()).await;
    end_line(line);
    let summary = result.with_context(|| format!("backing up to {}", args.output.display()))?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "{} backup written to {}: {} records, {} bytes in {} ms",
            summary.backup_type.as_str(),
            args.output.display(),
            summary.records,
            summary.bytes,
            summary.duration_ms
        );
        for (kind, n) in &summary.counts {
            println!("  {kind}: {n}");
        }
    }
    Ok(())
}

/// Validates, previews or restores a backup.
///
/// # Errors
/// When the file is not valid (its problems listed), cannot be read, or the restore fails (nothing is written).
pub async fn restore(store: &Store, args: &RestoreArgs) -> anyhow::Result<()> {
    let mode = match (args.validate, args.preview) {
        (true, _) => Mode::Validate,
        (false, true) => Mode::Preview,
        (false, false) => Mode::Restore,
    };
    let mut options = RestoreOptions::new(mode, args.strategy.unwrap_or(Strategy::Manual), Actor::cli());
    options.keep_computed = args.keep_computed;
    options.fail_after = args.fail_after;
    let progress = Progress::new();
    let line = progress_line(mode.as_str(), &progress);
    let result = backup::restore::run(store, &args.input, &options, &progress).await;
    end_line(line);
    let summary =
        result.with_context(|| format!("{} of {} failed; nothing was written", mode.as_str(), args.input.display()))?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    if !summary.valid {
        bail!(
            "{} is not a valid backup ({} problems); nothing was written:\n{}",
            args.input.display(),
            summary.problems_total,
            summary.problem_lines().join("\n")
        );
    }
    Ok(())
}

fn print_summary(s: &RestoreSummary) {
    if let Some(m) = &s.metadata {
        println!(
            "{}: {} backup made {} by {} from {}, {} records",
            s.file,
            m.backup_type.as_str(),
            m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            m.created_by,
            m.source_database,
            s.records
        );
    }
    if !s.valid {
        return;
    }
    match s.mode {
        Mode::Validate => println!("valid: structure, version, checksums and references are correct"),
        Mode::Preview | Mode::Restore => {
            let (add, update) = if s.mode == Mode::Preview { ("to add", "to update") } else { ("added", "updated") };
            println!("strategy {}:", s.strategy.as_str());
            for (kind, c) in &s.counts {
                println!(
                    "  {kind}: {add} {}, {update} {}, skipped {}, conflicts {}",
                    c.added, c.updated, c.skipped, c.conflicts
                );
            }
            let t = &s.totals;
            println!(
                "total: {add} {}, {update} {}, skipped {} (identical), conflicts {}",
                t.added, t.updated, t.skipped, t.conflicts
            );
            for c in &s.conflicts {
                println!("  conflict: {} {} (record {})", c.kind, c.key, c.record);
            }
            if s.mode == Mode::Restore {
                println!("attendance: {}", s.attendance);
            }
        }
    }
}

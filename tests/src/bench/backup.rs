//! `bench backup --records N --backend sqlite|postgres`: a full backup of N records and a merge restore into a
//! database holding half of them, through the real binary, with the peak RSS of each command.
//!
//! The database is filled untimed with 2 sites, 1,000 employees and N - 1,002 punches (the ingest path, batches of
//! 5,000). Then, timed: `central-api backup --type full` to a `.json.gz` file. The database is copied (SQLite: the
//! file; PostgreSQL: `CREATE DATABASE ... TEMPLATE`) and every other punch deleted from the copy, untimed; then
//! `central-api restore --strategy backup_wins --keep-computed` of the backup into the copy is timed (half the
//! punches added, the rest skipped as identical). Each command's own peak RSS and CPU time come from `wait4`; the
//! load average is printed beside every figure (the machine may be busy). The last line holds every figure.
//!
//! Options: `--records N` (default 1000000), `--backend sqlite|postgres` (default sqlite).

use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{Duration, NaiveDate};
use protocol::PunchState;

use super::Bench;
use crate::attendance::{ingest, punch, setup_site, store_of};
use crate::central::{Backend, CentralDb};

/// The bench's entry in [`super::ALL`].
pub const BENCH: Bench = Bench {
    name: "backup",
    about: "full backup of N records and a merge restore into a database holding half (--records, --backend)",
    run,
};

fn run(args: &[String]) -> anyhow::Result<()> {
    let mut backend = Backend::Sqlite;
    let mut records = 1_000_000usize;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--backend" => backend = value.parse().map_err(anyhow::Error::msg)?,
            "--records" => records = value.parse().with_context(|| format!("--records {value:?}"))?,
            other => bail!("unknown option {other:?} (expected --records or --backend)"),
        }
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(backend, records))
}

/// What one `central-api` command cost: wall time, CPU time and its own peak RSS (`wait4`'s `ru_maxrss`).
struct Measured {
    secs: f64,
    cpu_secs: f64,
    peak_rss_mib: f64,
    stdout: String,
}

/// The load average (1, 5 and 15 minutes) as `/proc/loadavg` prints it.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs `central-api <args>` to the end (no time limit) and measures it.
fn cli(env: &[(String, String)], args: &[&str]) -> anyhow::Result<Measured> {
    let mut command = std::process::Command::new(crate::harness::binary("central-api")?);
    command.args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let started = Instant::now();
    let mut child = command.spawn().context("starting central-api")?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let pid = libc::pid_t::try_from(child.id()).context("pid")?;
    let mut status = 0;
    // SAFETY: wait4 only writes the status and the struct it is given; the child is ours and not yet reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = started.elapsed().as_secs_f64();
    if reaped != pid {
        bail!("waiting for central-api: {}", std::io::Error::last_os_error());
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("central-api {args:?} failed ({status}): {stderr}");
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measured {
        secs,
        cpu_secs: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        stdout,
    })
}

async fn bench(backend: Backend, records: usize) -> anyhow::Result<()> {
    let employees = 1000usize;
    let punches = records.saturating_sub(employees + 2);
    let db = CentralDb::new(backend).await;
    let store = store_of(&db, 4).await?;
    let started = Instant::now();
    setup_site(&store, "A").await?;
    setup_site(&store, "B").await?;
    for e in 0..employees {
        store
            .add_employee(
                &format!("{}", 10_000 + e),
                &format!("Employee {e}"),
                Some(if e % 2 == 0 { "A" } else { "B" }),
            )
            .await?;
    }
    let first = NaiveDate::from_ymd_opt(2024, 1, 1).context("day")?;
    let mut batch = Vec::with_capacity(5000);
    let mut seq = 1u64;
    for i in 0..punches {
        let e = i % employees;
        let day = first + Duration::days((i / (employees * 4)) as i64);
        let minute = (i / employees) % 4;
        let when = day.and_hms_opt(8 + 3 * minute as u32, (e % 60) as u32, 0).context("time")?;
        let site = if e % 2 == 0 { "A" } else { "B" };
        batch.push((site, punch(site, &format!("{}", 10_000 + e), when, PunchState::CheckIn)));
        if batch.len() == 5000 || i + 1 == punches {
            for site in ["A", "B"] {
                let part: Vec<_> = batch.iter().filter(|(s, _)| *s == site).map(|(_, p)| p.clone()).collect();
                let n = part.len() as u64;
                ingest(&store, site, seq, part).await?;
                seq += n;
            }
            batch.clear();
        }
    }
    store.close().await;
    println!(
        "backend {backend:?}: {records} records ({punches} punches, {employees} employees) stored in {:.1} s (untimed)",
        started.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("bench.json.gz");
    let file_arg = file.display().to_string();
    let env = db.env();
    let load_before = load();
    let backup = tokio::task::block_in_place(|| cli(&env, &["backup", "--type", "full", "--output", &file_arg]))?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "full backup: {records} records in {:.2} s ({:.0} records/s, {:.2} CPU s), {:.1} MiB gzip, peak RSS {:.0} MiB; \
         load {load_before} before, {} after",
        backup.secs,
        records as f64 / backup.secs,
        backup.cpu_secs,
        size as f64 / 1048576.0,
        backup.peak_rss_mib,
        load()
    );

    // A copy holding half of the punches.
    let half = CentralDb::new(backend).await;
    match backend {
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await?;
            let target = half.url.trim_start_matches("sqlite://").to_owned();
            sqlx::query(&format!("VACUUM INTO '{target}'")).execute(&mut conn).await?;
        }
        Backend::Postgres => {
            // Replace the fresh database with a copy of the full one.
            let admin = crate::services::postgres_admin_url();
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
            let name = half.url.rsplit('/').next().unwrap_or_default().to_owned();
            let source = db.url.rsplit('/').next().unwrap_or_default().to_owned();
            sqlx::query(&format!("DROP DATABASE \"{name}\"")).execute(&mut conn).await?;
            sqlx::query(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{source}\"")).execute(&mut conn).await?;
        }
    }
    let deleted = half.scalar("SELECT count(*) FROM all_logs WHERE id % 2 = 0").await?;
    match backend {
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&half.url).await?;
            sqlx::query("DELETE FROM all_logs WHERE id % 2 = 0").execute(&mut conn).await?;
        }
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&half.url).await?;
            sqlx::query("DELETE FROM all_logs WHERE id % 2 = 0").execute(&mut conn).await?;
            sqlx::query("VACUUM ANALYZE all_logs").execute(&mut conn).await?;
        }
    }
    let env = half.env();
    let load_before = load();
    let restore = tokio::task::block_in_place(|| {
        cli(&env, &["restore", "--input", &file_arg, "--strategy", "backup_wins", "--keep-computed", "--json"])
    })?;
    let summary: serde_json::Value = serde_json::from_str(&restore.stdout).context("the restore's JSON summary")?;
    let total = |what: &str| summary["totals"][what].as_u64().unwrap_or(0);
    println!(
        "merge restore into a database holding half: {records} records in {:.2} s ({:.0} records/s, {:.2} CPU s), \
         added {}, updated {}, skipped {}, conflicts {} ({deleted} punches were missing), peak RSS {:.0} MiB; \
         load {load_before} before, {} after",
        restore.secs,
        records as f64 / restore.secs,
        restore.cpu_secs,
        total("added"),
        total("updated"),
        total("skipped"),
        total("conflicts"),
        restore.peak_rss_mib,
        load()
    );
    println!(
        "figures: records={records} backend={backend:?} backup_s={:.2} restore_merge_s={:.2} added={} updated={} \
         skipped={} backup_peak_rss_mib={:.0} restore_peak_rss_mib={:.0} load=\"{}\"",
        backup.secs,
        restore.secs,
        total("added"),
        total("updated"),
        total("skipped"),
        backup.peak_rss_mib,
        restore.peak_rss_mib,
        load()
    );
    if total("added") != u64::try_from(deleted).unwrap_or(0) {
        bail!("the restore added {} records, {deleted} punches were missing", total("added"));
    }
    let restored = half.all_logs().await;
    if restored != db.all_logs().await {
        bail!("the restore left {restored} punches, the source has {}", db.all_logs().await);
    }
    half.cleanup().await;
    db.cleanup().await;
    Ok(())
}

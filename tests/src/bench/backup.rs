//! `bench backup --records N --backend sqlite|postgres`: a full backup of N records and a merge restore into a
//! database holding half of them, through the real binary, with the peak RSS of each command.
//!
//! The database is filled untimed with 2 sites, 1,000 employees and N - 1,002 punches (the ingest path, batches of
//! 5,000). Then, timed: `central-api backup --type full` to a `.json.gz` file. The database is copied (SQLite: the
//! file; PostgreSQL: `CREATE DATABASE ... TEMPLATE`) and every other punch deleted from the copy, untimed; then
//! `central-api restore --strategy backup_wins --keep-computed` of the backup into the copy is timed (half the
//! punches added, the rest skipped as identical). Peak RSS is the child's `ru_maxrss`.
//!
//! Options: `--records N` (default 1000000), `--backend sqlite|postgres` (default sqlite).

use std::time::Instant;

use anyhow::{bail, Context};
use chrono::{Duration, NaiveDate};
use protocol::PunchState;

use super::Bench;
use crate::attendance::{ingest, punch, setup_site, store_of};
use crate::central::{run_cli, Backend, CentralDb};

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

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

async fn cli(env: &[(String, String)], args: &[&str]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = run_cli(args, env, None).await?;
    if !out.status.success() {
        bail!("central-api {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(started.elapsed().as_secs_f64())
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
    let secs = cli(&env, &["backup", "--type", "full", "--output", &file_arg]).await?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "full backup: {records} records in {secs:.2} s ({:.0} records/s), {:.1} MiB gzip, peak RSS {:.0} MiB",
        records as f64 / secs,
        size as f64 / 1048576.0,
        peak_rss_mib()
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
    let secs =
        cli(&env, &["restore", "--input", &file_arg, "--strategy", "backup_wins", "--keep-computed", "--json"]).await?;
    println!(
        "merge restore into a database holding half: {records} records ({deleted} added, the rest skipped) in \
         {secs:.2} s ({:.0} records/s), peak RSS (largest command so far) {:.0} MiB",
        records as f64 / secs,
        peak_rss_mib()
    );
    let restored = half.all_logs().await;
    if restored != db.all_logs().await {
        bail!("the restore left {restored} punches, the source has {}", db.all_logs().await);
    }
    half.cleanup().await;
    db.cleanup().await;
    Ok(())
}

//! `bench attendance --backend sqlite|postgres`: the job layer on a month of a large factory.
//!
//! The same generated world as `bench engine` (10,000 employees x 31 days of December 2026, ~1.5 M punches) is
//! stored in a fresh database: sites with their holidays and sandwich settings, shifts, week-off rules, employees,
//! then the punches through the ingest path (which marks their days dirty). Untimed. Then the whole month is
//! processed through the job layer (`reprocess`: load, engine, write, release the dirty rows, in transactions of
//! 500 employees) and timed, with the time split into loading, engine and writing. The engine alone on the same
//! in-memory inputs is printed beside it. Finally the worker drains what the month's edges left marked.
//!
//! Options: `--backend sqlite|postgres` (default sqlite), `--employees N` (default 10000), `--seed S` (default 7).

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context};
use central_api::attendance::engine::{compute_range, EmployeeContext};
use central_api::attendance::jobs::bulk::{reprocess, Target};
use central_api::attendance::jobs::worker;
use central_api::store::attendance::format_week_off;
use central_api::store::rows::BatchRows;
use central_api::store::Store;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use protocol::{Punch, PunchBatch, SequencedPunch, VerifyMode};

use super::engine::World;
use super::Bench;
use crate::attendance::store_of;
use crate::central::{Backend, CentralDb};

/// The bench's entry in [`super::ALL`].
pub const BENCH: Bench = Bench {
    name: "attendance",
    about: "job layer: 10,000 employees x 31 days stored, then fully processed (--backend sqlite|postgres)",
    run,
};

const BATCH: usize = 5_000;

fn run(args: &[String]) -> anyhow::Result<()> {
    let mut backend = Backend::Sqlite;
    let mut employees = 10_000usize;
    let mut seed = 7u64;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--backend" => backend = value.parse().map_err(anyhow::Error::msg)?,
            "--employees" => employees = value.parse().with_context(|| format!("--employees {value:?}"))?,
            "--seed" => seed = value.parse().with_context(|| format!("--seed {value:?}"))?,
            other => bail!("unknown option {other:?} (expected --backend, --employees or --seed)"),
        }
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(backend, employees, seed))
}

async fn bench(backend: Backend, employees: usize, seed: u64) -> anyhow::Result<()> {
    let first = NaiveDate::from_ymd_opt(2026, 12, 1).context("first day")?;
    let last = NaiveDate::from_ymd_opt(2026, 12, 31).context("last day")?;
    let now_local = NaiveDateTime::new(NaiveDate::from_ymd_opt(2027, 1, 3).context("now")?, NaiveTime::MIN);
    // Kolkata is UTC+05:30: this instant is 2027-01-03 00:00 at every site, as in `bench engine`.
    let at = Utc.from_utc_datetime(&(now_local - chrono::Duration::minutes(330)));

    let world = World::generate(employees, seed, first)?;
    let generated: usize = world.punches.iter().map(Vec::len).sum();
    println!("backend {backend:?}: {employees} employees, {generated} punches generated");

    // The engine alone on the in-memory world (what `bench engine` measures).
    let started = Instant::now();
    let mut rows = 0usize;
    for (employee, punches) in world.employees.iter().zip(&world.punches) {
        let shift = world.shifts.iter().find(|s| s.code == employee.shift).context("shift")?;
        let site = world.sites.iter().find(|s| s.site() == &employee.site).context("site")?;
        let ctx = EmployeeContext::new(employee, shift, site, &[])?;
        rows += compute_range(&ctx, punches, first, last, now_local)?.len();
    }
    let engine_alone = started.elapsed().as_secs_f64();
    println!("engine alone (in memory): {rows} employee-days in {engine_alone:.3} s");

    let db = CentralDb::new(backend).await;
    let result = run_on(&db, &world, first, last, at, rows).await;
    db.cleanup().await;
    result
}

async fn run_on(
    db: &CentralDb,
    world: &World,
    first: NaiveDate,
    last: NaiveDate,
    at: chrono::DateTime<Utc>,
    expected_rows: usize,
) -> anyhow::Result<()> {
    let store = store_of(db, 8).await?;
    let started = Instant::now();
    setup(&store, world, first, last).await?;
    println!("set up sites, shifts, holidays, week-offs and employees in {:.2} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    let mut stored = 0u64;
    let mut seq = 1u64;
    let mut pending: Vec<Punch> = Vec::with_capacity(BATCH);
    for (employee, punches) in world.employees.iter().zip(&world.punches) {
        for p in punches {
            let serial = match &p.origin {
                central_api::attendance::engine::PunchOrigin::Device { serial, .. } => serial.clone(),
                central_api::attendance::engine::PunchOrigin::Manual { .. } => continue,
            };
            pending.push(Punch::from_device(
                employee.site.clone(),
                serial,
                p.employee_id.clone(),
                p.local_time,
                chrono_tz::Asia::Kolkata,
                p.state,
                VerifyMode::Fingerprint,
                0,
                p.source(),
                p.direction,
            ));
            if pending.len() == BATCH {
                stored += store_batch(&store, &mut pending, &mut seq).await?;
            }
        }
    }
    stored += store_batch(&store, &mut pending, &mut seq).await?;
    let marked = store.dirty_days().await?;
    println!(
        "stored {stored} punches through the ingest path in {:.2} s ({marked} employee-days marked; not timed below)",
        started.elapsed().as_secs_f64()
    );

    println!("load average before the month: {}", super::ingest_peer::load_average());
    let started = Instant::now();
    let outcome = reprocess(&store, &Target::All, first, last, at, None).await?;
    let total = started.elapsed().as_secs_f64();
    println!(
        "job layer, full month: {} employee-days of {} employees from {} punches in {total:.2} s (target: under 3 s)",
        outcome.days, outcome.employees, outcome.punches
    );
    let accounted =
        [outcome.load_time, outcome.engine_time, outcome.write_time, outcome.queue_time, outcome.commit_time]
            .iter()
            .map(std::time::Duration::as_secs_f64)
            .sum::<f64>();
    println!(
        "  loading {:.2} s, engine {:.2} s (target: under 3 s), writing {:.2} s, dirty queue (locks, dirty rows) \
         {:.2} s, commits {:.2} s, other {:.2} s (summed over transactions; {} wrote rows computed ahead beside the \
         one before)",
        outcome.load_time.as_secs_f64(),
        outcome.engine_time.as_secs_f64(),
        outcome.write_time.as_secs_f64(),
        outcome.queue_time.as_secs_f64(),
        outcome.commit_time.as_secs_f64(),
        total - accounted,
        outcome.computed_ahead
    );
    if outcome.days != expected_rows {
        bail!("the job layer wrote {} rows, the engine alone computed {expected_rows}", outcome.days);
    }

    let left = store.dirty_days().await?;
    let started = Instant::now();
    let round = worker::drain(&store, 500).await?;
    println!(
        "worker: {left} days still marked after the month (its edges: Nov 30, Jan 1) drained in {:.2} s \
         ({} days written)",
        started.elapsed().as_secs_f64(),
        round.outcome.days
    );
    let month = store.attendance(None, first, last).await?;
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for row in &month {
        *statuses.entry(row.status.clone().unwrap_or_else(|| "-".into())).or_default() += 1;
    }
    let summary: Vec<String> = statuses.iter().map(|(code, n)| format!("{code} {n}")).collect();
    println!("  stored statuses: {}", summary.join(", "));
    let (checksum, attendance_rows, man_days_rows) = stored_checksum(&store).await?;
    println!(
        "  stored rows checksum: {checksum} ({attendance_rows} attendance rows, {man_days_rows} man_days rows; \
         everything but computed_at); load average: {}",
        super::ingest_peer::load_average()
    );
    store.close().await;
    Ok(())
}

/// SHA-256 (first 16 hex digits) of every stored attendance and ManDays row (as read back, by employee and date),
/// and their counts: unchanged when a change to the job layer stores the same results.
async fn stored_checksum(store: &Store) -> anyhow::Result<(String, usize, usize)> {
    use sha2::{Digest, Sha256};
    let from = NaiveDate::from_ymd_opt(2000, 1, 1).context("from")?;
    let to = NaiveDate::from_ymd_opt(2100, 12, 31).context("to")?;
    let attendance = store.attendance(None, from, to).await?;
    let man_days = store.man_days(None, from, to).await?;
    let mut hash = Sha256::new();
    for row in &attendance {
        hash.update(serde_json::to_vec(row)?);
        hash.update(b"\n");
    }
    for row in &man_days {
        hash.update(serde_json::to_vec(row)?);
        hash.update(b"\n");
    }
    let hex: String = hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok((hex, attendance.len(), man_days.len()))
}

async fn store_batch(store: &Store, pending: &mut Vec<Punch>, seq: &mut u64) -> anyhow::Result<u64> {
    if pending.is_empty() {
        return Ok(0);
    }
    let items: Vec<SequencedPunch> =
        pending.drain(..).enumerate().map(|(i, punch)| SequencedPunch { seq: *seq + i as u64, punch }).collect();
    *seq += items.len() as u64;
    let batch = PunchBatch::new("bench-agent".parse()?, "plant-0".parse()?, Utc::now(), items);
    let rows = BatchRows::from_batch(&batch)?;
    Ok(u64::from(store.insert_batch(rows).await?.new))
}

/// Stores the world's configuration: sites, holidays, shifts, week-off rules, employees (bulk, one transaction).
async fn setup(store: &Store, world: &World, first: NaiveDate, last: NaiveDate) -> anyhow::Result<()> {
    for site in &world.sites {
        let id = site.site().as_str();
        store.create_site(id, id, "Asia/Kolkata").await?;
        store.set_site_sandwich(id, site.settings().sandwich, first).await?;
        for day in first.iter_days().take_while(|d| *d <= last) {
            if let Some(h) = site.holiday(day) {
                let mut holiday = h.clone();
                holiday.site = Some(site.site().clone());
                store.add_holiday(&holiday).await?;
            }
        }
    }
    for shift in &world.shifts {
        store.create_shift(&shift.code, shift).await?;
    }
    let mut rules: BTreeMap<String, String> = BTreeMap::new();
    for employee in &world.employees {
        let spec = format_week_off(&employee.week_off);
        let next = format!("W{}", rules.len());
        rules.entry(spec).or_insert(next);
    }
    for (spec, code) in &rules {
        let rule = central_api::store::attendance::parse_week_off(spec)?;
        store.create_week_off_rule(code, spec, &rule).await?;
    }
    let rows: Vec<(String, String, String, String, String)> = world
        .employees
        .iter()
        .map(|e| {
            let rule = rules.get(&format_week_off(&e.week_off)).cloned().unwrap_or_default();
            (e.employee_id.to_string(), e.name.clone(), e.site.to_string(), e.shift.clone(), rule)
        })
        .collect();
    let sql = "INSERT INTO employees (employee_id, name, site_id, active, created_at, department, designation, \
               shift_code, week_off_rule) VALUES ($1, $2, $3, $4, $5, 'Production', 'Operator', $6, $7)";
    match store {
        Store::Sqlite(s) => {
            let mut tx = s.writer.begin().await?;
            for (id, name, site, shift, rule) in &rows {
                sqlx::query(sql)
                    .bind(id)
                    .bind(name)
                    .bind(site)
                    .bind(true)
                    .bind(Utc::now())
                    .bind(shift)
                    .bind(rule)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        Store::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            for (id, name, site, shift, rule) in &rows {
                sqlx::query(sql)
                    .bind(id)
                    .bind(name)
                    .bind(site)
                    .bind(true)
                    .bind(Utc::now())
                    .bind(shift)
                    .bind(rule)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

//! The job layer's consistency properties against a real database: recomputing incrementally (the worker, after
//! each batch of punches and each holiday change) leaves exactly the rows a full reprocess writes, on both
//! backends; on PostgreSQL several workers draining the queue at once, while punches keep arriving, never release
//! the same mark twice and end with the right rows; and on SQLite a bulk job's chunks computed ahead write what one
//! transaction would, and are computed again when punches arrive meanwhile.

use std::collections::HashSet;

use central_api::attendance::engine::{Holiday, HolidayKind, SandwichSetting, Shift};
use central_api::attendance::jobs::bulk::{reprocess, reprocess_with, Control, Target};
use central_api::attendance::jobs::worker;
use central_api::store::attendance::dirty::DirtyDay;
use central_api::store::Store;
use chrono::{Duration, NaiveDate, NaiveTime, Utc};
use proptest::prelude::*;
use protocol::{Punch, PunchState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use system_tests::attendance::{add_employee, date, ingest, punch, setup_site, snapshot, store_of};
use system_tests::central::{Backend, CentralDb};

const SITE: &str = "plant-1";

fn first() -> NaiveDate {
    date(3, 1)
}
fn last() -> NaiveDate {
    date(3, 10)
}

/// Random punches over the range for `employees`: a few per day at random times, sometimes none, sometimes taps.
fn random_punches(rng: &mut StdRng, employees: &[String]) -> Vec<Punch> {
    let mut out = Vec::new();
    for id in employees {
        for day in first().iter_days().take_while(|d| *d <= last()) {
            let n = rng.random_range(0..5);
            for _ in 0..n {
                let at = day.and_hms_opt(0, 0, 0).unwrap_or_default() + Duration::seconds(rng.random_range(0..86_400));
                let state = if rng.random_bool(0.5) { PunchState::CheckIn } else { PunchState::CheckOut };
                out.push(punch(SITE, id, at, state));
            }
        }
    }
    out
}

/// A shift that starts at midnight: its check-in (before midnight) belongs to the next date.
const MIDNIGHT: &str = "MID";

async fn setup(store: &Store, employees: usize, sandwich: SandwichSetting) -> Vec<String> {
    setup_site(store, SITE).await.unwrap();
    store.set_site_sandwich(SITE, sandwich, Utc::now().date_naive()).await.unwrap();
    if !store.shifts().await.unwrap().iter().any(|s| s.shift.code == MIDNIGHT) {
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        store.create_shift("Midnight", &Shift::new(MIDNIGHT, hm(0, 0), hm(8, 0))).await.unwrap();
    }
    let shifts = ["GEN", "NIGHT", "MD", MIDNIGHT];
    let mut ids = Vec::new();
    for n in 0..employees {
        let id = format!("{}", 5000 + n);
        add_employee(store, &id, SITE, shifts[n % shifts.len()]).await.unwrap();
        ids.push(id);
    }
    ids
}

async fn incremental_equals_full(backend: Backend, seed: u64, sandwich: SandwichSetting) {
    let db = CentralDb::new(backend).await;
    let store = store_of(&db, 2).await.unwrap();
    let ids = setup(&store, 4, sandwich).await;
    let mut rng = StdRng::seed_from_u64(seed);
    // Rows for every day first (no punches yet: absences and week-offs), as close-day would leave them.
    reprocess(&store, &Target::All, first(), last(), Utc::now(), None).await.unwrap();

    let mut punches = random_punches(&mut rng, &ids);
    // Shuffle so batches arrive out of order, as late data does.
    for i in (1..punches.len()).rev() {
        punches.swap(i, rng.random_range(0..=i));
    }
    let batches = rng.random_range(1..5);
    let size = punches.len().div_ceil(batches).max(1);
    let mut seq = 1;
    for (n, chunk) in punches.chunks(size).enumerate() {
        ingest(&store, SITE, seq, chunk.to_vec()).await.unwrap();
        seq += chunk.len() as u64;
        if n == 0 {
            let day = first() + Duration::days(rng.random_range(0..10));
            let holiday = Holiday { date: day, name: "Random".into(), kind: HolidayKind::Public, site: None };
            store.add_holiday(&holiday).await.unwrap();
        }
        worker::drain(&store, 7).await.unwrap();
    }
    let incremental = snapshot(&store, first(), last()).await.unwrap();
    assert_eq!(incremental.len(), 40, "every employee-day has a row");
    reprocess(&store, &Target::All, first(), last(), Utc::now(), None).await.unwrap();
    let full = snapshot(&store, first(), last()).await.unwrap();
    for (a, b) in incremental.iter().zip(&full) {
        assert_eq!(a, b, "seed {seed}, {sandwich:?}: incremental row differs from the full reprocess");
    }
    store.close().await;
    db.cleanup().await;
}

fn run_property(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let settings = [SandwichSetting::Off, SandwichSetting::WeekOffs, SandwichSetting::WeekOffsAndHolidays];
    proptest!(ProptestConfig { cases: 4, failure_persistence: None, ..ProptestConfig::default() },
        |(seed in any::<u64>(), setting in 0usize..3)| {
            runtime.block_on(incremental_equals_full(backend, seed, settings[setting]));
        }
    );
}

#[test]
fn incremental_equals_full_reprocess_sqlite() {
    run_property(Backend::Sqlite);
}

#[test]
fn incremental_equals_full_reprocess_postgres() {
    run_property(Backend::Postgres);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_on_postgres_never_release_a_mark_twice() {
    let db = CentralDb::new(Backend::Postgres).await;
    let store = store_of(&db, 4).await.unwrap();
    let ids = setup(&store, 60, SandwichSetting::WeekOffs).await;
    let mut rng = StdRng::seed_from_u64(11);
    let punches = random_punches(&mut rng, &ids);
    let (early, late) = punches.split_at(punches.len() / 2);
    reprocess(&store, &Target::All, first() - Duration::days(1), last(), Utc::now(), None).await.unwrap();
    ingest(&store, SITE, 1, early.to_vec()).await.unwrap();
    let marked_before = store.dirty_days().await.unwrap();
    assert!(marked_before > 300, "only {marked_before} marked days");

    // Three "replicas", each with its own pool, drain while the second half of the punches arrives.
    let mut workers = Vec::new();
    for _ in 0..3 {
        let store = store_of(&db, 2).await.unwrap();
        workers.push(tokio::spawn(async move {
            let mut released: Vec<DirtyDay> = Vec::new();
            let mut idle = 0;
            while idle < 10 {
                let round = worker::process_once(&store, 40, Utc::now()).await.expect("worker round");
                if round.claimed == 0 {
                    idle += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                } else {
                    idle = 0;
                }
                released.extend(round.released);
            }
            store.close().await;
            released
        }));
    }
    let mut seq = early.len() as u64 + 1;
    for chunk in late.chunks(200) {
        ingest(&store, SITE, seq, chunk.to_vec()).await.unwrap();
        seq += chunk.len() as u64;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut all = Vec::new();
    let mut per_worker = Vec::new();
    for w in workers {
        let released = w.await.unwrap();
        per_worker.push(released.len());
        all.extend(released);
    }
    let unique: HashSet<(String, NaiveDate, i64)> =
        all.iter().map(|d| (d.employee_id.clone(), d.work_date, d.marks)).collect();
    assert_eq!(unique.len(), all.len(), "a mark was released twice");
    assert!(per_worker.iter().filter(|n| **n > 0).count() >= 2, "only one worker did anything: {per_worker:?}");
    // Whatever the workers did not finish (marks made after they went idle), one more drain handles.
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(store.dirty_days().await.unwrap(), 0);
    let concurrent = snapshot(&store, first() - Duration::days(1), last()).await.unwrap();
    reprocess(&store, &Target::All, first() - Duration::days(1), last(), Utc::now(), None).await.unwrap();
    let full = snapshot(&store, first() - Duration::days(1), last()).await.unwrap();
    assert_eq!(concurrent.len(), full.len());
    for (a, b) in concurrent.iter().zip(&full) {
        assert_eq!(a, b, "rows written by concurrent workers differ from a full reprocess");
    }
    println!("released per worker: {per_worker:?}");
    store.close().await;
    db.cleanup().await;
}

/// Employees' rows over the range, with no punches, then punches for all of them, as the SQLite ahead tests start.
async fn sqlite_with_punches(employees: usize, seed: u64) -> (CentralDb, Store, Vec<String>, u64) {
    let db = CentralDb::new(Backend::Sqlite).await;
    let store = store_of(&db, 4).await.unwrap();
    let ids = setup(&store, employees, SandwichSetting::WeekOffs).await;
    // The setup's own marks (today's days) go first: the punches' are then the only ones.
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(store.dirty_days().await.unwrap(), 0);
    let mut rng = StdRng::seed_from_u64(seed);
    let punches = random_punches(&mut rng, &ids);
    let seq = punches.len() as u64 + 1;
    ingest(&store, SITE, 1, punches).await.unwrap();
    (db, store, ids, seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_chunks_computed_ahead_write_what_one_transaction_writes() {
    let (db, store, ids, _) = sqlite_with_punches(30, 5).await;
    // A day either side: the night shift's punches of the first morning mark the day before.
    let (from, to) = (first() - Duration::days(1), last() + Duration::days(1));
    let ctl = Control { chunk: 4, ..Control::default() };
    let outcome = reprocess_with(&store, &Target::All, from, to, Utc::now(), None, &ctl).await.unwrap();
    let chunks = ids.len().div_ceil(4);
    assert_eq!(outcome.employees, ids.len());
    assert_eq!(outcome.days, ids.len() * 12);
    assert_eq!(outcome.computed_ahead, chunks - 1, "with nothing else writing, every chunk after the first is ahead");
    assert_eq!(store.dirty_days().await.unwrap(), 0, "the range's marks are released");
    let ahead = snapshot(&store, from, to).await.unwrap();

    let whole = Control { chunk: ids.len(), ..Control::default() };
    let outcome = reprocess_with(&store, &Target::All, from, to, Utc::now(), None, &whole).await.unwrap();
    assert_eq!(outcome.computed_ahead, 0);
    let one = snapshot(&store, from, to).await.unwrap();
    assert_eq!(ahead.len(), ids.len() * 12);
    assert_eq!(ahead, one, "rows computed ahead differ from one transaction's");
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn punches_arriving_during_a_sqlite_bulk_job_are_not_lost_to_rows_computed_ahead() {
    let (db, store, ids, mut seq) = sqlite_with_punches(40, 9).await;
    let mut rng = StdRng::seed_from_u64(10);
    let mut late = random_punches(&mut rng, &ids);
    // Shuffled, so that the batches arriving meanwhile touch employees of every chunk, those not yet written too.
    for i in (1..late.len()).rev() {
        late.swap(i, rng.random_range(0..=i));
    }
    let ctl = Control { chunk: 2, ..Control::default() };
    let chunks = ids.len().div_ceil(2);
    let job = {
        let store = store.clone();
        tokio::spawn(async move {
            reprocess_with(&store, &Target::All, first(), last(), Utc::now(), None, &ctl).await.expect("job")
        })
    };
    // Small batches, one after the other, until the job ends: each commits between two of its chunks.
    let mut batches = late.chunks(3);
    let mut during = 0;
    while !job.is_finished() {
        let Some(batch) = batches.next() else { break };
        ingest(&store, SITE, seq, batch.to_vec()).await.unwrap();
        seq += batch.len() as u64;
        during += 1;
    }
    let outcome = job.await.unwrap();
    // (The rest are not sent: they would mark again, and so mend, days whose marks a stale chunk had dropped.)
    println!("{during} batches while the job ran; {} of {chunks} chunks written ahead", outcome.computed_ahead);
    assert!(during >= 3, "only {during} batches arrived while the job ran");
    assert!(outcome.computed_ahead < chunks - 1, "no chunk computed ahead was found stale while punches arrived");
    // What the job's chunks did not see stays marked for the worker.
    worker::drain(&store, 50).await.unwrap();
    assert_eq!(store.dirty_days().await.unwrap(), 0);
    let incremental = snapshot(&store, first(), last()).await.unwrap();
    reprocess(&store, &Target::All, first(), last(), Utc::now(), None).await.unwrap();
    let full = snapshot(&store, first(), last()).await.unwrap();
    assert_eq!(incremental.len(), ids.len() * 10);
    for (a, b) in incremental.iter().zip(&full) {
        assert_eq!(a, b, "a row written during ingest differs from a full reprocess");
    }
    store.close().await;
    db.cleanup().await;
}

/// The marks of `employee` on `day` in the dirty queue, read on a connection of its own.
async fn marks_of(db: &CentralDb, employee: &str, day: NaiveDate) -> i64 {
    let sql = format!("SELECT count(*) FROM attendance_dirty WHERE employee_id = '{employee}' AND work_date = '{day}'");
    db.scalar(&sql).await.unwrap()
}

/// SQLite's ingest writer remembers the dirty rows it committed and does not write them again while nothing else
/// has written. A day whose mark was consumed meanwhile, by the attendance worker in this process or by another
/// process, must be marked again by its next punch, and computed again with it.
async fn a_day_consumed_and_punched_again_is_marked_again(backend: Backend) {
    let db = CentralDb::new(backend).await;
    let store = store_of(&db, 4).await.unwrap();
    let ids = setup(&store, 1, SandwichSetting::Off).await;
    let id = ids[0].as_str();
    worker::drain(&store, 100).await.unwrap();
    let day = date(3, 3);
    let at = |h: u32, m: u32| day.and_hms_opt(h, m, 0).unwrap_or_default();
    let out_time = || async {
        let rows = store.attendance(Some(id), day, day).await.unwrap();
        rows.first().and_then(|r| r.out_time)
    };

    let skipped = || match &store {
        Store::Sqlite(s) => s.group_commit.stats().marks_skipped(),
        Store::Postgres(_) => 0,
    };
    ingest(&store, SITE, 1, vec![punch(SITE, id, at(9, 0), PunchState::CheckIn)]).await.unwrap();
    ingest(&store, SITE, 2, vec![punch(SITE, id, at(17, 0), PunchState::CheckOut)]).await.unwrap();
    assert_eq!(marks_of(&db, id, day).await, 1);
    if backend == Backend::Sqlite {
        assert_eq!(skipped(), 2, "the second punch's day and the day before were marked by the first, unconsumed");
    }
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(marks_of(&db, id, day).await, 0, "the worker consumed the day");
    assert_eq!(out_time().await, Some(at(17, 0)));

    // Consumed by the worker (through this process's writer): the next punch marks the day again.
    ingest(&store, SITE, 3, vec![punch(SITE, id, at(17, 30), PunchState::CheckOut)]).await.unwrap();
    assert_eq!(marks_of(&db, id, day).await, 1, "a punch after the worker's round marks its day again");
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(out_time().await, Some(at(17, 30)), "the day is computed again with its new punch");

    // Marked, then consumed by another process (its own connection): the next punch marks the day again.
    ingest(&store, SITE, 4, vec![punch(SITE, id, at(17, 40), PunchState::CheckOut)]).await.unwrap();
    assert_eq!(marks_of(&db, id, day).await, 1);
    match backend {
        Backend::Sqlite => {
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
            sqlx::query("DELETE FROM attendance_dirty").execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
            sqlx::query("DELETE FROM attendance_dirty").execute(&mut conn).await.unwrap();
        }
    }
    assert_eq!(marks_of(&db, id, day).await, 0);
    ingest(&store, SITE, 5, vec![punch(SITE, id, at(17, 50), PunchState::CheckOut)]).await.unwrap();
    assert_eq!(marks_of(&db, id, day).await, 1, "a punch after another process cleared the day marks it again");
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(out_time().await, Some(at(17, 50)));
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_consumed_and_punched_again_is_marked_again_sqlite() {
    a_day_consumed_and_punched_again_is_marked_again(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_consumed_and_punched_again_is_marked_again_postgres() {
    a_day_consumed_and_punched_again_is_marked_again(Backend::Postgres).await;
}

/// A midnight shift's check-in before midnight belongs to the next date: that day shows it as soon as the worker
/// has run, not only once the check-out arrives.
async fn a_check_in_before_a_midnight_shift_updates_the_next_day(backend: Backend) {
    let db = CentralDb::new(backend).await;
    let store = store_of(&db, 4).await.unwrap();
    let ids = setup(&store, 4, SandwichSetting::Off).await;
    let id = ids[3].as_str();
    worker::drain(&store, 100).await.unwrap();
    let day = date(3, 4);
    let check_in = date(3, 3).and_hms_opt(23, 50, 0).unwrap_or_default();
    ingest(&store, SITE, 1, vec![punch(SITE, id, check_in, PunchState::CheckIn)]).await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    let row = store.attendance(Some(id), day, day).await.unwrap().into_iter().next();
    assert_eq!(row.and_then(|r| r.in_time), Some(check_in), "day {day} of a midnight shift holds its check-in");
    store.close().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_in_before_a_midnight_shift_updates_the_next_day_sqlite() {
    a_check_in_before_a_midnight_shift_updates_the_next_day(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_in_before_a_midnight_shift_updates_the_next_day_postgres() {
    a_check_in_before_a_midnight_shift_updates_the_next_day(Backend::Postgres).await;
}

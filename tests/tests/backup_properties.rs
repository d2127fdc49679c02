//! The fifteen correctness properties of backup and restore (issue 15), one proptest each, named after its
//! property, on SQLite and on PostgreSQL (`<property>::sqlite`, `<property>::postgres`). Every case builds a random
//! dataset through the store (`system_tests::backup_data`), then backs up and restores through the library.
//!
//! CI runs 8 cases per property; `PROPTEST_CASES=256 cargo nextest run -p system-tests --test backup_properties`
//! runs more by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use central_api::audit::Actor;
use central_api::backup::reader::{self, Limits, Problem, Record, Sink, Summary};
use central_api::backup::schema::{checksum, key_text, Base, Kind, Val, KINDS};
use central_api::backup::{
    backup, BackupError, BackupOptions, BackupType, Mode, RestoreOptions, RestoreSummary, Strategy as Merge,
};
use central_api::jobs::Progress;
use central_api::store::Store;
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use system_tests::attendance::store_of;
use system_tests::backup::record_lines;
use system_tests::backup_data::{build, dataset, Built, Dataset, SITES};
use system_tests::central::{Backend, CentralDb};

/// Runs `property` over `strategy` on `backend`: 8 cases unless `PROPTEST_CASES` says otherwise.
fn check<S, F, Fut>(backend: Backend, strategy: S, property: F)
where
    S: Strategy,
    S::Value: Clone + std::fmt::Debug,
    F: Fn(Backend, S::Value) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(8);
    let config = Config { cases, max_shrink_iters: 32, failure_persistence: None, ..Config::default() };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        runtime.block_on(property(backend, value)).map_err(|e| TestCaseError::fail(format!("{e:#}")))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// One property per module, with a test per backend.
macro_rules! property {
    ($name:ident, $strategy:expr) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::check(
                    system_tests::central::Backend::Sqlite,
                    {
                        use super::*;
                        $strategy
                    },
                    super::$name,
                )
            }
            #[test]
            fn postgres() {
                super::check(
                    system_tests::central::Backend::Postgres,
                    {
                        use super::*;
                        $strategy
                    },
                    super::$name,
                )
            }
        }
    };
}

/// A fresh database and store, and a directory for files.
struct Case {
    db: CentralDb,
    store: Store,
    dir: tempfile::TempDir,
}

impl Case {
    async fn new(backend: Backend) -> anyhow::Result<Self> {
        let db = CentralDb::new(backend).await;
        let store = store_of(&db, 4).await?;
        Ok(Self { db, store, dir: tempfile::tempdir()? })
    }

    /// A fresh case holding `data`.
    async fn with(backend: Backend, data: &Dataset) -> anyhow::Result<(Self, Built)> {
        let case = Self::new(backend).await?;
        let built = build(&case.store, data).await?;
        Ok((case, built))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn backup(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.file(name);
        let options = BackupOptions { backup_type: BackupType::Full, since: None, created_by: "root".into() };
        backup(&self.store, &path, &options, &Progress::new()).await?;
        Ok(path)
    }

    async fn restore(&self, path: &Path, how: How) -> Result<RestoreSummary, BackupError> {
        let mut options = RestoreOptions::new(how.mode, how.strategy, Actor::cli());
        options.keep_computed = how.keep_computed;
        options.fail_after = how.fail_after;
        central_api::backup::restore::run(&self.store, path, &options, &Progress::new()).await
    }

    async fn exec(&self, sql: &str) -> anyhow::Result<u64> {
        use sqlx::Connection;
        Ok(match self.db.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.db.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.db.url).await?;
                sqlx::query(sql).execute(&mut conn).await?.rows_affected()
            }
        })
    }

    /// Rows of every kind's table.
    async fn table_counts(&self) -> anyhow::Result<BTreeMap<&'static str, u64>> {
        let mut counts = BTreeMap::new();
        for kind in KINDS {
            let n = self.db.scalar(&format!("SELECT count(*) FROM {}", kind.def().table)).await?;
            counts.insert(kind.name(), u64::try_from(n)?);
        }
        Ok(counts)
    }

    async fn end(self) {
        self.store.close().await;
        self.db.cleanup().await;
    }
}

#[derive(Debug, Clone, Copy)]
struct How {
    mode: Mode,
    strategy: Merge,
    keep_computed: bool,
    fail_after: Option<u64>,
}

impl How {
    fn restore(strategy: Merge) -> Self {
        Self { mode: Mode::Restore, strategy, keep_computed: false, fail_after: None }
    }
}

/// Every record of a file, and the reader's summary.
#[derive(Default)]
struct Records {
    records: Vec<Record>,
    problems: Vec<Problem>,
}

impl Sink for Records {
    fn record(&mut self, record: Record) -> Result<(), String> {
        self.records.push(record);
        Ok(())
    }

    fn problem(&mut self, problem: Problem) -> Result<(), String> {
        self.problems.push(problem);
        Ok(())
    }
}

fn read(path: &Path) -> anyhow::Result<(Summary, Vec<Record>)> {
    let mut sink = Records::default();
    let summary = reader::read(reader::open(path)?, Limits::default(), &mut sink)?;
    ensure!(sink.problems.is_empty(), "problems in {}: {:?}", path.display(), sink.problems);
    Ok((summary, sink.records))
}

fn text(def: &central_api::backup::schema::KindDef, r: &Record, column: &str) -> Option<String> {
    match def.col(column).and_then(|i| r.vals.get(i)) {
        Some(Val::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

fn merge() -> impl Strategy<Value = Merge> {
    prop_oneof![Just(Merge::BackupWins), Just(Merge::DatabaseWins), Just(Merge::Manual)]
}

/// Changes made to a database after its backup: punches changed (`id % k = r`) and deleted, employees renamed,
/// leave deleted.
#[derive(Debug, Clone)]
struct Mutation {
    change: Option<(u8, u8)>,
    delete: Option<(u8, u8)>,
    rename: bool,
    drop_leave: bool,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    (option::of((2u8..5, 0u8..5)), option::of((2u8..5, 0u8..5)), any::<bool>(), any::<bool>())
        .prop_map(|(change, delete, rename, drop_leave)| Mutation { change, delete, rename, drop_leave })
}

/// What a [`Mutation`] did: rows whose key is gone, rows whose data changed.
#[derive(Debug, Default, Clone, Copy)]
struct Mutated {
    removed: u64,
    changed: u64,
}

async fn mutate(case: &Case, m: &Mutation) -> anyhow::Result<Mutated> {
    let mut done = Mutated::default();
    if let Some((k, r)) = m.change {
        case.exec(&format!("UPDATE all_logs SET work_code = work_code + 1 WHERE id % {k} = {}", r % k)).await?;
    }
    if let Some((k, r)) = m.delete {
        done.removed += case.exec(&format!("DELETE FROM all_logs WHERE id % {k} = {}", r % k)).await?;
    }
    if let Some((k, r)) = m.change {
        let n = case.db.scalar(&format!("SELECT count(*) FROM all_logs WHERE id % {k} = {}", r % k)).await?;
        done.changed += u64::try_from(n)?;
    }
    if m.rename {
        done.changed += case.exec("UPDATE employees SET name = name || ' (renamed)'").await?;
    }
    if m.drop_leave {
        done.removed += case.exec("DELETE FROM leaves").await?;
    }
    Ok(done)
}

// 1. Root sees every site's records: a full backup holds each site's employees, devices and punches.
property!(root_sees_every_sites_records, dataset(3));
async fn root_sees_every_sites_records(backend: Backend, data: Dataset) -> anyhow::Result<()> {
    let (case, built) = Case::with(backend, &data).await?;
    let (_, records) = read(&case.backup("full.json.gz").await?)?;
    let mut employees: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut punches: BTreeMap<String, BTreeSet<(String, chrono::NaiveDateTime)>> = BTreeMap::new();
    let mut devices = BTreeMap::new();
    let mut sites = BTreeSet::new();
    for r in &records {
        let def = r.kind.def();
        match r.kind {
            Kind::Site => {
                sites.insert(text(def, r, "site_id").context("site_id")?);
            }
            Kind::Employee => {
                let site = text(def, r, "site_id").context("employee site")?;
                employees.entry(site).or_default().insert(text(def, r, "employee_id").context("id")?);
            }
            Kind::Device => {
                devices.insert(text(def, r, "serial").context("serial")?, text(def, r, "site_id"));
            }
            Kind::Punch => {
                let Some(Val::Local(at)) = def.col("local_time").map(|i| r.vals[i].clone()) else { bail!("time") };
                let site = text(def, r, "site_id").context("punch site")?;
                punches.entry(site).or_default().insert((text(def, r, "pin").context("pin")?, at));
            }
            _ => {}
        }
    }
    let expected_sites: BTreeSet<String> = SITES[..data.sites.len()].iter().map(|s| (*s).to_owned()).collect();
    ensure!(sites == expected_sites, "sites {sites:?}, stored {expected_sites:?}");
    ensure!(employees == built.employees, "employees by site {employees:?}, stored {:?}", built.employees);
    let stored_punches: BTreeMap<_, _> = built.punches.iter().filter(|(_, p)| !p.is_empty()).collect();
    let found: BTreeMap<_, _> = punches.iter().collect();
    ensure!(found == stored_punches, "punches by site differ from what was stored");
    let stored_devices: BTreeMap<String, Option<String>> =
        built.devices.iter().map(|(d, s)| (d.clone(), Some(s.clone()))).collect();
    ensure!(devices == stored_devices, "devices {devices:?}, stored {stored_devices:?}");
    case.end().await;
    Ok(())
}

// 2. A full backup holds exactly what the database holds: every table's rows, and the punches that were stored.
property!(a_full_backup_holds_exactly_the_database, dataset(3));
async fn a_full_backup_holds_exactly_the_database(backend: Backend, data: Dataset) -> anyhow::Result<()> {
    let (case, built) = Case::with(backend, &data).await?;
    let (summary, records) = read(&case.backup("full.json").await?)?;
    let tables = case.table_counts().await?;
    let mut in_file: BTreeMap<&'static str, u64> = KINDS.iter().map(|k| (k.name(), 0)).collect();
    for r in &records {
        *in_file.entry(r.kind.name()).or_default() += 1;
    }
    ensure!(in_file == tables, "records per kind {in_file:?}, rows per table {tables:?}");
    ensure!(summary.records == records.len() as u64);
    ensure!(
        tables["punch"] == built.punch_count() as u64,
        "{} punches, {} stored",
        tables["punch"],
        built.punch_count()
    );
    ensure!(tables["manual_log"] == built.manual_logs as u64 && tables["leave"] == built.leaves as u64);
    ensure!(tables["holiday"] == built.holidays as u64);
    ensure!(data.compute || tables["attendance"] == 0, "attendance rows without computing");
    case.end().await;
    Ok(())
}

// 3. The metadata's counts equal the records that follow, kind by kind.
property!(metadata_counts_equal_the_data, dataset(3));
async fn metadata_counts_equal_the_data(backend: Backend, data: Dataset) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &data).await?;
    let (summary, records) = read(&case.backup("full.json.gz").await?)?;
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for r in &records {
        *counted.entry(r.kind.name().to_owned()).or_default() += 1;
    }
    let stated: BTreeMap<String, u64> =
        summary.metadata.counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| (k.clone(), *n)).collect();
    ensure!(stated == counted, "metadata {stated:?}, records {counted:?}");
    let read_counts: BTreeMap<String, u64> = summary.counts.iter().map(|(k, n)| (k.name().to_owned(), *n)).collect();
    ensure!(read_counts == counted);
    case.end().await;
    Ok(())
}

// 4. A record's checksum is stable: two backups of unchanged data are identical record by record, and the checksum
// recomputed from the values is the one written.
property!(a_records_checksum_is_stable, dataset(2));
async fn a_records_checksum_is_stable(backend: Backend, data: Dataset) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &data).await?;
    let first = record_lines(&case.backup("one.json.gz").await?)?;
    let second = record_lines(&case.backup("two.json").await?)?;
    ensure!(first == second, "two backups of the same data differ");
    let (_, records) = read(&case.file("two.json"))?;
    for r in &records {
        ensure!(checksum(r.kind.def(), &r.vals) == r.sha256, "record {} checksum recomputed differs", r.number);
    }
    case.end().await;
    Ok(())
}

// 5. Restoring identical records creates no duplicate: everything is skipped, nothing is added.
property!(restoring_identical_records_creates_no_duplicate, (dataset(3), merge(), any::<bool>()));
async fn restoring_identical_records_creates_no_duplicate(
    backend: Backend,
    (data, strategy, keep_computed): (Dataset, Merge, bool),
) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &data).await?;
    let file = case.backup("full.json.gz").await?;
    let before = case.table_counts().await?;
    let lines = record_lines(&file)?;
    for _ in 0..2 {
        let s = case.restore(&file, How { keep_computed, ..How::restore(strategy) }).await?;
        ensure!(s.applied, "not applied: {:?}", s.problems);
        ensure!(s.totals.added == 0 && s.totals.updated == 0 && s.totals.conflicts == 0, "{:?}", s.totals);
        ensure!(s.totals.skipped == s.records, "{:?} of {}", s.totals, s.records);
    }
    ensure!(case.table_counts().await? == before, "rows changed");
    ensure!(record_lines(&case.backup("after.json").await?)? == lines, "data changed");
    case.end().await;
    Ok(())
}

// 6. A new key is inserted: rows deleted after the backup come back, each counted as added.
property!(a_new_key_is_inserted, (dataset(3), mutation(), merge()));
async fn a_new_key_is_inserted(
    backend: Backend,
    (data, m, strategy): (Dataset, Mutation, Merge),
) -> anyhow::Result<()> {
    let m = Mutation { change: None, rename: false, ..m };
    let (case, _) = Case::with(backend, &data).await?;
    let file = case.backup("full.json.gz").await?;
    let before = case.table_counts().await?;
    let done = mutate(&case, &m).await?;
    let s = case.restore(&file, How::restore(strategy)).await?;
    ensure!(s.totals.added == done.removed, "added {} of {} removed", s.totals.added, done.removed);
    ensure!(s.totals.skipped == s.records - done.removed && s.totals.conflicts == 0, "{:?}", s.totals);
    ensure!(case.table_counts().await? == before, "rows differ after the restore");
    ensure!(record_lines(&case.backup("after.json").await?)? == record_lines(&file)?, "data differs");
    case.end().await;
    Ok(())
}

// 7. A changed record is updated (the backup wins): the rows read back as in the backup.
property!(a_changed_record_is_updated, (dataset(3), mutation(), any::<bool>()));
async fn a_changed_record_is_updated(
    backend: Backend,
    (data, m, keep_computed): (Dataset, Mutation, bool),
) -> anyhow::Result<()> {
    let m = Mutation { delete: None, drop_leave: false, ..m };
    let (case, _) = Case::with(backend, &data).await?;
    let file = case.backup("full.json.gz").await?;
    let before = case.table_counts().await?;
    let done = mutate(&case, &m).await?;
    let s = case.restore(&file, How { keep_computed, ..How::restore(Merge::BackupWins) }).await?;
    ensure!(s.totals.updated == done.changed && s.totals.added == 0, "{:?}, {} changed", s.totals, done.changed);
    ensure!(case.table_counts().await? == before, "rows differ after the restore");
    ensure!(record_lines(&case.backup("after.json").await?)? == record_lines(&file)?, "data differs");
    case.end().await;
    Ok(())
}

// 8. added + updated + skipped + conflicts equals the records in the file, per kind and in all, in a preview and
// in a restore, whatever the strategy.
property!(counts_add_up_to_the_records, (dataset(3), mutation(), merge(), any::<bool>()));
async fn counts_add_up_to_the_records(
    backend: Backend,
    (data, m, strategy, preview): (Dataset, Mutation, Merge, bool),
) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &data).await?;
    let file = case.backup("full.json.gz").await?;
    let done = mutate(&case, &m).await?;
    let mode = if preview { Mode::Preview } else { Mode::Restore };
    let s = case.restore(&file, How { mode, ..How::restore(strategy) }).await?;
    let (summary, _) = read(&file)?;
    ensure!(s.totals.total() == summary.records && s.records == summary.records, "{:?} of {}", s.totals, s.records);
    for (kind, n) in &summary.counts {
        let c = s.counts.get(kind.name()).copied().unwrap_or_default();
        ensure!(c.total() == *n, "{}: {c:?} of {n}", kind.name());
    }
    ensure!(s.totals.added == done.removed, "added {:?}, removed {}", s.totals, done.removed);
    let (updated, conflicts) = if strategy == Merge::BackupWins { (done.changed, 0) } else { (0, done.changed) };
    ensure!(s.totals.updated == updated && s.totals.conflicts == conflicts, "{:?}, changed {}", s.totals, done.changed);
    case.end().await;
    Ok(())
}

// 9. Records with the same key are the same record: keys are unique in a file, and a record whose key is in the
// database is merged into that row (never a second row), whatever the strategy; with the database winning, the
// row keeps the database's data.
property!(records_with_the_same_key_are_the_same_record, (dataset(3), mutation(), merge()));
async fn records_with_the_same_key_are_the_same_record(
    backend: Backend,
    (data, m, strategy): (Dataset, Mutation, Merge),
) -> anyhow::Result<()> {
    let m = Mutation { delete: None, drop_leave: false, ..m };
    let (case, _) = Case::with(backend, &data).await?;
    let file = case.backup("full.json.gz").await?;
    let (_, records) = read(&file)?;
    let mut keys = HashMap::new();
    for r in &records {
        if let Some(first) = keys.insert((r.kind, key_text(r.kind.def(), &r.vals)), r.number) {
            bail!("records {first} and {} share a key", r.number);
        }
    }
    let before = case.table_counts().await?;
    mutate(&case, &m).await?;
    let mutated = record_lines(&case.backup("mutated.json").await?)?;
    case.restore(&file, How::restore(strategy)).await?;
    ensure!(case.table_counts().await? == before, "a record made a second row");
    let after = record_lines(&case.backup("after.json").await?)?;
    let expected = if strategy == Merge::BackupWins { record_lines(&file)? } else { mutated };
    ensure!(after == expected, "the rows are not the winner's");
    case.end().await;
    Ok(())
}

/// Another value of the same column type.
fn other(v: &Val, base: Base) -> Val {
    match v {
        Val::Null => match base {
            Base::Text => Val::Text(String::new()),
            Base::Bool => Val::Bool(false),
            _ => Val::Int(0),
        },
        Val::Text(s) => Val::Text(format!("{s}x")),
        Val::Int(i) => Val::Int(i.wrapping_add(1)),
        Val::Bool(b) => Val::Bool(!b),
        Val::Date(d) => Val::Date(d.succ_opt().unwrap_or(chrono::NaiveDate::MIN)),
        Val::Time(t) => Val::Time(*t + chrono::Duration::seconds(1)),
        Val::Local(t) => Val::Local(*t + chrono::Duration::microseconds(1)),
        Val::Utc(t) => Val::Utc(*t + chrono::Duration::microseconds(1)),
        Val::Bytes(b) => Val::Bytes(b.iter().map(|x| x ^ 1).chain(b.is_empty().then_some(0)).collect()),
    }
}

// 10. Different checksums mean different data: across a backup, equal data has equal checksums and different
// data different ones; changing any one value of a record changes its checksum.
property!(
    different_checksums_mean_different_data,
    (dataset(2), any::<prop::sample::Index>(), any::<prop::sample::Index>())
);
async fn different_checksums_mean_different_data(
    backend: Backend,
    (data, which, column): (Dataset, prop::sample::Index, prop::sample::Index),
) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &data).await?;
    let (_, records) = read(&case.backup("full.json").await?)?;
    let mut by_sum: HashMap<[u8; 32], (Kind, &Vec<Val>)> = HashMap::new();
    for r in &records {
        if let Some((kind, vals)) = by_sum.insert(r.sha256, (r.kind, &r.vals)) {
            ensure!(kind == r.kind && *vals == r.vals, "record {}: one checksum for different data", r.number);
        }
    }
    ensure!(by_sum.len() == records.len(), "{} checksums for {} distinct records", by_sum.len(), records.len());
    let r = which.get(&records);
    let def = r.kind.def();
    let i = column.index(def.cols.len());
    let mut vals = r.vals.clone();
    vals[i] = other(&vals[i], def.cols[i].base);
    ensure!(checksum(def, &vals) != r.sha256, "changing {} of record {} kept its checksum", def.cols[i].name, r.number);
    case.end().await;
    Ok(())
}

// 11. Missing references are created first: in a file every referenced site, shift, week-off rule, employee and
// administrator comes before the records naming it, and a restore into an empty database adds every record.
property!(missing_references_are_created_first, dataset(3));
async fn missing_references_are_created_first(backend: Backend, data: Dataset) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &data).await?;
    let file = case.backup("full.json.gz").await?;
    let (_, records) = read(&file)?;
    let mut seen: BTreeSet<(Kind, String)> = BTreeSet::new();
    for r in &records {
        let def = r.kind.def();
        for reference in def.references {
            if let Some(id) = text(def, r, reference.column) {
                ensure!(
                    seen.contains(&(reference.target, id.clone())),
                    "record {} ({}) names {} {id} before it appears",
                    r.number,
                    r.kind.name(),
                    reference.target.name()
                );
            }
        }
        if let Some(Val::Text(id)) = r.vals.get(def.key[0]) {
            seen.insert((r.kind, id.clone()));
        }
    }
    let empty = Case::new(backend).await?;
    let s = empty.restore(&file, How::restore(Merge::Manual)).await?;
    ensure!(s.applied && s.totals.added == s.records, "{:?} of {}: {:?}", s.totals, s.records, s.problems);
    empty.end().await;
    case.end().await;
    Ok(())
}

// 12. An incremental backup holds only records changed since its date: exactly the records a full backup after
// the date holds and a full backup before it did not (new or different).
property!(an_incremental_backup_holds_only_changes_since_its_date, (dataset(2), dataset(3), any::<bool>()));
async fn an_incremental_backup_holds_only_changes_since_its_date(
    backend: Backend,
    (first, second, rename): (Dataset, Dataset, bool),
) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &first).await?;
    let (_, before) = read(&case.backup("before.json").await?)?;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // Later: the second dataset's sites that do not exist yet, with their people and punches, and renames.
    let later = Dataset { sites: second.sites[first.sites.len().min(second.sites.len())..].to_vec(), ..second };
    let offset = first.sites.len();
    build_more(&case, &later, offset).await?;
    if rename {
        case.exec("UPDATE employees SET name = name || ' (renamed)' WHERE employee_id LIKE '1%'").await?;
    }
    let (_, after) = read(&case.backup("after.json").await?)?;
    let path = case.file("incremental.json");
    let options = BackupOptions { backup_type: BackupType::Incremental, since: Some(since), created_by: "root".into() };
    backup(&case.store, &path, &options, &Progress::new()).await?;
    let (_, incremental) = read(&path)?;
    let old: BTreeSet<(Kind, [u8; 32])> = before.iter().map(|r| (r.kind, r.sha256)).collect();
    let expected: BTreeSet<(Kind, String)> = after
        .iter()
        .filter(|r| !r.kind.full_only() && !old.contains(&(r.kind, r.sha256)))
        .map(|r| (r.kind, key_text(r.kind.def(), &r.vals)))
        .collect();
    let found: BTreeSet<(Kind, String)> =
        incremental.iter().map(|r| (r.kind, key_text(r.kind.def(), &r.vals))).collect();
    ensure!(found == expected, "incremental {found:?}, changed {expected:?}");
    case.end().await;
    Ok(())
}

/// Builds `data`'s sites as sites `offset..` of an existing case, without a global holiday or computing.
async fn build_more(case: &Case, data: &Dataset, offset: usize) -> anyhow::Result<()> {
    let data = Dataset { global_holiday: None, compute: false, ..data.clone() };
    system_tests::backup_data::build_from(&case.store, &data, offset).await?;
    Ok(())
}

// 13. A failed restore changes nothing: a restore that fails after some records were written leaves every row as
// it was.
property!(a_failed_restore_changes_nothing, (dataset(3), mutation(), merge(), any::<prop::sample::Index>()));
async fn a_failed_restore_changes_nothing(
    backend: Backend,
    (data, m, strategy, at): (Dataset, Mutation, Merge, prop::sample::Index),
) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &data).await?;
    let file = case.backup("full.json.gz").await?;
    let done = mutate(&case, &m).await?;
    let writes = done.removed + if strategy == Merge::BackupWins { done.changed } else { 0 };
    if writes == 0 {
        case.end().await;
        return Ok(());
    }
    let before = record_lines(&case.backup("before.json").await?)?;
    let counts = case.table_counts().await?;
    let fail_after = at.index(writes as usize) as u64 + 1;
    match case.restore(&file, How { fail_after: Some(fail_after), ..How::restore(strategy) }).await {
        Err(BackupError::Injected(_)) => {}
        other => bail!("expected the injected failure after {fail_after} of {writes} writes, got {other:?}"),
    }
    ensure!(case.table_counts().await? == counts, "rows changed");
    ensure!(record_lines(&case.backup("after.json").await?)? == before, "data changed");
    case.end().await;
    Ok(())
}

/// A damage done to a valid file.
#[derive(Debug, Clone)]
enum Damage {
    /// Cut at this fraction (per mille) of its length.
    Truncate(u16),
    /// Replace one byte of a record line.
    Byte(prop::sample::Index, prop::sample::Index, u8),
    /// Another format version.
    Version(u8),
    /// A record of an unknown kind.
    UnknownKind(prop::sample::Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (1u16..1000).prop_map(Damage::Truncate),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0x20u8..0x7f)
            .prop_map(|(l, p, b)| Damage::Byte(l, p, b)),
        (2u8..=255).prop_map(Damage::Version),
        any::<prop::sample::Index>().prop_map(Damage::UnknownKind),
    ]
}

fn damaged(text: &str, damage: &Damage) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let records: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].starts_with("{\"kind\"")).collect();
    match damage {
        Damage::Truncate(per_mille) => {
            let mut at = text.len() * usize::from(*per_mille) / 1000;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            Some(text[..at].to_owned())
        }
        Damage::Version(v) => Some(text.replacen("\"format_version\":1,", &format!("\"format_version\":{v},"), 1)),
        Damage::Byte(line, pos, byte) => {
            let i = *records.get(line.index(records.len().max(1)))?;
            let mut bytes = lines[i].trim_end_matches(['\n', ',']).as_bytes().to_vec();
            let p = pos.index(bytes.len());
            // A byte that differs, and not only by case (hex digits read either way).
            if bytes[p].eq_ignore_ascii_case(byte) || !bytes[p].is_ascii() {
                return None;
            }
            bytes[p] = *byte;
            let mut out: Vec<u8> = Vec::new();
            for (j, l) in lines.iter().enumerate() {
                if j == i {
                    out.extend_from_slice(&bytes);
                    out.extend_from_slice(&l.as_bytes()[l.trim_end_matches(['\n', ',']).len()..]);
                } else {
                    out.extend_from_slice(l.as_bytes());
                }
            }
            String::from_utf8(out).ok()
        }
        Damage::UnknownKind(line) => {
            let i = *records.get(line.index(records.len().max(1)))?;
            let kind = lines[i].split('"').nth(3)?;
            let replaced = lines[i].replacen(&format!("{{\"kind\":\"{kind}\""), "{\"kind\":\"vacation\"", 1);
            let mut out = String::new();
            for (j, l) in lines.iter().enumerate() {
                out.push_str(if j == i { &replaced } else { l });
            }
            Some(out)
        }
    }
}

// 14. An invalid file is rejected: truncated, another version, a changed byte in a record, an unknown kind; the
// validation says where (a record or a line), and a restore writes nothing.
property!(an_invalid_file_is_rejected, (dataset(2), damage()));
async fn an_invalid_file_is_rejected(backend: Backend, (data, damage): (Dataset, Damage)) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &data).await?;
    let file = case.backup("full.json").await?;
    let text = std::fs::read_to_string(&file)?;
    let Some(bad) = damaged(&text, &damage) else {
        case.end().await;
        return Ok(());
    };
    let bad_file = case.file("bad.json");
    std::fs::write(&bad_file, &bad)?;
    case.exec("DELETE FROM all_logs WHERE id % 2 = 0").await?;
    let before = record_lines(&case.backup("before.json").await?)?;
    for mode in [Mode::Validate, Mode::Restore] {
        let s = case.restore(&bad_file, How { mode, ..How::restore(Merge::BackupWins) }).await?;
        ensure!(!s.valid && !s.applied && s.problems_total > 0, "{damage:?} accepted: {s:?}");
        for p in &s.problems {
            ensure!(p.line > 0 || p.record.is_some(), "{damage:?}: {p} says not where");
        }
        if matches!(damage, Damage::Byte(..) | Damage::UnknownKind(_)) {
            ensure!(s.problems.iter().any(|p| p.record.is_some() || p.line > 1), "{damage:?}: {:?}", s.problems);
        }
    }
    ensure!(record_lines(&case.backup("after.json").await?)? == before, "a refused file changed the database");
    case.end().await;
    Ok(())
}

/// A record without its instants (`created_at`, `computed_at`, ...): what a round trip keeps.
fn without_instants(r: &Record) -> (Kind, Vec<Val>) {
    let def = r.kind.def();
    let vals = r.vals.iter().zip(&def.cols).filter(|(_, c)| c.base != Base::Utc).map(|(v, _)| v.clone()).collect();
    (r.kind, vals)
}

// 15. Backup then restore into an empty database gives the same state, timestamps aside (on the other backend as
// well as on the same one).
property!(backup_then_restore_into_an_empty_database_gives_the_same_state, (dataset(3), any::<bool>(), any::<bool>()));
async fn backup_then_restore_into_an_empty_database_gives_the_same_state(
    backend: Backend,
    (data, keep_computed, cross): (Dataset, bool, bool),
) -> anyhow::Result<()> {
    let (case, _) = Case::with(backend, &data).await?;
    let file = case.backup("full.json.gz").await?;
    let (_, records) = read(&file)?;
    let target_backend = match (cross, backend) {
        (true, Backend::Sqlite) => Backend::Postgres,
        (true, Backend::Postgres) => Backend::Sqlite,
        (false, b) => b,
    };
    let target = Case::new(target_backend).await?;
    let s = target.restore(&file, How { keep_computed, ..How::restore(Merge::BackupWins) }).await?;
    ensure!(s.applied, "{:?}", s.problems);
    let (_, restored) = read(&target.backup("again.json.gz").await?)?;
    let a: Vec<_> = records.iter().map(without_instants).collect();
    let b: Vec<_> = restored.iter().map(without_instants).collect();
    ensure!(a == b, "the restored database differs from the backed-up one");
    ensure!(target.table_counts().await? == case.table_counts().await?, "rows per table differ");
    target.end().await;
    case.end().await;
    Ok(())
}

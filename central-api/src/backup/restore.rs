//! Restoring a backup: validate, preview, apply.
//!
//! 1. **Validate** ([`validate`]): the whole file is read once (structure, version, checksums, values, kind order,
//!    counts, duplicate keys) and the references no record of the file provides (an employee's site, a leave's
//!    employee) are looked up in the database. Every problem is listed with its record and line. Nothing is written.
//! 2. **Preview**: the file is read again and every record compared with the row of the same key in a snapshot of
//!    the database: `to_add` (no such row), `to_skip` (identical by checksum), `to_update` (different, and the
//!    strategy lets the backup win) or a conflict (different, kept). Nothing is written.
//! 3. **Restore**: as the preview, but in one transaction that inserts and updates, marks the attendance affected
//!    (unless computed rows are kept as they are), writes the audit entry and commits: all or nothing.
//!
//! Records come in [`KINDS`](super::schema::KINDS) order, so the sites, shifts and employees a record needs are
//! created before it. The reader runs on a blocking thread and hands chunks of records of one kind over a bounded
//! channel. On PostgreSQL each chunk is one lookup statement, one multi-row insert and one update per changed row; on
//! SQLite prepared single-row statements (a lookup per record, an insert per new one, an update per changed one) are
//! stepped on the connection's raw handle ([`super::sqlite`]). A record whose values equal its row's is skipped
//! without computing the row's checksum.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::db::{
    bind_pg_columns, max_rows, pg_insert_sql, pg_lookup_sql, update_sql, BindExt, Existing, Found, RowExt,
};
use super::format::Metadata;
use super::marks::Effects;
use super::reader::{self, Limits, Problem, Record, Sink};
use super::schema::{checksum, key_text, Kind, KindDef, Val};
use super::BackupError;
use crate::audit::{Actor, Entry};
use crate::jobs::Progress;
use crate::store::sqlite_raw::with_handle;
use crate::store::{Store, StoreError, Tx};

/// What happens to a record whose key exists with other data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The backup's record replaces the row.
    BackupWins,
    /// The row stays; the record is counted as a conflict.
    DatabaseWins,
    /// Nothing is applied for it; it is listed as a conflict to resolve by hand.
    Manual,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BackupWins => "backup_wins",
            Self::DatabaseWins => "database_wins",
            Self::Manual => "manual",
        }
    }

    /// Parses a strategy's name.
    ///
    /// # Errors
    /// A message naming the accepted names.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "backup_wins" => Ok(Self::BackupWins),
            "database_wins" => Ok(Self::DatabaseWins),
            "manual" => Ok(Self::Manual),
            other => Err(format!("strategy {other:?} is not backup_wins, database_wins or manual")),
        }
    }
}

/// How far a restore goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Validate,
    Preview,
    Restore,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Preview => "preview",
            Self::Restore => "restore",
        }
    }
}

/// A restore's settings.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub mode: Mode,
    pub strategy: Strategy,
    /// Restore attendance and ManDays rows as they are and mark nothing for recomputation.
    pub keep_computed: bool,
    /// Who asks, for the audit log.
    pub actor: Actor,
    pub limits: Limits,
    /// For tests: fail after this many records were written (the transaction is then rolled back).
    pub fail_after: Option<u64>,
}

impl RestoreOptions {
    /// A restore by `actor` with the default limits.
    pub fn new(mode: Mode, strategy: Strategy, actor: Actor) -> Self {
        Self { mode, strategy, keep_computed: false, actor, limits: Limits::default(), fail_after: None }
    }
}

/// Counts of one kind (or of all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    /// New keys (restore: inserted; preview: to add).
    pub added: u64,
    /// Keys whose data differed and the backup won (restore: updated; preview: to update).
    pub updated: u64,
    /// Identical by checksum.
    pub skipped: u64,
    /// Keys whose data differed and the database's row was kept (database_wins, manual).
    pub conflicts: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.added + self.updated + self.skipped + self.conflicts
    }

    fn add(&mut self, other: &Self) {
        self.added += other.added;
        self.updated += other.updated;
        self.skipped += other.skipped;
        self.conflicts += other.conflicts;
    }
}

/// A record whose key exists in the database with other data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Conflict {
    pub kind: String,
    /// The key's values (a JSON array, as text).
    pub key: String,
    /// The record's number in the file.
    pub record: u64,
    pub backup_sha256: String,
    pub database_sha256: String,
}

/// Conflicts listed in a summary (all are counted).
pub const MAX_LISTED_CONFLICTS: usize = 1000;
/// Problems listed in a summary (all are counted).
pub const MAX_LISTED_PROBLEMS: usize = 200;

/// What a validation, preview or restore found and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RestoreSummary {
    pub file: String,
    pub mode: Mode,
    pub strategy: Strategy,
    /// The file's metadata (absent when the header itself is unreadable).
    pub metadata: Option<Metadata>,
    /// Whether the file passed validation.
    pub valid: bool,
    /// The first problems (record, line, message).
    pub problems: Vec<Problem>,
    pub problems_total: u64,
    pub records: u64,
    /// Per kind (preview and restore).
    pub counts: BTreeMap<String, Counts>,
    pub totals: Counts,
    /// The first conflicts.
    pub conflicts: Vec<Conflict>,
    /// Whether the restore committed (restore mode only).
    pub applied: bool,
    pub keep_computed: bool,
    /// What happened to computed attendance, in words.
    pub attendance: String,
    /// Employee-days marked for recomputation.
    pub days_marked: u64,
    pub duration_ms: u64,
}

impl RestoreSummary {
    fn new(file: &Path, options: &RestoreOptions) -> Self {
        Self {
            file: file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            mode: options.mode,
            strategy: options.strategy,
            metadata: None,
            valid: false,
            problems: Vec::new(),
            problems_total: 0,
            records: 0,
            counts: BTreeMap::new(),
            totals: Counts::default(),
            conflicts: Vec::new(),
            applied: false,
            keep_computed: options.keep_computed,
            attendance: String::new(),
            days_marked: 0,
            duration_ms: 0,
        }
    }

    /// The problems as lines of text.
    pub fn problem_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        let more = self.problems_total.saturating_sub(self.problems.len() as u64);
        if more > 0 {
            lines.push(format!("... and {more} more"));
        }
        lines
    }
}

/// The first record that names a key no earlier record provides.
#[derive(Debug, Clone)]
struct Reference {
    record: u64,
    line: u64,
    column: &'static str,
    kind: Kind,
}

/// The validation pass's sink (it runs on the reader's thread).
struct Validator {
    progress: Progress,
    problems: Vec<Problem>,
    problems_total: u64,
    /// Fingerprints of (kind, key) seen, with the record that had it.
    keys: HashMap<u64, u64>,
    /// Keys of referenced kinds that the file provides.
    defined: HashMap<Kind, HashSet<String>>,
    /// Referenced keys the file does not provide (yet), by target kind and key.
    wanted: HashMap<(Kind, String), Reference>,
}

impl Validator {
    fn push(&mut self, p: Problem) {
        self.problems_total += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(p);
        }
    }
}

fn fingerprint(kind: Kind, key: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    kind.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

const REFERENCED: [Kind; 5] = [Kind::Site, Kind::Shift, Kind::WeekOffRule, Kind::Employee, Kind::Admin];

impl Sink for Validator {
    fn metadata(&mut self, metadata: &Metadata) -> Result<(), String> {
        self.progress.add_total(metadata.counts.values().sum());
        Ok(())
    }

    fn record(&mut self, r: Record) -> Result<(), String> {
        self.progress.advance(1);
        let def = r.kind.def();
        let key = key_text(def, &r.vals);
        if let Some(first) = self.keys.insert(fingerprint(r.kind, &key), r.number) {
            self.push(Problem {
                record: Some(r.number),
                line: r.line,
                message: format!("{} {key} appears twice (also record {first})", r.kind.name()),
            });
        }
        if REFERENCED.contains(&r.kind) {
            if let Some(Val::Text(id)) = r.vals.get(def.key[0]) {
                self.defined.entry(r.kind).or_default().insert(id.clone());
                self.wanted.remove(&(r.kind, id.clone()));
            }
        }
        for reference in def.references {
            let Some(Val::Text(id)) = def.col(reference.column).and_then(|i| r.vals.get(i)) else { continue };
            if self.defined.get(&reference.target).is_some_and(|s| s.contains(id)) {
                continue;
            }
            self.wanted.entry((reference.target, id.clone())).or_insert(Reference {
                record: r.number,
                line: r.line,
                column: reference.column,
                kind: r.kind,
            });
        }
        Ok(())
    }

    fn problem(&mut self, p: Problem) -> Result<(), String> {
        self.progress.advance(1);
        self.push(p);
        Ok(())
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs the reader over `path` on a blocking thread.
async fn read_file<S: Sink + Send + 'static>(
    path: PathBuf,
    limits: Limits,
    mut sink: S,
) -> Result<(Result<reader::Summary, Problem>, S), BackupError> {
    tokio::task::spawn_blocking(move || {
        let input = reader::open(&path)?;
        let result = reader::read(input, limits, &mut sink);
        Ok((result, sink))
    })
    .await
    .map_err(|e| BackupError::Invalid(format!("the reader failed: {e}")))?
}

/// Validates `path` (see the module documentation): every problem listed, nothing written.
///
/// # Errors
/// [`BackupError::Io`] when the file cannot be opened, [`BackupError::Store`] when the references cannot be
/// looked up.
pub async fn validate(
    store: &Store,
    path: &Path,
    options: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreSummary, BackupError> {
    let started = Instant::now();
    let mut summary = RestoreSummary::new(path, options);
    let validator = Validator {
        progress: progress.clone(),
        problems: Vec::new(),
        problems_total: 0,
        keys: HashMap::new(),
        defined: HashMap::new(),
        wanted: HashMap::new(),
    };
    let (result, mut v) = read_file(path.to_owned(), options.limits, validator).await?;
    match result {
        Ok(read) => {
            summary.records = read.records;
            summary.metadata = Some(read.metadata);
        }
        Err(fatal) => v.push(fatal),
    }
    // References the file does not provide must exist in the database.
    let mut wanted: Vec<((Kind, String), Reference)> = v.wanted.drain().collect();
    wanted.sort_by_key(|a| a.1.record);
    let missing = missing_in_database(store, &wanted).await?;
    for ((target, id), r) in wanted {
        if missing.contains(&(target, id.clone())) {
            v.push(Problem {
                record: Some(r.record),
                line: r.line,
                message: format!(
                    "{} {}: {} {id:?} is neither in the file nor in the database",
                    r.kind.name(),
                    r.column,
                    target.name()
                ),
            });
        }
    }
    v.problems.sort_by_key(|p| (p.record.unwrap_or(u64::MAX), p.line));
    summary.valid = v.problems_total == 0;
    summary.problems = v.problems;
    summary.problems_total = v.problems_total;
    summary.duration_ms = elapsed_ms(started);
    Ok(summary)
}

/// The referenced keys that are not in the database.
async fn missing_in_database(
    store: &Store,
    wanted: &[((Kind, String), Reference)],
) -> Result<HashSet<(Kind, String)>, BackupError> {
    let mut missing = HashSet::new();
    for target in REFERENCED {
        let ids: Vec<&str> = wanted.iter().filter(|((k, _), _)| *k == target).map(|((_, id), _)| id.as_str()).collect();
        if ids.is_empty() {
            continue;
        }
        let def = target.def();
        let column = &def.cols[def.key[0]].name;
        let mut present = HashSet::new();
        for chunk in ids.chunks(500) {
            let found: Vec<(String,)> = crate::store::on_reader!(store, |pool| {
                let pg = matches!(store, Store::Postgres(_));
                let mut p = super::db::Params::new(pg);
                let list: Vec<String> = chunk.iter().map(|_| p.next(None)).collect();
                let sql = format!("SELECT {column} FROM {} WHERE {column} IN ({})", def.table, list.join(", "));
                let mut q = sqlx::query_as(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.fetch_all(pool).await.map_err(StoreError::from)?
            });
            present.extend(found.into_iter().map(|(id,)| id));
        }
        for id in ids {
            if !present.contains(id) {
                missing.insert((target, id.to_owned()));
            }
        }
    }
    Ok(missing)
}

/// The apply pass's sink: chunks of records of one kind, over a bounded channel.
struct Chunker {
    tx: tokio::sync::mpsc::Sender<Vec<Record>>,
    chunk: Vec<Record>,
}

impl Chunker {
    fn send(&mut self) -> Result<(), String> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.chunk);
        self.tx.blocking_send(chunk).map_err(|_| "the restore stopped".to_owned())
    }
}

impl Sink for Chunker {
    fn record(&mut self, r: Record) -> Result<(), String> {
        let full = self.chunk.first().is_some_and(|f| f.kind != r.kind || self.chunk.len() >= max_rows(f.kind.def()));
        if full {
            self.send()?;
        }
        self.chunk.push(r);
        Ok(())
    }

    fn problem(&mut self, p: Problem) -> Result<(), String> {
        Err(format!("the file changed since it was validated: {p}"))
    }
}

/// The row of each record's key (aligned with `records`), or `None`.
async fn lookup(tx: &mut Tx, def: &KindDef, records: &[Record]) -> Result<Vec<Option<Existing>>, StoreError> {
    match tx {
        Tx::Postgres(t) => {
            let sql = pg_lookup_sql(def);
            let keys: Vec<&[Val]> = records.iter().map(|r| r.vals.as_slice()).collect();
            let rows = bind_pg_columns(sqlx::query(&sql), def, &def.key, &keys)?.fetch_all(&mut **t).await?;
            let mut found = found_rows(def, rows)?;
            Ok(records.iter().map(|r| found.remove(&key_text(def, &r.vals))).collect())
        }
        Tx::Sqlite(t) => {
            with_handle(t, |db| super::sqlite::lookup(db, def, records.iter().map(|r| r.vals.as_slice()))).await
        }
    }
}

/// The rows a lookup read, by key (the first row of a key when there are several).
fn found_rows<R: RowExt>(def: &KindDef, rows: Vec<R>) -> Result<Found, sqlx::Error> {
    let mut found = Found::with_capacity(rows.len());
    for row in rows {
        let vals = def.cols.iter().enumerate().map(|(i, c)| row.val(i, c)).collect::<Result<Vec<_>, _>>()?;
        let id = match def.locator {
            Some(_) => Some(row.id(def.cols.len())?),
            None => None,
        };
        found.entry(key_text(def, &vals)).or_insert(Existing { vals, id });
    }
    Ok(found)
}

/// Inserts `adds` and updates the rows of `updates` (each record with the row its key found).
async fn write(
    tx: &mut Tx,
    def: &KindDef,
    adds: &[&Record],
    updates: &[(&Record, Existing)],
) -> Result<(), StoreError> {
    match tx {
        Tx::Postgres(t) => {
            if !adds.is_empty() {
                let sql = pg_insert_sql(def);
                let rows: Vec<&[Val]> = adds.iter().map(|r| r.vals.as_slice()).collect();
                let all: Vec<usize> = (0..def.cols.len()).collect();
                bind_pg_columns(sqlx::query(&sql), def, &all, &rows)?.execute(&mut **t).await?;
            }
            for (record, existing) in updates {
                pg_update(t, def, record, existing).await?;
            }
            Ok(())
        }
        Tx::Sqlite(t) => {
            if adds.is_empty() && updates.is_empty() {
                return Ok(());
            }
            with_handle(t, |db| {
                super::sqlite::insert(db, def, adds.iter().map(|r| r.vals.as_slice()))?;
                for (record, existing) in updates {
                    super::sqlite::update(db, def, &record.vals, existing)?;
                }
                Ok(())
            })
            .await
        }
    }
}

async fn pg_update(
    conn: &mut sqlx::PgConnection,
    def: &KindDef,
    record: &Record,
    existing: &Existing,
) -> Result<(), StoreError> {
    let id_val = existing.id.map(Val::Int);
    let sql = update_sql(def, true);
    let mut q = sqlx::query(&sql);
    for i in def.non_key() {
        q = q.bind_val(&record.vals[i], def.cols[i].base);
    }
    match &id_val {
        Some(id) => q = q.bind_val(id, super::schema::Base::Int),
        None => {
            for k in &def.key {
                q = q.bind_val(&record.vals[*k], def.cols[*k].base);
            }
        }
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Notes what a changed record means for computed attendance.
fn note_effects(effects: &mut Effects, def: &KindDef, r: &Record, added: bool) {
    let text = |name: &str| match def.col(name).and_then(|i| r.vals.get(i)) {
        Some(Val::Text(s)) => Some(s.clone()),
        _ => None,
    };
    let local_time = |name: &str| match def.col(name).and_then(|i| r.vals.get(i)) {
        Some(Val::Local(t)) => Some(*t),
        _ => None,
    };
    let day = |name: &str| match def.col(name).and_then(|i| r.vals.get(i)) {
        Some(Val::Date(d)) => Some(*d),
        _ => None,
    };
    match r.kind {
        Kind::Punch | Kind::ManualLog => {
            let who = if r.kind == Kind::Punch { text("pin") } else { text("employee_id") };
            if let (Some(who), Some(t)) = (who, local_time("local_time")) {
                let (first, last) = crate::attendance::engine::days_a_punch_may_belong_to(t);
                for d in first.iter_days().take_while(|d| *d <= last) {
                    effects.pairs.push((who.clone(), d));
                }
            }
        }
        Kind::Leave => {
            if let (Some(who), Some(from), Some(to)) = (text("employee_id"), day("from_date"), day("to_date")) {
                let last = to.min(from + chrono::Duration::days(crate::store::attendance::MAX_MARK_DAYS - 1));
                let mut d = from;
                while d <= last {
                    effects.pairs.push((who.clone(), d));
                    let Some(next) = d.succ_opt() else { break };
                    d = next;
                }
            }
        }
        Kind::Employee => effects.employees.extend(text("employee_id")),
        // A new shift, rule or site has no employees yet; a changed one re-marks theirs.
        Kind::Shift if !added => effects.shifts.extend(text("code")),
        Kind::WeekOffRule if !added => effects.week_off_rules.extend(text("code")),
        Kind::Site if !added => effects.sites.extend(text("site_id")),
        Kind::Holiday => {
            if let Some(d) = day("holiday_date") {
                effects.holidays.push((d, text("site_id")));
            }
        }
        _ => {}
    }
}

/// Previews or restores `path`, which [`validate`] accepted (`summary` is its result, completed here).
async fn apply(
    store: &Store,
    path: &Path,
    options: &RestoreOptions,
    progress: &Progress,
    summary: &mut RestoreSummary,
    tx: &mut Tx,
) -> Result<(), BackupError> {
    let restore = options.mode == Mode::Restore;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<Record>>(4);
    let (file, limits) = (path.to_owned(), options.limits);
    let reading = tokio::task::spawn_blocking(move || -> Result<reader::Summary, BackupError> {
        let input = reader::open(&file)?;
        let mut sink = Chunker { tx: sender, chunk: Vec::new() };
        let result = reader::read(input, limits, &mut sink);
        // The last chunk; a refusal here means the restore side stopped first (its error is the one reported).
        let sent = sink.send();
        match (result, sent) {
            (Err(p), _) => Err(BackupError::Invalid(p.to_string())),
            (Ok(_), Err(e)) => Err(BackupError::Invalid(e)),
            (Ok(s), Ok(())) => Ok(s),
        }
    });
    let mut effects = Effects::default();
    let mut written = 0u64;
    let mut counts: BTreeMap<Kind, Counts> = BTreeMap::new();
    let outcome: Result<(), BackupError> = async {
        while let Some(chunk) = receiver.recv().await {
            let Some(kind) = chunk.first().map(|r| r.kind) else { continue };
            let def = kind.def();
            let found = lookup(tx, def, &chunk).await?;
            let mut adds = Vec::new();
            let mut updates = Vec::new();
            let c = counts.entry(kind).or_default();
            for (r, existing) in chunk.iter().zip(found) {
                let Some(e) = existing else {
                    c.added += 1;
                    adds.push(r);
                    continue;
                };
                // Equal values have equal checksums; only different ones need the database row's.
                if e.vals == r.vals {
                    c.skipped += 1;
                    continue;
                }
                let theirs = checksum(def, &e.vals);
                if theirs == r.sha256 {
                    c.skipped += 1;
                } else if options.strategy == Strategy::BackupWins {
                    c.updated += 1;
                    updates.push((r, e));
                } else {
                    c.conflicts += 1;
                    if summary.conflicts.len() < MAX_LISTED_CONFLICTS {
                        summary.conflicts.push(Conflict {
                            kind: kind.name().to_owned(),
                            key: key_text(def, &r.vals),
                            record: r.number,
                            backup_sha256: hex::encode(r.sha256),
                            database_sha256: hex::encode(theirs),
                        });
                    }
                }
            }
            if restore {
                write(tx, def, &adds, &updates).await?;
                if !options.keep_computed {
                    for r in &adds {
                        note_effects(&mut effects, def, r, true);
                    }
                    for (r, _) in &updates {
                        note_effects(&mut effects, def, r, false);
                    }
                    if effects.pairs.len() >= 20_000 {
                        effects.flush_pairs(tx).await?;
                    }
                }
                written += (adds.len() + updates.len()) as u64;
                if options.fail_after.is_some_and(|n| written >= n) {
                    return Err(BackupError::Injected(written));
                }
            }
            progress.advance(chunk.len() as u64);
            if progress.should_stop() {
                return Err(BackupError::Stopped);
            }
        }
        if restore && !options.keep_computed {
            effects.finish(tx).await?;
        }
        Ok(())
    }
    .await;
    drop(receiver);
    let read = reading.await.map_err(|e| BackupError::Invalid(format!("the reader failed: {e}")))?;
    outcome?;
    read?;
    for (kind, c) in counts {
        summary.totals.add(&c);
        summary.counts.insert(kind.name().to_owned(), c);
    }
    summary.days_marked = effects.marked;
    summary.attendance = if !restore {
        String::new()
    } else if options.keep_computed {
        "attendance and ManDays rows restored as they are; no day marked for recomputation".to_owned()
    } else {
        format!("{} employee-days marked for recomputation", effects.marked)
    };
    let _ = store;
    Ok(())
}

/// Validates, then previews or restores `path` as `options.mode` says. A file that fails validation is refused
/// (nothing written); a restore runs in one transaction and is audited (success or the error).
///
/// # Errors
/// [`BackupError`] when the file cannot be read or the database fails; the transaction is then rolled back. A
/// refused file is not an error: the summary says `valid: false` with its problems.
pub async fn run(
    store: &Store,
    path: &Path,
    options: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreSummary, BackupError> {
    let started = Instant::now();
    let result = run_inner(store, path, options, progress).await;
    let mut audit_entry = Entry::new("restore", "backup", file_name(path));
    match &result {
        Ok(s) if options.mode == Mode::Restore && s.applied => return Ok(s.clone()),
        Ok(s) if options.mode == Mode::Restore => {
            audit_entry = audit_entry.after(&serde_json::json!({
                "success": false,
                "error": format!("the file is not valid: {}", s.problem_lines().join("; ")),
                "strategy": options.strategy.as_str(),
                "type": s.metadata.as_ref().map(|m| m.backup_type.as_str()),
            }));
            crate::audit::record_as(store, &options.actor, audit_entry).await;
        }
        Err(e) if options.mode == Mode::Restore => {
            audit_entry = audit_entry.after(&serde_json::json!({
                "success": false,
                "error": e.to_string(),
                "strategy": options.strategy.as_str(),
            }));
            crate::audit::record_as(store, &options.actor, audit_entry).await;
        }
        _ => {}
    }
    result.map(|mut s| {
        s.duration_ms = elapsed_ms(started);
        s
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

async fn run_inner(
    store: &Store,
    path: &Path,
    options: &RestoreOptions,
    progress: &Progress,
) -> Result<RestoreSummary, BackupError> {
    let started = Instant::now();
    let mut summary = validate(store, path, options, progress).await?;
    if !summary.valid || options.mode == Mode::Validate {
        return Ok(summary);
    }
    progress.add_total(summary.records);
    let mut tx = match options.mode {
        Mode::Restore => store.begin().await?,
        _ => super::export::snapshot(store).await?,
    };
    let saved = super::export::lean(&mut tx, None).await?;
    let applied = apply(store, path, options, progress, &mut summary, &mut tx).await;
    // Settings back before the transaction ends, whether it commits or rolls back.
    let put_back = super::export::unlean(&mut tx, saved).await;
    applied?;
    put_back?;
    summary.duration_ms = elapsed_ms(started);
    if options.mode == Mode::Restore {
        let entry = Entry::new("restore", "backup", file_name(path)).after(&serde_json::json!({
            "success": true,
            "type": summary.metadata.as_ref().map(|m| m.backup_type.as_str()),
            "strategy": options.strategy.as_str(),
            "added": summary.totals.added,
            "updated": summary.totals.updated,
            "skipped": summary.totals.skipped,
            "conflicts": summary.totals.conflicts,
            "records": summary.records,
            "attendance": summary.attendance,
        }));
        crate::store::audit::insert(&mut tx, &options.actor, &entry, chrono::Utc::now()).await?;
        tx.commit().await?;
        summary.applied = true;
    }
    Ok(summary)
}

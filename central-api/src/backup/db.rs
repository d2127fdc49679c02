//! The SQL side of backup and restore, written once for both backends from the kind definitions in
//! [`super::schema`]: reading a kind's rows (in key order, `COLLATE "C"` on PostgreSQL so both backends give the same
//! order), looking up the rows a chunk of records names, inserting and updating.
//!
//! On PostgreSQL statements run through sqlx: [`RowExt`] and [`BindExt`] turn a [`Val`] into its types (exact integer
//! widths), and a chunk's columns are bound as arrays ([`bind_pg_columns`]). On SQLite they are stepped on the raw
//! handle ([`super::sqlite`]). Placeholders are `$n` on PostgreSQL and anonymous `?` on SQLite.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use super::schema::{Base, Col, KindDef, Val};

/// Reads a column into a [`Val`].
pub trait RowExt {
    /// Column `i`, of type `col`.
    ///
    /// # Errors
    /// [`sqlx::Error`] when the stored value does not decode as the column's type.
    fn val(&self, i: usize, col: &Col) -> Result<Val, sqlx::Error>;
    /// Column `i` as a row id.
    ///
    /// # Errors
    /// [`sqlx::Error`].
    fn id(&self, i: usize) -> Result<i64, sqlx::Error>;
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Val) -> Val {
    v.map_or(Val::Null, f)
}

macro_rules! decode_common {
    ($row:expr, $i:expr, $col:expr) => {
        match $col.base {
            Base::Text => opt($row.try_get::<Option<String>, _>($i)?, Val::Text),
            Base::Bool => opt($row.try_get::<Option<bool>, _>($i)?, Val::Bool),
            Base::Date => opt($row.try_get::<Option<NaiveDate>, _>($i)?, Val::Date),
            Base::Time => opt($row.try_get::<Option<NaiveTime>, _>($i)?, Val::Time),
            Base::Local => opt($row.try_get::<Option<NaiveDateTime>, _>($i)?, Val::Local),
            Base::Utc => opt($row.try_get::<Option<DateTime<Utc>>, _>($i)?, Val::Utc),
            Base::Bytes => opt($row.try_get::<Option<Vec<u8>>, _>($i)?, Val::Bytes),
            Base::Int | Base::Int4 | Base::Int2 => unreachable!("integers are decoded per backend"),
        }
    };
}

impl RowExt for PgRow {
    fn val(&self, i: usize, col: &Col) -> Result<Val, sqlx::Error> {
        Ok(match col.base {
            Base::Int => opt(self.try_get::<Option<i64>, _>(i)?, Val::Int),
            Base::Int4 => opt(self.try_get::<Option<i32>, _>(i)?, |v| Val::Int(i64::from(v))),
            Base::Int2 => opt(self.try_get::<Option<i16>, _>(i)?, |v| Val::Int(i64::from(v))),
            _ => decode_common!(self, i, col),
        }
        .normalized())
    }

    fn id(&self, i: usize) -> Result<i64, sqlx::Error> {
        self.try_get(i)
    }
}

/// Binds a [`Val`] as its column's type.
pub trait BindExt<'q>: Sized {
    #[must_use]
    fn bind_val(self, v: &'q Val, base: Base) -> Self;
}

/// Binds everything but integers (whose width differs by backend).
macro_rules! bind_common {
    ($q:expr, $v:expr, $base:expr) => {
        match ($v, $base) {
            (Val::Text(s), _) => $q.bind(s.as_str()),
            (Val::Bool(b), _) => $q.bind(*b),
            (Val::Date(d), _) => $q.bind(*d),
            (Val::Time(t), _) => $q.bind(*t),
            (Val::Local(t), _) => $q.bind(*t),
            (Val::Utc(t), _) => $q.bind(*t),
            (Val::Bytes(b), _) => $q.bind(b.as_slice()),
            (Val::Null, Base::Bool) => $q.bind(None::<bool>),
            (Val::Null, Base::Date) => $q.bind(None::<NaiveDate>),
            (Val::Null, Base::Time) => $q.bind(None::<NaiveTime>),
            (Val::Null, Base::Local) => $q.bind(None::<NaiveDateTime>),
            (Val::Null, Base::Utc) => $q.bind(None::<DateTime<Utc>>),
            (Val::Null, Base::Bytes) => $q.bind(None::<Vec<u8>>),
            (Val::Null | Val::Int(_), _) => $q.bind(None::<String>),
        }
    };
}

impl<'q> BindExt<'q> for Query<'q, Postgres, PgArguments> {
    fn bind_val(self, v: &'q Val, base: Base) -> Self {
        match (v, base) {
            (Val::Int(i), Base::Int4) => self.bind(i32::try_from(*i).unwrap_or(i32::MAX)),
            (Val::Int(i), Base::Int2) => self.bind(i16::try_from(*i).unwrap_or(i16::MAX)),
            (Val::Int(i), _) => self.bind(*i),
            (Val::Null, Base::Int4) => self.bind(None::<i32>),
            (Val::Null, Base::Int2) => self.bind(None::<i16>),
            (Val::Null, Base::Int) => self.bind(None::<i64>),
            _ => bind_common!(self, v, base),
        }
    }
}

/// PostgreSQL's name of a column type (for casts).
fn pg_type(base: Base) -> &'static str {
    match base {
        Base::Text => "text",
        Base::Int => "int8",
        Base::Int4 => "int4",
        Base::Int2 => "int2",
        Base::Bool => "bool",
        Base::Date => "date",
        Base::Time => "time",
        Base::Local => "timestamp",
        Base::Utc => "timestamptz",
        Base::Bytes => "bytea",
    }
}

/// Numbers placeholders as the backend wants them.
pub struct Params {
    pg: bool,
    n: usize,
}

impl Params {
    pub fn new(pg: bool) -> Self {
        Self { pg, n: 0 }
    }

    /// The next placeholder, cast to `base` on PostgreSQL.
    pub fn next(&mut self, base: Option<Base>) -> String {
        self.n += 1;
        match (self.pg, base) {
            (true, Some(b)) => format!("${}::{}", self.n, pg_type(b)),
            (true, None) => format!("${}", self.n),
            (false, _) => "?".to_owned(),
        }
    }
}

fn column_list(def: &KindDef, prefix: &str) -> String {
    def.cols.iter().map(|c| format!("{prefix}{}", c.name)).collect::<Vec<_>>().join(", ")
}

/// `SELECT` of a kind's rows in key order; with `incremental`, only rows changed since `$1`.
pub fn select_sql(def: &KindDef, pg: bool, incremental: bool) -> String {
    let order: Vec<String> = def
        .key
        .iter()
        .map(|k| {
            let col = &def.cols[*k];
            let collate = if pg && col.base == Base::Text { " COLLATE \"C\"" } else { "" };
            let nulls = if col.nullable { " NULLS FIRST" } else { "" };
            format!("t.{}{collate}{nulls}", col.name)
        })
        .collect();
    let filter = if incremental { format!(" WHERE {}", def.changed_since) } else { String::new() };
    format!("SELECT {} FROM {} t{filter} ORDER BY {}", column_list(def, "t."), def.table, order.join(", "))
}

/// `SELECT count(*)` of what [`select_sql`] reads.
pub fn count_sql(def: &KindDef, incremental: bool) -> String {
    let filter = if incremental { format!(" WHERE {}", def.changed_since) } else { String::new() };
    format!("SELECT count(*) FROM {} t{filter}", def.table)
}

/// The rows of `def` whose key is a row of `source`, a set of keys `v` with columns `column1`, `column2`, ...
fn lookup_from(def: &KindDef, pg: bool, source: &str) -> String {
    let conds: Vec<String> = def
        .key
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let col = &def.cols[*k];
            let op = match (col.nullable, pg) {
                (false, _) => "=",
                (true, true) => "IS NOT DISTINCT FROM",
                (true, false) => "IS",
            };
            format!("t.{} {op} v.column{}", col.name, i + 1)
        })
        .collect();
    let locator = def.locator.map(|l| format!(", t.{l}")).unwrap_or_default();
    let order = def.locator.map(|l| format!(" ORDER BY t.{l}")).unwrap_or_default();
    format!(
        "SELECT {}{locator} FROM {source} CROSS JOIN {} AS t WHERE {}{order}",
        column_list(def, "t."),
        def.table,
        conds.join(" AND ")
    )
}

/// A multi-row `INSERT` of `rows` records.
pub fn insert_sql(def: &KindDef, pg: bool, rows: usize) -> String {
    let mut p = Params::new(pg);
    let mut values = Vec::with_capacity(rows);
    for _ in 0..rows {
        let row: Vec<String> = def.cols.iter().map(|c| p.next(pg.then_some(c.base))).collect();
        values.push(format!("({})", row.join(",")));
    }
    format!("INSERT INTO {} ({}) VALUES {}", def.table, column_list(def, ""), values.join(","))
}

/// An `UPDATE` of one row's non-key columns, by its locator (`$last` is the row id) or else by its key.
pub fn update_sql(def: &KindDef, pg: bool) -> String {
    let mut p = Params::new(pg);
    let sets: Vec<String> = def.non_key().map(|i| format!("{} = {}", def.cols[i].name, p.next(None))).collect();
    let filter = match def.locator {
        Some(l) => format!("{l} = {}", p.next(None)),
        None => def
            .key
            .iter()
            .map(|k| format!("{} = {}", def.cols[*k].name, p.next(None)))
            .collect::<Vec<_>>()
            .join(" AND "),
    };
    format!("UPDATE {} SET {} WHERE {filter}", def.table, sets.join(", "))
}

/// A row found in the database for a key.
#[derive(Debug, Clone)]
pub struct Existing {
    pub vals: Vec<Val>,
    pub id: Option<i64>,
}

/// Keys of the rows a lookup found (the first row of each key, lowest id first, when the key is not unique).
pub type Found = HashMap<String, Existing>;

/// Rows a statement may carry: SQLite allows 32,766 parameters, PostgreSQL 65,535.
pub fn max_rows(def: &KindDef) -> usize {
    (16_000 / def.cols.len()).clamp(1, 1000)
}

/// One column of a chunk of records as a PostgreSQL array, bound as one parameter of an `unnest` (a chunk is then
/// one statement with a parameter per column, not one per value).
enum PgArray<'a> {
    Text(Vec<Option<&'a str>>),
    Int8(Vec<Option<i64>>),
    Int4(Vec<Option<i32>>),
    Int2(Vec<Option<i16>>),
    Bool(Vec<Option<bool>>),
    Date(Vec<Option<NaiveDate>>),
    Time(Vec<Option<NaiveTime>>),
    Local(Vec<Option<NaiveDateTime>>),
    Utc(Vec<Option<DateTime<Utc>>>),
    Bytes(Vec<Option<&'a [u8]>>),
}

/// Collects `values` (of a column of type `base`) into an array; `None` when a value is not of that type (which a
/// record read and checked by the reader never has).
fn pg_array<'a>(base: Base, values: impl Iterator<Item = &'a Val>) -> Option<PgArray<'a>> {
    fn all<'a, T>(values: impl Iterator<Item = &'a Val>, f: impl Fn(&'a Val) -> Option<T>) -> Option<Vec<Option<T>>> {
        values.map(|v| if matches!(v, Val::Null) { Some(None) } else { f(v).map(Some) }).collect()
    }
    Some(match base {
        Base::Text => PgArray::Text(all(values, |v| if let Val::Text(s) = v { Some(s.as_str()) } else { None })?),
        Base::Int => PgArray::Int8(all(values, |v| if let Val::Int(i) = v { Some(*i) } else { None })?),
        Base::Int4 => PgArray::Int4(all(values, |v| if let Val::Int(i) = v { i32::try_from(*i).ok() } else { None })?),
        Base::Int2 => PgArray::Int2(all(values, |v| if let Val::Int(i) = v { i16::try_from(*i).ok() } else { None })?),
        Base::Bool => PgArray::Bool(all(values, |v| if let Val::Bool(b) = v { Some(*b) } else { None })?),
        Base::Date => PgArray::Date(all(values, |v| if let Val::Date(d) = v { Some(*d) } else { None })?),
        Base::Time => PgArray::Time(all(values, |v| if let Val::Time(t) = v { Some(*t) } else { None })?),
        Base::Local => PgArray::Local(all(values, |v| if let Val::Local(t) = v { Some(*t) } else { None })?),
        Base::Utc => PgArray::Utc(all(values, |v| if let Val::Utc(t) = v { Some(*t) } else { None })?),
        Base::Bytes => PgArray::Bytes(all(values, |v| if let Val::Bytes(b) = v { Some(b.as_slice()) } else { None })?),
    })
}

/// Binds columns `cols` of `rows` (each a record's values in column order) as one array each.
///
/// # Errors
/// [`sqlx::Error::Protocol`] naming the column when a value is not of its column's type.
pub fn bind_pg_columns<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    def: &KindDef,
    cols: &[usize],
    rows: &[&'q [Val]],
) -> Result<Query<'q, Postgres, PgArguments>, sqlx::Error> {
    for &i in cols {
        let col = &def.cols[i];
        let values = rows.iter().filter_map(|r| r.get(i));
        let array = pg_array(col.base, values).ok_or_else(|| {
            sqlx::Error::Protocol(format!("a value of {}.{} is not of its type", def.table, col.name))
        })?;
        q = match array {
            PgArray::Text(a) => q.bind(a),
            PgArray::Int8(a) => q.bind(a),
            PgArray::Int4(a) => q.bind(a),
            PgArray::Int2(a) => q.bind(a),
            PgArray::Bool(a) => q.bind(a),
            PgArray::Date(a) => q.bind(a),
            PgArray::Time(a) => q.bind(a),
            PgArray::Local(a) => q.bind(a),
            PgArray::Utc(a) => q.bind(a),
            PgArray::Bytes(a) => q.bind(a),
        };
    }
    Ok(q)
}

/// `unnest($1::type[], ...)` of columns `cols`, one array parameter each.
fn pg_unnest(def: &KindDef, cols: &[usize]) -> String {
    let arrays: Vec<String> =
        cols.iter().enumerate().map(|(n, i)| format!("${}::{}[]", n + 1, pg_type(def.cols[*i].base))).collect();
    format!("unnest({})", arrays.join(", "))
}

/// PostgreSQL: inserts the rows of [`bind_pg_columns`] over every column.
pub fn pg_insert_sql(def: &KindDef) -> String {
    let all: Vec<usize> = (0..def.cols.len()).collect();
    format!("INSERT INTO {} ({}) SELECT * FROM {}", def.table, column_list(def, ""), pg_unnest(def, &all))
}

/// PostgreSQL: [`lookup_sql`] with the keys bound by [`bind_pg_columns`] over the key columns.
pub fn pg_lookup_sql(def: &KindDef) -> String {
    let names: Vec<String> = (1..=def.key.len()).map(|n| format!("column{n}")).collect();
    lookup_from(def, true, &format!("{} AS v({})", pg_unnest(def, &def.key), names.join(", ")))
}

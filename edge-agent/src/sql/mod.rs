//! Punches from other databases: the SQL source (`kind = "sql"`).
//!
//! Many sites run a vendor's attendance server (ZKTeco BioTime, the eSSL bundle, a payroll collector) that writes
//! every punch into its own PostgreSQL or MySQL/MariaDB database. This source reads such a table (or view, or a
//! read-only query) by an increasing id and appends each row as a punch with source `sql`, so those punches take the
//! same durable path as every other.
//!
//! In layers, like the other drivers:
//! - **codec** (no I/O): `query` builds the statements from checked names (every value bound, every column selected
//!   as text cut to a bounded length); `row` turns one row's values into a punch or an "unmappable" reason naming the
//!   column; `preset` holds known vendor schemas (BioTime's `iclock_transaction`);
//! - **client**: `client::SqlClient`, one read-only, UTC session over sqlx with every call under a timeout, errors
//!   sorted into `sql_unreachable`, `sql_auth_failed`, `sql_schema_mismatch`; `schema` matches the configured
//!   columns with the database's and checks their types;
//! - **poller**: `poller::run`, one task per source: pages after the cursor, append, then the cursor (`sql.cursor`
//!   in the buffer); the `rescan` mode re-reads a time window for tables whose ids are not increasing.
//!
//! `check` is what `edge-agent check-config` does for these sources (connect, check the table and columns) and
//! `probe` is `edge-agent probe --sql DEVICE`. `stats` holds the figures `/metrics` shows. Protocol facts and their
//! sources are in `REFERENCE.md` beside this file.
//!
//! **Invariant:** the cursor moves only after the punches of the rows it passes were appended (durable); a row that
//! cannot be mapped is counted and reported, never silently dropped.

pub mod check;
pub mod client;
pub mod poller;
pub mod preset;
pub mod probe;
pub mod query;
pub mod row;
pub mod schema;
pub mod settings;
pub mod stats;

pub use poller::run;
pub use settings::{build, SqlSettings, SqlSource};

//! A vendor's database for the SQL source's tests and bench: a fresh database on the MariaDB or the PostgreSQL of
//! this machine, SQL run on it, and the agent's connections cut.
//!
//! `.ci/test` brings both servers up and exports `TEST_MARIADB_URL` (root with an empty password) and
//! `TEST_POSTGRES_URL`. A test that cannot reach one fails naming it: it never skips.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sqlx::{Connection, Executor, MySqlConnection, PgConnection};

use crate::services::{fresh_postgres, TestDatabase};

/// Default admin URL when `TEST_MARIADB_URL` is not set.
pub const DEFAULT_MARIADB_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// The admin connection URL for MariaDB.
pub fn mariadb_admin_url() -> String {
    std::env::var("TEST_MARIADB_URL").unwrap_or_else(|_| DEFAULT_MARIADB_URL.to_owned())
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    MariaDb,
    Postgres,
}

/// A database created for one test, dropped by [`VendorDb::drop_database`] (or swept by a later run).
pub struct VendorDb {
    pub vendor: Vendor,
    /// The test database's URL.
    pub url: String,
    /// Its name.
    pub name: String,
    postgres: Option<TestDatabase>,
}

impl VendorDb {
    /// A fresh, empty database on `vendor`.
    ///
    /// # Panics
    /// When the server is unreachable, with a message naming it.
    pub async fn new(vendor: Vendor) -> Self {
        match vendor {
            Vendor::Postgres => {
                let db = fresh_postgres().await;
                Self { vendor, url: db.url.clone(), name: db.name.clone(), postgres: Some(db) }
            }
            Vendor::MariaDb => match fresh_mariadb().await {
                Ok((url, name)) => Self { vendor, url, name, postgres: None },
                Err(e) => panic!(
                    "MariaDB is not usable at {} (TEST_MARIADB_URL): {e:#}. This test needs it; run `bash .ci/test`, \
                     which starts or installs it.",
                    mariadb_admin_url()
                ),
            },
        }
    }

    /// `driver`, `host`, `port`, `database`, `user` and `password` keys of an agent's `[[device]]` for this database.
    pub fn device_keys(&self) -> String {
        let url = reqwest::Url::parse(&self.url).expect("a database URL");
        let driver = match self.vendor {
            Vendor::MariaDb => "mysql",
            Vendor::Postgres => "postgres",
        };
        format!(
            "driver = \"{driver}\"\nhost = \"{}\"\nport = {}\ndatabase = \"{}\"\nuser = \"{}\"\npassword = \"{}\"\n\
             tls = \"prefer\"\n",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(if driver == "mysql" { 3306 } else { 5432 }),
            self.name,
            url.username(),
            url.password().unwrap_or("")
        )
    }

    /// Runs statements (separated by `;` at line ends are not split: pass one statement per call).
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        match self.vendor {
            Vendor::MariaDb => {
                let mut conn = MySqlConnection::connect(&self.url).await?;
                conn.execute(sql).await.with_context(|| format!("running {}", short(sql)))?;
                conn.close().await?;
            }
            Vendor::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await?;
                conn.execute(sql).await.with_context(|| format!("running {}", short(sql)))?;
                conn.close().await?;
            }
        }
        Ok(())
    }

    /// Cuts every connection to this database but the caller's own (the agent's dropped connection).
    /// Returns how many were cut.
    ///
    /// # Errors
    /// When the server refuses.
    pub async fn kill_connections(&self) -> anyhow::Result<usize> {
        match self.vendor {
            Vendor::MariaDb => {
                let mut conn = MySqlConnection::connect(&self.url).await?;
                let ids: Vec<(u64,)> = sqlx::query_as(
                    "SELECT CAST(id AS UNSIGNED) FROM information_schema.processlist WHERE db = ? AND id <> \
                     CONNECTION_ID()",
                )
                .bind(&self.name)
                .fetch_all(&mut conn)
                .await?;
                for (id,) in &ids {
                    let _ = conn.execute(format!("KILL CONNECTION {id}").as_str()).await;
                }
                conn.close().await?;
                Ok(ids.len())
            }
            Vendor::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await?;
                let killed: Vec<(bool,)> = sqlx::query_as(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> \
                     pg_backend_pid()",
                )
                .bind(&self.name)
                .fetch_all(&mut conn)
                .await?;
                conn.close().await?;
                Ok(killed.len())
            }
        }
    }

    /// Drops the database.
    pub async fn drop_database(self) {
        match self.vendor {
            Vendor::Postgres => {
                if let Some(db) = self.postgres {
                    let _ = db.drop_database().await;
                }
            }
            Vendor::MariaDb => {
                if let Ok(mut admin) = MySqlConnection::connect(&mariadb_admin_url()).await {
                    let _ = admin.execute(format!("DROP DATABASE IF EXISTS `{}`", self.name).as_str()).await;
                }
            }
        }
    }
}

fn short(sql: &str) -> String {
    sql.chars().take(80).collect()
}

/// Creates `t_<unix seconds>_<random>` on MariaDB; ones older than an hour (left by killed runs) are dropped here.
async fn fresh_mariadb() -> anyhow::Result<(String, String)> {
    let admin_url = mariadb_admin_url();
    let mut admin = tokio::time::timeout(Duration::from_secs(10), MySqlConnection::connect(&admin_url))
        .await
        .context("timed out connecting")?
        .context("connecting")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata WHERE schema_name LIKE 't\\_%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap_or_default();
    for (name,) in names {
        if name.split('_').nth(1).and_then(|s| s.parse::<u64>().ok()).is_some_and(|c| c + 3600 < now) {
            let _ = admin.execute(format!("DROP DATABASE IF EXISTS `{name}`").as_str()).await;
        }
    }
    let name = format!("t_{now}_{:08x}", rand::random::<u32>());
    admin.execute(format!("CREATE DATABASE `{name}`").as_str()).await.context("creating the test database")?;
    admin.close().await?;
    let Some((base, _)) = admin_url.rsplit_once('/') else { anyhow::bail!("TEST_MARIADB_URL has no database part") };
    Ok((format!("{base}/{name}"), name))
}

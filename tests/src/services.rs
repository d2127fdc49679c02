//! The real services the end-to-end tests talk to: PostgreSQL and an MQTT broker.
//!
//! `.ci/test` brings them up and exports `TEST_POSTGRES_URL` (an admin connection) and `TEST_MQTT_ADDR`. A test that
//! needs one and cannot reach it fails with a message saying which service, where, and how to start it: it never
//! skips.

use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use sqlx::{Connection, Executor, PgConnection};

/// Default admin URL when `TEST_POSTGRES_URL` is not set (trust auth ignores the password).
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";
/// Default broker when `TEST_MQTT_ADDR` is not set.
pub const DEFAULT_MQTT_ADDR: &str = "127.0.0.1:1883";

/// The admin connection URL for PostgreSQL.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// `host:port` of the MQTT broker, after checking that it accepts connections.
///
/// # Panics
/// When the broker is unreachable, with a message naming it.
pub fn require_mqtt() -> String {
    let addr = std::env::var("TEST_MQTT_ADDR").unwrap_or_else(|_| DEFAULT_MQTT_ADDR.to_owned());
    let reachable = addr
        .parse()
        .ok()
        .map(|sock| TcpStream::connect_timeout(&sock, Duration::from_secs(3)).is_ok())
        .unwrap_or_else(|| TcpStream::connect(&addr).is_ok());
    assert!(
        reachable,
        "MQTT broker (Mosquitto) is not reachable at {addr} (TEST_MQTT_ADDR). This test needs it; \
         run `bash .ci/test`, which starts or installs it, or start it with `mosquitto -d`."
    );
    addr
}

/// A database created for one test, dropped by [`TestDatabase::drop_database`] (or swept by a later run).
pub struct TestDatabase {
    pub url: String,
    pub name: String,
    admin_url: String,
}

/// Creates a fresh, empty PostgreSQL database for one test.
///
/// Databases are named `t_<unix seconds>_<random>`; ones older than an hour (left by killed runs) are dropped here.
///
/// # Panics
/// When PostgreSQL is unreachable, with a message naming it.
pub async fn fresh_postgres() -> TestDatabase {
    match try_fresh_postgres().await {
        Ok(db) => db,
        Err(e) => panic!(
            "PostgreSQL is not usable at {} (TEST_POSTGRES_URL): {e:#}. This test needs it; run `bash .ci/test`, \
             which starts or installs it.",
            postgres_admin_url()
        ),
    }
}

async fn try_fresh_postgres() -> anyhow::Result<TestDatabase> {
    let admin_url = postgres_admin_url();
    let mut admin = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&admin_url))
        .await
        .context("timed out connecting")?
        .context("connecting")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    sweep_stale(&mut admin, now).await;
    let name = format!("t_{now}_{:08x}", rand::random::<u32>());
    admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.context("creating the test database")?;
    let Some((base, _)) = admin_url.rsplit_once('/') else { bail!("TEST_POSTGRES_URL has no database part") };
    Ok(TestDatabase { url: format!("{base}/{name}"), name, admin_url })
}

async fn sweep_stale(admin: &mut PgConnection, now: u64) {
    let names: Vec<(String,)> = sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%'")
        .fetch_all(&mut *admin)
        .await
        .unwrap_or_default();
    for (name,) in names {
        let created = name.split('_').nth(1).and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|c| c + 3600 < now) {
            let _ = admin.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await;
        }
    }
}

impl TestDatabase {
    /// Drops the database (forcing out connections).
    ///
    /// # Errors
    /// When PostgreSQL refuses.
    pub async fn drop_database(self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        admin.execute(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name).as_str()).await?;
        Ok(())
    }
}

//! The SQL source through the real pipeline: rows in a vendor's database (the MariaDB and the PostgreSQL of this
//! machine) -> `edge-agent run` -> `central-api serve` -> AllLogs, on both central backends. Every mappable row is in
//! AllLogs exactly once across rows added while the agent runs, a row repeating a punch, the agent killed and
//! restarted (which reads only the new rows), and the agent's database connection cut; rows that cannot be mapped
//! show as `sql_unmappable_rows` at central. BioTime's `iclock_transaction` on MariaDB; a custom table with words
//! for directions, moments (`timestamptz`) and device names on PostgreSQL.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use protocol::{DeviceSerial, Pin, PunchKey};
use sqlx::Connection;
use system_tests::central::{Backend, CentralDb};
use system_tests::harness::Spawned;
use system_tests::on_both_backends;
use system_tests::vendor_db::{Vendor, VendorDb};

const ZONE: Tz = chrono_tz::Asia::Kolkata;

/// Rows of one vendor table, and the punch keys the mappable ones must become.
struct Table {
    vendor: Vendor,
    next: i64,
    base: NaiveDateTime,
    keys: HashSet<PunchKey>,
}

impl Table {
    fn new(vendor: Vendor) -> Self {
        let base = (Utc::now() - chrono::Duration::days(2)).with_timezone(&ZONE).naive_local();
        let base = base.date().and_hms_opt(6, 0, 0).unwrap_or(base);
        Self { vendor, next: 0, base, keys: HashSet::new() }
    }

    fn create(&self) -> &'static str {
        match self.vendor {
            // BioTime's table as its MySQL installations have it (the columns the preset reads, and a few more).
            Vendor::MariaDb => {
                "CREATE TABLE iclock_transaction (id int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY, \
                 emp_code varchar(20) NOT NULL, punch_time datetime(6) NOT NULL, punch_state varchar(5) NOT NULL, \
                 verify_type int(11) NOT NULL, work_code varchar(20) DEFAULT NULL, terminal_sn varchar(50) DEFAULT NULL, \
                 terminal_alias varchar(50) DEFAULT NULL, area_alias varchar(120) DEFAULT NULL, \
                 upload_time datetime(6) DEFAULT NULL)"
            }
            // A payroll collector's own table: a badge, a moment, a direction word, a reader's name.
            Vendor::Postgres => {
                "CREATE TABLE gate_log (log_id bigserial PRIMARY KEY, badge text, logged_at timestamptz, \
                 direction text, reader text, note text)"
            }
        }
    }

    fn device_toml(&self) -> &'static str {
        match self.vendor {
            Vendor::MariaDb => "preset = \"biotime\"\n",
            Vendor::Postgres => {
                "table = \"gate_log\"\nid_column = \"log_id\"\nemployee_column = \"badge\"\ntime_column = \"logged_at\"\n\
                 state_column = \"direction\"\ndevice_column = \"reader\"\n\
                 device_names = { \"Main Gate\" = \"MAIN-GATE\" }\n"
            }
        }
    }

    /// `n` new distinct punches, two minutes apart, alternating two readers; their keys join the expected set.
    fn insert(&mut self, n: usize) -> String {
        let mut values = Vec::new();
        for _ in 0..n {
            let i = self.next;
            self.next += 1;
            let local = self.base + chrono::Duration::seconds(i * 120 + (i % 7));
            let pin = format!("{}", 1001 + i % 23);
            let (sn, reader) = if i % 2 == 0 { ("CL9M212260015", "Main Gate") } else { ("CL9M212260016", "DOCK-2") };
            let device: DeviceSerial = match self.vendor {
                Vendor::MariaDb => sn.parse().unwrap(),
                Vendor::Postgres => if i % 2 == 0 { "MAIN-GATE" } else { "DOCK-2" }.parse().unwrap(),
            };
            self.keys.insert(PunchKey::of(&device, &pin.parse::<Pin>().unwrap(), local));
            values.push(self.row(&pin, local, i % 2 == 0, sn, reader));
        }
        self.insert_sql(&values)
    }

    /// A row repeating the punch of row `i` (same person, reader and second): it must not reach AllLogs twice.
    fn repeat(&self, i: i64) -> String {
        let local = self.base + chrono::Duration::seconds(i * 120 + (i % 7));
        let pin = format!("{}", 1001 + i % 23);
        let (sn, reader) = if i % 2 == 0 { ("CL9M212260015", "Main Gate") } else { ("CL9M212260016", "DOCK-2") };
        self.insert_sql(&[self.row(&pin, local, i % 2 == 0, sn, reader)])
    }

    /// Two rows that cannot be mapped: an unknown direction, and no employee.
    fn unmappable(&self) -> String {
        let at = self.base - chrono::Duration::hours(1);
        match self.vendor {
            Vendor::MariaDb => format!(
                "INSERT INTO iclock_transaction (emp_code, punch_time, punch_state, verify_type, terminal_sn) VALUES \
                 ('1001', '{at}', 'X9', 1, 'CL9M212260015'), ('', '{at}', '0', 1, 'CL9M212260015')"
            ),
            Vendor::Postgres => {
                let at = ZONE.from_local_datetime(&at).single().map(|t| t.to_rfc3339()).unwrap_or_default();
                format!(
                    "INSERT INTO gate_log (badge, logged_at, direction, reader) VALUES ('1001', '{at}', 'sideways', \
                     'DOCK-2'), ('1002', NULL, 'IN', 'DOCK-2')"
                )
            }
        }
    }

    fn row(&self, pin: &str, local: NaiveDateTime, entry: bool, sn: &str, reader: &str) -> String {
        match self.vendor {
            Vendor::MariaDb => {
                let state = if entry { "0" } else { "1" };
                format!("('{pin}', '{local}.250000', '{state}', 1, '0', '{sn}', 'alias', 'area', NOW())")
            }
            Vendor::Postgres => {
                let at = ZONE.from_local_datetime(&local).single().map(|t| t.to_rfc3339()).unwrap_or_default();
                let direction = if entry { "IN" } else { "Out" };
                format!("('{pin}', '{at}', '{direction}', '{reader}', 'from the collector')")
            }
        }
    }

    fn insert_sql(&self, values: &[String]) -> String {
        match self.vendor {
            Vendor::MariaDb => format!(
                "INSERT INTO iclock_transaction (emp_code, punch_time, punch_state, verify_type, work_code, terminal_sn, \
                 terminal_alias, area_alias, upload_time) VALUES {}",
                values.join(", ")
            ),
            Vendor::Postgres => {
                format!("INSERT INTO gate_log (badge, logged_at, direction, reader, note) VALUES {}", values.join(", "))
            }
        }
    }
}

fn write_config(dir: &Path, central_url: &str, token: &str, device: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nid = \"gate-1\"\nsite = \"plant-1\"\ndata_dir = \"{}\"\n\n\
             [central]\ntransport = \"https\"\nurl = \"{central_url}\"\ntoken = \"{token}\"\n\n\
             [forward]\nlinger_ms = 20\ninitial_backoff_ms = 50\nmax_backoff_secs = 1\n\n\
             [status]\ninterval_secs = 1\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n{device}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

/// Starts `edge-agent run` and returns it with its local endpoint.
async fn start_agent(config: &Path) -> (Spawned, String) {
    let mut agent =
        Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[("RUST_LOG", "warn")])
            .expect("starting edge-agent");
    let url = agent.listening_url().await.expect("the agent's announcement");
    (agent, url)
}

/// A series of the agent's `/metrics` for `device`.
async fn metric(url: &str, name: &str, device: &str) -> Option<f64> {
    let text = reqwest::get(format!("{url}/metrics")).await.ok()?.text().await.ok()?;
    let prefix = format!("{name}{{device=\"{device}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.parse().ok())
}

async fn all_logs_keys(db: &CentralDb) -> (HashSet<PunchKey>, usize) {
    let rows: Vec<(Vec<u8>,)> = match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as("SELECT punch_key FROM all_logs").fetch_all(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as("SELECT punch_key FROM all_logs").fetch_all(&mut conn).await.unwrap()
        }
    };
    let count = rows.len();
    (rows.into_iter().map(|(k,)| PunchKey::from_bytes(k.as_slice().try_into().unwrap())).collect(), count)
}

/// Waits for AllLogs to hold `expected.len()` rows, then checks they are exactly the expected keys.
async fn assert_exact(db: &CentralDb, expected: &HashSet<PunchKey>, what: &str) {
    let start = Instant::now();
    while db.all_logs().await < expected.len() as i64 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A moment more, so a punch stored twice would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (keys, rows) = all_logs_keys(db).await;
    let missing = expected.difference(&keys).count();
    let extra = keys.difference(expected).count();
    assert!(
        missing == 0 && extra == 0 && rows == expected.len(),
        "{what}: AllLogs has {rows} rows for {} punches: {missing} missing, {extra} not in the source",
        expected.len()
    );
}

async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn every_row_exactly_once(backend: Backend, vendor: Vendor) {
    let central_db = CentralDb::new(backend).await;
    central_db.create_site("plant-1").await.unwrap();
    let token = central_db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = central_db.serve(&[]).await.unwrap();
    let source = VendorDb::new(vendor).await;
    let mut table = Table::new(vendor);
    source.execute(table.create()).await.unwrap();
    source.execute(&table.insert(120)).await.unwrap();
    source.execute(&table.unmappable()).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let serial = "VENDOR-DB";
    let mut keys = source.device_keys();
    if vendor == Vendor::Postgres {
        // The password from a file, as a site would keep it.
        let file = dir.path().join("db-password");
        let url = reqwest::Url::parse(&source.url).unwrap();
        std::fs::write(&file, format!("{}\n", url.password().unwrap_or(""))).unwrap();
        let inline = format!("password = \"{}\"\n", url.password().unwrap_or(""));
        keys = keys.replace(&inline, &format!("password_file = \"{}\"\n", file.display()));
    }
    let device = format!(
        "[[device]]\nkind = \"sql\"\nserial = \"{serial}\"\ntime_zone = \"Asia/Kolkata\"\n{keys}{}\
         batch_size = 25\npoll_interval_secs = 1\ntimeout_ms = 5000\n",
        table.device_toml()
    );
    let config = write_config(dir.path(), &central.url, &token, &device);

    let (mut agent, url) = start_agent(&config).await;
    assert_exact(&central_db, &table.keys, "the rows there before the agent").await;

    // Rows written while the agent runs, and one repeating a punch already read.
    source.execute(&table.insert(30)).await.unwrap();
    source.execute(&table.repeat(3)).await.unwrap();
    assert_exact(&central_db, &table.keys, "rows written while the agent runs").await;
    let read = metric(&url, "edge_sql_rows_read_total", serial).await.unwrap_or(0.0);
    assert_eq!(read, 153.0, "rows read: 150 punches, 2 unmappable, 1 repeat");

    // The two rows that cannot be mapped are reported (by the agent that read them).
    wait_for("sql_unmappable_rows at central", Duration::from_secs(15), async || {
        central_db
            .scalar(&format!(
                "SELECT count(*) FROM device_status WHERE device_serial = '{serial}' AND faults_json LIKE \
                 '%sql_unmappable_rows%' AND faults_json LIKE '%2 rows%'"
            ))
            .await
            .unwrap_or(0)
            == 1
    })
    .await;
    // Killed, rows written meanwhile, restarted: only the new rows are read.
    agent.kill().await.unwrap();
    source.execute(&table.insert(30)).await.unwrap();
    let (_agent, url) = start_agent(&config).await;
    assert_exact(&central_db, &table.keys, "after the agent restarted").await;
    wait_for("the restarted agent's figures", Duration::from_secs(10), async || {
        metric(&url, "edge_sql_rows_read_total", serial).await == Some(30.0)
    })
    .await;

    // The database drops the agent's connection; the agent reconnects and goes on from its cursor.
    wait_for("the agent's connection", Duration::from_secs(10), async || {
        source.kill_connections().await.unwrap_or(0) > 0
    })
    .await;
    source.execute(&table.insert(20)).await.unwrap();
    assert_exact(&central_db, &table.keys, "after the connection was cut").await;
    assert_eq!(metric(&url, "edge_sql_rows_read_total", serial).await, Some(50.0));

    let all = table.keys.len() as i64;
    assert_eq!(central_db.scalar("SELECT count(*) FROM all_logs WHERE source = 'sql'").await.unwrap(), all);
    drop(central);
    central_db.cleanup().await;
    source.drop_database().await;
}

async fn biotime_on_mariadb(backend: Backend) {
    every_row_exactly_once(backend, Vendor::MariaDb).await;
}

async fn custom_table_on_postgres(backend: Backend) {
    every_row_exactly_once(backend, Vendor::Postgres).await;
}

on_both_backends!(biotime_on_mariadb, custom_table_on_postgres);

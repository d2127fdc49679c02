//! The SQL source against the MariaDB and PostgreSQL of this machine, with an in-memory sink: the re-scan mode finds
//! rows whose ids are not increasing (the cursor mode does not), a read-only query with a join, the faults that name
//! what is wrong (refused login, missing column, nothing listening), `edge-agent check-config` and
//! `edge-agent probe --sql`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use edge_agent::config::{Config, DeviceSettings};
use edge_agent::device_status::DeviceStatusBoard;
use edge_agent::sink::memory::MemorySink;
use protocol::{PunchSource, PunchState};
use system_tests::harness::binary;
use system_tests::vendor_db::{Vendor, VendorDb};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// An agent configuration holding `devices`, for `Config::load`, `check-config` and `probe`.
fn write_config(dir: &Path, devices: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nid = \"gate-1\"\nsite = \"plant-1\"\ndata_dir = \"{}\"\n\n\
             [central]\ntransport = \"https\"\nurl = \"https://central.invalid\"\ntoken = \"t\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n{devices}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

fn device(serial: &str, keys: &str, extra: &str) -> String {
    format!(
        "[[device]]\nkind = \"sql\"\nserial = \"{serial}\"\ntime_zone = \"Asia/Kolkata\"\n{keys}{extra}\
         poll_interval_secs = 1\ntimeout_ms = 3000\n"
    )
}

struct Run {
    sink: Arc<MemorySink>,
    board: DeviceStatusBoard,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Run {
    fn faults(&self) -> Vec<(String, String)> {
        self.board
            .snapshot()
            .iter()
            .flat_map(|s| s.faults.iter().map(|f| (f.code.clone(), f.message.clone())))
            .collect()
    }

    async fn finish(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// Starts the source of the first device of `config`.
fn start(config: &Path) -> Run {
    let config = Config::load(config).unwrap();
    let device = &config.devices[0];
    let DeviceSettings::Sql(settings) = &device.settings else { panic!("not sql") };
    let source = edge_agent::sql::build(&config.agent.site, device, settings).unwrap();
    let sink = Arc::new(MemorySink::new());
    let board = DeviceStatusBoard::new();
    let stop = CancellationToken::new();
    let task = tokio::spawn(edge_agent::sql::run(source, sink.clone(), board.clone(), stop.clone()));
    Run { sink, board, stop, task }
}

async fn wait_for(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `YYYY-MM-DD HH:MM:SS` in Asia/Kolkata, `hours_ago` before now.
fn local_ago(hours_ago: i64, second: i64) -> String {
    (Utc::now() - chrono::Duration::hours(hours_ago) + chrono::Duration::seconds(second))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescan_finds_rows_whose_ids_are_not_increasing() {
    let db = VendorDb::new(Vendor::MariaDb).await;
    db.execute("CREATE TABLE punches (id bigint PRIMARY KEY, pin varchar(20), at datetime, io varchar(8))")
        .await
        .unwrap();
    let rows: Vec<String> =
        (0..20).map(|i| format!("({}, '{}', '{}', 'IN')", 100 + i, 500 + i, local_ago(2, i))).collect();
    db.execute(&format!("INSERT INTO punches VALUES {}", rows.join(", "))).await.unwrap();
    let columns = "table = \"punches\"\nid_column = \"id\"\nemployee_column = \"pin\"\ntime_column = \"at\"\n\
                   state_column = \"io\"\nbatch_size = 7\n";
    let dir = tempfile::tempdir().unwrap();
    let rescan = start(&write_config(
        &dir.path().join("r").tap_mkdir(),
        &device("RESCAN", &db.device_keys(), &format!("{columns}mode = \"rescan\"\nrescan_hours = 6\n")),
    ));
    let cursor = start(&write_config(&dir.path().join("c").tap_mkdir(), &device("CURSOR", &db.device_keys(), columns)));
    wait_for("20 punches in both modes", Duration::from_secs(15), || {
        rescan.sink.punches().len() == 20 && cursor.sink.punches().len() == 20
    })
    .await;

    // Backfilled below the cursor: one within the window, one older than it.
    db.execute(&format!(
        "INSERT INTO punches VALUES (50, '777', '{}', 'OUT'), (40, '778', '{}', 'OUT')",
        local_ago(1, 0),
        local_ago(30, 0)
    ))
    .await
    .unwrap();
    wait_for("the backfilled row in the re-scan", Duration::from_secs(10), || rescan.sink.punches().len() == 21).await;
    let found = rescan.sink.punches().into_iter().find(|p| p.pin.as_str() == "777").unwrap();
    assert_eq!((found.state, found.source), (PunchState::CheckOut, PunchSource::Sql));
    // Three more polls: the cursor mode never sees it, the re-scan appends nothing twice and nothing out of window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(cursor.sink.punches().len(), 20);
    assert_eq!(rescan.sink.punches().len(), 21);
    assert!(rescan.sink.punches().iter().all(|p| p.pin.as_str() != "778"));
    assert!(rescan.faults().is_empty(), "{:?}", rescan.faults());
    rescan.finish().await;
    cursor.finish().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_query_with_a_join() {
    let db = VendorDb::new(Vendor::Postgres).await;
    db.execute("CREATE TABLE staff (staff_id int PRIMARY KEY, payroll_no text)").await.unwrap();
    db.execute("CREATE TABLE swipes (swipe_id int PRIMARY KEY, staff_id int, swiped timestamp, kind int)")
        .await
        .unwrap();
    db.execute("INSERT INTO staff VALUES (1, 'P-001'), (2, 'P-002')").await.unwrap();
    db.execute(&format!(
        "INSERT INTO swipes VALUES (10, 1, '{}', 0), (11, 2, '{}', 1), (12, 1, '{}', 1)",
        local_ago(3, 0),
        local_ago(3, 1),
        local_ago(2, 0)
    ))
    .await
    .unwrap();
    let query =
        "query = \"SELECT w.swipe_id, s.payroll_no, w.swiped, w.kind FROM swipes w JOIN staff s USING (staff_id) \
                 WHERE w.swipe_id > {cursor}\"\nid_column = \"swipe_id\"\nemployee_column = \"payroll_no\"\n\
                 time_column = \"swiped\"\nstate_column = \"kind\"\n";
    let dir = tempfile::tempdir().unwrap();
    let run = start(&write_config(dir.path(), &device("PAYROLL", &db.device_keys(), query)));
    wait_for("3 punches", Duration::from_secs(15), || run.sink.punches().len() == 3).await;
    let pins: Vec<String> = run.sink.punches().iter().map(|p| p.pin.to_string()).collect();
    assert_eq!(pins, ["P-001", "P-002", "P-001"]);
    assert_eq!(run.sink.punches()[1].state, PunchState::CheckOut);
    assert!(run.sink.punches().iter().all(|p| p.device.as_str() == "PAYROLL"));
    db.execute("INSERT INTO swipes VALUES (13, 2, now(), 0)").await.unwrap();
    wait_for("the new swipe", Duration::from_secs(10), || run.sink.punches().len() == 4).await;
    run.finish().await;

    // The session is read-only: a query that would change something (here, a sequence) is refused and named.
    db.execute("CREATE SEQUENCE probe_seq").await.unwrap();
    let writing = query.replace("w.kind FROM", "w.kind, nextval('probe_seq') AS n FROM");
    let sub = dir.path().join("writing");
    std::fs::create_dir_all(&sub).unwrap();
    let run = start(&write_config(&sub, &device("WRITING", &db.device_keys(), &writing)));
    wait_for("a read-only refusal", Duration::from_secs(15), || {
        run.faults().iter().any(|(code, message)| code == "sql_schema_mismatch" && message.contains("read-only"))
    })
    .await;
    assert!(run.sink.punches().is_empty());
    run.finish().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_name_what_is_wrong() {
    let maria = VendorDb::new(Vendor::MariaDb).await;
    maria
        .execute("CREATE TABLE iclock_transaction (id int PRIMARY KEY, emp_code varchar(20), punch_time datetime)")
        .await
        .unwrap();
    let pg = VendorDb::new(Vendor::Postgres).await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // BioTime's preset on a table without its state, verify, work code and terminal columns.
        (
            "schema",
            device("SCHEMA", &maria.device_keys(), "preset = \"biotime\"\n"),
            "sql_schema_mismatch",
            "punch_state",
        ),
        (
            "auth",
            // This PostgreSQL trusts local logins whatever the password: an unknown role is refused all the same.
            device(
                "AUTH",
                &pg.device_keys()
                    .replace("user = \"postgres\"", "user = \"nobody_here\"")
                    .replace("password = \"postgres\"", "password = \"wrong\""),
                "preset = \"biotime\"\n",
            ),
            "sql_auth_failed",
            "",
        ),
        (
            "missing-table",
            device("TABLE", &pg.device_keys(), "preset = \"biotime\"\n"),
            "sql_schema_mismatch",
            "iclock_transaction",
        ),
        (
            "closed-port",
            device("CLOSED", &maria.device_keys().replace("port = 3306", "port = 9"), "preset = \"biotime\"\n"),
            "sql_unreachable",
            "",
        ),
    ];
    for (name, devices, code, mentions) in cases {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let run = start(&write_config(&sub, &devices));
        wait_for(&format!("{code} for {name}"), Duration::from_secs(15), || {
            run.faults().iter().any(|(c, m)| c == code && m.contains(mentions))
        })
        .await;
        assert!(!run.board.snapshot()[0].reachable, "{name}");
        // The password never shows in a fault.
        assert!(run.faults().iter().all(|(_, m)| !m.contains("wrong")), "{name}: {:?}", run.faults());
        run.finish().await;
    }
    pg.drop_database().await;
    maria.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_and_probe_read_the_database() {
    let db = VendorDb::new(Vendor::MariaDb).await;
    db.execute(
        "CREATE TABLE iclock_transaction (id int AUTO_INCREMENT PRIMARY KEY, emp_code varchar(20) NOT NULL, \
         punch_time datetime(6) NOT NULL, punch_state varchar(5) NOT NULL, verify_type int NOT NULL, \
         work_code varchar(20), terminal_sn varchar(50))",
    )
    .await
    .unwrap();
    db.execute(&format!(
        "INSERT INTO iclock_transaction (emp_code, punch_time, punch_state, verify_type, work_code, terminal_sn) VALUES \
         ('1001', '{}', '0', 15, '0', 'CL9M212260015'), ('1002', '{}', '1', 1, NULL, 'CL9M212260015'), \
         ('1003', '{}', '??', 1, NULL, 'CL9M212260015')",
        local_ago(1, 0),
        local_ago(1, 1),
        local_ago(1, 2)
    ))
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(dir.path(), &device("BIOTIME-1", &db.device_keys(), "preset = \"biotime\"\n"));
    let agent = binary("edge-agent").unwrap();
    let out = std::process::Command::new(&agent).arg("check-config").arg(&good).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("table iclock_transaction (biotime) on MariaDB"), "{stdout}");
    assert!(stdout.contains("employee=emp_code") && stdout.contains("wall-clock in Asia/Kolkata"), "{stdout}");

    let out = std::process::Command::new(&agent)
        .args(["probe", "--sql", "BIOTIME-1", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("rows     3"), "{stdout}");
    assert!(stdout.contains("pin 1002") && stdout.contains("check_out"), "{stdout}");
    assert!(stdout.contains("cannot become a punch: state: \"??\""), "{stdout}");
    assert!(stdout.contains("cursor   none stored yet"), "{stdout}");

    let dir2 = tempfile::tempdir().unwrap();
    let bad = write_config(
        dir2.path(),
        &device("BIOTIME-1", &db.device_keys(), "preset = \"biotime\"\nemployee_column = \"badge\"\n"),
    );
    let out = std::process::Command::new(&agent).arg("check-config").arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("sql_schema_mismatch") && stderr.contains("employee_column \"badge\" is not a column"),
        "{stderr}"
    );
    db.drop_database().await;
}

/// `path.tap_mkdir()`: creates the directory and returns the path.
trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

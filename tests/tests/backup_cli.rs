//! Backup and restore through the real binary (`central-api backup` / `central-api restore`): the move from SQLite to
//! PostgreSQL and back with identical content, the merge strategies with preview, refused files that write nothing,
//! an injected failure half-way that leaves the database as it was, and incremental backups.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sqlx::Connection;
use system_tests::attendance::{ingest, punch, store_of};
use system_tests::backup::{kinds_in, record_lines, seed};
use system_tests::central::{run_cli, Backend, CentralDb};
use system_tests::on_both_backends;

on_both_backends!(
    merge_strategies_preview_and_apply,
    bad_files_are_refused_and_write_nothing,
    injected_failure_changes_nothing,
    incremental_holds_only_changes
);

const EVERY_KIND: [&str; 14] = [
    "week_off_rule",
    "shift",
    "site",
    "employee",
    "device",
    "holiday",
    "agent",
    "admin",
    "admin_site",
    "punch",
    "manual_log",
    "leave",
    "attendance",
    "man_days",
];

async fn seeded(backend: Backend) -> CentralDb {
    let db = CentralDb::new(backend).await;
    let store = store_of(&db, 2).await.expect("store");
    seed(&store).await.expect("seeding");
    store.close().await;
    db
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

async fn backup(db: &CentralDb, file: &Path) -> Vec<String> {
    db.cli(&["backup", "--type", "full", "--output", &path_str(file)]).await.expect("backup");
    record_lines(file).expect("reading the backup")
}

/// Runs `restore` with `--json` and returns the summary (the command must succeed).
async fn restore(db: &CentralDb, file: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["restore", "--json"];
    let f = path_str(file);
    args.extend(["--input", f.as_str()]);
    args.extend(extra);
    let out = db.cli(&args).await.expect("restore");
    serde_json::from_str(out.trim()).expect("summary JSON")
}

/// Runs a statement straight on the database.
async fn exec(db: &CentralDb, sql: &str) {
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            sqlx::query(sql).execute(&mut conn).await.expect(sql);
        }
    }
}

fn count(summary: &Value, kind: &str, what: &str) -> u64 {
    summary["counts"][kind][what].as_u64().unwrap_or(0)
}

fn total(summary: &Value, what: &str) -> u64 {
    summary["totals"][what].as_u64().unwrap_or(u64::MAX)
}

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_owned();
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back_keeps_every_record() {
    let (_keep, dir) = temp();
    let sqlite = seeded(Backend::Sqlite).await;
    let first = dir.join("first.json.gz");
    let lines = backup(&sqlite, &first).await;
    let kinds = kinds_in(&lines);
    for kind in EVERY_KIND {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "the seeded backup holds no {kind}: {kinds:?}");
    }
    assert_eq!(kinds["punch"] as i64, sqlite.all_logs().await);

    // Into an empty PostgreSQL: everything added, the punches' days marked for recomputation.
    let pg = CentralDb::new(Backend::Postgres).await;
    let summary = restore(&pg, &first, &["--strategy", "backup_wins"]).await;
    assert_eq!(summary["applied"], true, "{summary}");
    assert_eq!(total(&summary, "added"), lines.len() as u64, "{summary}");
    assert_eq!(total(&summary, "updated") + total(&summary, "skipped") + total(&summary, "conflicts"), 0);
    assert!(summary["days_marked"].as_u64().unwrap_or(0) > 0, "{summary}");
    assert!(pg.scalar("SELECT count(*) FROM attendance_dirty").await.unwrap() > 0);
    let second = dir.join("second.json");
    assert_eq!(backup(&pg, &second).await, lines, "the PostgreSQL backup differs from the SQLite one");
    assert_eq!(pg.all_logs().await, sqlite.all_logs().await);

    // And back into an empty SQLite, computed rows kept as they are.
    let back = CentralDb::new(Backend::Sqlite).await;
    let summary = restore(&back, &second, &["--strategy", "manual", "--keep-computed"]).await;
    assert_eq!(total(&summary, "added"), lines.len() as u64, "{summary}");
    assert_eq!(summary["days_marked"], 0);
    assert_eq!(back.scalar("SELECT count(*) FROM attendance_dirty").await.unwrap(), 0);
    let third = dir.join("third.json.gz");
    assert_eq!(backup(&back, &third).await, lines, "the round trip changed the content");

    // Restoring the same file again adds nothing: every record is identical.
    let again = restore(&back, &first, &["--strategy", "backup_wins"]).await;
    assert_eq!(total(&again, "skipped"), lines.len() as u64, "{again}");

    // Audited: the backups where they were made, the restores where they were applied.
    let audited = "SELECT count(*) FROM audit_log WHERE actor = 'cli' AND resource = 'backup' AND action = ";
    assert_eq!(sqlite.scalar(&format!("{audited} 'backup'")).await.unwrap(), 1);
    assert_eq!(pg.scalar(&format!("{audited} 'restore'")).await.unwrap(), 1);
    assert_eq!(pg.scalar(&format!("{audited} 'backup'")).await.unwrap(), 1);
    assert_eq!(back.scalar(&format!("{audited} 'restore'")).await.unwrap(), 2);
    pg.cleanup().await;
}

async fn merge_strategies_preview_and_apply(backend: Backend) {
    let (_keep, dir) = temp();
    let db = seeded(backend).await;
    let file = dir.join("merge.json.gz");
    let lines = backup(&db, &file).await;
    let n = lines.len() as u64;
    let punches = db.all_logs().await;
    // Diverge: a renamed employee (a conflict), a punch and a holiday gone (to add back).
    exec(&db, "UPDATE employees SET name = 'Renamed' WHERE employee_id = '1001'").await;
    exec(&db, "DELETE FROM all_logs WHERE id = (SELECT min(id) FROM all_logs)").await;
    exec(&db, "DELETE FROM holidays WHERE name = 'Local fair'").await;
    exec(&db, "DELETE FROM attendance_dirty").await;

    let preview = restore(&db, &file, &["--strategy", "database_wins", "--preview"]).await;
    assert_eq!(count(&preview, "employee", "conflicts"), 1, "{preview}");
    assert_eq!(count(&preview, "punch", "added"), 1, "{preview}");
    assert_eq!(count(&preview, "holiday", "added"), 1, "{preview}");
    assert_eq!(
        total(&preview, "added")
            + total(&preview, "updated")
            + total(&preview, "skipped")
            + total(&preview, "conflicts"),
        n
    );
    assert_eq!(preview["applied"], false);
    assert_eq!(db.all_logs().await, punches - 1, "a preview wrote something");

    let preview = restore(&db, &file, &["--strategy", "backup_wins", "--preview"]).await;
    assert_eq!(count(&preview, "employee", "updated"), 1, "{preview}");
    assert_eq!(total(&preview, "conflicts"), 0);

    // manual: the conflict is listed and not applied; the missing records come back.
    let manual = restore(&db, &file, &["--strategy", "manual"]).await;
    assert_eq!(manual["conflicts"][0]["kind"], "employee", "{manual}");
    assert_eq!(manual["conflicts"][0]["key"], "[\"1001\"]");
    assert_eq!(db.all_logs().await, punches);
    let renamed = "SELECT count(*) FROM employees WHERE employee_id = '1001' AND name = 'Renamed'";
    assert_eq!(db.scalar(renamed).await.unwrap(), 1);
    // The restored punch marked its day and the day before.
    assert!(db.scalar("SELECT count(*) FROM attendance_dirty").await.unwrap() >= 1);

    // backup_wins: the backup's employee replaces the renamed one, and its computed days are marked again.
    exec(&db, "DELETE FROM attendance_dirty").await;
    let wins = restore(&db, &file, &["--strategy", "backup_wins"]).await;
    assert_eq!(count(&wins, "employee", "updated"), 1, "{wins}");
    assert_eq!(total(&wins, "skipped"), n - 1);
    assert_eq!(db.scalar(renamed).await.unwrap(), 0);
    let marked = "SELECT count(*) FROM attendance_dirty WHERE employee_id = '1001'";
    assert!(db.scalar(marked).await.unwrap() >= 6, "the employee's computed days were not marked");
    assert_eq!(backup(&db, &dir.join("after.json")).await, lines);
    db.cleanup().await;
}

async fn restore_fails(db: &CentralDb, file: &Path) -> String {
    let env = db.env();
    let f = path_str(file);
    let output = run_cli(&["restore", "--input", &f, "--strategy", "backup_wins"], &env, None).await.expect("run");
    assert!(!output.status.success(), "a bad file was restored");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn bad_files_are_refused_and_write_nothing(backend: Backend) {
    let (_keep, dir) = temp();
    let db = seeded(backend).await;
    let good = dir.join("good.json");
    backup(&db, &good).await;
    exec(&db, "DELETE FROM all_logs WHERE pin = '1001'").await;
    let before = backup(&db, &dir.join("before.json")).await;
    let text = std::fs::read_to_string(&good).expect("read");

    let write = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, body).expect("write");
        p
    };
    let truncated = write("truncated.json", &text[..text.len() * 6 / 10]);
    let err = restore_fails(&db, &truncated).await;
    assert!(err.contains("ends early") && err.contains("line"), "{err}");

    let version = write("version.json", &text.replacen("\"format_version\":1,", "\"format_version\":9,", 1));
    let err = restore_fails(&db, &version).await;
    assert!(err.contains("unsupported format_version 9"), "{err}");

    let tampered = write("tampered.json", &text.replacen("\"work_code\":0", "\"work_code\":5", 1));
    let err = restore_fails(&db, &tampered).await;
    assert!(err.contains("checksum does not match") && err.contains("record "), "{err}");

    let unknown = write("unknown.json", &text.replacen("{\"kind\":\"holiday\"", "{\"kind\":\"vacation\"", 1));
    let err = restore_fails(&db, &unknown).await;
    assert!(err.contains("unknown kind \"vacation\"") && err.contains("line "), "{err}");

    // Validation lists every problem, with where it is.
    let both = write(
        "both.json",
        &text.replacen("\"work_code\":0", "\"work_code\":5", 1).replacen("{\"kind\":\"holiday\"", "{\"kind\":\"x\"", 1),
    );
    let output = run_cli(&["restore", "--validate", "--input", &path_str(&both)], &db.env(), None).await.unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("3 problems")
            && err.contains("metadata.counts says 2 holiday")
            && err.contains("checksum")
            && err.contains("unknown kind"),
        "{err}"
    );

    assert_eq!(backup(&db, &dir.join("after.json")).await, before, "a refused file changed the database");
    let failed = "SELECT count(*) FROM audit_log WHERE action = 'restore' AND after_json LIKE '%\"success\":false%'";
    assert_eq!(db.scalar(failed).await.unwrap(), 4);
    db.cleanup().await;
}

async fn injected_failure_changes_nothing(backend: Backend) {
    let (_keep, dir) = temp();
    let db = seeded(backend).await;
    let file = dir.join("full.json.gz");
    backup(&db, &file).await;
    exec(&db, "DELETE FROM all_logs WHERE pin IN ('1001', '2001')").await;
    exec(&db, "UPDATE employees SET name = 'Changed' WHERE employee_id = '1002'").await;
    let before = backup(&db, &dir.join("before.json")).await;
    let dirty = db.scalar("SELECT count(*) FROM attendance_dirty").await.unwrap();
    let f = path_str(&file);
    let output =
        run_cli(&["restore", "--input", &f, "--strategy", "backup_wins", "--fail-after", "20"], &db.env(), None)
            .await
            .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("injected failure") && err.contains("nothing was written"), "{err}");
    assert_eq!(backup(&db, &dir.join("after.json")).await, before, "the failed restore left changes");
    assert_eq!(db.scalar("SELECT count(*) FROM attendance_dirty").await.unwrap(), dirty);
    // Without the failure it goes through.
    let summary = restore(&db, &file, &["--strategy", "backup_wins"]).await;
    assert!(total(&summary, "added") >= 40, "{summary}");
    db.cleanup().await;
}

async fn incremental_holds_only_changes(backend: Backend) {
    let (_keep, dir) = temp();
    let db = seeded(backend).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = chrono::Utc::now().to_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    db.cli(&["update-site", "A", "--name", "Site A, renamed"]).await.expect("update-site");
    let store = store_of(&db, 2).await.unwrap();
    let day = system_tests::attendance::date(3, 9);
    let new = ingest(
        &store,
        "A",
        1000,
        vec![
            punch("A", "1001", system_tests::attendance::at(day, 9, 0), protocol::PunchState::CheckIn),
            punch("A", "1001", system_tests::attendance::at(day, 17, 0), protocol::PunchState::CheckOut),
        ],
    )
    .await
    .unwrap();
    assert_eq!(new, 2);
    store.close().await;
    let file = dir.join("inc.json");
    db.cli(&["backup", "--type", "incremental", "--since", &since, "--output", &path_str(&file)]).await.unwrap();
    let lines = record_lines(&file).unwrap();
    let kinds = kinds_in(&lines);
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds["site"], 1);
    assert_eq!(kinds["punch"], 2);
    assert!(lines[0].contains("Site A, renamed"));
    let summary = restore(&db, &file, &["--strategy", "backup_wins", "--validate"]).await;
    assert_eq!(summary["valid"], true);
    assert_eq!(summary["metadata"]["type"], "incremental");
    db.cleanup().await;
}

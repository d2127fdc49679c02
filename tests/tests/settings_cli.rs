//! The attendance settings on the command line: `add-shift` with every setting, `update-shift` (refusals name the
//! API field), `import-shifts`, `list-shifts`, `update-site` and `list-sites`, each audited as done by `cli`.

use serde_json::Value;
use system_tests::attendance::store_of;
use system_tests::central::{run_cli, Backend, CentralDb};
use system_tests::on_both_backends;

on_both_backends!(shifts_and_sites_from_the_command_line);

async fn lines(db: &CentralDb, args: &[&str]) -> Vec<Value> {
    let out = db.cli(args).await.unwrap();
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn shifts_and_sites_from_the_command_line(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("S").await.unwrap();
    let out = db
        .cli(&[
            "add-shift",
            "LUNCH",
            "--name",
            "Lunch",
            "--start",
            "09:00",
            "--end",
            "18:00",
            "--grace-late-in-mins",
            "5",
            "--grace-early-out-mins",
            "10",
            "--min-half-day-mins",
            "200",
            "--max-work-for-half-day-mins",
            "300",
            "--overtime-threshold-before-shift-mins",
            "none",
            "--overtime-threshold-after-shift-mins",
            "45",
            "--deduct-lunch-break",
            "true",
            "--lunch-break-start",
            "13:00",
            "--lunch-break-duration-mins",
            "40",
            "--check-in-window-before-start-mins",
            "90",
            "--check-out-window-after-end-mins",
            "180",
            "--pairing",
            "pairs",
            "--debounce-secs",
            "30",
            "--single-punch",
            "half_day",
        ])
        .await
        .unwrap();
    let printed: Value = serde_json::from_str(out.trim()).unwrap();
    let listed = lines(&db, &["list-shifts"]).await;
    let lunch = listed.iter().find(|s| s["code"] == "LUNCH").unwrap();
    assert_eq!(lunch, &printed);
    for (field, value) in [
        ("grace_late_in_mins", Value::from(5)),
        ("grace_early_out_mins", Value::from(10)),
        ("min_half_day_mins", Value::from(200)),
        ("max_work_for_half_day_mins", Value::from(300)),
        ("overtime_threshold_before_shift_mins", Value::Null),
        ("overtime_threshold_after_shift_mins", Value::from(45)),
        ("deduct_lunch_break", Value::from(true)),
        ("lunch_break_start", Value::from("13:00:00")),
        ("lunch_break_duration_mins", Value::from(40)),
        ("check_in_window_before_start_mins", Value::from(90)),
        ("check_out_window_after_end_mins", Value::from(180)),
        ("pairing", Value::from("pairs")),
        ("debounce_secs", Value::from(30)),
        ("single_punch", Value::from("half_day")),
    ] {
        assert_eq!(lunch[field], value, "{field}: {lunch}");
    }

    // Refusals name the API's field; nothing changes.
    let output = run_cli(&["update-shift", "LUNCH", "--grace-late-in-mins", "600"], &db.env(), None).await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("grace_late_in_mins: 600 minutes is more than 540 minutes"), "{stderr}");
    let output = run_cli(&["add-shift", "LUNCH", "--name", "x", "--start", "09:00", "--end", "10:00"], &db.env(), None)
        .await
        .unwrap();
    assert!(!output.status.success(), "a taken code");

    // update-shift keeps what it does not name.
    db.cli(&["update-shift", "LUNCH", "--overtime-threshold-before-shift-mins", "20", "--lunch-break-start", "none"])
        .await
        .unwrap();
    let lunch = lines(&db, &["list-shifts"]).await.into_iter().find(|s| s["code"] == "LUNCH").unwrap();
    assert_eq!(
        (lunch["overtime_threshold_before_shift_mins"].as_i64(), lunch["lunch_break_start"].clone()),
        (Some(20), Value::Null)
    );
    assert_eq!(lunch["debounce_secs"], 30);

    // A file import creates the new shift and updates the existing one.
    let file = db.dir().join("shifts.json");
    std::fs::write(
        &file,
        r#"[{"code": "NIGHT", "name": "Night", "start": "22:00:00", "end": "06:00:00", "pairing": "by_state"},
            {"code": "LUNCH", "grace_late_in_mins": 7}]"#,
    )
    .unwrap();
    let out = db.cli(&["import-shifts", file.to_str().unwrap()]).await.unwrap();
    assert_eq!(out, "shift NIGHT created\nshift LUNCH updated\n");
    let listed = lines(&db, &["list-shifts"]).await;
    let night = listed.iter().find(|s| s["code"] == "NIGHT").unwrap();
    assert_eq!((night["overnight"].as_bool(), night["pairing"].as_str()), (Some(true), Some("by_state")));
    assert_eq!(listed.iter().find(|s| s["code"] == "LUNCH").unwrap()["grace_late_in_mins"], 7);
    std::fs::write(
        &file,
        r#"[{"code": "BAD", "name": "Bad", "start": "09:00:00", "end": "18:00:00", "pairing": "fifo"}]"#,
    )
    .unwrap();
    let output = run_cli(&["import-shifts", file.to_str().unwrap()], &db.env(), None).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("BAD") && stderr.contains("pairing: "), "{stderr}");

    // Sites: every setting readable and editable.
    db.cli(&["add-shift", "GEN", "--name", "General", "--start", "09:00", "--end", "18:00"]).await.unwrap();
    let store = store_of(&db, 2).await.unwrap();
    store
        .create_week_off_rule(
            "SUN",
            "Sundays",
            &central_api::attendance::engine::WeekOffRule::weekly(&[chrono::Weekday::Sun]),
        )
        .await
        .unwrap();
    let out = db
        .cli(&[
            "update-site",
            "S",
            "--name",
            "Plant S",
            "--sandwich",
            "week_offs_and_holidays",
            "--default-week-off-rule",
            "SUN",
        ])
        .await
        .unwrap();
    let site: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(lines(&db, &["list-sites"]).await, std::slice::from_ref(&site));
    assert_eq!(
        (site["name"].as_str(), site["sandwich"].as_str(), site["default_week_off_rule"].as_str()),
        (Some("Plant S"), Some("week_offs_and_holidays"), Some("SUN"))
    );
    let output = run_cli(&["update-site", "S", "--sandwich", "never"], &db.env(), None).await.unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("sandwich: "), "{output:?}");
    db.cli(&["update-site", "S", "--default-week-off-rule", "none"]).await.unwrap();
    assert_eq!(lines(&db, &["list-sites"]).await[0]["default_week_off_rule"], Value::Null);

    // Audited as the command line's.
    let filter = central_api::store::audit::AuditFilter { actor: Some("cli".into()), limit: 100, ..Default::default() };
    let entries = store.list_audit(&filter).await.unwrap();
    let kinds: Vec<(String, String, String)> =
        entries.iter().rev().map(|e| (e.action.clone(), e.resource.clone(), e.resource_id.clone())).collect();
    let expected: Vec<(String, String, String)> = [
        ("create", "shift", "LUNCH"),
        ("update", "shift", "LUNCH"),
        ("create", "shift", "NIGHT"),
        ("update", "shift", "LUNCH"),
        ("create", "shift", "GEN"),
        ("update", "site", "S"),
        ("update", "site", "S"),
    ]
    .iter()
    .map(|(a, r, i)| ((*a).to_owned(), (*r).to_owned(), (*i).to_owned()))
    .collect();
    assert_eq!(kinds, expected);
    store.close().await;
    db.cleanup().await;
}

//! The attendance job layer against a real database (both backends): the worker inside `central-api serve` turns a
//! punch ingested over HTTP into an attendance row; manual-log approval, holiday and leave changes recompute the
//! days they touch; the bulk jobs run as `central-api` subcommands and are idempotent.

use std::time::{Duration, Instant};

use central_api::attendance::engine::{Holiday, HolidayKind, SandwichSetting};
use central_api::attendance::jobs::worker;
use central_api::store::attendance::requests::{NewLeave, NewManualLog};
use chrono::Utc;
use protocol::{Encoding, PunchState};
use system_tests::attendance::{add_employee, at, date, ingest, punch, setup_site, snapshot, status_of, store_of};
use system_tests::central::{batch, client, Backend, CentralDb};
use system_tests::on_both_backends;

on_both_backends!(
    a_punch_ingested_over_http_reaches_attendance,
    approving_a_manual_log_changes_the_day,
    holiday_and_leave_changes_recompute_the_day,
    bulk_jobs_run_from_the_command_line,
    shift_changes_and_late_employees_are_recomputed,
);

async fn a_punch_ingested_over_http_reaches_attendance(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("agent-1", "plant-1").await.unwrap();
    let store = store_of(&db, 2).await.unwrap();
    // The site already exists (created by the CLI), so only the shifts and the rule are added here.
    for shift in system_tests::attendance::test_shifts() {
        store.create_shift(&shift.code, &shift).await.unwrap();
    }
    store
        .create_week_off_rule(
            "SUN",
            "Sundays",
            &central_api::attendance::engine::WeekOffRule::weekly(&[chrono::Weekday::Sun]),
        )
        .await
        .unwrap();
    store.add_employee("1001", "Asha", Some("plant-1")).await.unwrap();
    let mut profile = store.employee_profile("1001").await.unwrap().unwrap();
    profile.shift_code = Some("GEN".into());
    profile.week_off_rule = Some("SUN".into());
    store.update_employee_profile(&profile, Utc::now().date_naive()).await.unwrap();

    let central = db
        .serve(&[("CENTRAL_API_ATTENDANCE__SCHEDULER", "false"), ("CENTRAL_API_ATTENDANCE__POLL_INTERVAL_MS", "100")])
        .await
        .unwrap();
    let day = date(3, 2);
    let punches = vec![
        punch("plant-1", "1001", at(day, 9, 2), PunchState::CheckIn),
        punch("plant-1", "1001", at(day, 18, 10), PunchState::CheckOut),
    ];
    let http = client(None);
    let started = Instant::now();
    let response =
        central.post_batch(&http, &token, &batch("agent-1", "plant-1", 1, punches), Encoding::Json).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());

    let deadline = started + Duration::from_secs(15);
    let row = loop {
        let rows = store.attendance(Some("1001"), day, day).await.unwrap();
        if let Some(row) = rows.into_iter().find(|r| r.status.as_deref() == Some("P")) {
            break row;
        }
        assert!(Instant::now() < deadline, "no P row for 1001 on {day} within 15 s of the ingest");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("ingest to attendance row: {:.3} s", started.elapsed().as_secs_f64());
    assert_eq!(row.in_time, Some(at(day, 9, 2)));
    assert_eq!(row.out_time, Some(at(day, 18, 10)));
    assert_eq!(row.total_work_secs, (9 * 3600) + 8 * 60);
    assert!(!row.provisional);
    // The day before (a Sunday) was marked too and is a week-off.
    assert_eq!(status_of(&store, "1001", date(3, 1)).await.unwrap().as_deref(), Some("WO"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.dirty_days().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the worker left marked days behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(central);
    store.close().await;
    db.cleanup().await;
}

async fn approving_a_manual_log_changes_the_day(backend: Backend) {
    let db = CentralDb::new(backend).await;
    let store = store_of(&db, 2).await.unwrap();
    setup_site(&store, "plant-1").await.unwrap();
    add_employee(&store, "2001", "plant-1", "GEN").await.unwrap();
    let day = date(3, 3);
    ingest(&store, "plant-1", 1, vec![punch("plant-1", "2001", at(day, 9, 0), PunchState::CheckIn)]).await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    let row = store.attendance(Some("2001"), day, day).await.unwrap().remove(0);
    assert_eq!(row.status.as_deref(), Some("A"));
    assert!(row.flags.contains("missing_punch"), "{}", row.flags);

    let log = NewManualLog {
        employee_id: "2001".into(),
        local_time: at(day, 18, 0),
        state: PunchState::CheckOut,
        reason: "forgot to punch out".into(),
        requested_by: "supervisor".into(),
    };
    let id = store.request_manual_log(&log).await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    let row = store.attendance(Some("2001"), day, day).await.unwrap().remove(0);
    assert_eq!(row.status.as_deref(), Some("A"), "a pending manual log must not count");
    assert_eq!(row.punches_unapproved, 1);

    store.decide_manual_log(id, true, "manager").await.unwrap();
    assert!(store.decide_manual_log(id, false, "manager").await.is_err(), "a decided log cannot be decided again");
    worker::drain(&store, 100).await.unwrap();
    let row = store.attendance(Some("2001"), day, day).await.unwrap().remove(0);
    assert_eq!(row.status.as_deref(), Some("P"), "{}", row.explanation);
    assert_eq!(row.out_time, Some(at(day, 18, 0)));
    assert!(row.flags.contains("manual_punch"), "{}", row.flags);
    let logs = store.manual_logs("2001", at(day, 0, 0), at(date(3, 4), 0, 0)).await.unwrap();
    assert_eq!(logs[0].decided_by.as_deref(), Some("manager"));
    assert_eq!(store.dirty_days().await.unwrap(), 0);
    store.close().await;
    db.cleanup().await;
}

async fn holiday_and_leave_changes_recompute_the_day(backend: Backend) {
    let db = CentralDb::new(backend).await;
    let store = store_of(&db, 2).await.unwrap();
    setup_site(&store, "plant-1").await.unwrap();
    add_employee(&store, "3001", "plant-1", "GEN").await.unwrap();
    let (tue, wed) = (date(3, 3), date(3, 4));
    // Worked Tuesday, nothing on Wednesday.
    ingest(
        &store,
        "plant-1",
        1,
        vec![
            punch("plant-1", "3001", at(tue, 9, 0), PunchState::CheckIn),
            punch("plant-1", "3001", at(tue, 18, 0), PunchState::CheckOut),
        ],
    )
    .await
    .unwrap();
    central_api::attendance::jobs::bulk::reprocess(
        &store,
        &central_api::attendance::jobs::bulk::Target::All,
        date(3, 1),
        date(3, 7),
        Utc::now(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status_of(&store, "3001", wed).await.unwrap().as_deref(), Some("A"));

    let holiday =
        Holiday { date: wed, name: "Holi".into(), kind: HolidayKind::Public, site: Some("plant-1".parse().unwrap()) };
    let id = store.add_holiday(&holiday).await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(status_of(&store, "3001", wed).await.unwrap().as_deref(), Some("PH"));
    // A holiday of another site changes nothing here.
    store.create_site("plant-2", "Other", "Asia/Kolkata").await.unwrap();
    let other = Holiday {
        date: tue,
        name: "Elsewhere".into(),
        kind: HolidayKind::Public,
        site: Some("plant-2".parse().unwrap()),
    };
    store.add_holiday(&other).await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(status_of(&store, "3001", tue).await.unwrap().as_deref(), Some("P"));

    store.remove_holiday(id).await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(status_of(&store, "3001", wed).await.unwrap().as_deref(), Some("A"));

    let leave = NewLeave {
        employee_id: "3001".into(),
        from: wed,
        to: wed,
        kind: "casual".into(),
        paid: true,
        requested_by: "3001".into(),
    };
    let leave_id = store.request_leave(&leave).await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(status_of(&store, "3001", wed).await.unwrap().as_deref(), Some("A"), "pending leave counts for nothing");
    store.decide_leave(leave_id, true, "manager").await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    let row = store.attendance(Some("3001"), wed, wed).await.unwrap().remove(0);
    assert_eq!(row.status.as_deref(), Some("L"));
    assert_eq!(row.leave_kind.as_deref(), Some("casual"));
    assert_eq!(store.dirty_days().await.unwrap(), 0);
    store.close().await;
    db.cleanup().await;
}

async fn bulk_jobs_run_from_the_command_line(backend: Backend) {
    let db = CentralDb::new(backend).await;
    let store = store_of(&db, 2).await.unwrap();
    setup_site(&store, "plant-1").await.unwrap();
    add_employee(&store, "4001", "plant-1", "GEN").await.unwrap();
    add_employee(&store, "4002", "plant-1", "MD").await.unwrap();
    store.set_site_sandwich("plant-1", SandwichSetting::WeekOffs, Utc::now().date_naive()).await.unwrap();
    // 4001 works Mon-Fri 2-6 March, is absent Saturday 7 and Monday 9: Sunday 8 is sandwiched.
    let mut punches = Vec::new();
    for d in 2..=6 {
        punches.push(punch("plant-1", "4001", at(date(3, d), 9, 0), PunchState::CheckIn));
        punches.push(punch("plant-1", "4001", at(date(3, d), 18, 0), PunchState::CheckOut));
    }
    // 4002 (ManDays) has three slots on the 2nd.
    for (h1, h2) in [(8, 10), (11, 13), (14, 17)] {
        punches.push(punch("plant-1", "4002", at(date(3, 2), h1, 0), PunchState::CheckIn));
        punches.push(punch("plant-1", "4002", at(date(3, 2), h2, 0), PunchState::CheckOut));
    }
    ingest(&store, "plant-1", 1, punches).await.unwrap();

    let out = db.cli(&["reprocess", "--from", "2026-03-01", "--to", "2026-03-10", "--site", "plant-1"]).await.unwrap();
    assert!(out.contains("reprocess: 20 employee-days of 2 employees"), "{out}");
    let sunday = store.attendance(Some("4001"), date(3, 8), date(3, 8)).await.unwrap().remove(0);
    assert_eq!(sunday.status.as_deref(), Some("A"));
    assert_eq!(sunday.sandwich_original.as_deref(), Some("WO"));
    assert_eq!(status_of(&store, "4001", date(3, 1)).await.unwrap().as_deref(), Some("WO"), "no absence before it");
    let md = store.man_days(Some("4002"), date(3, 2), date(3, 2)).await.unwrap();
    assert_eq!(md.len(), 1);
    assert_eq!(md[0].slots.len(), 3);
    assert_eq!(md[0].total_secs, 7 * 3600);
    // (The profile updates also marked today and tomorrow, outside the range: those stay for the worker.)
    let marked = db.scalar("SELECT count(*) FROM attendance_dirty WHERE work_date <= '2026-03-31'").await.unwrap();
    assert_eq!(marked, 0, "reprocess released the marked days it wrote");
    let first = snapshot(&store, date(3, 1), date(3, 10)).await.unwrap();
    db.cli(&["reprocess", "--from", "2026-03-01", "--to", "2026-03-10"]).await.unwrap();
    assert_eq!(snapshot(&store, date(3, 1), date(3, 10)).await.unwrap(), first, "reprocess is idempotent");

    let out =
        db.cli(&["revert-sandwich", "--from", "2026-03-08", "--to", "2026-03-08", "--employee", "4001"]).await.unwrap();
    assert!(out.contains("1 employee-days"), "{out}");
    let sunday = store.attendance(Some("4001"), date(3, 8), date(3, 8)).await.unwrap().remove(0);
    assert_eq!((sunday.status.as_deref(), sunday.sandwich_original), (Some("WO"), None));
    db.cli(&["apply-sandwich", "--from", "2026-03-01", "--to", "2026-03-10", "--site", "plant-1"]).await.unwrap();
    assert_eq!(snapshot(&store, date(3, 1), date(3, 10)).await.unwrap(), first, "apply after revert restores the rows");

    // Close the day for a site nobody punched at: the days whose window closed become A rows (absentees).
    store.create_site("plant-9", "Quiet", "Asia/Kolkata").await.unwrap();
    add_employee(&store, "9001", "plant-9", "GEN").await.unwrap();
    // 2026-03-05 12:00 UTC is 17:30 in Kolkata: the first run looks back two days (to the 3rd, 17:30).
    let out = db.cli(&["close-day", "--site", "plant-9", "--now", "2026-03-05T12:00:00Z"]).await.unwrap();
    assert!(out.contains("employee-days"), "{out}");
    let rows = store.attendance(Some("9001"), date(3, 1), date(3, 6)).await.unwrap();
    let closed: Vec<_> = rows.iter().map(|r| (r.work_date, r.status.clone())).collect();
    assert_eq!(closed, vec![(date(3, 3), Some("A".to_owned())), (date(3, 4), Some("A".to_owned()))]);
    let out = db.cli(&["close-day", "--site", "plant-9", "--now", "2026-03-05T12:00:00Z"]).await.unwrap();
    assert!(out.contains("close-day: 0 employee-days"), "a second run at the same time does nothing: {out}");
    let out = db.cli(&["close-day", "--site", "plant-9", "--now", "2026-03-06T12:00:00Z"]).await.unwrap();
    assert!(out.contains("close-day: 1 employee-days"), "the next run closes the next day: {out}");

    let err = db.cli(&["reprocess", "--from", "2026-03-10", "--to", "2026-03-01"]).await.unwrap_err().to_string();
    assert!(err.contains("ends before it starts"), "{err}");
    store.close().await;
    db.cleanup().await;
}

async fn shift_changes_and_late_employees_are_recomputed(backend: Backend) {
    let db = CentralDb::new(backend).await;
    let store = store_of(&db, 2).await.unwrap();
    setup_site(&store, "plant-1").await.unwrap();
    add_employee(&store, "6001", "plant-1", "GEN").await.unwrap();
    let day = date(3, 3);
    let five_hours = vec![
        punch("plant-1", "6001", at(day, 9, 0), PunchState::CheckIn),
        punch("plant-1", "6001", at(day, 14, 0), PunchState::CheckOut),
    ];
    ingest(&store, "plant-1", 1, five_hours).await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(status_of(&store, "6001", day).await.unwrap().as_deref(), Some("HD"));

    // Lowering the half-day ceiling under 5 h, effective from March, makes the day P.
    let mut shift = store.shifts().await.unwrap().into_iter().find(|s| s.shift.code == "GEN").unwrap().shift;
    shift.max_work_for_half_day = chrono::Duration::minutes(270);
    store.update_shift("General", &shift, date(3, 1)).await.unwrap();
    worker::drain(&store, 500).await.unwrap();
    assert_eq!(status_of(&store, "6001", day).await.unwrap().as_deref(), Some("P"));
    let mut bad = shift.clone();
    bad.min_half_day = chrono::Duration::hours(8);
    let err = store.update_shift("General", &bad, date(3, 1)).await.unwrap_err().to_string();
    assert!(err.contains("min_half_day"), "{err}");

    // Punches of a PIN nobody registered yet keep their marks until the employee is configured.
    let unknown = vec![
        punch("plant-1", "6002", at(day, 9, 0), PunchState::CheckIn),
        punch("plant-1", "6002", at(day, 18, 0), PunchState::CheckOut),
    ];
    ingest(&store, "plant-1", 10, unknown).await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    assert!(store.attendance(Some("6002"), day, day).await.unwrap().is_empty());
    let waiting = db.scalar("SELECT count(*) FROM attendance_dirty WHERE employee_id = '6002'").await.unwrap();
    // The day, the day before (a night shift's morning punch) and, for the evening punch, the day after (a midnight
    // shift's check-in).
    assert_eq!(waiting, 3, "the marks of an unknown PIN wait");
    add_employee(&store, "6002", "plant-1", "GEN").await.unwrap();
    worker::drain(&store, 100).await.unwrap();
    assert_eq!(status_of(&store, "6002", day).await.unwrap().as_deref(), Some("P"));
    assert_eq!(store.dirty_days().await.unwrap(), 0);
    store.close().await;
    db.cleanup().await;
}

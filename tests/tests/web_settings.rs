//! The dashboard pages of issue 14, spoken to as a browser would: the shift form (grouped, every field with its
//! default and one sentence), sites, tracked jobs with their progress, the audit log with filters, the exception
//! reports, ManDays slots on the muster roll and the day page, and the night shift on the dashboard; each scoped by
//! site and role.

use std::time::{Duration, Instant};

use chrono::Weekday;
use protocol::PunchState;
use reqwest::{Method, StatusCode};
use system_tests::admin::{first, AdminFixture};
use system_tests::attendance::{add_employee, at, ingest, punch};
use system_tests::central::Backend;
use system_tests::on_both_backends;
use system_tests::web_client::Web;

on_both_backends!(shift_form_and_sites, jobs_audit_and_reports_pages);

async fn shift_form_and_sites(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let root = Web::login(&f, "root").await;
    let admin = Web::login(&f, "adminA").await;
    let viewer = Web::login(&f, "viewerA").await;

    // The form: grouped, every field, the engine's defaults filled in, one sentence under each.
    let page = root.get("/shifts/new").await;
    assert_eq!(page.status, StatusCode::OK);
    for legend in ["Hours", "Late coming and early going", "Day status", "Overtime", "Lunch break", "Punches"] {
        assert!(page.body.contains(&format!("<legend>{legend}</legend>")), "{legend}");
    }
    for (name, default) in [
        ("grace_late_in_mins", "0"),
        ("min_half_day_mins", "240"),
        ("max_work_for_half_day_mins", "360"),
        ("overtime_threshold_before_shift_mins", "30"),
        ("overtime_threshold_after_shift_mins", "30"),
        ("lunch_break_duration_mins", "30"),
        ("check_in_window_before_start_mins", "120"),
        ("check_out_window_after_end_mins", "240"),
        ("debounce_secs", "60"),
    ] {
        assert!(
            page.body.contains(&format!(r#"id="{name}" name="{name}" type="number" value="{default}""#)),
            "{name} = {default}"
        );
        assert!(page.body.contains(&format!(r#"id="{name}-help""#)), "{name} has its sentence");
    }
    assert!(page.body.contains(r#"<option value="first_last" selected>"#), "pairing default");
    assert!(page.body.contains(r#"<option value="absent" selected>"#), "single punch default");
    assert_eq!(admin.get("/shifts/new").await.status, StatusCode::FORBIDDEN, "shifts are root's");

    let fields = vec![
        ("code", "LUNCH"),
        ("name", "Lunch"),
        ("start", "09:00"),
        ("end", "18:00"),
        ("grace_late_in_mins", "5"),
        ("grace_early_out_mins", "5"),
        ("min_half_day_mins", "240"),
        ("max_work_for_half_day_mins", "360"),
        ("overtime_threshold_before_shift_mins", ""),
        ("overtime_threshold_after_shift_mins", "45"),
        ("deduct_lunch_break", "on"),
        ("lunch_break_start", "17:45"),
        ("lunch_break_duration_mins", "60"),
        ("check_in_window_before_start_mins", "60"),
        ("check_out_window_after_end_mins", "120"),
        ("pairing", "pairs"),
        ("debounce_secs", "30"),
        ("single_punch", "half_day"),
    ];
    let refused = root.post("/shifts/new", &fields).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains(r#"data-testid="error-lunch_break_start""#), "{}", refused.body);
    let mut fields = fields;
    fields.retain(|(k, _)| *k != "lunch_break_start");
    fields.push(("lunch_break_start", "13:00"));
    let saved = root.post("/shifts/new", &fields).await;
    assert_eq!((saved.status, saved.location.as_deref()), (StatusCode::SEE_OTHER, Some("/shifts")), "{}", saved.body);
    let token = f.token("viewerA").await.unwrap();
    let (_, shift) = f.call(Method::GET, "/api/v1/shifts/LUNCH", &token, None).await.unwrap();
    assert_eq!(
        (shift["overtime_threshold_before_shift_mins"].clone(), shift["overtime_threshold_after_shift_mins"].as_i64()),
        (serde_json::Value::Null, Some(45))
    );
    assert_eq!(
        (shift["deduct_lunch_break"].as_bool(), shift["lunch_break_start"].as_str(), shift["pairing"].as_str()),
        (Some(true), Some("13:00:00"), Some("pairs"))
    );
    assert_eq!((shift["debounce_secs"].as_i64(), shift["single_punch"].as_str()), (Some(30), Some("half_day")));
    let list = viewer.get("/shifts").await;
    assert!(list.body.contains("60 min from 13:00"), "the list shows every setting");

    // Sites: every setting; a site's admin edits it, another site is not found, a viewer is refused.
    let sites = admin.get("/sites").await;
    assert!(sites.body.contains(r#"data-site="A""#) && !sites.body.contains(r#"data-site="B""#));
    assert_eq!(admin.get("/sites/B/edit").await.status, StatusCode::NOT_FOUND);
    assert_eq!(viewer.get("/sites/A/edit").await.status, StatusCode::FORBIDDEN);
    let form =
        [("name", "Site A"), ("time_zone", "Mars/Base"), ("sandwich", "week_offs"), ("default_week_off_rule", "SUN")];
    let refused = admin.post("/sites/A/edit", &form).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains(r#"data-testid="error-time_zone""#), "{}", refused.body);
    let form = [
        ("name", "Plant A"),
        ("time_zone", "Asia/Kolkata"),
        ("sandwich", "week_offs"),
        ("default_week_off_rule", "SUN"),
    ];
    let saved = admin.post("/sites/A/edit", &form).await;
    assert_eq!((saved.status, saved.location.as_deref()), (StatusCode::SEE_OTHER, Some("/sites")), "{}", saved.body);
    let (_, site) = f.call(Method::GET, "/api/v1/sites/A", &token, None).await.unwrap();
    assert_eq!(
        (site["name"].as_str(), site["sandwich"].as_str(), site["default_week_off_rule"].as_str()),
        (Some("Plant A"), Some("week_offs"), Some("SUN"))
    );
    let refused = viewer.post("/sites/A/edit", &form).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    f.cleanup().await;
}

async fn jobs_audit_and_reports_pages(backend: Backend) {
    let f = AdminFixture::new_with_env(backend, &[("CENTRAL_API_JOBS__POLL_INTERVAL_MS", "100")]).await.unwrap();
    let root = Web::login(&f, "root").await;
    let admin = Web::login(&f, "adminA").await;
    let viewer = Web::login(&f, "viewerA").await;
    let admin_b = Web::login(&f, "adminB").await;
    let from = f.month.to_string();
    let to = (f.month + chrono::Duration::days(27)).to_string();

    // Jobs: started from the page, followed with its progress.
    let refused =
        admin.post("/jobs", &[("kind", "reprocess"), ("from", "yesterday"), ("to", &to), ("site", "A")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains(r#"data-testid="error-from""#), "{}", refused.body);
    let started = admin.post("/jobs", &[("kind", "reprocess"), ("from", &from), ("to", &to), ("site", "A")]).await;
    assert_eq!((started.status, started.location.as_deref()), (StatusCode::SEE_OTHER, Some("/jobs")));
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = viewer.get("/jobs").await;
        assert_eq!(page.status, StatusCode::OK);
        if page.body.contains(r#"data-testid="job-status-1">done"#) {
            break page;
        }
        assert!(Instant::now() < deadline, "{}", page.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(page.body.contains(r#"<progress value="2" max="2""#), "2 of 2 employees: {}", page.body);
    assert!(!page.body.contains(r#"data-testid="job-form""#), "a viewer starts no job");
    assert_eq!(viewer.post("/jobs", &[("kind", "close_day"), ("site", "A")]).await.status, StatusCode::FORBIDDEN);
    assert!(!admin_b.get("/jobs").await.body.contains(r#"data-job="1""#), "B's admin does not see A's job");
    assert!(admin.get("/jobs").await.body.contains(r#"data-testid="job-form""#));

    // Audit: root sees it all, filters work, a viewer is refused, B's admin sees none of A's.
    let audit = root.get("/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert!(audit.body.contains("adminA") && audit.body.contains("job 1"), "{}", audit.body);
    let filtered = root.get("/audit?resource=site").await;
    assert!(!filtered.body.contains("job 1"));
    assert_eq!(viewer.get("/audit").await.status, StatusCode::FORBIDDEN);
    assert!(admin_b.get("/audit").await.body.contains(r#"data-testid="no-audit""#));

    // Reports: the late coming table of A's range, with its downloads.
    let mon = first(f.month, Weekday::Mon);
    let reports = viewer.get(&format!("/reports?kind=late&site=A&from={from}&to={to}")).await;
    assert_eq!(reports.status, StatusCode::OK);
    assert!(reports.body.contains("<td>Employee 101</td>") && reports.body.contains("<td>20</td>"), "{}", reports.body);
    assert!(reports.body.contains("/api/v1/reports/late?site=A"));
    assert_eq!(
        admin_b.get(&format!("/reports?kind=late&site=A&from={from}&to={to}")).await.status,
        StatusCode::NOT_FOUND
    );

    // ManDays slots on the day page and the muster roll.
    add_employee(&f.store, "103", "A", "MD").await.unwrap();
    ingest(
        &f.store,
        "A",
        300,
        vec![
            punch("A", "103", at(mon, 8, 0), PunchState::CheckIn),
            punch("A", "103", at(mon, 12, 0), PunchState::CheckOut),
            punch("A", "103", at(mon, 12, 30), PunchState::CheckIn),
            punch("A", "103", at(mon, 17, 0), PunchState::CheckOut),
        ],
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let day = loop {
        central_api::attendance::jobs::worker::drain(&f.store, 10_000).await.unwrap();
        let day = viewer.get(&format!("/employees/103/day/{mon}")).await;
        if day.body.contains(r#"data-testid="day-man-days""#) {
            break day;
        }
        assert!(Instant::now() < deadline, "{}", day.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(day.body.contains("<td>12:30</td><td>17:00</td>"), "{}", day.body);
    let month = f.month.format("%Y-%m").to_string();
    let muster = viewer.get(&format!("/muster?site=A&month={month}&man_days=on")).await;
    assert!(muster.body.contains(&format!(r#"<td data-date="{mon}">08:00-12:00</td>"#)), "{}", muster.body);
    assert!(muster.body.contains("man_days=true"), "the downloads keep the option");

    // The dashboard shows yesterday's overnight shift under its own day (the fixture has a NIGHT shift).
    let dashboard = viewer.get("/dashboard").await;
    assert!(
        dashboard.body.contains(r#"data-testid="night-shift""#)
            && dashboard.body.contains(r#"data-testid="count-not-yet-due""#)
    );
    f.cleanup().await;
}

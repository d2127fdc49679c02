//! Every shift variant, the sandwich rule and the backfills, set up through the public interfaces alone (the admin
//! API, punches through the agent ingest endpoint, `create-admin` on the command line) and read back through the
//! API, on both backends. Every expected figure is computed by hand in the comments.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};
use protocol::{Direction, Encoding, Punch, PunchSource, PunchState, VerifyMode};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{first, AdminFixture, Auth};
use system_tests::attendance::at;
use system_tests::central::{batch, Backend};
use system_tests::on_both_backends;

on_both_backends!(shift_variants_sandwich_and_backfills);

async fn call(f: &AdminFixture, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> (StatusCode, Value) {
    f.call(method, path, auth, body).await.unwrap()
}

async fn created(f: &AdminFixture, path: &str, auth: &Auth, body: Value) -> Value {
    let (s, answer) = call(f, Method::POST, path, auth, Some(body.clone())).await;
    assert!(s == StatusCode::CREATED || s == StatusCode::ACCEPTED, "POST {path} {body}: {s} {answer}");
    answer
}

/// A punch of `pin` on device DEV-S at local time `when`.
fn punch(pin: &str, when: NaiveDateTime, state: PunchState) -> Punch {
    Punch::from_device(
        "S".parse().unwrap(),
        "DEV-S".parse().unwrap(),
        pin.parse().unwrap(),
        when,
        chrono_tz::Asia::Kolkata,
        state,
        VerifyMode::Fingerprint,
        0,
        PunchSource::ZkPull,
        Direction::Both,
    )
}

fn hms(day: NaiveDate, h: u32, m: u32, s: u32) -> NaiveDateTime {
    day.and_hms_opt(h, m, s).unwrap()
}

/// The attendance row of `employee` on `day`, once `done` holds (the service's worker computes in the background).
async fn row_until(
    f: &AdminFixture,
    auth: &Auth,
    employee: &str,
    day: NaiveDate,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/v1/attendance?employee={employee}&from={day}&to={day}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (s, page) = call(f, Method::GET, &path, auth, None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let row = page["items"][0].clone();
        if !row.is_null() && done(&row) {
            return row;
        }
        assert!(std::time::Instant::now() < deadline, "{employee} on {day} never got there: {row}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Every row of `employee` in `from..=to`, by date.
async fn rows(f: &AdminFixture, auth: &Auth, employee: &str, from: NaiveDate, to: NaiveDate) -> Vec<Value> {
    let path = format!("/api/v1/attendance?employee={employee}&from={from}&to={to}&limit=1000");
    let (_, page) = call(f, Method::GET, &path, auth, None).await;
    page["items"].as_array().unwrap().clone()
}

fn flags(row: &Value) -> Vec<String> {
    row["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect()
}

async fn job_done(f: &AdminFixture, auth: &Auth, body: Value) -> Value {
    let job = created(f, "/api/v1/jobs", auth, body).await;
    let path = format!("/api/v1/jobs/{}", job["id"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, job) = call(f, Method::GET, &path, auth, None).await;
        if job["status"] == "done" {
            return job;
        }
        assert!(job["status"] != "failed", "{job}");
        assert!(std::time::Instant::now() < deadline, "{job}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn shift_variants_sandwich_and_backfills(backend: Backend) {
    let f = AdminFixture::blank(backend, &[("CENTRAL_API_JOBS__POLL_INTERVAL_MS", "100")]).await.unwrap();
    let root = f.token("root").await.unwrap();
    for site in ["S", "T"] {
        created(
            &f,
            "/api/v1/sites",
            &root,
            json!({"site_id": site, "name": format!("Plant {site}"), "time_zone": "Asia/Kolkata"}),
        )
        .await;
    }
    f.create_admin("adminS", "admin", Some("S")).await.unwrap();
    f.create_admin("viewerS", "viewer", Some("S")).await.unwrap();
    f.create_admin("adminT", "admin", Some("T")).await.unwrap();
    let admin = f.token("adminS").await.unwrap();
    let viewer = f.token("viewerS").await.unwrap();
    let admin_t = f.token("adminT").await.unwrap();
    for (code, spec) in [("SUN", "sun"), ("SUN2", "sun")] {
        created(&f, "/api/v1/week-off-rules", &root, json!({"code": code, "name": code, "spec": spec})).await;
    }

    // Shifts, every variant, through the API.
    let lunch = created(
        &f,
        "/api/v1/shifts",
        &root,
        json!({"code": "LUNCH", "name": "Lunch deducted",
        "start": "09:00:00", "end": "18:00:00", "deduct_lunch_break": true, "lunch_break_start": "13:00:00",
        "lunch_break_duration_mins": 60, "overtime_threshold_before_shift_mins": null,
        "overtime_threshold_after_shift_mins": 30}),
    )
    .await;
    assert_eq!(lunch["overtime_threshold_before_shift_mins"], Value::Null, "{lunch}");
    assert_eq!(
        (lunch["lunch_break_start"].as_str(), lunch["lunch_break_duration_mins"].as_i64()),
        (Some("13:00:00"), Some(60))
    );
    created(
        &f,
        "/api/v1/shifts",
        &root,
        json!({"code": "MD", "name": "ManDays", "start": "08:00:00",
        "end": "17:00:00", "pairing": "mandays", "debounce_secs": 60}),
    )
    .await;
    created(
        &f,
        "/api/v1/shifts",
        &root,
        json!({"code": "BYSTATE", "name": "By device state", "start": "09:00:00",
        "end": "18:00:00", "pairing": "by_state"}),
    )
    .await;
    let night = created(
        &f,
        "/api/v1/shifts",
        &root,
        json!({"code": "NIGHT", "name": "Night", "start": "22:00:00",
        "end": "06:00:00", "overtime_threshold_before_shift_mins": 30, "overtime_threshold_after_shift_mins": 30}),
    )
    .await;
    assert_eq!(night["overnight"], true);
    created(
        &f,
        "/api/v1/shifts",
        &root,
        json!({"code": "OT", "name": "Overtime thresholds", "start": "09:00:00",
        "end": "18:00:00", "overtime_threshold_before_shift_mins": 15, "overtime_threshold_after_shift_mins": 60}),
    )
    .await;
    created(
        &f,
        "/api/v1/shifts",
        &root,
        json!({"code": "GEN", "name": "General", "start": "09:00:00", "end": "18:00:00"}),
    )
    .await;
    let (s, shifts) = call(&f, Method::GET, "/api/v1/shifts", &viewer, None).await;
    assert_eq!(s, StatusCode::OK);
    let md = shifts.as_array().unwrap().iter().find(|s| s["code"] == "MD").unwrap();
    assert_eq!(
        (md["pairing"].as_str(), md["debounce_secs"].as_i64(), md["single_punch"].as_str()),
        (Some("mandays"), Some(60), Some("absent"))
    );
    assert_eq!(md["check_in_window_before_start_mins"], 120, "the engine's default, shown");

    // A bad value names the API field first; a shift is global, so only root changes it.
    let (s, body) = call(
        &f,
        Method::POST,
        "/api/v1/shifts",
        &root,
        Some(json!({"code": "BAD", "name": "Bad",
        "start": "09:00:00", "end": "18:00:00", "grace_late_in_mins": 600})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().starts_with("grace_late_in_mins: 600 minutes"), "{body}");
    for who in [&admin, &viewer] {
        let (s, _) = call(&f, Method::PUT, "/api/v1/shifts/LUNCH", who, Some(json!({"grace_late_in_mins": 5}))).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }

    // Employees joined on the first of last month; an unknown shift is refused naming the field, creating nothing.
    let month = f.month;
    let (s, body) = call(
        &f,
        Method::POST,
        "/api/v1/employees",
        &admin,
        Some(json!({"employee_id": "1001",
        "name": "E1001", "site_id": "S", "shift_code": "NOPE", "week_off_rule": "SUN", "date_of_joining": month})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().starts_with("shift_code: "), "{body}");
    let (s, body) = call(
        &f,
        Method::POST,
        "/api/v1/employees",
        &admin,
        Some(json!({"employee_id": "1001",
        "name": "E1001", "site_id": "S", "shift_code": "LUNCH", "week_off_rule": "NOPE"})),
    )
    .await;
    assert!(s == StatusCode::BAD_REQUEST && body["message"].as_str().unwrap().starts_with("week_off_rule: "), "{body}");
    let (s, _) = call(&f, Method::GET, "/api/v1/employees/1001", &admin, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no half-created employee");
    for (id, shift, rule) in [
        ("1001", "LUNCH", Some("SUN")),
        ("1002", "MD", Some("SUN")),
        ("1003", "BYSTATE", Some("SUN")),
        ("1004", "NIGHT", Some("SUN")),
        ("1005", "OT", Some("SUN")),
        ("1006", "GEN", Some("SUN")),
        ("1007", "GEN", Some("SUN")),
        ("1008", "GEN", Some("SUN2")),
        ("1009", "GEN", None),
    ] {
        created(
            &f,
            "/api/v1/employees",
            &admin,
            json!({"employee_id": id, "name": format!("E{id}"), "site_id": "S",
            "department": "Plant", "shift_code": shift, "week_off_rule": rule, "date_of_joining": month}),
        )
        .await;
    }

    // Punches from a registered device, through the agent ingest endpoint.
    let agent = created(&f, "/api/v1/agents", &admin, json!({"agent_id": "agent-s", "site_id": "S"})).await;
    let token = agent["token"].as_str().unwrap().to_owned();
    created(
        &f,
        "/api/v1/devices",
        &admin,
        json!({"serial": "DEV-S", "site_id": "S", "name": "Gate", "kind": "zk-tcp", "ip": "10.0.0.5"}),
    )
    .await;
    let mon = first(month, Weekday::Mon);
    let tue = mon + Duration::days(1);
    let sun2 = first(month, Weekday::Sun) + Duration::days(7);
    let (sat, mon2) = (sun2 - Duration::days(1), sun2 + Duration::days(1));
    use PunchState::{BreakIn, BreakOut, CheckIn, CheckOut};
    let punches = vec![
        punch("1001", at(mon, 8, 30), CheckIn),
        punch("1001", at(mon, 18, 45), CheckOut),
        punch("1001", at(tue, 9, 10), CheckIn),
        punch("1001", at(tue, 13, 30), CheckOut),
        punch("1002", at(mon, 8, 0), CheckIn),
        punch("1002", at(mon, 10, 0), CheckOut),
        punch("1002", hms(mon, 10, 0, 30), CheckOut),
        punch("1002", at(mon, 10, 30), CheckIn),
        punch("1002", at(mon, 12, 30), CheckOut),
        punch("1002", at(mon, 13, 30), CheckIn),
        punch("1002", at(mon, 17, 0), CheckOut),
        punch("1003", at(mon, 9, 0), CheckIn),
        punch("1003", at(mon, 13, 0), BreakOut),
        punch("1003", at(mon, 14, 0), BreakIn),
        punch("1003", at(mon, 18, 0), CheckOut),
        punch("1003", at(tue, 9, 0), CheckIn),
        punch("1003", at(tue, 9, 5), CheckIn),
        punch("1003", at(tue, 18, 0), CheckOut),
        punch("1004", at(mon, 21, 0), CheckIn),
        punch("1004", at(tue, 7, 15), CheckOut),
        punch("1005", at(mon, 8, 40), CheckIn),
        punch("1005", at(mon, 18, 50), CheckOut),
        punch("1005", at(tue, 8, 50), CheckIn),
        punch("1005", at(tue, 19, 30), CheckOut),
        punch("1007", at(sat, 9, 0), CheckIn),
        punch("1007", at(sat, 18, 0), CheckOut),
    ];
    let response =
        f.central.post_batch(&f.http, &token, &batch("agent-s", "S", 1, punches), Encoding::Json).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());

    // Lunch deducted (13:00 for 60 min), early arrival never overtime, late stay over 30 min is.
    // Mon 08:30-18:45 = 615 min - 60 lunch = 555 min = 33300 s; overtime 18:45 - 18:00 = 45 min = 2700 s.
    let r = row_until(&f, &viewer, "1001", mon, |r| r["status"] == "P").await;
    assert_eq!(
        (r["in_time"].as_str(), r["out_time"].as_str()),
        (Some(&*format!("{mon}T08:30:00")), Some(&*format!("{mon}T18:45:00")))
    );
    assert_eq!((r["total_work_secs"].as_i64(), r["lunch_deducted_secs"].as_i64()), (Some(33_300), Some(3_600)), "{r}");
    assert_eq!((r["overtime_secs"].as_i64(), r["late_by_secs"].as_i64()), (Some(2_700), Some(0)), "{r}");
    assert_eq!(r["punches"]["counted"], 2);
    assert!(r["explanation"].as_str().unwrap().len() > 20, "{r}");
    assert_eq!(r["provisional"], false);
    // Tue 09:10-13:30 = 260 min, 30 of them inside the break: 230 min = 13800 s < 240 min: absent; 10 min late,
    // 270 min early (16200 s).
    let r = row_until(&f, &viewer, "1001", tue, |r| r["status"].is_string()).await;
    assert_eq!(
        (r["status"].as_str(), r["total_work_secs"].as_i64(), r["lunch_deducted_secs"].as_i64()),
        (Some("A"), Some(13_800), Some(1_800)),
        "{r}"
    );
    assert_eq!((r["late_by_secs"].as_i64(), r["early_exit_by_secs"].as_i64()), (Some(600), Some(16_200)), "{r}");

    // ManDays: the 10:00:30 double tap collapses; slots 08:00-10:00, 10:30-12:30, 13:30-17:00 = 2 h + 2 h + 3.5 h.
    let r = row_until(&f, &viewer, "1002", mon, |r| r["status"] == "P").await;
    assert_eq!(r["total_work_secs"], 27_000, "{r}");
    assert_eq!((r["punches"]["counted"].as_i64(), r["punches"]["collapsed"].as_i64()), (Some(6), Some(1)), "{r}");
    let (s, page) = call(&f, Method::GET, &format!("/api/v1/man-days?site=S&from={mon}&to={mon}"), &viewer, None).await;
    assert_eq!(s, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the ManDays shift has slots: {page}");
    let md = &items[0];
    assert_eq!(
        (md["employee_id"].as_str(), md["total_secs"].as_i64(), md["status"].as_str()),
        (Some("1002"), Some(27_000), Some("P"))
    );
    let slots: Vec<(String, String, i64)> = md["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["in_time"].as_str().unwrap()[11..16].to_owned(),
                s["out_time"].as_str().unwrap()[11..16].to_owned(),
                s["work_secs"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        slots,
        [
            ("08:00".into(), "10:00".into(), 7_200),
            ("10:30".into(), "12:30".into(), 7_200),
            ("13:30".into(), "17:00".into(), 12_600)
        ]
    );
    let (s, _) = call(&f, Method::GET, "/api/v1/man-days?site=S", &admin_t, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "T's admin does not see S");
    let (_, page) = call(&f, Method::GET, &format!("/api/v1/man-days?from={month}"), &admin_t, None).await;
    assert_eq!(page["items"], json!([]));

    // By device state: the 13:00-14:00 break is not work: 4 h + 4 h. A second check-in while in is unmatched.
    let r = row_until(&f, &viewer, "1003", mon, |r| r["status"] == "P").await;
    assert_eq!((r["total_work_secs"].as_i64(), r["punches"]["unmatched"].as_i64()), (Some(28_800), Some(0)), "{r}");
    let r = row_until(&f, &viewer, "1003", tue, |r| r["status"] == "P").await;
    assert_eq!((r["total_work_secs"].as_i64(), r["punches"]["unmatched"].as_i64()), (Some(32_400), Some(1)), "{r}");
    assert!(flags(&r).contains(&"unmatched_punch".to_owned()), "{r}");

    // Overnight, dated by the start: Mon 21:00 to Tue 07:15 = 615 min = 36900 s; overtime 60 min before (over 30)
    // + 75 min after (over 30) = 8100 s. Tuesday has no punch of its own: absent.
    let r = row_until(&f, &viewer, "1004", mon, |r| r["status"] == "P").await;
    assert_eq!((r["total_work_secs"].as_i64(), r["overtime_secs"].as_i64()), (Some(36_900), Some(8_100)), "{r}");
    assert_eq!(r["out_time"], format!("{tue}T07:15:00"));
    row_until(&f, &viewer, "1004", tue, |r| r["status"] == "A").await;

    // Overtime thresholds 15 before, 60 after: Mon 20 min early counts (1200 s), 50 min late does not; Tue 10 min
    // early does not, 90 min late does (5400 s).
    let r = row_until(&f, &viewer, "1005", mon, |r| r["status"] == "P").await;
    assert_eq!((r["overtime_secs"].as_i64(), r["total_work_secs"].as_i64()), (Some(1_200), Some(36_600)), "{r}");
    let r = row_until(&f, &viewer, "1005", tue, |r| r["status"] == "P").await;
    assert_eq!(r["overtime_secs"], 5_400, "{r}");

    // Backfill: 1006 never punched; every day since joining has a row without any reprocess: A, Sundays WO.
    let yesterday = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Kolkata).date_naive() - Duration::days(1);
    let last = (month + Duration::days(40)).with_day(1).unwrap() - Duration::days(1);
    row_until(&f, &viewer, "1006", last, |r| r["status"].is_string()).await;
    let all = rows(&f, &viewer, "1006", month, last).await;
    assert_eq!(all.len() as i64, (last - month).num_days() + 1, "one row per day of the month");
    for r in &all {
        let date: NaiveDate = r["work_date"].as_str().unwrap().parse().unwrap();
        let expected = if date.weekday() == Weekday::Sun { "WO" } else { "A" };
        assert_eq!(r["status"], expected, "{r}");
    }
    assert!(last < yesterday);

    // A holiday added for a past day: that day becomes PH without a reprocess.
    let wed = first(month, Weekday::Wed);
    let holiday = created(
        &f,
        "/api/v1/holidays",
        &admin,
        json!({"date": wed, "name": "Founders' day", "kind": "public", "site_id": "S"}),
    )
    .await;
    let r = row_until(&f, &viewer, "1006", wed, |r| r["status"] == "PH").await;
    assert_eq!(r["day_kind"], "holiday");

    // The sandwich rule, switched on for S from the first of the month through the site's settings: 1006's second
    // Sunday lies between two absences and becomes A, its WO kept; 1007 worked the Saturday before, so theirs stays.
    let (s, _) = call(&f, Method::PUT, "/api/v1/sites/S", &viewer, Some(json!({"sandwich": "week_offs"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&f, Method::PUT, "/api/v1/sites/S", &admin_t, Some(json!({"sandwich": "week_offs"}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = call(&f, Method::PUT, "/api/v1/sites/S", &admin, Some(json!({"sandwich": "sometimes"}))).await;
    assert!(s == StatusCode::BAD_REQUEST && body["message"].as_str().unwrap().starts_with("sandwich: "), "{body}");
    let (s, site) = call(
        &f,
        Method::PUT,
        "/api/v1/sites/S",
        &admin,
        Some(json!({"sandwich": "week_offs", "effective_from": month})),
    )
    .await;
    assert_eq!((s, site["sandwich"].as_str()), (StatusCode::OK, Some("week_offs")), "{site}");
    let (s, _) = call(&f, Method::GET, "/api/v1/sites/S", &admin_t, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, site) = call(&f, Method::GET, "/api/v1/sites/S", &viewer, None).await;
    assert_eq!((site["sandwich"].as_str(), site["time_zone"].as_str()), (Some("week_offs"), Some("Asia/Kolkata")));
    let r = row_until(&f, &viewer, "1006", sun2, |r| r["status"] == "A").await;
    assert!(flags(&r).contains(&"sandwich".to_owned()), "{r}");
    assert_eq!(
        (r["sandwich_original"].as_str(), r["sandwich_before"].as_str(), r["sandwich_after"].as_str()),
        (Some("WO"), Some(&*sat.to_string()), Some(&*mon2.to_string())),
        "{r}"
    );
    let r = row_until(&f, &viewer, "1007", sun2, |r| r["status"].is_string()).await;
    assert_eq!(r["status"], "WO", "the Saturday before was worked: {r}");
    assert_eq!(row_until(&f, &viewer, "1007", sat, |r| r["status"].is_string()).await["status"], "P");

    // Revert and apply as tracked jobs.
    let job = job_done(&f, &admin, json!({"kind": "revert_sandwich", "site": "S", "from": month, "to": last})).await;
    assert_eq!(job["result"]["employees"], 9, "{job}");
    let r = rows(&f, &viewer, "1006", sun2, sun2).await.remove(0);
    assert_eq!((r["status"].as_str(), r["sandwich_original"].as_str()), (Some("WO"), None), "{r}");
    job_done(&f, &admin, json!({"kind": "apply_sandwich", "site": "S", "from": month, "to": last})).await;
    assert_eq!(rows(&f, &viewer, "1006", sun2, sun2).await[0]["status"], "A");

    // Off again from the first of the month: the Sunday is WO again.
    call(&f, Method::PUT, "/api/v1/sites/S", &admin, Some(json!({"sandwich": "off", "effective_from": month}))).await;
    row_until(&f, &viewer, "1006", sun2, |r| r["status"] == "WO").await;

    // A week-off rule changed from the first of the month: 1008's Saturdays become week-offs.
    let (s, _) = call(
        &f,
        Method::PUT,
        "/api/v1/week-off-rules/SUN2",
        &root,
        Some(json!({"name": "Weekend", "spec": "sun,sat", "effective_from": month})),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    row_until(&f, &viewer, "1008", sat, |r| r["status"] == "WO").await;
    assert_eq!(rows(&f, &viewer, "1006", sat, sat).await[0]["status"], "A", "SUN is unchanged");

    // A shift changed from the first of the month: 15 minutes of grace, 1001's 09:10 is no longer late.
    let (s, shift) = call(
        &f,
        Method::PUT,
        "/api/v1/shifts/LUNCH",
        &root,
        Some(json!({"grace_late_in_mins": 15, "effective_from": month})),
    )
    .await;
    assert_eq!(
        (s, shift["grace_late_in_mins"].as_i64(), shift["lunch_break_duration_mins"].as_i64()),
        (StatusCode::OK, Some(15), Some(60)),
        "the rest kept: {shift}"
    );
    row_until(&f, &viewer, "1001", tue, |r| r["late_by_secs"] == 0).await;

    // The site's default week-off rule applies to 1009, who has none: their Sundays were A, now WO.
    assert_eq!(rows(&f, &viewer, "1009", sun2, sun2).await[0]["status"], "A");
    let (s, body) =
        call(&f, Method::PUT, "/api/v1/sites/S", &admin, Some(json!({"default_week_off_rule": "NOPE"}))).await;
    assert!(
        s == StatusCode::BAD_REQUEST && body["message"].as_str().unwrap().starts_with("default_week_off_rule: "),
        "{body}"
    );
    call(
        &f,
        Method::PUT,
        "/api/v1/sites/S",
        &admin,
        Some(json!({"default_week_off_rule": "SUN", "effective_from": month})),
    )
    .await;
    row_until(&f, &viewer, "1009", sun2, |r| r["status"] == "WO").await;

    // Removing the holiday: the Wednesday is A again.
    let (s, _) = call(&f, Method::DELETE, &format!("/api/v1/holidays/{}", holiday["id"]), &admin, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    row_until(&f, &viewer, "1006", wed, |r| r["status"] == "A").await;

    // Raw punches carry work code, direction and source.
    let (_, logs) = call(&f, Method::GET, "/api/v1/logs?site=S&pin=1001", &viewer, None).await;
    let log = &logs["items"][0];
    assert_eq!(
        (log["work_code"].as_i64(), log["direction"].as_str(), log["source"].as_str()),
        (Some(0), Some("BOTH"), Some("zk-pull")),
        "{log}"
    );

    // The audit trail of these changes, with the values before and after.
    let (_, audit) = call(&f, Method::GET, "/api/v1/audit?resource=shift&resource_id=LUNCH", &root, None).await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.iter().map(|e| e["action"].as_str().unwrap()).collect::<Vec<_>>(), ["update", "create"]);
    assert_eq!(
        (entries[0]["before"]["grace_late_in_mins"].as_i64(), entries[0]["after"]["grace_late_in_mins"].as_i64()),
        (Some(0), Some(15))
    );
    assert_eq!(entries[0]["actor"], "root");
    let (_, audit) = call(&f, Method::GET, "/api/v1/audit?resource=site&resource_id=S", &admin, None).await;
    let sandwich: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "update")
        .map(|e| {
            (e["before"]["sandwich"].as_str().unwrap().to_owned(), e["after"]["sandwich"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        sandwich,
        [("off".into(), "off".into()), ("week_offs".into(), "off".into()), ("off".into(), "week_offs".into())],
        "newest first"
    );
    let (_, audit) = call(&f, Method::GET, "/api/v1/audit?resource=employee&action=create", &admin, None).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 9, "the refused creations left no entry");
    let (_, audit) = call(&f, Method::GET, "/api/v1/audit?resource=holiday", &admin, None).await;
    assert_eq!(
        audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect::<Vec<_>>(),
        ["delete", "create"]
    );
    let (_, audit) = call(&f, Method::GET, "/api/v1/audit?resource=week_off_rule&action=update", &root, None).await;
    assert_eq!(
        (audit["items"][0]["before"]["spec"].as_str(), audit["items"][0]["after"]["spec"].as_str()),
        (Some("sun"), Some("sun,sat"))
    );
    for (resource, n) in [("agent", 1), ("device", 1), ("job", 2)] {
        let (_, audit) =
            call(&f, Method::GET, &format!("/api/v1/audit?resource={resource}&site=S"), &admin, None).await;
        assert_eq!(audit["items"].as_array().unwrap().len(), n, "{resource}: {audit}");
    }
    let (s, _) = call(&f, Method::GET, "/api/v1/audit", &viewer, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer does not read the audit log");
    let (_, audit) = call(&f, Method::GET, "/api/v1/audit", &admin_t, None).await;
    assert!(audit["items"].as_array().unwrap().iter().all(|e| e["site_id"] == "T"), "T's admin sees only T: {audit}");
    let (s, _) = call(&f, Method::GET, "/api/v1/audit?site=S", &admin_t, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, audit) = call(&f, Method::GET, "/api/v1/audit?resource=shift", &admin, None).await;
    assert_eq!(audit["items"], json!([]), "global settings' entries are root's");
    for method in [Method::PUT, Method::DELETE, Method::POST] {
        let (s, _) = call(&f, method.clone(), "/api/v1/audit", &root, Some(json!({}))).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method}: the audit log is never edited");
    }
    f.cleanup().await;
}

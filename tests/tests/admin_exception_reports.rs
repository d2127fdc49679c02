//! The reports beside the muster roll: late coming, early going, overtime and absentees for a day or a range, per
//! site and department, as JSON, CSV and XLSX, checked cell by cell against hand-computed lines and the attendance
//! API; and the muster roll's ManDays option.

use std::io::Cursor;

use calamine::{Reader, Xlsx};
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use protocol::PunchState;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use system_tests::admin::{first, AdminFixture, Auth};
use system_tests::attendance::{add_employee, at, ingest, punch};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(late_early_overtime_and_absentees, muster_roll_with_man_days_slots);

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    assert!(!text.contains('"'), "{text}");
    text.split("\r\n").filter(|l| !l.is_empty()).map(|l| l.split(',').map(str::to_owned).collect()).collect()
}

async fn csv(f: &AdminFixture, auth: &Auth, path: &str) -> Vec<Vec<String>> {
    let response = f.send(Method::GET, path, auth, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    parse_csv(&response.text().await.unwrap())
}

/// The XLSX of `path` equals `lines` cell by cell (numbers in `numbers` as numbers), under `title`.
async fn xlsx_equals(f: &AdminFixture, auth: &Auth, path: &str, sheet: &str, title: &str, lines: &[Vec<String>]) {
    let response = f.send(Method::GET, path, auth, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let bytes = response.bytes().await.unwrap().to_vec();
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("an XLSX file");
    let range = book.worksheet_range(sheet).expect("the sheet");
    assert_eq!(range.get_value((0, 0)).map(ToString::to_string).as_deref(), Some(title));
    for (r, line) in lines.iter().enumerate() {
        for (c, expected) in line.iter().enumerate() {
            let got = range
                .get_value((u32::try_from(r + 1).unwrap(), u32::try_from(c).unwrap()))
                .map(ToString::to_string)
                .unwrap_or_default();
            assert_eq!(&got, expected, "{path}: row {r} column {c}");
        }
    }
}

/// Waits until `employee`'s row on `day` satisfies `done` (the service's own worker may be computing it).
async fn settle(f: &AdminFixture, auth: &Auth, employee: &str, day: NaiveDate, done: impl Fn(&Value) -> bool) {
    let path = format!("/api/v1/attendance?employee={employee}&from={day}&to={day}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        central_api::attendance::jobs::worker::drain(&f.store, 10_000).await.unwrap();
        let (_, page) = f.call(Method::GET, &path, auth, None).await.unwrap();
        if done(&page["items"][0]) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{employee} on {day}: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn line(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

async fn late_early_overtime_and_absentees(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let viewer = f.token("viewerA").await.unwrap();
    let admin_b = f.token("adminB").await.unwrap();
    // On top of the fixture (101: Mon 09:00-18:00, Tue 09:20-18:00, Thu only 18:00; 102 never punched; Wed is A's
    // holiday): 102 works Mon 09:05-16:00 (5 min late, 120 min early, 6 h 55: P) and Fri 08:00-19:45 (60 min early
    // and 105 min late, both over the 30-minute thresholds: 165 min overtime).
    let (mon, tue, thu, fri) = (
        first(f.month, Weekday::Mon),
        first(f.month, Weekday::Tue),
        first(f.month, Weekday::Thu),
        first(f.month, Weekday::Fri),
    );
    let punches = vec![
        punch("A", "102", at(mon, 9, 5), PunchState::CheckIn),
        punch("A", "102", at(mon, 16, 0), PunchState::CheckOut),
        punch("A", "102", at(fri, 8, 0), PunchState::CheckIn),
        punch("A", "102", at(fri, 19, 45), PunchState::CheckOut),
    ];
    ingest(&f.store, "A", 100, punches).await.unwrap();
    settle(&f, &viewer, "102", mon, |r| r["status"] == "P").await;
    settle(&f, &viewer, "102", fri, |r| r["status"] == "P").await;
    let from = f.month;
    let to = (f.month + Duration::days(40)).with_day(1).unwrap() - Duration::days(1);
    let range = format!("site=A&from={from}&to={to}");
    let head = |figure: &str| {
        line(&["Date", "Employee ID", "Name", "Department", "Shift", "Status", "In", "Out", figure, "Notes"])
    };

    // Late coming: 102 on Monday (5), 101 on Tuesday (20); by date.
    let mut expected = vec![
        (mon, line(&[&mon.to_string(), "102", "Employee 102", "Packing", "GEN", "P", "09:05", "16:00", "5", ""])),
        (tue, line(&[&tue.to_string(), "101", "Employee 101", "Production", "GEN", "P", "09:20", "18:00", "20", ""])),
    ];
    expected.sort_by_key(|(d, _)| *d);
    let mut late: Vec<Vec<String>> = vec![head("Late (min)")];
    late.extend(expected.into_iter().map(|(_, l)| l));
    late.push(line(&["Total", "", "", "", "", "", "", "", "25", "2 days"]));
    let path = format!("/api/v1/reports/late?{range}&format=csv");
    assert_eq!(csv(&f, &viewer, &path).await, late);
    let title = format!("Late coming A {from} to {to}");
    xlsx_equals(&f, &viewer, &format!("/api/v1/reports/late?{range}&format=xlsx"), "Late coming", &title, &late).await;
    let (s, json) = f.call(Method::GET, &format!("/api/v1/reports/late?{range}"), &viewer, None).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (json["kind"].as_str(), json["total"].as_i64(), json["title"].as_str()),
        (Some("late"), Some(25), Some(&*title))
    );
    // One day.
    let day = csv(&f, &viewer, &format!("/api/v1/reports/late?site=A&date={tue}&format=csv")).await;
    assert_eq!(day.len(), 3);
    assert_eq!(day[1][1], "101");
    // Per department: Packing only.
    let packing =
        csv(&f, &viewer, &format!("/api/v1/reports/late?department=Packing&from={from}&to={to}&format=csv")).await;
    assert_eq!(packing.iter().skip(1).map(|l| l[1].clone()).collect::<Vec<_>>(), ["102", ""]);

    // Early going: 102 on Monday, 120 minutes.
    let early = vec![
        head("Early (min)"),
        line(&[&mon.to_string(), "102", "Employee 102", "Packing", "GEN", "P", "09:05", "16:00", "120", ""]),
        line(&["Total", "", "", "", "", "", "", "", "120", "1 days"]),
    ];
    assert_eq!(csv(&f, &viewer, &format!("/api/v1/reports/early-going?{range}&format=csv")).await, early);
    xlsx_equals(
        &f,
        &viewer,
        &format!("/api/v1/reports/early-going?{range}&format=xlsx"),
        "Early going",
        &format!("Early going A {from} to {to}"),
        &early,
    )
    .await;

    // Overtime: 102 on Friday, 165 minutes.
    let overtime = vec![
        head("OT (min)"),
        line(&[&fri.to_string(), "102", "Employee 102", "Packing", "GEN", "P", "08:00", "19:45", "165", ""]),
        line(&["Total", "", "", "", "", "", "", "", "165", "1 days"]),
    ];
    assert_eq!(csv(&f, &viewer, &format!("/api/v1/reports/overtime?{range}&format=csv")).await, overtime);
    xlsx_equals(
        &f,
        &viewer,
        &format!("/api/v1/reports/overtime?{range}&format=xlsx"),
        "Overtime",
        &format!("Overtime A {from} to {to}"),
        &overtime,
    )
    .await;

    // Absentees: exactly the A rows the attendance API lists, by date; 101's Thursday shows its lone punch.
    let (_, page) =
        f.call(Method::GET, &format!("/api/v1/attendance?{range}&status=A&limit=1000"), &viewer, None).await.unwrap();
    let mut a_rows: Vec<&Value> = page["items"].as_array().unwrap().iter().collect();
    a_rows.sort_by_key(|r| {
        (
            r["work_date"].as_str().unwrap().to_owned(),
            r["department"].as_str().unwrap().to_owned(),
            r["employee_id"].as_str().unwrap().to_owned(),
        )
    });
    let absentees = csv(&f, &viewer, &format!("/api/v1/reports/absentees?{range}&format=csv")).await;
    assert_eq!(absentees[0], head("Punches"));
    assert_eq!(absentees.len(), a_rows.len() + 2);
    for (got, row) in absentees[1..].iter().zip(&a_rows) {
        let hm = |v: &Value| v.as_str().map(|t| t[11..16].to_owned()).unwrap_or_default();
        let flags: Vec<&str> = row["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        let expected = vec![
            row["work_date"].as_str().unwrap().to_owned(),
            row["employee_id"].as_str().unwrap().to_owned(),
            row["name"].as_str().unwrap().to_owned(),
            row["department"].as_str().unwrap().to_owned(),
            "GEN".to_owned(),
            "A".to_owned(),
            hm(&row["in_time"]),
            hm(&row["out_time"]),
            row["punches"]["counted"].to_string(),
            flags.join(" "),
        ];
        assert_eq!(got, &expected);
    }
    let thursday = absentees.iter().find(|l| l[0] == thu.to_string() && l[1] == "101").expect("101's Thursday");
    assert_eq!(
        (thursday[7].as_str(), thursday[8].as_str(), thursday[9].as_str()),
        ("18:00", "1", "missing_punch unmatched_punch")
    );
    let total = absentees.last().unwrap();
    assert_eq!((total[8].clone(), total[9].clone()), (a_rows.len().to_string(), format!("{} days", a_rows.len())));
    xlsx_equals(
        &f,
        &viewer,
        &format!("/api/v1/reports/absentees?{range}&format=xlsx"),
        "Absentees",
        &format!("Absentees A {from} to {to}"),
        &absentees,
    )
    .await;

    // Scope and refusals.
    let (s, _) = f.call(Method::GET, &format!("/api/v1/reports/late?{range}"), &admin_b, None).await.unwrap();
    assert_eq!(s, StatusCode::NOT_FOUND, "B's admin does not see A");
    let (_, json) =
        f.call(Method::GET, &format!("/api/v1/reports/absentees?from={from}&to={to}"), &viewer, None).await.unwrap();
    assert!(json["items"].as_array().unwrap().iter().all(|l| l["site_id"] == "A"), "only the viewer's site");
    for (query, field) in [
        (format!("site=A&from={to}&to={from}"), "to"),
        ("site=A".to_owned(), "from"),
        (format!("site=A&date={from}&from={from}&to={to}"), "date"),
        (format!("{range}&format=pdf"), "format"),
        (format!("site=A&from={from}&to={}", from + Duration::days(400)), "to"),
    ] {
        let (s, body) = f.call(Method::GET, &format!("/api/v1/reports/overtime?{query}"), &viewer, None).await.unwrap();
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["message"].as_str().unwrap().starts_with(field), "{query}: {body}");
    }
    let (s, _) = f.call(Method::GET, &format!("/api/v1/reports/late?{range}"), &Auth::None, None).await.unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    f.cleanup().await;
}

async fn muster_roll_with_man_days_slots(backend: Backend) {
    // No scheduled jobs: the daily sandwich job would compute 103's last week between the CSV and the XLSX.
    let f = AdminFixture::new_with_env(backend, &[("CENTRAL_API_ATTENDANCE__SCHEDULER", "false")]).await.unwrap();
    let viewer = f.token("viewerA").await.unwrap();
    // 103 on the ManDays shift MD (08:00-17:00): Monday 08:00-10:00 and 10:30-17:15 (2 h + 6 h 45 = 8 h 45).
    add_employee(&f.store, "103", "A", "MD").await.unwrap();
    let mon = first(f.month, Weekday::Mon);
    let punches = vec![
        punch("A", "103", at(mon, 8, 0), PunchState::CheckIn),
        punch("A", "103", at(mon, 10, 0), PunchState::CheckOut),
        punch("A", "103", at(mon, 10, 30), PunchState::CheckIn),
        punch("A", "103", at(mon, 17, 15), PunchState::CheckOut),
    ];
    ingest(&f.store, "A", 200, punches).await.unwrap();
    settle(&f, &viewer, "103", mon, |r| r["status"] == "P").await;
    let month = f.month.format("%Y-%m").to_string();
    let days = (f.month.iter_days().take_while(|d| d.month() == f.month.month())).count();
    let plain = csv(&f, &viewer, &format!("/api/v1/reports/muster?site=A&month={month}&format=csv")).await;
    let with = csv(&f, &viewer, &format!("/api/v1/reports/muster?site=A&month={month}&format=csv&man_days=true")).await;
    let col = |d: NaiveDate| 3 + usize::try_from(d.day() - 1).unwrap();
    // The plain roll's lines are all there, in order; 103's slot lines follow its row.
    let index =
        with.iter().position(|l| l[0] == "103" && l[2] != "ManDays slot 1" && !l[2].starts_with("ManDays")).unwrap();
    assert_eq!(with.iter().filter(|l| !l[2].starts_with("ManDays")).cloned().collect::<Vec<_>>(), plain);
    let slot1 = &with[index + 1];
    let slot2 = &with[index + 2];
    let hours = &with[index + 3];
    assert_eq!(
        (&slot1[..3], &slot2[2], &hours[2]),
        (
            &["103".to_owned(), "Employee 103".to_owned(), "ManDays slot 1".to_owned()][..],
            &"ManDays slot 2".to_owned(),
            &"ManDays hours".to_owned()
        )
    );
    assert_eq!(
        (slot1[col(mon)].as_str(), slot2[col(mon)].as_str(), hours[col(mon)].as_str()),
        ("08:00-10:00", "10:30-17:15", "8:45")
    );
    assert_eq!(slot1.len(), 3 + days + 8);
    assert!(slot1[3..3 + days].iter().enumerate().all(|(i, c)| c.is_empty() || i == col(mon) - 3), "{slot1:?}");
    assert_eq!(with.len(), plain.len() + 3, "only the ManDays employee has slot lines");
    xlsx_equals(
        &f,
        &viewer,
        &format!("/api/v1/reports/muster?site=A&month={month}&format=xlsx&man_days=true"),
        "Muster roll",
        &format!("Muster roll A {month}"),
        &with
            .iter()
            .map(|l| {
                l.iter()
                    .enumerate()
                    .map(|(c, v)| {
                        if c >= 3 + days && !l[2].starts_with("ManDays") {
                            v.trim_end_matches(".00").to_owned()
                        } else {
                            v.clone()
                        }
                    })
                    .collect()
            })
            .collect::<Vec<_>>(),
    )
    .await;
    f.cleanup().await;
}

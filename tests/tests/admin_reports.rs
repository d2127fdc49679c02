//! Reports: the monthly muster roll as CSV (checked cell by cell against the computed rows) and as XLSX (opened with
//! calamine), and the daily report.

use std::collections::HashMap;
use std::io::Cursor;

use calamine::{Reader, Xlsx};
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use system_tests::admin::{first, AdminFixture, Auth};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(muster_roll_csv_and_xlsx, daily_report);

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    // The fixture holds no quoted fields; a quote here would be a bug in the fixture, not in the parser.
    assert!(!text.contains('"'), "{text}");
    text.split("\r\n").filter(|l| !l.is_empty()).map(|l| l.split(',').map(str::to_owned).collect()).collect()
}

async fn muster_roll_csv_and_xlsx(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let viewer = f.token("viewerA").await.unwrap();
    let month = f.month.format("%Y-%m").to_string();
    let days: Vec<NaiveDate> = f.month.iter_days().take_while(|d| d.month() == f.month.month()).collect();

    let response = f
        .send(Method::GET, &format!("/api/v1/reports/muster?site=A&month={month}&format=csv"), &viewer, None)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = parse_csv(&response.text().await.unwrap());
    assert_eq!(csv.len(), 3, "header + employees 101 and 102 (not B's 201): {csv:?}");
    let header = &csv[0];
    assert_eq!(&header[..3], ["Employee ID", "Name", "Department"]);
    assert_eq!(header.len(), 3 + days.len() + 8);
    assert_eq!(header[3], "01");
    assert_eq!(header[3 + days.len() - 1], format!("{:02}", days.len()));
    assert_eq!(
        &header[3 + days.len()..],
        ["Present", "Absent", "Half days", "Week-offs", "Holidays", "Leave", "Late", "OT hours"]
    );
    assert_eq!(&csv[1][..3], ["101", "Employee 101", "Production"]);
    assert_eq!(&csv[2][..3], ["102", "Employee 102", "Packing"]);

    // Every cell equals the computed row's status, as the attendance API reports it.
    let (_, page) = f
        .call(
            Method::GET,
            &format!("/api/v1/attendance?site=A&from={}&to={}&limit=1000", days[0], days[days.len() - 1]),
            &viewer,
            None,
        )
        .await
        .unwrap();
    let computed: HashMap<(String, String), &Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| ((r["employee_id"].as_str().unwrap().to_owned(), r["work_date"].as_str().unwrap().to_owned()), r))
        .collect();
    for line in &csv[1..] {
        let mut counts: HashMap<&str, u32> = HashMap::new();
        let mut late = 0;
        for (i, day) in days.iter().enumerate() {
            let cell = &line[3 + i];
            let row = computed.get(&(line[0].clone(), day.to_string()));
            let expected =
                row.map_or(String::new(), |r| r["status"].as_str().map_or_else(|| "*".to_owned(), str::to_owned));
            assert_eq!(cell, &expected, "employee {} day {day}", line[0]);
            if day.weekday() == Weekday::Sun {
                assert_eq!(cell, "WO", "Sundays are week-offs ({day})");
            }
            *counts.entry(cell.as_str()).or_default() += 1;
            if row.is_some_and(|r| r["late_by_secs"].as_i64() > Some(0)) {
                late += 1;
            }
        }
        let totals = &line[3 + days.len()..];
        let n = |k: &str| counts.get(k).copied().unwrap_or(0);
        let expected = [n("P") + n("WOP") + n("PHP"), n("A"), n("HD"), n("WO"), n("PH"), n("L"), late];
        let got: Vec<u32> = totals[..7].iter().map(|t| t.parse().unwrap()).collect();
        assert_eq!(got, expected, "totals of {}", line[0]);
    }
    let (mon, tue, wed) = (first(f.month, Weekday::Mon), first(f.month, Weekday::Tue), first(f.month, Weekday::Wed));
    let cell = |line: usize, d: NaiveDate| csv[line][3 + usize::try_from(d.day() - 1).unwrap()].clone();
    assert_eq!(cell(1, mon), "P");
    assert_eq!(cell(1, tue), "P");
    assert_eq!(cell(1, wed), "PH", "the site's holiday");
    assert_eq!(cell(2, wed), "PH");
    assert_eq!(cell(2, mon), "A", "102 never punched");
    assert_eq!(csv[1][3 + days.len() + 6], "1", "101 was late once (the Tuesday)");
    assert_eq!(csv[1][3 + days.len() + 7], "0.00");

    // Per department: only Packing.
    let response = f
        .send(Method::GET, &format!("/api/v1/reports/muster?department=Packing&month={month}"), &viewer, None)
        .await
        .unwrap();
    let by_department = parse_csv(&response.text().await.unwrap());
    assert_eq!(by_department.len(), 2);
    assert_eq!(by_department[1], csv[2]);
    // Another site's roll does not exist for this viewer.
    let (s, _) =
        f.call(Method::GET, &format!("/api/v1/reports/muster?site=B&month={month}"), &viewer, None).await.unwrap();
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The XLSX holds the same grid.
    let response = f
        .send(Method::GET, &format!("/api/v1/reports/muster?site=A&month={month}&format=xlsx"), &viewer, None)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await.unwrap().to_vec();
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).expect("an XLSX file");
    let sheet = book.worksheet_range("Muster roll").expect("the sheet");
    assert_eq!(sheet.get_value((0, 0)).map(ToString::to_string), Some(format!("Muster roll A {month}")));
    for (r, line) in csv.iter().enumerate() {
        for (c, expected) in line.iter().enumerate() {
            let got = sheet
                .get_value((u32::try_from(r + 1).unwrap(), u32::try_from(c).unwrap()))
                .map(ToString::to_string)
                .unwrap_or_default();
            let expected = if r > 0 && c == line.len() - 1 {
                expected.trim_end_matches(".00").to_owned()
            } else {
                expected.clone()
            };
            assert_eq!(got, expected, "row {r} column {c}");
        }
    }
    f.cleanup().await;
}

async fn daily_report(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let admin = f.token("adminA").await.unwrap();
    let tue = first(f.month, Weekday::Tue);
    let (s, rows) =
        f.call(Method::GET, &format!("/api/v1/reports/daily?site=A&date={tue}"), &admin, None).await.unwrap();
    assert_eq!(s, StatusCode::OK, "{rows}");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["employee_id"], "101");
    assert_eq!(rows[0]["in_time"], "09:20");
    assert_eq!(rows[0]["out_time"], "18:00");
    assert_eq!(rows[0]["late_minutes"], 20);
    assert_eq!(rows[1]["status"], "A");
    let response = f
        .send(Method::GET, &format!("/api/v1/reports/daily?site=A&date={tue}&format=csv"), &admin, None)
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Employee ID,Name,Department,Status,In,Out,Late (min),Early exit (min),OT (min),Work (min)");
    assert!(lines[1].starts_with("101,Employee 101,Production,P,09:20,18:00,20,0,"), "{}", lines[1]);
    let (s, _) =
        f.call(Method::GET, &format!("/api/v1/reports/daily?site=B&date={tue}"), &Auth::None, None).await.unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let _ = Duration::zero();
    f.cleanup().await;
}

//! The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven over WebDriver): log in
//! through the form, open the dashboard, page the muster roll back and forth, open an employee's day, add a manual
//! punch for it and approve it on /manual-logs, see the day's status change from A to P, download the XLSX muster
//! roll through the browser and read it, watch a punch arrive on the live page (and another site's not), and check
//! that a phone-width (390 px) page does not scroll sideways.
//! Screenshots of every step go to `target/test-artifacts/dashboard/`.

use std::time::{Duration, Instant};

use calamine::{Reader, Xlsx};
use chrono::Datelike;
use fantoccini::elements::Element;
use fantoccini::Locator;
use protocol::PunchState;
use system_tests::admin::{first, AdminFixture, PASSWORD};
use system_tests::attendance::{at, ingest, punch};
use system_tests::browser::Browser;
use system_tests::central::Backend;

const WAIT: Duration = Duration::from_secs(15);

async fn el(browser: &Browser, css: &str) -> Element {
    browser.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Clicks something that loads a new page and waits until the old page is gone (its element goes stale), so the
/// next lookup cannot find an element of the page being left.
async fn click_to_page(browser: &Browser, css: &str) {
    let element = el(browser, css).await;
    element.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    let deadline = Instant::now() + WAIT;
    while element.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "clicking {css} did not load a page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text(browser: &Browser, css: &str) -> String {
    el(browser, css).await.text().await.unwrap()
}

async fn path_and_query(browser: &Browser) -> String {
    let url = browser.client.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Whether the page scrolls sideways: (document width, viewport width).
async fn widths(browser: &Browser) -> (i64, i64) {
    let got = browser
        .client
        .execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![])
        .await
        .unwrap();
    (got[0].as_i64().unwrap(), got[1].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_works_through_the_dashboard_in_chromium() {
    let f = AdminFixture::new(Backend::Sqlite).await.unwrap();
    let base = f.central.url.clone();
    let month = format!("{:04}-{:02}", f.month.year(), f.month.month());
    let thu = first(f.month, chrono::Weekday::Thu);
    let browser = Browser::start(1280, 900).await.unwrap();

    // Logging in through the form lands on the page first asked for.
    browser.client.goto(&format!("{base}/dashboard")).await.unwrap();
    assert!(path_and_query(&browser).await.starts_with("/login"), "sent to the login form");
    el(&browser, "#username").await.send_keys("adminA").await.unwrap();
    el(&browser, "#password").await.send_keys(PASSWORD).await.unwrap();
    browser.screenshot("01-login").await.unwrap();
    click_to_page(&browser, "form[action='/login'] button[type=submit]").await;
    el(&browser, "section[data-site='A']").await;
    assert_eq!(path_and_query(&browser).await, "/dashboard");
    assert!(browser.client.find(Locator::Css("section[data-site='B']")).await.is_err(), "adminA sees A only");
    browser.screenshot("02-dashboard").await.unwrap();

    // The muster roll, one month back (the fixture's month) and forth.
    click_to_page(&browser, "nav a[href='/muster']").await;
    click_to_page(&browser, "[data-testid=month-prev]").await;
    let cell = format!("tr[data-employee='101'] td[data-date='{thu}']");
    assert_eq!(text(&browser, &cell).await.trim(), "A", "101 punched only out on {thu}");
    assert!(path_and_query(&browser).await.contains(&format!("month={month}")));
    browser.screenshot("03-muster-previous-month").await.unwrap();
    click_to_page(&browser, "[data-testid=month-next]").await;
    el(&browser, "[data-testid=month-prev]").await;
    assert!(!path_and_query(&browser).await.contains(&format!("month={month}")), "moved on a month");
    browser.screenshot("04-muster-this-month").await.unwrap();
    click_to_page(&browser, "[data-testid=month-prev]").await;

    // The employee's day, and a manual punch for it.
    click_to_page(&browser, &format!("{cell} a")).await;
    assert_eq!(text(&browser, "[data-testid=day-status]").await.trim(), "A");
    browser.screenshot("05-day-before").await.unwrap();
    click_to_page(&browser, "[data-testid=add-manual-punch]").await;
    el(&browser, "[data-testid=manual-log-form]").await;
    assert_eq!(el(&browser, "#employee").await.prop("value").await.unwrap().as_deref(), Some("101"));
    assert_eq!(el(&browser, "#date").await.prop("value").await.unwrap(), Some(thu.to_string()));
    // A time input's typing is locale-dependent; its value is not.
    browser.client.execute("document.getElementById('time').value = '09:00';", vec![]).await.unwrap();
    el(&browser, "#reason").await.send_keys("forgot the card").await.unwrap();
    browser.screenshot("06-manual-punch-form").await.unwrap();
    click_to_page(&browser, "[data-testid=manual-log-form] button[type=submit]").await;
    assert!(text(&browser, "[data-testid=flash]").await.contains("waits for approval"));
    el(&browser, "button[data-testid^='approve-']").await;
    browser.screenshot("07-manual-punches-pending").await.unwrap();
    click_to_page(&browser, "button[data-testid^='approve-']").await;
    assert!(text(&browser, "[data-testid=flash]").await.contains("approved"));
    browser.screenshot("08-manual-punch-approved").await.unwrap();

    // The service's worker recomputes the day: A becomes P.
    let day_url = format!("{base}/employees/101/day/{thu}");
    let deadline = Instant::now() + WAIT;
    loop {
        browser.client.goto(&day_url).await.unwrap();
        let status = text(&browser, "[data-testid=day-status]").await;
        if status.trim() == "P" {
            break;
        }
        assert!(Instant::now() < deadline, "the day never changed: {status}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(text(&browser, "[data-testid=day-in]").await.contains("09:00"), "the approved punch is the day's in");
    browser.screenshot("09-day-after").await.unwrap();

    // The XLSX, downloaded by the browser itself.
    browser.client.goto(&format!("{base}/muster?site=A&month={month}")).await.unwrap();
    assert_eq!(text(&browser, &cell).await.trim(), "P");
    el(&browser, "[data-testid=download-xlsx]").await.click().await.unwrap();
    let file = browser.wait_for_download(".xlsx", WAIT).await.unwrap();
    let mut book: Xlsx<_> = calamine::open_workbook(&file).unwrap();
    let sheet = book.worksheet_range("Muster roll").unwrap();
    let rows: Vec<Vec<String>> = sheet.rows().map(|r| r.iter().map(ToString::to_string).collect()).collect();
    assert!(rows[0][0].contains(&month), "{:?}", rows[0]);
    let header = rows.iter().find(|r| r.first().is_some_and(|c| c.contains("mploy"))).expect("a header row");
    let row_101 = rows.iter().find(|r| r.first().map(String::as_str) == Some("101")).expect("employee 101's row");
    let day_column = header.iter().position(|h| h.trim() == format!("{:02}", thu.day())).expect("a column for the day");
    assert_eq!(row_101[day_column], "P", "the downloaded roll has the approved day: {row_101:?}");
    println!("downloaded {}", file.display());

    // Live punches: a punch stored after the page opened appears through the event stream; site B's does not.
    browser.client.goto(&format!("{base}/live")).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while text(&browser, "[data-testid=live-status]").await.trim() != "Connected" {
        assert!(Instant::now() < deadline, "the live page never connected to its event stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let today = chrono::Utc::now().date_naive();
    let b_punch = punch("B", "201", at(today, 7, 6), PunchState::CheckIn);
    assert_eq!(ingest(&f.store, "B", 1000, vec![b_punch]).await.unwrap(), 1);
    let a_punch = punch("A", "102", at(today, 7, 7), PunchState::CheckIn);
    assert_eq!(ingest(&f.store, "A", 1000, vec![a_punch]).await.unwrap(), 1);
    // Streamed rows go on top of the rows the page was rendered with.
    let deadline = Instant::now() + WAIT;
    loop {
        let row_text = text(&browser, "[data-testid=live-punches] tbody tr").await;
        if row_text.contains("07:07") {
            assert!(row_text.contains("102"), "the new punch is 102's: {row_text}");
            break;
        }
        assert!(Instant::now() < deadline, "the punch stored after the page opened never arrived: {row_text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let table = text(&browser, "[data-testid=live-punches]").await;
    assert!(!table.contains("DEV-B"), "site B's punch is not streamed to A's admin: {table}");
    browser.screenshot("09b-live-punch-arrived").await.unwrap();

    // A phone: nothing scrolls sideways but the tables inside their own boxes.
    browser.resize(390, 844).await.unwrap();
    for (name, path) in [
        ("10-phone-dashboard", "/dashboard".to_owned()),
        ("11-phone-muster", format!("/muster?site=A&month={month}")),
        ("12-phone-manual-punches", "/manual-logs".to_owned()),
        ("13-phone-day", format!("/employees/101/day/{thu}")),
        ("14-phone-new-manual-punch", format!("/manual-logs/new?employee=101&date={thu}")),
        ("15-phone-employees", "/employees".to_owned()),
        ("16-phone-employee-edit", "/employees/101/edit".to_owned()),
        ("17-phone-shifts", "/shifts".to_owned()),
        ("18-phone-holidays", "/holidays".to_owned()),
    ] {
        browser.client.goto(&format!("{base}{path}")).await.unwrap();
        el(&browser, "main").await;
        let (scroll, inner) = widths(&browser).await;
        assert!(inner <= 400, "the window is phone-sized: {inner}");
        browser.screenshot(name).await.unwrap();
        assert!(scroll <= inner, "{path} scrolls sideways at {inner} px: {scroll}");
    }
    browser.close().await;
    f.cleanup().await;
}

//! The web dashboard's read-only pages against a served central-api (SQLite and PostgreSQL): login form, redirects
//! of visitors without a session, CSRF refusals, site scope on every page (a viewer of A sees nothing of B), the
//! muster grid's codes, the day page, HTML escaping, and the live punch stream over Server-Sent Events.

use std::time::Duration;

use central_api::attendance::engine::WeekOffRule;
use central_api::store::admin::NewDevice;
use central_api::store::attendance::requests::NewLeave;
use chrono::{Datelike, NaiveDate, Utc, Weekday};
use protocol::{AgentStatus, DeviceStatus, Fault, PunchState, PROTOCOL_VERSION};
use reqwest::{header, StatusCode};
use system_tests::admin::{first, AdminFixture, PASSWORD};
use system_tests::attendance::{add_employee, at, ingest, punch};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(
    login_redirects_and_csrf,
    viewer_of_a_sees_nothing_of_b,
    dashboard_counts_today,
    live_stream_is_scoped
);

/// A client that does not follow redirects (the tests look at them) and has no overall timeout (the SSE test reads
/// a long response; every read there has its own timeout).
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client")
}

/// A logged-in page session: the `ac_session` cookie value.
struct Page<'a> {
    f: &'a AdminFixture,
    http: reqwest::Client,
    cookie: String,
}

impl Page<'_> {
    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.f.central.url))
            .header(header::COOKIE, format!("ac_session={}", self.cookie))
            .send()
            .await
            .expect("GET");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.f.central.url))
            .header(header::COOKIE, format!("ac_session={}", self.cookie))
            .form(form)
            .send()
            .await
            .expect("POST")
    }
}

/// Logs in through the form and returns the page session and the `Set-Cookie` header.
async fn form_login<'a>(f: &'a AdminFixture, username: &str, next: &str) -> (Page<'a>, reqwest::Response) {
    let http = browser();
    let response = http
        .post(format!("{}/login", f.central.url))
        .form(&[("username", username), ("password", PASSWORD), ("next", next)])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "login of {username}");
    let set_cookie = response.headers().get(header::SET_COOKIE).expect("Set-Cookie").to_str().expect("ascii");
    let cookie = set_cookie.split(';').next().and_then(|kv| kv.strip_prefix("ac_session=")).expect("cookie");
    (Page { f, http, cookie: cookie.to_owned() }, response)
}

/// The `_csrf` value of the first form on a page.
fn csrf_of(html: &str) -> String {
    let at = html.find(r#"name="_csrf" value=""#).expect("a _csrf field") + r#"name="_csrf" value=""#.len();
    html[at..].split('"').next().expect("value").to_owned()
}

/// The `<tr data-employee="id">` row of a page, up to its `</tr>`.
fn employee_row<'h>(html: &'h str, id: &str) -> Option<&'h str> {
    let start = html.find(&format!(r#"<tr data-employee="{id}">"#))?;
    let end = html[start..].find("</tr>")? + start;
    Some(&html[start..end])
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn login_redirects_and_csrf(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let http = browser();
    let url = &f.central.url;

    // Without a session, pages redirect to the login form, keeping where the visitor was going.
    let r = http.get(format!("{url}/")).send().await.unwrap();
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/dashboard".to_owned()));
    let r = http.get(format!("{url}/dashboard")).send().await.unwrap();
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/login".to_owned()));
    let r = http.get(format!("{url}/muster?site=A&month=2026-01")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?next=%2Fmuster%3Fsite%3DA%26month%3D2026-01");
    for path in ["/devices", "/live", "/live/events", "/employees/101/day/2026-01-05"] {
        let r = http.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(location(&r).starts_with("/login"), "{path}");
    }
    let r = http.post(format!("{url}/logout")).form(&[("_csrf", "x")]).send().await.unwrap();
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/login".to_owned()));

    // The login form: labelled fields; a wrong password re-renders it with 401 and a message.
    let page = http.get(format!("{url}/login?next=/devices")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"<label for="username">"#) && page.contains(r#"<label for="password">"#), "{page}");
    assert!(page.contains(r#"name="next" value="/devices""#), "{page}");
    let r = http
        .post(format!("{url}/login"))
        .form(&[("username", "viewerA"), ("password", "wrong"), ("next", "/devices")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    assert!(r.text().await.unwrap().contains("Unknown user or wrong password."));
    // The form login shares the API's limiter: five failures, then 429 even with the right password (from another
    // address: this one's budget of five failures is partly spent above).
    let other = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
        .build()
        .unwrap();
    for _ in 0..5 {
        let r = other.post(format!("{url}/login")).form(&[("username", "adminB"), ("password", "nope")]).send();
        assert_eq!(r.await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let r = other.post(format!("{url}/login")).form(&[("username", "adminB"), ("password", PASSWORD)]).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get(header::RETRY_AFTER).is_some() && r.headers().get(header::SET_COOKIE).is_none());
    // A form posted from another site is refused; an off-site `next` is ignored.
    let r = http
        .post(format!("{url}/login"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[("username", "viewerA"), ("password", PASSWORD), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, r) = form_login(&f, "viewerA", "//evil.example/x").await;
    assert_eq!(location(&r), "/dashboard");

    // A good login sets the session cookie (HttpOnly, SameSite=Strict) and redirects to `next`.
    let (page, r) = form_login(&f, "viewerA", "/muster?site=A").await;
    assert_eq!(location(&r), "/muster?site=A");
    let set_cookie = r.headers().get(header::SET_COOKIE).unwrap().to_str().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    let r = page
        .http
        .get(format!("{url}/login?next=/devices"))
        .header(header::COOKIE, format!("ac_session={}", page.cookie));
    let r = r.send().await.unwrap();
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/devices".to_owned()), "already logged in");
    let (s, dashboard) = page.get("/dashboard").await;
    assert_eq!(s, StatusCode::OK);
    assert!(dashboard.contains(r#"name="viewport""#) && dashboard.contains(r#"<nav aria-label="Main">"#));
    for link in ["/muster", "/live", "/devices", "/manual-logs", "/employees", "/shifts", "/holidays"] {
        assert!(dashboard.contains(&format!(r#"href="{link}""#)), "nav link {link}");
    }
    let csrf = csrf_of(&dashboard);

    // POST without `_csrf` or with a wrong one: 403, and the session lives on.
    let r = page.post_form("/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = page.post_form("/logout", &[("_csrf", &"0".repeat(64))]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("did not come from this site"));
    assert_eq!(page.get("/dashboard").await.0, StatusCode::OK);
    // With it, logout ends the session.
    let r = page.post_form("/logout", &[("_csrf", &csrf)]).await;
    assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/login".to_owned()));
    let cookies: Vec<&str> = r.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    assert!(cookies.iter().any(|c| c.starts_with("ac_session=;") && c.contains("Max-Age=0")), "{cookies:?}");
    // The flash message travels to the next page, which shows it once and clears it.
    let flash = cookies.iter().find(|c| c.starts_with("ac_flash=")).expect("a flash cookie");
    let flash = flash.split(';').next().unwrap();
    let r = http.get(format!("{url}/login")).header(header::COOKIE, flash).send().await.unwrap();
    let cleared = r.headers().get_all(header::SET_COOKIE).iter().any(|v| v.to_str().unwrap().starts_with("ac_flash=;"));
    assert!(cleared, "the flash is cleared once shown");
    assert!(r.text().await.unwrap().contains("You have been logged out."));
    let r = page.http.get(format!("{url}/dashboard")).header(header::COOKIE, format!("ac_session={}", page.cookie));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::SEE_OTHER, "the old cookie no longer works");

    // The static assets are served with their types.
    let r = http.get(format!("{url}/static/app.css")).send().await.unwrap();
    assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
    let r = http.get(format!("{url}/static/app.js")).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("EventSource"));
    f.cleanup().await;
}

fn status_of(agent: &str, site: &str, device: &str, fault: Option<&str>) -> AgentStatus {
    let since = Utc::now() - chrono::Duration::minutes(5);
    let faults: Vec<Fault> =
        fault.map(|c| Fault { code: c.to_owned(), message: format!("{c} at {site}"), since }).into_iter().collect();
    AgentStatus {
        version: PROTOCOL_VERSION,
        agent: agent.parse().unwrap(),
        site: site.parse().unwrap(),
        sent_at: Utc::now(),
        agent_version: "0.1.0".into(),
        uptime_secs: 100,
        buffer_depth: 17,
        oldest_unacked_age_secs: Some(42),
        devices: vec![DeviceStatus {
            reachable: fault.is_none(),
            last_success: Some(since),
            record_count: Some(10),
            user_count: Some(5),
            clock_drift_secs: Some(-3),
            faults: faults.clone(),
            ..DeviceStatus::new(device.parse().unwrap())
        }],
        faults,
        command_results: Vec::new(),
        hostname: "gate-pc".into(),
        dead_letters: 0,
        config_version: None,
    }
}

async fn seed_devices(f: &AdminFixture) {
    for site in ["A", "B"] {
        f.store.create_agent(&format!("agent-{site}"), site, &[0u8; 32]).await.unwrap();
        f.store
            .add_device(&NewDevice {
                serial: format!("DEV-{site}"),
                site_id: site.into(),
                name: format!("Gate {site}"),
                model: None,
                ip: None,
                port: None,
                kind: "zk-tcp".into(),
                time_zone: "Asia/Kolkata".into(),
                direction: "BOTH".into(),
            })
            .await
            .unwrap();
    }
    f.store.store_status(&status_of("agent-A", "A", "DEV-A", None)).await.unwrap();
    f.store.store_status(&status_of("agent-B", "B", "DEV-B", Some("device_unreachable"))).await.unwrap();
}

async fn viewer_of_a_sees_nothing_of_b(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    seed_devices(&f).await;
    add_employee(&f.store, "103", "A", "GEN").await.unwrap();
    let mut evil = f.store.employee_profile("103").await.unwrap().unwrap();
    evil.name = "<script>alert(1)</script>".into();
    f.store.update_employee_profile(&evil, Utc::now().date_naive()).await.unwrap();
    let (page, _) = form_login(&f, "viewerA", "/dashboard").await;
    let root = form_login(&f, "root", "/").await.0;
    let month = f.month.format("%Y-%m").to_string();
    let (mon, tue, wed, thu) = (
        first(f.month, Weekday::Mon),
        first(f.month, Weekday::Tue),
        first(f.month, Weekday::Wed),
        first(f.month, Weekday::Thu),
    );
    let sun = first(f.month, Weekday::Sun);

    // Dashboard: only site A, with its counts and chart.
    let (s, html) = page.get("/dashboard").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(r#"<section class="site" data-site="A""#), "{html}");
    assert!(!html.contains(r#"data-site="B""#) && !html.contains("Site B"), "viewer of A sees B on the dashboard");
    for id in ["count-present", "count-absent", "count-late", "count-leave", "chart-30d"] {
        assert!(html.contains(&format!(r#"data-testid="{id}""#)), "{id}");
    }
    // Nobody punched today: 101, 102 and 103 are absent unless today is their week-off (Sunday, in the site's zone),
    // once their 09:00 shift has started; before that they are not yet due.
    let now = Utc::now().with_timezone(&chrono_tz::Asia::Kolkata).naive_local();
    let expected = if now.date().weekday() == Weekday::Sun { 0 } else { 3 };
    let due = now.time() >= chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    let (absent, not_yet) = if due { (expected, 0) } else { (0, expected) };
    assert!(html.contains(&format!(r#"data-testid="count-absent">{absent}<"#)), "{html}");
    assert!(html.contains(&format!(r#"data-testid="count-not-yet-due">{not_yet}<"#)), "{html}");
    assert!(html.contains(r#"data-testid="count-present">0<"#));
    assert_eq!(html.matches("<g data-date=").count(), 30, "30 days in the chart");
    let (_, root_page) = page_of(&f, "root").await;
    assert!(root_page.contains(r#"data-site="A""#) && root_page.contains(r#"data-site="B""#));

    // Muster: site B is not found; site A's grid holds the computed codes and escapes names.
    let (s, _) = page.get(&format!("/muster?site=B&month={month}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, html) = page.get(&format!("/muster?site=A&month={month}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(employee_row(&html, "201").is_none(), "B's employee in A's grid");
    let row = employee_row(&html, "101").expect("101's row");
    let cell = |row: &str, day: NaiveDate, code: &str| {
        row.contains(&format!(r#"<td data-date="{day}" class="st st-{code}"><a href="/employees/"#))
    };
    assert!(cell(row, mon, "P") && cell(row, tue, "P") && cell(row, wed, "PH") && cell(row, sun, "WO"), "{row}");
    assert!(cell(row, thu, "A"), "an out punch alone is absent by the default policy: {row}");
    assert!(row.contains(&format!(r#"href="/employees/101/day/{mon}""#)));
    let row102 = employee_row(&html, "102").expect("102's row");
    assert!(cell(row102, mon, "A") && cell(row102, wed, "PH"), "{row102}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>alert"), "escaping");
    for id in ["month-prev", "month-next", "download-xlsx"] {
        assert!(html.contains(&format!(r#"data-testid="{id}""#)), "{id}");
    }
    assert!(html.contains(&format!("/api/v1/reports/muster?site=A&amp;month={month}&amp;format=xlsx")), "{html}");
    // The download link works with the session cookie.
    let r = page
        .http
        .get(format!("{}/api/v1/reports/muster?site=A&month={month}&format=xlsx", f.central.url))
        .header(header::COOKIE, format!("ac_session={}", page.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().contains("spreadsheetml"));
    assert!(r.bytes().await.unwrap().starts_with(b"PK"), "an XLSX is a zip file");
    // Filters: a department, a status.
    let (_, html) = page.get(&format!("/muster?site=A&month={month}&department=Packing")).await;
    assert!(employee_row(&html, "102").is_some() && employee_row(&html, "101").is_none());
    let (_, html) = page.get(&format!("/muster?site=A&month={month}&status=P")).await;
    assert!(employee_row(&html, "101").is_some() && employee_row(&html, "102").is_none(), "only 101 has a P");

    // Day page: A's employee with punches, device, zone and why; B's employee is not found.
    let (s, html) = page.get(&format!("/employees/101/day/{tue}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(r#"data-testid="day-status" class="badge st st-P">P<"#), "{html}");
    assert!(html.contains("P means present."), "{html}");
    assert!(html.contains("09:20:00") && html.contains("Asia/Kolkata") && html.contains("(DEV-A)"), "{html}");
    assert!(html.contains(&format!("/manual-logs/new?employee=101&amp;date={tue}")));
    // 101 punching at B's device that day: counted for the day, but B's device is not shown to a viewer of A.
    ingest(&f.store, "B", 10, vec![punch("B", "101", at(tue, 12, 0), PunchState::CheckIn)]).await.unwrap();
    let (_, html) = page.get(&format!("/employees/101/day/{tue}")).await;
    assert!(!html.contains("DEV-B") && html.contains(r#"data-testid="day-punches-elsewhere""#), "{html}");
    let (_, html) = root.get(&format!("/employees/101/day/{tue}")).await;
    assert!(html.contains("(DEV-B)") && !html.contains("day-punches-elsewhere"), "{html}");
    let (s, _) = page.get(&format!("/employees/201/day/{mon}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, html) = page.get(&format!("/employees/103/day/{mon}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("&lt;script&gt;") && !html.contains("<script>alert"));

    // Devices: A's agent and device with their figures; nothing of B (its device, agent or fault).
    let (s, html) = page.get("/devices").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(r#"data-device="DEV-A""#) && html.contains(r#"data-agent="agent-A""#), "{html}");
    assert!(html.contains("<td>17</td>") && html.contains("-3 s (device behind)"), "buffer depth and drift: {html}");
    assert!(!html.contains("DEV-B") && !html.contains("agent-B") && !html.contains("device_unreachable"));
    let (_, html) = root.get("/devices").await;
    assert!(html.contains("DEV-B") && html.contains("device_unreachable at B") && html.contains("✗ no"));
    f.cleanup().await;
}

/// `username`'s dashboard.
async fn page_of<'a>(f: &'a AdminFixture, username: &str) -> (Page<'a>, String) {
    let (page, _) = form_login(f, username, "/dashboard").await;
    let (s, html) = page.get("/dashboard").await;
    assert_eq!(s, StatusCode::OK);
    (page, html)
}

async fn live_stream_is_scoped(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let (page, _) = form_login(&f, "viewerA", "/live").await;
    let (s, html) = page.get("/live").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(r#"data-testid="live-punches""#));
    let mut stream = page
        .http
        .get(format!("{}/live/events", f.central.url))
        .header(header::COOKIE, format!("ac_session={}", page.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/event-stream"));
    // Punches stored after the stream opened: B's first, then A's.
    let today = Utc::now().date_naive();
    let at_b = punch("B", "201", at(today, 3, 31), PunchState::CheckIn);
    let at_a = punch("A", "101", at(today, 3, 33), PunchState::CheckIn);
    ingest(&f.store, "B", 100, vec![at_b.clone()]).await.unwrap();
    ingest(&f.store, "A", 100, vec![at_a.clone()]).await.unwrap();
    let (key_a, key_b) = (at_a.key().to_hex(), at_b.key().to_hex());
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !text.contains(&key_a) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk()).await;
        match chunk {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("the stream ended or stalled before A's punch: {other:?}; got {text:?}"),
        }
    }
    assert!(text.contains("event: punch"), "{text}");
    let event = text.lines().find(|l| l.starts_with("data:") && l.contains(&key_a)).unwrap();
    let json: serde_json::Value = serde_json::from_str(event.trim_start_matches("data:").trim()).unwrap();
    assert_eq!((json["pin"].as_str(), json["site_id"].as_str()), (Some("101"), Some("A")));
    assert_eq!(json["employee_name"], "Employee 101");
    assert!(!text.contains(&key_b) && !text.contains("\"201\""), "B's punch reached a viewer of A: {text}");

    // Stopping the service ends the open stream cleanly (well before the 10 s grace the server gives requests).
    let pid = i32::try_from(f.central.process.pid().unwrap()).unwrap();
    // SAFETY: sending SIGTERM to the child process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => break,
            other => panic!("the stream did not end cleanly when the service stopped: {other:?}"),
        }
    }
    f.cleanup().await;
}

/// Today at site A (in its zone): 101 worked 09:00-18:00, 103 arrived late, 102 is on approved leave, 104 has not
/// come. Everyone's week-off is tomorrow's weekday, so the figures do not depend on the day the test runs.
async fn dashboard_counts_today(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Kolkata).date_naive();
    let off = today.succ_opt().unwrap().weekday();
    f.store.create_week_off_rule("NEXT", "Tomorrow's weekday", &WeekOffRule::weekly(&[off])).await.unwrap();
    add_employee(&f.store, "103", "A", "GEN").await.unwrap();
    add_employee(&f.store, "104", "A", "GEN").await.unwrap();
    for id in ["101", "102", "103", "104"] {
        let mut profile = f.store.employee_profile(id).await.unwrap().unwrap();
        profile.week_off_rule = Some("NEXT".into());
        f.store.update_employee_profile(&profile, today - chrono::Duration::days(1)).await.unwrap();
    }
    let punches = vec![
        punch("A", "101", at(today, 9, 0), PunchState::CheckIn),
        punch("A", "101", at(today, 18, 0), PunchState::CheckOut),
        punch("A", "103", at(today, 9, 40), PunchState::CheckIn),
        punch("A", "103", at(today, 18, 0), PunchState::CheckOut),
    ];
    ingest(&f.store, "A", 50, punches).await.unwrap();
    let leave = NewLeave {
        employee_id: "102".into(),
        from: today,
        to: today,
        kind: "CL".into(),
        paid: true,
        requested_by: "root".into(),
    };
    let id = f.store.request_leave(&leave).await.unwrap();
    f.store.decide_leave(id, true, "root").await.unwrap();
    f.settle().await.unwrap();

    let (_, html) = page_of(&f, "viewerA").await;
    let section = &html[html.find(r#"data-site="A""#).unwrap()..];
    // 104 is absent once the 09:00 shift started, not yet due before.
    let now = Utc::now().with_timezone(&chrono_tz::Asia::Kolkata).naive_local();
    let due = now.time() >= chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap();
    let (absent, not_yet) = if due { (1, 0) } else { (0, 1) };
    for (id, n) in [
        ("count-present", 2),
        ("count-absent", absent),
        ("count-not-yet-due", not_yet),
        ("count-late", 1),
        ("count-leave", 1),
    ] {
        assert!(section.contains(&format!(r#"data-testid="{id}">{n}<"#)), "{id} = {n}: {section}");
    }
    assert!(html.contains(&format!("{today}: 2 present, 1 on leave, {absent} absent")), "today's bar: {html}");
    f.cleanup().await;
}

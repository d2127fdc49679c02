//! The dashboard's editing pages against a real central-api, spoken to as a browser would (session cookie, forms
//! with the CSRF field, redirects not followed): a viewer sees no decision buttons and can post nothing; a form
//! with a bad value comes back with status 400 and the message next to the field; a manual punch entered and
//! approved through the pages changes the employee's computed day once the service's worker ran; an agent added on
//! the devices page gets a working token, shown once, that stops working when it is revoked there.

use std::time::{Duration, Instant};

use reqwest::{header, StatusCode};
use system_tests::admin::{first, AdminFixture, Auth, PASSWORD};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(
    a_viewer_sees_no_buttons_and_cannot_post,
    bad_values_come_back_next_to_their_field,
    an_approved_manual_punch_changes_the_day,
    agents_are_added_and_revoked_from_the_devices_page
);

/// A logged-in browser-like client.
struct Web<'a> {
    f: &'a AdminFixture,
    http: reqwest::Client,
    cookie: String,
    csrf: String,
}

/// A page's answer.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl<'a> Web<'a> {
    async fn login(f: &'a AdminFixture, username: &str) -> Self {
        let (auth, _) = f.login(username, PASSWORD).await.unwrap();
        let Auth::Session { cookie, csrf: Some(csrf) } = auth else { panic!("a session") };
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { f, http, cookie: format!("ac_session={cookie}"), csrf }
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Answer { status, location, body: response.text().await.unwrap() }
    }

    async fn get(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.f.central.url);
        Self::answer(self.http.get(url).header(header::COOKIE, &self.cookie).send().await.unwrap()).await
    }

    /// Posts `fields` with the session's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let url = format!("{}{path}", self.f.central.url);
        Self::answer(self.http.post(url).header(header::COOKIE, &self.cookie).form(fields).send().await.unwrap()).await
    }
}

/// Who posts, where, which fields, and the field the answer must name.
type Case<'w, 'a> = (&'w Web<'a>, &'static str, Vec<(&'static str, &'w str)>, &'static str);

/// A pending manual log of 101 on the fixture's first Thursday (which has only an out punch), through the API.
async fn pending_log(f: &AdminFixture) -> i64 {
    let root = f.token("root").await.unwrap();
    let thu = first(f.month, chrono::Weekday::Thu);
    let body = serde_json::json!({"employee_id": "101", "local_time": format!("{thu}T09:00:00"),
        "state": "check_in", "reason": "card left at home"});
    let (s, created) = f.call(reqwest::Method::POST, "/api/v1/manual-logs", &root, Some(body)).await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{created}");
    created["id"].as_i64().unwrap()
}

async fn a_viewer_sees_no_buttons_and_cannot_post(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let id = pending_log(&f).await;
    let viewer = Web::login(&f, "viewerA").await;
    let admin = Web::login(&f, "adminA").await;

    let page = admin.get("/manual-logs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("data-testid=\"approve-{id}\"")), "the admin may decide");
    let page = viewer.get("/manual-logs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("data-manual-log=\"{id}\"")), "the viewer sees the request");
    assert!(!page.body.contains("data-testid=\"approve-"), "but no Approve button");
    assert!(!page.body.contains("/manual-logs/new"), "and no link to add one");

    let thu = first(f.month, chrono::Weekday::Thu).to_string();
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/manual-logs/{id}/approve"), vec![]),
        (format!("/manual-logs/{id}/reject"), vec![]),
        (
            "/manual-logs".into(),
            vec![("employee", "101"), ("date", &thu), ("time", "09:00"), ("direction", "check_in"), ("reason", "x")],
        ),
        ("/holidays".into(), vec![("date", &thu), ("name", "Local"), ("kind", "company"), ("site_id", "A")]),
        ("/employees/101/edit".into(), vec![("name", "Renamed"), ("site_id", "A")]),
        ("/employees/new".into(), vec![("employee_id", "150"), ("name", "New"), ("site_id", "A")]),
        ("/shifts/GEN/edit".into(), vec![("name", "G"), ("start", "10:00"), ("end", "19:00")]),
    ];
    for (path, fields) in &posts {
        let answer = viewer.post(path, fields).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}: {}", answer.body);
    }
    for path in ["/manual-logs/new", "/employees/101/edit", "/employees/new", "/shifts/GEN/edit"] {
        assert_eq!(viewer.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    // Without the form's CSRF field even the admin is refused.
    let refused = admin.post_raw(&format!("/manual-logs/{id}/approve"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = admin.post_raw(&format!("/manual-logs/{id}/approve"), &[("_csrf", "forged")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    // Another site's admin does not even see it.
    let admin_b = Web::login(&f, "adminB").await;
    assert_eq!(admin_b.post(&format!("/manual-logs/{id}/approve"), &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(admin_b.get("/employees/101/edit").await.status, StatusCode::NOT_FOUND);

    let logs = f.store.list_manual_logs(None, None, Some("pending")).await.unwrap();
    assert_eq!(logs.iter().map(|l| l.id).collect::<Vec<_>>(), [id], "nothing was decided");
    let profile = f.store.employee_profile("101").await.unwrap().unwrap();
    assert_eq!(profile.name, "Employee 101", "nothing was renamed");
    assert_eq!(f.store.employee_profile("150").await.unwrap(), None, "nothing was created");
    assert!(f.store.holidays().await.unwrap().iter().all(|h| h.holiday.name != "Local"));
    // Without a session a page sends the browser to the login form.
    let anonymous = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = anonymous.get(format!("{}/manual-logs", f.central.url)).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert!(answer.headers()[header::LOCATION].to_str().unwrap().starts_with("/login?next="));
    f.cleanup().await;
}

async fn bad_values_come_back_next_to_their_field(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let admin = Web::login(&f, "adminA").await;
    let root = Web::login(&f, "root").await;
    let thu = first(f.month, chrono::Weekday::Thu).to_string();
    let manual = |time: &'static str, direction: &'static str, employee: &'static str| {
        vec![
            ("employee", employee),
            ("date", thu.as_str()),
            ("time", time),
            ("direction", direction),
            ("reason", "kept reason text"),
        ]
    };
    let cases: Vec<Case> = vec![
        (&admin, "/manual-logs", manual("25:99", "check_in", "101"), "time"),
        (&admin, "/manual-logs", manual("09:00", "sideways", "101"), "direction"),
        (&admin, "/manual-logs", manual("09:00", "check_in", "201"), "employee"),
        (&admin, "/employees/new", vec![("employee_id", "150"), ("name", " "), ("site_id", "A")], "name"),
        (
            &admin,
            "/employees/new",
            vec![("employee_id", "123456789012345678901234567890123"), ("name", "N"), ("site_id", "A")],
            "employee_id",
        ),
        (
            &admin,
            "/employees/101/edit",
            vec![("name", "E"), ("site_id", "A"), ("date_of_joining", "2026-03-01"), ("date_of_leaving", "2026-02-01")],
            "date_of_leaving",
        ),
        (&admin, "/employees/101/edit", vec![("name", "E"), ("site_id", "A"), ("shift_code", "NOPE")], "shift_code"),
        (
            &admin,
            "/holidays",
            vec![("date", "2026-13-01"), ("name", "H"), ("kind", "public"), ("site_id", "A")],
            "date",
        ),
        (
            &admin,
            "/holidays",
            vec![("date", "2026-12-01"), ("name", "H"), ("kind", "festive"), ("site_id", "A")],
            "kind",
        ),
        (
            &root,
            "/shifts/GEN/edit",
            vec![("name", "G"), ("start", "09:00"), ("end", "18:00"), ("grace_late_in_mins", "5000")],
            "grace_late_in_mins",
        ),
        (&root, "/shifts/GEN/edit", vec![("name", "G"), ("start", "09:00"), ("end", "09:00")], "end"),
        (&root, "/shifts/new", vec![("code", "GEN"), ("name", "Again"), ("start", "09:00"), ("end", "18:00")], "code"),
    ];
    for (web, path, fields, field) in cases {
        let answer = web.post(path, &fields).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path} {field}: {}", answer.body);
        assert!(answer.body.contains(&format!("data-testid=\"error-{field}\"")), "{path}: {field} is named");
        assert!(answer.body.contains(&format!("id=\"{field}\"")) && answer.body.contains("aria-invalid=\"true\""));
        assert!(answer.body.contains("<form"), "{path}: the form comes back");
    }
    let answer = admin.post("/manual-logs", &manual("25:99", "check_in", "101")).await;
    assert!(answer.body.contains("value=\"kept reason text\""), "what was typed is kept");
    assert!(f.store.list_manual_logs(None, None, None).await.unwrap().is_empty(), "nothing was stored");
    let shifts = f.store.shifts().await.unwrap();
    let gen = shifts.iter().find(|s| s.shift.code == "GEN").unwrap();
    assert_eq!(gen.shift.grace_late_in, chrono::Duration::zero(), "GEN is unchanged");

    // Good values are saved, and the list says so once.
    let saved = root
        .post(
            "/shifts/GEN/edit",
            &[("name", "General"), ("start", "09:00"), ("end", "18:00"), ("grace_late_in_mins", "15")],
        )
        .await;
    assert_eq!((saved.status, saved.location.as_deref()), (StatusCode::SEE_OTHER, Some("/shifts")), "{}", saved.body);
    let shifts = f.store.shifts().await.unwrap();
    assert_eq!(shifts.iter().find(|s| s.shift.code == "GEN").unwrap().shift.grace_late_in.num_minutes(), 15);
    let added = admin
        .post(
            "/employees/new",
            &[("employee_id", "150"), ("name", "New Hire"), ("site_id", "A"), ("shift_code", "GEN"), ("active", "on")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let hired = f.store.employee_profile("150").await.unwrap().unwrap();
    assert_eq!((hired.site_id.as_deref(), hired.shift_code.as_deref(), hired.active), (Some("A"), Some("GEN"), true));
    // An id that is not URL-safe is linked encoded, and the link works.
    let odd = admin.post("/employees/new", &[("employee_id", "E 7/x"), ("name", "Odd Id"), ("site_id", "A")]).await;
    assert_eq!(odd.status, StatusCode::SEE_OTHER, "{}", odd.body);
    let listed = admin.get("/employees?q=odd").await;
    assert!(listed.body.contains("href=\"/employees/E%207%2Fx/edit\""), "{}", listed.body);
    let edit = admin.get("/employees/E%207%2Fx/edit").await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains("action=\"/employees/E%207%2Fx/edit\""));
    let listed = admin.get("/employees?q=new+hire").await;
    assert!(listed.body.contains("data-employee=\"150\"") && !listed.body.contains("data-employee=\"101\""));
    let holiday = admin
        .post("/holidays", &[("date", "2026-12-01"), ("name", "Plant day"), ("kind", "company"), ("site_id", "A")])
        .await;
    assert_eq!(holiday.status, StatusCode::SEE_OTHER, "{}", holiday.body);
    let id = f.store.holidays().await.unwrap().into_iter().find(|h| h.holiday.name == "Plant day").unwrap().id;
    assert_eq!(admin.post(&format!("/holidays/{id}/delete"), &[]).await.status, StatusCode::SEE_OTHER);
    assert!(f.store.holidays().await.unwrap().iter().all(|h| h.id != id), "removed");
    f.cleanup().await;
}

async fn an_approved_manual_punch_changes_the_day(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let admin = Web::login(&f, "adminA").await;
    let thu = first(f.month, chrono::Weekday::Thu);
    let before = f.store.attendance(Some("101"), thu, thu).await.unwrap();
    assert_eq!(before[0].status.as_deref(), Some("A"), "only an out punch: {before:?}");

    let form = admin.get(&format!("/manual-logs/new?employee=101&date={thu}")).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(&format!("value=\"{thu}\"")), "the date is filled in");
    let thu_text = thu.to_string();
    let saved = admin
        .post(
            "/manual-logs",
            &[
                ("employee", "101"),
                ("date", &thu_text),
                ("time", "09:00"),
                ("direction", "check_in"),
                ("reason", "forgot the card"),
            ],
        )
        .await;
    assert_eq!(
        (saved.status, saved.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/manual-logs")),
        "{}",
        saved.body
    );
    let logs = f.store.list_manual_logs(None, None, Some("pending")).await.unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!((logs[0].requested_by.as_str(), logs[0].reason.as_str()), ("adminA", "forgot the card"));
    let id = logs[0].id;
    let page = admin.get("/manual-logs").await;
    assert!(page.body.contains(&format!("data-testid=\"approve-{id}\"")));

    let approved = admin.post(&format!("/manual-logs/{id}/approve"), &[]).await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER);
    // The service's own worker recomputes the day (no drain here).
    let deadline = Instant::now() + Duration::from_secs(10);
    let day = loop {
        let rows = f.store.attendance(Some("101"), thu, thu).await.unwrap();
        if rows[0].status.as_deref() == Some("P") {
            break rows[0].clone();
        }
        assert!(Instant::now() < deadline, "the approved punch never reached the day: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(day.in_time, Some(thu.and_hms_opt(9, 0, 0).unwrap()));
    let page = admin.get("/manual-logs").await;
    assert!(!page.body.contains(&format!("data-testid=\"approve-{id}\"")), "decided: no more buttons");
    assert!(page.body.contains("approved by adminA"), "listed as decided");
    // Deciding twice changes nothing and says so.
    let again = admin.post(&format!("/manual-logs/{id}/reject"), &[]).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let decided = f.store.list_manual_logs(None, None, Some("approved")).await.unwrap();
    assert_eq!(decided.len(), 1);
    f.cleanup().await;
}

/// Sends one punch of `agent` at site A with `token`; returns the ingest answer's status.
async fn ingest_as(f: &AdminFixture, agent: &str, token: &str, seq: u64) -> StatusCode {
    let punches = system_tests::central::punches("A", "DEV-A", &["101"], system_tests::central::day_at(7), 1);
    let body = system_tests::central::batch(agent, "A", seq, punches);
    f.central.post_batch(&f.http, token, &body, protocol::Encoding::Json).await.unwrap().status()
}

async fn agents_are_added_and_revoked_from_the_devices_page(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let admin = Web::login(&f, "adminA").await;
    let viewer = Web::login(&f, "viewerA").await;
    let admin_b = Web::login(&f, "adminB").await;
    let new_agent = [("agent_id", "gate-2"), ("site_id", "A")];

    let page = viewer.get("/devices").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("data-testid=\"agent-form\""), "a viewer gets no form");
    assert_eq!(viewer.post("/agents", &new_agent).await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin_b.post("/agents", &new_agent).await.status, StatusCode::NOT_FOUND, "B's admin does not see A");
    assert_eq!(admin.post_raw("/agents", &new_agent).await.status, StatusCode::FORBIDDEN, "no CSRF field");
    let refused = admin.post("/agents", &[("agent_id", "bad id!"), ("site_id", "A")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("agent_id"), "{}", refused.body);
    assert_eq!(f.store.agent("gate-2").await.unwrap().map(|a| a.agent_id), None, "nothing was registered");

    assert!(admin.get("/devices").await.body.contains("data-testid=\"agent-form\""), "the admin gets the form");
    let created = admin.post("/agents", &new_agent).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let token = created
        .body
        .split("data-testid=\"agent-token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the page shows the token")
        .to_owned();
    let (_, keys) = protocol::AgentKeys::from_token(&token).unwrap();
    assert!(
        created.body.contains(&format!("data-testid=\"broker-password\">{}<", keys.broker_password())),
        "the page shows the MQTT broker login the agent derives from its token: {}",
        created.body
    );
    assert_eq!(ingest_as(&f, "gate-2", &token, 1).await, StatusCode::OK, "the new token is accepted");
    assert_eq!(admin.post("/agents", &new_agent).await.status, StatusCode::CONFLICT, "the id is taken");

    let page = admin.get("/devices").await;
    assert!(page.body.contains("data-testid=\"revoke-gate-2\""), "a revoke button for the new agent");
    assert!(!viewer.get("/devices").await.body.contains("data-testid=\"revoke-"), "none for a viewer");
    assert_eq!(viewer.post("/agents/gate-2/revoke", &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin_b.post("/agents/gate-2/revoke", &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(ingest_as(&f, "gate-2", &token, 2).await, StatusCode::OK, "still valid after refused revokes");
    let revoked = admin.post("/agents/gate-2/revoke", &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(revoked.location.as_deref(), Some("/devices"));
    assert_eq!(ingest_as(&f, "gate-2", &token, 3).await, StatusCode::UNAUTHORIZED, "a revoked token is refused");
    assert!(!admin.get("/devices").await.body.contains("data-testid=\"revoke-gate-2\""), "no button once revoked");
    f.cleanup().await;
}

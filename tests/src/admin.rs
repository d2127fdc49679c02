//! Admin API test support: a served central-api with two sites (`A`, `B`), employees, a month of computed
//! attendance, and administrators of every role; plus a small client that speaks with a bearer token or a session.

use anyhow::{bail, Context};
use central_api::attendance::jobs::bulk::{reprocess, Target};
use central_api::attendance::jobs::worker::drain;
use central_api::store::Store;
use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use protocol::PunchState;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::attendance::{add_employee, at, ingest, punch, setup_site, store_of};
use crate::central::{client, Backend, Central, CentralDb};

/// The password every test administrator has.
pub const PASSWORD: &str = "correct horse battery";

/// How a request authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(String),
    /// The session cookie's value and the CSRF token (`None`: send no CSRF header).
    Session {
        cookie: String,
        csrf: Option<String>,
    },
}

/// A served central-api with its database and test store.
pub struct AdminFixture {
    pub db: CentralDb,
    pub store: Store,
    pub central: Central,
    pub http: reqwest::Client,
    /// First day of the fixture's month (the previous calendar month).
    pub month: NaiveDate,
}

/// The first `weekday` of the month starting at `first`.
pub fn first(first: NaiveDate, weekday: Weekday) -> NaiveDate {
    first.iter_days().find(|d| d.weekday() == weekday).unwrap_or(first)
}

impl AdminFixture {
    /// Brings attendance up to date: drains the queue here, then waits until no day of a computable employee is
    /// queued, so that days the served replica's own worker held (PostgreSQL's `drain` skips rows another
    /// transaction holds) are committed too; 30 s at most. Days of unknown PINs stay queued by design.
    ///
    /// # Errors
    /// When draining fails or such days are still queued after 30 s.
    pub async fn settle(&self) -> anyhow::Result<()> {
        const DUE: &str = "SELECT count(*) FROM attendance_dirty d JOIN employees e ON e.employee_id = d.employee_id \
                           WHERE e.active AND e.site_id IS NOT NULL AND e.shift_code IS NOT NULL";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            central_api::attendance::jobs::worker::drain(&self.store, 10_000).await?;
            let left = self.db.scalar(DUE).await?;
            if left == 0 {
                return Ok(());
            }
            anyhow::ensure!(std::time::Instant::now() < deadline, "{left} days still queued for attendance after 30 s");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Sites A and B; employees `101` (A, Production), `102` (A, Packing), `201` (B); in the previous month, 101
    /// works the first Monday (09:00-18:00), is late the first Tuesday (09:20-18:00), the first Wednesday is a
    /// holiday at A, and punches only out the first Thursday; unknown PIN `999` punches at A and `998` at B. The
    /// month is computed. Administrators: `root`, `adminA` (admin of A), `viewerA` (viewer of A), `adminB`.
    ///
    /// # Errors
    /// When any step fails.
    pub async fn new(backend: Backend) -> anyhow::Result<Self> {
        Self::new_with_env(backend, &[]).await
    }

    /// As [`AdminFixture::new`], serving with extra environment (`CENTRAL_API_...` overrides).
    ///
    /// # Errors
    /// When any step fails.
    pub async fn new_with_env(backend: Backend, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let db = CentralDb::new(backend).await;
        let store = store_of(&db, 4).await?;
        setup_site(&store, "A").await?;
        setup_site(&store, "B").await?;
        add_employee(&store, "101", "A", "GEN").await?;
        add_employee(&store, "102", "A", "GEN").await?;
        add_employee(&store, "201", "B", "GEN").await?;
        let mut p102 = store.employee_profile("102").await?.context("102")?;
        p102.department = "Packing".into();
        store.update_employee_profile(&p102, Utc::now().date_naive()).await?;
        let today = Utc::now().date_naive();
        let month = (today.with_day(1).context("day 1")? - Duration::days(1)).with_day(1).context("day 1")?;
        let (mon, tue, wed, thu) = (
            first(month, Weekday::Mon),
            first(month, Weekday::Tue),
            first(month, Weekday::Wed),
            first(month, Weekday::Thu),
        );
        let punches = vec![
            punch("A", "101", at(mon, 9, 0), PunchState::CheckIn),
            punch("A", "101", at(mon, 18, 0), PunchState::CheckOut),
            punch("A", "101", at(tue, 9, 20), PunchState::CheckIn),
            punch("A", "101", at(tue, 18, 0), PunchState::CheckOut),
            punch("A", "101", at(thu, 18, 0), PunchState::CheckOut),
            punch("A", "999", at(mon, 9, 5), PunchState::CheckIn),
        ];
        ingest(&store, "A", 1, punches).await?;
        ingest(
            &store,
            "B",
            1,
            vec![
                punch("B", "201", at(mon, 9, 0), PunchState::CheckIn),
                punch("B", "998", at(mon, 9, 0), PunchState::CheckIn),
            ],
        )
        .await?;
        let site_a = "A".parse().context("site")?;
        store
            .add_holiday(&central_api::attendance::engine::Holiday {
                date: wed,
                name: "Founders' day".into(),
                kind: central_api::attendance::engine::HolidayKind::Company,
                site: Some(site_a),
            })
            .await?;
        let last = (month + Duration::days(40)).with_day(1).context("day 1")? - Duration::days(1);
        reprocess(&store, &Target::All, month, last, Utc::now(), None).await?;
        drain(&store, 10_000).await?;
        for (name, role, site) in [
            ("root", "root", None),
            ("adminA", "admin", Some("A")),
            ("viewerA", "viewer", Some("A")),
            ("adminB", "admin", Some("B")),
        ] {
            let mut args = vec!["create-admin", name, "--role", role, "--password-stdin"];
            if let Some(site) = site {
                args.extend(["--site", site]);
            }
            db.cli_with_stdin(&args, Some(&format!("{PASSWORD}\n"))).await?;
        }
        // Revoked agent tokens are refused at once (no auth cache).
        let mut env = vec![("CENTRAL_API_AUTH_CACHE_TTL_SECS", "0")];
        env.extend_from_slice(extra_env);
        let central = db.serve(&env).await?;
        Ok(Self { db, store, central, http: client(None), month })
    }

    /// An empty database with only the `root` administrator, served with extra environment: for tests that set
    /// everything up through the public interfaces. `month` is the previous calendar month's first day.
    ///
    /// # Errors
    /// When any step fails.
    pub async fn blank(backend: Backend, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let db = CentralDb::new(backend).await;
        let store = store_of(&db, 4).await?;
        db.cli_with_stdin(
            &["create-admin", "root", "--role", "root", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await?;
        let mut env =
            vec![("CENTRAL_API_AUTH_CACHE_TTL_SECS", "0"), ("CENTRAL_API_ATTENDANCE__POLL_INTERVAL_MS", "50")];
        env.extend_from_slice(extra_env);
        let central = db.serve(&env).await?;
        let today = Utc::now().date_naive();
        let month = (today.with_day(1).context("day 1")? - Duration::days(1)).with_day(1).context("day 1")?;
        Ok(Self { db, store, central, http: client(None), month })
    }

    /// Creates administrator `name` with `role` on `site` (the command line, as an operator would).
    ///
    /// # Errors
    /// When the command fails.
    pub async fn create_admin(&self, name: &str, role: &str, site: Option<&str>) -> anyhow::Result<()> {
        let mut args = vec!["create-admin", name, "--role", role, "--password-stdin"];
        if let Some(site) = site {
            args.extend(["--site", site]);
        }
        self.db.cli_with_stdin(&args, Some(&format!("{PASSWORD}\n"))).await?;
        Ok(())
    }

    /// Sends a request; returns the status and the body as JSON (`Null` when empty or not JSON).
    ///
    /// # Errors
    /// When the request cannot be sent.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let response = self.send(method, path, auth, body).await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// Sends a request and returns the raw response.
    ///
    /// # Errors
    /// When the request cannot be sent.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.request(method, format!("{}{path}", self.central.url));
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => request = request.bearer_auth(token),
            Auth::Session { cookie, csrf } => {
                request = request.header("cookie", format!("ac_session={cookie}"));
                if let Some(csrf) = csrf {
                    request = request.header("x-csrf-token", csrf);
                }
            }
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Ok(request.send().await?)
    }

    /// Logs `username` in and returns the session (cookie value and CSRF token) and the Set-Cookie header.
    ///
    /// # Errors
    /// When the login is refused.
    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<(Auth, String)> {
        let body = serde_json::json!({ "username": username, "password": password });
        let response = self.send(Method::POST, "/api/v1/login", &Auth::None, Some(body)).await?;
        if response.status() != StatusCode::OK {
            bail!("login {username}: {}", response.status());
        }
        let set_cookie = response.headers().get("set-cookie").context("no Set-Cookie")?.to_str()?.to_owned();
        let cookie = set_cookie
            .split(';')
            .next()
            .and_then(|kv| kv.strip_prefix("ac_session="))
            .context("no ac_session cookie")?
            .to_owned();
        let me: Value = response.json().await?;
        let csrf = me["csrf_token"].as_str().context("no csrf_token")?.to_owned();
        Ok((Auth::Session { cookie, csrf: Some(csrf) }, set_cookie))
    }

    /// Logs in and issues a bearer token for `username`.
    ///
    /// # Errors
    /// When a step is refused.
    pub async fn token(&self, username: &str) -> anyhow::Result<Auth> {
        let (session, _) = self.login(username, PASSWORD).await?;
        let (status, body) =
            self.call(Method::POST, "/api/v1/tokens", &session, Some(serde_json::json!({ "label": "tests" }))).await?;
        if status != StatusCode::CREATED {
            bail!("issuing a token for {username}: {status} {body}");
        }
        Ok(Auth::Bearer(body["token"].as_str().context("no token")?.to_owned()))
    }

    /// Stops the service and drops the database.
    pub async fn cleanup(self) {
        drop(self.central);
        self.store.close().await;
        self.db.cleanup().await;
    }
}

/// The `field` of every object in a JSON array, as strings.
pub fn strings(list: &Value, field: &str) -> Vec<String> {
    list.as_array().map(|a| a.iter().filter_map(|v| v[field].as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

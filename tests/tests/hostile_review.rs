//! Issue 12 (hostile review), the central findings, each attack or fault reproduced against a real central-api on
//! SQLite and on PostgreSQL: an over-limit bincode batch is a size refusal (413) like the JSON one; the session
//! cookie is `Secure` behind a TLS proxy (`public_url`) and under direct TLS; pages and API answers carry the
//! security headers (HSTS only under HTTPS); the CSRF token is stored hashed; administrator tokens expire and record
//! their last use (API, command line, dashboard page); a 409 on a shared id names no site.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use system_tests::admin::{AdminFixture, Auth, PASSWORD};
use system_tests::central::{batch, client, day_at, punches, Backend, CentralDb};
use system_tests::on_both_backends;
use system_tests::web_client::Web;

on_both_backends!(
    bincode_batch_over_the_punch_limit_is_413,
    cookie_flags_security_headers_and_hashed_csrf,
    admin_tokens_expire_and_record_last_use,
    conflicts_on_shared_ids_name_no_site,
    early_refusals_reach_a_client_still_sending,
);

/// The text column of every row `sql` returns.
async fn texts(db: &CentralDb, sql: &str) -> Vec<String> {
    let rows: Vec<(String,)> = match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
    };
    rows.into_iter().map(|(s,)| s).collect()
}

/// Runs `sql` with one time bound as `$1`.
async fn exec_at(db: &CentralDb, sql: &str, at: DateTime<Utc>) {
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind(at).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query(sql).bind(at).execute(&mut conn).await.unwrap();
        }
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn bincode_batch_over_the_punch_limit_is_413(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);
    let limit = protocol::limits::MAX_PUNCHES_PER_BATCH;
    // One over the limit, and so many that bincode's own allocation budget runs out first (it answered 400
    // "malformed: LimitExceeded" before the fix); both bodies are under the byte limit.
    for count in [limit + 1, 60_000] {
        let many = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1"], day_at(0), count));
        let body = bincode::serde::encode_to_vec(&many, bincode::config::standard()).unwrap();
        assert!(body.len() <= protocol::limits::MAX_ENVELOPE_BYTES, "{count} punches: {} bytes", body.len());
        let response = central
            .post_raw(&http, "/api/v1/ingest", Some(&token), protocol::Encoding::BINCODE_CONTENT_TYPE, body)
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!((status, answer["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("too_many")), "{answer}");
        assert!(answer["message"].as_str().unwrap_or_default().contains("punches"), "{answer}");
        // The JSON encoding of the same batch is refused as too large too: as too many punches when it fits the
        // byte limit, before its body is read when it does not (60,000 punches), and the answer still arrives.
        let json = serde_json::to_vec(&many).unwrap();
        let response = central
            .post_raw(&http, "/api/v1/ingest", Some(&token), protocol::Encoding::JSON_CONTENT_TYPE, json)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "JSON, {count} punches");
    }
    assert_eq!(db.all_logs().await, 0);
    drop(central);
    db.cleanup().await;
}

/// Checks the headers every answer carries and the page/API policies; `https`: HSTS expected.
async fn check_headers(http: &reqwest::Client, base: &str, https: bool) {
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let api = http.get(format!("{base}/api/v1/me")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let docs = http.get(format!("{base}/api/docs")).send().await.unwrap();
    for response in [&page, &api, &docs] {
        let url = response.url().to_string();
        assert_eq!(header(response, "x-content-type-options").as_deref(), Some("nosniff"), "{url}");
        assert_eq!(header(response, "x-frame-options").as_deref(), Some("DENY"), "{url}");
        assert_eq!(header(response, "referrer-policy").as_deref(), Some("same-origin"), "{url}");
        let csp = header(response, "content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{url}: {csp}");
        let hsts = header(response, "strict-transport-security");
        if https {
            assert_eq!(hsts.as_deref(), Some("max-age=31536000"), "{url}");
        } else {
            assert_eq!(hsts, None, "{url}: HSTS over plain HTTP");
        }
    }
    let page_csp = header(&page, "content-security-policy").unwrap_or_default();
    assert!(page_csp.contains("script-src 'self'") && page_csp.contains("form-action 'self'"), "{page_csp}");
    assert_eq!(header(&api, "content-security-policy").as_deref(), Some("default-src 'none'; frame-ancestors 'none'"));
    assert_eq!(header(&api, "cache-control").as_deref(), Some("no-store"));
    // The docs page's inline stylesheet is allowed by its hash.
    let docs_csp = header(&docs, "content-security-policy").unwrap_or_default();
    let html = docs.text().await.unwrap();
    let style = html.split("<style>").nth(1).and_then(|s| s.split("</style>").next()).expect("docs style");
    let hash = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, Sha256::digest(style.as_bytes()));
    assert!(docs_csp.contains(&format!("'sha256-{hash}'")), "{docs_csp}");
}

async fn cookie_flags_security_headers_and_hashed_csrf(backend: Backend) {
    // Plain HTTP, no public URL: no Secure flag, no HSTS.
    let f = AdminFixture::blank(backend, &[]).await.unwrap();
    let (session, set_cookie) = f.login("root", PASSWORD).await.unwrap();
    assert!(set_cookie.contains("HttpOnly") && !set_cookie.contains("Secure"), "{set_cookie}");
    check_headers(&f.http, &f.central.url, false).await;

    // The CSRF token handed out works, and the database holds only its SHA-256.
    let Auth::Session { csrf: Some(csrf), .. } = &session else { panic!("a session") };
    let stored = texts(&f.db, "SELECT csrf_token FROM admin_sessions").await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], *csrf, "the CSRF token is stored in clear");
    assert_eq!(stored[0], hex::encode(Sha256::digest(csrf.as_bytes())));
    let (s, _) = f.call(Method::POST, "/api/v1/tokens", &session, Some(json!({"label": "x"}))).await.unwrap();
    assert_eq!(s, StatusCode::CREATED);
    // The stored value is not a token: sent back, it is refused.
    let Auth::Session { cookie, .. } = &session else { panic!("a session") };
    let with_stored = Auth::Session { cookie: cookie.clone(), csrf: Some(stored[0].clone()) };
    let (s, body) = f.call(Method::POST, "/api/v1/tokens", &with_stored, Some(json!({"label": "y"}))).await.unwrap();
    assert_eq!((s, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_required")));
    // Pages get the same token, derived from the cookie, and their forms work with it.
    let web = Web::login(&f, "root").await;
    let tokens_page = web.get("/tokens").await;
    assert_eq!(tokens_page.status, StatusCode::OK, "{}", tokens_page.body);
    let (s, me) = f.call(Method::GET, "/api/v1/me", &session, None).await.unwrap();
    assert_eq!((s, me["csrf_token"].as_str()), (StatusCode::OK, Some(csrf.as_str())));
    drop(f);

    // Behind a TLS proxy: public_url https makes the cookie Secure and adds HSTS.
    let f =
        AdminFixture::blank(backend, &[("CENTRAL_API_PUBLIC_URL", "https://attendance.example.com")]).await.unwrap();
    let (_, set_cookie) = f.login("root", PASSWORD).await.unwrap();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    check_headers(&f.http, &f.central.url, true).await;
    drop(f);

    // Central serving TLS itself: Secure and HSTS too.
    let db = CentralDb::new(backend).await;
    db.cli_with_stdin(&["create-admin", "root", "--role", "root", "--password-stdin"], Some(&format!("{PASSWORD}\n")))
        .await
        .unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert_path, key_path) = (db.dir().join("cert.pem"), db.dir().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let central = db
        .serve(&[
            ("CENTRAL_API_TLS__CERT_FILE", cert_path.to_str().unwrap()),
            ("CENTRAL_API_TLS__KEY_FILE", key_path.to_str().unwrap()),
        ])
        .await
        .unwrap();
    assert!(central.url.starts_with("https://"), "{}", central.url);
    let https = client(Some(cert.cert.pem().as_bytes()));
    let login = https
        .post(format!("{}/api/v1/login", central.url))
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(header(&login, "set-cookie").unwrap_or_default().contains("; Secure"));
    check_headers(&https, &central.url, true).await;
    drop(central);
    db.cleanup().await;
}

/// `GET /api/v1/tokens` as `auth`: the token with this id.
async fn listed(f: &AdminFixture, auth: &Auth, id: &str) -> Value {
    let (s, tokens) = f.call(Method::GET, "/api/v1/tokens", auth, None).await.unwrap();
    assert_eq!(s, StatusCode::OK, "{tokens}");
    tokens.as_array().unwrap().iter().find(|t| t["token_id"] == id).cloned().unwrap_or(Value::Null)
}

async fn admin_tokens_expire_and_record_last_use(backend: Backend) {
    let f = AdminFixture::blank(backend, &[]).await.unwrap();
    let (session, _) = f.login("root", PASSWORD).await.unwrap();
    let issue = |body: Value| f.call(Method::POST, "/api/v1/tokens", &session, Some(body));

    // An expiry in the past or too far ahead is refused, naming the field.
    let past = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    let (s, body) = issue(json!({"label": "old", "expires_at": past})).await.unwrap();
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("expires_at"), "{body}");
    let far = (Utc::now() + Duration::days(5000)).to_rfc3339();
    let (s, _) = issue(json!({"label": "far", "expires_at": far})).await.unwrap();
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A token expiring in 3 s works, is listed with its expiry and last use, then answers 401 saying it expired.
    let expires = Utc::now() + Duration::seconds(3);
    let (s, issued) = issue(json!({"label": "short", "expires_at": expires.to_rfc3339()})).await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    let short = Auth::Bearer(issued["token"].as_str().unwrap().to_owned());
    let id = issued["token_id"].as_str().unwrap().to_owned();
    assert_eq!(listed(&f, &session, &id).await["last_used_at"], Value::Null, "never used yet");
    let (s, _) = f.call(Method::GET, "/api/v1/me", &short, None).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    let first = listed(&f, &session, &id).await;
    let listed_expiry: DateTime<Utc> = serde_json::from_value(first["expires_at"].clone()).unwrap();
    assert!((listed_expiry - expires).num_milliseconds().abs() < 1000, "{first}");
    let used: DateTime<Utc> = serde_json::from_value(first["last_used_at"].clone()).expect("last_used_at set");
    assert!((Utc::now() - used).num_seconds() < 30, "{first}");
    // A second use within the minute writes nothing.
    let (s, _) = f.call(Method::GET, "/api/v1/me", &short, None).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed(&f, &session, &id).await["last_used_at"], first["last_used_at"], "throttled to a minute");
    tokio::time::sleep((expires - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(300))
        .await;
    let (s, body) = f.call(Method::GET, "/api/v1/me", &short, None).await.unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("expired") && message.contains(&id), "{message}");

    // A use more than a minute after the recorded one is recorded again.
    let (_, issued) = issue(json!({"label": "long"})).await.unwrap();
    let long = Auth::Bearer(issued["token"].as_str().unwrap().to_owned());
    let long_id = issued["token_id"].as_str().unwrap().to_owned();
    assert_eq!(listed(&f, &session, &long_id).await["expires_at"], Value::Null);
    let earlier = Utc::now() - Duration::minutes(2);
    exec_at(&f.db, &format!("UPDATE admin_tokens SET last_used_at = $1 WHERE token_id = '{long_id}'"), earlier).await;
    let (s, _) = f.call(Method::GET, "/api/v1/me", &long, None).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    let again: DateTime<Utc> =
        serde_json::from_value(listed(&f, &session, &long_id).await["last_used_at"].clone()).unwrap();
    assert!(again > earlier + Duration::seconds(60), "{again} after {earlier}");

    // The command line issues (with an expiry), lists and revokes.
    let bad = f.db.cli(&["issue-token", "root", "--label", "cli", "--expires-at", &past]).await.unwrap_err();
    assert!(bad.to_string().contains("not in the future"), "{bad}");
    let token = f.db.cli(&["issue-token", "root", "--label", "cli", "--expires-in-days", "2"]).await.unwrap();
    let cli = Auth::Bearer(token.trim().to_owned());
    let (s, me) = f.call(Method::GET, "/api/v1/me", &cli, None).await.unwrap();
    assert_eq!((s, me["username"].as_str()), (StatusCode::OK, Some("root")));
    let lines = f.db.cli(&["list-tokens", "root"]).await.unwrap();
    let cli_row: Value =
        lines.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|t| t["label"] == "cli").expect("listed");
    let cli_expiry: DateTime<Utc> = serde_json::from_value(cli_row["expires_at"].clone()).unwrap();
    assert!((cli_expiry - (Utc::now() + Duration::days(2))).num_seconds().abs() < 120, "{cli_row}");
    assert!(cli_row["last_used_at"].is_string(), "{cli_row}");
    let cli_id = cli_row["token_id"].as_str().unwrap();
    f.db.cli(&["revoke-token", "root", cli_id]).await.unwrap();
    let (s, _) = f.call(Method::GET, "/api/v1/me", &cli, None).await.unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The dashboard's token page: lists, issues with an expiry, refuses a bad one, revokes.
    let web = Web::login(&f, "root").await;
    let page = web.get("/tokens").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&long_id) && page.body.contains("expired"), "{}", page.body);
    let bad = web.post("/tokens", &[("label", "web"), ("expires_in_days", "soon")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("expires_in_days"), "{}", bad.body);
    let made = web.post("/tokens", &[("label", "web"), ("expires_in_days", "7")]).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let web_token = made.body.split("adm_").nth(1).and_then(|s| s.split('<').next()).expect("token shown");
    let web_auth = Auth::Bearer(format!("adm_{web_token}"));
    let (s, _) = f.call(Method::GET, "/api/v1/me", &web_auth, None).await.unwrap();
    assert_eq!(s, StatusCode::OK);
    let web_id = web_token.split('_').next().unwrap().to_owned();
    assert!(listed(&f, &session, &web_id).await["expires_at"].is_string());

    // Another administrator (of another site) and a viewer see only their own tokens and cannot revoke root's.
    f.db.create_site("B").await.unwrap();
    f.create_admin("adminB", "admin", Some("B")).await.unwrap();
    f.create_admin("viewerB", "viewer", Some("B")).await.unwrap();
    for name in ["adminB", "viewerB"] {
        let other = Web::login(&f, name).await;
        let page = other.get("/tokens").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains(&web_id) && !page.body.contains(&long_id), "{name} sees root's tokens");
        let revoke = other.post(&format!("/tokens/{web_id}/revoke"), &[]).await;
        assert_eq!(revoke.status, StatusCode::NOT_FOUND, "{name}: {}", revoke.body);
        let (other_session, _) = f.login(name, PASSWORD).await.unwrap();
        assert_eq!(listed(&f, &other_session, &web_id).await, Value::Null);
    }
    let (s, _) = f.call(Method::GET, "/api/v1/me", &web_auth, None).await.unwrap();
    assert_eq!(s, StatusCode::OK, "root's token survived the others' attempts");
    let revoked = web.post(&format!("/tokens/{web_id}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let (s, _) = f.call(Method::GET, "/api/v1/me", &web_auth, None).await.unwrap();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    drop(f);
}

async fn conflicts_on_shared_ids_name_no_site(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let admin_a = f.token("adminA").await.unwrap();
    let admin_b = f.token("adminB").await.unwrap();
    let viewer_a = f.token("viewerA").await.unwrap();
    let fixture = &f;
    let post = |auth: &Auth, path: &str, body: Value| {
        let (auth, path) = (auth.clone(), path.to_owned());
        async move { fixture.call(Method::POST, &path, &auth, Some(body)).await.unwrap() }
    };
    // Site B's records.
    let (s, body) = post(&admin_b, "/api/v1/agents", json!({"agent_id": "gate-b", "site_id": "B"})).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let device = json!({"serial": "DEV-B9", "site_id": "B", "name": "Gate", "kind": "zk-tcp", "ip": "10.0.0.9"});
    let (s, body) = post(&admin_b, "/api/v1/devices", device).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    // At site A: an agent and a device (employee 101 is the fixture's).
    let (s, _) = post(&admin_a, "/api/v1/agents", json!({"agent_id": "gate-a", "site_id": "A"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let own_device = json!({"serial": "DEV-A9", "site_id": "A", "name": "G", "kind": "zk-tcp", "ip": "10.0.0.7"});
    let (s, _) = post(&admin_a, "/api/v1/devices", own_device.clone()).await;
    assert_eq!(s, StatusCode::CREATED);

    let device_b = json!({"serial": "DEV-B9", "site_id": "A", "name": "Gate", "kind": "zk-tcp", "ip": "10.0.0.8"});
    let cases = [
        (
            "/api/v1/employees",
            "employee",
            (json!({"employee_id": "201", "name": "Copy", "site_id": "A"}), "201"),
            (json!({"employee_id": "101", "name": "Copy", "site_id": "A"}), "101"),
        ),
        (
            "/api/v1/agents",
            "agent",
            (json!({"agent_id": "gate-b", "site_id": "A"}), "gate-b"),
            (json!({"agent_id": "gate-a", "site_id": "A"}), "gate-a"),
        ),
        ("/api/v1/devices", "device", (device_b, "DEV-B9"), (own_device, "DEV-A9")),
    ];
    for (path, what, (body, id), (own, own_id)) in cases {
        let (s, answer) = post(&admin_a, path, body.clone()).await;
        assert_eq!((s, answer["code"].as_str()), (StatusCode::CONFLICT, Some("already_exists")), "{path}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default().to_owned();
        assert!(!message.contains("site B") && !message.contains("\"B\""), "{path} names the site: {message}");
        assert!(message.contains(&format!("{what} ids are shared by every site")), "{message}");
        // Exactly the answer an id taken at the caller's own site gets (with that id).
        let (s, own_answer) = post(&admin_a, path, own).await;
        assert_eq!(s, StatusCode::CONFLICT, "{own_answer}");
        assert_eq!(
            own_answer["message"].as_str().unwrap_or_default().replace(own_id, "ID"),
            message.replace(id, "ID"),
            "{path}: the answer differs between own and other site's ids"
        );
        // A viewer is refused before any conflict is looked at.
        let (s, answer) = post(&viewer_a, path, body).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {answer}");
    }
    // The shared id space is explained in the API description.
    let (_, doc) = f.call(Method::GET, "/api/openapi.json", &Auth::None, None).await.unwrap();
    assert!(doc["info"]["description"].as_str().unwrap_or_default().contains("shared by every site"), "{doc}");
}

/// A refusal made before the body is read reaches a client that is still sending: central reads the rest out (up to
/// a bound) instead of closing with the client's bytes unread, which the kernel turns into a reset and the client saw
/// as "broken pipe" or "connection reset" instead of the answer.
async fn early_refusals_reach_a_client_still_sending(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);
    let json = protocol::Encoding::JSON_CONTENT_TYPE;
    let under_limit = vec![b' '; protocol::limits::MAX_ENVELOPE_BYTES - 1024];
    let over_limit = vec![b' '; protocol::limits::MAX_ENVELOPE_BYTES * 3 / 2];
    let admin_api_body = vec![b' '; 2 * 1024 * 1024];
    let wrong_token = "agt_gate-1_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    for round in 1..=3 {
        let cases: [(&str, Option<&str>, &Vec<u8>, StatusCode); 4] = [
            ("/api/v1/ingest", None, &under_limit, StatusCode::UNAUTHORIZED),
            ("/api/v1/ingest", Some(wrong_token), &under_limit, StatusCode::UNAUTHORIZED),
            ("/api/v1/ingest", Some(&token), &over_limit, StatusCode::PAYLOAD_TOO_LARGE),
            ("/api/v1/sites", None, &admin_api_body, StatusCode::UNAUTHORIZED),
        ];
        for (path, bearer, body, expected) in cases {
            let response = central
                .post_raw(&http, path, bearer, json, body.clone())
                .await
                .unwrap_or_else(|e| panic!("round {round}, {path} ({} bytes): no answer: {e:#}", body.len()));
            assert_eq!(response.status(), expected, "round {round}, {path}");
            let answer: Value = response.json().await.unwrap();
            assert!(answer["code"].is_string(), "round {round}, {path}: {answer}");
        }
    }
    // The same client then stores a real batch.
    let good = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1"], day_at(0), 5));
    let response = central
        .post_raw(&http, "/api/v1/ingest", Some(&token), json, serde_json::to_vec(&good).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(db.all_logs().await, 5);
    drop(central);
    db.cleanup().await;
}

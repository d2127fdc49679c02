//! The `/backups` pages against a real central-api, as a browser uses them (session cookie, CSRF field, redirects
//! not followed): root makes a backup and downloads it from the job's page, uploads files as the page's script does
//! (`PUT` with the session's CSRF token; the page carries the upload progress bar), validates a damaged one and
//! reads its problems with record and line, previews and restores a good one and reads the summary and the
//! progress bar; admins and viewers of this site or another are refused every page and form; bad form values are
//! answered 400 naming the field, never a server error.

use std::time::Duration;

use reqwest::{header, StatusCode};
use system_tests::admin::{AdminFixture, Auth, PASSWORD};
use system_tests::backup::seed;
use system_tests::central::Backend;
use system_tests::on_both_backends;
use system_tests::web_client::{Answer, Web};

on_both_backends!(root_backs_up_uploads_validates_previews_and_restores_from_the_pages);

/// Follows a job's page until it is finished; returns the last page.
async fn finished(web: &Web<'_>, page: &str) -> Answer {
    for _ in 0..300 {
        let answer = web.get(page).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}: {}", answer.body);
        if !answer.body.contains("http-equiv=\"refresh\"") {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{page} did not finish");
}

/// Posts a form and returns the job page it redirects to.
async fn start(web: &Web<'_>, path: &str, fields: &[(&str, &str)]) -> String {
    let answer = web.post(path, fields).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path} {fields:?}: {}", answer.body);
    let location = answer.location.expect("a redirect");
    assert!(location.starts_with("/backups/jobs/"), "{location}");
    location
}

/// A session's cookie and CSRF token, for what the page's script sends.
async fn session(fx: &AdminFixture, username: &str) -> (String, String) {
    let (auth, _) = fx.login(username, PASSWORD).await.unwrap();
    let Auth::Session { cookie, csrf: Some(csrf) } = auth else { panic!("a session") };
    (format!("ac_session={cookie}"), csrf)
}

/// `PUT`s a file as `backups.js` does.
async fn upload(fx: &AdminFixture, cookie: &str, csrf: Option<&str>, name: &str, bytes: Vec<u8>) -> StatusCode {
    let mut request =
        fx.http.put(format!("{}/api/v1/backups/{name}", fx.central.url)).header(header::COOKIE, cookie).body(bytes);
    if let Some(token) = csrf {
        request = request.header("X-CSRF-Token", token);
    }
    request.send().await.unwrap().status()
}

async fn root_backs_up_uploads_validates_previews_and_restores_from_the_pages(backend: Backend) {
    let fx = AdminFixture::blank(backend, &[("CENTRAL_API_JOBS__POLL_INTERVAL_MS", "100")]).await.unwrap();
    let punches = seed(&fx.store).await.unwrap();
    fx.create_admin("adminA", "admin", Some("A")).await.unwrap();
    fx.create_admin("viewerA", "viewer", Some("A")).await.unwrap();
    fx.create_admin("adminB", "admin", Some("B")).await.unwrap();
    let web = Web::login(&fx, "root").await;

    // The page: no backups yet, the backup form, the upload form with its CSRF token and progress bar.
    let page = web.get("/backups").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for part in [
        "data-testid=\"no-backups\"",
        "data-testid=\"backup-form\"",
        "data-testid=\"upload-form\"",
        "id=\"upload-progress\"",
        "src=\"/static/backups.js\"",
    ] {
        assert!(page.body.contains(part), "/backups lacks {part}");
    }
    let script = web.get("/static/backups.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("xhr.upload.onprogress") && script.body.contains("X-CSRF-Token"));

    // Make a backup: the job's page ends with the counts and a download link, which downloads the file.
    let job = start(&web, "/backups", &[("type", "full"), ("since", "")]).await;
    let done = finished(&web, &job).await;
    assert!(done.body.contains("data-testid=\"job-status\">done"), "{}", done.body);
    assert!(done.body.contains("data-testid=\"backup-result\""), "{}", done.body);
    let href = done.body.split("href=\"/api/v1/backups/").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let (cookie, csrf) = session(&fx, "root").await;
    let download = fx
        .http
        .get(format!("{}/api/v1/backups/{href}", fx.central.url))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    let gz = download.bytes().await.unwrap().to_vec();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    let mut text = String::new();
    let mut plain = central_api::backup::reader::decompressing(std::io::Cursor::new(gz)).unwrap();
    std::io::Read::read_to_string(&mut plain, &mut text).unwrap();

    // Upload as the page's script does: with the CSRF token accepted, without it refused.
    // (Refused requests carry a small body: the server answers before reading one.)
    assert_eq!(upload(&fx, &cookie, None, "copy.json", b"{}".to_vec()).await, StatusCode::FORBIDDEN);
    assert_eq!(upload(&fx, &cookie, Some(&csrf), "copy.json", text.clone().into_bytes()).await, StatusCode::CREATED);
    let damaged = text.replacen("\"work_code\":0", "\"work_code\":7", 1);
    assert_eq!(upload(&fx, &cookie, Some(&csrf), "damaged.json", damaged.into_bytes()).await, StatusCode::CREATED);
    let page = web.get("/backups").await;
    for file in [href.as_str(), "copy.json", "damaged.json"] {
        assert!(page.body.contains(&format!("data-file=\"{file}\"")), "{file} is not listed");
    }

    // Validation of the damaged file: invalid, its problem named by record and line; nothing written.
    let job = start(&web, "/backups/restore", &[("file", "damaged.json"), ("mode", "validate")]).await;
    let done = finished(&web, &job).await;
    assert!(done.body.contains("data-testid=\"invalid\""), "{}", done.body);
    let problems = done.body.split("data-testid=\"problems\"").nth(1).unwrap_or("");
    assert!(problems.contains("record ") && problems.contains("(line ") && problems.contains("checksum"), "{problems}");

    // Preview after losing the punches of one employee: the summary says what would be added; nothing written.
    let lost = fx.db.scalar("SELECT count(*) FROM all_logs WHERE pin = '1001'").await.unwrap();
    assert!(lost > 0);
    exec(&fx, "DELETE FROM all_logs WHERE pin = '1001'").await;
    let job =
        start(&web, "/backups/restore", &[("file", "copy.json"), ("mode", "preview"), ("strategy", "manual")]).await;
    let done = finished(&web, &job).await;
    assert!(
        done.body.contains("data-testid=\"summary\"") && done.body.contains("nothing was written"),
        "{}",
        done.body
    );
    assert!(row(&done.body, "punch").starts_with(&format!("{lost}")), "{}", row(&done.body, "punch"));
    assert_eq!(fx.db.all_logs().await, i64::from(punches) - lost);

    // Restore: the progress bar is full, the summary counts the punches added, attendance is marked.
    let job =
        start(&web, "/backups/restore", &[("file", "copy.json"), ("mode", "restore"), ("strategy", "backup_wins")])
            .await;
    let done = finished(&web, &job).await;
    assert!(done.body.contains("data-testid=\"job-status\">done"), "{}", done.body);
    assert!(done.body.contains("<progress") && done.body.contains("aria-label=\"Progress\""), "{}", done.body);
    assert!(row(&done.body, "punch").starts_with(&format!("{lost}")), "{}", row(&done.body, "punch"));
    assert!(done.body.contains("employee-days marked for recomputation"), "{}", done.body);
    assert_eq!(fx.db.all_logs().await, i64::from(punches));

    // Bad values: 400 naming the field, never a server error.
    let bad = web.post("/backups", &[("type", "weekly")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("weekly"), "{}", bad.body);
    let bad = web.post("/backups/restore", &[("file", "copy.json"), ("mode", "replace")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("is not validate, preview or restore"), "{}", bad.body);
    let bad = web.post("/backups/restore", &[("file", "../central.db"), ("mode", "validate")]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    let missing = web.post("/backups/restore", &[("file", "none.json"), ("mode", "validate")]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);

    // Everyone but root is refused every page and form, whatever their site.
    for name in ["adminA", "viewerA", "adminB"] {
        let other = Web::login(&fx, name).await;
        assert_eq!(other.get("/backups").await.status, StatusCode::FORBIDDEN, "{name} saw /backups");
        assert_eq!(other.get(&job).await.status, StatusCode::FORBIDDEN, "{name} saw {job}");
        let post = other.post("/backups", &[("type", "full")]).await;
        assert_eq!(post.status, StatusCode::FORBIDDEN, "{name} started a backup");
        let post = other.post("/backups/restore", &[("file", "copy.json"), ("mode", "restore")]).await;
        assert_eq!(post.status, StatusCode::FORBIDDEN, "{name} started a restore");
        let (their_cookie, their_csrf) = session(&fx, name).await;
        let status = upload(&fx, &their_cookie, Some(&their_csrf), "theirs.json", b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name} uploaded");
    }
    fx.cleanup().await;
}

/// The summary table's cells after the kind's name, as text (added, updated, skipped, conflicts).
fn row(body: &str, kind: &str) -> String {
    let cells = body.split(&format!("<td>{kind}</td>")).nth(1).unwrap_or("").split("</tr>").next().unwrap_or("");
    cells.replace("</td>", " ").replace("<td>", "").trim().to_owned()
}

async fn exec(fx: &AdminFixture, sql: &str) {
    use sqlx::Connection;
    match fx.db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&fx.db.url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&fx.db.url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
    }
}

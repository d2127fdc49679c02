//! The backup API through a served central-api: root only (every admin and viewer, of this site or another, is
//! refused), a backup job whose file is listed and downloaded, an upload, and validation, preview and restore jobs
//! whose results are the summaries; every step audited.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{AdminFixture, Auth};
use system_tests::backup::seed;
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(backups_are_root_only_and_restore_through_jobs);

async fn finished_job(fx: &AdminFixture, root: &Auth, job: &Value) -> Value {
    let id = job["id"].as_i64().expect("job id");
    for _ in 0..300 {
        let (status, body) = fx.call(Method::GET, &format!("/api/v1/jobs/{id}"), root, None).await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        if ["done", "failed", "cancelled"].contains(&body["status"].as_str().unwrap_or("")) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish");
}

async fn upload(fx: &AdminFixture, auth: &Auth, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let mut request = fx.http.put(format!("{}/api/v1/backups/{name}", fx.central.url)).body(bytes);
    if let Auth::Bearer(token) = auth {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn backups_are_root_only_and_restore_through_jobs(backend: Backend) {
    let fx = AdminFixture::blank(backend, &[("CENTRAL_API_JOBS__POLL_INTERVAL_MS", "100")]).await.unwrap();
    seed(&fx.store).await.unwrap();
    fx.create_admin("adminA", "admin", Some("A")).await.unwrap();
    fx.create_admin("viewerA", "viewer", Some("A")).await.unwrap();
    fx.create_admin("adminB", "admin", Some("B")).await.unwrap();
    let root = fx.token("root").await.unwrap();

    // Root backs up; the job's result names the file, which is listed and downloaded.
    let (status, job) = fx.call(Method::POST, "/api/v1/backups", &root, Some(json!({ "type": "full" }))).await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let done = finished_job(&fx, &root, &job).await;
    assert_eq!(done["status"], "done", "{done}");
    let file = done["result"]["file"].as_str().unwrap().to_owned();
    let records = done["result"]["records"].as_u64().unwrap();
    assert!(records > 100, "{done}");
    let (status, list) = fx.call(Method::GET, "/api/v1/backups", &root, None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"][0]["name"], file.as_str());
    let response = fx.send(Method::GET, &format!("/api/v1/backups/{file}"), &root, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/gzip");
    let bytes = response.bytes().await.unwrap().to_vec();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);

    // Everyone else is refused, whatever their site: admins, viewers, another site's admin.
    for name in ["adminA", "viewerA", "adminB"] {
        let auth = fx.token(name).await.unwrap();
        for (method, path, body) in [
            (Method::GET, "/api/v1/backups".to_owned(), None),
            (Method::POST, "/api/v1/backups".to_owned(), Some(json!({ "type": "full" }))),
            (Method::GET, format!("/api/v1/backups/{file}"), None),
            (Method::POST, "/api/v1/restores".to_owned(), Some(json!({ "file": file, "mode": "validate" }))),
        ] {
            let (status, body) = fx.call(method.clone(), &path, &auth, body).await.unwrap();
            assert_eq!(status, StatusCode::FORBIDDEN, "{name} {method} {path}: {body}");
            assert_eq!(body["code"], "forbidden");
        }
        let (status, _) = upload(&fx, &auth, "theirs.json.gz", bytes.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{name} uploaded");
        // They do not see root's backup job either.
        let (status, _) = fx.call(Method::GET, &format!("/api/v1/jobs/{}", job["id"]), &auth, None).await.unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = fx.call(Method::GET, "/api/v1/backups", &Auth::None, None).await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Bad requests name what was wrong.
    let (status, body) =
        fx.call(Method::POST, "/api/v1/backups", &root, Some(json!({ "type": "partial" }))).await.unwrap();
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid")), "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("type:"), "{body}");
    let (status, body) =
        fx.call(Method::POST, "/api/v1/restores", &root, Some(json!({ "file": file, "mode": "merge" }))).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("mode:"), "{body}");
    let (status, _) = fx
        .call(Method::POST, "/api/v1/restores", &root, Some(json!({ "file": "nope.json", "mode": "validate" })))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = upload(&fx, &root, "x.txt", b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Upload a copy, and a tampered one.
    let (status, body) = upload(&fx, &root, "copy.json.gz", bytes.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = upload(&fx, &root, "copy.json.gz", bytes.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let text = String::from_utf8(gunzip(&bytes)).unwrap();
    let tampered = text.replacen("\"name\":\"Founders' day\"", "\"name\":\"Founders day\"", 1);
    assert_ne!(tampered, text);
    let (status, _) = upload(&fx, &root, "tampered.json", tampered.into_bytes()).await;
    assert_eq!(status, StatusCode::CREATED);

    let restore = |file: &str, mode: &str, strategy: &str| json!({ "file": file, "mode": mode, "strategy": strategy });
    let (_, job) = fx
        .call(Method::POST, "/api/v1/restores", &root, Some(restore("tampered.json", "validate", "manual")))
        .await
        .unwrap();
    let done = finished_job(&fx, &root, &job).await;
    assert_eq!(done["result"]["valid"], false, "{done}");
    let problem = &done["result"]["problems"][0];
    assert!(problem["message"].as_str().unwrap().contains("checksum does not match"), "{done}");
    assert!(problem["record"].as_u64().is_some() && problem["line"].as_u64().is_some());
    let (_, job) = fx
        .call(Method::POST, "/api/v1/restores", &root, Some(restore("tampered.json", "restore", "backup_wins")))
        .await
        .unwrap();
    let done = finished_job(&fx, &root, &job).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["error"].as_str().unwrap().contains("not valid"), "{done}");

    // Diverge, preview, restore.
    let punches = fx.db.all_logs().await;
    let deleted = fx.db.scalar("SELECT count(*) FROM all_logs WHERE pin = '2999'").await.unwrap();
    exec(&fx, "DELETE FROM all_logs WHERE pin = '2999'").await;
    let (_, job) = fx
        .call(Method::POST, "/api/v1/restores", &root, Some(restore("copy.json.gz", "preview", "database_wins")))
        .await
        .unwrap();
    let done = finished_job(&fx, &root, &job).await;
    assert_eq!(done["result"]["counts"]["punch"]["added"].as_i64(), Some(deleted), "{done}");
    assert_eq!(done["result"]["totals"]["skipped"].as_u64(), Some(records - deleted as u64));
    assert_eq!(fx.db.all_logs().await, punches - deleted, "a preview wrote");
    let (_, job) = fx
        .call(Method::POST, "/api/v1/restores", &root, Some(restore("copy.json.gz", "restore", "backup_wins")))
        .await
        .unwrap();
    let done = finished_job(&fx, &root, &job).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["result"]["applied"], true);
    assert_eq!(fx.db.all_logs().await, punches);

    // Audited: the backup, the uploads, the download and the restores, seen by root only.
    let (_, audit) = fx.call(Method::GET, "/api/v1/audit?resource=backup&limit=100", &root, None).await.unwrap();
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["backup", "upload", "download", "restore"] {
        assert!(actions.contains(&action), "no {action} in {actions:?}");
    }
    let restored = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "restore" && e["after"]["success"] == true)
        .expect("a successful restore entry");
    assert_eq!(restored["actor"], "root");
    assert_eq!(restored["after"]["added"].as_i64(), Some(deleted));
    let admin = fx.token("adminA").await.unwrap();
    let (_, theirs) = fx.call(Method::GET, "/api/v1/audit?resource=backup", &admin, None).await.unwrap();
    assert_eq!(theirs["items"].as_array().map(Vec::len), Some(0), "{theirs}");
    fx.cleanup().await;
}

async fn exec(fx: &AdminFixture, sql: &str) {
    use sqlx::Connection;
    match fx.db.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&fx.db.url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&fx.db.url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
    }
}

/// Decompresses a gzip backup through the reader's own opener.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut input =
        central_api::backup::reader::decompressing(std::io::BufReader::new(std::io::Cursor::new(bytes.to_vec())))
            .unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut input, &mut out).unwrap();
    out
}

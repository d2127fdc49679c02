//! Tracked jobs through the API: start (202 and an id), follow (pending -> running with progress -> done with
//! counts), list with filters, cancel; scoped by site and role; audited. On PostgreSQL with two replicas: each job
//! is claimed by one replica, and a job whose replica stalled or died is taken over and finishes once.

use std::time::{Duration, Instant};

use chrono::{Datelike, Duration as Days, NaiveDate};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::admin::{AdminFixture, Auth};
use system_tests::attendance::add_employee;
use system_tests::central::{Backend, Central};
use system_tests::on_both_backends;

on_both_backends!(jobs_run_with_progress_scoped_and_audited, pending_jobs_are_cancelled_at_once);

async fn call(f: &AdminFixture, method: Method, path: &str, auth: &Auth, body: Option<Value>) -> (StatusCode, Value) {
    f.call(method, path, auth, body).await.unwrap()
}

/// Polls job `id` until `done` holds (30 s at most).
async fn job_until(f: &AdminFixture, auth: &Auth, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, job) = call(f, Method::GET, &format!("/api/v1/jobs/{id}"), auth, None).await;
        assert_eq!(s, StatusCode::OK, "{job}");
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} never got there: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn last_day(month: NaiveDate) -> NaiveDate {
    (month + Days::days(40)).with_day(1).unwrap() - Days::days(1)
}

async fn jobs_run_with_progress_scoped_and_audited(backend: Backend) {
    let f = AdminFixture::new_with_env(backend, &[("CENTRAL_API_JOBS__POLL_INTERVAL_MS", "100")]).await.unwrap();
    let root = f.token("root").await.unwrap();
    let admin = f.token("adminA").await.unwrap();
    let viewer = f.token("viewerA").await.unwrap();
    let admin_b = f.token("adminB").await.unwrap();
    let (from, to) = (f.month, last_day(f.month));
    let month = json!({"kind": "reprocess", "from": from, "to": to, "site": "A"});

    // Refusals: the viewer may not start jobs, B's admin does not see A, only root runs a job over every site.
    let (s, body) = call(&f, Method::POST, "/api/v1/jobs", &viewer, Some(month.clone())).await;
    assert_eq!((s, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{body}");
    let (s, _) = call(&f, Method::POST, "/api/v1/jobs", &admin_b, Some(month.clone())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(&f, Method::POST, "/api/v1/jobs", &admin, Some(json!({"kind": "close_day"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a job over every site is root's");
    let (s, _) = call(
        &f,
        Method::POST,
        "/api/v1/jobs",
        &admin,
        Some(json!({"kind": "reprocess", "from": from, "to": to, "employee": "201"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "employee 201 is at B");
    for (bad, field) in [
        (json!({"kind": "defrag", "site": "A"}), "kind"),
        (json!({"kind": "reprocess", "to": to, "site": "A"}), "from"),
        (json!({"kind": "reprocess", "from": to, "to": from, "site": "A"}), "to"),
        (json!({"kind": "reprocess", "from": from, "to": to, "site": "A", "employee": "101"}), "employee"),
        (json!({"kind": "reprocess", "from": from, "to": to, "site": "A", "speed": 2}), "speed"),
    ] {
        let (s, body) = call(&f, Method::POST, "/api/v1/jobs", &admin, Some(bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert!(body["message"].as_str().unwrap().contains(field), "{field}: {body}");
    }
    let (_, page) = call(&f, Method::GET, "/api/v1/jobs", &root, None).await;
    assert_eq!(page["items"], json!([]), "refused requests left no job");

    // A's admin reprocesses A's month: 202 with an id and a Location; it runs and ends with counts.
    let response = f.send(Method::POST, "/api/v1/jobs", &admin, Some(month.clone())).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let started: Value = response.json().await.unwrap();
    let id = started["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/jobs/{id}"));
    assert!(["pending", "running"].contains(&started["status"].as_str().unwrap()), "{started}");
    assert_eq!((started["site_id"].as_str(), started["requested_by"].as_str()), (Some("A"), Some("adminA")));
    let done = job_until(&f, &viewer, id, |j| j["status"] == "done").await;
    let days = (to - from).num_days() + 1;
    assert_eq!(done["result"]["employees"], 2, "101 and 102 are at A: {done}");
    assert_eq!(done["result"]["days"], 2 * days, "{done}");
    assert_eq!((done["progress"]["done"].as_i64(), done["progress"]["total"].as_i64()), (Some(2), Some(2)));
    assert_eq!(done["attempt"], 1);
    assert!(done["replica"].is_string() && done["started_at"].is_string() && done["finished_at"].is_string());

    // Root closes the day everywhere.
    let (s, close) = call(&f, Method::POST, "/api/v1/jobs", &root, Some(json!({"kind": "close_day"}))).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{close}");
    let close_id = close["id"].as_i64().unwrap();
    let close = job_until(&f, &root, close_id, |j| j["status"] == "done").await;
    assert!(close["result"]["days"].is_number(), "{close}");

    // Reading is scoped: B's admin sees neither job; A's viewer sees A's job but not the one over every site.
    for path in [format!("/api/v1/jobs/{id}"), format!("/api/v1/jobs/{close_id}")] {
        let (s, _) = call(&f, Method::GET, &path, &admin_b, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
    }
    let (s, _) = call(&f, Method::GET, &format!("/api/v1/jobs/{close_id}"), &viewer, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, page) = call(&f, Method::GET, "/api/v1/jobs", &admin_b, None).await;
    assert_eq!(page["items"], json!([]));
    let (_, page) = call(&f, Method::GET, "/api/v1/jobs?status=done&kind=reprocess", &viewer, None).await;
    let ids: Vec<i64> = page["items"].as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [id]);
    let (_, page) = call(&f, Method::GET, "/api/v1/jobs?limit=1", &root, None).await;
    assert_eq!(page["items"][0]["id"], close_id, "newest first");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = call(&f, Method::GET, &format!("/api/v1/jobs?limit=1&cursor={cursor}"), &root, None).await;
    assert_eq!(page["items"][0]["id"], id);
    let (s, body) = call(&f, Method::GET, "/api/v1/jobs?status=sleeping", &root, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // Cancelling: a finished job is 409; the viewer 403; B's admin 404.
    let cancel = format!("/api/v1/jobs/{id}/cancel");
    let (s, _) = call(&f, Method::POST, &cancel, &viewer, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&f, Method::POST, &cancel, &admin_b, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = call(&f, Method::POST, &cancel, &admin, None).await;
    assert_eq!((s, body["code"].as_str()), (StatusCode::CONFLICT, Some("already_finished")), "{body}");

    // Starting is audited: who, from where, what.
    let (_, audit) = call(&f, Method::GET, "/api/v1/audit?resource=job&action=start", &root, None).await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    let mine = entries.iter().find(|e| e["resource_id"].as_str().and_then(|s| s.parse().ok()) == Some(id)).unwrap();
    assert_eq!((mine["actor"].as_str(), mine["role"].as_str()), (Some("adminA"), Some("admin")));
    assert_eq!((mine["address"].as_str(), mine["site_id"].as_str()), (Some("127.0.0.1"), Some("A")));
    assert_eq!(mine["after"]["params"]["from"], json!(from));

    let (_, doc) = call(&f, Method::GET, "/api/openapi.json", &Auth::None, None).await;
    assert!(doc["paths"]["/api/v1/jobs"]["post"]["responses"]["202"].is_object());
    assert!(doc["paths"]["/api/v1/jobs/{id}/cancel"]["post"]["responses"]["409"].is_object());
    f.cleanup().await;
}

async fn pending_jobs_are_cancelled_at_once(backend: Backend) {
    let f = AdminFixture::new_with_env(backend, &[("CENTRAL_API_JOBS__RUNNER", "false")]).await.unwrap();
    let admin = f.token("adminA").await.unwrap();
    let body = json!({"kind": "revert_sandwich", "from": f.month, "to": last_day(f.month), "site": "A"});
    let (s, job) = call(&f, Method::POST, "/api/v1/jobs", &admin, Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let id = job["id"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, job) = call(&f, Method::GET, &format!("/api/v1/jobs/{id}"), &admin, None).await;
    assert_eq!(job["status"], "pending", "no runner on this replica: {job}");
    let (s, job) = call(&f, Method::POST, &format!("/api/v1/jobs/{id}/cancel"), &admin, None).await;
    assert_eq!(s, StatusCode::OK, "{job}");
    assert_eq!((job["status"].as_str(), job["cancel_requested"].as_bool()), (Some("cancelled"), Some(true)));
    assert!(job["finished_at"].is_string());
    let (_, page) = call(&f, Method::GET, "/api/v1/jobs?status=cancelled", &admin, None).await;
    assert_eq!(page["items"][0]["id"], id);
    let (_, audit) = call(&f, Method::GET, "/api/v1/audit?resource=job", &admin, None).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["cancel", "start"], "newest first");
    assert_eq!(audit["items"][0]["before"]["status"], "pending");
    assert_eq!(audit["items"][0]["after"]["status"], "cancelled");
    f.cleanup().await;
}

/// A replica running tracked jobs only (no attendance worker or schedule), with a short lease, one employee per
/// transaction and a pause between two, so that a job runs for seconds whatever the machine's speed.
async fn replica(f: &AdminFixture, name: &str) -> Central {
    f.db.serve(&[
        ("CENTRAL_API_JOBS__REPLICA_ID", name),
        ("CENTRAL_API_JOBS__POLL_INTERVAL_MS", "100"),
        ("CENTRAL_API_JOBS__LEASE_SECS", "3"),
        ("CENTRAL_API_JOBS__CHUNK_EMPLOYEES", "1"),
        ("CENTRAL_API_JOBS__PAUSE_BETWEEN_CHUNKS_MS", "100"),
        ("CENTRAL_API_ATTENDANCE__WORKER", "false"),
        ("CENTRAL_API_ATTENDANCE__SCHEDULER", "false"),
    ])
    .await
    .unwrap()
}

/// The API front of the PostgreSQL tests (runs no jobs itself), with `extra` more employees at site A.
async fn postgres_fixture(extra: usize) -> AdminFixture {
    let f = AdminFixture::new_with_env(
        Backend::Postgres,
        &[("CENTRAL_API_JOBS__RUNNER", "false"), ("CENTRAL_API_ATTENDANCE__SCHEDULER", "false")],
    )
    .await
    .unwrap();
    for n in 0..extra {
        add_employee(&f.store, &format!("{}", 5000 + n), "A", "GEN").await.unwrap();
    }
    f
}

fn signal(central: &Central, signal: libc::c_int) {
    let pid = central.process.pid().expect("running") as libc::pid_t;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_claim_each_job_once() {
    let f = postgres_fixture(10).await;
    let root = f.token("root").await.unwrap();
    let _r1 = replica(&f, "r1").await;
    let _r2 = replica(&f, "r2").await;
    let (from, to) = (f.month, last_day(f.month));
    let mut ids = Vec::new();
    for _ in 0..6 {
        let body = json!({"kind": "reprocess", "from": from, "to": to, "site": "A"});
        let (s, job) = call(&f, Method::POST, "/api/v1/jobs", &root, Some(body)).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        ids.push(job["id"].as_i64().unwrap());
    }
    let mut replicas = std::collections::BTreeSet::new();
    for id in ids {
        let job = job_until(&f, &root, id, |j| j["status"] == "done").await;
        assert_eq!(job["attempt"], 1, "claimed once: {job}");
        assert_eq!(job["result"]["employees"], 12, "{job}");
        assert_eq!((job["progress"]["done"].as_i64(), job["progress"]["total"].as_i64()), (Some(12), Some(12)));
        replicas.insert(job["replica"].as_str().unwrap().to_owned());
    }
    assert_eq!(replicas.into_iter().collect::<Vec<_>>(), ["r1", "r2"], "both replicas took jobs");
    f.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_or_dead_replica_loses_its_job_which_finishes_once_and_a_running_job_cancels() {
    let f = postgres_fixture(60).await;
    let root = f.token("root").await.unwrap();
    // A year per employee, one employee per transaction: long enough to stop a replica in the middle.
    let to = last_day(f.month);
    let from = to - Days::days(365);
    let days = (to - from).num_days() + 1;
    let body = json!({"kind": "reprocess", "from": from, "to": to, "site": "A"});

    // r1 alone claims the job; it stalls (SIGSTOP) mid-run; r2 takes it over after the lease.
    let r1 = replica(&f, "r1").await;
    let (_, job) = call(&f, Method::POST, "/api/v1/jobs", &root, Some(body.clone())).await;
    let id = job["id"].as_i64().unwrap();
    let running =
        job_until(&f, &root, id, |j| j["status"] == "running" && j["progress"]["done"].as_i64() >= Some(2)).await;
    assert_eq!((running["replica"].as_str(), running["attempt"].as_i64()), (Some("r1"), Some(1)));
    signal(&r1, libc::SIGSTOP);
    let r2 = replica(&f, "r2").await;
    let taken = job_until(&f, &root, id, |j| j["attempt"] == 2).await;
    assert_eq!(taken["replica"], "r2", "{taken}");
    // r1 wakes up (it may hold an employee's lock r2 waits for); it finds the job no longer its own.
    signal(&r1, libc::SIGCONT);
    let done = job_until(&f, &root, id, |j| j["status"] == "done").await;
    assert_eq!((done["replica"].as_str(), done["attempt"].as_i64()), (Some("r2"), Some(2)), "{done}");
    assert_eq!(done["result"]["employees"], 62, "the whole site, redone by r2: {done}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, later) = call(&f, Method::GET, &format!("/api/v1/jobs/{id}"), &root, None).await;
    assert_eq!(later, done, "r1 recorded nothing after it lost the job");

    // A replica killed mid-run: the other one finishes its job.
    let (_, job) = call(&f, Method::POST, "/api/v1/jobs", &root, Some(body.clone())).await;
    let id = job["id"].as_i64().unwrap();
    let running =
        job_until(&f, &root, id, |j| j["status"] == "running" && j["progress"]["done"].as_i64() >= Some(2)).await;
    let (mut victim, survivor, _left) = if running["replica"] == "r1" { (r1, "r2", r2) } else { (r2, "r1", r1) };
    victim.process.kill().await.unwrap();
    let done = job_until(&f, &root, id, |j| j["status"] == "done").await;
    assert_eq!((done["replica"].as_str(), done["attempt"].as_i64()), (Some(survivor), Some(2)), "{done}");
    assert_eq!(done["result"]["employees"], 62);
    let rows =
        f.db.scalar(&format!(
            "SELECT count(*) FROM attendance a JOIN employees e USING (employee_id) \
             WHERE e.site_id = 'A' AND a.work_date BETWEEN '{from}' AND '{to}'"
        ))
        .await
        .unwrap();
    assert_eq!(rows, 62 * days, "one row per employee-day, none twice");

    // A running job cancelled: it stops between two transactions, short of its total.
    let (_, job) = call(&f, Method::POST, "/api/v1/jobs", &root, Some(body)).await;
    let id = job["id"].as_i64().unwrap();
    job_until(&f, &root, id, |j| j["status"] == "running" && j["progress"]["done"].as_i64() >= Some(2)).await;
    let (s, cancelling) = call(&f, Method::POST, &format!("/api/v1/jobs/{id}/cancel"), &root, None).await;
    assert_eq!((s, cancelling["cancel_requested"].as_bool()), (StatusCode::OK, Some(true)), "{cancelling}");
    let cancelled = job_until(&f, &root, id, |j| j["status"] != "running").await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert!(cancelled["progress"]["done"].as_i64() < cancelled["progress"]["total"].as_i64(), "{cancelled}");
    assert!(cancelled["result"].is_null() && cancelled["error"].is_null());
    f.cleanup().await;
}

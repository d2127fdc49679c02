//! `GET /backups` (root only): make a backup and download it, upload one (a small script `PUT`s the file to the
//! API with the session's CSRF token, with an upload progress bar), and validate, preview or restore one; each
//! starts a tracked job whose page (`/backups/jobs/{id}`) shows a progress bar while it runs and the summary when it
//! ends (counts per kind, conflicts, problems with their record and line). Starting goes through the API's own
//! functions ([`start_backup`], [`start_restore`]): same checks, same audit.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use super::error::WebError;
use super::layout::{flash_redirect, page};
use crate::backup::files;
use crate::http::api::backups::{require_root, start_backup, start_restore, BackupRequest, RestoreRequest};
use crate::http::AppState;
use crate::jobs::JobRecord;

/// The upload script (served at `/static/backups.js`).
const SCRIPT: &str = r"
document.addEventListener('DOMContentLoaded', function () {
  var form = document.getElementById('upload-form');
  if (!form) { return; }
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var file = form.querySelector('input[type=file]').files[0];
    var status = document.getElementById('upload-status');
    var bar = document.getElementById('upload-progress');
    if (!file) { status.textContent = 'Choose a file first.'; return; }
    var xhr = new XMLHttpRequest();
    xhr.open('PUT', '/api/v1/backups/' + encodeURIComponent(file.name));
    xhr.setRequestHeader('X-CSRF-Token', form.dataset.csrf);
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } };
    xhr.onload = function () {
      if (xhr.status === 201) { window.location.reload(); return; }
      var message = 'Upload refused (' + xhr.status + ')';
      try { message = JSON.parse(xhr.responseText).message; } catch (e) {}
      status.textContent = message;
    };
    xhr.onerror = function () { status.textContent = 'The upload broke off.'; };
    status.textContent = 'Uploading ' + file.name + '...';
    xhr.send(file);
  });
});
";

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/backups", get(backups_page).post(create_backup))
        .route("/backups/restore", post(create_restore))
        .route("/backups/jobs/{id}", get(job_page))
        .route(
            "/static/backups.js",
            get(|| async { ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }),
        )
}

/// The backup form.
#[derive(Debug, Default, Deserialize)]
pub struct BackupForm {
    #[serde(default, rename = "type")]
    backup_type: String,
    #[serde(default)]
    since: String,
}

/// The restore form of one file.
#[derive(Debug, Default, Deserialize)]
pub struct RestoreForm {
    #[serde(default)]
    file: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    strategy: String,
    #[serde(default)]
    keep_computed: Option<String>,
}

fn root_only(ctx: &WebContext) -> Result<(), WebError> {
    require_root(&ctx.caller).map_err(WebError::from)
}

/// `GET /backups`.
pub async fn backups_page(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Response, WebError> {
    root_only(&ctx)?;
    let list = files::list(&state.data_dir).map_err(|e| WebError::Page {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!("the backups directory cannot be read: {e}"),
    })?;
    let strategies = [
        ("manual", "manual: list conflicts, apply nothing for them"),
        ("database_wins", "database_wins: keep the database's rows"),
        ("backup_wins", "backup_wins: the backup's records replace them"),
    ];
    let body = html! {
        h1 { "Backups" }
        p.muted { "Backups hold every site's records (root only). A restore merges by key: new records are added, \
                   identical ones skipped, and records whose data differs follow the strategy. Validate and preview \
                   write nothing; a restore is one transaction." }
        h2 { "Make a backup" }
        form.filters method="post" action="/backups" data-testid="backup-form" {
            (csrf_field(&ctx))
            div { label for="type" { "Type" }
                select id="type" name="type" {
                    option value="full" { "Full" }
                    option value="incremental" { "Incremental (changed since)" }
                }
            }
            div { label for="since" { "Since (incremental)" } input id="since" name="since" type="date"; }
            button type="submit" { "Back up" }
        }
        h2 { "Upload a backup" }
        form id="upload-form" class="filters" data-csrf=(ctx.csrf_token) data-testid="upload-form" {
            div { label for="upload-file" { "File (.json or .json.gz)" }
                input id="upload-file" type="file" accept=".json,.gz,application/json,application/gzip";
            }
            button type="submit" { "Upload" }
            progress id="upload-progress" value="0" max="1" aria-label="Upload progress" {}
            span id="upload-status" role="status" {}
        }
        h2 { "Backups on the server" }
        @if list.is_empty() {
            p.muted data-testid="no-backups" { "No backups yet." }
        } @else {
            div.table-wrap {
                table data-testid="backups" {
                    thead { tr {
                        th scope="col" { "File" } th scope="col" { "Size" } th scope="col" { "Written" }
                        th scope="col" { "Restore" }
                    } }
                    tbody {
                        @for f in &list {
                            tr data-file=(f.name) {
                                td { a href=(format!("/api/v1/backups/{}", f.name)) download { (f.name) } }
                                td { (f.bytes) " bytes" }
                                td { @if let Some(m) = f.modified { (m.format("%Y-%m-%d %H:%M UTC")) } }
                                td {
                                    form.inline method="post" action="/backups/restore" {
                                        (csrf_field(&ctx))
                                        input type="hidden" name="file" value=(f.name);
                                        select name="strategy" aria-label=(format!("Strategy for {}", f.name)) {
                                            @for (value, label) in strategies { option value=(value) { (label) } }
                                        }
                                        label { input type="checkbox" name="keep_computed" value="1"; " keep computed rows" }
                                        button type="submit" name="mode" value="validate" { "Validate" }
                                        " " button type="submit" name="mode" value="preview" { "Preview" }
                                        " " button type="submit" name="mode" value="restore" { "Restore" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        script src="/static/backups.js" {}
    };
    Ok(page("Backups", &ctx, body).into_response())
}

/// `POST /backups`.
pub async fn create_backup(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<BackupForm>,
) -> Result<Response, WebError> {
    let req =
        BackupRequest { backup_type: Some(form.backup_type), since: Some(form.since).filter(|s| !s.trim().is_empty()) };
    let job = start_backup(&state, &ctx.caller, req).await?;
    Ok(flash_redirect(&format!("/backups/jobs/{}", job.id), "Backup started."))
}

/// `POST /backups/restore`.
pub async fn create_restore(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<RestoreForm>,
) -> Result<Response, WebError> {
    let req = RestoreRequest {
        file: form.file,
        mode: form.mode,
        strategy: Some(form.strategy),
        keep_computed: form.keep_computed.is_some(),
    };
    let job = start_restore(&state, &ctx.caller, req).await?;
    Ok(flash_redirect(&format!("/backups/jobs/{}", job.id), &format!("Job {} started.", job.id)))
}

/// `GET /backups/jobs/{id}`: progress, then the summary.
pub async fn job_page(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    root_only(&ctx)?;
    let job = state
        .store
        .job(id)
        .await
        .map_err(crate::http::api::store_error)?
        .filter(|j| j.kind == "backup" || j.kind == "restore")
        .ok_or_else(|| WebError::Page { status: StatusCode::NOT_FOUND, message: format!("job {id} does not exist") })?;
    let body = html! {
        @if !job.status.is_finished() {
            meta http-equiv="refresh" content="1";
        }
        h1 { (title(&job)) }
        p { "Status: " strong data-testid="job-status" { (job.status.as_str()) } }
        p {
            progress value=(job.progress.done) max=(job.progress.total.max(1)) aria-label="Progress" {}
            " " (job.progress.done) " of " (job.progress.total) " records"
        }
        @if let Some(error) = &job.error { p.error role="alert" data-testid="job-error" { (error) } }
        @if let Some(result) = &job.result { (summary(result)) }
        p { a href="/backups" { "Back to backups" } }
    };
    Ok(page("Backup job", &ctx, body).into_response())
}

fn title(job: &JobRecord) -> String {
    let Some(b) = &job.params.backup else { return format!("Job {}", job.id) };
    match (job.kind.as_str(), b.mode) {
        ("backup", _) => format!("Backup {}", b.file),
        (_, Some(mode)) => format!("{} of {}", capitalized(mode.as_str()), b.file),
        _ => format!("Job {}", job.id),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn summary(result: &serde_json::Value) -> Markup {
    let num = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    html! {
        @if result.get("mode").is_none() {
            // A backup.
            p data-testid="backup-result" {
                (num(&result["records"])) " records, " (num(&result["bytes"])) " bytes: "
                @if let Some(file) = result["file"].as_str() {
                    a href=(format!("/api/v1/backups/{file}")) download { "download " (file) }
                }
            }
        } @else {
            @if result["valid"] == false {
                p.error data-testid="invalid" { "The file is not valid (" (num(&result["problems_total"])) " problems); nothing was written." }
                ul data-testid="problems" {
                    @for p in result["problems"].as_array().into_iter().flatten() {
                        li {
                            @if let Some(r) = p["record"].as_u64() { "record " (r) " " }
                            "(line " (num(&p["line"])) "): " (p["message"].as_str().unwrap_or(""))
                        }
                    }
                }
            } @else {
                p data-testid="valid" { "Valid: " (num(&result["records"])) " records." }
                @if result["mode"] != "validate" {
                    div.table-wrap {
                        table data-testid="summary" {
                            thead { tr { th scope="col" { "Kind" } th scope="col" { "Added" } th scope="col" { "Updated" }
                                th scope="col" { "Skipped (identical)" } th scope="col" { "Conflicts" } } }
                            tbody {
                                @for (kind, c) in result["counts"].as_object().into_iter().flatten() {
                                    tr { td { (kind) } td { (num(&c["added"])) } td { (num(&c["updated"])) }
                                        td { (num(&c["skipped"])) } td { (num(&c["conflicts"])) } }
                                }
                                tr { th scope="row" { "Total" } td { (num(&result["totals"]["added"])) }
                                    td { (num(&result["totals"]["updated"])) } td { (num(&result["totals"]["skipped"])) }
                                    td { (num(&result["totals"]["conflicts"])) } }
                            }
                        }
                    }
                    @if result["mode"] == "preview" { p.muted { "A preview: nothing was written." } }
                    @if let Some(a) = result["attendance"].as_str().filter(|a| !a.is_empty()) { p { "Attendance: " (a) } }
                    @if let Some(conflicts) = result["conflicts"].as_array().filter(|c| !c.is_empty()) {
                        h2 { "Conflicts" }
                        ul data-testid="conflicts" {
                            @for c in conflicts {
                                li { (c["kind"].as_str().unwrap_or("")) " " code { (c["key"].as_str().unwrap_or("")) }
                                    " (record " (num(&c["record"])) ")" }
                            }
                        }
                    }
                }
            }
        }
    }
}

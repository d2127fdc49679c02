//! Backups and restores (root only): `GET /api/v1/backups` lists the server's backup files, `POST /api/v1/backups`
//! starts a backup job, `GET /api/v1/backups/{name}` downloads one, `PUT /api/v1/backups/{name}` uploads one (the
//! raw file, streamed to disk under `backup.max_upload_bytes`), `POST /api/v1/restores` starts a validation,
//! preview or restore job. Jobs are followed at `/api/v1/jobs/{id}`; a finished job's result is the summary.
//!
//! Every other administrator (an admin or viewer of any site) is refused with `403`. Starting, uploading and
//! downloading are audited; the backup and restore themselves are audited by the job when it ends.

use axum::body::Body as RawBody;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{invalid, store_error, Body};
use crate::access::{Caller, Role};
use crate::audit::{self, Entry};
use crate::backup::files::{self, BackupFile, UploadError};
use crate::backup::jobs::BackupJob;
use crate::backup::{BackupType, Mode, Strategy};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::jobs::{JobKind, JobParams, JobRecord};

/// A backup to make.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// `full` (default) or `incremental`.
    #[serde(rename = "type")]
    pub backup_type: Option<String>,
    /// Incremental: records changed at or after this instant (RFC 3339) or date (YYYY-MM-DD).
    pub since: Option<String>,
}

/// A restore to run on a backup file of the server.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The file's name (see `GET /api/v1/backups`).
    pub file: String,
    /// `validate`, `preview` or `restore`.
    pub mode: String,
    /// `backup_wins`, `database_wins` or `manual` (default `manual`).
    pub strategy: Option<String>,
    /// Restore attendance and ManDays rows as they are (mark nothing for recomputation).
    #[serde(default)]
    pub keep_computed: bool,
}

/// The backup files, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupList {
    pub items: Vec<BackupFile>,
}

/// Refuses everyone but root.
///
/// # Errors
/// `403 forbidden`.
pub fn require_root(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::Root {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} {} may not use backups: they hold every site's data (root only)",
                caller.role.as_str(),
                caller.username
            ),
        ))
    }
}

fn storage(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", e.to_string())
}

/// Lists the backup files.
#[utoipa::path(get, path = "/api/v1/backups", tag = "backups",
    responses((status = 200, body = BackupList), (status = 401), (status = 403), (status = 503)))]
pub async fn list_backups(State(state): State<AppState>, caller: Caller) -> Result<Json<BackupList>, ApiError> {
    require_root(&caller)?;
    Ok(Json(BackupList { items: files::list(&state.data_dir).map_err(storage)? }))
}

async fn start(state: &AppState, caller: &Caller, kind: JobKind, job: BackupJob) -> Result<JobRecord, ApiError> {
    let params = JobParams { backup: Some(job), ..JobParams::default() };
    kind.check(&params)?;
    let job = state.store.create_job(kind.as_str(), &params, None, &caller.username).await.map_err(store_error)?;
    audit::record(&state.store, caller, Entry::new("start", "job", job.id.to_string()).after(&job)).await;
    Ok(job)
}

fn accepted(job: JobRecord) -> (StatusCode, HeaderMap, Json<JobRecord>) {
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/jobs/{}", job.id)) {
        headers.insert(header::LOCATION, location);
    }
    (StatusCode::ACCEPTED, headers, Json(job))
}

/// Checks a backup request and starts its job (the API and the backups page share it).
///
/// # Errors
/// `400` naming the field, `403` for anyone but root.
pub async fn start_backup(state: &AppState, caller: &Caller, req: BackupRequest) -> Result<JobRecord, ApiError> {
    require_root(caller)?;
    let backup_type = match req.backup_type.as_deref().filter(|s| !s.is_empty()) {
        None => BackupType::Full,
        Some(t) => BackupType::parse(t).map_err(|m| invalid("type", m))?,
    };
    let since: Option<DateTime<Utc>> = match req.since.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => Some(crate::backup::parse_since(s.trim()).map_err(|m| invalid("since", m))?),
    };
    let job = BackupJob {
        file: files::new_name(backup_type),
        backup_type: Some(backup_type),
        since,
        mode: None,
        strategy: None,
        keep_computed: false,
        by: caller.username.clone(),
        address: caller.address.map(|a| a.to_string()),
    };
    start(state, caller, JobKind::Backup, job).await
}

/// Starts a backup job; its result names the file.
#[utoipa::path(post, path = "/api/v1/backups", tag = "backups", request_body = BackupRequest,
    responses((status = 202, body = JobRecord), (status = 400), (status = 401), (status = 403), (status = 503)))]
pub async fn create_backup(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<BackupRequest>,
) -> Result<(StatusCode, HeaderMap, Json<JobRecord>), ApiError> {
    Ok(accepted(start_backup(&state, &caller, req).await?))
}

/// Checks a restore request and starts its job (the API and the backups page share it).
///
/// # Errors
/// `400` naming the field, `403` for anyone but root, `404` for a file that does not exist.
pub async fn start_restore(state: &AppState, caller: &Caller, req: RestoreRequest) -> Result<JobRecord, ApiError> {
    require_root(caller)?;
    let path = files::path_of(&state.data_dir, &req.file).map_err(|m| invalid("file", m))?;
    if !path.is_file() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("backup {:?} does not exist", req.file)));
    }
    let mode = match req.mode.as_str() {
        "validate" => Mode::Validate,
        "preview" => Mode::Preview,
        "restore" => Mode::Restore,
        other => return Err(invalid("mode", format!("{other:?} is not validate, preview or restore"))),
    };
    let strategy = match req.strategy.as_deref().filter(|s| !s.is_empty()) {
        None => Strategy::Manual,
        Some(s) => Strategy::parse(s).map_err(|m| invalid("strategy", m))?,
    };
    let job = BackupJob {
        file: req.file,
        backup_type: None,
        since: None,
        mode: Some(mode),
        strategy: Some(strategy),
        keep_computed: req.keep_computed,
        by: caller.username.clone(),
        address: caller.address.map(|a| a.to_string()),
    };
    start(state, caller, JobKind::Restore, job).await
}

/// Starts a validation, preview or restore job; its result is the summary (counts, conflicts, problems).
#[utoipa::path(post, path = "/api/v1/restores", tag = "backups", request_body = RestoreRequest,
    responses((status = 202, body = JobRecord), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 503)))]
pub async fn create_restore(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<RestoreRequest>,
) -> Result<(StatusCode, HeaderMap, Json<JobRecord>), ApiError> {
    Ok(accepted(start_restore(&state, &caller, req).await?))
}

/// Downloads a backup file.
#[utoipa::path(get, path = "/api/v1/backups/{name}", tag = "backups", params(("name" = String, Path)),
    responses((status = 200, description = "The file: gzip when its name ends in .gz, else JSON",
        content((Vec<u8> = "application/gzip"), (Vec<u8> = "application/json"))), (status = 400), (status = 401),
        (status = 403), (status = 404)))]
pub async fn download_backup(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    download(&state, &caller, &name).await
}

/// Streams backup `name` to the caller, audited (the API and the backups page share it).
///
/// # Errors
/// `400` for a bad name, `403` for anyone but root, `404` for a missing file.
pub async fn download(state: &AppState, caller: &Caller, name: &str) -> Result<Response, ApiError> {
    require_root(caller)?;
    let path = files::path_of(&state.data_dir, name).map_err(|m| invalid("name", m))?;
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("backup {name:?} does not exist")))
        }
        Err(e) => return Err(storage(e)),
    };
    let length = file.metadata().await.map(|m| m.len()).map_err(storage)?;
    audit::record(&state.store, caller, Entry::new("download", "backup", name)).await;
    let content_type = if name.ends_with(".gz") { "application/gzip" } else { "application/json" };
    let body = RawBody::from_stream(tokio_util::io::ReaderStream::new(file));
    let disposition = format!("attachment; filename=\"{name}\"");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Uploads a backup file (the raw bytes, plain JSON or gzip), under a size limit; it is not read until a restore
/// job validates it.
#[utoipa::path(put, path = "/api/v1/backups/{name}", tag = "backups", params(("name" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = BackupFile), (status = 400), (status = 401), (status = 403), (status = 409),
        (status = 413), (status = 503)))]
pub async fn upload_backup(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<(StatusCode, Json<BackupFile>), ApiError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let file = upload(&state, &caller, &name, declared, body, state.max_backup_upload_bytes).await?;
    Ok((StatusCode::CREATED, Json(file)))
}

/// Stores an uploaded backup, audited (the API and the backups page share it).
///
/// # Errors
/// `400` bad name or broken body, `403` anyone but root, `409` a file of that name exists, `413` past `limit`
/// (at once when the `declared` length is past it: the body is then not read).
pub async fn upload(
    state: &AppState,
    caller: &Caller,
    name: &str,
    declared: Option<u64>,
    body: RawBody,
    limit: u64,
) -> Result<BackupFile, ApiError> {
    require_root(caller)?;
    if let Some(length) = declared.filter(|l| *l > limit) {
        tracing::warn!(name, length, limit, "backup upload refused: declared length past the limit");
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the upload declares {length} bytes; at most {limit} are accepted"),
        ));
    }
    let stored =
        files::store_upload(&state.data_dir, name, body.into_data_stream(), limit).await.map_err(|e| match e {
            UploadError::TooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string()),
            UploadError::Name(m) => invalid("name", m),
            UploadError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "already_exists", e.to_string()),
            UploadError::Body(_) => ApiError::new(StatusCode::BAD_REQUEST, "invalid", e.to_string()),
            UploadError::Io(_) => storage(e),
        })?;
    audit::record(&state.store, caller, Entry::new("upload", "backup", name).after(&stored)).await;
    Ok(stored)
}

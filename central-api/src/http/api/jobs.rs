//! Tracked jobs: `POST /api/v1/jobs` starts one (`202` with its id), `GET /api/v1/jobs/{id}` follows it (pending ->
//! running with progress -> done with counts, failed with the error, or cancelled), `GET /api/v1/jobs` lists them
//! with filters, `POST /api/v1/jobs/{id}/cancel` stops one.
//!
//! Scope: a job about a site (or an employee, whose site it takes) is started, seen and cancelled by root and that
//! site's admins (its viewers see it); a job over every site is root's. Starting and cancelling are audited.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::sites::scoped_site;
use super::{invalid, page_size, store_error, Body};
use crate::access::{Action, Caller};
use crate::audit::{self, Entry};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::jobs::{JobKind, JobParams, JobRecord, JobStatus};
use crate::store::jobs::JobFilter;

/// A job to start.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// `reprocess`, `close_day`, `apply_sandwich` or `revert_sandwich`.
    pub kind: String,
    /// First day (reprocess and the sandwich jobs).
    pub from: Option<NaiveDate>,
    /// Last day, included.
    pub to: Option<NaiveDate>,
    /// Only this site (absent, and no employee: every site, root only).
    pub site: Option<String>,
    /// Only this employee (reprocess and the sandwich jobs).
    pub employee: Option<String>,
    /// close_day: act as if it were this instant (RFC 3339).
    pub now: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `pending`, `running`, `done`, `failed` or `cancelled`.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub site: Option<String>,
    /// Username of the administrator who started it.
    pub requested_by: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// A page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub items: Vec<JobRecord>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn not_found(id: i64) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("job {id} does not exist"))
}

/// Checks `req` and the caller's right to start it; returns the kind, parameters and the job's site.
///
/// # Errors
/// `400` naming the field, `403`/`404` from the scope checks.
pub async fn checked_request(
    state: &AppState,
    caller: &Caller,
    req: JobRequest,
) -> Result<(JobKind, JobParams, Option<String>), ApiError> {
    let kind = JobKind::from_name(&req.kind).ok_or_else(|| {
        let names: Vec<&str> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
        invalid("kind", format!("{:?} is not one of {}", req.kind, names.join(", ")))
    })?;
    let params =
        JobParams { from: req.from, to: req.to, site: req.site, employee: req.employee, now: req.now, backup: None };
    kind.check(&params)?;
    let site = if let Some(id) = &params.employee {
        let profile = state.store.employee_profile(id).await.map_err(store_error)?;
        let site = profile.and_then(|p| p.site_id).filter(|s| caller.sees(s));
        Some(site.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("employee {id:?} does not exist"))
        })?)
    } else {
        params.site.clone()
    };
    if let Some(site) = &site {
        caller.require(Action::Write, Some(site))?;
        if state.store.site(site).await.map_err(store_error)?.is_none() {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("site {site:?} does not exist")));
        }
    }
    if site.is_none() || kind.root_only() {
        caller.require(Action::Write, None)?;
    }
    Ok((kind, params, site))
}

/// Starts a tracked job: answered at once with its id; a replica picks it up.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", request_body = JobRequest,
    responses((status = 202, body = JobRecord), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 413), (status = 503)))]
pub async fn create_job(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<JobRequest>,
) -> Result<(StatusCode, HeaderMap, Json<JobRecord>), ApiError> {
    let job = start_job(&state, &caller, req).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/jobs/{}", job.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::ACCEPTED, headers, Json(job)))
}

/// Checks and stores a job request, and audits it (the API and the jobs page share it).
///
/// # Errors
/// As [`checked_request`], and `503` when the store fails.
pub async fn start_job(state: &AppState, caller: &Caller, req: JobRequest) -> Result<JobRecord, ApiError> {
    let (kind, params, site) = checked_request(state, caller, req).await?;
    let job =
        state.store.create_job(kind.as_str(), &params, site.as_deref(), &caller.username).await.map_err(store_error)?;
    audit::record(
        &state.store,
        caller,
        Entry::new("start", "job", job.id.to_string()).site(site.as_deref()).after(&job),
    )
    .await;
    Ok(job)
}

async fn visible_job(state: &AppState, caller: &Caller, id: i64) -> Result<JobRecord, ApiError> {
    let job = state.store.job(id).await.map_err(store_error)?.ok_or_else(|| not_found(id))?;
    let visible = match &job.site_id {
        Some(site) => caller.sees(site),
        None => caller.role == crate::access::Role::Root,
    };
    if visible {
        Ok(job)
    } else {
        Err(not_found(id))
    }
}

/// One job, with its progress.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = JobRecord), (status = 400), (status = 401), (status = 404), (status = 503)))]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(visible_job(&state, &caller, id).await?))
}

/// The jobs filter a query asks for.
///
/// # Errors
/// `400` naming a bad parameter, `404` for a site out of scope.
pub fn job_filter(caller: &Caller, q: JobQuery) -> Result<JobFilter, ApiError> {
    let limit = page_size(q.limit)?;
    let site = scoped_site(caller, q.site.as_deref())?.map(str::to_owned);
    let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let status = blank(q.status);
    if let Some(status) = &status {
        if JobStatus::from_name(status).is_none() {
            return Err(invalid("status", format!("{status:?} is not pending, running, done, failed or cancelled")));
        }
    }
    let before_id = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| invalid("cursor", "is not a cursor this API returned"))?),
    };
    Ok(JobFilter {
        scope: caller.scope().map(str::to_owned),
        site,
        kind: blank(q.kind),
        status,
        requested_by: blank(q.requested_by),
        before_id,
        limit,
    })
}

/// Jobs of the caller's sites (root: every job), newest first.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, body = JobPage), (status = 400), (status = 401), (status = 404), (status = 503)))]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<JobQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let filter = job_filter(&caller, q)?;
    let items = state.store.list_jobs(&filter).await.map_err(store_error)?;
    let next_cursor = (items.len() as i64 == filter.limit).then(|| items.last().map(|j| j.id.to_string())).flatten();
    Ok(Json(JobPage { items, next_cursor }))
}

/// Cancels a job: a pending one at once, a running one at its next step.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = JobRecord), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409), (status = 503)))]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<JobRecord>, ApiError> {
    Ok(Json(cancel_checked(&state, &caller, id).await?))
}

/// Cancels job `id` after the caller's checks, and audits it (the API and the jobs page share it).
///
/// # Errors
/// `404` for a job the caller does not see, `403` for a viewer or an admin cancelling a job over every site,
/// `409` for a job that already ended.
pub async fn cancel_checked(state: &AppState, caller: &Caller, id: i64) -> Result<JobRecord, ApiError> {
    let before = visible_job(state, caller, id).await?;
    caller.require(Action::Write, before.site_id.as_deref())?;
    if before.status.is_finished() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_finished",
            format!("job {id} already ended ({})", before.status.as_str()),
        ));
    }
    let after = state.store.cancel_job(id).await.map_err(store_error)?;
    audit::record(
        &state.store,
        caller,
        Entry::new("cancel", "job", id.to_string()).site(before.site_id.as_deref()).before(&before).after(&after),
    )
    .await;
    Ok(after)
}

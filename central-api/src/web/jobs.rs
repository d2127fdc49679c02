//! `GET /jobs`: tracked jobs with their progress (the page reloads itself every few seconds while one is pending or
//! running), a form to start one (`POST /jobs`) and a cancel button (`POST /jobs/{id}/cancel`). Starting and
//! cancelling go through the API's own functions ([`start_job`], [`cancel_checked`]): same checks, same audit.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use super::edit::{date, field, select};
use super::error::WebError;
use super::layout::{flash_redirect, page};
use crate::access::{Action, Role};
use crate::http::api::jobs::{cancel_checked, job_filter, start_job, JobQuery, JobRequest};
use crate::http::api::updates::FieldError;
use crate::http::AppState;
use crate::jobs::{JobKind, JobRecord, JobStatus};

/// Seconds between reloads while a job is pending or running.
const REFRESH_SECS: u32 = 3;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    kind: Option<String>,
    site: Option<String>,
    cursor: Option<String>,
}

/// The start form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct StartForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    site: String,
    #[serde(default)]
    employee: String,
}

impl StartForm {
    fn request(&self) -> Result<JobRequest, FieldError> {
        let text = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        Ok(JobRequest {
            kind: self.kind.trim().to_owned(),
            from: date("from", &self.from)?,
            to: date("to", &self.to)?,
            site: text(&self.site),
            employee: text(&self.employee),
            now: None,
        })
    }
}

/// `GET /jobs`.
pub async fn list(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    render(&state, &ctx, q, &StartForm::default(), None).await
}

async fn render(
    state: &AppState,
    ctx: &WebContext,
    q: ListQuery,
    form: &StartForm,
    error: Option<&FieldError>,
) -> Result<Response, WebError> {
    let query = JobQuery {
        status: q.status.clone(),
        kind: q.kind.clone(),
        site: q.site.clone().filter(|s| !s.is_empty()),
        requested_by: None,
        cursor: q.cursor.clone(),
        limit: Some(50),
    };
    let filter = job_filter(&ctx.caller, query)?;
    let jobs = state.store.list_jobs(&filter).await?;
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let busy = jobs.iter().any(|j| !j.status.is_finished());
    let next = (jobs.len() as i64 == filter.limit).then(|| jobs.last().map(|j| j.id)).flatten();
    let mut site_options: Vec<(String, String)> = Vec::new();
    if ctx.caller.role == Role::Root {
        site_options.push((String::new(), "Every site".to_owned()));
    }
    site_options.extend(sites.iter().map(|s| (s.site_id.clone(), format!("{} ({})", s.name, s.site_id))));
    let kinds: Vec<(String, String)> = JobKind::ALL
        .iter()
        .filter(|k| !k.file_based())
        .map(|k| (k.as_str().to_owned(), k.label().to_owned()))
        .collect();
    let mut statuses = vec![(String::new(), "Any status".to_owned())];
    statuses.extend(JobStatus::ALL.iter().map(|s| (s.as_str().to_owned(), s.as_str().to_owned())));
    let body = html! {
        @if busy {
            // Reload while something runs, so the progress moves without a script.
            meta http-equiv="refresh" content=(REFRESH_SECS);
        }
        h1 { "Jobs" }
        p.muted { "Long runs (reprocessing, closing the day, the sandwich rule) run in the background on one replica; \
                   their progress shows here." }
        @if ctx.caller.role != Role::Viewer {
            h2 { "Start a job" }
            @if let Some(e) = error {
                p.error role="alert" data-testid="form-error" { "Please correct " (e.field) ": " (e.message) }
            }
            form.filters method="post" action="/jobs" data-testid="job-form" {
                (csrf_field(ctx))
                (field("kind", "Job", select("kind", &kinds, &form.kind, error), error))
                (field("from", "From", super::edit::input("from", "date", &form.from, false, error), error))
                (field("to", "To", super::edit::input("to", "date", &form.to, false, error), error))
                (field("site", "Site", select("site", &site_options, &form.site, error), error))
                (field("employee", "Employee (optional)", super::edit::input("employee", "text", &form.employee, false, error), error))
                button type="submit" { "Start" }
            }
        }
        h2 { "Recent jobs" }
        form.filters method="get" action="/jobs" {
            div { label for="f-status" { "Status" }
                select id="f-status" name="status" {
                    @for (value, label) in &statuses {
                        option value=(value) selected[q.status.as_deref().unwrap_or("") == value] { (label) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        @if jobs.is_empty() {
            p.muted data-testid="no-jobs" { "No jobs yet." }
        } @else {
            div.table-wrap {
                table data-testid="jobs" {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "Job" } th scope="col" { "Site" }
                        th scope="col" { "Range" } th scope="col" { "Status" } th scope="col" { "Progress" }
                        th scope="col" { "Started by" } th scope="col" { "Result" } th scope="col" { "Cancel" }
                    } }
                    tbody {
                        @for job in &jobs { (row(ctx, job)) }
                    }
                }
            }
        }
        @if let Some(next) = next {
            p { a href=(format!("/jobs?cursor={next}&status={}", q.status.as_deref().unwrap_or(""))) { "Older jobs" } }
        }
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    Ok((status, page("Jobs", ctx, body)).into_response())
}

fn row(ctx: &WebContext, job: &JobRecord) -> Markup {
    let label: &str = match JobKind::from_name(&job.kind) {
        Some(kind) => kind.label(),
        None => &job.kind,
    };
    let range = match (job.params.from, job.params.to) {
        (Some(from), Some(to)) => format!("{from} to {to}"),
        _ => String::new(),
    };
    let may_cancel = !job.status.is_finished() && ctx.caller.require(Action::Write, job.site_id.as_deref()).is_ok();
    html! {
        tr data-job=(job.id) {
            td { (job.id) }
            td { (label) @if let Some(e) = &job.params.employee { " (employee " (e) ")" } }
            td { (job.site_id.as_deref().unwrap_or("every site")) }
            td { (range) }
            td data-testid=(format!("job-status-{}", job.id)) { (job.status.as_str()) @if job.cancel_requested && !job.status.is_finished() { " (cancelling)" } }
            td {
                progress value=(job.progress.done) max=(job.progress.total.max(1)) aria-label=(format!("Job {} progress", job.id)) {}
                " " (job.progress.done) " of " (job.progress.total)
            }
            td { (job.requested_by) " " small { (job.requested_at.format("%Y-%m-%d %H:%M UTC")) } }
            td {
                @if let Some(result) = &job.result { code { (result.to_string()) } }
                @if let Some(error) = &job.error { span.bad { (error) } }
            }
            td {
                @if may_cancel {
                    form.inline method="post" action=(format!("/jobs/{}/cancel", job.id)) {
                        (csrf_field(ctx))
                        button type="submit" aria-label=(format!("Cancel job {}", job.id)) { "Cancel" }
                    }
                }
            }
        }
    }
}

/// `POST /jobs`.
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<StartForm>,
) -> Result<Response, WebError> {
    let request = match form.request() {
        Ok(r) => r,
        Err(e) => return render(&state, &ctx, ListQuery::default(), &form, Some(&e)).await,
    };
    match start_job(&state, &ctx.caller, request).await {
        Ok(job) => Ok(flash_redirect("/jobs", &format!("Job {} started.", job.id))),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let (field, message) = e.message.split_once(": ").unwrap_or(("kind", e.message.as_str()));
            let field = ["kind", "from", "to", "site", "employee"].into_iter().find(|f| *f == field).unwrap_or("kind");
            let error = FieldError::new(field, message);
            render(&state, &ctx, ListQuery::default(), &form, Some(&error)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    cancel_checked(&state, &ctx.caller, id).await?;
    Ok(flash_redirect("/jobs", &format!("Job {id} is being cancelled.")))
}

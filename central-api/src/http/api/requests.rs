//! Manual logs and leave: list, request, approve, reject. Deciding one goes through the store's decide functions,
//! which mark the days it touches dirty in the same transaction, so the attendance worker recomputes them.

use crate::audit::{self, Entry};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::sites::scoped_site;
use super::{invalid, store_error, text, Body};
use crate::access::{Action, Caller};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::attendance::requests::{NewLeave, NewManualLog};
use crate::store::listing::{RequestRow, RequestTable};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestFilter {
    pub site: Option<String>,
    /// `pending`, `approved` or `rejected`.
    pub approval: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualLogBody {
    pub employee_id: String,
    /// Local wall-clock time at the employee's site.
    #[schema(value_type = crate::http::api::local_time::LocalDateTime)]
    pub local_time: NaiveDateTime,
    /// `check_in`, `check_out`, `break_out`, `break_in`, `overtime_in`, `overtime_out`.
    pub state: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveBody {
    pub employee_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub kind: String,
    #[serde(default)]
    pub paid: bool,
}

/// The id of a request just recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub id: i64,
}

fn check_approval(filter: &RequestFilter) -> Result<(), ApiError> {
    match filter.approval.as_deref() {
        None | Some("pending" | "approved" | "rejected") => Ok(()),
        Some(other) => Err(invalid("approval", format!("{other:?} is not pending, approved or rejected"))),
    }
}

/// The site of an employee the caller sees, or 404.
async fn employee_site(state: &AppState, caller: &Caller, employee: &str) -> Result<String, ApiError> {
    let profile = state.store.employee_profile(employee).await.map_err(store_error)?;
    profile
        .and_then(|p| p.site_id)
        .filter(|s| caller.sees(s))
        .ok_or_else(|| invalid("employee_id", format!("employee {employee:?} does not exist")))
}

pub async fn decide(
    state: &AppState,
    caller: &Caller,
    table: RequestTable,
    id: i64,
    approve: bool,
) -> Result<StatusCode, ApiError> {
    let site = state.store.request_site(table, id).await.map_err(store_error)?;
    let what = if table == RequestTable::Leaves { "leave" } else { "manual log" };
    let Some(site) = site.filter(|s| caller.sees(s)) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} {id} does not exist")));
    };
    caller.require(Action::Write, Some(&site))?;
    let done = match table {
        RequestTable::ManualLogs => state.store.decide_manual_log(id, approve, &caller.username).await,
        RequestTable::Leaves => state.store.decide_leave(id, approve, &caller.username).await,
    };
    done.map_err(|e| match e {
        crate::store::StoreError::Invalid(m) => ApiError::new(StatusCode::CONFLICT, "already_decided", m),
        other => store_error(other),
    })?;
    let resource = if table == RequestTable::Leaves { "leave" } else { "manual_log" };
    let decision = if approve { "approved" } else { "rejected" };
    audit::record(
        &state.store,
        caller,
        Entry::new(if approve { "approve" } else { "reject" }, resource, id.to_string())
            .site(Some(&site))
            .before(&serde_json::json!({ "approval": "pending" }))
            .after(&serde_json::json!({ "approval": decision, "decided_by": caller.username })),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Manual logs of the caller's sites.
#[utoipa::path(get, path = "/api/v1/manual-logs", tag = "requests", params(RequestFilter),
    responses((status = 200, body = [RequestRow])))]
pub async fn list_manual_logs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RequestFilter>,
) -> Result<Json<Vec<RequestRow>>, ApiError> {
    check_approval(&q)?;
    let site = scoped_site(&caller, q.site.as_deref())?;
    Ok(Json(state.store.list_manual_logs(caller.scope(), site, q.approval.as_deref()).await.map_err(store_error)?))
}

/// Records a pending manual log (root, or admin of the employee's site).
#[utoipa::path(post, path = "/api/v1/manual-logs", tag = "requests", request_body = ManualLogBody,
    description = "A manual log is keyed by employee, local time and state. Asking again for a rejected one makes it \
        pending again (same id, new reason); asking again for a pending or approved one is a 409.",
    responses((status = 201, body = Created), (status = 400), (status = 403), (status = 409)))]
pub async fn create_manual_log(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<ManualLogBody>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    text("reason", &req.reason, 500)?;
    let punch_state = protocol::PunchState::from_name(&req.state)
        .filter(|s| !matches!(s, protocol::PunchState::Unknown(_)))
        .ok_or_else(|| invalid("state", format!("{:?} is not a punch state such as check_in", req.state)))?;
    let site = employee_site(&state, &caller, &req.employee_id).await?;
    let log = NewManualLog {
        employee_id: req.employee_id,
        local_time: req.local_time,
        state: punch_state,
        reason: req.reason,
        requested_by: caller.username.clone(),
    };
    let id = request_manual_log(&state, &caller, &site, &log).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// Stores and audits a checked manual log of an employee at `site` after the caller's check (the API and the web
/// form share it).
///
/// # Errors
/// `403`/`404` from the scope check, `503` when the store fails.
pub async fn request_manual_log(
    state: &AppState,
    caller: &Caller,
    site: &str,
    log: &NewManualLog,
) -> Result<i64, ApiError> {
    caller.require(Action::Write, Some(site))?;
    let id = state.store.request_manual_log(log).await.map_err(store_error)?;
    let after = serde_json::json!({ "employee_id": log.employee_id, "local_time": log.local_time,
        "state": log.state.name(), "reason": log.reason, "approval": "pending" });
    audit::record(
        &state.store,
        caller,
        Entry::new("create", "manual_log", id.to_string()).site(Some(site)).after(&after),
    )
    .await;
    Ok(id)
}

/// Approves a pending manual log; its days are recomputed.
#[utoipa::path(post, path = "/api/v1/manual-logs/{id}/approve", tag = "requests", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn approve_manual_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    decide(&state, &caller, RequestTable::ManualLogs, id, true).await
}

/// Rejects a pending manual log.
#[utoipa::path(post, path = "/api/v1/manual-logs/{id}/reject", tag = "requests", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn reject_manual_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    decide(&state, &caller, RequestTable::ManualLogs, id, false).await
}

/// Leave of the caller's sites.
#[utoipa::path(get, path = "/api/v1/leaves", tag = "requests", params(RequestFilter),
    responses((status = 200, body = [RequestRow])))]
pub async fn list_leaves(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<RequestFilter>,
) -> Result<Json<Vec<RequestRow>>, ApiError> {
    check_approval(&q)?;
    let site = scoped_site(&caller, q.site.as_deref())?;
    Ok(Json(state.store.list_leaves(caller.scope(), site, q.approval.as_deref()).await.map_err(store_error)?))
}

/// Records a pending leave (root, or admin of the employee's site).
#[utoipa::path(post, path = "/api/v1/leaves", tag = "requests", request_body = LeaveBody,
    responses((status = 201, body = Created), (status = 400), (status = 403)))]
pub async fn create_leave(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<LeaveBody>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    text("kind", &req.kind, 50)?;
    if req.to < req.from {
        return Err(invalid("to", format!("{} is before from {}", req.to, req.from)));
    }
    let site = employee_site(&state, &caller, &req.employee_id).await?;
    caller.require(Action::Write, Some(&site))?;
    let leave = NewLeave {
        employee_id: req.employee_id,
        from: req.from,
        to: req.to,
        kind: req.kind,
        paid: req.paid,
        requested_by: caller.username.clone(),
    };
    let id = state.store.request_leave(&leave).await.map_err(store_error)?;
    audit::record(&state.store, &caller, Entry::new("create", "leave", id.to_string()).site(Some(&site)).after(&leave))
        .await;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// Approves a pending leave; its days are recomputed.
#[utoipa::path(post, path = "/api/v1/leaves/{id}/approve", tag = "requests", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn approve_leave(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    decide(&state, &caller, RequestTable::Leaves, id, true).await
}

/// Rejects a pending leave.
#[utoipa::path(post, path = "/api/v1/leaves/{id}/reject", tag = "requests", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn reject_leave(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    decide(&state, &caller, RequestTable::Leaves, id, false).await
}

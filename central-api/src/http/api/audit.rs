//! `GET /api/v1/audit`: the audit log, newest first, in pages. Root reads every entry; an admin the entries of
//! their sites; a viewer none (403). There is no operation that changes an entry.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::sites::scoped_site;
use super::{invalid, page_size, store_error};
use crate::access::{Caller, Role};
use crate::audit::AuditRecord;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::audit::AuditFilter;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub site: Option<String>,
    /// Username of the administrator who made the change.
    pub actor: Option<String>,
    /// `shift`, `employee`, `holiday`, `week_off_rule`, `site`, `manual_log`, `leave`, `agent`, `device`, `token`,
    /// `job`.
    pub resource: Option<String>,
    pub resource_id: Option<String>,
    /// `create`, `update`, `delete`, `approve`, `reject`, `revoke`, `issue`, `start`, `cancel`.
    pub action: Option<String>,
    /// Entries at or after this instant (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Entries at or before this instant.
    pub to: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// A page of audit entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditRecord>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The filter a query asks for, checked against the caller's role and sites.
///
/// # Errors
/// `403` for a viewer, `404` for a site out of scope, `400` naming a bad parameter.
pub fn audit_filter(caller: &Caller, q: AuditQuery) -> Result<AuditFilter, ApiError> {
    if caller.role == Role::Viewer {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("viewer {} may not read the audit log", caller.username),
        ));
    }
    let limit = page_size(q.limit)?;
    let site = scoped_site(caller, q.site.as_deref())?.map(str::to_owned);
    let before_id = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| invalid("cursor", "is not a cursor this API returned"))?),
    };
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if to < from {
            return Err(invalid("to", format!("{to} is before from {from}")));
        }
    }
    let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    Ok(AuditFilter {
        scope: caller.scope().map(str::to_owned),
        site,
        actor: blank(q.actor),
        resource: blank(q.resource),
        resource_id: blank(q.resource_id),
        action: blank(q.action),
        from: q.from,
        to: q.to,
        before_id,
        limit,
    })
}

/// The audit log of the caller's sites (root: all of it), newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 503)))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let filter = audit_filter(&caller, q)?;
    let items = state.store.list_audit(&filter).await.map_err(store_error)?;
    let next_cursor = (items.len() as i64 == filter.limit).then(|| items.last().map(|r| r.id.to_string())).flatten();
    Ok(Json(AuditPage { items, next_cursor }))
}

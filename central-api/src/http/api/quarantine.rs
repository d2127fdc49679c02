//! The punch quarantine and moving devices between sites (issue 12).
//!
//! - `GET /api/v1/quarantine`: punches an agent sent naming another site's device, to root and to the
//!   administrators and viewers of either site (the sender's or the device's); others get an empty list.
//! - `POST /api/v1/quarantine/release`: copies held punches into AllLogs under their device's current site. That
//!   changes that site's attendance, so it takes root or an admin of the device's current site (after moving the
//!   device to the sender's site, an admin of that site; without moving it, an admin of the device's site who
//!   accepts the punches as their own).
//! - `POST /api/v1/quarantine/discard`: root or an admin of either site.
//! - `POST /api/v1/devices/{serial}/move`: root, or an admin of both the device's site and the new one.
//!
//! Every decision is audited under each site involved, so both sites' administrators read it in their audit log.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::{invalid, page_size, store_error, Body};
use crate::access::{Action, Caller, Role};
use crate::audit::{self, Entry};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::quarantine::{self, QuarantineFilter, QuarantinedPunch, Released};

/// Most punches one decision may name.
pub const MAX_IDS: usize = 1000;

/// The routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/quarantine", get(list_quarantine))
        .route("/api/v1/quarantine/release", post(release))
        .route("/api/v1/quarantine/discard", post(discard))
        .route("/api/v1/devices/{serial}/move", post(move_device))
}

/// This module's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list_quarantine, release, discard, move_device))]
pub struct QuarantineDoc;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuarantineQuery {
    /// Only punches with this site as sender or as the device's site.
    pub site: Option<String>,
    /// Only this device's punches.
    pub device: Option<String>,
    /// `held`, `released` or `discarded`.
    pub status: Option<String>,
    /// Keyset cursor: punches with a larger id.
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// Punches to decide on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Ids from `GET /api/v1/quarantine`, 1 to 1000 of them.
    pub ids: Vec<i64>,
}

/// What a release did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseResult {
    pub released: usize,
    /// Site whose AllLogs received them.
    pub into_sites: Vec<String>,
    #[serde(flatten)]
    pub counts: Released,
}

/// What a discard did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DiscardResult {
    pub discarded: u64,
}

/// A device's new site.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceMove {
    pub site_id: String,
}

/// Whether `caller` may change `site`'s records (root, or an admin granted the site).
fn admin_of(caller: &Caller, site: &str) -> bool {
    caller.role == Role::Root || (caller.role == Role::Admin && caller.sees(site))
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// Quarantined punches the caller sees, by id.
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "sites", params(QuarantineQuery),
    responses((status = 200, body = [QuarantinedPunch]), (status = 400), (status = 401), (status = 404),
        (status = 503)))]
pub async fn list_quarantine(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<QuarantineQuery>,
) -> Result<Json<Vec<QuarantinedPunch>>, ApiError> {
    if let Some(site) = &q.site {
        caller.require(Action::Read, Some(site))?;
    }
    if let Some(status) = &q.status {
        if !["held", "released", "discarded"].contains(&status.as_str()) {
            return Err(invalid("status", format!("{status:?} is not held, released or discarded")));
        }
    }
    let filter = QuarantineFilter {
        site: q.site.as_deref(),
        device: q.device.as_deref(),
        status: q.status.as_deref(),
        after: q.after.unwrap_or(0),
        limit: page_size(q.limit)?,
    };
    Ok(Json(state.store.list_quarantine(caller.scope(), &filter).await.map_err(store_error)?))
}

/// The held punches `ids` names, each visible to the caller.
///
/// # Errors
/// `400` for no id or too many, `404` for an id the caller does not see, `409` for one already decided.
async fn held(state: &AppState, caller: &Caller, decision: &Decision) -> Result<Vec<QuarantinedPunch>, ApiError> {
    let ids: BTreeSet<i64> = decision.ids.iter().copied().collect();
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(invalid("ids", format!("name 1 to {MAX_IDS} quarantined punches")));
    }
    let ids: Vec<i64> = ids.into_iter().collect();
    let rows = state.store.quarantined(&ids).await.map_err(store_error)?;
    for id in &ids {
        let row =
            rows.iter().find(|r| r.id == *id).filter(|r| caller.sees(&r.site_id) || caller.sees(&r.device_site_id));
        let Some(row) = row else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("quarantined punch {id} does not exist"),
            ));
        };
        if row.status != "held" {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_decided",
                format!(
                    "quarantined punch {id} was already {} by {}",
                    row.status,
                    row.decided_by.as_deref().unwrap_or("?")
                ),
            ));
        }
    }
    Ok(rows)
}

/// Audits `action` on `rows` once per site involved (`extra`: the site that received them).
async fn audit_decision(
    caller: &Caller,
    tx: &mut crate::store::Tx,
    action: &'static str,
    rows: &[QuarantinedPunch],
    extra: &[String],
    after: &serde_json::Value,
) -> Result<(), ApiError> {
    let sites: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| [r.site_id.as_str(), r.device_site_id.as_str()])
        .chain(extra.iter().map(String::as_str))
        .collect();
    let devices: BTreeSet<&str> = rows.iter().map(|r| r.device_serial.as_str()).collect();
    let id = devices.into_iter().collect::<Vec<_>>().join(",");
    let before: Vec<&QuarantinedPunch> = rows.iter().collect();
    for site in sites {
        let entry = Entry::new(action, "quarantined_punches", &id).site(Some(site)).before(&before).after(after);
        audit::record_in(tx, caller, entry).await.map_err(store_error)?;
    }
    Ok(())
}

/// Releases held punches into AllLogs under their device's current site.
#[utoipa::path(post, path = "/api/v1/quarantine/release", tag = "sites", request_body = Decision,
    responses((status = 200, body = ReleaseResult), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409), (status = 413), (status = 503)))]
pub async fn release(
    State(state): State<AppState>,
    caller: Caller,
    Body(decision): Body<Decision>,
) -> Result<Json<ReleaseResult>, ApiError> {
    let rows = held(&state, &caller, &decision).await?;
    let mut into_sites = BTreeSet::new();
    let devices: BTreeSet<&str> = rows.iter().map(|r| r.device_serial.as_str()).collect();
    for serial in devices {
        let device = state.store.device(serial).await.map_err(store_error)?;
        let Some(device) = device else {
            return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("device {serial:?} does not exist")));
        };
        let site = device.device.site_id;
        if !admin_of(&caller, &site) {
            return Err(forbidden(format!(
                "releasing puts device {serial}'s punches into site {site}'s attendance: only root or an admin of \
                 site {site} may do it (move the device to the sender's site first if the punches are that site's)"
            )));
        }
        into_sites.insert(site);
    }
    let into_sites: Vec<String> = into_sites.into_iter().collect();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut tx = state.store.begin().await.map_err(store_error)?;
    let counts = quarantine::release(&mut tx, &ids, &caller.username).await.map_err(store_error)?;
    let after = serde_json::json!({ "ids": ids, "into_sites": into_sites, "new": counts.new,
        "duplicates": counts.duplicates, "status": "released" });
    audit_decision(&caller, &mut tx, "release", &rows, &into_sites, &after).await?;
    tx.commit().await.map_err(store_error)?;
    Ok(Json(ReleaseResult { released: ids.len(), into_sites, counts }))
}

/// Marks held punches discarded (they stay listed, never enter AllLogs).
#[utoipa::path(post, path = "/api/v1/quarantine/discard", tag = "sites", request_body = Decision,
    responses((status = 200, body = DiscardResult), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409), (status = 413), (status = 503)))]
pub async fn discard(
    State(state): State<AppState>,
    caller: Caller,
    Body(decision): Body<Decision>,
) -> Result<Json<DiscardResult>, ApiError> {
    let rows = held(&state, &caller, &decision).await?;
    if let Some(row) = rows.iter().find(|r| !admin_of(&caller, &r.site_id) && !admin_of(&caller, &r.device_site_id)) {
        return Err(forbidden(format!(
            "{} {} may not discard quarantined punch {}: only root or an admin of site {} or {} may",
            caller.role.as_str(),
            caller.username,
            row.id,
            row.site_id,
            row.device_site_id
        )));
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut tx = state.store.begin().await.map_err(store_error)?;
    let discarded = quarantine::discard(&mut tx, &ids, &caller.username).await.map_err(store_error)?;
    let after = serde_json::json!({ "ids": ids, "status": "discarded" });
    audit_decision(&caller, &mut tx, "discard", &rows, &[], &after).await?;
    tx.commit().await.map_err(store_error)?;
    Ok(Json(DiscardResult { discarded }))
}

/// Moves a device to another site (root, or an admin of both sites) and confirms it.
#[utoipa::path(post, path = "/api/v1/devices/{serial}/move", tag = "sites", params(("serial" = String, Path)),
    request_body = DeviceMove, responses((status = 204), (status = 400), (status = 401), (status = 403),
        (status = 404), (status = 413), (status = 503)))]
pub async fn move_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(serial): Path<String>,
    Body(req): Body<DeviceMove>,
) -> Result<StatusCode, ApiError> {
    let device = state.store.device(&serial).await.map_err(store_error)?;
    let Some(device) = device.filter(|d| caller.sees(&d.device.site_id)) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("device {serial:?} does not exist")));
    };
    let from = device.device.site_id.clone();
    caller.require(Action::Write, Some(&from))?;
    caller.require(Action::Write, Some(&req.site_id))?;
    if state.store.site(&req.site_id).await.map_err(store_error)?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("site {:?} does not exist", req.site_id),
        ));
    }
    state.store.move_device(&serial, &req.site_id).await.map_err(store_error)?;
    let before = serde_json::json!({ "serial": serial, "site_id": from });
    let after = serde_json::json!({ "serial": serial, "site_id": req.site_id, "confirmed": true });
    for site in BTreeSet::from([from.as_str(), req.site_id.as_str()]) {
        let entry = Entry::new("move", "device", &serial).site(Some(site)).before(&before).after(&after);
        audit::record(&state.store, &caller, entry).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

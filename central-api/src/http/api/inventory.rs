//! The fleet API: the inventory of agents and devices, the history of their state changes, alert rules, open
//! alerts and the history of raised and cleared alerts with their notifications. Reads are for every role on the
//! caller's sites; rules are changed by root and the site's admins. Its OpenAPI paths are [`FleetDoc`], merged into
//! the service's document.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::sites::scoped_site;
use super::{invalid, page_size, store_error, Body};
use crate::access::{Action, Caller};
use crate::alerts::rules::{check_rule, AlertRule, NewRule, RuleChange, RuleError};
use crate::audit::{self, Entry};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::alerts::{AlertEvent, OpenAlert};
use crate::store::history::{HistoryFilter, StatusChange};
use crate::store::inventory::{AgentInventory, DeviceInventory};

/// The fleet routes, merged into [`super::router`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/inventory/agents", get(agents))
        .route("/api/v1/inventory/devices", get(devices))
        .route("/api/v1/status-history", get(history))
        .route("/api/v1/alert-rules", get(list_rules).post(create_rule))
        .route("/api/v1/alert-rules/{id}", get(get_rule).put(update_rule).delete(delete_rule))
        .route("/api/v1/alerts", get(open_alerts))
        .route("/api/v1/alert-events", get(alert_events))
}

#[derive(OpenApi)]
#[openapi(paths(
    agents,
    devices,
    history,
    list_rules,
    create_rule,
    get_rule,
    update_rule,
    delete_rule,
    open_alerts,
    alert_events
))]
pub struct FleetDoc;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SiteQuery {
    /// Only this site's.
    pub site: Option<String>,
}

/// Every agent of the caller's sites with what its latest status said.
#[utoipa::path(get, path = "/api/v1/inventory/agents", tag = "fleet", params(SiteQuery),
    responses((status = 200, body = [AgentInventory]), (status = 401), (status = 404)))]
pub async fn agents(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SiteQuery>,
) -> Result<Json<Vec<AgentInventory>>, ApiError> {
    let site = scoped_site(&caller, q.site.as_deref())?;
    Ok(Json(state.store.agent_inventory(caller.scope(), site).await.map_err(store_error)?))
}

/// Every device of the caller's sites, registered or only reported by an agent, with identity, counts against
/// capacities, clock drift, last punch and last successful read.
#[utoipa::path(get, path = "/api/v1/inventory/devices", tag = "fleet", params(SiteQuery),
    responses((status = 200, body = [DeviceInventory]), (status = 401), (status = 404)))]
pub async fn devices(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SiteQuery>,
) -> Result<Json<Vec<DeviceInventory>>, ApiError> {
    let site = scoped_site(&caller, q.site.as_deref())?;
    Ok(Json(state.store.device_inventory(caller.scope(), site).await.map_err(store_error)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    pub site: Option<String>,
    /// Only this agent's changes (its own and its devices').
    pub agent: Option<String>,
    /// Only this device's changes.
    pub device: Option<String>,
    /// The next page: changes older than this id.
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Changes of state (reachable, unreachable, fault raised, fault cleared) of agents and devices of the caller's
/// sites, newest first.
#[utoipa::path(get, path = "/api/v1/status-history", tag = "fleet", params(HistoryQuery),
    responses((status = 200, body = [StatusChange]), (status = 400), (status = 401), (status = 404)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Vec<StatusChange>>, ApiError> {
    let site = scoped_site(&caller, q.site.as_deref())?;
    let filter = HistoryFilter {
        scope: caller.scope(),
        site,
        agent: q.agent.as_deref(),
        device: q.device.as_deref(),
        before: q.before,
        after: None,
        limit: page_size(q.limit)?,
    };
    Ok(Json(state.store.status_history(&filter).await.map_err(store_error)?))
}

/// Alert rules of the caller's sites.
#[utoipa::path(get, path = "/api/v1/alert-rules", tag = "fleet", params(SiteQuery),
    responses((status = 200, body = [AlertRule]), (status = 401), (status = 404)))]
pub async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SiteQuery>,
) -> Result<Json<Vec<AlertRule>>, ApiError> {
    let site = scoped_site(&caller, q.site.as_deref())?;
    Ok(Json(state.store.alert_rules(caller.scope(), site).await.map_err(store_error)?))
}

/// A rule just created or changed; the webhook secret is shown once, when it was generated.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedRule {
    #[serde(flatten)]
    pub rule: AlertRule,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

fn rule_error(e: RuleError) -> ApiError {
    invalid(e.field, e.message)
}

/// The rule `id` if the caller sees its site.
///
/// # Errors
/// `400` for an id that is not a number, `404` for a rule that does not exist or that the caller does not see.
pub async fn visible_rule(state: &AppState, caller: &Caller, id: &str) -> Result<AlertRule, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("alert rule {id:?} does not exist"));
    let number: i64 = id.parse().map_err(|_| invalid("id", format!("{id:?} is not a rule id")))?;
    let rule = state.store.alert_rule(number).await.map_err(store_error)?.ok_or_else(not_found)?;
    if !caller.sees(&rule.site_id) {
        return Err(not_found());
    }
    Ok(rule)
}

/// Creates a rule after the caller's check (the API and the dashboard's form share it).
///
/// # Errors
/// `400` naming the field, `403`/`404` out of scope.
pub async fn add_rule(state: &AppState, caller: &Caller, new: NewRule) -> Result<SavedRule, ApiError> {
    let (site, kind, change) = new.split().map_err(rule_error)?;
    caller.require(Action::Write, Some(&site))?;
    let settings = check_rule(kind, None, &change).map_err(rule_error)?;
    let rule = state.store.create_alert_rule(&site, kind, &settings, &caller.username).await.map_err(|e| match e {
        crate::store::StoreError::Database(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
            invalid("site_id", format!("site {site:?} does not exist"))
        }
        other => store_error(other),
    })?;
    audit::record(
        &state.store,
        caller,
        Entry::new("create", "alert_rule", rule.id.to_string()).site(Some(&rule.site_id)).after(&rule),
    )
    .await;
    let webhook_secret = settings.generated_secret.then(|| settings.webhook_secret.clone()).flatten();
    Ok(SavedRule { rule, webhook_secret })
}

/// Changes a rule after the caller's check.
///
/// # Errors
/// As [`add_rule`].
pub async fn change_rule(
    state: &AppState,
    caller: &Caller,
    id: &str,
    change: &RuleChange,
) -> Result<SavedRule, ApiError> {
    let old = visible_rule(state, caller, id).await?;
    caller.require(Action::Write, Some(&old.site_id))?;
    let settings = check_rule(old.kind, Some(&old), change).map_err(rule_error)?;
    let rule = state.store.update_alert_rule(old.id, &settings).await.map_err(store_error)?;
    audit::record(
        &state.store,
        caller,
        Entry::new("update", "alert_rule", rule.id.to_string()).site(Some(&rule.site_id)).before(&old).after(&rule),
    )
    .await;
    let webhook_secret = settings.generated_secret.then(|| settings.webhook_secret.clone()).flatten();
    Ok(SavedRule { rule, webhook_secret })
}

/// Deletes a rule after the caller's check; its history stays.
///
/// # Errors
/// As [`add_rule`].
pub async fn remove_rule(state: &AppState, caller: &Caller, id: &str) -> Result<AlertRule, ApiError> {
    let old = visible_rule(state, caller, id).await?;
    caller.require(Action::Write, Some(&old.site_id))?;
    state.store.delete_alert_rule(old.id).await.map_err(store_error)?;
    audit::record(
        &state.store,
        caller,
        Entry::new("delete", "alert_rule", old.id.to_string()).site(Some(&old.site_id)).before(&old),
    )
    .await;
    Ok(old)
}

/// Creates an alert rule (root, or admin of its site).
#[utoipa::path(post, path = "/api/v1/alert-rules", tag = "fleet", request_body = NewRule,
    responses((status = 201, body = SavedRule), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn create_rule(
    State(state): State<AppState>,
    caller: Caller,
    Body(new): Body<NewRule>,
) -> Result<(StatusCode, Json<SavedRule>), ApiError> {
    Ok((StatusCode::CREATED, Json(add_rule(&state, &caller, new).await?)))
}

/// One alert rule.
#[utoipa::path(get, path = "/api/v1/alert-rules/{id}", tag = "fleet", params(("id" = i64, Path)),
    responses((status = 200, body = AlertRule), (status = 400), (status = 401), (status = 404)))]
pub async fn get_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AlertRule>, ApiError> {
    Ok(Json(visible_rule(&state, &caller, &id).await?))
}

/// Changes an alert rule: fields left out keep their value.
#[utoipa::path(put, path = "/api/v1/alert-rules/{id}", tag = "fleet", params(("id" = i64, Path)),
    request_body = RuleChange,
    responses((status = 200, body = SavedRule), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn update_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<RuleChange>,
) -> Result<Json<SavedRule>, ApiError> {
    Ok(Json(change_rule(&state, &caller, &id, &change).await?))
}

/// Deletes an alert rule and its open alerts (without notifying); the history stays.
#[utoipa::path(delete, path = "/api/v1/alert-rules/{id}", tag = "fleet", params(("id" = i64, Path)),
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove_rule(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Alerts whose condition holds now (raised, or waiting for the rule's time), on the caller's sites.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "fleet", params(SiteQuery),
    responses((status = 200, body = [OpenAlert]), (status = 401), (status = 404)))]
pub async fn open_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<SiteQuery>,
) -> Result<Json<Vec<OpenAlert>>, ApiError> {
    let site = scoped_site(&caller, q.site.as_deref())?;
    Ok(Json(state.store.open_alerts(caller.scope(), site).await.map_err(store_error)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    pub site: Option<String>,
    /// Only this rule's.
    pub rule: Option<i64>,
    /// The next page: events older than this id.
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Raised and cleared alerts of the caller's sites, newest first, with each notification's state.
#[utoipa::path(get, path = "/api/v1/alert-events", tag = "fleet", params(EventQuery),
    responses((status = 200, body = [AlertEvent]), (status = 400), (status = 401), (status = 404)))]
pub async fn alert_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<EventQuery>,
) -> Result<Json<Vec<AlertEvent>>, ApiError> {
    let site = scoped_site(&caller, q.site.as_deref())?;
    let limit = page_size(q.limit)?;
    Ok(Json(state.store.alert_events(caller.scope(), site, q.rule, q.before, limit).await.map_err(store_error)?))
}

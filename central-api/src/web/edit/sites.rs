//! Sites: `GET /sites` (the sites the caller sees, with every setting) and `GET/POST /sites/{id}/edit` (root or the
//! site's admin): name, time zone, sandwich rule and default week-off rule, stored by the API's own
//! [`change_site`] (same checks, same recomputation of the site's days from the date given, same audit).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::{error_summary, field, form_page, input, select, status_for};
use crate::access::{Action, Role};
use crate::http::api::sites::{change_site, visible_site, SiteChange};
use crate::http::api::updates::FieldError;
use crate::http::AppState;
use crate::store::listing::SiteInfo;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::{flash_redirect, page};
use crate::web::muster::url_segment;

const SANDWICH: [(&str, &str); 3] = [
    ("off", "Off"),
    ("week_offs", "Week-offs between two absences become absences"),
    ("week_offs_and_holidays", "Week-offs and holidays between two absences become absences"),
];

/// `GET /sites`.
pub async fn list(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Markup, WebError> {
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let body = html! {
        h1 { "Sites" }
        div.table-wrap { table data-testid="sites" {
            thead { tr {
                th scope="col" { "Site" } th scope="col" { "Name" } th scope="col" { "Time zone" }
                th scope="col" { "Sandwich rule" } th scope="col" { "Default week-off rule" } th scope="col" { "Edit" }
            } }
            tbody { @for s in &sites {
                tr data-site=(s.site_id) {
                    th scope="row" { (s.site_id) }
                    td { (s.name) } td { (s.time_zone) } td { (s.sandwich) }
                    td { (s.default_week_off_rule.as_deref().unwrap_or("none")) }
                    td { @if ctx.caller.role != Role::Viewer {
                        a href=(format!("/sites/{}/edit", url_segment(&s.site_id))) aria-label=(format!("Edit site {}", s.site_id)) { "Edit" }
                    } }
                }
            } }
        } }
    };
    Ok(page("Sites", &ctx, body))
}

/// The form as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SiteForm {
    name: String,
    time_zone: String,
    sandwich: String,
    default_week_off_rule: String,
    effective_from: String,
}

async fn render(
    state: &AppState,
    ctx: &WebContext,
    site: &SiteInfo,
    form: &SiteForm,
    error: Option<&FieldError>,
) -> Result<Response, WebError> {
    let mut rules = vec![(String::new(), "None (no weekly off)".to_owned())];
    rules.extend(
        state.store.week_off_rules().await?.into_iter().map(|r| (r.code.clone(), format!("{} ({})", r.name, r.code))),
    );
    let sandwich: Vec<(String, String)> = SANDWICH.iter().map(|(v, l)| ((*v).to_owned(), (*l).to_owned())).collect();
    let title = format!("Edit site {}", site.site_id);
    let body = html! {
        h1 { (title) }
        (error_summary(error))
        form.stack method="post" action=(format!("/sites/{}/edit", url_segment(&site.site_id))) data-testid="site-form" {
            (csrf_field(ctx))
            (field("name", "Name", input("name", "text", &form.name, true, error), error))
            (field("time_zone", "Time zone (IANA, e.g. Asia/Kolkata): decides the site's today", input("time_zone", "text", &form.time_zone, true, error), error))
            (field("sandwich", "Sandwich rule", select("sandwich", &sandwich, &form.sandwich, error), error))
            (field("default_week_off_rule", "Week-off rule of employees without their own", select("default_week_off_rule", &rules, &form.default_week_off_rule, error), error))
            (field("effective_from", "Applies from (the site's days from then are recomputed; empty: from yesterday)", input("effective_from", "date", &form.effective_from, false, error), error))
            button type="submit" { "Save" }
        }
    };
    Ok(form_page(status_for(error), &title, ctx, body))
}

/// `GET /sites/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let site = visible_site(&state, &ctx.caller, &id).await?;
    ctx.caller.require(Action::Write, Some(&id))?;
    let form = SiteForm {
        name: site.name.clone(),
        time_zone: site.time_zone.clone(),
        sandwich: site.sandwich.clone(),
        default_week_off_rule: site.default_week_off_rule.clone().unwrap_or_default(),
        effective_from: String::new(),
    };
    render(&state, &ctx, &site, &form, None).await
}

/// `POST /sites/{id}/edit`.
pub async fn update(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<SiteForm>,
) -> Result<Response, WebError> {
    let site = visible_site(&state, &ctx.caller, &id).await?;
    ctx.caller.require(Action::Write, Some(&id))?;
    let effective_from = match super::date("effective_from", &form.effective_from) {
        Ok(d) => d,
        Err(e) => return render(&state, &ctx, &site, &form, Some(&e)).await,
    };
    let change = SiteChange {
        name: Some(form.name.clone()),
        time_zone: Some(form.time_zone.trim().to_owned()),
        sandwich: Some(form.sandwich.clone()),
        default_week_off_rule: Some(Some(form.default_week_off_rule.clone()).filter(|r| !r.is_empty())),
        effective_from,
    };
    match change_site(&state, &ctx.caller, &id, &change).await {
        Ok(saved) => Ok(flash_redirect("/sites", &format!("Site {} saved.", saved.site_id))),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let (field, message) = e.message.split_once(": ").unwrap_or(("name", e.message.as_str()));
            let field = ["name", "time_zone", "sandwich", "default_week_off_rule", "effective_from"]
                .into_iter()
                .find(|f| *f == field)
                .unwrap_or("name");
            render(&state, &ctx, &site, &form, Some(&FieldError::new(field, message))).await
        }
        Err(e) => Err(e.into()),
    }
}

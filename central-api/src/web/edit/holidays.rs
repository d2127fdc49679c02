//! Holidays: `GET /holidays` (every site's and the caller's sites'), `POST /holidays` (add: root for every site, an
//! admin for its site), `POST /holidays/{id}/delete`. The store marks the holiday's date for the employees it
//! applies to.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{error_summary, field, form_page, input, select, status_for};
use crate::access::{Action, Caller, Role};
use crate::attendance::engine::{Holiday, HolidayKind};
use crate::http::api::updates::FieldError;
use crate::http::AppState;
use crate::store::attendance::masters::HolidayRecord;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::flash_redirect;

const KINDS: [HolidayKind; 3] = [HolidayKind::Public, HolidayKind::Company, HolidayKind::Optional];

/// The add form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct HolidayForm {
    #[serde(default)]
    date: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    /// Empty: every site.
    #[serde(default)]
    site_id: String,
}

fn may_change(caller: &Caller, h: &HolidayRecord) -> bool {
    caller.require(Action::Write, h.holiday.site.as_ref().map(|s| s.as_str())).is_ok()
}

async fn visible(state: &AppState, caller: &Caller) -> Result<Vec<HolidayRecord>, WebError> {
    let all = state.store.holidays().await?;
    Ok(all.into_iter().filter(|h| h.holiday.site.as_ref().is_none_or(|s| caller.sees(s.as_str()))).collect())
}

async fn render(
    state: &AppState,
    ctx: &WebContext,
    form: &HolidayForm,
    error: Option<&FieldError>,
) -> Result<Response, WebError> {
    let holidays = visible(state, &ctx.caller).await?;
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let mut site_options: Vec<(String, String)> = Vec::new();
    if ctx.caller.role == Role::Root {
        site_options.push((String::new(), "Every site".to_owned()));
    }
    site_options.extend(
        sites
            .iter()
            .filter(|s| ctx.caller.require(Action::Write, Some(&s.site_id)).is_ok())
            .map(|s| (s.site_id.clone(), format!("{} ({})", s.name, s.site_id))),
    );
    let kinds: Vec<(String, String)> = KINDS.iter().map(|k| (k.as_str().to_owned(), k.as_str().to_owned())).collect();
    let body = html! {
        h1 { "Holidays" }
        div.table-wrap {
            table data-testid="holidays" {
                thead { tr {
                    th scope="col" { "Date" } th scope="col" { "Name" } th scope="col" { "Kind" }
                    th scope="col" { "Site" } th scope="col" { "Remove" }
                } }
                tbody {
                    @for h in &holidays {
                        tr data-holiday=(h.id) {
                            td { (h.holiday.date) }
                            td { (h.holiday.name) }
                            td { (h.holiday.kind.as_str()) }
                            td { (h.holiday.site.as_ref().map_or("every site", |s| s.as_str())) }
                            td {
                                @if may_change(&ctx.caller, h) {
                                    form method="post" action=(format!("/holidays/{}/delete", h.id)) {
                                        (csrf_field(ctx))
                                        button type="submit" data-testid=(format!("delete-holiday-{}", h.id))
                                            aria-label=(format!("Remove the holiday {} on {}", h.holiday.name, h.holiday.date)) { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !site_options.is_empty() {
            h2 { "Add a holiday" }
            (error_summary(error))
            form.stack method="post" action="/holidays" data-testid="holiday-form" {
                (csrf_field(ctx))
                (field("date", "Date", input("date", "date", &form.date, true, error), error))
                (field("name", "Name", input("name", "text", &form.name, true, error), error))
                (field("kind", "Kind", select("kind", &kinds, &form.kind, error), error))
                (field("site_id", "Site", select("site_id", &site_options, &form.site_id, error), error))
                button type="submit" { "Add" }
            }
        }
    };
    Ok(form_page(status_for(error), "Holidays", ctx, body))
}

/// `GET /holidays`.
pub async fn list(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Response, WebError> {
    render(&state, &ctx, &HolidayForm { kind: "public".into(), ..HolidayForm::default() }, None).await
}

fn checked(form: &HolidayForm) -> Result<Holiday, FieldError> {
    let date = super::date("date", &form.date)?.ok_or_else(|| FieldError::new("date", "is required"))?;
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let kind = KINDS
        .into_iter()
        .find(|k| k.as_str() == form.kind)
        .ok_or_else(|| FieldError::new("kind", format!("{:?} is not public, company or optional", form.kind)))?;
    let site = match form.site_id.trim() {
        "" => None,
        s => Some(s.parse::<protocol::SiteId>().map_err(|e| FieldError::new("site_id", e))?),
    };
    Ok(Holiday { date, name: name.to_owned(), kind, site })
}

/// `POST /holidays`.
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<HolidayForm>,
) -> Result<Response, WebError> {
    let holiday = match checked(&form) {
        Ok(h) => h,
        Err(e) => return render(&state, &ctx, &form, Some(&e)).await,
    };
    let added = crate::http::api::people::add_holiday(&state, &ctx.caller, holiday).await?;
    Ok(flash_redirect("/holidays", &format!("Holiday {} on {} added.", added.name, added.date)))
}

/// `POST /holidays/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let removed = crate::http::api::people::remove_holiday(&state, &ctx.caller, id).await?;
    Ok(flash_redirect("/holidays", &format!("Holiday {} on {} removed.", removed.name, removed.date)))
}

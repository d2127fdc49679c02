//! `GET /reports?kind=&site=&department=&from=&to=`: the late coming, early going, overtime and absentees reports
//! beside the muster roll: a form, the table the files hold ([`exceptions::lines`]) and links to the CSV and XLSX
//! downloads of the same report from the API.

use axum::extract::{Query, State};
use chrono::Duration;
use maud::{html, Markup};
use serde::Deserialize;

use super::auth::WebCaller;
use super::dashboard::site_today;
use super::error::WebError;
use super::layout::page;
use crate::http::api::exceptions::{exception_report, ExceptionQuery};
use crate::http::AppState;
use crate::reports::exceptions::{self, ExceptionKind};

#[derive(Debug, Default, Deserialize)]
pub struct ReportForm {
    kind: Option<String>,
    site: Option<String>,
    department: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn blank(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.trim().is_empty())
}

/// `GET /reports`.
pub async fn reports_page(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Query(form): Query<ReportForm>,
) -> Result<Markup, WebError> {
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let kind = blank(&form.kind).and_then(|k| ExceptionKind::from_slug(&k)).unwrap_or(ExceptionKind::Late);
    let site = blank(&form.site).or_else(|| sites.first().map(|s| s.site_id.clone()));
    let today = site_today(sites.first().map_or("UTC", |s| s.time_zone.as_str()));
    let parse = |v: &Option<String>| blank(v).and_then(|d| d.parse::<chrono::NaiveDate>().ok());
    let to = parse(&form.to).unwrap_or(today - Duration::days(1));
    let from = parse(&form.from).unwrap_or(to);
    let query = ExceptionQuery {
        site: site.clone(),
        department: blank(&form.department),
        from: Some(from),
        to: Some(to),
        ..ExceptionQuery::default()
    };
    let report = match &site {
        Some(_) => Some(exception_report(&state, &ctx.caller, kind, &query).await?),
        None => None,
    };
    let link = |format: &str| {
        let pairs = [
            ("site", site.clone().unwrap_or_default()),
            ("department", blank(&form.department).unwrap_or_default()),
            ("from", from.to_string()),
            ("to", to.to_string()),
            ("format", format.to_owned()),
        ];
        format!("/api/v1/reports/{}?{}", kind.slug(), serde_urlencoded::to_string(pairs).unwrap_or_default())
    };
    let body = html! {
        h1 { "Reports" }
        form.filters method="get" action="/reports" data-testid="report-form" {
            div { label for="kind" { "Report" }
                select id="kind" name="kind" {
                    @for k in ExceptionKind::ALL { option value=(k.slug()) selected[k == kind] { (k.title()) } }
                }
            }
            div { label for="site" { "Site" }
                select id="site" name="site" {
                    @for s in &sites { option value=(s.site_id) selected[site.as_deref() == Some(s.site_id.as_str())] { (s.name) } }
                }
            }
            div { label for="department" { "Department" }
                input id="department" name="department" type="text" value=(blank(&form.department).unwrap_or_default());
            }
            div { label for="from" { "From" } input id="from" name="from" type="date" value=(from); }
            div { label for="to" { "To" } input id="to" name="to" type="date" value=(to); }
            button type="submit" { "Show" }
        }
        @if let Some(report) = &report {
            h2 { (report.title) }
            p.downloads {
                a href=(link("csv")) data-testid="report-csv" { "Download CSV" }
                a href=(link("xlsx")) data-testid="report-xlsx" { "Download XLSX" }
            }
            @let table = exceptions::lines(report);
            @if report.items.is_empty() {
                p.muted data-testid="report-empty" { "Nobody in this report for these days." }
            } @else {
                div.table-wrap { table data-testid="report" {
                    thead { tr { @for h in &table[0] { th scope="col" { (h) } } } }
                    tbody { @for line in &table[1..] { tr { @for cell in line { td { (cell) } } } } }
                } }
            }
        } @else {
            p { "You have no sites yet." }
        }
    };
    Ok(page("Reports", &ctx, body))
}

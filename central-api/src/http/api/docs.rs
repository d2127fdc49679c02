//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations and the types' `ToSchema`
//! derives (so it moves with the code), served at `/api/openapi.json`, and `/api/docs`: a self-contained HTML page
//! rendered on the server from that same document (no script, no CDN).

use axum::response::Html;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem};
use utoipa::{Modify, OpenApi};

use super::{attendance, audit, exceptions, jobs, people, reports, requests, session, shifts, sites, updates};

#[derive(OpenApi)]
#[openapi(
    info(title = "attendance central-api admin API", description = "Sites, devices, employees, attendance and reports. \
        Authenticate with `Authorization: Bearer adm_...` (POST /api/v1/tokens) or the session cookie from \
        POST /api/v1/login plus the `X-CSRF-Token` header on changes. Errors are `{\"code\", \"message\"}`."),
    paths(
        session::login, session::logout, session::me, session::list_tokens, session::issue_token, session::revoke_token,
        sites::list_sites, sites::create_site, sites::list_agents, sites::create_agent, sites::revoke_agent,
        sites::list_devices, sites::create_device, sites::get_site, sites::update_site,
        people::list_employees, people::get_employee, people::create_employee, people::update_employee,
        shifts::list_shifts, shifts::get_shift, shifts::create_shift, shifts::update_shift,
        people::list_week_off_rules, people::create_week_off_rule,
        people::list_holidays, people::create_holiday, people::delete_holiday,
        requests::list_manual_logs, requests::create_manual_log, requests::approve_manual_log,
        requests::reject_manual_log, requests::list_leaves, requests::create_leave, requests::approve_leave,
        requests::reject_leave,
        attendance::list_attendance, attendance::list_man_days, attendance::list_logs, attendance::unknown_pins,
        reports::muster, reports::daily, exceptions::late, exceptions::early_going, exceptions::overtime,
        exceptions::absentees,
        updates::update_week_off_rule, updates::update_device,
        jobs::create_job, jobs::list_jobs, jobs::get_job, jobs::cancel_job, audit::list_audit,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// Every error answer.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// Stable machine-readable code: `invalid`, `unauthorized`, `forbidden`, `not_found`, `csrf_required`, ...
    code: String,
    /// What was wrong; validation errors start with the field's name.
    message: String,
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components
            .add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("ac_session"))));
    }
}

/// The generated document.
pub fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::fleet::FleetDoc::openapi());
    doc
}

/// `GET /api/openapi.json`.
pub async fn openapi_json() -> Json<Document> {
    Json(document())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn operations(item: &PathItem) -> Vec<(&'static str, &utoipa::openapi::path::Operation)> {
    [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("DELETE", &item.delete), ("PATCH", &item.patch)]
        .into_iter()
        .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
        .collect()
}

/// `GET /api/docs`: every operation of the document with its parameters and answers.
pub async fn docs_page() -> Html<String> {
    let doc = document();
    let mut body = String::new();
    body.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    body.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    body.push_str("<title>API documentation</title><style>body{font-family:system-ui,sans-serif;max-width:60rem;");
    body.push_str("margin:auto;padding:1rem}code{background:#eee;padding:0 .2rem}.m{font-weight:bold;display:");
    body.push_str("inline-block;width:4rem}section{border-bottom:1px solid #ccc;padding:.5rem 0}</style></head><body>");
    body.push_str(&format!("<h1>{}</h1>", escape(&doc.info.title)));
    if let Some(d) = &doc.info.description {
        body.push_str(&format!("<p>{}</p>", escape(d)));
    }
    body.push_str("<p>Machine-readable: <a href=\"/api/openapi.json\">/api/openapi.json</a></p>");
    for (path, item) in &doc.paths.paths {
        for (method, op) in operations(item) {
            body.push_str("<section>");
            body.push_str(&format!("<h2><span class=\"m\">{method}</span> <code>{}</code></h2>", escape(path)));
            if let Some(s) = op.description.as_ref().or(op.summary.as_ref()) {
                body.push_str(&format!("<p>{}</p>", escape(s)));
            }
            if let Some(params) = &op.parameters {
                body.push_str("<ul>");
                for p in params {
                    let desc = p.description.as_deref().unwrap_or("");
                    body.push_str(&format!("<li><code>{}</code> {}</li>", escape(&p.name), escape(desc)));
                }
                body.push_str("</ul>");
            }
            let codes: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
            body.push_str(&format!("<p>Answers: {}</p>", escape(&codes.join(", "))));
            body.push_str("</section>");
        }
    }
    body.push_str("</body></html>");
    Html(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_admin_route() {
        let doc = document();
        for path in
            ["/api/v1/login", "/api/v1/attendance", "/api/v1/reports/muster", "/api/v1/manual-logs/{id}/approve"]
        {
            assert!(doc.paths.paths.contains_key(path), "{path} missing");
        }
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
        assert!(json["components"]["schemas"]["AttendanceRow"].is_object());
    }
}

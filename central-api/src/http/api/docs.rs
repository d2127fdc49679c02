//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations and the types' `ToSchema`
//! derives (so it moves with the code), served at `/api/openapi.json`, and `/api/docs`: a self-contained HTML page
//! rendered on the server from that same document (no script, no CDN).

use axum::response::Html;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem};
use utoipa::{Modify, OpenApi};

use super::{
    attendance, audit, backups, exceptions, fleet, fleet_users, jobs, people, reports, requests, session, shifts,
    sites, updates,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "attendance central-api admin API", description = "Sites, devices, employees, attendance and reports. \
        Authenticate with `Authorization: Bearer adm_...` (POST /api/v1/tokens) or the session cookie from \
        POST /api/v1/login plus the `X-CSRF-Token` header on changes; an administrator token may carry an expiry \
        (`expires_at`), after which it answers 401. Errors are `{\"code\", \"message\"}`. \
        Employee ids, device serials and agent ids are one id space shared by every site (an employee id is the PIN \
        enrolled on the terminals and keys punches everywhere; a serial is a physical terminal's; an agent id names \
        its MQTT topics and broker login), so creating one that is taken answers 409 `already_exists` even when \
        another site holds it. That answer is the same whichever site holds the id and names no site: it reveals \
        only that the id is in use."),
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
        fleet::get_device, fleet::delete_device, fleet::post_commands, fleet::list_commands, fleet::get_command,
        fleet_users::push_employee, fleet_users::push_site, fleet_users::remove_employee,
        fleet_users::remove_leavers, fleet_users::employee_devices, fleet_users::copy_templates,
        backups::list_backups, backups::create_backup, backups::download_backup, backups::upload_backup,
        backups::create_restore,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security, &CommonErrors),
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

/// The error answers any operation can give, added where an operation does not document them itself: 400 (a path,
/// query or body value is wrong, named in the message), 401, 403, 404 (absent, or not in the caller's sites), and for
/// operations with a body 413 (over the size limit) and 415 (not JSON). Each is the `{code, message}` body.
struct CommonErrors;

impl CommonErrors {
    const ANSWERS: [(&'static str, &'static str, bool); 6] = [
        ("400", "A path, query or body value is wrong; the message names it", false),
        ("401", "Not authenticated (no, expired or revoked credentials)", false),
        ("403", "Authenticated but not allowed (role, or CSRF token missing)", false),
        ("404", "Not found, or not in the caller's sites", false),
        ("413", "The body is over the size limit", true),
        ("415", "The body is not `application/json`", true),
    ];
}

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut Document) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for item in doc.paths.paths.values_mut() {
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                let has_body = op.request_body.is_some();
                for (code, description, body_only) in Self::ANSWERS {
                    if body_only && !has_body {
                        continue;
                    }
                    op.responses.responses.entry(code.to_owned()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description(description)
                            .content(
                                "application/json",
                                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                            )
                            .into()
                    });
                }
            }
        }
    }
}

/// The generated document.
pub fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::quarantine::QuarantineDoc::openapi());
    doc.merge(super::inventory::FleetDoc::openapi());
    // The merged documents' operations answer the same common errors.
    CommonErrors.modify(&mut doc);
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

/// The docs page's inline stylesheet; the page's Content-Security-Policy allows exactly this text by its hash
/// ([`crate::http::headers`]).
pub const DOCS_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem}\
    code{background:#eee;padding:0 .2rem}.m{font-weight:bold;display:inline-block;width:4rem}\
    section{border-bottom:1px solid #ccc;padding:.5rem 0}";

/// `GET /api/docs`: every operation of the document with its parameters and answers.
pub async fn docs_page() -> Html<String> {
    let doc = document();
    let mut body = String::new();
    body.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    body.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    body.push_str(&format!("<title>API documentation</title><style>{DOCS_STYLE}</style></head><body>"));
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

    #[test]
    fn every_operation_documents_the_common_errors_and_local_times_are_not_rfc3339() {
        let json = serde_json::to_value(document()).unwrap();
        let paths = json["paths"].as_object().unwrap();
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let answers = op["responses"].as_object().unwrap();
                for code in ["400", "401", "403", "404"] {
                    assert!(answers.contains_key(code), "{method} {path} lacks {code}");
                }
                let body = op.get("requestBody").is_some();
                assert_eq!(answers.contains_key("415"), body, "{method} {path}: 415 exactly when it takes a body");
            }
        }
        let in_time = &json["components"]["schemas"]["AttendanceRow"]["properties"]["in_time"];
        assert!(in_time.to_string().contains("LocalDateTime"), "{in_time}");
        assert_eq!(json["components"]["schemas"]["LocalDateTime"]["format"], "local-date-time");
    }
}

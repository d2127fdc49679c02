//! Employees: `GET /employees` (filter by site and department, search by id or name), `GET/POST /employees/new`,
//! `GET/POST /employees/{employee_id}/edit`. Checks are the API's ([`Employee::validate`], role and site scope on the
//! old and the new site); the store marks the employee's days for recomputation.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::{error_summary, field, form_page, input, select, status_for};
use crate::access::{Action, Caller, Role};
use crate::fleet::privilege::DevicePrivilege;
use crate::http::api::people::Employee;
use crate::http::api::updates::FieldError;
use crate::http::AppState;
use crate::web::auth::{csrf_field, CsrfForm, WebCaller, WebContext};
use crate::web::error::WebError;
use crate::web::layout::{flash_redirect, page};
use crate::web::muster::url_segment;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    site: Option<String>,
    department: Option<String>,
    q: Option<String>,
}

fn may_write(caller: &Caller, site: Option<&str>) -> bool {
    site.is_some_and(|s| caller.require(Action::Write, Some(s)).is_ok())
}

/// `GET /employees`.
pub async fn list(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Query(q): Query<ListQuery>,
) -> Result<Markup, WebError> {
    let site = q.site.clone().filter(|s| !s.is_empty());
    if let Some(site) = &site {
        ctx.caller.require(Action::Read, Some(site))?;
    }
    let department = q.department.clone().unwrap_or_default();
    let search = q.q.clone().unwrap_or_default().to_lowercase();
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let all = state.store.employee_profiles(None, site.as_deref()).await?;
    let visible: Vec<_> =
        all.into_iter().filter(|p| p.site_id.as_deref().is_some_and(|s| ctx.caller.sees(s))).collect();
    let mut departments: Vec<String> = visible.iter().map(|p| p.department.clone()).filter(|d| !d.is_empty()).collect();
    departments.sort();
    departments.dedup();
    let shown: Vec<_> = visible
        .iter()
        .filter(|p| department.is_empty() || p.department == department)
        .filter(|p| {
            search.is_empty()
                || p.employee_id.to_lowercase().contains(&search)
                || p.name.to_lowercase().contains(&search)
        })
        .collect();
    let site_options: Vec<(String, String)> = std::iter::once((String::new(), "All sites".to_owned()))
        .chain(sites.iter().map(|s| (s.site_id.clone(), s.name.clone())))
        .collect();
    let department_options: Vec<(String, String)> = std::iter::once((String::new(), "All departments".to_owned()))
        .chain(departments.iter().map(|d| (d.clone(), d.clone())))
        .collect();
    let body = html! {
        h1 { "Employees" }
        @if ctx.caller.role != Role::Viewer {
            p { a href="/employees/new" data-testid="new-employee" { "Add an employee" } }
        }
        form.filters method="get" action="/employees" {
            div { label for="site" { "Site" } (select("site", &site_options, site.as_deref().unwrap_or(""), None)) }
            div { label for="department" { "Department" } (select("department", &department_options, &department, None)) }
            div { label for="q" { "Search" } input #q type="search" name="q" value=(q.q.as_deref().unwrap_or("")) placeholder="id or name"; }
            button type="submit" { "Filter" }
        }
        p.muted { (shown.len()) " of " (visible.len()) " employees" }
        div.table-wrap {
            table data-testid="employees" {
                thead { tr {
                    th scope="col" { "Id" } th scope="col" { "Name" } th scope="col" { "Department" }
                    th scope="col" { "Site" } th scope="col" { "Shift" } th scope="col" { "Week-off" }
                    th scope="col" { "Active" } th scope="col" { "Edit" }
                } }
                tbody {
                    @for p in &shown {
                        tr data-employee=(p.employee_id) {
                            th scope="row" { (p.employee_id) }
                            td { (p.name) }
                            td { (p.department) }
                            td { (p.site_id.as_deref().unwrap_or("")) }
                            td { (p.shift_code.as_deref().unwrap_or("none")) }
                            td { (p.week_off_rule.as_deref().unwrap_or("none")) }
                            td { @if p.active { "yes" } @else { "no" } }
                            td {
                                @if may_write(&ctx.caller, p.site_id.as_deref()) {
                                    a href=(format!("/employees/{}/edit", url_segment(&p.employee_id)))
                                        aria-label=(format!("Edit {}", p.name)) { "Edit" }
                                    " · "
                                }
                                a href=(format!("/employees/{}/devices", url_segment(&p.employee_id)))
                                    aria-label=(format!("Devices of {}", p.name)) { "Devices" }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Employees", &ctx, body))
}

/// The form as typed.
#[derive(Debug, Default, Deserialize)]
pub struct EmployeeForm {
    #[serde(default)]
    employee_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    designation: String,
    #[serde(default)]
    site_id: String,
    #[serde(default)]
    shift_code: String,
    #[serde(default)]
    week_off_rule: String,
    #[serde(default)]
    date_of_joining: String,
    #[serde(default)]
    date_of_leaving: String,
    /// A checkbox: present (`on`) when ticked.
    active: Option<String>,
    /// Empty: central knows no card (a push keeps the terminal's).
    #[serde(default)]
    card_number: String,
    /// Empty: central knows no privilege (a push keeps the terminal's).
    #[serde(default)]
    device_privilege: String,
}

impl EmployeeForm {
    fn of(e: &Employee) -> Self {
        Self {
            employee_id: e.employee_id.clone(),
            name: e.name.clone(),
            department: e.department.clone(),
            designation: e.designation.clone(),
            site_id: e.site_id.clone(),
            shift_code: e.shift_code.clone().unwrap_or_default(),
            week_off_rule: e.week_off_rule.clone().unwrap_or_default(),
            date_of_joining: e.date_of_joining.map(|d| d.to_string()).unwrap_or_default(),
            date_of_leaving: e.date_of_leaving.map(|d| d.to_string()).unwrap_or_default(),
            active: e.active.then(|| "on".to_owned()),
            card_number: e.card_number.clone().unwrap_or_default(),
            device_privilege: e.device_privilege.clone().unwrap_or_default(),
        }
    }
}

fn none_or(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// The privilege choices: none (keep the terminal's) and the four levels.
fn privilege_options() -> Vec<(String, String)> {
    std::iter::once((String::new(), "Keep the terminal's".to_owned()))
        .chain(DevicePrivilege::ALL.iter().map(|p| (p.as_str().to_owned(), format!("{} ({})", p.as_str(), p.code()))))
        .collect()
}

/// The employee the form describes, checked as the API checks it.
async fn checked(state: &AppState, form: &EmployeeForm) -> Result<Result<Employee, FieldError>, WebError> {
    let shifts: Vec<String> = state.store.shifts().await?.into_iter().map(|s| s.shift.code).collect();
    let rules: Vec<String> = state.store.week_off_rules().await?.into_iter().map(|r| r.code).collect();
    Ok(employee_of(form, &shifts, &rules))
}

/// The employee `form` describes, given the shift and week-off rule codes that exist.
fn employee_of(form: &EmployeeForm, shifts: &[String], rules: &[String]) -> Result<Employee, FieldError> {
    let employee = Employee {
        employee_id: form.employee_id.trim().to_owned(),
        name: form.name.trim().to_owned(),
        department: form.department.trim().to_owned(),
        designation: form.designation.trim().to_owned(),
        site_id: form.site_id.trim().to_owned(),
        shift_code: none_or(&form.shift_code),
        week_off_rule: none_or(&form.week_off_rule),
        date_of_joining: super::date("date_of_joining", &form.date_of_joining)?,
        date_of_leaving: super::date("date_of_leaving", &form.date_of_leaving)?,
        active: form.active.is_some(),
        card_number: none_or(&form.card_number),
        device_privilege: none_or(&form.device_privilege),
    };
    employee.validate()?;
    if employee.site_id.is_empty() {
        return Err(FieldError::new("site_id", "choose a site"));
    }
    if let Some(code) = employee.shift_code.as_deref().filter(|c| !shifts.iter().any(|s| s == c)) {
        return Err(FieldError::new("shift_code", format!("shift {code:?} does not exist")));
    }
    if let Some(code) = employee.week_off_rule.as_deref().filter(|c| !rules.iter().any(|r| r == c)) {
        return Err(FieldError::new("week_off_rule", format!("week-off rule {code:?} does not exist")));
    }
    Ok(employee)
}

async fn render_form(
    state: &AppState,
    ctx: &WebContext,
    form: &EmployeeForm,
    existing: bool,
    error: Option<&FieldError>,
) -> Result<Response, WebError> {
    let sites = state.store.list_sites(ctx.caller.scope()).await?;
    let site_options: Vec<(String, String)> = sites
        .iter()
        .filter(|s| ctx.caller.require(Action::Write, Some(&s.site_id)).is_ok())
        .map(|s| (s.site_id.clone(), format!("{} ({})", s.name, s.site_id)))
        .collect();
    let shift_options: Vec<(String, String)> = std::iter::once((String::new(), "No shift".to_owned()))
        .chain(
            state
                .store
                .shifts()
                .await?
                .into_iter()
                .map(|s| (s.shift.code.clone(), format!("{} ({})", s.name, s.shift.code))),
        )
        .collect();
    let rule_options: Vec<(String, String)> = std::iter::once((String::new(), "No week-off".to_owned()))
        .chain(
            state
                .store
                .week_off_rules()
                .await?
                .into_iter()
                .map(|r| (r.code.clone(), format!("{} ({})", r.name, r.code))),
        )
        .collect();
    let (title, action) = if existing {
        (format!("Edit employee {}", form.employee_id), format!("/employees/{}/edit", url_segment(&form.employee_id)))
    } else {
        ("Add an employee".to_owned(), "/employees/new".to_owned())
    };
    let body = html! {
        h1 { (title) }
        @if existing {
            p { a href=(format!("/employees/{}/devices", url_segment(&form.employee_id))) data-testid="employee-devices" {
                "On devices: held by, push, remove, copy fingerprints" } }
        }
        (error_summary(error))
        form.stack method="post" action=(action) data-testid="employee-form" {
            (csrf_field(ctx))
            @if existing {
                input type="hidden" name="employee_id" value=(form.employee_id);
            } @else {
                (field("employee_id", "Id (the PIN enrolled on the devices)", input("employee_id", "text", &form.employee_id, true, error), error))
            }
            (field("name", "Name", input("name", "text", &form.name, true, error), error))
            (field("department", "Department", input("department", "text", &form.department, false, error), error))
            (field("designation", "Designation", input("designation", "text", &form.designation, false, error), error))
            (field("site_id", "Site", select("site_id", &site_options, &form.site_id, error), error))
            (field("shift_code", "Shift", select("shift_code", &shift_options, &form.shift_code, error), error))
            (field("week_off_rule", "Week-off rule", select("week_off_rule", &rule_options, &form.week_off_rule, error), error))
            (field("date_of_joining", "Date of joining", input("date_of_joining", "date", &form.date_of_joining, false, error), error))
            (field("date_of_leaving", "Date of leaving", input("date_of_leaving", "date", &form.date_of_leaving, false, error), error))
            (field("card_number", "Card number on the terminals (empty: keep the terminal's)", input("card_number", "text", &form.card_number, false, error), error))
            (field("device_privilege", "Privilege on the terminals", select("device_privilege", &privilege_options(), &form.device_privilege, error), error))
            div.field {
                label for="active" {
                    input #active type="checkbox" name="active" checked[form.active.is_some()];
                    " Active"
                }
            }
            button type="submit" { "Save" }
        }
    };
    Ok(form_page(status_for(error), &title, ctx, body))
}

/// `GET /employees/new`.
pub async fn new_form(State(state): State<AppState>, WebCaller(ctx): WebCaller) -> Result<Response, WebError> {
    if ctx.caller.role == Role::Viewer {
        return Err(WebError::page(StatusCode::FORBIDDEN, "a viewer may not add employees"));
    }
    let form = EmployeeForm { active: Some("on".to_owned()), ..EmployeeForm::default() };
    render_form(&state, &ctx, &form, false, None).await
}

/// `POST /employees/new`.
pub async fn create(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    CsrfForm(form): CsrfForm<EmployeeForm>,
) -> Result<Response, WebError> {
    let employee = match checked(&state, &form).await? {
        Ok(e) => e,
        Err(e) => return render_form(&state, &ctx, &form, false, Some(&e)).await,
    };
    let id = employee.employee_id.clone();
    match crate::http::api::people::add_employee(&state, &ctx.caller, employee).await {
        Ok(added) => {
            Ok(flash_redirect("/employees", &format!("Employee {} ({}) added.", added.employee_id, added.name)))
        }
        Err(e) if e.status == StatusCode::CONFLICT => {
            let e = FieldError::new("employee_id", format!("{id:?} is taken"));
            render_form(&state, &ctx, &form, false, Some(&e)).await
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let e = field_refusal(&e.message);
            render_form(&state, &ctx, &form, false, Some(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Employee, WebError> {
    let profile = state.store.employee_profile(id).await?;
    let profile = profile.filter(|p| p.site_id.as_deref().is_some_and(|s| caller.sees(s)));
    profile.map(Employee::from_profile).ok_or_else(|| WebError::not_found(format!("employee {id:?} does not exist")))
}

/// `GET /employees/{employee_id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let employee = visible(&state, &ctx.caller, &id).await?;
    ctx.caller.require(Action::Write, Some(&employee.site_id))?;
    render_form(&state, &ctx, &EmployeeForm::of(&employee), true, None).await
}

/// `POST /employees/{employee_id}/edit`.
pub async fn update(
    State(state): State<AppState>,
    WebCaller(ctx): WebCaller,
    Path(id): Path<String>,
    CsrfForm(mut form): CsrfForm<EmployeeForm>,
) -> Result<Response, WebError> {
    let old = visible(&state, &ctx.caller, &id).await?;
    ctx.caller.require(Action::Write, Some(&old.site_id))?;
    form.employee_id = id;
    let employee = match checked(&state, &form).await? {
        Ok(e) => e,
        Err(e) => return render_form(&state, &ctx, &form, true, Some(&e)).await,
    };
    let id = employee.employee_id.clone();
    match crate::http::api::people::change_employee(&state, &ctx.caller, &id, employee).await {
        Ok(saved) => {
            Ok(flash_redirect("/employees", &format!("Employee {} ({}) saved.", saved.employee_id, saved.name)))
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let e = field_refusal(&e.message);
            render_form(&state, &ctx, &form, true, Some(&e)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A `400` of the API's functions ("field: message") as the form's error.
fn field_refusal(message: &str) -> FieldError {
    const FIELDS: [&str; 9] = [
        "employee_id",
        "name",
        "department",
        "designation",
        "site_id",
        "shift_code",
        "week_off_rule",
        "date_of_joining",
        "date_of_leaving",
    ];
    let (field, rest) = message.split_once(": ").unwrap_or(("employee_id", message));
    match FIELDS.iter().find(|f| **f == field) {
        Some(field) => FieldError::new(field, rest),
        None => FieldError::new("employee_id", message),
    }
}

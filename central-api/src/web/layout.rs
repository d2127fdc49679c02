//! The page shell every dashboard page shares: `<head>` (viewport, stylesheet, script), the navigation (a checkbox
//! toggles it on narrow screens, no script needed), the flash message left by the previous request, and `<main>`.
//!
//! A flash message travels in the [`FLASH_COOKIE`] cookie (hex of its UTF-8 text) from a Post/Redirect/Get answer
//! ([`flash_redirect`]) to the next page, which shows it; the web router clears the cookie after any page that
//! received it.

use axum::http::{header, HeaderValue};
use axum::response::Response;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::auth::{csrf_field, WebContext};
use super::error::see_other;

/// The flash message cookie.
pub const FLASH_COOKIE: &str = "ac_flash";
/// Longest flash message kept (in bytes; longer ones are cut at a character boundary).
const MAX_FLASH: usize = 500;

/// The navigation: (href, label).
pub const NAV: &[(&str, &str)] = &[
    ("/dashboard", "Dashboard"),
    ("/muster", "Muster roll"),
    ("/reports", "Reports"),
    ("/live", "Live"),
    ("/devices", "Devices"),
    ("/inventory", "Inventory"),
    ("/alerts", "Alerts"),
    ("/manual-logs", "Manual punches"),
    ("/employees", "Employees"),
    ("/shifts", "Shifts"),
    ("/holidays", "Holidays"),
    ("/sites", "Sites"),
    ("/jobs", "Jobs"),
    ("/audit", "Audit"),
    ("/backups", "Backups"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Attendance" }
            link rel="stylesheet" href="/static/app.css";
            script src="/static/app.js" defer {}
        }
    }
}

/// The nav entry a path belongs to: an employee's day is part of the muster roll, the rest by their first segment.
fn section(path: &str) -> &str {
    if path.starts_with("/employees/") && path.contains("/day/") {
        return "/muster";
    }
    NAV.iter().map(|(href, _)| *href).find(|href| path == *href || path.starts_with(&format!("{href}/"))).unwrap_or("")
}

/// A page of the dashboard for a logged-in administrator.
pub fn page(title: &str, ctx: &WebContext, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.topbar {
                    a.brand href="/dashboard" { "Attendance" }
                    input #nav-toggle .nav-toggle type="checkbox";
                    label.nav-toggle-label for="nav-toggle" aria-label="Show or hide the menu" { (PreEscaped("&#9776;")) " Menu" }
                    nav aria-label="Main" {
                        ul {
                            @for (href, label) in NAV {
                                li {
                                    @if section(&ctx.path) == *href {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                            li {
                                form.logout method="post" action="/logout" {
                                    (csrf_field(ctx))
                                    button type="submit" { "Logout" }
                                }
                            }
                        }
                    }
                    span.who { a href="/tokens" title="Your API tokens" { (ctx.caller.username) } " (" (ctx.caller.role.as_str()) ")" }
                }
                @if let Some(message) = &ctx.flash {
                    div.flash role="status" data-testid="flash" { (message) }
                }
                main { (body) }
            }
        }
    }
}

/// A page without navigation (login, errors).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.topbar { a.brand href="/dashboard" { "Attendance" } }
                main.narrow { (body) }
            }
        }
    }
}

/// A `303 See Other` to `to` that leaves `message` for the next page.
pub fn flash_redirect(to: &str, message: &str) -> Response {
    let mut response = see_other(to);
    let mut end = message.len().min(MAX_FLASH);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let cookie = format!(
        "{FLASH_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age=120",
        hex::encode(&message.as_bytes()[..end])
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The flash cookie's text, when it decodes.
pub fn decode_flash(value: &str) -> Option<String> {
    let bytes = hex::decode(value).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    (!text.is_empty()).then_some(text)
}

/// The `Set-Cookie` value that removes the flash cookie.
pub const CLEAR_FLASH_COOKIE: &str = "ac_flash=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_round_trips_and_is_bounded() {
        let response = flash_redirect("/x", "Saved <b>é</b>");
        let cookie = response.headers().get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let value = cookie.trim_start_matches("ac_flash=").split(';').next().unwrap_or_default();
        assert_eq!(decode_flash(value).as_deref(), Some("Saved <b>é</b>"));
        let long = "é".repeat(400);
        let response = flash_redirect("/x", &long);
        let cookie = response.headers().get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let value = cookie.trim_start_matches("ac_flash=").split(';').next().unwrap_or_default();
        assert_eq!(decode_flash(value).map(|m| m.len()), Some(MAX_FLASH));
        assert_eq!(decode_flash("zz"), None);
    }

    #[test]
    fn the_nav_marks_the_section_a_page_belongs_to() {
        assert_eq!(section("/employees/1001/day/2026-11-03"), "/muster");
        assert_eq!(section("/employees/1001/edit"), "/employees");
        assert_eq!(section("/muster"), "/muster");
        assert_eq!(section("/shifts/new"), "/shifts");
        assert_eq!(section("/shiftsx"), "");
    }
}

//! Who may do what. An administrator has one [`Role`] and, unless root, a set of granted sites; a request's
//! [`Caller`] is built once by the extractor in [`extract`] (bearer token or session cookie + CSRF header), and
//! [`Caller::require`] is the one place that decides whether an action on a site is allowed.
//!
//! - root: every action on every site, and the global settings (shifts, week-off rules, global holidays, sites).
//! - admin: reads and changes on its sites.
//! - viewer: reads on its sites.
//!
//! A refusal for a site outside the caller's scope is `404 not_found` for reads (a viewer of A learns nothing of B,
//! not even that it exists) and `403 forbidden` for changes.

pub mod extract;
pub mod hashing;
pub mod ratelimit;
pub mod secrets;

use axum::http::StatusCode;

use crate::http::error::ApiError;

/// An administrator's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Root,
    Admin,
    Viewer,
}

impl Role {
    /// Parses a stored or typed role name.
    ///
    /// # Errors
    /// A message naming the accepted roles.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "root" => Ok(Self::Root),
            "admin" => Ok(Self::Admin),
            "viewer" => Ok(Self::Viewer),
            other => Err(format!("role {other:?} is not root, admin or viewer")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Admin => "admin",
            Self::Viewer => "viewer",
        }
    }
}

/// What a handler is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
}

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Token(String),
    /// The SHA-256 of the session secret.
    Session(Vec<u8>),
}

/// The authenticated administrator behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub username: String,
    pub role: Role,
    /// Granted sites (empty and unused for root).
    pub sites: Vec<String>,
    pub via: Via,
    /// The client's address (the TCP peer), recorded in the audit log.
    pub address: Option<std::net::IpAddr>,
}

impl Caller {
    /// The scope store reads take: `None` for root (every site), the username otherwise.
    pub fn scope(&self) -> Option<&str> {
        (self.role != Role::Root).then_some(self.username.as_str())
    }

    /// Whether the caller may see `site`.
    pub fn sees(&self, site: &str) -> bool {
        self.role == Role::Root || self.sites.iter().any(|s| s == site)
    }

    /// Allows `action` on `site` (`None`: a global setting) or refuses it with the answer to send.
    ///
    /// # Errors
    /// `404 not_found` for a read or change of a site the caller does not see, `403 forbidden` for a change the role
    /// does not allow.
    pub fn require(&self, action: Action, site: Option<&str>) -> Result<(), ApiError> {
        let allowed = match (self.role, action, site) {
            (Role::Root, _, _) => true,
            (_, Action::Read, None) => true,
            (_, Action::Write, None) => false,
            (_, _, Some(site)) if !self.sees(site) => {
                return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("site {site:?} does not exist")))
            }
            (Role::Admin, _, Some(_)) => true,
            (Role::Viewer, Action::Read, Some(_)) => true,
            (Role::Viewer, Action::Write, Some(_)) => false,
        };
        if allowed {
            Ok(())
        } else {
            let what = site.map_or_else(|| "global settings".to_owned(), |s| format!("site {s:?}"));
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("{} {} may not change {what}", self.role.as_str(), self.username),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, sites: &[&str]) -> Caller {
        Caller {
            username: "u".into(),
            role,
            sites: sites.iter().map(|s| (*s).to_owned()).collect(),
            via: Via::Token("t".into()),
            address: None,
        }
    }

    #[test]
    fn roles_and_scopes() {
        let root = caller(Role::Root, &[]);
        let admin = caller(Role::Admin, &["A"]);
        let viewer = caller(Role::Viewer, &["A"]);
        assert!(root.require(Action::Write, Some("B")).is_ok());
        assert!(root.require(Action::Write, None).is_ok());
        assert!(admin.require(Action::Write, Some("A")).is_ok());
        assert_eq!(admin.require(Action::Write, Some("B")).unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(admin.require(Action::Write, None).unwrap_err().status, StatusCode::FORBIDDEN);
        assert!(viewer.require(Action::Read, Some("A")).is_ok());
        assert!(viewer.require(Action::Read, None).is_ok());
        assert_eq!(viewer.require(Action::Write, Some("A")).unwrap_err().status, StatusCode::FORBIDDEN);
        assert_eq!(viewer.require(Action::Read, Some("B")).unwrap_err().status, StatusCode::NOT_FOUND);
        assert_eq!(root.scope(), None);
        assert_eq!(viewer.scope(), Some("u"));
    }
}

//! A browser-like client of the dashboard for tests: the session cookie, forms posted with the CSRF field, redirects
//! not followed (so a test sees each 303 and its flash).

use reqwest::{header, StatusCode};

use crate::admin::{AdminFixture, Auth, PASSWORD};

/// A logged-in browser-like client.
pub struct Web<'a> {
    f: &'a AdminFixture,
    http: reqwest::Client,
    cookie: String,
    csrf: String,
}

/// A page's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl<'a> Web<'a> {
    /// Logs `username` in.
    ///
    /// # Panics
    /// When the login is refused.
    pub async fn login(f: &'a AdminFixture, username: &str) -> Self {
        let (auth, _) = f.login(username, PASSWORD).await.expect("login");
        let Auth::Session { cookie, csrf: Some(csrf) } = auth else { panic!("a session") };
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { f, http, cookie: format!("ac_session={cookie}"), csrf }
    }

    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Answer { status, location, body: response.text().await.unwrap_or_default() }
    }

    /// `GET path`.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn get(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.f.central.url);
        Self::answer(self.http.get(url).header(header::COOKIE, &self.cookie).send().await.expect("GET")).await
    }

    /// Posts `fields` with the session's CSRF token.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![("_csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        let url = format!("{}{path}", self.f.central.url);
        Self::answer(self.http.post(url).header(header::COOKIE, &self.cookie).form(&all).send().await.expect("POST"))
            .await
    }
}

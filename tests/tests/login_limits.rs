//! Issue 12, finding 2: the login limiter raced and parallel logins exhausting memory. Reproduced against a served
//! central-api on both backends: 150 simultaneous wrong passwords for one username (all got 401 before), the same
//! username from 150 addresses, one password sprayed over 150 usernames from one address, and 200 usernames from 200
//! addresses. After the fix at most 5 guesses per username and per address are checked (401), the rest are refused
//! with 429 or 503 and `Retry-After`, and central's peak memory stays bounded (the bench `login-storm` prints the
//! figures).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use system_tests::admin::{AdminFixture, PASSWORD};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(simultaneous_wrong_logins_are_limited);

fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8))
}

/// Statuses of `n` simultaneous wrong logins; attempt `i` is for `user(i)` from `from(i)`.
async fn storm(
    f: &AdminFixture,
    n: usize,
    user: impl Fn(usize) -> String,
    from: impl Fn(usize) -> IpAddr,
) -> Vec<StatusCode> {
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let url = format!("{}/api/v1/login", f.central.url);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let http = reqwest::Client::builder().local_address(from(i)).build().expect("client");
            let (start, url, body) = (start.clone(), url.clone(), json!({"username": user(i), "password": "wrong!"}));
            tokio::spawn(async move {
                start.wait().await;
                let response = http.post(url).json(&body).send().await.expect("login");
                let status = response.status();
                if status != StatusCode::UNAUTHORIZED {
                    assert!(response.headers().contains_key("retry-after"), "{status} without Retry-After");
                }
                status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    assert!(
        statuses.iter().all(|s| [
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE
        ]
        .contains(s)),
        "{statuses:?}"
    );
    statuses
}

fn checked(statuses: &[StatusCode]) -> usize {
    statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count()
}

fn peak_rss_mib(f: &AdminFixture) -> u64 {
    let pid = f.central.process.pid().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .expect("VmHWM")
        / 1024
}

async fn simultaneous_wrong_logins_are_limited(backend: Backend) {
    let f = AdminFixture::new(backend).await.expect("fixture");
    // One username, one address: 5 guesses checked at most (all 150 were before).
    let one = storm(&f, 150, |_| "adminA".into(), |_| address(0)).await;
    assert!(checked(&one) <= 5, "{} of 150 checked", checked(&one));
    // The same username from 150 addresses: still 5 (its budget is spent: none now).
    let many = storm(&f, 150, |_| "adminA".into(), |i| address(1 + i)).await;
    assert_eq!(checked(&many), 0, "the username's budget is spent");
    // Another username from 150 addresses: 5.
    let many = storm(&f, 150, |_| "adminB".into(), |i| address(200 + i)).await;
    assert!(checked(&many) <= 5 && checked(&many) > 0, "{} of 150 checked", checked(&many));
    // One password over 150 usernames (real and not) from one address: 5.
    let spray = storm(&f, 150, |i| if i == 0 { "viewerA".into() } else { format!("guess{i}") }, |_| address(400)).await;
    assert!(checked(&spray) <= 5 && checked(&spray) > 0, "{} of 150 checked", checked(&spray));
    // The right password from a fresh address, for a username nobody guessed, still works.
    let fresh = reqwest::Client::builder().local_address(address(900)).build().expect("client");
    let response = fresh
        .post(format!("{}/api/v1/login", f.central.url))
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    // 200 usernames from 200 addresses: the global ceiling and the bounded hashing hold.
    let wide = storm(&f, 200, |i| format!("wide{i}"), |i| address(600 + i)).await;
    assert!(checked(&wide) <= central_api::access::ratelimit::MAX_FAILURES_GLOBAL, "{}", checked(&wide));
    let peak = peak_rss_mib(&f);
    assert!(peak < 300, "central's peak RSS {peak} MiB");
    f.cleanup().await;
}

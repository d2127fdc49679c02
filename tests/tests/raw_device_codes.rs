//! The device's own state and verify codes (issue 13) from an agent's batch to AllLogs, the logs API and its CSV
//! export, beside the normalised codes: a push terminal's verify 4 is card (2) and stays 4 in `raw_verify`. Scoped
//! like every admin read: another site's admin and a viewer of the site.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use system_tests::admin::{AdminFixture, Auth};
use system_tests::central::{batch, day_at, punches, Backend};
use system_tests::on_both_backends;

on_both_backends!(raw_codes_reach_the_logs_api_and_its_csv);

async fn csv(f: &AdminFixture, path: &str, auth: &Auth) -> (StatusCode, String) {
    let response = f.send(Method::GET, path, auth, None).await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn raw_codes_reach_the_logs_api_and_its_csv(backend: Backend) {
    let f = AdminFixture::new(backend).await.unwrap();
    let token = f.db.create_agent("gate-A", "A").await.unwrap();
    let mut sent = punches("A", "PUSH-1", &["101"], day_at(7), 2);
    // Verify 4 (card on push firmware) and an unknown state 9 with an unknown verify 200.
    sent[0] = sent[0].clone().with_raw_codes(Some(0), Some(4));
    sent[0].verify = protocol::VerifyMode::from_code(4);
    sent[1] = sent[1].clone().with_raw_codes(Some(9), Some(200));
    sent[1].state = protocol::PunchState::from_code(9);
    sent[1].verify = protocol::VerifyMode::from_code(200);
    let response =
        f.central.post_batch(&f.http, &token, &batch("gate-A", "A", 1, sent), protocol::Encoding::Json).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap_or_default());

    let admin = f.token("adminA").await.unwrap();
    let (status, page) = f.call(Method::GET, "/api/v1/logs?site=A&limit=1000", &admin, None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    let pushed: Vec<&Value> = items.iter().filter(|i| i["device_serial"] == "PUSH-1").collect();
    assert_eq!(pushed.len(), 2);
    let codes = |i: &Value| (i["state"].clone(), i["raw_state"].clone(), i["verify"].clone(), i["raw_verify"].clone());
    assert_eq!(
        codes(pushed[0]),
        (0.into(), 0.into(), i64::from(protocol::VerifyMode::from_code(4).code()).into(), 4.into())
    );
    assert_eq!(codes(pushed[1]), (9.into(), 9.into(), 200.into(), 200.into()));
    let older = items.iter().find(|i| i["device_serial"] != "PUSH-1").unwrap();
    assert!(older["raw_state"].is_null() && older["raw_verify"].is_null(), "stored without raw codes: {older}");

    // CSV: the raw codes beside the normalised ones, a viewer of A sees A only.
    let viewer = f.token("viewerA").await.unwrap();
    let (status, text) = csv(&f, "/api/v1/logs?format=csv&limit=1000", &viewer).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "id,site_id,device_serial,pin,local_time,utc_time,state,raw_state,verify,raw_verify,work_code,source,direction,\
         agent_id"
    );
    let card = lines.iter().find(|l| l.contains(",PUSH-1,101,2026-03-02 07:00:00,")).expect("the card punch");
    let verify = protocol::VerifyMode::from_code(4).code();
    assert!(card.contains(&format!(",0,0,{verify},4,0,zk-pull,")), "{card}");
    assert!(lines[1..].iter().all(|l| l.split(',').nth(1) == Some("A")), "{text}");
    assert_eq!(lines.len(), 1 + 6 + 2, "A's six fixture punches and the two sent");

    // Another site's admin and the viewer asking for B.
    let admin_b = f.token("adminB").await.unwrap();
    let (_, text) = csv(&f, "/api/v1/logs?format=csv&limit=1000", &admin_b).await;
    assert!(!text.contains("PUSH-1") && text.lines().skip(1).all(|l| l.split(',').nth(1) == Some("B")), "{text}");
    let (status, _) = csv(&f, "/api/v1/logs?format=csv&site=A", &admin_b).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = csv(&f, "/api/v1/logs?format=csv&site=B", &viewer).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = f.call(Method::GET, "/api/v1/logs?format=xml", &viewer, None).await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("format"), "{body}");
    let (status, _) = csv(&f, "/api/v1/logs?format=csv", &Auth::None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    f.cleanup().await;
}

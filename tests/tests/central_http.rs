//! Central ingest over HTTP against a real central-api process, each scenario on SQLite and on PostgreSQL: exact row
//! counts, deduplication, auth scoping, bad input, unknown PINs and agent status.

use protocol::{AckOutcome, AgentStatus, BatchAck, DeviceStatus, Encoding, Fault, PROTOCOL_VERSION};
use reqwest::StatusCode;
use system_tests::central::{batch, client, day_at, punches, Backend, CentralDb};
use system_tests::on_both_backends;

on_both_backends!(
    batches_are_stored_exactly_once,
    duplicates_inside_one_batch_are_counted,
    overlapping_batches_sent_at_once_are_counted_exactly,
    tokens_are_scoped_to_their_agent_and_site,
    bad_input_is_refused_with_a_reason_and_leaves_no_rows,
    unknown_pins_are_stored_and_listed,
    status_is_stored_with_fault_history,
);

async fn setup(backend: Backend) -> (CentralDb, String) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    (db, token)
}

async fn ack_of(response: reqwest::Response, encoding: Encoding) -> BatchAck {
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = response.bytes().await.unwrap();
    assert_eq!(status, StatusCode::OK, "body: {}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, encoding.content_type(), "the ack comes back in the request's encoding");
    protocol::decode(&body, encoding).unwrap()
}

async fn error_of(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["code"].as_str().unwrap_or_default().to_owned(),
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn batches_are_stored_exactly_once(backend: Backend) {
    let (db, token) = setup(backend).await;
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);

    let first = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1001", "1002"], day_at(8), 10));
    let ack =
        ack_of(central.post_batch(&http, &token, &first, Encoding::Bincode).await.unwrap(), Encoding::Bincode).await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 10, duplicates: 0, quarantined: 0 });
    assert_eq!((ack.first_seq, ack.last_seq), (1, 10));
    assert_eq!(db.all_logs().await, 10);

    // Replay: nothing new, every punch a duplicate, acknowledged again.
    let ack =
        ack_of(central.post_batch(&http, &token, &first, Encoding::Bincode).await.unwrap(), Encoding::Bincode).await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 0, duplicates: 10, quarantined: 0 });
    assert_eq!(db.all_logs().await, 10);

    // The same punches re-read later under other sequence numbers, in JSON, plus two new ones.
    let mut again = punches("plant-1", "DEV-A", &["1001", "1002"], day_at(8), 12);
    again.rotate_left(3);
    let second = batch("gate-1", "plant-1", 100, again);
    let ack = ack_of(central.post_batch(&http, &token, &second, Encoding::Json).await.unwrap(), Encoding::Json).await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 2, duplicates: 10, quarantined: 0 });
    assert_eq!(db.all_logs().await, 12);

    // Stored fields: local time kept as the device said it, UTC derived from the zone (Kolkata is +05:30).
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT count(*) FROM all_logs WHERE pin = '1001' AND device_serial = 'DEV-A' AND agent_id = 'gate-1' \
             AND site_id = 'plant-1' AND local_time LIKE '2026-03-02 08:00:00%' AND utc_time LIKE '2026-03-02T02:30:00%' \
             AND agent_seq = 1 AND batch_first_seq = 1 AND batch_last_seq = 10 AND state = 0 AND verify = 1"
        }
        Backend::Postgres => {
            "SELECT count(*) FROM all_logs WHERE pin = '1001' AND device_serial = 'DEV-A' AND agent_id = 'gate-1' \
             AND site_id = 'plant-1' AND local_time = '2026-03-02 08:00:00' \
             AND utc_time = '2026-03-02 02:30:00+00' AND agent_seq = 1 AND batch_first_seq = 1 \
             AND batch_last_seq = 10 AND state = 0 AND verify = 1"
        }
    };
    assert_eq!(db.scalar(sql).await.unwrap(), 1, "the first punch is stored with every field");

    // Every new punch marks (pin, local date) and (pin, date - 1) (and date + 1 from noon on; these are morning
    // punches): two pins on one date -> four dirty rows.
    assert_eq!(db.scalar("SELECT count(*) FROM attendance_dirty").await.unwrap(), 4);
    assert_eq!(
        db.scalar("SELECT count(*) FROM attendance_dirty WHERE employee_id = '1002' AND work_date IN ('2026-03-01', '2026-03-02')")
            .await
            .unwrap(),
        2
    );

    let text = http.get(format!("{}/readyz", central.url)).send().await.unwrap();
    assert_eq!(text.status(), StatusCode::OK);
    assert_eq!(central.metric(&http, "central_batches_stored_total{path=\"http\"}").await.unwrap(), 3);
    assert_eq!(central.metric(&http, "central_punches_total{outcome=\"new\"}").await.unwrap(), 12);
    drop(central);
    db.cleanup().await;
}

async fn duplicates_inside_one_batch_are_counted(backend: Backend) {
    let (db, token) = setup(backend).await;
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);

    let mut list = punches("plant-1", "DEV-A", &["7"], day_at(9), 3);
    let mut tap = list[1].clone();
    tap.state = protocol::PunchState::CheckOut; // the state is not part of the key: still the same punch
    list.push(tap);
    list.push(list[0].clone());
    let ack = ack_of(
        central.post_batch(&http, &token, &batch("gate-1", "plant-1", 1, list), Encoding::Bincode).await.unwrap(),
        Encoding::Bincode,
    )
    .await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 3, duplicates: 2, quarantined: 0 });
    assert_eq!(db.all_logs().await, 3);
    drop(central);
    db.cleanup().await;
}

/// Many batches in flight at once (SQLite stores them in shared transactions, PostgreSQL in concurrent ones), each
/// overlapping the next by half: every punch stored once, every batch's own counts right, the days marked.
async fn overlapping_batches_sent_at_once_are_counted_exactly(backend: Backend) {
    let (db, token) = setup(backend).await;
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);
    const BATCHES: usize = 40;
    const SIZE: usize = 100;
    // 2,050 distinct punches on one device, one a minute from 2026-03-02 08:00 (so across the next day too);
    // batch i holds punches 50 i .. 50 i + 100.
    let all = punches("plant-1", "DEV-A", &["1", "2", "3", "4", "5"], day_at(8), (BATCHES + 1) * SIZE / 2);
    let mut sends = Vec::new();
    for i in 0..BATCHES {
        let body = batch("gate-1", "plant-1", 1 + (i * SIZE) as u64, all[i * SIZE / 2..i * SIZE / 2 + SIZE].to_vec());
        let (central, http, token) = (&central, &http, &token);
        sends.push(async move {
            let ack =
                ack_of(central.post_batch(http, token, &body, Encoding::Bincode).await.unwrap(), Encoding::Bincode)
                    .await;
            match ack.outcome {
                AckOutcome::Stored { new, duplicates, .. } => {
                    assert_eq!(new + duplicates, SIZE as u32, "batch {i}: every punch counted once");
                    (new, duplicates)
                }
                AckOutcome::Rejected { reason, .. } => panic!("batch {i} rejected: {reason}"),
            }
        });
    }
    let counts = futures::future::join_all(sends).await;
    let new: u32 = counts.iter().map(|c| c.0).sum();
    let duplicates: u32 = counts.iter().map(|c| c.1).sum();
    assert_eq!(new as usize, all.len(), "each distinct punch is new exactly once");
    assert_eq!(duplicates as usize, BATCHES * SIZE - all.len());
    assert_eq!(db.all_logs().await, all.len() as i64);
    // 2,050 minutes from 08:00 on 03-02 reach 18:09 on 03-03: dates 03-02 and 03-03, each marking itself, the day
    // before and (punches from noon on) the day after, for 5 PINs: 03-01 to 03-04.
    assert_eq!(db.scalar("SELECT count(*) FROM attendance_dirty").await.unwrap(), 4 * 5);
    drop(central);
    db.cleanup().await;
}

async fn tokens_are_scoped_to_their_agent_and_site(backend: Backend) {
    let (db, token_a) = setup(backend).await;
    db.create_site("plant-2").await.unwrap();
    let token_b = db.create_agent("gate-2", "plant-2").await.unwrap();
    let central = db.serve(&[("CENTRAL_API_AUTH_CACHE_TTL_SECS", "0")]).await.unwrap();
    let http = client(None);

    // Agent A's token writing site B's punches, in a batch that claims agent A: 403.
    let for_b = batch("gate-1", "plant-2", 1, punches("plant-2", "DEV-B", &["1"], day_at(8), 2));
    let (status, code, message) =
        error_of(central.post_batch(&http, &token_a, &for_b, Encoding::Bincode).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "forbidden"));
    assert!(message.contains("bound to site plant-1"), "{message}");

    // Agent A's token sending agent B's batch: 403.
    let as_b = batch("gate-2", "plant-2", 1, punches("plant-2", "DEV-B", &["1"], day_at(8), 2));
    let (status, _, _) = error_of(central.post_batch(&http, &token_a, &as_b, Encoding::Bincode).await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(db.all_logs().await, 0, "refused batches leave no rows");

    // The right token for B works.
    let ack =
        ack_of(central.post_batch(&http, &token_b, &as_b, Encoding::Bincode).await.unwrap(), Encoding::Bincode).await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 2, duplicates: 0, quarantined: 0 });

    // Bad, missing, foreign-format tokens: 401.
    let mine = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1"], day_at(8), 1));
    let mut wrong = token_a.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    for bad in
        [wrong.as_str(), "agt_nobody_0000000000000000000000000000000000000000000000000000000000000000", "hunter2"]
    {
        let (status, code, _) = error_of(central.post_batch(&http, bad, &mine, Encoding::Bincode).await.unwrap()).await;
        assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "unauthorized"), "token {bad:?}");
    }
    let body = protocol::encode(&mine, Encoding::Bincode).unwrap();
    let response = central.post_raw(&http, "/api/v1/ingest", None, Encoding::BINCODE_CONTENT_TYPE, body).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Revoked after use: 401 (the auth cache is off for this instance).
    ack_of(central.post_batch(&http, &token_a, &mine, Encoding::Bincode).await.unwrap(), Encoding::Bincode).await;
    db.cli(&["revoke-agent", "gate-1"]).await.unwrap();
    let (status, _, message) =
        error_of(central.post_batch(&http, &token_a, &mine, Encoding::Bincode).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("revoked"), "{message}");
    assert_eq!(db.all_logs().await, 3);
    drop(central);
    db.cleanup().await;
}

async fn bad_input_is_refused_with_a_reason_and_leaves_no_rows(backend: Backend) {
    let (db, token) = setup(backend).await;
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);
    let good = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1"], day_at(8), 3));
    let ingest = "/api/v1/ingest";
    let bincode = Encoding::BINCODE_CONTENT_TYPE;
    let json = Encoding::JSON_CONTENT_TYPE;

    // Malformed bincode: a truncated valid batch.
    let mut bytes = protocol::encode(&good, Encoding::Bincode).unwrap();
    bytes.truncate(bytes.len() - 5);
    let (status, code, message) =
        error_of(central.post_raw(&http, ingest, Some(&token), bincode, bytes).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "malformed"));
    assert!(message.starts_with("malformed bincode batch:"), "{message}");

    // Malformed JSON names what is wrong.
    let mut value = serde_json::to_value(&good).unwrap();
    value["punches"][0]["punch"]["pin"] = serde_json::json!("bad\tpin");
    let (status, code, message) =
        error_of(central.post_raw(&http, ingest, Some(&token), json, value.to_string().into_bytes()).await.unwrap())
            .await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "malformed"));
    assert!(message.contains("PIN"), "{message}");

    // A valid encoding of an invalid batch: sequence numbers going backwards.
    let mut backwards = good.clone();
    backwards.punches.swap(0, 1);
    let mut value = serde_json::to_value(&backwards).unwrap();
    value["first_seq"] = serde_json::json!(1);
    let (status, code, message) =
        error_of(central.post_raw(&http, ingest, Some(&token), json, value.to_string().into_bytes()).await.unwrap())
            .await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid"));
    assert!(message.contains("punches.seq"), "{message}");

    // Another protocol version: a clear message.
    let mut value = serde_json::to_value(&good).unwrap();
    value["version"] = serde_json::json!(PROTOCOL_VERSION + 1);
    let (status, code, message) =
        error_of(central.post_raw(&http, ingest, Some(&token), json, value.to_string().into_bytes()).await.unwrap())
            .await;
    assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "unsupported_version"));
    assert!(message.contains(&format!("unsupported protocol version {}", PROTOCOL_VERSION + 1)), "{message}");

    // Unknown content type.
    let body = protocol::encode(&good, Encoding::Bincode).unwrap();
    let (status, code, message) =
        error_of(central.post_raw(&http, ingest, Some(&token), "text/csv", body).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));
    assert!(message.contains("application/x-bincode"), "{message}");

    // Oversize body: refused from its declared length, before the server reads (or the client finishes sending) it.
    // Sent over a raw socket because an HTTP client still writing the body would see the early answer as a reset.
    let (status, body) = oversize_post(&central.url, &token, protocol::limits::MAX_ENVELOPE_BYTES + 1).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"code\":\"too_large\"") && body.contains("over the limit"), "{body}");

    // Too many punches (encoded by hand: the encoder refuses to produce it).
    let many = batch(
        "gate-1",
        "plant-1",
        1,
        punches("plant-1", "DEV-A", &["1"], day_at(0), protocol::limits::MAX_PUNCHES_PER_BATCH + 1),
    );
    let body = serde_json::to_vec(&many).unwrap();
    let (status, code, message) =
        error_of(central.post_raw(&http, ingest, Some(&token), json, body).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "too_many"));
    assert!(message.contains("5001 punches"), "{message}");

    assert_eq!(db.all_logs().await, 0, "no refused batch left a row");
    assert_eq!(db.scalar("SELECT count(*) FROM attendance_dirty").await.unwrap(), 0);
    assert!(central.metric(&http, "central_batches_rejected_total{path=\"http\"}").await.unwrap() >= 4);

    // And the service still takes a good batch.
    let ack =
        ack_of(central.post_batch(&http, &token, &good, Encoding::Bincode).await.unwrap(), Encoding::Bincode).await;
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 3, duplicates: 0, quarantined: 0 });
    drop(central);
    db.cleanup().await;
}

/// Sends only the headers of a POST declaring a `length`-byte body and returns the status code and body of the answer.
async fn oversize_post(url: &str, token: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-bincode\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[0u8; 1024]).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    });
    read.await.expect("an answer within 10 s");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

async fn unknown_pins_are_stored_and_listed(backend: Backend) {
    let (db, token) = setup(backend).await;
    db.cli(&["add-employee", "1001", "--name", "Asha", "--site", "plant-1"]).await.unwrap();
    db.cli_with_stdin(&["create-admin", "root", "--role", "root", "--password-stdin"], Some("correct horse\n"))
        .await
        .unwrap();
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);

    let list = punches("plant-1", "DEV-A", &["1001", "9999", "4242"], day_at(8), 6);
    let ack = ack_of(
        central.post_batch(&http, &token, &batch("gate-1", "plant-1", 1, list), Encoding::Bincode).await.unwrap(),
        Encoding::Bincode,
    )
    .await;
    assert_eq!(
        ack.outcome,
        AckOutcome::Stored { new: 6, duplicates: 0, quarantined: 0 },
        "unknown PINs are stored all the same"
    );
    assert_eq!(db.all_logs().await, 6);

    let url = format!("{}/api/v1/unknown-pins", central.url);
    assert_eq!(http.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let login = format!("{}/api/v1/login", central.url);
    let wrong = http
        .post(&login)
        .json(&serde_json::json!({"username": "root", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let session = http
        .post(&login)
        .json(&serde_json::json!({"username": "root", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), StatusCode::OK);
    let cookie = session.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let listed: serde_json::Value = http.get(&url).header("cookie", cookie).send().await.unwrap().json().await.unwrap();
    let pins: Vec<(&str, i64)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["pin"].as_str().unwrap(), p["punches"].as_i64().unwrap()))
        .collect();
    assert_eq!(pins, vec![("4242", 2), ("9999", 2)]);

    let cli = db.cli(&["unknown-pins"]).await.unwrap();
    assert_eq!(cli.lines().count(), 2, "{cli}");
    assert!(cli.contains("\"pin\":\"9999\""), "{cli}");
    drop(central);
    db.cleanup().await;
}

fn status_with(faults: &[&str], device_faults: &[&str]) -> AgentStatus {
    let since = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    let fault = |code: &&str| Fault { code: (*code).to_owned(), message: format!("{code} happened"), since };
    AgentStatus {
        version: PROTOCOL_VERSION,
        agent: "gate-1".parse().unwrap(),
        site: "plant-1".parse().unwrap(),
        sent_at: since,
        agent_version: "0.1.0".into(),
        uptime_secs: 100,
        buffer_depth: 12,
        oldest_unacked_age_secs: Some(3),
        devices: vec![DeviceStatus {
            reachable: device_faults.is_empty(),
            last_success: Some(since),
            record_count: Some(10),
            user_count: Some(5),
            clock_drift_secs: Some(-2),
            faults: device_faults.iter().map(fault).collect(),
            ..DeviceStatus::new("DEV-A".parse().unwrap())
        }],
        faults: faults.iter().map(fault).collect(),
        command_results: vec![],
        hostname: "gate-pc".into(),
        dead_letters: 0,
        config_version: None,
    }
}

async fn status_is_stored_with_fault_history(backend: Backend) {
    let (db, token) = setup(backend).await;
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);
    let post = |status: AgentStatus, encoding: Encoding| {
        let body = protocol::encode(&status, encoding).unwrap();
        let central = &central;
        let http = &http;
        let token = &token;
        async move {
            central.post_raw(http, "/api/v1/status", Some(token), encoding.content_type(), body).await.unwrap().status()
        }
    };

    assert_eq!(post(status_with(&["link_down"], &[]), Encoding::Bincode).await, StatusCode::NO_CONTENT);
    assert_eq!(
        post(status_with(&["link_down"], &["device_unreachable"]), Encoding::Json).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post(status_with(&["link_down"], &["device_unreachable"]), Encoding::Json).await,
        StatusCode::NO_CONTENT
    );

    assert_eq!(db.scalar("SELECT count(*) FROM agent_status WHERE buffer_depth = 12").await.unwrap(), 1);
    assert_eq!(db.scalar("SELECT count(*) FROM device_status WHERE device_serial = 'DEV-A'").await.unwrap(), 1);
    // link_down appeared once, device_unreachable once; repeats are not history.
    assert_eq!(db.scalar("SELECT count(*) FROM fault_history").await.unwrap(), 2);
    assert_eq!(db.scalar("SELECT count(*) FROM fault_history WHERE device_serial = 'DEV-A'").await.unwrap(), 1);

    // A status for another site with this token is forbidden.
    let mut other = status_with(&[], &[]);
    other.site = "plant-9".parse().unwrap();
    assert_eq!(post(other, Encoding::Bincode).await, StatusCode::FORBIDDEN);
    drop(central);
    db.cleanup().await;
}

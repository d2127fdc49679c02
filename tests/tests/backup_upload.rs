//! Oversized backup uploads over real HTTP: a 10 GB body, streamed chunked from a generator (never allocated) and
//! declared by `Content-Length`, is refused with `413` and a JSON error while the server reads at most a little past
//! `backup.max_upload_bytes` (set to 1 MiB here); nothing is left in the backups directory, no upload is audited,
//! and the server's memory stays bounded. An upload under the limit is still stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::Value;
use system_tests::admin::{AdminFixture, Auth};
use system_tests::central::Backend;
use system_tests::on_both_backends;

on_both_backends!(a_ten_gigabyte_upload_is_refused_with_bounded_memory);

const LIMIT: u64 = 1024 * 1024;
const TEN_GB: u64 = 10 * 1000 * 1000 * 1000;
const CHUNK: usize = 64 * 1024;

/// A body of `total` bytes made of one shared 64 KiB chunk, counting what was taken from it.
fn generator(total: u64, sent: Arc<AtomicU64>) -> reqwest::Body {
    let chunk = Bytes::from(vec![b' '; CHUNK]);
    let stream = futures::stream::unfold(0u64, move |done| {
        let chunk = chunk.clone();
        let sent = sent.clone();
        async move {
            if done >= total {
                return None;
            }
            let n = (total - done).min(CHUNK as u64);
            sent.fetch_add(n, Ordering::Relaxed);
            Some((Ok::<_, std::io::Error>(chunk.slice(..n as usize)), done + n))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// The server's resident and peak memory in KiB (`VmRSS`, `VmHWM`).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn backups_dir_entries(fx: &AdminFixture) -> Vec<String> {
    match std::fs::read_dir(fx.db.dir().join("data").join("backups")) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

async fn send(
    fx: &AdminFixture,
    token: &str,
    name: &str,
    body: reqwest::Body,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let url = format!("{}/api/v1/backups/{name}", fx.central.url);
    let response = fx.http.put(url).bearer_auth(token).body(body).send().await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Sends only the head of a `PUT` declaring `length` bytes, and reads the answer: (status, body).
async fn declared_only(fx: &AdminFixture, token: &str, length: u64) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = fx.central.url.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "PUT /api/v1/backups/declared.json HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf)).await;
        match read {
            Ok(Ok(n)) if n > 0 => {
                answer.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&answer);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok());
                    if length.is_some_and(|l| body.len() >= l) {
                        break;
                    }
                }
            }
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

async fn a_ten_gigabyte_upload_is_refused_with_bounded_memory(backend: Backend) {
    let limit = LIMIT.to_string();
    let fx = AdminFixture::blank(backend, &[("CENTRAL_API_BACKUP__MAX_UPLOAD_BYTES", limit.as_str())]).await.unwrap();
    let Auth::Bearer(root) = fx.token("root").await.unwrap() else { panic!("a bearer token") };
    let pid = fx.central.process.pid().expect("the server's pid");
    let (rss_before, _) = memory_kib(pid);

    // Chunked: no length announced; the server reads up to the limit, then refuses with 413 and closes the
    // connection. The client may see the 413 or, still writing, the connection cut: either way it stops early.
    let sent = Arc::new(AtomicU64::new(0));
    match send(&fx, &root, "huge.json.gz", generator(TEN_GB, sent.clone())).await {
        Ok((status, body)) => {
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
            assert_eq!(body["code"], "too_large", "{body}");
            assert!(body["message"].as_str().unwrap_or("").contains(&LIMIT.to_string()), "{body}");
        }
        Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
    }
    let streamed = sent.load(Ordering::Relaxed);
    assert!(streamed < 256 * 1024 * 1024, "{streamed} bytes were taken from the 10 GB body before the refusal");

    // Declared: a 10 GB Content-Length is answered 413 before any byte of the body is sent.
    let (status, body) = declared_only(&fx, &root, TEN_GB).await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!(body["code"], "too_large", "{body}");
    assert!(body["message"].as_str().unwrap_or("").contains("10000000000"), "{body}");

    // Nothing written: no file (not even a partial one), no upload audited, nothing listed.
    assert_eq!(backups_dir_entries(&fx), Vec::<String>::new());
    let uploads = fx.db.scalar("SELECT count(*) FROM audit_log WHERE action = 'upload'").await.unwrap();
    assert_eq!(uploads, 0);
    let (status, list) =
        fx.call(reqwest::Method::GET, "/api/v1/backups", &Auth::Bearer(root.clone()), None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");

    // Memory stayed bounded: the server's peak is far below what a buffered body would take.
    let (rss_after, peak) = memory_kib(pid);
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB");
    assert!(rss_after < rss_before + 64 * 1024, "RSS grew from {rss_before} to {rss_after} KiB");

    // At the limit an upload is stored.
    let ok = Arc::new(AtomicU64::new(0));
    let (status, body) = send(&fx, &root, "small.json", generator(LIMIT, ok)).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["bytes"], LIMIT);
    assert_eq!(backups_dir_entries(&fx), vec!["small.json".to_owned()]);
    fx.cleanup().await;
}

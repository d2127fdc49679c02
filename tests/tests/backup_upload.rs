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

async fn put(fx: &AdminFixture, token: &str, name: &str, body: reqwest::Body, declared: Option<u64>) -> (StatusCode, Value) {
    let mut request = fx.http.put(format!("{}/api/v1/backups/{name}", fx.central.url)).bearer_auth(token).body(body);
    if let Some(length) = declared {
        request = request.header(reqwest::header::CONTENT_LENGTH, length);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("the server answered nothing to {name}: {e:?}"));
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn a_ten_gigabyte_upload_is_refused_with_bounded_memory(backend: Backend) {
    let limit = LIMIT.to_string();
    let fx = AdminFixture::blank(backend, &[("CENTRAL_API_BACKUP__MAX_UPLOAD_BYTES", limit.as_str())]).await.unwrap();
    let Auth::Bearer(root) = fx.token("root").await.unwrap() else { panic!("a bearer token") };
    let pid = fx.central.process.pid().expect("the server's pid");
    let (rss_before, _) = memory_kib(pid);

    // Chunked: no length announced; the server reads up to the limit, then refuses.
    let sent = Arc::new(AtomicU64::new(0));
    let (status, body) = put(&fx, &root, "huge.json.gz", generator(TEN_GB, sent.clone()), None).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "too_large", "{body}");
    assert!(body["message"].as_str().unwrap_or("").contains(&LIMIT.to_string()), "{body}");
    let streamed = sent.load(Ordering::Relaxed);
    assert!(streamed < 256 * 1024 * 1024, "{streamed} bytes were taken from the 10 GB body before the refusal");

    // Declared: a 10 GB Content-Length is refused before the body is read.
    let declared = Arc::new(AtomicU64::new(0));
    let (status, body) = put(&fx, &root, "declared.json", generator(TEN_GB, declared.clone()), Some(TEN_GB)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "too_large");
    assert!(body["message"].as_str().unwrap_or("").contains("10000000000"), "{body}");
    assert!(declared.load(Ordering::Relaxed) < 64 * 1024 * 1024, "the declared body was read");

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
    let (status, body) = put(&fx, &root, "small.json", generator(LIMIT, ok), None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["bytes"], LIMIT);
    assert_eq!(backups_dir_entries(&fx), vec!["small.json".to_owned()]);
    fx.cleanup().await;
}

//! Arbitrary and mutated bytes sent to `POST /api/v1/ingest` of a real central-api: never a server error, and no row
//! appears except for batches the service acknowledged as stored.

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use protocol::{AckOutcome, BatchAck, Encoding};
use system_tests::central::{batch, client, day_at, punches, Backend, Central, CentralDb};

// Fields drop in order: the process and the database go before the runtime they were created on.
struct Target {
    central: Central,
    db: CentralDb,
    token: String,
    http: reqwest::Client,
    acknowledged_new: AtomicU64,
    runtime: tokio::runtime::Runtime,
}

impl Target {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (db, central, token) = runtime.block_on(async {
            let db = CentralDb::new(Backend::Sqlite).await;
            db.create_site("plant-1").await.unwrap();
            let token = db.create_agent("gate-1", "plant-1").await.unwrap();
            let central = db.serve(&[]).await.unwrap();
            (db, central, token)
        });
        Self { central, db, token, http: client(None), acknowledged_new: AtomicU64::new(0), runtime }
    }

    /// Sends `body` and checks the answer: a 4xx refusal or a 200 with a decodable `Stored` ack, never a 5xx.
    fn send(&self, content_type: &str, body: Vec<u8>) -> Result<(), TestCaseError> {
        self.runtime.block_on(async {
            let response = self
                .central
                .post_raw(&self.http, "/api/v1/ingest", Some(&self.token), content_type, body)
                .await
                .map_err(|e| TestCaseError::fail(format!("request failed: {e:#}")))?;
            let status = response.status();
            prop_assert!(!status.is_server_error(), "server error {status}");
            if status.is_success() {
                let encoding = Encoding::from_content_type(content_type).unwrap();
                let ack: BatchAck = protocol::decode(&response.bytes().await.unwrap(), encoding)
                    .map_err(|e| TestCaseError::fail(format!("undecodable ack: {e}")))?;
                let AckOutcome::Stored { new, .. } = ack.outcome else {
                    return Err(TestCaseError::fail("200 with a rejection"));
                };
                self.acknowledged_new.fetch_add(u64::from(new), Ordering::Relaxed);
            } else {
                prop_assert!(status.is_client_error(), "unexpected status {status}");
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                prop_assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "no reason given: {body}");
            }
            Ok(())
        })
    }

    fn rows(&self) -> u64 {
        self.runtime.block_on(self.db.all_logs()) as u64
    }
}

fn valid_bincode() -> Vec<u8> {
    let batch = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1001", "7"], day_at(8), 4));
    protocol::encode(&batch, Encoding::Bincode).unwrap()
}

fn valid_json() -> Vec<u8> {
    let batch = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1001", "7"], day_at(8), 4));
    protocol::encode(&batch, Encoding::Json).unwrap()
}

#[test]
fn arbitrary_and_mutated_bodies_never_cause_a_server_error_or_stray_rows() {
    let target = Target::start();
    let config = ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() };

    // Arbitrary bytes, in both encodings: always refused.
    proptest!(config.clone(), |(body in proptest::collection::vec(any::<u8>(), 0..600), json in any::<bool>())| {
        let content_type = if json { Encoding::JSON_CONTENT_TYPE } else { Encoding::BINCODE_CONTENT_TYPE };
        target.send(content_type, body)?;
    });
    assert_eq!(target.acknowledged_new.load(Ordering::Relaxed), 0);
    assert_eq!(target.rows(), 0, "arbitrary bytes stored nothing");

    // Valid batches with a few bytes changed: stored or refused, and the rows equal what was acknowledged.
    let bincode = valid_bincode();
    let json = valid_json();
    proptest!(config, |(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        use_json in any::<bool>(),
    )| {
        let (mut body, content_type) = if use_json {
            (json.clone(), Encoding::JSON_CONTENT_TYPE)
        } else {
            (bincode.clone(), Encoding::BINCODE_CONTENT_TYPE)
        };
        for (index, byte) in edits {
            let i = index.index(body.len());
            body[i] = byte;
        }
        target.send(content_type, body)?;
    });
    assert_eq!(target.rows(), target.acknowledged_new.load(Ordering::Relaxed), "rows exist only for acked punches");
}

//! Agents of the previous release keep working against this central: a version 1 batch or status is accepted over
//! HTTP (bincode and JSON) and answered in version 1, byte for byte what a version 1 agent decodes; a version 2
//! batch's acknowledgement echoes its batch id. On SQLite and on PostgreSQL.

use protocol::{v1, AckOutcome, BatchAck, Encoding, PunchBatch};
use reqwest::StatusCode;
use system_tests::central::{batch, client, day_at, punches, Backend, CentralDb};
use system_tests::on_both_backends;

on_both_backends!(a_version_1_agent_is_answered_in_version_1, a_version_2_ack_echoes_the_batch_id);

/// The version 1 form of a current batch (what an agent of the first release sends for the same punches).
fn as_v1(batch: &PunchBatch) -> v1::PunchBatch {
    v1::PunchBatch {
        version: v1::VERSION,
        agent: batch.agent.clone(),
        site: batch.site.clone(),
        first_seq: batch.first_seq,
        last_seq: batch.last_seq,
        sent_at: batch.sent_at,
        punches: batch
            .punches
            .iter()
            .map(|p| v1::SequencedPunch {
                seq: p.seq,
                punch: v1::Punch {
                    site: p.punch.site.clone(),
                    device: p.punch.device.clone(),
                    pin: p.punch.pin.clone(),
                    local_time: p.punch.local_time,
                    utc_time: p.punch.utc_time,
                    state: p.punch.state,
                    verify: p.punch.verify,
                    work_code: p.punch.work_code,
                    source: v1::PunchSource::ZkPull,
                    direction: p.punch.direction,
                },
            })
            .collect(),
    }
}

fn encode_v1<T: serde::Serialize>(value: &T, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Bincode => bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap(),
        Encoding::Json => serde_json::to_vec(value).unwrap(),
    }
}

fn decode_v1_ack(bytes: &[u8], encoding: Encoding) -> v1::BatchAck {
    match encoding {
        Encoding::Bincode => {
            let (ack, used) =
                bincode::serde::decode_from_slice::<v1::BatchAck, _>(bytes, bincode::config::standard()).unwrap();
            assert_eq!(used, bytes.len(), "the whole answer is one version 1 ack");
            ack
        }
        Encoding::Json => serde_json::from_slice(bytes).unwrap(),
    }
}

async fn a_version_1_agent_is_answered_in_version_1(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);

    let mut seq = 1;
    for encoding in [Encoding::Bincode, Encoding::Json] {
        let current =
            batch("gate-1", "plant-1", seq, punches("plant-1", "DEV-A", &["1001", "1002"], day_at(8 + seq as u32), 6));
        seq += 6;
        let body = encode_v1(&as_v1(&current), encoding);
        let response = central
            .post_raw(&http, "/api/v1/ingest", Some(&token), encoding.content_type(), body.clone())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.bytes().await.unwrap();
        assert!(
            protocol::decode::<BatchAck>(&bytes, encoding).is_err(),
            "{encoding:?}: the answer must not be a version 2 ack, which a version 1 agent cannot read"
        );
        let ack = decode_v1_ack(&bytes, encoding);
        assert_eq!(ack.version, 1);
        assert_eq!((ack.first_seq, ack.last_seq), (current.first_seq, current.last_seq));
        assert_eq!(ack.outcome, v1::AckOutcome::Stored { new: 6, duplicates: 0 }, "{encoding:?}");

        // Sent again: all duplicates, still in version 1.
        let response =
            central.post_raw(&http, "/api/v1/ingest", Some(&token), encoding.content_type(), body).await.unwrap();
        let ack = decode_v1_ack(&response.bytes().await.unwrap(), encoding);
        assert_eq!(ack.outcome, v1::AckOutcome::Stored { new: 0, duplicates: 6 }, "{encoding:?}");
    }
    assert_eq!(db.all_logs().await, 12);

    // A version 1 status is stored too.
    let status = v1::AgentStatus {
        version: 1,
        agent: "gate-1".parse().unwrap(),
        site: "plant-1".parse().unwrap(),
        sent_at: chrono::Utc::now(),
        agent_version: "0.1.0".into(),
        uptime_secs: 5,
        buffer_depth: 0,
        oldest_unacked_age_secs: None,
        devices: vec![],
        faults: vec![],
        command_results: vec![],
    };
    let response = central
        .post_raw(&http, "/api/v1/status", Some(&token), "application/x-bincode", encode_v1(&status, Encoding::Bincode))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    drop(central);
    db.cleanup().await;
}

async fn a_version_2_ack_echoes_the_batch_id(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let central = db.serve(&[]).await.unwrap();
    let http = client(None);
    let first = batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1001"], day_at(8), 3));
    let mut again = first.clone();
    again.batch_id = protocol::BatchId::random();
    assert_ne!(first.batch_id, again.batch_id);
    for (sent, new) in [(&first, 3), (&again, 0)] {
        let response = central.post_batch(&http, &token, sent, Encoding::Bincode).await.unwrap();
        let ack: BatchAck = protocol::decode(&response.bytes().await.unwrap(), Encoding::Bincode).unwrap();
        assert_eq!(ack.batch_id, sent.batch_id, "the ack names the batch it answers");
        assert!(ack.answers(sent));
        assert_eq!(ack.outcome, AckOutcome::Stored { new, duplicates: 3 - new, quarantined: 0 });
    }
    drop(central);
    db.cleanup().await;
}

//! Issue 19: batches stored together (the group commit: SQLite's writer task, PostgreSQL's writers merging what is
//! queued into one statement) each keep their own answer. Many batches are posted at once to a served central-api
//! on both backends: distinct ones (all new), the same batch twice at once (stored once: new for one, duplicates for
//! the other), and one naming another site's device (held, not stored). Then everything is posted again at once and
//! adds nothing. The store-level group insert of PostgreSQL is also called directly with such a group.

use futures::future::join_all;
use protocol::{AckOutcome, BatchAck, Encoding, PunchBatch};
use reqwest::StatusCode;
use system_tests::central::{batch, client, day_at, punches, Backend, Central, CentralDb};
use system_tests::on_both_backends;

on_both_backends!(batches_stored_together_keep_their_own_answers);

/// (new, duplicates, quarantined) of an acknowledgement.
fn counts(ack: &BatchAck) -> (u32, u32, u32) {
    match &ack.outcome {
        AckOutcome::Stored { new, duplicates, quarantined, .. } => (*new, *duplicates, *quarantined),
        other => panic!("not stored: {other:?}"),
    }
}

async fn post_all(central: &Central, token: &str, batches: &[PunchBatch]) -> Vec<(u32, u32, u32)> {
    let http = client(None);
    let answers = join_all(batches.iter().map(|b| {
        let http = http.clone();
        async move {
            let response = central.post_batch(&http, token, b, Encoding::Bincode).await.expect("post");
            assert_eq!(response.status(), StatusCode::OK);
            let ack: BatchAck =
                protocol::decode(&response.bytes().await.expect("body"), Encoding::Bincode).expect("ack");
            assert!(ack.answers(b), "the acknowledgement answers its own batch");
            counts(&ack)
        }
    }))
    .await;
    answers
}

async fn batches_stored_together_keep_their_own_answers(backend: Backend) {
    let db = CentralDb::new(backend).await;
    db.create_site("A").await.expect("site A");
    db.create_site("B").await.expect("site B");
    let token_a = db.create_agent("gate-a", "A").await.expect("agent a");
    let token_b = db.create_agent("gate-b", "B").await.expect("agent b");
    let central = db.serve(&[]).await.expect("serve");

    // B's device is registered at B by B's first batch.
    let own_b = batch("gate-b", "B", 1, punches("B", "DEV-B", &["900"], day_at(8), 3));
    assert_eq!(post_all(&central, &token_b, &[own_b]).await, [(3, 0, 0)]);

    // Twelve distinct batches of A (four devices, several PINs), one of them twice, and one naming B's device.
    let mut sent = Vec::new();
    let mut seq = 1;
    for i in 0..12u32 {
        let device = format!("DEV-A{}", i % 4);
        let start = day_at(6) + chrono::Duration::hours(i64::from(i));
        sent.push(batch("gate-a", "A", seq, punches("A", &device, &["101", "102", "103"], start, 20)));
        seq += 20;
    }
    let twice = sent[5].clone();
    sent.push(twice);
    sent.push(batch("gate-a", "A", seq, punches("A", "DEV-B", &["101"], day_at(20), 4)));
    let answers = post_all(&central, &token_a, &sent).await;
    for (i, answer) in answers.iter().enumerate().take(12).filter(|(i, _)| *i != 5) {
        assert_eq!(*answer, (20, 0, 0), "batch {i} is all new");
    }
    let (first, second) = (answers[5], answers[12]);
    assert_eq!((first.0 + second.0, first.1 + second.1), (20, 20), "a batch sent twice at once is stored once");
    assert!(first.2 == 0 && second.2 == 0);
    assert_eq!(answers[13], (0, 0, 4), "the other site's device is held");

    assert_eq!(db.all_logs().await, 3 + 12 * 20, "every distinct punch stored once");
    let held = db.scalar("SELECT count(*) FROM punch_quarantine").await.expect("quarantine");
    assert_eq!(held, 4);
    let dirty = db
        .scalar("SELECT count(*) FROM attendance_dirty WHERE employee_id IN ('101', '102', '103')")
        .await
        .expect("dirty");
    assert_eq!(
        dirty, 9,
        "the days of A's PINs (2026-03-02, the day before, and the day after: punches until 17:00) are marked"
    );

    // Everything again, at once: nothing added, every punch a duplicate (the held ones held again).
    let again = post_all(&central, &token_a, &sent).await;
    for (i, answer) in again.iter().enumerate().take(13) {
        assert_eq!(*answer, (0, 20, 0), "replayed batch {i} adds nothing");
    }
    assert_eq!(again[13], (0, 0, 4));
    assert_eq!(db.all_logs().await, 3 + 12 * 20);

    // The writers' own figures: every batch went through a group transaction (on PostgreSQL a group that fails is
    // stored again batch by batch, outside the count), and a group holds one batch or more.
    let http = client(None);
    let grouped = central.metric(&http, "central_ingest_group_batches_total").await.expect("metric");
    let groups = central.metric(&http, "central_ingest_groups_total").await.expect("metric");
    if backend == Backend::Sqlite {
        assert_eq!(grouped, 1 + 14 + 14, "SQLite stores every batch in a group");
    }
    assert!(grouped <= 29 && groups >= 1 && groups <= grouped, "{groups} groups of {grouped} batches");
    drop(central);

    if backend == Backend::Postgres {
        group_insert_directly(&db).await;
    }
    db.cleanup().await;
}

/// PostgreSQL's group insert called with a group holding a new batch, the same batch again, a batch of known
/// punches and one naming the other site's device.
async fn group_insert_directly(db: &CentralDb) {
    use central_api::store::ingest_group::{insert_group_postgres, RecentDuplicates};
    use central_api::store::rows::BatchRows;
    use central_api::store::writer_stats::WriterStats;
    use central_api::store::Store;

    let store = system_tests::attendance::store_of(db, 2).await.expect("store");
    let Store::Postgres(pool) = &store else { panic!("a PostgreSQL store") };
    let rows = |b: &PunchBatch| BatchRows::from_batch(b).expect("rows");
    let new = rows(&batch("gate-a", "A", 1000, punches("A", "DEV-A9", &["104"], day_at(7), 5)));
    let known = rows(&batch("gate-a", "A", 1, punches("A", "DEV-A0", &["101", "102", "103"], day_at(6), 20)));
    let foreign = rows(&batch("gate-a", "A", 2000, punches("A", "DEV-B", &["104"], day_at(21), 2)));
    // The group's first COPY meets the known punches, goes back to its savepoint and copies the new ones only.
    let recent = RecentDuplicates::default();
    let stats = WriterStats::default();
    let results = insert_group_postgres(pool, &[&new, &new, &known, &foreign], &recent, &stats).await.expect("group");
    let got: Vec<(u32, u32, u32)> =
        results.into_iter().map(|r| r.map(|i| (i.new, i.duplicates, i.quarantined)).expect("batch stored")).collect();
    assert_eq!(got, [(5, 0, 0), (0, 5, 0), (0, 20, 0), (0, 0, 2)]);
    assert_eq!(stats.groups(), 1, "the group is counted once");
    assert_eq!(db.all_logs().await, 3 + 12 * 20 + 5);
    assert!(recent.seen(), "a group that met stored punches makes the next one read first");
    let registered = db.scalar("SELECT count(*) FROM devices WHERE serial = 'DEV-A9' AND site_id = 'A'").await;
    assert_eq!(registered.expect("devices"), 1, "a device first seen in a group is registered at its batch's site");
    // Read first: a group of new punches is copied after a read that finds nothing, which ends the read-first mode.
    let fresh = rows(&batch("gate-a", "A", 1100, punches("A", "DEV-A9", &["104"], day_at(8), 4)));
    let results = insert_group_postgres(pool, &[&fresh], &recent, &stats).await.expect("group");
    assert_eq!(
        results.into_iter().map(|r| r.map(|i| (i.new, i.duplicates)).expect("stored")).collect::<Vec<_>>(),
        [(4, 0)]
    );
    assert!(!recent.seen(), "a read that found nothing stored ends the read-first mode");
    assert_eq!(db.all_logs().await, 3 + 12 * 20 + 5 + 4);
    punch_stored_meanwhile_by_another_transaction(db, &store, 3000, false).await;
    punch_stored_meanwhile_by_another_transaction(db, &store, 4000, true).await;
    store.close().await;
}

/// A punch another transaction inserts while a group is being stored, committed while the group waits on it. Either
/// way the answer counts it as a duplicate and nothing is stored twice:
/// - copy first (`read_first` false): the group's whole-group `COPY` waits on the other transaction, fails on the
///   unique constraint once it commits, and the group goes back to its savepoint, reads and copies the others;
/// - read first (a replayed batch went just before, so the group commit reads first): the read does not see the
///   uncommitted punch, the `COPY` fails on it, and the group commit stores the batch again alone.
async fn punch_stored_meanwhile_by_another_transaction(
    db: &CentralDb,
    store: &central_api::store::Store,
    seq: u64,
    read_first: bool,
) {
    use central_api::ingest::pg_group::PgGroupCommit;
    use central_api::store::rows::BatchRows;
    use central_api::store::Store;

    let Store::Postgres(pool) = store else { panic!("a PostgreSQL store") };
    let group = PgGroupCommit::start(store.clone(), std::sync::Arc::default());
    if read_first {
        let replay = batch("gate-a", "A", 1, punches("A", "DEV-A0", &["101", "102", "103"], day_at(6), 20));
        let replayed = group.insert(BatchRows::from_batch(&replay).expect("rows")).await.expect("replay stored");
        assert_eq!((replayed.new, replayed.duplicates), (0, 20));
    }
    let before = db.all_logs().await;
    let hour = if read_first { 11 } else { 10 };
    let late = batch("gate-a", "A", seq, punches("A", "DEV-A9", &["105"], day_at(hour), 3));
    let rows = BatchRows::from_batch(&late).expect("rows");
    let mut other = pool.begin().await.expect("other transaction");
    sqlx::query(
        "INSERT INTO all_logs (punch_key, site_id, device_serial, pin, local_time, utc_time, state, verify, \
         work_code, source, direction, agent_id, agent_seq, batch_first_seq, batch_last_seq, received_at) \
         VALUES ($1, 'A', 'DEV-A9', '105', $2, now(), 0, 1, 0, 'zk-pull', 'BOTH', 'other', 1, 1, 1, now())",
    )
    .bind(rows.rows[1].key.as_bytes().as_slice())
    .bind(rows.rows[1].local_time)
    .execute(&mut *other)
    .await
    .expect("the other transaction's insert");
    let stored = tokio::spawn(async move { group.insert(rows).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    other.commit().await.expect("the other transaction commits");
    let inserted = stored.await.expect("task").expect("stored");
    assert_eq!((inserted.new, inserted.duplicates), (2, 1));
    assert_eq!(db.all_logs().await, before + 3);
}

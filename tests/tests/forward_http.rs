//! The HTTPS forwarder against a fake central that acknowledges, fails, stalls, rejects and refuses: nothing leaves
//! the buffer without an acknowledgement, order is preserved, failures back off and raise faults.

use protocol::RejectionKind;
use std::sync::Arc;
use std::time::Duration;

use edge_agent::buffer::{Buffer, BufferOptions};
use edge_agent::faults::{self, Faults};
use edge_agent::forward::{ForwardMetrics, ForwardOptions, Forwarder, HttpLink, HttpLinkOptions, Link};
use system_tests::fake_central::{Behaviour, FakeCentral};
use system_tests::proxy::{ChaosProxy, ProxyMode};
use system_tests::punches;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "agent-secret";

struct Rig {
    _dir: tempfile::TempDir,
    buffer: Buffer,
    faults: Faults,
    metrics: Arc<ForwardMetrics>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Rig {
    async fn start(url: &str, max_batch: usize, request_timeout: Duration) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let faults = Faults::new();
        let buffer = Buffer::open(
            BufferOptions {
                path: dir.path().join("buffer"),
                max_disk_bytes: 1 << 30,
                cache_bytes: 4 << 20,
                key_retention: Duration::from_secs(86_400),
            },
            faults.clone(),
        )
        .expect("open");
        let link = HttpLink::new(HttpLinkOptions {
            base_url: url.to_owned(),
            token: TOKEN.into(),
            ca_file: None,
            ca_fingerprint: None,
            client_cert: None,
            client_key: None,
            request_timeout,
        })
        .expect("link");
        let metrics = Arc::new(ForwardMetrics::new());
        let forwarder = Forwarder::new(
            buffer.clone(),
            Link::Http(link),
            ForwardOptions {
                agent: "agent-1".parse().expect("agent"),
                site: punches::SITE.parse().expect("site"),
                max_batch,
                linger: Duration::from_millis(20),
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(400),
            },
            faults.clone(),
            metrics.clone(),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(forwarder.run(stop.clone()));
        Self { _dir: dir, buffer, faults, metrics, stop, task }
    }

    async fn wait_drained(&self, within: Duration) {
        let start = tokio::time::Instant::now();
        while self.buffer.depth() > 0 {
            assert!(start.elapsed() < within, "not drained within {within:?}: depth {}", self.buffer.depth());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the forwarder to finish handling the last answer (the buffer empties before the fault is cleared).
    async fn wait_fault_cleared(&self, code: &str) {
        let start = tokio::time::Instant::now();
        while self.faults.is_raised(code) {
            assert!(start.elapsed() < Duration::from_secs(5), "fault {code} still raised");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("forwarder task");
    }
}

/// Each batch starts where the previous acknowledged one ended; a failed batch is resent from the same place.
fn assert_in_order(received: &[system_tests::fake_central::Received]) {
    let mut next_first = 1;
    for batch in received {
        assert_eq!(batch.first_seq, next_first, "batches out of order: {received:?}");
        if batch.acknowledged {
            next_first = batch.last_seq + 1;
        }
    }
}

#[tokio::test]
async fn acknowledged_batches_leave_the_buffer_in_order_and_complete() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    let rig = Rig::start(&central.url(), 400, Duration::from_secs(5)).await;
    for chunk in 0..5 {
        rig.buffer.append(punches::range("DEV-1", chunk * 1000, (chunk + 1) * 1000)).await.expect("append");
    }
    rig.wait_drained(Duration::from_secs(20)).await;
    let expected: std::collections::HashSet<_> = punches::range("DEV-1", 0, 5000).iter().map(|p| p.key()).collect();
    assert_eq!(central.stored_keys(), expected);
    assert_eq!(central.deliveries(), 5000, "each punch delivered once when nothing fails");
    let received = central.received();
    assert!(received.iter().all(|b| b.count <= 400), "batches respect max_batch");
    assert_in_order(&received);
    assert!(rig.faults.snapshot().is_empty());
    let metrics = rig.metrics.clone();
    // Stopping waits for the forwarder to finish the step that counts the last acknowledgement.
    rig.stop().await;
    assert_eq!(metrics.punches_acked.load(std::sync::atomic::Ordering::Relaxed), 5000);
}

#[tokio::test]
async fn server_errors_keep_everything_and_back_off_then_drain() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    central.set(Behaviour::ServerError);
    let rig = Rig::start(&central.url(), 100, Duration::from_secs(5)).await;
    rig.buffer.append(punches::range("DEV-1", 0, 250)).await.expect("append");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.buffer.depth(), 250, "nothing deleted without an acknowledgement");
    assert!(rig.faults.is_raised(faults::LINK_DOWN));
    let attempts = central.received().len();
    // Without backoff a local 500 loop makes hundreds of attempts in 1.5 s; 50 ms doubling to 400 ms makes a handful.
    assert!((2..=15).contains(&attempts), "{attempts} attempts in 1.5 s");
    assert!(central.received().iter().all(|b| b.first_seq == 1), "the same batch is retried");

    central.set(Behaviour::Ack);
    rig.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(central.stored_count(), 250);
    rig.wait_fault_cleared(faults::LINK_DOWN).await;
    assert_in_order(&central.received());
    rig.stop().await;
}

#[tokio::test]
async fn a_stalled_central_times_out_without_deleting() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    central.set(Behaviour::Stall);
    let rig = Rig::start(&central.url(), 100, Duration::from_millis(300)).await;
    rig.buffer.append(punches::range("DEV-1", 0, 50)).await.expect("append");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(rig.buffer.depth(), 50);
    let fault = rig.faults.snapshot().into_iter().find(|f| f.code == faults::LINK_DOWN).expect("link_down");
    assert!(fault.message.contains("timed out"), "{}", fault.message);
    central.set(Behaviour::Ack);
    rig.wait_drained(Duration::from_secs(10)).await;
    rig.stop().await;
}

#[tokio::test]
async fn a_permanent_refusal_sets_the_batch_aside_and_the_rest_goes_on() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    central.set(Behaviour::Refuse(422, "punch time 2199-01-01 is out of range".into()));
    let rig = Rig::start(&central.url(), 100, Duration::from_millis(50)).await;
    rig.buffer.append(punches::range("DEV-1", 0, 10)).await.expect("append");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rig.buffer.stats().expect("stats").dead_letters < 10 || !rig.faults.is_raised(faults::BATCH_REJECTED) {
        assert!(tokio::time::Instant::now() < deadline, "the refused batch was not set aside");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fault = rig.faults.snapshot().into_iter().find(|f| f.code == faults::BATCH_REJECTED).expect("fault");
    assert!(fault.message.contains("out of range") && fault.message.contains("1..=10"), "{}", fault.message);
    // The punches behind it are not blocked.
    central.set(Behaviour::Ack);
    rig.buffer.append(punches::range("DEV-1", 10, 30)).await.expect("append");
    rig.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(central.stored_count(), 20);
    assert!(rig.faults.is_raised(faults::BATCH_REJECTED), "raised while dead letters remain");
    // A permanent `Rejected` answer (MQTT's way) is handled the same.
    central.set(Behaviour::RejectAs(RejectionKind::Permanent, "device of another site".into()));
    rig.buffer.append(punches::range("DEV-1", 30, 35)).await.expect("append");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rig.buffer.stats().expect("stats").dead_letters < 15 {
        assert!(tokio::time::Instant::now() < deadline, "the rejected batch was not set aside");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The operator sends them again once central takes them; nothing was lost.
    central.set(Behaviour::Ack);
    assert_eq!(rig.buffer.retry_dead_letters(None).await.expect("retry"), 15);
    rig.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(central.stored_count(), 35);
    rig.wait_fault_cleared(faults::BATCH_REJECTED).await;
    rig.stop().await;
}

#[tokio::test]
async fn a_refused_token_stalls_with_auth_failed_and_keeps_everything() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    central.set(Behaviour::Refuse(401, "token revoked".into()));
    let rig = Rig::start(&central.url(), 100, Duration::from_millis(50)).await;
    rig.buffer.append(punches::range("DEV-1", 0, 10)).await.expect("append");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rig.buffer.depth(), 10, "nothing deleted");
    assert_eq!(rig.buffer.stats().expect("stats").dead_letters, 0, "a 401 is not permanent");
    let fault = rig.faults.snapshot().into_iter().find(|f| f.code == faults::AUTH_FAILED).expect("auth_failed");
    assert!(fault.message.contains("token revoked"), "{}", fault.message);
    central.set(Behaviour::RejectAs(RejectionKind::Unauthorized, "agent revoked".into()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.buffer.depth(), 10);
    central.set(Behaviour::Ack);
    rig.wait_drained(Duration::from_secs(10)).await;
    rig.wait_fault_cleared(faults::AUTH_FAILED).await;
    rig.stop().await;
}

#[tokio::test]
async fn a_rejected_batch_is_kept_and_the_reason_raised() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    central.set(Behaviour::Reject("site plant-9 is not registered".into()));
    let rig = Rig::start(&central.url(), 100, Duration::from_secs(5)).await;
    rig.buffer.append(punches::range("DEV-1", 0, 30)).await.expect("append");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rig.buffer.depth(), 30);
    let fault = rig.faults.snapshot().into_iter().find(|f| f.code == faults::BATCH_REJECTED).expect("fault");
    assert!(fault.message.contains("site plant-9 is not registered"), "{}", fault.message);
    central.set(Behaviour::Ack);
    rig.wait_drained(Duration::from_secs(10)).await;
    rig.wait_fault_cleared(faults::BATCH_REJECTED).await;
    rig.stop().await;
}

#[tokio::test]
async fn refusals_and_answers_without_an_ack_delete_nothing() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    central.set(Behaviour::Forbidden("agent agent-1 is disabled".into()));
    let rig = Rig::start(&central.url(), 100, Duration::from_secs(5)).await;
    rig.buffer.append(punches::range("DEV-1", 0, 20)).await.expect("append");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let fault = rig.faults.snapshot().into_iter().find(|f| f.code == faults::BATCH_REJECTED).expect("fault");
    assert!(
        fault.message.contains("HTTP 403 agent_disabled") && fault.message.contains("dead letters"),
        "{}",
        fault.message
    );
    // A 403 is permanent: the batch was set aside, not deleted; an operator sends it again.
    assert_eq!(rig.buffer.depth(), 0);
    assert_eq!(rig.buffer.stats().expect("stats").dead_letters, 20);
    central.set(Behaviour::OkWithoutAck);
    assert_eq!(rig.buffer.retry_dead_letters(None).await.expect("retry"), 20);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rig.buffer.depth(), 20, "a 200 without an acknowledgement is not one");
    let fault = rig.faults.snapshot().into_iter().find(|f| f.code == faults::LINK_DOWN).expect("fault");
    assert!(fault.message.contains("without a valid acknowledgement"), "{}", fault.message);
    central.set(Behaviour::Ack);
    rig.wait_drained(Duration::from_secs(10)).await;
    rig.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_a_refusal_not_a_delivery() {
    let central = FakeCentral::start("another-token").await.expect("fake central");
    let rig = Rig::start(&central.url(), 100, Duration::from_secs(5)).await;
    rig.buffer.append(punches::range("DEV-1", 0, 5)).await.expect("append");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rig.buffer.depth(), 5);
    let fault = rig.faults.snapshot().into_iter().find(|f| f.code == faults::AUTH_FAILED).expect("fault");
    assert!(fault.message.contains("unknown agent token"), "{}", fault.message);
    assert_eq!(rig.buffer.stats().expect("stats").dead_letters, 0);
    rig.stop().await;
}

#[tokio::test]
async fn lost_acknowledgements_are_redelivered_and_nothing_is_lost() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    central.set(Behaviour::StoreThenFail);
    let rig = Rig::start(&central.url(), 100, Duration::from_secs(5)).await;
    rig.buffer.append(punches::range("DEV-1", 0, 100)).await.expect("append");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(central.stored_count(), 100, "central committed");
    assert_eq!(rig.buffer.depth(), 100, "but the agent never heard, so it keeps them");
    central.set(Behaviour::Ack);
    rig.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(central.stored_count(), 100);
    assert!(central.deliveries() > 100, "delivered again; central deduplicates by key");
    rig.stop().await;
}

#[tokio::test]
async fn through_a_chaos_proxy_every_punch_arrives() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    let proxy = ChaosProxy::start(
        central.addr(),
        ProxyMode::Chaos { cut_per_mille: 150, stall_per_mille: 150, max_stall_ms: 400 },
        7,
    )
    .await
    .expect("proxy");
    let rig = Rig::start(&format!("http://{}", proxy.addr()), 250, Duration::from_millis(500)).await;
    for chunk in 0..8 {
        rig.buffer.append(punches::range("DEV-1", chunk * 500, (chunk + 1) * 500)).await.expect("append");
        if chunk % 3 == 0 {
            proxy.cut_all();
        }
    }
    rig.wait_drained(Duration::from_secs(90)).await;
    let expected: std::collections::HashSet<_> = punches::range("DEV-1", 0, 4000).iter().map(|p| p.key()).collect();
    assert_eq!(central.stored_keys(), expected, "zero lost");
    assert!(proxy.cuts() > 0, "the proxy did cut connections");
    rig.stop().await;
}

#[tokio::test]
async fn punches_buffered_under_another_site_go_in_batches_of_their_own() {
    let central = FakeCentral::start(TOKEN).await.expect("fake central");
    let rig = Rig::start(&central.url(), 100, Duration::from_secs(5)).await;
    let mut punches = punches::range("DEV-1", 0, 10);
    for punch in &mut punches[4..7] {
        punch.site = "old-site".parse().expect("site");
    }
    rig.buffer.append(punches).await.expect("append");
    rig.wait_drained(Duration::from_secs(10)).await;
    let sizes: Vec<_> = central.received().iter().map(|b| (b.first_seq, b.count)).collect();
    assert_eq!(sizes, [(1, 4), (5, 3), (8, 3)], "a batch per run of one site");
    assert_eq!(central.stored_count(), 10);
    rig.stop().await;
}

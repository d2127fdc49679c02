//! The HTTPS link with TLS: a CA file to trust the server, a client certificate for a server that requires one.

use std::time::Duration;

use edge_agent::forward::{ForwardError, HttpLink, HttpLinkOptions};
use protocol::PunchBatch;
use system_tests::fake_central::FakeCentral;
use system_tests::{punches, tls};

fn batch() -> PunchBatch {
    let items = punches::range("TLS-1", 0, 3)
        .into_iter()
        .zip(1u64..)
        .map(|(punch, seq)| protocol::SequencedPunch { seq, punch })
        .collect();
    PunchBatch::new("agent-1".parse().expect("agent"), punches::SITE.parse().expect("site"), chrono::Utc::now(), items)
}

fn link(url: &str, ca: Option<&std::path::Path>, client: Option<(&std::path::Path, &std::path::Path)>) -> HttpLink {
    HttpLink::new(HttpLinkOptions {
        base_url: url.to_owned(),
        token: "agent-secret".into(),
        ca_file: ca.map(ToOwned::to_owned),
        ca_fingerprint: None,
        client_cert: client.map(|(cert, _)| cert.to_owned()),
        client_key: client.map(|(_, key)| key.to_owned()),
        request_timeout: Duration::from_secs(5),
    })
    .expect("link")
}

#[tokio::test]
async fn ca_file_and_client_certificate_get_a_batch_through_and_their_absence_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = tls::make_pki(dir.path()).expect("test PKI");
    let central = FakeCentral::start_tls("agent-secret", tls::server_config(&pki).expect("server config"))
        .await
        .expect("fake central");
    let url = central.url();
    assert!(url.starts_with("https://localhost:"), "{url}");

    let good = link(&url, Some(&pki.ca), Some((&pki.client_cert, &pki.client_key)));
    let ack = good.send_batch(&batch()).await.expect("delivered over TLS with a client certificate");
    assert_eq!((ack.first_seq, ack.last_seq, ack.acknowledged_up_to()), (1, 3, Some(3)));
    assert_eq!(central.stored_count(), 3);

    let no_client_cert = link(&url, Some(&pki.ca), None);
    let err = no_client_cert.send_batch(&batch()).await.expect_err("the server requires a client certificate");
    assert!(matches!(err, ForwardError::Transport(_)), "{err}");

    let untrusted = link(&url, None, Some((&pki.client_cert, &pki.client_key)));
    let err = untrusted.send_batch(&batch()).await.expect_err("the test CA is not a built-in root");
    assert!(matches!(err, ForwardError::Transport(ref m) if m.contains("certificate")), "{err}");
}

#[test]
fn unreadable_certificate_files_are_named() {
    let err = HttpLink::new(HttpLinkOptions {
        base_url: "https://localhost:1".into(),
        token: "t".into(),
        ca_file: Some("/nonexistent/ca.pem".into()),
        ca_fingerprint: None,
        client_cert: None,
        client_key: None,
        request_timeout: Duration::from_secs(1),
    })
    .expect_err("missing CA file");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

//! The central-api command line and configuration, run as a real process: configuration errors name the key and the
//! file, plain HTTP is refused off loopback, HTTPS works with configured certificates, and the administration
//! commands do what they say.

use std::time::Duration;

use protocol::{AckOutcome, BatchAck, Encoding};
use reqwest::StatusCode;
use system_tests::central::{batch, client, day_at, punches, run_cli, Backend, CentralDb};

fn env_of(db: &CentralDb) -> Vec<(String, String)> {
    db.env()
}

#[tokio::test]
async fn a_wrong_key_in_the_config_file_is_named_with_the_file() {
    let db = CentralDb::new(Backend::Sqlite).await;
    let path = db.dir().join("central.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n[mqtt]\nhost = \"127.0.0.1\"\ngrop = \"x\"\n").unwrap();
    let output = run_cli(&["--config", path.to_str().unwrap(), "serve"], &env_of(&db), None).await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("grop"), "{stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");

    // A missing required key: [tls] without key_file.
    std::fs::write(&path, "[tls]\ncert_file = \"/nonexistent.pem\"\n").unwrap();
    let output = run_cli(&["--config", path.to_str().unwrap(), "migrate"], &env_of(&db), None).await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("key_file") && stderr.contains(path.to_str().unwrap()), "{stderr}");

    // A wrong environment override names the variable.
    let mut env = env_of(&db);
    env.push(("CENTRAL_API_LISTN".into(), "127.0.0.1:0".into()));
    let output = run_cli(&["migrate"], &env, None).await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CENTRAL_API_LISTN") && stderr.contains("listn"), "{stderr}");
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let db = CentralDb::new(Backend::Sqlite).await;
    let output = run_cli(&["serve", "--listen", "0.0.0.0:0"], &env_of(&db), None).await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to serve plain HTTP on 0.0.0.0:0"), "{stderr}");
    assert!(stderr.contains("allow_plain_http"), "{stderr}");
}

#[tokio::test]
async fn https_with_configured_certificates() {
    let db = CentralDb::new(Backend::Sqlite).await;
    db.create_site("plant-1").await.unwrap();
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    let cert_path = db.dir().join("cert.pem");
    let key_path = db.dir().join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let config = db.dir().join("central.toml");
    std::fs::write(
        &config,
        format!("[tls]\ncert_file = {:?}\nkey_file = {:?}\n", cert_path.to_str().unwrap(), key_path.to_str().unwrap()),
    )
    .unwrap();

    let central = db.serve(&[("CENTRAL_API_CONFIG", config.to_str().unwrap())]).await.unwrap();
    assert!(central.url.starts_with("https://127.0.0.1:"), "{}", central.url);
    let https = client(Some(cert_pem.as_bytes()));
    let body = protocol::encode(
        &batch("gate-1", "plant-1", 1, punches("plant-1", "DEV-A", &["1"], day_at(8), 4)),
        Encoding::Bincode,
    )
    .unwrap();
    let response = https
        .post(format!("{}/api/v1/ingest", central.url))
        .bearer_auth(&token)
        .header("content-type", Encoding::BINCODE_CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let ack: BatchAck = protocol::decode(&response.bytes().await.unwrap(), Encoding::Bincode).unwrap();
    assert_eq!(ack.outcome, AckOutcome::Stored { new: 4, duplicates: 0, quarantined: 0 });

    // A client that does not trust the certificate cannot talk to it.
    let untrusting = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    assert!(untrusting.get(format!("{}/healthz", central.url)).send().await.is_err());
}

#[tokio::test]
async fn administration_commands() {
    let db = CentralDb::new(Backend::Sqlite).await;

    let err = db.cli(&["create-site", "plant-1", "--name", "P1", "--time-zone", "Mars/Olympus"]).await.unwrap_err();
    assert!(err.to_string().contains("unknown IANA time zone \"Mars/Olympus\""), "{err}");
    db.create_site("plant-1").await.unwrap();
    let err = db.create_site("plant-1").await.unwrap_err();
    assert!(err.to_string().contains("site \"plant-1\" already exists"), "{err}");

    let err = db.create_agent("gate-1", "nowhere").await.unwrap_err();
    assert!(err.to_string().contains("site \"nowhere\" does not exist"), "{err}");
    let token = db.create_agent("gate-1", "plant-1").await.unwrap();
    assert!(token.starts_with("agt_gate-1_") && token.len() == "agt_gate-1_".len() + 64, "{token}");
    let hash = db.scalar("SELECT count(*) FROM agents WHERE agent_id = 'gate-1' AND length(token_hash) = 32").await;
    assert_eq!(hash.unwrap(), 1, "only a 32-byte hash is stored");
    let login = db.cli(&["mqtt-login", "gate-1"]).await.unwrap();
    let (_, keys) = protocol::AgentKeys::from_token(&token).unwrap();
    assert!(login.contains(&format!("password: {}", keys.broker_password())), "{login}");
    let err = db.cli(&["mqtt-login", "ghost"]).await.unwrap_err();
    assert!(err.to_string().contains("agent ghost does not exist"), "{err}");

    db.cli(&[
        "add-device",
        "CDQ9192960006",
        "--site",
        "plant-1",
        "--direction",
        "in",
        "--kind",
        "zk-tcp",
        "--ip",
        "192.0.2.10",
        "--port",
        "4370",
        "--name",
        "Main gate",
    ])
    .await
    .unwrap();
    let devices = db
        .scalar(
            "SELECT count(*) FROM devices WHERE serial = 'CDQ9192960006' AND direction = 'IN' \
             AND time_zone = 'Asia/Kolkata' AND port = 4370 AND status = 'active'",
        )
        .await
        .unwrap();
    assert_eq!(devices, 1, "the device takes the site's zone by default");
    let err = db.cli(&["add-device", "X1", "--site", "plant-1", "--kind", "telepathy"]).await.unwrap_err();
    assert!(err.to_string().contains("telepathy"), "{err}");

    let err = db.cli_with_stdin(&["create-admin", "root", "--password-stdin"], Some("short\n")).await.unwrap_err();
    assert!(err.to_string().contains("at least 8"), "{err}");
    db.cli_with_stdin(&["create-admin", "root", "--role", "root", "--password-stdin"], Some("a long passphrase\n"))
        .await
        .unwrap();
    let admins = db
        .scalar("SELECT count(*) FROM admins WHERE username = 'root' AND role = 'root' AND password_hash LIKE '$argon2id$%'")
        .await
        .unwrap();
    assert_eq!(admins, 1);

    let out = db.cli(&["migrate"]).await.unwrap();
    assert!(out.contains("migrations applied"), "{out}");
}

#[tokio::test]
async fn sigterm_stops_the_service_cleanly() {
    let db = CentralDb::new(Backend::Sqlite).await;
    let mut central = db.serve(&[]).await.unwrap();
    let pid = central.process.pid().expect("running").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), central.process.wait()).await.expect("exits within 15 s");
    assert!(exit.unwrap().success(), "a SIGTERM is a clean stop, exit code 0");
}

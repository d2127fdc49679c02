//! Issue 12: `central-api tls init` makes a CA and a server certificate signed by it (a self-signed server
//! certificate is refused by rustls as `CaUsedAsEndEntity`); central serves HTTPS with them, and the real agent
//! delivers punches trusting central by the CA file, or by the CA's SHA-256 fingerprint only; a wrong fingerprint is
//! refused with a `link_down` fault naming the pin, and nothing is delivered.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use sqlx::Connection;
use system_tests::central::CentralDb;
use system_tests::harness::Spawned;
use system_tests::pipeline::{agent_config, central_db, Fleet};

/// The value of `key = "..."` in the printed configuration.
fn printed(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("tls init printed no {key}: {out}"))
}

async fn clear_logs(db: &CentralDb) {
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("DELETE FROM all_logs").execute(&mut conn).await.unwrap();
}

/// Starts the agent with `trust` in its `[central]` table; returns it with its local URL.
async fn agent(dir: &std::path::Path, url: &str, token: &str, trust: &str, fleet: &Fleet) -> (Spawned, String) {
    std::fs::create_dir_all(dir).unwrap();
    let central = format!("transport = \"https\"\nurl = \"{url}\"\ntoken = \"{token}\"\n{trust}");
    let config = dir.join("edge-agent.toml");
    std::fs::write(&config, agent_config(&dir.join("data"), &central, fleet)).unwrap();
    let mut agent =
        Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[("RUST_LOG", "error")])
            .unwrap();
    let local = agent.listening_url().await.unwrap();
    (agent, local)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_init_certificates_serve_central_and_agents_trust_them_by_file_or_fingerprint() {
    let (db, token) = central_db().await.unwrap();
    let tls = db.dir().join("tls");
    let out =
        db.cli(&["tls", "init", "--name", "localhost", "--name", "127.0.0.1", "--dir", &tls.to_string_lossy()]).await;
    let out = out.unwrap();
    let (cert, key, ca, fingerprint) = (
        printed(&out, "cert_file"),
        printed(&out, "key_file"),
        printed(&out, "ca_file"),
        printed(&out, "ca_fingerprint"),
    );
    for secret in [key.clone(), tls.join("ca.key").display().to_string()] {
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{secret}");
    }
    assert_eq!(fingerprint.split(':').count(), 32, "{fingerprint}");
    // Run again into the same directory: refused, nothing overwritten.
    let again = db.cli(&["tls", "init", "--name", "localhost", "--dir", &tls.to_string_lossy()]).await.unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");

    let central = db
        .serve(&[("CENTRAL_API_TLS__CERT_FILE", cert.as_str()), ("CENTRAL_API_TLS__KEY_FILE", key.as_str())])
        .await
        .unwrap();
    assert!(central.url.starts_with("https://127.0.0.1:"), "{}", central.url);

    let fleet = Fleet::start(1, 20, 5).await.unwrap();
    let lower = fingerprint.replace(':', "").to_ascii_lowercase();
    for (name, trust) in [("file", format!("ca_file = \"{ca}\"")), ("pin", format!("ca_fingerprint = \"{lower}\""))] {
        clear_logs(&db).await;
        let (mut agent, _) = agent(&db.dir().join(name), &central.url, &token, &trust, &fleet).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while db.all_logs().await < 20 {
            assert!(Instant::now() < deadline, "{name}: punches not delivered over HTTPS within 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(db.all_logs().await, 20, "{name}");
        agent.kill().await.unwrap();
    }

    // A wrong pin: refused, with a fault that names it, and nothing delivered.
    clear_logs(&db).await;
    let wrong = "00".repeat(32);
    let (mut bad, local) =
        agent(&db.dir().join("wrong"), &central.url, &token, &format!("ca_fingerprint = \"{wrong}\""), &fleet).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        let text = reqwest::get(format!("{local}/healthz")).await.unwrap().text().await.unwrap();
        if text.contains("link_down") && text.contains("ca_fingerprint") {
            break text;
        }
        assert!(Instant::now() < deadline, "no link_down fault naming the pin within 30 s: {text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(health.contains(&wrong), "{health}");
    assert_eq!(db.all_logs().await, 0);
    bad.kill().await.unwrap();

    // The configuration check refuses a malformed pin, naming the key.
    let config = db.dir().join("wrong").join("edge-agent.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(&wrong, "not-a-fingerprint");
    std::fs::write(&config, text).unwrap();
    let check = std::process::Command::new(system_tests::harness::binary("edge-agent").unwrap())
        .args(["check-config", &config.to_string_lossy()])
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    assert!(!check.status.success() && printed.contains("central.ca_fingerprint"), "{printed}");
    drop(central);
}

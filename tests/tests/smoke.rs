//! The harness can start a real binary on a random port and talk to it.

use std::time::Duration;

use system_tests::harness::Spawned;

#[tokio::test]
async fn central_api_starts_on_a_random_port_and_answers_healthz() {
    // Its own data directory: a database left by another run (maybe of an older schema) must not decide the result.
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let mut central =
        Spawned::start("central-api", &["serve", "--listen", "127.0.0.1:0"], &[("CENTRAL_API_DATA_DIR", data_dir)])
            .unwrap();
    let url = central.listening_url().await.unwrap();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "the announced port is the real one: {url}");

    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("{url}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");

    central.kill().await.unwrap();
}

#[tokio::test]
async fn a_fresh_postgres_database_is_created_and_dropped() {
    use sqlx::Connection;
    let db = system_tests::services::fresh_postgres().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let (tables,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tables, 0, "the database starts empty");
    conn.close().await.unwrap();
    let url = db.url.clone();
    db.drop_database().await.unwrap();
    assert!(sqlx::PgConnection::connect(&url).await.is_err(), "the database is gone after drop");
}

#[test]
fn the_mqtt_broker_is_reachable() {
    let addr = system_tests::services::require_mqtt();
    assert!(std::net::TcpStream::connect(&addr).is_ok());
}

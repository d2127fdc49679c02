//! The README's first command: the `demo` binary runs central-api, an edge-agent and simulated terminals; punches from
//! every simulated device reach AllLogs within seconds and keep coming; the printed dashboard login works and the
//! dashboard shows the seeded attendance; SIGINT (Ctrl-C) stops every part and the program exits 0.

use std::process::Command;
use std::time::Duration;

use system_tests::demo::count_by_device;
use system_tests::harness::Spawned;

#[tokio::test]
async fn demo_runs_the_whole_pipeline_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let data_text = data.display().to_string();
    let mut demo = Spawned::start(
        "demo",
        &[],
        &[
            ("DEMO_LISTEN", "127.0.0.1:0"),
            ("DEMO_AGENT_LISTEN", "127.0.0.1:0"),
            ("DEMO_DATA_DIR", &data_text),
            ("DEMO_DEVICES", "3"),
        ],
    )
    .expect("start demo");
    let printed_dir = demo.wait_for_line("demo: data in ", Duration::from_secs(60)).await.expect("data dir");
    assert_eq!(printed_dir, data_text);
    let central = demo.wait_for_line("demo: central-api ", Duration::from_secs(10)).await.expect("central url");
    let central_url = central.split_whitespace().next().expect("url").to_owned();
    let agent = demo.wait_for_line("demo: edge-agent ", Duration::from_secs(10)).await.expect("agent url");
    let healthz = agent.split_whitespace().next().expect("healthz url").to_owned();
    let dashboard = demo.wait_for_line("demo: dashboard ", Duration::from_secs(10)).await.expect("dashboard line");
    let dashboard_url = dashboard.split_whitespace().next().expect("dashboard url").to_owned();
    assert_eq!(dashboard_url, format!("{central_url}/dashboard"));
    let password = dashboard
        .trim_end_matches(')')
        .split_once("(login: admin / ")
        .map(|(_, p)| p.to_owned())
        .expect("the login is printed");
    assert!(password.len() >= 12, "a real password: {dashboard}");

    let database = data.join("central").join("central.db");
    let devices = ["DEMO-GATE-1", "DEMO-GATE-2", "DEMO-GATE-3"];
    let start = tokio::time::Instant::now();
    let first = loop {
        assert!(start.elapsed() < Duration::from_secs(60), "not every device's punches reached AllLogs in 60 s");
        let counts = count_by_device(&database).await.unwrap_or_default();
        if devices.iter().all(|d| counts.iter().any(|(serial, n)| serial == d && *n > 0)) {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Punches keep coming: every device's count grows.
    let grown = loop {
        assert!(start.elapsed() < Duration::from_secs(90), "punches stopped arriving: {first:?}");
        let counts = count_by_device(&database).await.expect("count");
        let grew = |d: &str| {
            let before = first.iter().find(|(s, _)| s == d).map_or(0, |(_, n)| *n);
            counts.iter().any(|(s, n)| s == d && *n > before)
        };
        if devices.iter().all(|d| grew(d)) {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(grown.len(), 3, "only the simulated devices punch: {grown:?}");

    let client = reqwest::Client::new();
    let health = client.get(&healthz).send().await.expect("agent healthz");
    assert!(health.status().is_success());
    let metrics = client.get(format!("{central_url}/metrics")).send().await.expect("central metrics");
    assert!(metrics.text().await.expect("text").contains("central_punches_total{outcome=\"new\"}"));

    // The printed login opens the dashboard, which shows the demo site; the seeded history is computed.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let login = browser
        .post(format!("{central_url}/login"))
        .form(&[("username", "admin"), ("password", password.as_str()), ("next", "/dashboard")])
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), reqwest::StatusCode::SEE_OTHER, "the printed login is accepted");
    let cookie = login.headers()["set-cookie"].to_str().expect("cookie").split(';').next().expect("pair").to_owned();
    let page = browser.get(&dashboard_url).header("cookie", &cookie).send().await.expect("dashboard");
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    assert!(page.text().await.expect("html").contains("data-site=\"demo-site\""));
    let rows: serde_json::Value = browser
        .get(format!("{central_url}/api/v1/attendance?site=demo-site&status=P&limit=1000"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("attendance")
        .json()
        .await
        .expect("json");
    let present = rows["items"].as_array().map_or(0, Vec::len);
    assert!(present >= 8 * 10, "three weeks of history for 8 employees give many present days: {present}");

    let pid = demo.pid().expect("pid");
    let int = Command::new("kill").args(["-INT", &pid.to_string()]).status().expect("kill -INT");
    assert!(int.success());
    demo.wait_for_line("demo: stopped", Duration::from_secs(30)).await.expect("every part stopped");
    let exit = tokio::time::timeout(Duration::from_secs(10), demo.wait()).await.expect("exits in time").expect("wait");
    assert!(exit.success(), "clean exit on Ctrl-C: {exit}");
}

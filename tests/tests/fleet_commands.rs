//! Remote commands end to end (issue 17): through the real `central-api serve` and a managed `edge-agent run`, with
//! two zk-sim terminals (one whose log may be cleared, `clear_log_when_acknowledged`, one whose may not) and a
//! simulated push terminal, on HTTPS (long poll, both central backends) and on MQTT (commands topic, PostgreSQL).
//!
//! Every command kind reaches the agent and its effect is asserted: the zk-sim clock set, a pull bringing punches
//! stored on the device without events long before the 300 s poll interval, a re-read since a date, clearing the
//! log only where allowed (refused otherwise, the log kept), a source restarted (a new session), the configuration
//! reloaded, the push commands (set time, re-upload a range, info, and a clock sync) in the push terminal's command
//! log. A command delivered twice is carried out once; a command that expired before the agent could fetch it is
//! reported `expired` and never carried out; a site-wide command fans out to every device of the site it applies
//! to. Commands are scoped: another site's admin neither issues nor sees them (404), a viewer issues none (403).

use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use system_tests::central::Backend;
use system_tests::fleet::{start_agent, wait_until, FleetRig, PushTerminal, Transport};
use system_tests::zk_sim::{SimConfig, ZkSim};

/// Longest wait for one command's result.
const RESULT: Duration = Duration::from_secs(30);
/// The push terminal's serial.
const PUSH: &str = "PUSH-0001";

mod https {
    use super::*;
    system_tests::on_both_backends!(every_command_kind_reaches_the_agent);

    async fn every_command_kind_reaches_the_agent(backend: Backend) {
        super::scenario(backend, Transport::Https).await;
    }
}

mod mqtt {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_command_kind_reaches_the_agent_postgres() {
        super::scenario(Backend::Postgres, Transport::Mqtt).await;
    }
}

system_tests::on_both_backends!(commands_are_scoped);

fn sim(serial: &str, seed: u64) -> SimConfig {
    SimConfig { serial: serial.to_owned(), records: 30, seed, ..SimConfig::default() }
}

/// The device's local wall clock against the true time in its zone, in seconds.
fn clock_error(sim: &ZkSim) -> i64 {
    (sim.clock() - Utc::now().with_timezone(&sim.config().time_zone).naive_local()).num_seconds()
}

fn state(result: &Value) -> &str {
    result["state"].as_str().unwrap_or_default()
}

fn detail(result: &Value) -> &str {
    result["detail"].as_str().unwrap_or_default()
}

async fn scenario(backend: Backend, transport: Transport) {
    let rig = FleetRig::new(backend, transport).await.expect("central");
    let clearable = ZkSim::start(sim("ZSIM-CLEAR", 11)).await.expect("zk-sim");
    let kept = ZkSim::start(sim("ZSIM-KEEP", 12)).await.expect("zk-sim");
    let zk = |sim: &ZkSim, settings: Value| {
        json!({"serial": sim.config().serial, "site_id": "A", "name": sim.config().serial, "kind": "zk-tcp",
            "ip": "127.0.0.1", "port": sim.tcp_addr().port(), "time_zone": "Asia/Kolkata", "settings": settings})
    };
    let devices = [
        zk(&clearable, json!({"poll_interval_secs": 300, "clear_log_when_acknowledged": true})),
        zk(&kept, json!({"poll_interval_secs": 300})),
        json!({"serial": PUSH, "site_id": "A", "name": "Push gate", "kind": "adms", "time_zone": "Asia/Kolkata"}),
    ];
    for device in devices {
        let (status, body) = rig.call(Method::POST, "/api/v1/devices", &rig.admin_a, Some(device)).await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (clear_serial, kept_serial) = (clearable.config().serial.clone(), kept.config().serial.clone());

    // Before the agent ever runs: a command that may wait one second expires undelivered and is never carried out.
    kept.set_clock_offset(3_600);
    let expiring = json!({"device": kept_serial, "action": "sync_clock", "expires_in_secs": 1});
    let expired = rig.run_command(expiring, Duration::from_secs(15)).await;
    assert_eq!(state(&expired), "expired", "{expired}");
    assert_eq!(expired["deliveries"], 0, "{expired}");

    let dir = tempfile::tempdir().expect("tempdir");
    let config = rig.agent_config(dir.path()).expect("agent config");
    let mut agent = start_agent(&config).await.expect("agent");
    let adms_url = agent.wait_for_line("edge-agent adms listening on ", Duration::from_secs(30)).await.expect("adms");
    let push = PushTerminal::start(&adms_url, PUSH);
    for sim in [&clearable, &kept] {
        let (serial, want) = (sim.config().serial.clone(), sim.records().len() as i64);
        wait_until(&format!("{serial}'s log in AllLogs"), Duration::from_secs(30), async || {
            rig.logs_of(&serial).await.unwrap() == want
        })
        .await;
    }
    let expired_id = expired["id"].as_i64().unwrap();
    let again = rig.finished(expired_id, RESULT).await.unwrap();
    assert_eq!(state(&again), "expired", "still expired once the agent runs: {again}");
    assert_eq!(kept.counters().set_times, 0, "the expired command was not carried out");

    // sync_clock: the terminal's clock (an hour off) is set to the agent's.
    assert!(clock_error(&kept) > 3_500);
    let synced = rig.run_command(json!({"device": kept_serial, "action": "sync_clock"}), RESULT).await;
    assert_eq!(state(&synced), "done", "{synced}");
    assert_eq!(kept.counters().set_times, 1);
    assert!(clock_error(&kept).abs() <= 5, "clock now {} s off", clock_error(&kept));
    assert!(synced["deliveries"].as_i64() == Some(1) && synced["delivered_at"].is_string(), "{synced}");

    // The same command id delivered again: reported again, not carried out again.
    kept.set_clock_offset(600);
    let synced_id = synced["id"].as_i64().unwrap();
    rig.deliver_again(synced_id).await.unwrap();
    wait_until("the second delivery", RESULT, async || {
        let c = rig.finished(synced_id, RESULT).await.unwrap();
        c["deliveries"] == 2 && state(&c) == "done"
    })
    .await;
    assert_eq!(kept.counters().set_times, 1, "a command id is carried out once");
    assert!(clock_error(&kept) >= 595, "the clock was not touched again");

    // pull_now: punches stored without realtime events come in now, not at the 300 s poll.
    let before = rig.logs_of(&kept_serial).await.unwrap();
    kept.add_records_silently(3);
    let pulled = rig.run_command(json!({"device": kept_serial, "action": "pull_now"}), RESULT).await;
    assert_eq!(state(&pulled), "done", "{pulled}");
    wait_until("the pulled punches in AllLogs", Duration::from_secs(10), async || {
        rig.logs_of(&kept_serial).await.unwrap() == before + 3
    })
    .await;

    // reread since a date: the ZKTeco log is read again (two more silent punches arrive with it).
    kept.add_records_silently(2);
    let since = kept.records()[0].time.date();
    let reread =
        rig.run_command(json!({"device": kept_serial, "action": "reread", "since": since.to_string()}), RESULT).await;
    assert_eq!(state(&reread), "done", "{reread}");
    assert!(detail(&reread).contains("records from the device"), "{reread}");
    wait_until("the re-read punches in AllLogs", Duration::from_secs(10), async || {
        rig.logs_of(&kept_serial).await.unwrap() == before + 5
    })
    .await;

    // clear_log: refused where clear_log_when_acknowledged is off (the log stays), done where it is on (emptied).
    let refused = rig.run_command(json!({"device": kept_serial, "action": "clear_log"}), RESULT).await;
    assert_eq!(state(&refused), "failed", "{refused}");
    assert!(detail(&refused).contains("clear_log_when_acknowledged"), "{refused}");
    assert_eq!(kept.counters().clears, 0);
    assert_eq!(kept.records().len(), 35, "the log is kept");
    assert!(!clearable.records().is_empty());
    let cleared = rig.run_command(json!({"device": clear_serial, "action": "clear_log"}), RESULT).await;
    assert_eq!(state(&cleared), "done", "{cleared}");
    assert!(clearable.records().is_empty(), "the allowed log is cleared");
    assert_eq!(rig.logs_of(&clear_serial).await.unwrap(), 30, "every cleared record is in AllLogs");

    // restart_source: a new session with the terminal.
    let sessions = kept.counters().sessions;
    let restarted = rig.run_command(json!({"device": kept_serial, "action": "restart_source"}), RESULT).await;
    assert_eq!(state(&restarted), "done", "{restarted}");
    wait_until("a new session after the restart", Duration::from_secs(10), async || {
        kept.counters().sessions > sessions
    })
    .await;

    // reload_config (an agent command, for every agent of the site).
    let (status, ids, body) =
        rig.command(&rig.admin_a, json!({"site_id": "A", "action": "reload_config"})).await.unwrap();
    assert_eq!((status, ids.len()), (StatusCode::CREATED, 1), "{body}");
    let reloaded = rig.finished(ids[0], RESULT).await.unwrap();
    assert_eq!(state(&reloaded), "done", "{reloaded}");
    let version = rig.site_version().await.unwrap();
    assert!(detail(&reloaded).contains(&format!("configuration version {version} reloaded")), "{reloaded}");

    // The push terminal: set time, info, re-upload a range, and a re-read since a date, each in its command log.
    let time = NaiveDateTime::parse_from_str("2026-03-04 05:06:07", "%Y-%m-%d %H:%M:%S").unwrap();
    let set = json!({"device": PUSH, "action": "push_set_time", "time": "2026-03-04T05:06:07"});
    let set = rig.run_command(set, RESULT).await;
    assert_eq!(state(&set), "done", "{set}");
    let packed = edge_agent::zk::time::encode(time);
    assert_eq!(push.sim.lock().await.clock_set_to, Some(packed), "the terminal's clock was set to {time}");
    let info = rig.run_command(json!({"device": PUSH, "action": "push_info"}), RESULT).await;
    assert_eq!(state(&info), "done", "{info}");
    assert_eq!(push.count("INFO"), 1);
    let reupload = json!({"device": PUSH, "action": "push_reupload", "from": "2026-03-01T00:00:00",
        "until": "2026-03-02T23:59:59"});
    let reupload = rig.run_command(reupload, RESULT).await;
    assert_eq!(state(&reupload), "done", "{reupload}");
    let queries: Vec<String> =
        push.commands().into_iter().filter(|c| c.starts_with("DATA QUERY ATTLOG")).collect::<Vec<_>>();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert!(queries[0].contains("StartTime=2026-03-01 00:00:00"), "{queries:?}");
    let reread = rig.run_command(json!({"device": PUSH, "action": "reread", "since": "2026-02-01"}), RESULT).await;
    assert_eq!(state(&reread), "done", "{reread}");
    assert!(push.commands().iter().any(|c| c.contains("StartTime=2026-02-01 00:00:00")), "{:?}", push.commands());

    // A site-wide clock sync fans out to every device it applies to: both terminals and the push terminal.
    clearable.set_clock_offset(-900);
    let (status, ids, body) = rig.command(&rig.admin_a, json!({"site_id": "A", "action": "sync_clock"})).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut targets: Vec<String> =
        body["commands"].as_array().unwrap().iter().map(|c| c["device_serial"].as_str().unwrap().to_owned()).collect();
    targets.sort();
    let mut want = vec![clear_serial.clone(), kept_serial.clone(), PUSH.to_owned()];
    want.sort();
    assert_eq!(targets, want);
    for id in ids {
        let result = rig.finished(id, RESULT).await.unwrap();
        assert_eq!(state(&result), "done", "{result}");
    }
    assert_eq!((clearable.counters().set_times, kept.counters().set_times), (1, 2));
    assert!(clock_error(&clearable).abs() <= 5 && clock_error(&kept).abs() <= 5);
    assert_eq!(push.count("SET OPTIONS DateTime="), 2, "{:?}", push.commands());

    // Everything is in the history, newest first.
    let (status, history) = rig.call(Method::GET, "/api/v1/commands?site=A", &rig.viewer_a, None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let states: Vec<&str> = history.as_array().unwrap().iter().map(state).collect();
    assert!(states.len() >= 15 && states.contains(&"expired") && states.contains(&"failed"), "{states:?}");
    drop(push);
    agent.kill().await.expect("stop the agent");
    rig.cleanup().await;
}

async fn commands_are_scoped(backend: Backend) {
    let rig = FleetRig::new(backend, Transport::Https).await.expect("central");
    let device = json!({"serial": "GATE-9", "site_id": "A", "name": "Gate 9", "kind": "zk-tcp", "ip": "10.1.2.9"});
    let (status, body) = rig.call(Method::POST, "/api/v1/devices", &rig.admin_a, Some(device)).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let one = json!({"device": "GATE-9", "action": "pull_now"});
    let site = json!({"site_id": "A", "action": "pull_now"});
    for body in [&one, &site] {
        let (status, ids, _) = rig.command(&rig.admin_b, body.clone()).await.unwrap();
        assert_eq!((status, ids.len()), (StatusCode::NOT_FOUND, 0), "another site's admin: {body}");
        let (status, ids, _) = rig.command(&rig.viewer_a, body.clone()).await.unwrap();
        assert_eq!((status, ids.len()), (StatusCode::FORBIDDEN, 0), "a viewer: {body}");
    }
    let (status, ids, answer) = rig.command(&rig.admin_a, one.clone()).await.unwrap();
    assert_eq!((status, ids.len()), (StatusCode::CREATED, 1), "{answer}");
    let id = ids[0];
    assert_eq!(state(&answer["commands"][0]), "pending");

    let path = format!("/api/v1/commands/{id}");
    let (status, _) = rig.call(Method::GET, &path, &rig.admin_b, None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "another site's admin does not see the command");
    let (status, _) = rig.call(Method::GET, "/api/v1/commands?site=A", &rig.admin_b, None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, listed) = rig.call(Method::GET, "/api/v1/commands", &rig.admin_b, None).await.unwrap();
    assert_eq!((status, listed.as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{listed}");
    for who in [&rig.viewer_a, &rig.admin_a, &rig.root] {
        let (status, shown) = rig.call(Method::GET, &path, who, None).await.unwrap();
        assert_eq!((status, shown["id"].as_i64()), (StatusCode::OK, Some(id)), "the site's own people see it");
    }

    // Bad requests name the field, never a 5xx.
    let refused = [
        (json!({"device": "GATE-9", "action": "reboot"}), "action"),
        (json!({"device": "GATE-9", "action": "push_info"}), "action"),
        (json!({"device": "GATE-9", "action": "reread", "since": "yesterday"}), "since"),
        (json!({"action": "pull_now"}), "device"),
        (json!({"device": "NOPE", "action": "pull_now"}), "device"),
    ];
    for (body, field) in refused {
        let (status, _, answer) = rig.command(&rig.admin_a, body.clone()).await.unwrap();
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{body} -> {status} {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{body}: the refusal names {field}: {message}");
    }
    rig.cleanup().await;
}

//! Interop: pyzk 0.9 from PyPI (a client we did not write) reads users, attendance and time from our simulator, for
//! every record layout, with and without a comm key, over TCP and UDP; it must get exactly what the simulator holds.
//! Needs the virtualenv `.ci/test` creates (`PYZK_PYTHON`); fails, never skips, without it.

use edge_agent::zk::{RecordLayout, UserLayout};
use serde_json::Value;
use system_tests::zk_sim::{SimConfig, ZkSim};

fn attendance_rows(json: &Value) -> Vec<(String, String, u8, u8)> {
    json["attendance"]
        .as_array()
        .expect("attendance list")
        .iter()
        .map(|a| {
            let code = |k: &str| u8::try_from(a[k].as_u64().expect("a number")).expect("a byte");
            (
                a["user_id"].as_str().unwrap().to_owned(),
                a["timestamp"].as_str().unwrap().to_owned(),
                code("verify"),
                code("state"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzk_reads_exactly_what_the_simulator_holds() {
    let python = system_tests::pyzk::python().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(python.is_file(), "PYZK_PYTHON points at {}, which does not exist", python.display());
    let layouts = [
        (RecordLayout::Short, UserLayout::Small),
        (RecordLayout::Medium, UserLayout::Small),
        (RecordLayout::Long, UserLayout::Large),
    ];
    for (record_layout, user_layout) in layouts {
        for comm_key in [0, 4_242] {
            let config =
                SimConfig { records: 3_000, users: 25, record_layout, user_layout, comm_key, ..SimConfig::default() };
            let sim = ZkSim::start(config).await.unwrap();
            for udp in [false, true] {
                let what = format!("{record_layout:?}/{user_layout:?} key {comm_key} udp {udp}");
                let addr = if udp { sim.udp_addr() } else { sim.tcp_addr() };
                let json =
                    tokio::task::spawn_blocking(move || system_tests::pyzk::read_device(addr, comm_key, udp, false))
                        .await
                        .unwrap()
                        .unwrap_or_else(|e| panic!("{what}: {e:#}"));

                assert_eq!(json["serial"], "SIM0000000001", "{what}");
                let users: Vec<(u64, String, String, u64)> = json["users"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| {
                        (
                            u["uid"].as_u64().unwrap(),
                            u["user_id"].as_str().unwrap().to_owned(),
                            u["name"].as_str().unwrap().to_owned(),
                            u["card"].as_u64().unwrap(),
                        )
                    })
                    .collect();
                let expected_users: Vec<_> =
                    sim.users().into_iter().map(|u| (u64::from(u.uid), u.user_id, u.name, u64::from(u.card))).collect();
                assert_eq!(users, expected_users, "{what}");

                let expected: Vec<_> = sim
                    .expected()
                    .into_iter()
                    .map(|(pin, time, verify, state, _)| {
                        (pin, time.format("%Y-%m-%dT%H:%M:%S").to_string(), verify, state)
                    })
                    .collect();
                assert_eq!(attendance_rows(&json), expected, "{what}");

                let device_time =
                    chrono::NaiveDateTime::parse_from_str(json["time"].as_str().unwrap(), "%Y-%m-%dT%H:%M:%S").unwrap();
                let skew = (device_time - sim.clock()).num_seconds().abs();
                assert!(skew <= 5, "{what}: pyzk read time {device_time}, simulator clock {}", sim.clock());
            }
            assert_eq!(sim.counters().auth_failures, 0, "pyzk's comm key was accepted");
            assert!(sim.counters().chunk_reads > 0, "pyzk used buffered chunk reads");
        }
    }
}

//! Users and fingerprint templates through our ZKTeco client and the user jobs, against the simulator in both user
//! record sizes (28 and 72 bytes), over TCP and UDP: set (add and replace), delete, read a person's templates from
//! one device and write them to another; and pyzk 0.9 (a client we did not write) reads back what we wrote. Needs the
//! pyzk virtualenv `.ci/test` creates (`PYZK_PYTHON`); fails, never skips, without it.

use std::time::Duration;

use edge_agent::zk::jobs::{ZkJob, ZkJobOutput};
use edge_agent::zk::templates::Template;
use edge_agent::zk::user_jobs::{self, JobFailure};
use edge_agent::zk::{RecordLayout, Timeouts, TransportKind, UserLayout, ZkClient};
use protocol::{DeviceUser, Pin, UserUpdate, UsersReport};
use system_tests::zk_sim::{SimConfig, ZkSim};

async fn connect(sim: &ZkSim, transport: TransportKind) -> ZkClient {
    let addr = match transport {
        TransportKind::Tcp => sim.tcp_addr(),
        TransportKind::Udp => sim.udp_addr(),
    };
    let timeouts = Timeouts { connect: Duration::from_secs(3), request: Duration::from_secs(3) };
    ZkClient::connect(&addr.to_string(), transport, sim.config().comm_key, timeouts).await.expect("connect")
}

async fn run(sim: &ZkSim, transport: TransportKind, job: ZkJob) -> Result<ZkJobOutput, String> {
    let mut client = connect(sim, transport).await;
    let out = user_jobs::run(&mut client, job).await.map_err(|e| match e {
        JobFailure::Refused(m) => m,
        JobFailure::Poll(e) => format!("connection: {e}"),
    });
    client.exit().await;
    out
}

fn pin(s: &str) -> Pin {
    s.parse().unwrap()
}

fn user(p: &str, name: &str, card: u32, privilege: u8) -> DeviceUser {
    DeviceUser { pin: pin(p), name: name.into(), card, privilege }
}

/// A user to write with every field known to central.
fn update(p: &str, name: &str, card: u32, privilege: u8) -> UserUpdate {
    UserUpdate { pin: pin(p), name: name.into(), card: Some(card), privilege: Some(privilege) }
}

fn report(out: ZkJobOutput) -> UsersReport {
    let ZkJobOutput::Users(report) = out else { panic!("not a users report: {out:?}") };
    report
}

fn fingers() -> Vec<Template> {
    vec![
        Template { finger: 0, valid: 1, data: (0..1_400u32).map(|i| (i * 7 % 251) as u8).collect() },
        Template { finger: 6, valid: 1, data: (0..900u32).map(|i| (i * 13 % 253) as u8).collect() },
    ]
}

fn config(layout: UserLayout, serial: &str, comm_key: u32) -> SimConfig {
    let record_layout = if layout == UserLayout::Small { RecordLayout::Short } else { RecordLayout::Long };
    SimConfig {
        serial: serial.into(),
        users: 12,
        records: 10,
        user_layout: layout,
        record_layout,
        comm_key,
        ..SimConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_templates_are_written_deleted_and_copied_in_both_layouts() {
    system_tests::pyzk::python().unwrap_or_else(|e| panic!("{e:#}"));
    for layout in [UserLayout::Small, UserLayout::Large] {
        for transport in [TransportKind::Tcp, TransportKind::Udp] {
            let what = format!("{layout:?} over {transport:?}");
            let key = if transport == TransportKind::Udp { 0 } else { 4_242 };
            let a = ZkSim::start(config(layout, "SIMA", key)).await.unwrap();
            let b = ZkSim::start(config(layout, "SIMB", key)).await.unwrap();
            let existing = a.users()[1].clone();
            let before = a.users().len();

            // Set: one new person, one existing one renamed (same uid, new card).
            let users = vec![update("4242", "Nadia Rahmanova", 99, 0), update(&existing.user_id, "Renamed", 5, 2)];
            let out = run(&a, transport, ZkJob::SetUsers(users)).await.unwrap_or_else(|e| panic!("{what}: {e}"));
            let done = report(out);
            assert!(done.summary.contains("1 added, 1 replaced") && done.refused.is_empty(), "{what}: {done:?}");
            assert_eq!(a.users().len(), before + 1, "{what}");
            let nadia = a.user_by_pin("4242").unwrap_or_else(|| panic!("{what}: 4242 not written"));
            let expected_name = if layout == UserLayout::Small { "Nadia Ra" } else { "Nadia Rahmanova" };
            assert_eq!((nadia.name.as_str(), nadia.card, nadia.privilege), (expected_name, 99, 0), "{what}");
            assert_eq!(nadia.uid, 13, "{what}: the uid after the 12 the device holds");
            let renamed = a.user_by_pin(&existing.user_id).unwrap();
            assert_eq!((renamed.uid, renamed.name.as_str(), renamed.card), (existing.uid, "Renamed", 5), "{what}");
            assert_eq!(a.counters().user_writes, 2, "{what}");

            // Read the fingers enrolled on A, write them (with the person) to B.
            a.enroll_fingers(nadia.uid, &fingers());
            a.enroll_fingers(existing.uid, &fingers()[..1]);
            let out = run(&a, transport, ZkJob::ReadTemplates(pin("4242"))).await.unwrap();
            let ZkJobOutput::Templates(read_user, read) = out else { panic!("{what}: {out:?}") };
            assert_eq!(read, fingers(), "{what}: only 4242's fingers, byte for byte");
            assert_eq!((read_user.pin.as_str(), read_user.card), ("4242", 99), "{what}");
            run(&b, transport, ZkJob::WriteTemplates(read_user, read)).await.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(b.templates_of("4242"), fingers(), "{what}");
            let on_b = b.user_by_pin("4242").unwrap();
            assert_eq!(on_b.uid, 13, "{what}: the next uid on B");
            assert_eq!(b.counters().template_uploads, 1, "{what}");

            // pyzk reads back exactly what we wrote, over the same transport.
            let udp = transport == TransportKind::Udp;
            let json = tokio::task::spawn_blocking({
                let addr = if udp { b.udp_addr() } else { b.tcp_addr() };
                move || system_tests::pyzk::read_users(addr, key, udp)
            })
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{what}: {e:#}"));
            let py_user = json["users"].as_array().unwrap().iter().find(|u| u["user_id"] == "4242").cloned();
            let py_user = py_user.unwrap_or_else(|| panic!("{what}: pyzk does not see 4242: {json}"));
            assert_eq!((py_user["name"].as_str(), py_user["card"].as_u64()), (Some(expected_name), Some(99)));
            let py_templates: Vec<(u64, u64, String)> = json["templates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    (t["uid"].as_u64().unwrap(), t["fid"].as_u64().unwrap(), t["template"].as_str().unwrap().into())
                })
                .collect();
            let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
            let expected: Vec<(u64, u64, String)> =
                fingers().iter().map(|f| (13, u64::from(f.finger), hex(&f.data))).collect();
            assert_eq!(py_templates, expected, "{what}");

            // Delete: 4242 and its fingers go; a PIN that is not there is not an error.
            let out = run(&a, transport, ZkJob::DeleteUsers(vec![pin("4242"), pin("999999")])).await.unwrap();
            let ZkJobOutput::Done(detail) = out else { panic!("{what}: {out:?}") };
            assert!(detail.contains("deleted 1 users") && detail.contains("1 were not on the device"), "{detail}");
            assert!(a.user_by_pin("4242").is_none(), "{what}");
            assert!(a.templates().iter().all(|t| t.uid != nadia.uid), "{what}: its fingers went with it");
            assert_eq!(a.templates().len(), 1, "{what}: another person's finger stays");
            let json = tokio::task::spawn_blocking({
                let addr = if udp { a.udp_addr() } else { a.tcp_addr() };
                move || system_tests::pyzk::read_users(addr, key, udp)
            })
            .await
            .unwrap()
            .unwrap();
            assert!(json["users"].as_array().unwrap().iter().all(|u| u["user_id"] != "4242"), "{what}: {json}");
            assert_eq!(json["users"].as_array().unwrap().len(), before, "{what}");

            // Reading the fingers of someone the device does not hold fails by name.
            let err = run(&a, transport, ZkJob::ReadTemplates(pin("4242"))).await.unwrap_err();
            assert!(err.contains("4242 is not on the device"), "{what}: {err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_layout_cannot_hold_is_refused_by_name_and_the_rest_written() {
    let sim = ZkSim::start(config(UserLayout::Small, "SIMS", 0)).await.unwrap();
    let users = vec![update("E77", "Letters", 1, 0), update("0077", "Seventy", 1, 0)];
    let partial = report(run(&sim, TransportKind::Tcp, ZkJob::SetUsers(users)).await.unwrap());
    assert_eq!(partial.written, 1, "{partial:?}");
    assert_eq!(partial.refused.len(), 1, "{partial:?}");
    assert_eq!(partial.refused[0].pin, "E77");
    assert!(partial.refused[0].reason.contains("28-byte"), "{partial:?}");
    assert_eq!(sim.user_by_pin("77").map(|u| u.name), Some("Seventy".to_owned()), "a 28-byte PIN is a number");

    let large = ZkSim::start(config(UserLayout::Large, "SIML", 0)).await.unwrap();
    let long = "7".repeat(25);
    let none = report(run(&large, TransportKind::Tcp, ZkJob::SetUsers(vec![update(&long, "X", 1, 0)])).await.unwrap());
    assert_eq!(none.written, 0);
    assert!(none.refused[0].reason.contains("at most 24"), "{none:?}");
    let too_many: Vec<Template> = (0..11).map(|f| Template { finger: f % 10, valid: 1, data: vec![1; 10] }).collect();
    let err =
        run(&large, TransportKind::Tcp, ZkJob::WriteTemplates(user("4242", "X", 0, 0), too_many)).await.unwrap_err();
    assert!(err.contains("11 templates"), "{err}");
    assert_eq!(large.counters().template_uploads, 0);
}

/// Card and privilege: what central sets is written (and read back by pyzk), what it leaves out the device keeps, so
/// an administrator enrolled on the terminal is not demoted by a push that does not know them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privilege_or_card_central_does_not_know_is_kept_and_one_it_sets_is_written() {
    system_tests::pyzk::python().unwrap_or_else(|e| panic!("{e:#}"));
    for layout in [UserLayout::Small, UserLayout::Large] {
        let what = format!("{layout:?}");
        let sim = ZkSim::start(config(layout, "SIMP", 0)).await.unwrap();
        let admin = update("5150", "Site Admin", 4_822_257, 14);
        report(run(&sim, TransportKind::Tcp, ZkJob::SetUsers(vec![admin])).await.unwrap());
        let unknown = UserUpdate { pin: pin("5150"), name: "Site Admin".into(), card: None, privilege: None };
        let kept = report(run(&sim, TransportKind::Tcp, ZkJob::SetUsers(vec![unknown])).await.unwrap());
        assert_eq!(kept.written, 1, "{what}: {kept:?}");
        let on_device = sim.user_by_pin("5150").unwrap();
        assert_eq!((on_device.privilege, on_device.card), (14, 4_822_257), "{what}: kept");
        let json = tokio::task::spawn_blocking({
            let addr = sim.tcp_addr();
            move || system_tests::pyzk::read_users(addr, 0, false)
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        let py = json["users"].as_array().unwrap().iter().find(|u| u["user_id"] == "5150").cloned().unwrap();
        assert_eq!((py["privilege"].as_u64(), py["card"].as_u64()), (Some(14), Some(4_822_257)), "{what}: {py}");
        // Central sets a level: it wins, a demotion included.
        let demoted = UserUpdate { privilege: Some(2), card: Some(77), ..update("5150", "Site Admin", 1, 0) };
        report(run(&sim, TransportKind::Tcp, ZkJob::SetUsers(vec![demoted])).await.unwrap());
        let on_device = sim.user_by_pin("5150").unwrap();
        assert_eq!((on_device.privilege, on_device.card), (2, 77), "{what}: central's values");
        // A new user without them is an ordinary user with no card.
        let new = UserUpdate { pin: pin("5151"), name: "New".into(), card: None, privilege: None };
        report(run(&sim, TransportKind::Tcp, ZkJob::SetUsers(vec![new])).await.unwrap());
        let on_device = sim.user_by_pin("5151").unwrap();
        assert_eq!((on_device.privilege, on_device.card), (0, 0), "{what}");
    }
}

//! The golden packets from pyzk's test.py (captured from real devices) decode as the devices meant them, and the
//! packets we send are byte-for-byte what pyzk sends.

use std::collections::HashMap;

use chrono::NaiveDate;
use edge_agent::zk::auth::{comm_key, DEFAULT_TICKS};
use edge_agent::zk::buffer::{
    parse_prepare_buffer_reply, prepare_buffer_request, BufferReply, ChunkAssembler, ChunkProgress,
};
use edge_agent::zk::command;
use edge_agent::zk::event::parse_attlog;
use edge_agent::zk::packet::{Framing, Packet, TcpFrameDecoder};
use edge_agent::zk::records::DeviceUser;
use edge_agent::zk::sizes::DeviceSizes;
use edge_agent::zk::users::parse_users;

fn fixtures() -> HashMap<String, Vec<u8>> {
    let text = include_str!("fixtures/pyzk-golden.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (name, hex) = line.split_once(" = ").expect("name = hex");
            let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            (name.to_owned(), bytes)
        })
        .collect()
}

/// Every frame in a TCP byte stream, fed in pieces of `step` bytes.
fn frames(stream: &[u8], step: usize) -> Vec<Packet> {
    let mut decoder = TcpFrameDecoder::new();
    let mut out = Vec::new();
    for piece in stream.chunks(step) {
        decoder.extend(piece);
        while let Some(packet) = decoder.next_frame().expect("a valid frame") {
            out.push(packet);
        }
    }
    assert_eq!(decoder.buffered(), 0, "no bytes left over");
    out
}

fn one_frame(bytes: &[u8]) -> Packet {
    let mut all = frames(bytes, bytes.len());
    assert_eq!(all.len(), 1);
    all.remove(0)
}

#[test]
fn client_packets_are_what_pyzk_sends() {
    let f = fixtures();
    assert_eq!(Packet::new(command::CONNECT, 0, 0, vec![]).encode(Framing::Tcp), f["client.connect_tcp"]);
    assert_eq!(Packet::new(command::CONNECT, 0, 0, vec![]).encode(Framing::Udp), f["client.connect_udp"]);
    assert_eq!(Packet::new(command::EXIT, 0xfb2f, 1, vec![]).encode(Framing::Tcp), f["client.exit_tcp"]);
    assert_eq!(Packet::new(command::EXIT, 0xfb2f, 1, vec![]).encode(Framing::Udp), f["client.exit_udp"]);
    let auth12 = Packet::new(command::AUTH, 0x45cf, 1, comm_key(12, 0x45cf, DEFAULT_TICKS).to_vec());
    assert_eq!(auth12.encode(Framing::Tcp), f["client.auth_key12"]);
    let auth45 = Packet::new(command::AUTH, 0x45cf, 1, comm_key(45, 0x45cf, DEFAULT_TICKS).to_vec());
    assert_eq!(auth45.encode(Framing::Tcp), f["client.auth_key45"]);
    assert_eq!(Packet::new(command::EXIT, 0x45cf, 2, vec![]).encode(Framing::Tcp), f["client.exit_after_auth"]);
    assert_eq!(Packet::new(command::GET_FREE_SIZES, 0x45cf, 2, vec![]).encode(Framing::Tcp), f["client.get_sizes"]);
    let users = prepare_buffer_request(command::USERTEMP_RRQ, command::FCT_USER, 0);
    assert_eq!(
        Packet::new(command::PREPARE_BUFFER, 0x45cf, 0x14, users.clone()).encode(Framing::Tcp),
        f["client.prepare_buffer_users"]
    );
    assert_eq!(
        Packet::new(command::PREPARE_BUFFER, 0x2058, 0x14, users).encode(Framing::Tcp),
        f["client.prepare_buffer_users_k20"]
    );
}

#[test]
fn connect_and_auth_answers() {
    let f = fixtures();
    let ok = one_frame(&f["device.ack_ok_tcp"]);
    assert_eq!((ok.command, ok.session, ok.reply_id), (command::ACK_OK, 0xfb2f, 0));
    assert_eq!(Packet::parse(&f["device.ack_ok_udp"]).unwrap(), ok);
    let unauth = one_frame(&f["device.unauth"]);
    assert_eq!((unauth.command, unauth.session), (command::ACK_UNAUTH, 0x45cf));
    let again = one_frame(&f["device.unauth_again"]);
    assert_eq!((again.command, again.reply_id), (command::ACK_UNAUTH, 1));
    let auth_ok = one_frame(&f["device.auth_ok"]);
    assert_eq!((auth_ok.command, auth_ok.session, auth_ok.reply_id), (command::ACK_OK, 0x45cf, 1));
}

#[test]
fn sizes_answers_of_two_devices() {
    let f = fixtures();
    let a = Packet::parse(&f["device.sizes_a"]).unwrap();
    let sizes = DeviceSizes::parse(&a.data);
    assert_eq!((sizes.users, sizes.fingerprints, sizes.records), (Some(7), Some(6), Some(605)));
    assert_eq!(
        (sizes.user_capacity, sizes.fingerprint_capacity, sizes.record_capacity),
        (Some(10_000), Some(3_000), Some(100_000))
    );
    assert_eq!(sizes.face_capacity, None, "this answer stops before the face capacity");
    let k20 = DeviceSizes::parse(&one_frame(&f["device.sizes_k20"]).data);
    assert_eq!((k20.users, k20.records, k20.op_log), (Some(2), Some(0), Some(7)));
    assert_eq!((k20.user_capacity, k20.record_capacity, k20.users_remaining), (Some(500), Some(50_000), Some(498)));
    let b = DeviceSizes::parse(&one_frame(&f["device.sizes_b"]).data);
    assert_eq!(b.users, Some(70));
}

#[test]
fn inline_user_answers() {
    let f = fixtures();
    let seven = one_frame(&f["device.users_inline_7"]);
    let BufferReply::Inline(dataset) = parse_prepare_buffer_reply(seven).unwrap() else { panic!("inline DATA") };
    let users = parse_users(&dataset, Some(7)).unwrap();
    assert_eq!(users.len(), 7);
    assert_eq!((users[3].uid, users[3].user_id.as_str(), users[3].name.as_str()), (4, "831", ""));
    assert_eq!(users[0].privilege, 14);

    let k20 = frames(&f["device.users_k20"], 112);
    let BufferReply::Inline(dataset) = parse_prepare_buffer_reply(k20[0].clone()).unwrap() else {
        panic!("inline DATA")
    };
    let users = parse_users(&dataset, Some(2)).unwrap();
    assert_eq!((users[0].user_id.as_str(), users[0].name.as_str()), ("100001lp", "cfulano"));
    assert_eq!((users[1].uid, users[1].user_id.as_str(), users[1].name.as_str()), (2, "222222cb", "rmengano"));
}

#[test]
fn staged_users_arrive_in_1008_byte_data_packets() {
    let f = fixtures();
    let staged = one_frame(&f["device.prepare_buffer_staged_5044"]);
    assert_eq!(parse_prepare_buffer_reply(staged).unwrap(), BufferReply::Staged(5044));
    // The device split its answer into 1008-byte DATA packets; the stream must frame the same whatever the reads.
    for step in [1, 100, 256, 1016, 4096] {
        let packets = frames(&f["device.users_chunk_stream"], step);
        assert_eq!(packets.len(), 7);
        let mut assembler = ChunkAssembler::new("READ_BUFFER", 5044);
        let mut dataset = None;
        for packet in packets {
            if let ChunkProgress::Complete(data) = assembler.push(packet).unwrap() {
                dataset = Some(data);
            }
        }
        let users = parse_users(&dataset.expect("complete"), Some(70)).unwrap();
        assert_eq!(users.len(), 70);
        assert_eq!((users[1].uid, users[1].user_id.as_str(), users[1].name.as_str()), (2, "3494866", "NievesLopez"));
    }
}

#[test]
fn realtime_attendance_events() {
    let f = fixtures();
    let twelve = Packet::parse(&f["event.attlog_12"]).expect("a valid checksum");
    assert_eq!((twelve.command, twelve.session, twelve.reply_id), (command::REG_EVENT, command::EF_ATTLOG, 0));
    let event = parse_attlog(&twelve.data).unwrap();
    assert_eq!(event.user, DeviceUser::Pin("4822257".into()));
    assert_eq!(event.time, NaiveDate::from_ymd_opt(2018, 12, 7).unwrap().and_hms_opt(19, 9, 6).unwrap());
    // test.py copied this one's header from the other event, so only its payload is a fact.
    let thirty_two = Packet::parse_unverified(&f["event.attlog_32"]).unwrap();
    let event = parse_attlog(&thirty_two.data).unwrap();
    assert_eq!((event.user, event.verify, event.state), (DeviceUser::Pin("1140064".into()), 15, 0));
    assert_eq!(event.time, NaiveDate::from_ymd_opt(2018, 11, 29).unwrap().and_hms_opt(12, 55, 3).unwrap());
}

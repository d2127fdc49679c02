use super::*;

const GOOD: &str = r#"
[agent]
id = "plant1-gate"
site = "plant-1"
data_dir = "/var/lib/edge-agent"

[central]
transport = "https"
url = "https://central.example.com"
token = "secret"

[buffer]
max_disk_mb = 100
key_retention_days = 30

[[device]]
kind = "zk"
serial = "CDQ9192960006"
name = "Main gate"
time_zone = "Asia/Kolkata"
direction = "in"
host = "192.168.1.201"

[[device]]
kind = "serial"
serial = "RS485-1"
time_zone = "Europe/London"
port = "/dev/ttyUSB0"
delimiter = ","
pin_field = 0
time_field = 1
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/edge-agent/agent.toml"))
}

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(_) => panic!("expected problems"),
        Err(e) => e.problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect(),
    }
}

#[test]
fn a_good_file_parses_with_defaults_filled_in() {
    let config = parse(GOOD).expect("valid");
    assert_eq!(config.agent.id.as_str(), "plant1-gate");
    assert_eq!(config.buffer.max_disk_bytes, 100 * 1024 * 1024);
    assert_eq!(config.buffer.key_retention, Duration::from_secs(30 * 86_400));
    assert_eq!(config.forward.max_batch, 5000);
    assert_eq!(config.status.interval, Duration::from_secs(30));
    assert_eq!(config.metrics.listen, "127.0.0.1:9187".parse().expect("addr"));
    assert_eq!(config.devices.len(), 2);
    assert_eq!(config.devices[0].direction, Direction::In);
    assert_eq!(config.devices[0].time_zone, chrono_tz::Asia::Kolkata);
    assert!(matches!(&config.devices[0].settings, DeviceSettings::Zk(zk) if zk.port == 4370));
    assert_eq!(config.devices[1].name, "RS485-1");
    assert_eq!(config.buffer_path(), PathBuf::from("/var/lib/edge-agent/buffer"));
}

#[test]
fn every_unknown_key_is_named() {
    let text = GOOD
        .replace("max_disk_mb = 100", "max_disk_mbb = 100")
        .replace("host = \"192.168.1.201\"", "hots = \"192.168.1.201\"\nport = 4370")
        .replace("[central]", "[central]\nretries = 3");
    let found = problems(&text);
    assert!(found.contains(&"buffer.max_disk_mbb: unknown key".to_owned()), "{found:?}");
    assert!(found.contains(&"central.retries: unknown key".to_owned()), "{found:?}");
    // The zk entry misses `host` (a type problem) and has an unknown `hots`.
    assert!(found.iter().any(|p| p.starts_with("device[0]") && p.contains("host")), "{found:?}");
}

#[test]
fn unknown_device_key_is_named_with_its_entry() {
    let text = GOOD.replace("port = \"/dev/ttyUSB0\"", "port = \"/dev/ttyUSB0\"\nparity_bit = \"even\"");
    assert_eq!(problems(&text), ["device[1].parity_bit: unknown key for a serial device"]);
}

#[test]
fn bad_zones_ids_and_values_are_all_reported_together() {
    let text = GOOD
        .replace("Asia/Kolkata", "Asia/Bombayy")
        .replace("id = \"plant1-gate\"", "id = \"plant 1\"")
        .replace("serial = \"RS485-1\"", "serial = \"CDQ9192960006\"")
        .replace("direction = \"in\"", "direction = \"sideways\"")
        .replace("kind = \"serial\"", "kind = \"serial\"\n")
        .replace("url = \"https://central.example.com\"", "url = \"ftp://central\"");
    let found = problems(&text);
    let expect = [
        "agent.id: agent id \"plant 1\" contains ' '",
        "central.url: \"ftp://central\" must start with https:// or http://",
        "device[0].time_zone: unknown IANA time zone \"Asia/Bombayy\"",
        "device[0].direction: \"SIDEWAYS\" is not \"IN\", \"OUT\" or \"BOTH\"",
        "device[1].serial: serial CDQ9192960006 is configured twice",
    ];
    for e in expect {
        assert!(found.iter().any(|p| p.starts_with(e)), "missing {e:?} in {found:?}");
    }
}

#[test]
fn unknown_kind_and_missing_token_are_named() {
    let text = GOOD.replace("kind = \"serial\"", "kind = \"bluetooth\"").replace("token = \"secret\"", "");
    let found = problems(&text);
    assert!(found.iter().any(|p| p.starts_with("device[1].kind: \"bluetooth\" is not")), "{found:?}");
    assert!(found.iter().any(|p| p.starts_with("central.token: the HTTPS transport needs")), "{found:?}");
}

#[test]
fn error_display_names_the_file_on_every_line() {
    let err = parse(&GOOD.replace("[buffer]", "[buffer]\ncolour = 1")).expect_err("invalid");
    let text = err.to_string();
    assert!(text.starts_with("/etc/edge-agent/agent.toml: 1 problem"), "{text}");
    assert!(text.contains("\n  /etc/edge-agent/agent.toml: buffer.colour: unknown key"), "{text}");
}

#[test]
fn syntax_errors_name_the_line() {
    let err = parse("[agent\nid = 1").expect_err("invalid");
    assert_eq!(err.problems.len(), 1);
    assert!(err.problems[0].message.contains("line 1"), "{}", err.problems[0].message);
}

#[test]
fn out_of_range_numbers_are_refused() {
    let found = problems(&GOOD.replace("[buffer]", "[forward]\nmax_batch = 9000\n[buffer]"));
    assert_eq!(found, ["forward.max_batch: 9000 is outside 1..=5000"]);
}

#[test]
fn mqtt_transport_checks_scheme_and_tls_ca() {
    let text = GOOD
        .replace("transport = \"https\"", "transport = \"mqtt\"")
        .replace("url = \"https://central.example.com\"", "url = \"mqtts://broker.example.com:8883\"")
        .replace("token = \"secret\"", &format!("token = \"{MQTT_TOKEN}\""));
    assert_eq!(problems(&text), ["central.ca_file: mqtts:// needs the broker's CA bundle in ca_file"]);
    let plain = text.replace("mqtts://broker.example.com:8883", "mqtt://127.0.0.1:1883");
    assert_eq!(parse(&plain).expect("valid").central.transport, Transport::Mqtt);
}

const MQTT_TOKEN: &str = "agt_plant1-gate_00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn mqtt_needs_this_agents_token() {
    let mqtt = GOOD
        .replace("transport = \"https\"", "transport = \"mqtt\"")
        .replace("url = \"https://central.example.com\"", "url = \"mqtt://127.0.0.1:1883\"");
    assert_eq!(problems(&mqtt), ["central.token: not an agent token: an agent token starts with \"agt_\""]);
    let missing = mqtt.replace("token = \"secret\"", "");
    assert_eq!(
        problems(&missing),
        ["central.token: the MQTT transport signs every message with the agent's token (token or token_file)"]
    );
    let foreign =
        mqtt.replace("token = \"secret\"", &format!("token = \"{}\"", MQTT_TOKEN.replace("plant1-gate", "gate-9")));
    assert_eq!(
        problems(&foreign),
        ["central.token: the token belongs to agent gate-9, not to this agent (plant1-gate)"]
    );
}

#[test]
fn the_shipped_example_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/edge-agent.toml");
    let text = std::fs::read_to_string(&path).expect("configs/edge-agent.toml");
    // The example points at a token file that exists only on a real site.
    let text = text.replace("token_file = \"/etc/edge-agent/token\"", "token = \"example\"");
    let config = Config::parse(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.devices.len() >= 4, "the example shows several devices");
}

const PUSH_SERIAL_MODBUS: &str = r#"
[adms]
listen = "0.0.0.0:8081"
poll_delay_secs = 5

[[device]]
kind = "adms"
serial = "OIN7030067"
time_zone = "Asia/Kolkata"

[[device]]
kind = "serial"
serial = "RS485-2"
time_zone = "Asia/Kolkata"
port = "/dev/ttyUSB1"
baud_rate = 19200
parity = "even"
pattern = "T {time} U{pin} S{state}"

[[device]]
kind = "modbus"
serial = "MB-1"
time_zone = "Asia/Kolkata"
address = "192.168.1.210:502"
counter_register = 0
ring_start = 100
ring_slots = 64
"#;

#[test]
fn push_serial_and_modbus_devices_parse() {
    let config = parse(&format!("{GOOD}{PUSH_SERIAL_MODBUS}")).expect("valid");
    assert_eq!(config.adms.listen, "0.0.0.0:8081".parse().expect("addr"));
    assert_eq!((config.adms.poll_delay_secs, config.adms.max_body_bytes), (5, 4096 * 1024));
    assert_eq!(config.devices.len(), 5);
    assert!(matches!(&config.devices[3].settings, DeviceSettings::Serial(s) if s.baud_rate == 19200));
    assert!(matches!(&config.devices[4].settings, DeviceSettings::Modbus(m) if m.slot_registers == 5));
}

#[test]
fn serial_and_modbus_values_are_checked_by_key() {
    let text = format!("{GOOD}{PUSH_SERIAL_MODBUS}")
        .replace("parity = \"even\"", "parity = \"mark\"\nstop_bits = 3")
        .replace("pattern = \"T {time} U{pin} S{state}\"", "pattern = \"T {when}\"")
        .replace("ring_slots = 64", "ring_slots = 60\ncounter_words = 3\nstate_offset = 9")
        .replace("192.168.1.210:502", "turnstile")
        .replace("listen = \"0.0.0.0:8081\"", "listen = \"everywhere\"");
    let found = problems(&text);
    for expected in [
        "adms.listen: ",
        "device[3].parity: \"mark\" is not",
        "device[3].stop_bits: 3 is not 1 or 2",
        "device[3].pattern: unknown placeholder {when}",
        "device[4].ring_slots: 60 is not a power of two",
        "device[4].counter_words: 3 is not 1 or 2",
        "device[4].state_offset: offset 9",
        "device[4].address: \"turnstile\" is neither",
    ] {
        assert!(found.iter().any(|p| p.starts_with(expected)), "missing {expected:?} in {found:?}");
    }
    let both = GOOD.replace("time_field = 1", "time_field = 1\npattern = \"{pin} {time}\"");
    assert_eq!(problems(&both), ["device[1].pattern: give either pattern or delimiter, not both"]);
}

#[test]
fn plain_http_to_another_machine_is_refused_unless_allowed() {
    let remote = GOOD.replace("https://central.example.com", "http://central.example.com:8080");
    let found = problems(&remote);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("central.url: ") && found[0].contains("allow_plain_http"), "{found:?}");
    let lan = GOOD.replace("https://central.example.com", "http://192.168.1.10:8080");
    assert!(problems(&lan)[0].contains("in clear"));
    let allowed = remote.replace("token = \"secret\"", "token = \"secret\"\nallow_plain_http = true");
    assert!(parse(&allowed).is_ok());
    for local in ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"] {
        let text = GOOD.replace("https://central.example.com", local);
        assert!(parse(&text).is_ok(), "{local} is loopback");
    }
}

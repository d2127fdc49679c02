//! End-to-end test support: starting the real binaries, reaching the real services, device simulators, benches.

pub mod admin;
pub mod adms_sim;
pub mod alert_sinks;
pub mod attendance;
pub mod bench;
pub mod broker;
pub mod browser;
pub mod central;
pub mod dahua_sim;
pub mod demo;
pub mod fake_central;
pub mod harness;
pub mod hik_sim;
pub mod modbus_sim;
pub mod pipeline;
pub mod proxy;
pub mod punches;
pub mod pyzk;
pub mod serial_sim;
pub mod services;
pub mod small_fs;
pub mod terminal_sim;
pub mod tls;
pub mod web_client;
pub mod zk_sim;

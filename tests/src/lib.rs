//! End-to-end test support: starting the real binaries, reaching the real services, device simulators, benches.

pub mod admin;
pub mod attendance;
pub mod bench;
pub mod central;
pub mod fake_central;
pub mod harness;
pub mod proxy;
pub mod punches;
pub mod pyzk;
pub mod services;
pub mod tls;
pub mod zk_sim;

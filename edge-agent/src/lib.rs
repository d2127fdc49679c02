//! The edge agent: device drivers, the durable buffer and the forwarders. The binary in `main.rs` only parses the
//! command line and calls in here.

pub mod agent;
pub mod buffer;
pub mod config;
pub mod device_status;
pub mod faults;
pub mod forward;
pub mod sink;
pub mod zk;

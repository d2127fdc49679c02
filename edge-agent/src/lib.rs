//! The edge agent: device drivers, the durable buffer and the forwarders. The binary in `main.rs` only parses the
//! command line and calls in here.

pub mod adms;
pub mod agent;
pub mod buffer;
pub mod config;
pub mod dahua;
pub mod device_status;
pub mod faults;
pub mod fleet;
pub mod forward;
pub mod hikvision;
pub mod http_terminal;
pub mod logging;
pub mod malloc;
pub mod modbus;
pub mod serial;
pub mod sink;
pub mod sql;
pub mod zk;

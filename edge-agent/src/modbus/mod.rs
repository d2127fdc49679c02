//! Terminals (turnstiles, access controllers) that expose their events over Modbus TCP or RTU.
//!
//! The register map is configured per device (`settings`): an event counter register (how many events the device
//! has ever recorded, 16 or 32 bits, wrapping) and a ring of `ring_slots` event slots, each holding PIN, timestamp,
//! state and optionally verify mode in registers. Event number `n` (counting from 0) sits in slot `n mod ring_slots`.
//!
//! - `ring`: the arithmetic (no I/O): how many events are new since the stored counter, across wrap-around, which
//!   registers to read for them, and decoding a slot;
//! - `poller`: one task per device (tokio-modbus client, TCP or RTU), every call under a timeout; it appends the new
//!   events and only then stores the counter (cursor `modbus.counter` in the buffer), so a restart neither re-reads
//!   nor skips events. On first contact (no stored counter) the whole ring is read.

pub mod poller;
pub mod ring;
pub mod settings;

pub use poller::{run, ModbusDeviceConfig, ModbusTarget};
pub use ring::{RegisterKind, RegisterMap};

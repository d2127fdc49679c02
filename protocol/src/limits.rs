//! Size limits every decoder enforces, so that untrusted bytes can never make a peer allocate without bound.

/// Largest encoded envelope accepted, in bytes, in either encoding.
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;

/// Most punches one batch may carry.
pub const MAX_PUNCHES_PER_BATCH: usize = 5_000;

/// Longest site or agent id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Longest device serial number, in bytes.
pub const MAX_SERIAL_LEN: usize = 64;

/// Longest employee PIN, in bytes (ZKTeco stores at most 24; push firmware is allowed a little more).
pub const MAX_PIN_LEN: usize = 32;

/// Longest free text (reasons, fault messages, versions, command details), in bytes.
pub const MAX_TEXT_LEN: usize = 1_024;

/// Most devices one status envelope may describe.
pub const MAX_DEVICES_PER_STATUS: usize = 1_000;

/// Most faults or command results in one list of a status envelope.
pub const MAX_LIST_ITEMS: usize = 256;

/// Most users one command writes or deletes.
pub const MAX_USERS_PER_COMMAND: usize = 5_000;

/// Longest `[[device]]` entry of a managed configuration, in bytes.
pub const MAX_DEVICE_ENTRY_LEN: usize = 16 * 1024;

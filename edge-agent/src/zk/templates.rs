//! Fingerprint templates: what the device keeps per enrolled finger, read from one terminal and written to others
//! (the anchors' tools copy a person's fingers this way). No I/O.

/// One finger's template as the device stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The finger, 0 to 9.
    pub finger: u8,
    /// 1 for a valid template (ZKTeco also marks duress fingers with other values).
    pub valid: u8,
    /// The template's bytes, as opaque as the device made them.
    pub data: Vec<u8>,
}

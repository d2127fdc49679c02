//! Known vendor schemas: the table and column names a `preset` fills in (keys given in the file win).
//!
//! Sources of the names are recorded in `REFERENCE.md` beside this driver.

/// The names one preset gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub table: &'static str,
    pub id: &'static str,
    pub employee: &'static str,
    pub time: &'static str,
    pub state: Option<&'static str>,
    pub verify: Option<&'static str>,
    pub work_code: Option<&'static str>,
    pub device: Option<&'static str>,
}

/// ZKTeco BioTime (8.x; also ZKBioTime and the eSSL-branded builds): `iclock_transaction`, one row per punch from
/// every terminal, `punch_state` a text holding the ZKTeco state code (`0` check-in ... `5` overtime-out),
/// `verify_type` the ZKTeco verification code, `terminal_sn` the terminal's serial.
pub const BIOTIME: Preset = Preset {
    name: "biotime",
    table: "iclock_transaction",
    id: "id",
    employee: "emp_code",
    time: "punch_time",
    state: Some("punch_state"),
    verify: Some("verify_type"),
    work_code: Some("work_code"),
    device: Some("terminal_sn"),
};

/// The presets by name; `generic` (no preset) names every column in the file.
pub const PRESETS: &[Preset] = &[BIOTIME];

/// The preset called `name`.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// The names of every preset, for messages.
pub fn names() -> String {
    let mut names: Vec<String> = PRESETS.iter().map(|p| format!("{:?}", p.name)).collect();
    names.push("\"generic\"".into());
    names.join(", ")
}

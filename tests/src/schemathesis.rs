//! Schemathesis, a property-based API tester we did not write, run against the served admin API.
//!
//! `.ci/test` builds a virtualenv with a pinned schemathesis under `target/schemathesis-venv` and exports
//! `SCHEMATHESIS_BIN` (see `ensure_schemathesis` in `.ci/services.sh`).

use std::path::PathBuf;

use anyhow::bail;

/// The pinned version `.ci/services.sh` installs.
pub const VERSION: &str = "4.32.5";

/// The `st` executable.
///
/// # Errors
/// When neither `SCHEMATHESIS_BIN` nor `target/schemathesis-venv` is there, saying how to create it.
pub fn binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SCHEMATHESIS_BIN") {
        return Ok(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/schemathesis-venv/bin/st");
    if venv.is_file() {
        return Ok(venv);
    }
    bail!(
        "schemathesis is not available: SCHEMATHESIS_BIN is not set and {} does not exist. Run `bash .ci/test` (its \
         ensure_schemathesis step creates the virtualenv), or: python3 -m venv target/schemathesis-venv && \
         target/schemathesis-venv/bin/pip install schemathesis=={VERSION}",
        venv.display()
    )
}

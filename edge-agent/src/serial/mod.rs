//! Terminals on a serial line (RS-232/485) that print one line per punch.
//!
//! - `format`: the configurable line format (delimiter and field positions, or a pattern) and the line parser;
//! - `reader`: one task per port (tokio-serial): open with the configured baud rate, parity, data and stop bits, read
//!   lines, append the punches, and when the adapter disappears (read error, end of file, open failure) report the
//!   device unreachable and try again every `reconnect_secs` until it returns.
//!
//! A serial terminal does not wait for an acknowledgement: a line is read once. Punches are held in memory while the
//! buffer refuses (up to a bound, after which reading pauses and the line's own flow control or the terminal's
//! memory holds the rest), and appended as soon as it takes them again.

pub mod format;
pub mod reader;
pub mod settings;

pub use format::{Layout, Piece, RecordFormat, SerialRecord};
pub use reader::{run, SerialDeviceConfig};

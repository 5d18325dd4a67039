//! The `adapter` program as a library; `src/main.rs` is a thin wrapper around [`main_entry`].

pub mod config;
pub mod hlc;
pub mod journal;

use std::process::ExitCode;

/// Exit code for bad input (command line or files).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Entry point called by the binary. This program is not built yet: it says so and exits with
/// [`EXIT_BAD_INPUT`] rather than pretending to work.
pub fn main_entry() -> ExitCode {
    eprintln!("adapter: not implemented in this build yet; see the workspace README");
    ExitCode::from(EXIT_BAD_INPUT)
}

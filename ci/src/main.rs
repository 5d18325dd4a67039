//! Workspace automation entry point (xtask style); see `ci/src/lib.rs`.

use std::process::ExitCode;

/// Errors print as one line with their causes, never as a debug dump with a backtrace
/// (`RUST_BACKTRACE` set for a test run would otherwise turn a usage mistake into a page of frames).
fn main() -> ExitCode {
    match ci::main_entry() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ci: {e:#}");
            ExitCode::FAILURE
        }
    }
}

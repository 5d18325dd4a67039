//! The `uat` runner as a library: scenario model, loader, process control, executor and checks.
//!
//! **Boundary:** this crate never links `adapter`, `ofd-mock` or `kkt-emulator`; it starts their
//! built binaries and talks to them over HTTP and their SQLite files only.

pub mod check;
pub mod cli;
pub mod disks;
pub mod dispatch;
pub mod exit;
pub mod expect;
pub mod history;
pub mod leaks;
pub mod load;
pub mod metrics;
pub mod model;
pub mod paths;
pub mod probe;
pub mod procs;
pub mod report;
pub mod run;
pub mod schema;
pub mod select;
pub mod step_error;
pub mod template;
pub mod timeline;
pub mod tokens;
pub mod util;

pub use exit::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INFRA, EXIT_NOTHING_SELECTED, EXIT_OK};
pub use load::{LoadError, Scenario, load_file, load_str};
pub use run::{Report, RunOptions, Verdict, run_scenario};

/// Entry point called by the binary: parse, then run; returns the exit code.
pub fn main_entry() -> std::process::ExitCode {
    let code = match cli::parse() {
        Ok(cmd) => dispatch::dispatch(cmd),
        Err(code) => code,
    };
    std::process::ExitCode::from(code)
}

//! Integration tests for the uat runner: load errors, runs against stand-in processes, schema, CLI.

mod cli;
mod errors;
mod pipeline;
mod power;
mod report;
mod runner;
mod schema;
mod seeded;
mod tokens;
mod up;

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

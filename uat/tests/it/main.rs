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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The workspace root (the parent of this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Builds the workspace binaries `names` (each once per test process; the runner spawns the built
/// binaries) in the profile `uat` was built in, and returns that profile directory.
pub fn built(names: &[&str]) -> PathBuf {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let dir = uat::paths::bin_dir().expect("the cargo profile directory");
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !built.contains(*n))
        .collect();
    if missing.is_empty() {
        return dir;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--manifest-path"])
        .arg(workspace().join("Cargo.toml"));
    for b in &missing {
        cmd.args(["--bin", b]);
    }
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(cmd.status().unwrap().success(), "building {missing:?}");
    built.extend(missing.iter().map(|n| (*n).to_owned()));
    dir
}

/// Reads the run's piped stdout until its progress line says `scenario` is running (at most 30 s),
/// then sends the runner SIGINT, as Ctrl-C would.
pub fn interrupt_once_running(child: &mut Child, scenario: &str) {
    let stdout = child.stdout.take().expect("the run's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let running = format!("running {scenario}");
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("{scenario} starts"));
        if line.contains(&running) {
            break;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

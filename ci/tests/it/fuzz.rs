//! The fuzz targets beside their crates, run the way CI runs them: each cargo-fuzz crate is built once
//! (on nightly when rustup has it, else on stable with `RUSTC_BOOTSTRAP=1`; `FUZZ_TOOLCHAIN=nightly`
//! or `stable` forces one), then every target replays its committed seed corpus and fuzzes for a
//! bounded time (`FUZZ_SECONDS`, default 20 s). Any crash, leak, timeout or out-of-memory input fails.
//!
//! The fuzz crates stay out of the workspace (their own `[workspace]`, listed under the root's
//! `exclude`), so everything else builds on stable without libFuzzer. Nothing is ever skipped. Every child runs in its own process group under a hard deadline, and
//! the targets run one after another: the machines have two cores and each crate has its own target
//! directory (`fuzz/target`), so parallel runs would only fight over the CPU.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Each fuzz crate (relative to the workspace root) and its targets, in the order CI runs them.
const FUZZ_CRATES: &[(&str, &[&str])] = &[
    ("adapter/kkt-proto/fuzz", &["frame_decoder", "host_link"]),
    (
        "adapter/ofd-proto/fuzz",
        &["tlv_decoder", "envelope_decoder"],
    ),
    ("adapter/fuzz", &["pos_receipt"]),
];

/// Seconds each target fuzzes after replaying its corpus, unless `FUZZ_SECONDS` says otherwise.
const FUZZ_SECONDS_DEFAULT: u64 = 20;
/// A cold build of the adapter's fuzz crate takes minutes on two cores; this only stops a hung one.
const BUILD_TIMEOUT: Duration = Duration::from_secs(25 * 60);
/// Installing cargo-fuzz from the crate registry takes under a minute.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Added to the fuzzing time for the corpus replay, libFuzzer's start and cargo's up-to-date check.
const RUN_SLACK: Duration = Duration::from_secs(120);
/// One input that runs longer than this is reported by libFuzzer as a timeout (a hang), not waited out.
const INPUT_TIMEOUT_SECONDS: u64 = 10;
/// The file names libFuzzer gives the inputs it saves when something went wrong.
const ARTIFACT_PREFIXES: &[&str] = &["crash-", "leak-", "timeout-", "oom-"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ci lives in the workspace root")
        .to_path_buf()
}

fn fuzz_seconds() -> u64 {
    match std::env::var("FUZZ_SECONDS") {
        Ok(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .unwrap_or_else(|| {
                panic!("FUZZ_SECONDS must be a positive number of seconds, not {text:?}")
            }),
        Err(_) => FUZZ_SECONDS_DEFAULT,
    }
}

/// A command through rustup's `cargo` proxy, without what the surrounding `cargo test` put in the
/// environment: its toolchain choice, its flags and its target directory belong to the workspace.
fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(args);
    for var in [
        "RUSTUP_TOOLCHAIN",
        "CARGO",
        "RUSTC",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// How a bounded child ended.
struct Finished {
    status: Option<ExitStatus>,
    elapsed: Duration,
}

/// Runs `cmd` in its own process group with its output in `log`; past `timeout` the whole group
/// (cargo, cargo-fuzz and the fuzzer it started) is killed and `status` is `None`.
fn run_bounded(mut cmd: Command, log: &Path, timeout: Duration) -> Finished {
    use std::os::unix::process::CommandExt;
    let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let err = out.try_clone().expect("clone the log handle");
    let started = Instant::now();
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let group = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            // The fuzzer may have left helpers behind in the group; none may outlive the run.
            let _ = killpg(group, Signal::SIGKILL);
            return Finished {
                status: Some(status),
                elapsed: started.elapsed(),
            };
        }
        if started.elapsed() > timeout {
            let _ = killpg(group, Signal::SIGKILL);
            let _ = child.wait();
            return Finished {
                status: None,
                elapsed: started.elapsed(),
            };
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The target's panic message (the lines from "panicked at"), which the backtrace after it buries.
fn panic_message(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .position(|l| l.contains("panicked at"))
        .map(|at| lines[at..lines.len().min(at + 4)].join("\n"))
        .unwrap_or_default()
}

/// The last lines of a log, for a failure message.
fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn output(mut cmd: Command) -> Option<String> {
    let out = cmd.stdin(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Which compiler builds the fuzz targets. cargo-fuzz passes unstable flags (`-Zsanitizer=address`
/// and friends), so it wants nightly; a machine with only the stable toolchain builds them with
/// stable under `RUSTC_BOOTSTRAP=1`, which makes the stable compiler accept those flags (the same
/// compiler code, the sanitizer runtime ships with it). Either way the targets really run.
#[derive(Clone, Copy, Debug)]
enum Toolchain {
    Nightly,
    StableBootstrap,
}

impl Toolchain {
    /// `FUZZ_TOOLCHAIN` when set; else nightly when rustup lists one, else the default toolchain
    /// with `RUSTC_BOOTSTRAP=1`.
    fn detect() -> Toolchain {
        match std::env::var("FUZZ_TOOLCHAIN").as_deref() {
            Ok("nightly") => return Toolchain::Nightly,
            Ok("stable") => return Toolchain::StableBootstrap,
            Ok(other) => panic!("FUZZ_TOOLCHAIN must be `nightly` or `stable`, not {other:?}"),
            Err(_) => {}
        }
        let mut list = Command::new("rustup");
        list.args(["toolchain", "list"])
            .env_remove("RUSTUP_TOOLCHAIN");
        let toolchains = output(list).unwrap_or_else(|| {
            panic!("`rustup toolchain list` failed: fuzzing needs rustup's cargo proxy")
        });
        if toolchains
            .lines()
            .any(|l| l.trim_start().starts_with("nightly"))
        {
            Toolchain::Nightly
        } else {
            Toolchain::StableBootstrap
        }
    }

    /// `cargo fuzz <args>` on this toolchain.
    fn cargo_fuzz(self, args: &[&str]) -> Command {
        let mut all = Vec::with_capacity(args.len() + 2);
        if let Toolchain::Nightly = self {
            all.push("+nightly");
        }
        all.push("fuzz");
        all.extend_from_slice(args);
        let mut cmd = cargo(&all);
        if let Toolchain::StableBootstrap = self {
            cmd.env("RUSTC_BOOTSTRAP", "1");
        }
        cmd
    }

    /// How a person reproduces a run by hand on this toolchain.
    fn shell_prefix(self) -> &'static str {
        match self {
            Toolchain::Nightly => "cargo +nightly fuzz",
            Toolchain::StableBootstrap => "RUSTC_BOOTSTRAP=1 cargo fuzz",
        }
    }
}

/// Makes sure `cargo fuzz` runs, installing cargo-fuzz from the crate registry if needed.
fn require_cargo_fuzz(tc: Toolchain, logs: &Path) -> String {
    if let Some(version) = output(tc.cargo_fuzz(&["--version"])) {
        return version.trim().to_owned();
    }
    println!("cargo-fuzz is missing: cargo install cargo-fuzz --locked");
    let log = logs.join("install-cargo-fuzz.log");
    let install = cargo(&["install", "cargo-fuzz", "--locked"]);
    let done = run_bounded(install, &log, INSTALL_TIMEOUT);
    assert!(
        done.status.is_some_and(|s| s.success()),
        "`cargo install cargo-fuzz --locked` failed ({}):\n{}",
        describe(done.status),
        tail(&log, 30)
    );
    output(tc.cargo_fuzz(&["--version"]))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| {
            panic!(
                "`{} --version` fails even after installing cargo-fuzz",
                tc.shell_prefix()
            )
        })
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "killed at its deadline".to_owned(), |s| s.to_string())
}

/// Inputs libFuzzer saved for this target since `since`.
fn new_artifacts(crate_dir: &Path, target: &str, since: SystemTime) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(crate_dir.join("artifacts").join(target)) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            ARTIFACT_PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .map(|e| e.path())
        .collect()
}

/// Executed inputs and seconds from libFuzzer's closing lines (`-print_final_stats=1`).
fn figures(log: &Path) -> (Option<u64>, Option<u64>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut runs = None;
    let mut seconds = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            runs = n.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("Done ") {
            // "Done 123456 runs in 21 second(s)"
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let [n, "runs", "in", s, ..] = words.as_slice() {
                runs = runs.or_else(|| n.parse().ok());
                seconds = s.parse().ok();
            }
        }
    }
    (runs, seconds)
}

/// Builds every target of one fuzz crate; returns the build time.
fn build(tc: Toolchain, crate_dir: &Path, logs: &Path, name: &str) -> Duration {
    let log = logs.join(format!("build-{name}.log"));
    let mut cmd = tc.cargo_fuzz(&["build"]);
    cmd.current_dir(crate_dir);
    let done = run_bounded(cmd, &log, BUILD_TIMEOUT);
    assert!(
        done.status.is_some_and(|s| s.success()),
        "`{} build` in {} failed ({}):\n{}",
        tc.shell_prefix(),
        crate_dir.display(),
        describe(done.status),
        tail(&log, 40)
    );
    done.elapsed
}

/// Replays the target's seed corpus and fuzzes it for `seconds`; panics on any finding.
fn run(tc: Toolchain, crate_dir: &Path, target: &str, seconds: u64, logs: &Path) {
    let seeds = crate_dir.join("corpus").join(target);
    assert!(
        std::fs::read_dir(&seeds).is_ok_and(|mut d| d.next().is_some()),
        "the seed corpus {} is missing or empty",
        seeds.display()
    );
    // New inputs go to a scratch corpus (the first directory), so the committed seeds stay as they are.
    let scratch = crate_dir.join("target").join("ci-corpus").join(target);
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("create the scratch corpus");
    let log = logs.join(format!("run-{target}.log"));
    let max_total_time = format!("-max_total_time={seconds}");
    let input_timeout = format!("-timeout={INPUT_TIMEOUT_SECONDS}");
    let mut cmd = tc.cargo_fuzz(&["run", target]);
    cmd.arg(&scratch)
        .arg(&seeds)
        .args([
            "--",
            &max_total_time,
            &input_timeout,
            "-print_final_stats=1",
        ])
        .current_dir(crate_dir);
    let started = SystemTime::now();
    let done = run_bounded(cmd, &log, Duration::from_secs(seconds) + RUN_SLACK);
    let artifacts = new_artifacts(crate_dir, target, started);
    let (runs, reported) = figures(&log);
    println!(
        "fuzz {target}: {} s, {} runs, {} crashes",
        reported.unwrap_or(done.elapsed.as_secs()),
        runs.map_or_else(|| "?".to_owned(), |r| r.to_string()),
        artifacts.len()
    );
    assert!(
        done.status.is_some_and(|s| s.success()) && artifacts.is_empty(),
        "fuzz target {target} failed ({}); saved inputs: {artifacts:?}\n\
         reproduce: cd {} && {} run {target} <input>\n{}\n...\n{}\n(whole log: {})",
        describe(done.status),
        crate_dir.display(),
        tc.shell_prefix(),
        panic_message(&log),
        tail(&log, 25),
        log.display()
    );
    assert!(
        runs.is_some_and(|r| r > 0),
        "fuzz target {target} reported no executed inputs:\n{}",
        tail(&log, 30)
    );
}

#[test]
fn fuzz_targets_replay_their_corpora_and_find_no_crash() {
    let root = workspace_root();
    let seconds = fuzz_seconds();
    let tc = Toolchain::detect();
    let logs = root.join("target").join("ci-fuzz-logs");
    std::fs::create_dir_all(&logs).expect("create the log folder");
    let version = require_cargo_fuzz(tc, &logs);
    println!("{version} on {tc:?}, {seconds} s per target");
    for (dir, targets) in FUZZ_CRATES {
        let crate_dir = root.join(dir);
        let name = dir.replace('/', "-");
        let took = build(tc, &crate_dir, &logs, &name);
        println!("fuzz build {dir}: {} s", took.as_secs());
        for target in *targets {
            run(tc, &crate_dir, target, seconds, &logs);
        }
    }
}

/// Fuzz crates found on disk (folders named `fuzz` holding a `Cargo.toml`) with their `[[bin]]` targets.
fn fuzz_crates_on_disk(root: &Path) -> Vec<(String, Vec<String>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<String>)>) {
        for entry in std::fs::read_dir(dir).expect("read a workspace folder") {
            let path = entry.expect("a folder entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !path.is_dir() || name == "target" || name.starts_with('.') {
                continue;
            }
            let manifest = path.join("Cargo.toml");
            if name == "fuzz" && manifest.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, bin_names(&manifest)));
            } else {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The `name` of every `[[bin]]` table of a manifest (cargo-fuzz writes one per target).
fn bin_names(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("read a fuzz manifest");
    let mut in_bin = false;
    let mut names = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().trim_start_matches('=').trim();
            names.push(value.trim_matches('"').to_owned());
        }
    }
    names.sort();
    names
}

/// Cheap and on stable: a new fuzz crate or target cannot be forgotten by CI or by the workspace.
#[test]
fn every_fuzz_target_is_run_by_ci_and_kept_out_of_the_workspace() {
    let root = workspace_root();
    let mut listed: Vec<(String, Vec<String>)> = FUZZ_CRATES
        .iter()
        .map(|(dir, targets)| {
            let mut targets: Vec<String> = targets.iter().map(|t| (*t).to_owned()).collect();
            targets.sort();
            ((*dir).to_owned(), targets)
        })
        .collect();
    listed.sort();
    assert_eq!(
        fuzz_crates_on_disk(&root),
        listed,
        "the fuzz crates on disk and FUZZ_CRATES in ci/tests/it/fuzz.rs differ"
    );
    let manifest =
        std::fs::read_to_string(root.join("Cargo.toml")).expect("read the root manifest");
    let exclude = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("exclude"))
        .expect("the root Cargo.toml has an `exclude` list");
    for (dir, targets) in FUZZ_CRATES {
        assert!(
            exclude.contains(&format!("\"{dir}\"")),
            "add \"{dir}\" to `exclude` in the root Cargo.toml"
        );
        for target in *targets {
            let seeds = root.join(dir).join("corpus").join(target);
            assert!(
                std::fs::read_dir(&seeds).is_ok_and(|mut d| d.next().is_some()),
                "commit a few seed inputs in {dir}/corpus/{target}/"
            );
        }
    }
}

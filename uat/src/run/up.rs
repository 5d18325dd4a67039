//! `uat up`: start a scenario's processes (or the default stack), print their URLs, and kill
//! every process group when Ctrl-C arrives, for replaying a scenario by hand with curl.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{RunOptions, Runner, Verdict, sanitize};
use crate::exit::{EXIT_FAILED, EXIT_INFRA, EXIT_OK};
use crate::load::{LoadError, Scenario, load_str};
use crate::tokens::Role;

/// The default stack: the KKT emulator, the mock OFD and the adapter wired to both, each on
/// free ports with its files in the scenario folder.
pub const DEFAULT_STACK: &str = r#"[scenario]
name = "default-stack"
description = "kkt-emulator, ofd-mock and adapter wired together"

[process.kkt-emulator]
command = "{{bin.kkt-emulator}}"
args = ["--pty-link", "{{dir}}/kkt.tty", "--state", "{{dir}}/kkt-fn.json", "--control", "127.0.0.1:{{port.kkt-control}}"]
ready = { http_get = "http://127.0.0.1:{{port.kkt-control}}/_emu/health", timeout = "20s" }

[process.ofd-mock]
command = "{{bin.ofd-mock}}"
args = ["--listen", "127.0.0.1:{{port.ofd}}", "--control", "127.0.0.1:{{port.ofd-control}}", "--db", "{{dir}}/ofd.db"]
db = "{{dir}}/ofd.db"
ready = { http_get = "http://127.0.0.1:{{port.ofd-control}}/_mock/health", timeout = "20s" }

[process.adapter]
command = "{{bin.adapter}}"
args = ["--listen", "127.0.0.1:{{port.adapter}}", "--db", "{{dir}}/adapter.db", "--kkt-port", "{{dir}}/kkt.tty", "--ofd-addr", "127.0.0.1:{{port.ofd}}"]
db = "{{dir}}/adapter.db"
ready = { tcp = "127.0.0.1:{{port.adapter}}", timeout = "20s" }
"#;

/// The default stack as a scenario.
pub fn default_stack() -> Result<Scenario, LoadError> {
    load_str(Path::new("<default stack>"), DEFAULT_STACK.to_owned())
}

/// How long readiness probes may take in `uat up` (the scenario timeout does not apply).
const UP_DEADLINE: Duration = Duration::from_secs(24 * 3600);
/// How often `uat up` looks for processes that exited on their own while it waits.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// Starts every autostart process of `sc` in order, prints PIDs and URLs, waits for a message on
/// `stop` (the signal watcher), then kills every group. Returns the exit code.
pub fn up(sc: &Scenario, opts: &RunOptions, stop: &Receiver<&'static str>) -> u8 {
    let dir = opts.run_dir.join(sanitize(sc.name()));
    let mut runner = match Runner::new(sc, opts, &dir, opts.seed.unwrap_or(0)) {
        Ok(r) => r,
        Err(v) => {
            // Nothing was started; the folder holds at most an empty history.
            let _ = std::fs::remove_dir_all(&dir);
            return match v {
                Verdict::Failed(m) => {
                    eprintln!("uat up: {m}");
                    EXIT_FAILED
                }
                Verdict::Infra(m) => {
                    eprintln!("uat up: {m}");
                    EXIT_INFRA
                }
                Verdict::Passed | Verdict::ExpectedFailure(_) => EXIT_INFRA,
            };
        }
    };
    runner.deadline = Instant::now() + UP_DEADLINE;
    let width = sc
        .file
        .process
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        + 5;
    println!("uat up: {} in {}", sc.name(), runner.dir.display());
    let mut code = EXIT_OK;
    for (name, p) in sc.file.process.iter() {
        if !p.autostart {
            println!("  {name:<width$} not started (autostart = false)");
            continue;
        }
        match runner.start(name) {
            Ok(d) => println!("  {name:<width$} {d}"),
            Err(f) => {
                eprintln!("uat up: `{name}`: {}", f.error);
                code = EXIT_FAILED;
                break;
            }
        }
    }
    if code == EXIT_OK {
        for (port, n) in &runner.vars.ports {
            let key = format!("port.{port}");
            println!("  {key:<width$} http://127.0.0.1:{n}");
        }
        // The adapters require the run's tokens: curl reads the header from a file, so the
        // secret stays out of the shell history and `ps`.
        if let (false, Some(auth)) = (sc.adapters.is_empty(), &runner.vars.auth) {
            for role in [Role::Pos, Role::Admin] {
                let key = format!("auth.{}", role.as_str());
                println!(
                    "  {key:<width$} curl -H @{}",
                    auth.header_file(role).display()
                );
            }
        }
        println!("uat up: ready; Ctrl-C stops every process");
        let _ = std::io::stdout().flush();
        let which = watch(&mut runner, stop);
        println!("uat up: {which}: stopping");
    }
    if let Err(m) = runner.procs.cleanup() {
        eprintln!("uat up: {m}");
        code = EXIT_INFRA;
    }
    println!(
        "uat up: stopped {} process groups",
        runner.procs.started_groups().len()
    );
    let dir = runner.dir.clone();
    drop(runner);
    if code == EXIT_OK && !opts.keep {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("uat up: cannot remove {}: {e}", dir.display());
        }
    } else {
        println!("uat up: kept {}", dir.display());
    }
    code
}

/// Waits for the stop message, reporting processes that exit in the meantime.
fn watch(runner: &mut Runner<'_>, stop: &Receiver<&'static str>) -> &'static str {
    // Runs until the operator stops it: that is what `uat up` is for. Each wait is bounded.
    loop {
        match stop.recv_timeout(WATCH_EVERY) {
            Ok(which) => return which,
            Err(RecvTimeoutError::Disconnected) => return "signal watcher gone",
            Err(RecvTimeoutError::Timeout) => {}
        }
        for (name, _) in runner.sc.file.process.iter() {
            if let Some(st) = runner.procs.exited(name) {
                println!("uat up: `{name}` exited: {st}; see {name}.stderr.log");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_stack_is_a_valid_scenario_of_the_three_binaries() {
        let sc = super::default_stack().unwrap_or_else(|e| panic!("{e}"));
        let bins: Vec<&str> = sc.bins.iter().map(String::as_str).collect();
        assert_eq!(bins, ["adapter", "kkt-emulator", "ofd-mock"]);
        let ports: Vec<&str> = sc.ports.iter().map(String::as_str).collect();
        assert_eq!(ports, ["adapter", "kkt-control", "ofd", "ofd-control"]);
    }
}

//! `uat up FILE`: starts the scenario's processes, prints their PIDs and URLs, and on SIGINT kills
//! every group (checked by PID, a grandchild included) and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SCENARIO: &str = r#"[scenario]
name = "by-hand"

[process.web]
command = "python3"
args = ["-m", "http.server", "{{port.web}}", "--bind", "127.0.0.1", "--directory", "{{dir}}"]
ready = { http_get = "http://127.0.0.1:{{port.web}}/", timeout = "30s" }

[process.tree]
command = "sh"
args = ["-c", "sleep 300 & echo $! > tree.child.pid; sleep 300"]
ready = { path_exists = "{{dir}}/tree.child.pid", timeout = "10s" }

[process.spare]
command = "sleep"
args = ["300"]
autostart = false
"#;

/// Reads lines until `until` matches one, with an overall limit; returns every line read.
fn lines_until(rx: &mpsc::Receiver<String>, until: &str, limit: Duration) -> Vec<String> {
    let end = Instant::now() + limit;
    let mut out = Vec::new();
    while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        let done = l.contains(until);
        out.push(l);
        if done {
            return out;
        }
    }
    panic!("no line containing {until:?} within {limit:?}; read: {out:#?}");
}

/// The last whitespace-separated word of the line starting with `  NAME `.
fn field<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(&format!("  {name} ")))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("no line for {name}: {lines:#?}"))
}

#[test]
fn up_prints_urls_and_sigint_kills_every_group() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("by-hand.toml"), SCENARIO).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_uat"))
        .args([
            "up",
            "by-hand.toml",
            "--out-dir",
            "out",
            "--keep",
            "--bin-dir",
            ".",
        ])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let lines = lines_until(&rx, "uat up: ready", Duration::from_secs(60));
    let url = field(&lines, "port.web");
    assert!(url.starts_with("http://127.0.0.1:"), "{lines:#?}");
    let listing = reqwest::blocking::get(url).unwrap();
    assert_eq!(listing.status(), 200);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  spare ") && l.ends_with("not started (autostart = false)"))
    );
    let pids: Vec<i32> = ["web", "tree"]
        .iter()
        .map(|n| field(&lines, n).parse().unwrap())
        .collect();
    let folder = lines[0].rsplit(" in ").next().unwrap().to_owned();
    let grandchild: i32 = std::fs::read_to_string(format!("{folder}/tree.child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(uat::procs::alive(grandchild));

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let tail = lines_until(&rx, "stopped 2 process groups", Duration::from_secs(30));
    assert!(
        tail.iter().any(|l| l == "uat up: SIGINT: stopping"),
        "{tail:#?}"
    );
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "uat up did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    for pid in pids.iter().copied().chain([grandchild]) {
        assert!(!uat::procs::alive(pid), "pid {pid} left behind");
    }
    for pid in pids {
        assert!(
            uat::procs::group_members(pid).is_empty(),
            "group {pid} left"
        );
    }
}

#[test]
fn up_without_built_binaries_names_the_missing_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_uat"))
        .args(["up", "--bin-dir", "."])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(i32::from(uat::EXIT_FAILED)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("uat up: binary `adapter` is not built at "),
        "{stderr}"
    );
}

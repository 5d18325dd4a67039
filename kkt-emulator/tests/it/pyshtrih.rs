//! pyshtrih 2.0.6, an independent open-source Shtrih-M driver, drives whole shifts against the built emulator.
//!
//! The test makes a Python venv under the target dir (reused while it holds pyshtrih 2.0.6), starts the real
//! `kkt-emulator` binary on a pty and runs `tests/pyshtrih/drive_shift.py`, which uses only the driver's API
//! with model class `ShtrihM01F`. The FD numbers and FN counters the driver read must be the expected ones, and
//! the emulator's journal (control API) must agree with what the driver found, document by document.
//! A missing Python or an unreachable PyPI fails the test with the reason: it never skips.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::http;

/// The driver and its dependencies, pinned so every run talks to the same client.
const REQUIREMENTS: &[&str] = &["pyshtrih==2.0.6", "pyserial==3.5", "unilog==2.0.0"];
/// The driver version the venv must hold to be reused.
const PYSHTRIH_VERSION: &str = "2.0.6";
/// Bound on creating the venv and installing the driver from PyPI.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on the whole driver script (it takes well under a second when all is well).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` to completion within `limit`, killing it if it overruns; panics with `what` if it cannot start.
fn run_bounded(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    // Both pipes are drained on their own threads, so a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{what}: no result within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Runs `cmd` and panics with its output unless it succeeds.
fn run_ok(cmd: &mut Command, limit: Duration, what: &str) {
    let out = run_bounded(cmd, limit, what);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the venv's interpreter imports pyshtrih of the pinned version and pyserial.
fn has_pyshtrih(python: &Path) -> bool {
    let check = format!(
        "import sys, serial, pyshtrih; sys.exit(pyshtrih.__version__ != '{PYSHTRIH_VERSION}')"
    );
    python.exists()
        && Command::new(python)
            .args(["-c", &check])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// The venv's Python with pyshtrih installed, and whether it had to be created.
///
/// The venv is built in a directory of its own and renamed into place only when complete, so an interrupted
/// install is never reused and two test processes never share a half-built one.
fn venv_python() -> (PathBuf, bool) {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyshtrih-venv");
    let python = root.join("bin").join("python");
    if has_pyshtrih(&python) {
        return (python, false);
    }
    let partial = root.with_file_name(format!("pyshtrih-venv.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    run_ok(
        Command::new("python3").args(["-m", "venv"]).arg(&partial),
        INSTALL_TIMEOUT,
        "creating a Python venv for pyshtrih (`python3 -m venv`; Debian needs the python3-venv package)",
    );
    let partial_python = partial.join("bin").join("python");
    run_ok(
        Command::new(&partial_python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(["--timeout", "30"])
            .args(REQUIREMENTS),
        INSTALL_TIMEOUT,
        "installing pyshtrih 2.0.6 from PyPI with pip",
    );
    assert!(
        has_pyshtrih(&partial_python),
        "pip reported success but {} does not import pyshtrih {PYSHTRIH_VERSION}",
        partial_python.display()
    );
    if root.exists() && !has_pyshtrih(&python) {
        // A venv left from another pin or a broken one: replaced, never patched.
        let _ = fs::remove_dir_all(&root);
    }
    if fs::rename(&partial, &root).is_err() {
        // Another test process finished its venv first; use that one.
        assert!(
            has_pyshtrih(&python),
            "cannot move the venv into {}",
            root.display()
        );
        let _ = fs::remove_dir_all(&partial);
    }
    (python, true)
}

/// The built emulator binary; killed when dropped, so a failed assertion never leaves it running.
struct Emulator {
    child: Child,
    control: SocketAddr,
    pty: PathBuf,
    log: PathBuf,
}

impl Emulator {
    fn spawn(dir: &Path) -> Self {
        let pty = dir.join("kkt.tty");
        let log = dir.join("emulator.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kkt-emulator"))
            .arg("--pty-link")
            .arg(&pty)
            .arg("--state")
            .arg(dir.join("fn.json"))
            .args(["--control", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn emulator");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("start line");
        let control = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("control="))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no control address in {line:?}"));
        Self {
            child,
            control,
            pty,
            log,
        }
    }

    fn get(&self, path: &str) -> Value {
        let (status, v) = http(self.control, "GET", path, None);
        assert_eq!(status, 200, "{path}: {v}");
        v
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

/// FFD document code of a journal type.
fn doc_code(journal_type: &str) -> u64 {
    match journal_type {
        "shift_open" => 2,
        "receipt" => 3,
        "shift_close" => 5,
        other => panic!("unexpected document type {other}"),
    }
}

/// What the driver saw after each operation: (operation, last FD, shift, receipt number, shift open).
fn operations(report: &Value) -> Vec<(String, u64, u64, u64, bool)> {
    report["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|o| {
            (
                o["op"].as_str().expect("op").to_string(),
                u(&o["last_fd"]),
                u(&o["shift"]),
                u(&o["receipt_no"]),
                o["shift_open"].as_bool().expect("shift_open"),
            )
        })
        .collect()
}

/// Each journal document against what the driver's FF0A found for the same FD.
fn check_journal_agrees(journal: &[Value], found: &[Value]) {
    assert_eq!(
        journal.len(),
        found.len(),
        "journal and FF0A document counts"
    );
    for (doc, f) in journal.iter().zip(found) {
        let fd = u(&doc["fd"]);
        assert_eq!(
            (u(&f["fd"]), u(&f["data_fd"])),
            (fd, fd),
            "FD {fd}: numbers"
        );
        let ty = doc["type"].as_str().expect("type");
        assert_eq!(u(&f["doc_type"]), doc_code(ty), "FD {fd}: document type");
        assert_eq!(f["fpd"], doc["fpd"], "FD {fd}: fiscal sign");
        assert_eq!(
            u(&f["ticket_received"]) == 1,
            doc["ofd_acknowledged"].as_bool().expect("ack"),
            "FD {fd}: OFD ticket flag"
        );
        if ty == "receipt" {
            assert_eq!(f["operation_type"], doc["operation_type"], "FD {fd}: 1054");
            assert_eq!(f["total"], doc["total"], "FD {fd}: total");
        } else {
            assert_eq!(f["shift"], doc["shift"], "FD {fd}: shift number");
        }
    }
}

/// Receipts in the journal as (FD, operation type, total, cash, electronic, change), kopecks.
fn receipts(journal: &[Value]) -> Vec<(u64, u64, u64, u64, u64, u64)> {
    journal
        .iter()
        .filter(|d| d["type"] == "receipt")
        .map(|d| {
            let n = |k: &str| u(&d[k]);
            (
                n("fd"),
                n("operation_type"),
                n("total"),
                n("cash"),
                n("card"),
                n("change"),
            )
        })
        .collect()
}

#[test]
fn pyshtrih_drives_whole_shifts_and_the_journal_agrees() {
    let started = Instant::now();
    let (python, created) = venv_python();
    let venv_s = started.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::spawn(dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyshtrih/drive_shift.py");
    let script_started = Instant::now();
    let out = run_bounded(
        Command::new(&python).arg(&script).arg(&emu.pty),
        SCRIPT_TIMEOUT,
        "the pyshtrih script",
    );
    let script_s = script_started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "drive_shift.py failed ({}):\n{}\nemulator log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        fs::read_to_string(&emu.log).unwrap_or_default()
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "script output is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    // The client is the one we meant: the driver's own ShtrihM01F class, padding texts to 48 bytes.
    assert_eq!(
        (
            report["driver_version"].as_str(),
            report["model_class"].as_str(),
            u(&report["text_width"])
        ),
        (Some(PYSHTRIH_VERSION), Some("ShtrihM01F"), 48)
    );

    // FN counters as the driver read them (FF01 last FD, FF40 shift and receipt number) after each step.
    let expected: Vec<(String, u64, u64, u64, bool)> = [
        ("open_shift", 1, 1, 0, true),
        ("sale_cash", 2, 1, 1, true),
        ("sale_type2", 3, 1, 2, true),
        ("sale_type3", 4, 1, 3, true),
        ("sale_type4", 5, 1, 4, true),
        ("sale_mixed", 6, 1, 5, true),
        ("cancelled", 6, 1, 5, true),
        ("return_cash", 7, 1, 6, true),
        ("x_report", 7, 1, 6, true),
        ("z_report", 8, 1, 6, false),
        ("fn_open_shift", 9, 2, 0, true),
        ("sale_shift2", 10, 2, 1, true),
        ("fn_close_shift", 11, 2, 1, false),
    ]
    .into_iter()
    .map(|(op, fd, shift, receipt, open)| (op.to_string(), fd, shift, receipt, open))
    .collect();
    assert_eq!(operations(&report), expected);
    let ops = report["operations"].as_array().expect("operations");
    assert_eq!(u(&ops[1]["change"]), 7_910, "85 answers the change");
    assert_eq!(
        (u(&ops[10]["answer_shift"]), u(&ops[10]["answer_fd"])),
        (2, 9),
        "FF0B answer"
    );
    assert_eq!(
        (u(&ops[12]["answer_shift"]), u(&ops[12]["answer_fd"])),
        (2, 11),
        "FF43 answer"
    );
    // Before the Z report: seven documents waiting for the OFD (FF39, FF3F), the oldest FD 1.
    let before_z = &report["before_z"];
    assert_eq!(
        (
            u(&before_z["ofd_queue"]),
            u(&before_z["ofd_first_fd"]),
            u(&before_z["unconfirmed"])
        ),
        (7, 1, 7)
    );
    assert_eq!(
        u(&report["past_end_error"]),
        0x08,
        "FF0A past the last FD: no data"
    );

    // The emulator's ground truth agrees with the driver, document by document.
    let journal = emu.get("/_emu/journal");
    let docs = journal["documents"].as_array().expect("documents");
    check_journal_agrees(docs, report["found"].as_array().expect("found"));
    assert_eq!(
        receipts(docs),
        [
            (2, 1, 22_090, 22_090, 0, 7_910),
            (3, 1, 25_000, 0, 25_000, 0),
            (4, 1, 25_000, 0, 25_000, 0),
            (5, 1, 25_000, 0, 25_000, 0),
            (6, 1, 15_000, 10_000, 5_000, 0),
            (7, 2, 12_990, 12_990, 0, 0),
            (10, 1, 4_900, 4_900, 0, 0),
        ],
        "receipts: (FD, 1054, total, cash, electronic, change)"
    );
    // The driver's 48-byte padded name reached the FN whole (tag 1030), in the sale and in the return.
    let long_name = report["long_name"].as_str().expect("long name");
    assert_eq!(long_name.chars().count(), 48);
    assert_eq!(docs[1]["items"][0]["name"].as_str(), Some(long_name));
    assert_eq!(docs[6]["items"][0]["name"].as_str(), Some(long_name));
    for (i, op) in [(10, "fn_open_shift"), (12, "fn_close_shift")] {
        let fd = usize::try_from(u(&ops[i]["answer_fd"])).expect("fd") - 1;
        assert_eq!(ops[i]["answer_fpd"], docs[fd]["fpd"], "{op}: fiscal sign");
    }
    let state = emu.get("/_emu/state");
    let fin = &report["final"];
    assert_eq!(
        (u(&fin["last_fd"]), u(&fin["shift"]), u(&fin["unconfirmed"])),
        (
            u(&state["last_fd"]),
            u(&state["shift_number"]),
            u(&state["unsent"])
        )
    );
    assert_eq!(u(&state["last_fd"]), 11);

    // Every command the shift was meant to exercise really went over the wire.
    let by_code = &emu.get("/_emu/commands")["by_code"];
    for code in [
        "FC", "10", "11", "E0", "17", "8D", "80", "82", "85", "88", "40", "41", "FF01", "FF0A",
        "FF0C", "FF39", "FF3F", "FF40", "FF41", "FF0B", "FF42", "FF43",
    ] {
        assert!(
            by_code[code].as_u64().unwrap_or(0) > 0,
            "{code} never sent: {by_code}"
        );
    }
    println!(
        "pyshtrih {PYSHTRIH_VERSION} ShtrihM01F: {} FDs in 2 shifts ({} receipts), {} commands; venv {} in {venv_s:.1} s, script {script_s:.2} s",
        docs.len(),
        receipts(docs).len(),
        u(&emu.get("/_emu/commands")["total"]),
        if created { "created" } else { "reused" },
    );
}

//! The real binary, SIGKILLed mid-shift and restarted on the same state file: counters and documents stay.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use kkt_proto::{Answer, Request};

use crate::harness::{Host, close, http, item};
use kkt_emulator::Config;

/// Starts the binary and reads its `kkt-emulator pty=... control=...` line.
fn spawn(dir: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kkt-emulator"))
        .arg("--pty-link")
        .arg(dir.join("kkt.tty"))
        .arg("--state")
        .arg(dir.join("fn.json"))
        .args(["--control", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn emulator");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("start line");
    let control = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("control="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no control address in {line:?}"));
    assert!(line.starts_with("kkt-emulator pty="), "{line}");
    (child, control)
}

#[test]
fn sigkill_mid_shift_keeps_counters_and_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, _control) = spawn(dir.path());
    {
        let mut host = Host::open(&dir.path().join("kkt.tty"));
        host.ok(&Request::FnBeginOpenShift);
        host.ok(&Request::FnOpenShift);
        host.ok(&item("Tea", 1000, 5_000, 1));
        host.ok(&close(5_000, 0));
        // A receipt left open at the kill.
        host.ok(&item("Cake", 1000, 7_000, 1));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();

    let (mut child, control2) = spawn(dir.path());
    let (status, j) = http(control2, "GET", "/_emu/journal", None);
    assert_eq!(status, 200);
    let fds: Vec<_> = j["documents"]
        .as_array()
        .expect("docs")
        .iter()
        .map(|d| d["fd"].as_u64())
        .collect();
    assert_eq!(fds, [Some(1), Some(2)]);
    let (_, st) = http(control2, "GET", "/_emu/state", None);
    assert_eq!(
        (
            st["last_fd"].as_u64(),
            st["mode"].as_u64(),
            st["open_receipt_items"].as_u64()
        ),
        (Some(2), Some(8), Some(1))
    );
    let mut host = Host::open(&dir.path().join("kkt.tty"));
    host.ok(&close(7_000, 0));
    let Answer::FnStatus(fs) = host.ok(&Request::FnStatus) else {
        panic!("FF01")
    };
    assert_eq!(fs.last_fd, 3, "the next FD continues after the restart");
    let Answer::FnShiftParams(sp) = host.ok(&Request::FnShiftParams) else {
        panic!("FF40")
    };
    assert_eq!((sp.shift_number, sp.receipt_number), (1, 2));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

#[test]
fn a_dead_emulators_link_leads_nowhere_even_when_its_pty_number_is_taken_again() {
    // The kernel gives a freed pty number to the next pty opened anywhere: a link to /dev/pts/N
    // would lead a host that reopens it after the kill into whichever register took N next.
    let dir = tempfile::tempdir().expect("tempdir");
    let link = dir.path().join("kkt.tty");
    let (mut child, _control) = spawn(dir.path());
    let pts = std::fs::canonicalize(&link).expect("the link resolves while the emulator runs");
    assert!(pts.starts_with("/dev/pts/"), "{pts:?}");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // Another pty, most likely on the freed number: it must not be reachable through the old link.
    let other = nix::pty::openpty(None, None).expect("openpty");
    let other_path = nix::unistd::ttyname(&other.slave).expect("ttyname");
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&link);
    assert!(
        opened.is_err(),
        "the dead emulator's link opened a live pty (it pointed at {pts:?}; the new pty is {other_path:?})"
    );
}

#[test]
fn a_stopped_emulator_lets_go_of_its_pty_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let running = rt
        .block_on(kkt_emulator::serve(Config::in_dir(dir.path())))
        .expect("serve");
    let mut host = Host::open(&running.pty_link);
    assert!(matches!(host.ok(&Request::FnStatus), Answer::FnStatus(_)));
    // Stopping joins the wire thread, which holds the pty's master and the emulator's own slave: once
    // both are closed, the host hears a hang-up, not a device that stays silent.
    drop(running);
    let read = host.read_within(std::time::Duration::from_secs(2));
    assert_eq!(
        read.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::BrokenPipe),
        "{read:?}"
    );
}

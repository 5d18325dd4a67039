//! The thin binary and its loopback HTTP control API, driven as the UAT runner will.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::read;

/// Bound on waiting for the binary to exit after `/shutdown`: 500 × 10 ms.
const EXIT_POLLS_MAX: u32 = 500;

struct Binary {
    child: Child,
    control: String,
}

impl Drop for Binary {
    fn drop(&mut self) {
        // Only reached with the child still running when a test failed half way.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start(backing: &Path, mnt: &Path) -> Binary {
    let mut child = Command::new(env!("CARGO_BIN_EXE_powercut-fs"))
        .args(["mount", "--backing"])
        .arg(backing)
        .arg("--mountpoint")
        .arg(mnt)
        .args(["--control", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn powercut-fs");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read control line");
    let control = line
        .trim()
        .strip_prefix("control=")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Binary { child, control }
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("receive");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn the_binary_cuts_remounts_and_shuts_down_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).expect("mkdir");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mut bin = start(&backing, &mnt);
    let addr = bin.control.clone();

    std::fs::write(mnt.join("lost"), b"never synced").expect("write");
    let (status, body) = http(&addr, "GET", "/stats", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["state"], "live");

    let (status, body) = http(&addr, "POST", "/power_cut", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["mode"], "power_cut");
    assert_eq!(json(&body)["undone_entry_changes"], 1);
    let (status, body) = http(&addr, "POST", "/power_cut", "");
    assert_eq!(
        (status, json(&body)["code"].clone()),
        (409, "already_cut".into())
    );
    let (status, body) = http(&addr, "POST", "/remount", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["remounts"], 1);
    assert_eq!(read(&mnt.join("lost")), None);

    let fail = r#"{"op": "write", "errno": "ENOSPC", "count": 1}"#;
    assert_eq!(http(&addr, "POST", "/fail", fail).0, 200);
    let err = std::fs::write(mnt.join("full"), b"x").expect_err("disk full");
    assert_eq!(err.raw_os_error(), Some(28));
    assert_eq!(http(&addr, "POST", "/heal", "").0, 200);
    let bad = r#"{"op": "write", "errno": "ENOSPC"}"#;
    assert_eq!(http(&addr, "POST", "/fail", bad).0, 400);
    assert_eq!(
        http(&addr, "POST", "/writeback", r#"{"seed": 1, "fraction": 2}"#).0,
        400
    );
    assert_eq!(http(&addr, "POST", "/crash_at_fsync", r#"{"n": 0}"#).0, 400);
    assert_eq!(http(&addr, "POST", "/crash_at_fsync", r#"{"n": 2}"#).0, 200);
    let (_, body) = http(&addr, "GET", "/stats", "");
    assert_eq!(json(&body)["crash_at_fsync_remaining"], 2);

    assert_eq!(http(&addr, "POST", "/shutdown", "").0, 200);
    let mut exit = None;
    for _ in 0..EXIT_POLLS_MAX {
        exit = bin.child.try_wait().expect("try_wait");
        if exit.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(exit.and_then(|s| s.code()), Some(0));
    // Unmounted: the mountpoint is the plain empty directory again.
    assert_eq!(std::fs::read_dir(&mnt).expect("readdir").count(), 0);
}

#[test]
fn a_mount_left_by_a_killed_binary_is_detached_by_the_next_mount() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (backing, mnt) = (dir.path().join("backing"), dir.path().join("mnt"));
    std::fs::create_dir(&backing).expect("mkdir");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mut bin = start(&backing, &mnt);
    bin.child.kill().expect("SIGKILL");
    bin.child.wait().expect("reap");
    let stale = std::fs::metadata(&mnt).expect_err("a dead FUSE mount");
    assert_eq!(stale.raw_os_error(), Some(107), "ENOTCONN: {stale}");
    let fs = powercut_fs::mount(&backing, &mnt, powercut_fs::Options::default()).expect("mount");
    std::fs::write(mnt.join("a"), b"x").expect("write through the new mount");
    fs.unmount().expect("unmount");
    assert_eq!(read(&backing.join("a")).as_deref(), Some(&b"x"[..]));
}

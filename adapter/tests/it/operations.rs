//! Fit for an unattended shop: private journal files, signals (SIGHUP ignored, SIGTERM bounded by
//! the shutdown deadline whatever clients do), log lines a collector can read, readiness and health
//! status codes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Stack, lenses};

/// What the adapter may take after the shutdown deadline: stopping the sync worker, the final
/// checkpoint and the runtime's own shutdown.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(3);

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The journal and the two files SQLite keeps beside it in WAL mode.
fn journal_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        })
        .collect()
}

fn check_private(db: &Path) {
    for f in journal_files(db) {
        assert_eq!(mode_of(&f), 0o600, "{}", f.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_and_its_wal_and_shm_are_private_and_an_older_readable_journal_is_tightened() {
    let mut s = Stack::with_adapter(&[]).await;
    let (code, r) = s.post_receipt(lenses("private-1")).await;
    assert_eq!(code, 200, "{r}");
    check_private(&s.db_path());
    // A journal left world-readable by an earlier version, WAL and SHM included (SIGKILL leaves them).
    s.kill_adapter();
    for f in journal_files(&s.db_path()) {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    s.start_adapter();
    let (code, r) = s.post_receipt(lenses("private-2")).await;
    assert_eq!(code, 200, "{r}");
    check_private(&s.db_path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_leaves_the_adapter_serving_and_is_logged() {
    let mut s = Stack::with_adapter_logging(&[], "info").await;
    s.signal_adapter(Signal::SIGHUP);
    s.signal_adapter(Signal::SIGHUP);
    let exited = tokio::task::block_in_place(|| s.wait_adapter_exit(Duration::from_millis(500)));
    assert_eq!(exited, None, "SIGHUP ended the adapter; log: {}", s.log());
    let (code, r) = s.post_receipt(lenses("after-hup")).await;
    assert_eq!((code, &r["status"]), (200, &json!("printed")), "{r}");
    // SIGHUPs while sales talk to the KKT: a signal may interrupt the driver's wait for the
    // device's answer, which must not turn into a failed exchange.
    let pid = nix::unistd::Pid::from_raw(s.adapter_pid() as i32);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hups = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = nix::sys::signal::kill(pid, Signal::SIGHUP);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    for n in 0..5 {
        let (code, r) = s.post_receipt(lenses(&format!("during-hups-{n}"))).await;
        assert_eq!((code, &r["status"]), (200, &json!("printed")), "{r}");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    hups.join().expect("signal thread");
    let log = s.log();
    assert!(log.contains("SIGHUP received"), "{log}");
    // stderr is a file here, not a terminal: no colour codes.
    assert!(!log.contains('\u{1b}'), "ESC in the log: {log:?}");
}

/// Opens a connection and sends the head and the first half of a sale's body; the adapter has
/// the request in flight, waiting for the rest. Returns the stream and the part not sent.
async fn half_sent_sale(s: &Stack, key: &str) -> (TcpStream, Vec<u8>) {
    let body = serde_json::to_vec(&lenses(key)).unwrap();
    let head = format!(
        "POST /v1/kkt/receipt HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        s.adapter_addr(),
        body.len()
    );
    let mut stream = TcpStream::connect(s.adapter_addr()).await.expect("connect");
    let half = body.len() / 2;
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body[..half]).await.expect("half a body");
    // Time for the server to parse the head and start the handler.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (stream, body[half..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish_then_exits_0() {
    let mut s = Stack::with_adapter(&["--shutdown-deadline-ms", "5000"]).await;
    let (mut stream, rest) = half_sent_sale(&s, "term-finishes").await;
    s.signal_adapter(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(&rest).await.expect("rest of the body");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the answer comes before the deadline")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"printed\""), "{answer}");
    let status = tokio::task::block_in_place(|| s.wait_adapter_exit(Duration::from_secs(10)));
    assert_eq!(status.and_then(|st| st.code()), Some(0), "log: {}", s.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_0_within_the_deadline_while_a_client_holds_a_half_sent_request() {
    let deadline = Duration::from_secs(2);
    let mut s = Stack::with_adapter(&["--shutdown-deadline-ms", "2000"]).await;
    // The client never sends the rest and keeps its connection open throughout.
    let (_stream, _rest) = half_sent_sale(&s, "term-held").await;
    let started = Instant::now();
    s.signal_adapter(Signal::SIGTERM);
    let status =
        tokio::task::block_in_place(|| s.wait_adapter_exit(deadline + SHUTDOWN_MARGIN * 3));
    let took = started.elapsed();
    assert_eq!(status.and_then(|st| st.code()), Some(0), "log: {}", s.log());
    assert!(
        took <= deadline + SHUTDOWN_MARGIN,
        "exit took {took:?}; log: {}",
        s.log()
    );
    // The request in flight was given its time: the adapter did not just drop it.
    assert!(took >= deadline - Duration::from_millis(200), "{took:?}");
}

/// The log's lines, each parsed as JSON (a line that does not parse fails the test).
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_parse_and_name_each_request_and_receipt_state() {
    let s = Stack::with_adapter_logging(&["--log-format", "json"], "info").await;
    let (code, r) = s.post_receipt(lenses("json-log")).await;
    assert_eq!(code, 200, "{r}");
    let id = r["receipt_id"].as_str().expect("receipt id").to_owned();
    let (code, _) = s
        .call("GET", &format!("/v1/kkt/receipt/{id}"), None, &[])
        .await;
    assert_eq!(code, 200);
    let (code, _) = s.call("GET", "/v1/no-such-route", None, &[]).await;
    assert_eq!(code, 404);
    // A request line is written when the answer leaves, so the last one may still be on its way
    // to the log file when the client has its answer: wait for it, bounded.
    let not_found =
        |l: &Value| l["message"] == "request" && l["route"] == "-" && l["status"] == 404;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = json_lines(&s.log());
    while !lines.iter().any(not_found) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        lines = json_lines(&s.log());
    }
    assert!(lines.iter().any(not_found), "{lines:#?}");
    let request = |route: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "request" && l["route"] == route)
            .unwrap_or_else(|| panic!("no request line for {route}: {lines:#?}"))
    };
    let sale = request("/v1/kkt/receipt");
    assert_eq!(
        (&sale["method"], &sale["status"]),
        (&json!("POST"), &json!(200)),
        "{sale}"
    );
    assert!(sale["ms"].is_u64(), "{sale}");
    assert!(sale["requester"].is_string(), "{sale}");
    assert_eq!(request("/v1/kkt/receipt/{receipt_id}")["method"], "GET");
    let phases: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "receipt state" && l["receipt_id"] == id.as_str())
        .map(|l| &l["phase"])
        .collect();
    // The OFD delivery may or may not have happened by now; when it has, it comes last.
    let expected = [
        json!("received"),
        json!("kkt_in_flight"),
        json!("fiscalized"),
        json!("synced"),
    ];
    assert!(
        (3..=4).contains(&phases.len()) && phases.iter().zip(&expected).all(|(a, b)| *a == b),
        "{phases:?}; {lines:#?}"
    );
    let fiscalized = lines
        .iter()
        .find(|l| l["receipt_id"] == id.as_str() && l["phase"] == "fiscalized")
        .unwrap();
    assert_eq!(fiscalized["fd"], r["fiscal"]["fd_number"], "{fiscalized}");
    assert_eq!(
        fiscalized["fn_number"], r["fiscal"]["fn_number"],
        "{fiscalized}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_without_the_kkt_port_and_200_once_the_device_is_there() {
    let ports = tempfile::tempdir().expect("tempdir");
    let port = ports.path().join("kkt.tty");
    let s = Stack::with_adapter(&["--kkt-port", port.to_str().unwrap()]).await;
    let (code, ready) = s.call("GET", "/v1/ready", None, &[]).await;
    assert_eq!(
        (code, ready),
        (
            503,
            json!({"ready": false, "journal_open": true, "kkt_reachable": false})
        )
    );
    let (code, health) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!(
        (code, &health["status"]),
        (503, &json!("degraded")),
        "{health}"
    );
    assert_eq!(health["kkt"]["link_ok"], false, "{health}");
    // Health is open to every caller: the driver's error is shown without the port's path.
    let shown = health.to_string();
    assert!(!shown.contains(port.to_str().unwrap()), "{shown}");
    // The device appears; readiness probes it in the background and turns ready with no sale.
    std::os::unix::fs::symlink(&s.emu.pty_link, &port).expect("symlink");
    let end = Instant::now() + Duration::from_secs(15);
    let last = loop {
        let (code, ready) = s.call("GET", "/v1/ready", None, &[]).await;
        if code == 200 || Instant::now() >= end {
            break (code, ready);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        last,
        (
            200,
            json!({"ready": true, "journal_open": true, "kkt_reachable": true})
        )
    );
    let (code, health) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!((code, &health["status"]), (200, &json!("ok")), "{health}");
}

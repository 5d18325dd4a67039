//! The control API's guards: the header read timeout, the control token, the loopback-only default,
//! and logs without colour codes when not on a terminal.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kkt_emulator::{Config, Secret, ServeError};
use rstest::rstest;
use tool_http::testing::{SECRET_TEXT, secret_file, with_secret_files};

use crate::harness::{Emu, http_with};

/// The header read timeout of the timeout tests.
const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
/// Longest a test waits for the emulator to close a connection or to exit.
const WAIT_MAX: Duration = Duration::from_secs(5);
/// The control token of the token tests.
const TOKEN: &str = "t0ken-for-tests";

/// Writes `bytes` to the control API and reads until the emulator closes: what came back (`None` on
/// a reset) and how long after connecting.
fn send_and_wait_for_close(addr: SocketAddr, bytes: &[u8]) -> (Option<Vec<u8>>, Duration) {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect control");
    stream.set_read_timeout(Some(WAIT_MAX)).expect("timeout");
    stream.write_all(bytes).expect("write");
    let mut got = Vec::new();
    let outcome = match stream.read_to_end(&mut got) {
        Ok(_) => Some(got),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
        Err(e) => panic!("no close within {WAIT_MAX:?}: {e}; got {got:?}"),
    };
    (outcome, start.elapsed())
}

fn emu_with_short_timeout() -> Emu {
    Emu::start_with(|c| c.header_read_timeout_ms = HEADER_TIMEOUT.as_millis() as u64)
}

#[test]
fn a_half_sent_request_head_is_disconnected_after_the_header_read_timeout() {
    let emu = emu_with_short_timeout();
    let (got, after) = send_and_wait_for_close(
        emu.running.control_addr,
        b"GET /_emu/health HTTP/1.1\r\nHost: emu\r\n",
    );
    assert!(got.is_none_or(|b| b.is_empty()), "answered after {after:?}");
    assert!(after >= HEADER_TIMEOUT, "closed after {after:?}");
    // A whole request still gets its answer.
    assert_eq!(emu.get("/_emu/health")["status"], "ok");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_same_timeout() {
    let emu = emu_with_short_timeout();
    let (got, after) = send_and_wait_for_close(
        emu.running.control_addr,
        b"GET /_emu/health HTTP/1.1\r\nHost: emu\r\n\r\n",
    );
    let got = got.expect("a FIN, not a reset");
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(after >= HEADER_TIMEOUT, "closed after {after:?}");
}

/// Every control route, a body, and the status it answers to a caller holding the token.
const ROUTES: &[(&str, &str, Option<&str>, u16)] = &[
    ("GET", "/_emu/health", None, 200),
    ("GET", "/_emu/state", None, 200),
    ("GET", "/_emu/journal", None, 200),
    ("GET", "/_emu/commands", None, 200),
    ("POST", "/_emu/clear", None, 200),
    ("POST", "/_emu/power_on", None, 200),
    ("POST", "/_emu/clock", Some(r#"{"offset_s":0}"#), 200),
    ("POST", "/_emu/reset", None, 403),
    ("GET", "/_emu/nothing", None, 404),
    // Last, so that nothing clears it.
    ("POST", "/_emu/fault", Some(r#"{"kind":"busy"}"#), 200),
];

#[rstest]
#[case::no_header(None, false)]
#[case::wrong_token(Some("Bearer t0ken-for-testz"), false)]
#[case::token_prefix(Some("Bearer t0ken"), false)]
#[case::basic_scheme(Some("Basic t0ken-for-tests"), false)]
#[case::bare_token(Some("t0ken-for-tests"), false)]
#[case::right_token(Some("Bearer t0ken-for-tests"), true)]
#[case::lowercase_scheme(Some("bearer t0ken-for-tests"), true)]
fn with_a_token_every_control_route_needs_it(#[case] auth: Option<&str>, #[case] admitted: bool) {
    let emu = Emu::start_with(|c| c.control_token = Some(Secret::new(TOKEN)));
    // The serial side is not behind the token.
    emu.host().enq_idle();
    for &(method, path, body, with_token) in ROUTES {
        let (status, answer) = http_with(emu.running.control_addr, method, path, body, auth);
        if admitted {
            assert_eq!(status, with_token, "{method} {path}: {answer}");
        } else {
            assert_eq!(status, 401, "{method} {path}: {answer}");
            let message = answer["error"].as_str().unwrap_or_default();
            assert!(message.contains("Bearer"), "{method} {path}: {answer}");
        }
    }
    // A refused fault was never armed.
    let armed = emu.running.shared.state_view().faults.len();
    assert_eq!(armed, usize::from(admitted));
}

#[test]
fn without_a_token_the_control_api_binds_loopback_only() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let open = Config {
        control: SocketAddr::from(([0, 0, 0, 0], 0)),
        ..Config::in_dir(dir.path())
    };
    let refused = rt.block_on(kkt_emulator::serve(open.clone())).unwrap_err();
    assert!(
        matches!(refused, ServeError::Unprotected { .. }),
        "{refused}"
    );
    assert_eq!(refused.exit_code(), kkt_emulator::EXIT_BAD_INPUT);
    assert!(
        refused.to_string().contains("KKT_EMU_CONTROL_TOKEN"),
        "{refused}"
    );
    let guarded = rt.block_on(kkt_emulator::serve(Config {
        control_token: Some(Secret::new(TOKEN)),
        ..open
    }));
    assert!(
        guarded.is_ok(),
        "a guarded control API may bind any address"
    );
    drop(guarded);
    // Without a token, on loopback, nothing changes: no header needed.
    let emu = Emu::start();
    assert_eq!(emu.post("/_emu/clear", "").0, 200);
}

/// The binary with files in `dir`, `args` and `env` only (no inherited KKT_EMU_*, RUST_LOG or
/// NO_COLOR), stderr into `dir/stderr.log`.
fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kkt-emulator"));
    for (var, _) in std::env::vars() {
        if var.starts_with("KKT_EMU_") || var == "RUST_LOG" || var == "NO_COLOR" {
            command.env_remove(var);
        }
    }
    command
        .env("KKT_EMU_PTY_LINK", dir.join("kkt.tty"))
        .env("KKT_EMU_STATE", dir.join("kkt-fn.json"))
        .env("KKT_EMU_CONTROL", "127.0.0.1:0")
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr.log")).expect("log file"))
        .spawn()
        .expect("spawn kkt-emulator")
}

/// Waits (bounded) for the child to exit; kills it and fails when it does not.
fn exit_code(child: Child) -> i32 {
    tool_http::testing::exit_code(child, WAIT_MAX)
}

/// Reads the start line and returns the control address.
fn control_addr(child: &mut Child, dir: &Path) -> SocketAddr {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("start line");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("control="))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| {
            let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
            panic!("no control address in {line:?}; stderr: {log}")
        })
}

/// SIGTERM, then exit 0 within [`WAIT_MAX`].
fn stop(child: Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_eq!(exit_code(child), 0);
}

#[rstest]
#[case::file(true)]
#[case::env(false)]
fn the_binary_takes_the_token_from_a_file_or_the_environment_and_logs_without_colour(
    #[case] from_file: bool,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let file = secret_file(d, "token", &format!("{TOKEN}\n"), 0o600);
    let file = file.to_str().expect("utf-8 path");
    let mut child = if from_file {
        spawn(d, &["--control-token-file", file], &[])
    } else {
        spawn(d, &[], &[("KKT_EMU_CONTROL_TOKEN", TOKEN)])
    };
    let control = control_addr(&mut child, d);
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(http_with(control, "GET", "/_emu/state", None, None).0, 401);
    assert_eq!(
        http_with(control, "GET", "/_emu/state", None, Some(&bearer)).0,
        200
    );
    stop(child);
    let log = std::fs::read(d.join("stderr.log")).expect("log");
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("control request refused"), "{text}");
    assert!(
        !log.contains(&0x1b),
        "an ESC byte in the log file: {text:?}"
    );
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
}

#[rstest]
#[case::file_and_env(&["--control-token-file", "{secret}"], &[("KKT_EMU_CONTROL_TOKEN", "x")], "--control-token-file and KKT_EMU_CONTROL_TOKEN")]
#[case::missing_file(&["--control-token-file", "{dir}/missing"], &[], "cannot read --control-token-file")]
#[case::empty_file(&["--control-token-file", "{empty}"], &[], "is empty")]
#[case::readable_by_others(&["--control-token-file", "{open}"], &[], "readable by group or others")]
#[case::empty_env(&[], &[("KKT_EMU_CONTROL_TOKEN", "")], "KKT_EMU_CONTROL_TOKEN is set but empty")]
#[case::token_with_a_space(&[], &[("KKT_EMU_CONTROL_TOKEN", "a b")], "printable ASCII")]
#[case::no_token_flag(&["--control-token", "x"], &[], "--control-token")]
#[case::open_control_without_token(&["--control", "0.0.0.0:0"], &[], "without a control token")]
fn a_bad_token_or_an_open_control_api_is_exit_2_with_the_reason(
    #[case] args: &[&str],
    #[case] env: &[(&str, &str)],
    #[case] reason: &str,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let args = with_secret_files(d, args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(exit_code(spawn(d, &args, env)), 2, "{args:?} {env:?}");
    let stderr = std::fs::read_to_string(d.join("stderr.log")).expect("stderr");
    assert!(stderr.contains(reason), "{args:?} {env:?}: {stderr}");
    assert!(!stderr.contains(SECRET_TEXT), "the secret leaked: {stderr}");
}

//! The control plane's guards: the header read timeout, the control token, the loopback-only default,
//! secrets from a file or the environment, and logs without colour codes when not on a terminal.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ofd_mock::{Config, Secret, ServeError};
use rstest::rstest;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tool_http::testing::{secret_file, with_secret_files};

use crate::{
    ANSWER_WAIT, FN, Mock, Outcome, POLL_LIMIT, message, read_all, receipt_with_fpd, send_to,
    test_config,
};

/// The header read timeout of the timeout tests.
const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
/// The control token of the token tests.
const TOKEN: &str = "t0ken-for-tests";
/// The secret `crate::receipt` signs with, as text.
const SECRET_TEXT: &str = "emulator-secret";

fn short_timeout_config() -> Config {
    Config {
        header_read_timeout_ms: HEADER_TIMEOUT.as_millis() as u64,
        ..test_config()
    }
}

/// Connects to the control plane, writes `bytes`, and returns what came back and when the mock closed.
async fn send_and_wait_for_close(addr: SocketAddr, bytes: &[u8]) -> (Outcome, Duration) {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect control");
    stream.write_all(bytes).await.expect("write");
    let outcome = read_all(&mut stream, ANSWER_WAIT).await;
    (outcome, start.elapsed())
}

#[tokio::test]
async fn a_half_sent_request_head_is_disconnected_after_the_header_read_timeout() {
    let mock = Mock::start_with(short_timeout_config()).await;
    let (outcome, after) = send_and_wait_for_close(
        mock.running.control_addr,
        b"GET /_mock/health HTTP/1.1\r\nHost: mock\r\n",
    )
    .await;
    assert!(outcome.closed_empty(), "{outcome:?} after {after:?}");
    assert!(after >= HEADER_TIMEOUT, "closed after {after:?}");
    // A whole request still gets its answer.
    assert_eq!(mock.get("/_mock/health").await.0, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_same_timeout() {
    let mock = Mock::start_with(short_timeout_config()).await;
    let (outcome, after) = send_and_wait_for_close(
        mock.running.control_addr,
        b"GET /_mock/health HTTP/1.1\r\nHost: mock\r\n\r\n",
    )
    .await;
    let Outcome::Closed(answer) = &outcome else {
        panic!("{outcome:?} after {after:?}");
    };
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{outcome:?}");
    assert!(after >= HEADER_TIMEOUT, "closed after {after:?}");
}

/// One control call with an optional `Authorization` header: the status and the JSON body.
async fn call(mock: &Mock, method: &str, path: &str, auth: Option<&str>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{}{path}", mock.running.control_addr);
    let mut request = match method {
        "GET" => client.get(url),
        _ => client
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"mode":"online"}"#),
    };
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.expect("control call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every control route, with the status it answers to a caller holding the token.
const ROUTES: &[(&str, &str, u16)] = &[
    ("GET", "/_mock/health", 200),
    ("GET", "/_mock/stats", 200),
    ("GET", "/_mock/documents", 200),
    ("GET", "/_mock/mode", 200),
    ("POST", "/_mock/mode", 200),
    ("POST", "/set_mode", 200),
    ("GET", "/_mock/timeline?until_ms=10", 400),
    ("POST", "/_mock/reset", 200),
    ("GET", "/_mock/nothing", 404),
];

#[rstest]
#[case::no_header(None, false)]
#[case::wrong_token(Some("Bearer t0ken-for-testz"), false)]
#[case::token_prefix(Some("Bearer t0ken"), false)]
#[case::basic_scheme(Some("Basic t0ken-for-tests"), false)]
#[case::bare_token(Some("t0ken-for-tests"), false)]
#[case::right_token(Some("Bearer t0ken-for-tests"), true)]
#[case::lowercase_scheme(Some("bearer t0ken-for-tests"), true)]
#[tokio::test]
async fn with_a_token_every_control_route_needs_it(
    #[case] auth: Option<&str>,
    #[case] admitted: bool,
) {
    let mock = Mock::start_with(Config {
        control_token: Some(Secret::new(TOKEN)),
        ..test_config()
    })
    .await;
    // The OFD port is not behind the token.
    mock.send(1).await.ack();
    for &(method, path, with_token) in ROUTES {
        let (status, body) = call(&mock, method, path, auth).await;
        if admitted {
            assert_eq!(status, with_token, "{method} {path}: {body}");
        } else {
            assert_eq!(status, 401, "{method} {path}: {body}");
            assert_eq!(body["code"], "unauthorized", "{method} {path}: {body}");
            assert_eq!(body["definite"], true);
        }
    }
    // A refused reset wiped nothing; an admitted one did.
    let unique = mock.running.state.store.list(None).len();
    assert_eq!(unique, if admitted { 0 } else { 1 });
}

#[tokio::test]
async fn without_a_token_the_control_plane_binds_loopback_only() {
    let open = Config {
        control: SocketAddr::from(([0, 0, 0, 0], 0)),
        ..test_config()
    };
    let refused = ofd_mock::serve(open.clone()).await.unwrap_err();
    assert!(
        matches!(refused, ServeError::Unprotected { .. }),
        "{refused}"
    );
    assert_eq!(refused.exit_code(), ofd_mock::EXIT_BAD_INPUT);
    assert!(refused.to_string().contains("without a control token"));
    let guarded = ofd_mock::serve(Config {
        control_token: Some(Secret::new(TOKEN)),
        ..open
    })
    .await
    .expect("a guarded control plane may bind any address");
    guarded.shutdown().await;
    // Without a token, on loopback, nothing changes: no header needed.
    let mock = Mock::start().await;
    assert_eq!(call(&mock, "POST", "/_mock/reset", None).await.0, 200);
}

/// The binary, started with `args` and `env` only (no inherited OFD_MOCK_*, RUST_LOG or NO_COLOR),
/// stderr into `log`.
fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ofd-mock"));
    for var in [
        "OFD_MOCK_LISTEN",
        "OFD_MOCK_CONTROL",
        "OFD_MOCK_VERIFY_FPD",
        "OFD_MOCK_CONTROL_TOKEN",
        "RUST_LOG",
        "NO_COLOR",
    ] {
        command.env_remove(var);
    }
    // Ephemeral loopback ports through the environment, so a case's `--control` overrides them.
    command
        .env("OFD_MOCK_LISTEN", "127.0.0.1:0")
        .env("OFD_MOCK_CONTROL", "127.0.0.1:0")
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn ofd-mock")
}

/// Waits (bounded) for the child to exit on its own; kills it and fails when it does not.
fn exit_code(child: Child) -> i32 {
    tool_http::testing::exit_code(child, POLL_LIMIT)
}

/// A started binary: its OFD and control addresses; SIGTERM and a bounded wait for exit 0 on `stop`.
struct Running {
    child: Child,
    ofd: SocketAddr,
    control: SocketAddr,
}

impl Running {
    fn start(args: &[&str], env: &[(&str, &str)], log: &Path) -> Running {
        let mut child = spawn(args, env, log);
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("start line");
        let field = |key: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| {
                    let log = std::fs::read_to_string(log).unwrap_or_default();
                    panic!("no {key} in {line:?}; stderr: {log}")
                })
        };
        let (ofd, control) = (field("ofd="), field("control="));
        Running {
            child,
            ofd,
            control,
        }
    }

    fn stop(self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        assert_eq!(exit_code(self.child), 0);
    }
}

/// How the FPD secret reaches the binary.
#[derive(Debug, Clone, Copy)]
enum Way {
    Argv,
    File,
    Env,
}

#[rstest]
#[case::argv(Way::Argv)]
#[case::file(Way::File)]
#[case::env(Way::Env)]
#[tokio::test]
async fn the_fpd_secret_may_come_from_argv_a_file_or_the_environment(#[case] way: Way) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = secret_file(dir.path(), "fpd", &format!("{SECRET_TEXT}\n"), 0o600);
    let file = file.to_str().expect("utf-8 path");
    let (args, env): (Vec<&str>, Vec<(&str, &str)>) = match way {
        Way::Argv => (vec!["--verify-fpd", SECRET_TEXT], vec![]),
        Way::File => (vec!["--verify-fpd-file", file], vec![]),
        Way::Env => (vec![], vec![("OFD_MOCK_VERIFY_FPD", SECRET_TEXT)]),
    };
    let mock = Running::start(&args, &env, &dir.path().join("stderr.log"));
    let signed = send_to(mock.ofd, &message(1, 100), ANSWER_WAIT).await;
    assert_eq!(signed.ack().response_code, 0, "{way:?}");
    let forged = ofd_proto::build_message(FN, 2, &receipt_with_fpd(2, 100, 1234)).unwrap();
    let forged = send_to(mock.ofd, &forged, ANSWER_WAIT).await;
    assert_eq!(forged.ack().response_code, 14, "{way:?}");
    mock.stop();
}

#[rstest]
#[case::argv_and_file(&["--verify-fpd", "x", "--verify-fpd-file", "{secret}"], &[], "--verify-fpd and --verify-fpd-file")]
#[case::file_and_env(&["--verify-fpd-file", "{secret}"], &[("OFD_MOCK_VERIFY_FPD", "x")], "--verify-fpd-file and OFD_MOCK_VERIFY_FPD")]
#[case::argv_and_env(&["--verify-fpd", "x"], &[("OFD_MOCK_VERIFY_FPD", "x")], "--verify-fpd and OFD_MOCK_VERIFY_FPD")]
#[case::missing_file(&["--verify-fpd-file", "{dir}/missing"], &[], "cannot read --verify-fpd-file")]
#[case::empty_file(&["--verify-fpd-file", "{empty}"], &[], "is empty")]
#[case::readable_by_others(&["--verify-fpd-file", "{open}"], &[], "readable by group or others")]
#[case::empty_env(&[], &[("OFD_MOCK_VERIFY_FPD", "")], "OFD_MOCK_VERIFY_FPD is set but empty")]
#[case::token_file_and_env(&["--control-token-file", "{secret}"], &[("OFD_MOCK_CONTROL_TOKEN", "x")], "--control-token-file and OFD_MOCK_CONTROL_TOKEN")]
#[case::token_with_a_space(&[], &[("OFD_MOCK_CONTROL_TOKEN", "a b")], "printable ASCII")]
#[case::open_control_without_token(&["--control", "0.0.0.0:0"], &[], "without a control token")]
fn a_bad_secret_or_an_open_control_plane_is_exit_2_with_the_reason(
    #[case] args: &[&str],
    #[case] env: &[(&str, &str)],
    #[case] reason: &str,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let args = with_secret_files(d, args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let log = d.join("stderr.log");
    assert_eq!(exit_code(spawn(&args, env, &log)), 2, "{args:?} {env:?}");
    let stderr = std::fs::read_to_string(&log).expect("stderr");
    assert!(stderr.contains(reason), "{args:?} {env:?}: {stderr}");
    let leaked = stderr.contains(tool_http::testing::SECRET_TEXT);
    assert!(!leaked, "the secret leaked: {stderr}");
}

#[tokio::test]
async fn the_binary_checks_the_token_from_a_file_and_logs_without_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = secret_file(dir.path(), "token", &format!("{TOKEN}\n"), 0o400);
    let log = dir.path().join("stderr.log");
    let args = ["--control-token-file", token.to_str().expect("utf-8 path")];
    let mock = Running::start(&args, &[("RUST_LOG", "ofd_mock=debug")], &log);
    let url = format!("http://{}/_mock/mode", mock.control);
    let client = reqwest::Client::new();
    let refused = client.get(&url).send().await.expect("GET");
    assert_eq!(refused.status().as_u16(), 401);
    // A mode change logs a line at info.
    let changed = client
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"mode":"offline","refuse":"reset"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(changed.status().as_u16(), 200);
    mock.stop();
    let log = std::fs::read(&log).expect("log");
    let text = String::from_utf8_lossy(&log);
    assert!(text.contains("mode changed"), "{text}");
    assert!(text.contains("control request refused"), "{text}");
    assert!(
        !log.contains(&0x1b),
        "an ESC byte in the log file: {text:?}"
    );
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
}

//! Who may call what (issue #15): every route against every kind of credential, the cross-site
//! POST a web page could send, the start-up refusals (exit 2), and that no secret ever leaves.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rstest::rstest;
use serde_json::{Value, json};

use crate::harness::Stack;

const ADMIN_SECRET: &str = "admin-secret-0123456789abcdef";
const POS_SECRET: &str = "pos-secret-0123456789abcdef";
/// A well-formed secret no token has.
const WRONG_SECRET: &str = "wrong-secret-0123456789abcdef";

fn tokens_flag() -> String {
    format!("ops:admin:{ADMIN_SECRET},till1:pos:{POS_SECRET}")
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Needs {
    Nothing,
    Pos,
    Admin,
}

/// What the client presents.
#[derive(Debug, Clone, Copy)]
enum Credential {
    None,
    Wrong,
    Pos,
    Admin,
}

impl Credential {
    fn header(self) -> Option<String> {
        match self {
            Credential::None => None,
            Credential::Wrong => Some(format!("Bearer {WRONG_SECRET}")),
            Credential::Pos => Some(format!("Bearer {POS_SECRET}")),
            Credential::Admin => Some(format!("Bearer {ADMIN_SECRET}")),
        }
    }

    /// The status a route that needs `needs` answers, when it answers `served` to those allowed.
    fn expected(self, needs: Needs, served: u16) -> u16 {
        match (self, needs) {
            (_, Needs::Nothing) | (Credential::Admin, _) | (Credential::Pos, Needs::Pos) => served,
            (Credential::Pos, Needs::Admin) => 403,
            (Credential::None | Credential::Wrong, _) => 401,
        }
    }
}

/// One row: a route, what it needs, and the answer it gives when the auth layer lets the request
/// through. The arguments are harmless: unknown ids and an empty sale prove the handler ran
/// without changing anything.
#[rstest]
#[case::sell("POST", "/v1/kkt/receipt", Some(json!({})), Needs::Pos, 400)]
#[case::receipt_by_key("GET", "/v1/kkt/receipt?idempotency_key=none", None, Needs::Pos, 404)]
#[case::receipt_by_id("GET", "/v1/kkt/receipt/none", None, Needs::Pos, 404)]
#[case::resolve(
    "POST",
    "/v1/kkt/receipt/none/resolve",
    Some(json!({"reason": "auth matrix"})),
    Needs::Admin,
    404
)]
#[case::buffer_status("GET", "/v1/kkt/buffer/status", None, Needs::Pos, 200)]
#[case::buffer_sync("POST", "/v1/kkt/buffer/sync", None, Needs::Admin, 200)]
#[case::dlq_list("GET", "/v1/kkt/buffer/dlq", None, Needs::Pos, 200)]
#[case::dlq_retry("POST", "/v1/kkt/buffer/dlq/none/retry", None, Needs::Admin, 404)]
#[case::dlq_retry_many(
    "POST",
    "/v1/kkt/buffer/dlq/retry",
    Some(json!({"receipt_ids": ["none"]})),
    Needs::Admin,
    200
)]
#[case::backup_unconfigured("POST", "/v1/admin/backup", None, Needs::Admin, 409)]
#[case::shift_open("POST", "/v1/kkt/shift/open", None, Needs::Pos, 200)]
#[case::kkt_status("GET", "/v1/kkt/status", None, Needs::Pos, 200)]
#[case::health("GET", "/v1/health", None, Needs::Nothing, 200)]
#[case::ready("GET", "/v1/ready", None, Needs::Nothing, 200)]
#[case::metrics("GET", "/metrics", None, Needs::Admin, 200)]
#[case::openapi("GET", "/openapi.json", None, Needs::Nothing, 200)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_by_credential(
    #[case] method: &str,
    #[case] path: &str,
    #[case] body: Option<Value>,
    #[case] needs: Needs,
    #[case] served: u16,
    #[values(
        Credential::None,
        Credential::Wrong,
        Credential::Pos,
        Credential::Admin
    )]
    credential: Credential,
) {
    let s = Stack::with_adapter(&["--auth-token", &tokens_flag()]).await;
    check(
        &s,
        method,
        path,
        body,
        credential,
        credential.expected(needs, served),
    )
    .await;
}

/// Closing the shift needs an open one to answer 200, so its rows open it first (as admin).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shift_close_by_credential(
    #[values(
        Credential::None,
        Credential::Wrong,
        Credential::Pos,
        Credential::Admin
    )]
    credential: Credential,
) {
    let s = Stack::with_adapter(&["--auth-token", &tokens_flag()]).await;
    check(
        &s,
        "POST",
        "/v1/kkt/shift/open",
        None,
        Credential::Admin,
        200,
    )
    .await;
    let expected = credential.expected(Needs::Pos, 200);
    check(
        &s,
        "POST",
        "/v1/kkt/shift/close",
        None,
        credential,
        expected,
    )
    .await;
    let shift_open = s.emu("GET", "/_emu/state", None).await["shift_open"] == true;
    assert_eq!(
        shift_open,
        expected != 200,
        "the shift closed only when allowed"
    );
}

/// Sends one request and checks its status; a refusal must be in the error contract.
async fn check(
    s: &Stack,
    method: &str,
    path: &str,
    body: Option<Value>,
    credential: Credential,
    expected: u16,
) {
    let header = credential.header();
    let headers: Vec<(&str, &str)> = header
        .iter()
        .map(|h| ("authorization", h.as_str()))
        .collect();
    let (status, answer) = s.call(method, path, body, &headers).await;
    assert_eq!(
        status, expected,
        "{method} {path} with {credential:?}: {answer}"
    );
    let code = match status {
        401 => "unauthorized",
        403 => "forbidden",
        _ => return,
    };
    assert_eq!(
        (&answer["code"], &answer["definite"]),
        (&json!(code), &json!(true)),
        "{answer}"
    );
}

/// The cross-site POST: a web page posting `text/plain` with its own `Origin` cannot close
/// the shift, and each of the two defences refuses on its own. An allowed origin is served, with
/// CORS; a request addressed to another name is refused while there are no tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_post_cannot_close_the_shift() {
    let s = Stack::with_adapter(&["--allowed-origin", "http://till.local:8080"]).await;
    let (status, r) = s.call("POST", "/v1/kkt/shift/open", None, &[]).await;
    assert_eq!(status, 200, "{r}");
    let close = |content_type: &'static str, origin: Option<&'static str>| {
        let mut request = s
            .http
            .post(format!("{}/v1/kkt/shift/close", s.adapter_url))
            .header("content-type", content_type)
            .body("x");
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        async move {
            let answer = request.send().await.expect("adapter answers");
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, r) = close("text/plain", Some("http://evil.example")).await;
    assert!(status == 415 || status == 403, "{status} {r}");
    let (status, r) = close("text/plain", None).await;
    assert_eq!(
        (status, &r["code"]),
        (415, &json!("unsupported_media_type")),
        "{r}"
    );
    let (status, r) = close("application/json", Some("http://evil.example")).await;
    assert_eq!((status, &r["code"]), (403, &json!("forbidden")), "{r}");
    assert_eq!(s.emu("GET", "/_emu/state", None).await["shift_open"], true);
    // The configured origin gets its preflight answered and is served like any other client.
    let preflight = |origin: &'static str| {
        s.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/kkt/shift/close", s.adapter_url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let answer = preflight("http://till.local:8080")
        .await
        .expect("preflight");
    assert_eq!(answer.status().as_u16(), 204);
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "http://till.local:8080"
    );
    let answer = preflight("http://evil.example").await.expect("preflight");
    assert_eq!(answer.status().as_u16(), 403);
    assert!(!answer.headers().contains_key("access-control-allow-origin"));
    let (status, r) = s
        .call(
            "GET",
            "/v1/kkt/status",
            None,
            &[("origin", "http://till.local:8080")],
        )
        .await;
    assert_eq!(status, 200, "{r}");
    // Without tokens, a page whose own name points at this machine (DNS rebinding) is refused.
    let (status, r) = s
        .call(
            "GET",
            "/v1/kkt/buffer/dlq",
            None,
            &[("host", "evil.example:8000")],
        )
        .await;
    assert_eq!((status, &r["code"]), (403, &json!("forbidden")), "{r}");
    assert_eq!(s.emu("GET", "/_emu/state", None).await["shift_open"], true);
}

/// Runs the adapter binary with `args` and returns its exit code and standard error; it must exit
/// within a few seconds, since configuration is refused before anything is opened.
fn exit_of(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adapter"))
        .args(args)
        .env_remove("ADAPTER_AUTH_TOKENS")
        .env_remove("ADAPTER_AUTH_TOKENS_FILE")
        .env_remove("ADAPTER_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("adapter starts");
    for _ in 0..200 {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().expect("adapter output");
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("adapter output");
    panic!(
        "the adapter kept running; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn base_args(dir: &Path) -> Vec<String> {
    vec![
        "--db".into(),
        dir.join("buffer.db").display().to_string(),
        "--kkt-port".into(),
        dir.join("no-such-tty").display().to_string(),
    ]
}

#[test]
fn no_tokens_on_a_public_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = base_args(dir.path());
    args.extend(["--listen".into(), "0.0.0.0:0".into()]);
    let (code, stderr) = exit_of(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("setting `listen`") && stderr.contains("no API token"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("buffer.db").exists(),
        "refused before the journal is opened"
    );
}

#[test]
fn a_bad_line_in_the_tokens_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        format!("# the tills\n\ntill1 pos {POS_SECRET}\nops admin\n"),
    )
    .unwrap();
    let mut args = base_args(dir.path());
    args.extend(["--auth-tokens-file".into(), file.display().to_string()]);
    let (code, stderr) = exit_of(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:4: expected NAME ROLE SECRET", file.display())),
        "{stderr}"
    );
    assert!(!stderr.contains(POS_SECRET), "{stderr}");
}

#[test]
fn duplicate_secrets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = base_args(dir.path());
    let twice = format!("a:pos:{POS_SECRET},b:admin:{POS_SECRET}");
    args.extend(["--auth-token".into(), twice]);
    let (code, stderr) = exit_of(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`a` and `b` have the same secret"),
        "{stderr}"
    );
    assert!(!stderr.contains(POS_SECRET), "{stderr}");
}

/// Tokens from a file and from a TOML file's `[[auth.token]]` tables authenticate, and with them
/// the adapter starts on every address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_files_open_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("till1 pos {POS_SECRET}\n")).unwrap();
    let toml = dir.path().join("adapter.toml");
    std::fs::write(
        &toml,
        format!("[[auth.token]]\nname = \"ops\"\nrole = \"admin\"\nsecret = \"{ADMIN_SECRET}\"\n"),
    )
    .unwrap();
    let s = Stack::with_adapter(&[
        "--listen",
        "0.0.0.0:0",
        "--auth-tokens-file",
        &tokens.display().to_string(),
        "--config",
        &toml.display().to_string(),
    ])
    .await;
    check(&s, "GET", "/v1/kkt/buffer/dlq", None, Credential::None, 401).await;
    check(&s, "GET", "/v1/kkt/buffer/dlq", None, Credential::Pos, 200).await;
    check(
        &s,
        "POST",
        "/v1/kkt/buffer/sync",
        None,
        Credential::Pos,
        403,
    )
    .await;
    check(
        &s,
        "POST",
        "/v1/kkt/buffer/sync",
        None,
        Credential::Admin,
        200,
    )
    .await;
}

/// The secrets, the right ones and a wrong one, never appear in an answer, in the log (at debug),
/// or in the journal's files; the token's name is what the log and the audit trail show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaves_the_adapter() {
    let mut s = Stack::with_adapter_logging(&["--auth-token", &tokens_flag()], "debug").await;
    let mut answers = Vec::new();
    for credential in [
        Credential::None,
        Credential::Wrong,
        Credential::Pos,
        Credential::Admin,
    ] {
        let header = credential.header().unwrap_or_default();
        let auth = [("authorization", header.as_str())];
        for (method, path, body) in [
            (
                "POST",
                "/v1/kkt/receipt",
                Some(crate::harness::bread(&format!("leak-{credential:?}"))),
            ),
            ("GET", "/v1/kkt/receipt/none", None),
            (
                "POST",
                "/v1/kkt/receipt/none/resolve",
                Some(json!({"reason": "leak check"})),
            ),
            ("POST", "/v1/kkt/buffer/sync", None),
            ("GET", "/v1/health", None),
        ] {
            answers.push(s.call(method, path, body, &auth).await);
        }
    }
    assert!(
        answers.iter().any(|(status, _)| *status == 401)
            && answers.iter().any(|(status, _)| *status == 403)
            && answers
                .iter()
                .any(|(status, r)| *status == 200 && r["status"] == "printed"),
        "refusals and a sale were exercised: {answers:?}"
    );
    assert_eq!(s.stop_adapter(), Some(0));
    let log = s.log();
    let mut files = vec![("log".to_owned(), log.clone().into_bytes())];
    files.push(("answers".to_owned(), format!("{answers:?}").into_bytes()));
    for entry in std::fs::read_dir(s.db_path().parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
    }
    for (what, bytes) in &files {
        for secret in [ADMIN_SECRET, POS_SECRET, WRONG_SECRET] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{what} contains a secret"
            );
        }
    }
    assert!(
        log.contains("till1") && log.contains("ops"),
        "the log names the requesters: {log}"
    );
}

//! The OpenAPI 3 document (issue #15): the committed `docs/openapi.json` is the generated one, the
//! adapter serves exactly it, an independent validator (openapi-spec-validator from PyPI, in a
//! venv under the target dir) accepts it, it documents exactly the routes `app()` registers, and
//! each documented role is the one the auth layer enforces.
//!
//! A missing Python or an unreachable PyPI fails the validator test with the reason: it never
//! skips.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::Stack;

/// How to rewrite the committed document after a change of the API.
const UPDATE_COMMAND: &str = "UPDATE_OPENAPI=1 cargo test -p adapter --test it openapi";

fn committed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

fn committed() -> String {
    fs::read_to_string(committed_path()).unwrap_or_default()
}

fn document() -> Value {
    serde_json::from_str(&adapter::http::openapi::openapi_json()).expect("the document is JSON")
}

#[test]
fn committed_document_is_current() {
    let want = adapter::http::openapi::openapi_json();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        fs::write(committed_path(), &want).expect("docs/openapi.json written");
    }
    assert!(
        committed() == want,
        "docs/openapi.json is stale; regenerate it with `{UPDATE_COMMAND}`"
    );
}

/// The documented operations, as (METHOD, path pattern).
fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let routed: BTreeSet<(String, String)> = adapter::http::routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .collect();
    let documented = documented_operations(&document());
    assert_eq!(
        routed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes of app() missing from the OpenAPI document (add a stub and a row in http/openapi.rs)"
    );
    assert_eq!(
        documented.difference(&routed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "operations in the OpenAPI document that app() does not route"
    );
}

#[test]
fn every_error_answer_is_an_error_body_with_its_codes() {
    let doc = document();
    let codes = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]
        .as_array()
        .expect("ErrorBody.code lists the codes")
        .len();
    assert_eq!(codes, adapter_api::ErrorCode::ALL.len());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, answer) in operation["responses"].as_object().unwrap() {
                let status: u16 = status.parse().unwrap();
                let text = answer.to_string();
                if status >= 400 {
                    assert!(
                        text.contains("#/components/schemas/ErrorBody"),
                        "{method} {path} {status}: {answer}"
                    );
                }
            }
        }
    }
}

/// The role each operation's security requirement names: `None` when it is open.
fn documented_role(operation: &Value) -> Option<String> {
    let requirements = operation["security"]
        .as_array()
        .expect("security is explicit");
    match requirements.as_slice() {
        [] => None,
        [one] => Some(one["bearer"][0].as_str().expect("a role scope").to_owned()),
        more => panic!("one requirement at most: {more:?}"),
    }
}

const ADMIN_SECRET: &str = "admin-secret-0123456789abcdef";
const POS_SECRET: &str = "pos-secret-0123456789abcdef";

/// Each operation, called without a token and with a pos token, is refused exactly as its
/// documented role says. No body and unknown ids: a request the auth layer lets through is
/// refused by its handler, or changes nothing that matters here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_roles_are_enforced() {
    let tokens = format!("ops:admin:{ADMIN_SECRET},till1:pos:{POS_SECRET}");
    let s = Stack::with_adapter(&["--auth-token", &tokens]).await;
    let doc = document();
    let pos = format!("Bearer {POS_SECRET}");
    let mut wrong = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let role = documented_role(operation);
            let url = path.replace("{receipt_id}", "none");
            let method = method.to_uppercase();
            let (without, _) = s.call(&method, &url, None, &[]).await;
            let (with_pos, _) = s
                .call(&method, &url, None, &[("authorization", pos.as_str())])
                .await;
            let expected = match role.as_deref() {
                None => (false, false),
                Some("pos") => (true, false),
                Some("admin") => (true, true),
                Some(other) => panic!("{method} {path}: unknown role {other}"),
            };
            let seen = (without == 401, with_pos == 403);
            if seen != expected {
                wrong.push(format!(
                    "{method} {path}: documented {}, but without a token it answers {without} and \
                     with a pos token {with_pos}",
                    role.as_deref().unwrap_or("open")
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the document's roles (OPERATIONS in http/openapi.rs) differ from the auth layer's \
         (`needed_role` in http/auth.rs):\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_committed_one() {
    // Without tokens every request addressed to a loopback address is served.
    let s = Stack::with_adapter(&[]).await;
    let answer = s
        .http
        .get(format!("{}/openapi.json", s.adapter_url))
        .send()
        .await
        .expect("adapter answers");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let served = answer.text().await.expect("a body");
    assert!(
        served == committed(),
        "GET /openapi.json differs from docs/openapi.json; regenerate it with `{UPDATE_COMMAND}`"
    );
}

/// The validator and its version, pinned so every run asks the same implementation.
const VALIDATOR: &str = "openapi-spec-validator==0.9.0";
const VALIDATOR_VERSION: &str = "0.9.0";
/// Bound on creating the venv and installing the validator from PyPI.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Bound on one validation.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` to completion within `limit`, killing it if it overruns.
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
            panic!("{what}: no result within {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

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

/// Whether the venv's interpreter has the pinned validator.
fn has_validator(python: &Path) -> bool {
    let check = format!(
        "import sys, importlib.metadata as m; \
         sys.exit(m.version('openapi-spec-validator') != '{VALIDATOR_VERSION}')"
    );
    python.exists()
        && Command::new(python)
            .args(["-c", &check])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// The venv's Python with the validator installed (the pattern of kkt-emulator's pyshtrih test):
/// built in a directory of its own and renamed into place only when complete, so an interrupted
/// install is never reused and two test processes never share a half-built one.
fn venv_python() -> PathBuf {
    // Tests of this binary run in parallel threads of one process: one builds, the others wait.
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_venv).clone()
}

fn build_venv() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi-validator-venv");
    let python = root.join("bin").join("python");
    if has_validator(&python) {
        return python;
    }
    let partial = root.with_file_name(format!(
        "openapi-validator-venv.partial-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&partial);
    run_ok(
        Command::new("python3").args(["-m", "venv"]).arg(&partial),
        INSTALL_TIMEOUT,
        "creating a Python venv (`python3 -m venv`; Debian needs the python3-venv package)",
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
            .args(["--timeout", "30", VALIDATOR]),
        INSTALL_TIMEOUT,
        "installing openapi-spec-validator from PyPI with pip",
    );
    assert!(
        has_validator(&partial_python),
        "pip reported success but {} has no {VALIDATOR}",
        partial_python.display()
    );
    if root.exists() && !has_validator(&python) {
        // A venv left from another pin or a broken one: replaced, never patched.
        let _ = fs::remove_dir_all(&root);
    }
    if fs::rename(&partial, &root).is_err() {
        // Another test process finished its venv first; use that one.
        assert!(
            has_validator(&python),
            "cannot move the venv into {}",
            root.display()
        );
        let _ = fs::remove_dir_all(&partial);
    }
    python
}

/// Validates the JSON file `doc` and prints the version the validator detected.
const VALIDATE_PY: &str = "\
import json, sys
from openapi_spec_validator import validate
from openapi_spec_validator.versions.shortcuts import get_spec_version
spec = json.load(open(sys.argv[1]))
validate(spec)
print(get_spec_version(spec))
";

fn validate(python: &Path, doc: &Path) -> Output {
    run_bounded(
        Command::new(python).args(["-c", VALIDATE_PY]).arg(doc),
        VALIDATE_TIMEOUT,
        "openapi-spec-validator",
    )
}

#[test]
fn an_independent_validator_accepts_the_document() {
    let python = venv_python();
    let dir = tempfile::tempdir().expect("temp dir");
    let doc = dir.path().join("openapi.json");
    fs::write(&doc, adapter::http::openapi::openapi_json()).unwrap();
    let out = validate(&python, &doc);
    assert!(
        out.status.success(),
        "openapi-spec-validator refuses the document:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(version.contains("3.1"), "detected version {version}");
    // The validator can fail: a response without its required `description` is refused.
    let mut broken = document();
    broken["paths"]["/v1/ready"]["get"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    fs::write(&doc, broken.to_string()).unwrap();
    let out = validate(&python, &doc);
    assert!(
        !out.status.success(),
        "the validator accepted a response without a description"
    );
}

/// The answer schema the document gives for `method path` and `status`, made strict for the
/// check: every object schema refuses fields it does not list, so together with the answers'
/// required fields an answer must carry exactly the documented fields.
fn strict_answer_schema(doc: &Value, method: &str, path: &str, status: u16) -> Value {
    let operation = &doc["paths"][path][method.to_lowercase()];
    let schema =
        operation["responses"][status.to_string()]["content"]["application/json"]["schema"].clone();
    assert!(
        schema.is_object(),
        "{method} {path} answered {status}, which the document does not give"
    );
    let mut components = doc["components"]["schemas"].clone();
    for (_, component) in components.as_object_mut().unwrap() {
        if component.get("properties").is_some() && component.get("additionalProperties").is_none()
        {
            component["additionalProperties"] = Value::Bool(false);
        }
    }
    let mut root = schema;
    root["components"] = serde_json::json!({ "schemas": components });
    root
}

/// Checks every sample (label, schema, answer) with the validator's JSON Schema implementation
/// (openapi-schema-validator, installed with it) in one run.
const CONFORM_PY: &str = "\
import json, sys
from openapi_schema_validator import OAS31Validator
failures = []
for label, schema, answer in json.load(open(sys.argv[1])):
    errors = [e.message for e in OAS31Validator(schema).iter_errors(answer)]
    if errors:
        failures.append(label + ': ' + '; '.join(errors) + '\\n  ' + json.dumps(answer))
print('\\n'.join(failures))
sys.exit(1 if failures else 0)
";

/// The adapter's live answers, on every route that answers JSON and with errors among them, are
/// exactly what the document says for their status: the document is checked against the wire,
/// not only against itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_answers_match_the_document() {
    let python = tokio::task::spawn_blocking(venv_python)
        .await
        .expect("venv");
    let doc = document();
    let s = Stack::with_manual_sync_and_a_rejecting_ofd().await;
    let mut samples = Vec::new();
    let mut ask = async |method: &str, template: &str, url: &str, body: Option<Value>| {
        let (status, answer) = s.call(method, url, body, &[]).await;
        let schema = strict_answer_schema(&doc, method, template, status);
        samples.push(serde_json::json!([
            format!("{method} {url} {status}"),
            schema,
            answer
        ]));
        (status, answer)
    };
    let (status, sold) = ask(
        "POST",
        "/v1/kkt/receipt",
        "/v1/kkt/receipt",
        Some(crate::harness::lenses("openapi-1")),
    )
    .await;
    assert_eq!(status, 200, "{sold}");
    let id = sold["receipt_id"].as_str().expect("an id").to_owned();
    ask(
        "POST",
        "/v1/kkt/receipt",
        "/v1/kkt/receipt",
        Some(serde_json::json!({})),
    )
    .await;
    let by_key = "/v1/kkt/receipt?idempotency_key=openapi-1";
    ask("GET", "/v1/kkt/receipt", by_key, None).await;
    ask(
        "GET",
        "/v1/kkt/receipt",
        "/v1/kkt/receipt?idempotency_key=none",
        None,
    )
    .await;
    let by_id = format!("/v1/kkt/receipt/{id}");
    ask("GET", "/v1/kkt/receipt/{receipt_id}", &by_id, None).await;
    // The OFD refuses the head of the queue: the DLQ, the stuck head and a degraded health.
    let sync = "/v1/kkt/buffer/sync?force=true";
    ask("POST", "/v1/kkt/buffer/sync", sync, None).await;
    let (_, dlq) = ask("GET", "/v1/kkt/buffer/dlq", "/v1/kkt/buffer/dlq", None).await;
    let head = dlq["documents"][0]["receipt_id"]
        .as_str()
        .expect("a DLQ document")
        .to_owned();
    ask(
        "GET",
        "/v1/kkt/buffer/status",
        "/v1/kkt/buffer/status",
        None,
    )
    .await;
    let (status, health) = ask("GET", "/v1/health", "/v1/health", None).await;
    assert_eq!(status, 503, "degraded with a DLQ document: {health}");
    ask("GET", "/v1/ready", "/v1/ready", None).await;
    ask("GET", "/v1/kkt/status", "/v1/kkt/status", None).await;
    let retry_one = format!("/v1/kkt/buffer/dlq/{head}/retry");
    ask(
        "POST",
        "/v1/kkt/buffer/dlq/{receipt_id}/retry",
        &retry_one,
        None,
    )
    .await;
    let retry_none = "/v1/kkt/buffer/dlq/none/retry";
    ask(
        "POST",
        "/v1/kkt/buffer/dlq/{receipt_id}/retry",
        retry_none,
        None,
    )
    .await;
    let retry_all = Some(serde_json::json!({"all": true}));
    ask(
        "POST",
        "/v1/kkt/buffer/dlq/retry",
        "/v1/kkt/buffer/dlq/retry",
        retry_all,
    )
    .await;
    let resolve = format!("/v1/kkt/receipt/{id}/resolve");
    let reason = Some(serde_json::json!({"reason": "openapi conformance"}));
    ask(
        "POST",
        "/v1/kkt/receipt/{receipt_id}/resolve",
        &resolve,
        reason,
    )
    .await;
    ask("POST", "/v1/admin/backup", "/v1/admin/backup", None).await;
    ask("POST", "/v1/kkt/shift/close", "/v1/kkt/shift/close", None).await;
    ask("POST", "/v1/kkt/shift/open", "/v1/kkt/shift/open", None).await;
    ask("GET", "/openapi.json", "/openapi.json", None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("samples.json");
    fs::write(&file, Value::Array(samples).to_string()).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        run_bounded(
            Command::new(python).args(["-c", CONFORM_PY]).arg(&file),
            VALIDATE_TIMEOUT,
            "openapi-schema-validator",
        )
    })
    .await
    .expect("validator ran");
    assert!(
        out.status.success(),
        "answers that differ from the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

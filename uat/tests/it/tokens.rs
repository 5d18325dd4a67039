//! The run's API tokens and the `metric` step, against a stand-in adapter (a python3 script
//! installed as `adapter` in the bin folder): which token each request carries, that the tokens
//! reach the adapter through a file and never its command line, and that a secret in a log, an
//! answer or a journal column fails the scenario with the place it was found.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use uat::{Report, RunOptions, Verdict};

/// Answers every request with the name of the token it carried (`none` without one). `/metrics`
/// counts requests by token name; `/leak` does what a careless adapter might: logs the header,
/// stores it in its journal and echoes it in the answer.
const FAKE_ADAPTER: &str = r#"#!/usr/bin/env python3
import http.server, json, os, sqlite3, sys
args = sys.argv[1:]
port = int(args[args.index('--listen') + 1].rsplit(':', 1)[1])
db = sqlite3.connect(args[args.index('--db') + 1], isolation_level=None, check_same_thread=False)
db.execute('PRAGMA journal_mode = WAL')
db.execute('CREATE TABLE IF NOT EXISTS requests (path TEXT, who TEXT, auth TEXT)')
names = {}
for line in open(os.environ['ADAPTER_AUTH_TOKENS_FILE']):
    if line.strip() and not line.startswith('#'):
        name, role, secret = line.split()
        names[secret] = name
argv_secret = any(s in open('/proc/self/cmdline').read() for s in names)
counts = {}
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        auth = self.headers.get('Authorization', '')
        who = names.get(auth.split(' ', 1)[-1], 'none')
        counts[who] = counts.get(who, 0) + 1
        stored = auth if self.path == '/leak' else ''
        db.execute('INSERT INTO requests VALUES (?, ?, ?)', (self.path, who, stored))
        if self.path == '/metrics':
            body = ''.join('fake_requests_total{who="%s"} %d\n' % kv for kv in counts.items())
        else:
            body = json.dumps({'who': who, 'argv_secret': argv_secret, 'echo': stored})
        if self.path == '/leak':
            print('got', auth, flush=True)
        data = body.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = answer
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', port), H).serve_forever()
"#;

const HEAD: &str = r#"[scenario]
name = "tokens"
timeout = "60s"

[process.adapter]
command = "{{bin.adapter}}"
args = ["--listen", "127.0.0.1:{{port.adapter}}", "--db", "{{dir}}/adapter.db"]
db = "{{dir}}/adapter.db"
ready = { tcp = "127.0.0.1:{{port.adapter}}", timeout = "30s" }

"#;

/// Runs `steps` after [`HEAD`] with the stand-in adapter; every folder is kept.
fn run(steps: &str) -> (Report, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("adapter");
    std::fs::write(&bin, FAKE_ADAPTER).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = tmp.path().join("case.toml");
    std::fs::write(&path, format!("{HEAD}{steps}")).unwrap();
    let sc = uat::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        run_dir: tmp.path().join("run"),
        bin_dir: tmp.path().to_owned(),
        keep: true,
        seed: Some(1),
        sample: false,
    };
    let report = uat::run_scenario(&sc, &opts);
    let dir = report.kept_dir.clone().expect("kept");
    (report, dir, tmp)
}

fn history(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("history.jsonl")).unwrap()
}

#[test]
fn pos_routes_get_the_pos_token_admin_routes_the_admin_token_and_metrics_move() {
    let (r, dir, _tmp) = run(r#"[[step]]
http = "POST adapter /v1/kkt/receipt"
expect.json = { "$.who" = "uat-pos", "$.argv_secret" = false }

[[step]]
http = "GET adapter /v1/kkt/buffer/status"
expect.json = { "$.who" = "uat-pos" }

[[step]]
http = "POST adapter /v1/kkt/buffer/sync?force=true"
expect.json = { "$.who" = "uat-admin" }

[[step]]
name = "an explicit Authorization header is sent as written"
http = "GET adapter /v1/health"
headers = { Authorization = "Bearer wrong" }
expect.json = { "$.who" = "none" }

[[step]]
name = "a POS till started by the scenario reads its header from a file"
exec = "curl"
args = ["-sf", "-o", "curl.json", "-H", "@{{auth_header.pos}}", "http://127.0.0.1:{{port.adapter}}/x"]

[[step]]
metric = "fake_requests_total"
labels = { who = "uat-pos" }
eq = 3
save_as = "pos_before"

[[step]]
http = "POST adapter /v1/kkt/receipt"

[[step]]
metric = "fake_requests_total"
labels = { who = "uat-pos" }
gt = "{{pos_before}}"
lte = 4

[[step]]
name = "the scrapes themselves carry the admin token"
metric = "fake_requests_total"
labels = { who = "uat-admin" }
gte = 3
"#);
    assert_eq!(r.verdict, Verdict::Passed, "{}", history(&dir));
    let curl = std::fs::read_to_string(dir.join("curl.json")).unwrap();
    assert!(curl.contains(r#""who": "uat-pos""#), "{curl}");
    let h = history(&dir);
    assert!(
        h.contains(r#"fake_requests_total{who=\"uat-pos\"} = 4 (gt 3 ({{pos_before}}), lte 4)"#),
        "{h}"
    );
    assert!(h.contains("no secret in "), "{h}");
    let tokens = dir.join("auth/tokens");
    let mode = std::fs::metadata(&tokens).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_metric_that_does_not_hold_names_the_step_the_value_and_the_series_present() {
    let (r, _dir, _tmp) = run(r#"[[step]]
http = "POST adapter /v1/kkt/receipt"

[[step]]
metric = "fake_requests_total"
labels = { who = "uat-pos" }
gt = 1
timeout = "300ms"
interval = "50ms"

[[step]]
metric = "fake_requests"
"#);
    let Verdict::Failed(m) = &r.verdict else {
        panic!("{:?}", r.verdict)
    };
    assert!(
        m.contains("step 2 (metric `fake_requests_total{who=\"uat-pos\"}`) at "),
        "{m}"
    );
    assert!(m.contains("case.toml:14: gave up after "), "{m}");
    assert!(
        m.contains(r#"last: fake_requests_total{who="uat-pos"} = 1: expected gt 1"#),
        "{m}"
    );
}

#[test]
fn a_secret_in_a_log_an_answer_or_a_journal_column_fails_a_passing_scenario() {
    let (r, _dir, _tmp) = run(r#"[[step]]
http = "POST adapter /v1/kkt/receipt"

[[step]]
http = "GET adapter /leak"
expect.status = 200
"#);
    let Verdict::Failed(m) = &r.verdict else {
        panic!(
            "every step passed, but the leak must fail it: {:?}",
            r.verdict
        )
    };
    assert!(m.starts_with("token leak check: "), "{m}");
    // The marker line of the start comes first, then the adapter's own line.
    assert!(
        m.contains("adapter.stdout.log:2 (byte ")
            && m.contains("contains the secret of `uat-admin`"),
        "{m}"
    );
    assert!(
        m.contains("adapter.db: requests.auth rowid 2 contains the secret of `uat-admin`")
            && m.contains("adapter.db-wal:"),
        "{m}"
    );
    assert!(
        m.contains("the body of the answer to `GET adapter /leak` (status 200) contains the secret of `uat-admin`"),
        "{m}"
    );
    assert!(!m.contains("uat-pos`"), "the pos token never leaked: {m}");
}

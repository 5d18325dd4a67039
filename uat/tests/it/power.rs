//! Power-loss support against a stand-in: a python SQLite store whose data directory is a real
//! `powercut-fs` mount. With `synchronous=FULL` nothing acknowledged is lost over cuts at fixed
//! and random moments; with `synchronous=OFF` the cuts lose acknowledged items and the negative
//! control reports them as an expected failure. Also the crash-at-fsync loop, ENOSPC and heal.

use std::path::{Path, PathBuf};

use uat::history::{Event, Outcome, Phase};
use uat::{Report, RunOptions, Verdict};

/// A python store on `{{data.app}}`: POST /items/ID inserts ID into a WAL-mode SQLite table and
/// answers 200 (503 with `definite` when the insert fails, e.g. disk full); GET /items lists them.
/// SYNC is the `synchronous` setting: FULL fsyncs every commit, OFF never does.
const APP: &str = r#"
[process.app]
command = "python3"
args = ["-c", '''
import http.server, json, sqlite3, sys
db = sqlite3.connect(sys.argv[2] + '/app.db', isolation_level=None, check_same_thread=False)
db.execute('PRAGMA journal_mode=WAL')
db.execute('PRAGMA synchronous=' + sys.argv[3])
db.execute('CREATE TABLE IF NOT EXISTS items(id TEXT PRIMARY KEY)')
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(200, dict(items=[r[0] for r in db.execute('SELECT id FROM items')]))
    def do_POST(self):
        try:
            db.execute('INSERT OR IGNORE INTO items VALUES (?)', (self.path.rsplit('/', 1)[1],))
        except sqlite3.Error as e:
            return self.reply(503, dict(code='storage', message=str(e), definite=True))
        self.reply(200, dict(ok=True))
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
''', "{{port.app}}", "{{data.app}}", "SYNC"]
ready = { http_get = "http://127.0.0.1:{{port.app}}/items", timeout = "30s" }
db = "{{data.app}}/app.db"
data_dir = { powercut = true }
"#;

/// Cycles of five acknowledged inserts, a cut, remount, integrity check and restart.
fn cycles(sync: &str, expect: &str, cut: &str) -> String {
    format!(
        r#"[scenario]
name = "powercut-stand-in"
expect = "{expect}"
timeout = "120s"
{app}
[[step]]
repeat = 3
var = "cycle"

[[step.steps]]
repeat = 5

[[step.steps.steps]]
http = "POST app /items/c{{{{cycle}}}}-{{{{i}}}}"
expect.status = 200
append.items = "c{{{{cycle}}}}-{{{{i}}}}"

{cut}

[[step.steps]]
remount = "app"

[[step.steps]]
integrity_check = "app"

[[step.steps]]
start = "app"

[[check]]
power_loss = "items"
observe = "GET app /items"
ids = "$.items[*]"
integrity = ["app"]
cycles_min = 3
"#,
        app = APP.replace("SYNC", sync)
    )
}

const CUT: &str = "[[step.steps]]\npower_cut = \"app\"";

/// Builds `powercut-fs` once (the runner spawns the built binary) and returns the profile dir.
fn bin_dir() -> PathBuf {
    crate::built(&["powercut-fs"])
}

fn run(text: &str) -> (Report, Vec<Event>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("case.toml");
    std::fs::write(&path, text).unwrap();
    let sc = uat::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(sc.bins.contains("powercut-fs"));
    let opts = RunOptions {
        run_dir: tmp.path().join("run"),
        bin_dir: bin_dir(),
        keep: true,
        seed: Some(5),
        sample: false,
    };
    let report = uat::run_scenario(&sc, &opts);
    let dir = report.kept_dir.clone().expect("kept");
    let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let events = uat::history::parse_jsonl(&text).unwrap();
    assert_unmounted(&dir);
    (report, events, tmp)
}

/// The mount is gone and no `powercut-fs` of this folder is left.
fn assert_unmounted(dir: &Path) {
    let mnt = dir.join("data/app");
    assert!(
        !uat::disks::is_mounted(&mnt),
        "{} still mounted",
        mnt.display()
    );
    assert!(dir.join("data/app.backing").is_dir());
}

fn completed<'a>(events: &'a [Event], kind: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.phase == Phase::Complete && e.kind == kind)
        .collect()
}

fn figure(r: &Report) -> &str {
    r.figures
        .iter()
        .find(|f| f.starts_with("power_loss"))
        .unwrap_or_else(|| panic!("no power_loss figure in {:?}", r.figures))
}

#[test]
fn fsynced_commits_survive_every_cut() {
    let (r, events, _tmp) = run(&cycles("FULL", "pass", CUT));
    assert_eq!(r.verdict, Verdict::Passed, "{:?}", r.figures);
    assert_eq!(
        figure(&r),
        "power_loss items: cycles=3, acked=15, acked_missing=0, integrity_ok=4/4, double_fiscalized=0"
    );
    let cuts = completed(&events, "power_cut");
    assert_eq!(cuts.len(), 3);
    assert!(
        cuts[0].detail.starts_with("power cut: mode=power_cut "),
        "{}",
        cuts[0].detail
    );
    assert!(
        cuts[0].detail.contains("SIGKILL to `app`"),
        "{}",
        cuts[0].detail
    );
    assert_eq!(completed(&events, "remount").len(), 3);
}

#[test]
fn unsynced_commits_are_lost_and_the_negative_control_reports_them() {
    let (r, _events, _tmp) = run(&cycles("OFF", "fail", CUT));
    let Verdict::ExpectedFailure(m) = &r.verdict else {
        panic!("expected an expected failure, got {:?}", r.verdict);
    };
    assert!(
        m.contains("power_loss items: cycles=3, acked=15, acked_missing="),
        "{m}"
    );
    assert!(!m.contains("acked_missing=0,"), "{m}");
}

#[test]
fn a_negative_control_whose_checks_pass_fails() {
    let (r, _events, _tmp) = run(&cycles("FULL", "fail", CUT));
    let Verdict::Failed(m) = &r.verdict else {
        panic!("expected a failure, got {:?}", r.verdict);
    };
    assert!(
        m.contains("every check passed, so the fault it injects did not bite"),
        "{m}"
    );
}

#[test]
fn random_cuts_during_sales_lose_nothing_acknowledged() {
    let cut = "[[step.steps]]\npower_cut = \"app\"\nat = \"random\"\nwithin = \"150ms\"\n\n\
               [[step.steps]]\nrepeat = 40\n\n[[step.steps.steps]]\nhttp = \"POST app /items/r{{cycle}}-{{i}}\"\n\
               expect.status = 200\nappend.items = \"r{{cycle}}-{{i}}\"";
    let (r, events, _tmp) = run(&cycles("FULL", "pass", cut));
    assert_eq!(r.verdict, Verdict::Passed, "{:?}", r.figures);
    assert!(figure(&r).contains("cycles=3, "), "{}", figure(&r));
    assert!(
        figure(&r).contains("acked_missing=0, integrity_ok=4/4"),
        "{}",
        figure(&r)
    );
    let cuts = completed(&events, "power_cut");
    assert!(cuts.iter().all(|c| c.outcome == Some(Outcome::Ok)));
    assert!(cuts[0].detail.contains("after "), "{}", cuts[0].detail);
}

#[test]
fn crash_at_each_fsync_until_the_operation_completes() {
    let text = format!(
        r#"[scenario]
name = "crash-loop"
timeout = "120s"
{app}
[[step]]
crash_at_fsync = "app"
n_max = 20

[[step.steps]]
http = "POST app /items/op-{{{{i}}}}"
expect.status = 200
append.items = "op-{{{{i}}}}"

[[step.steps]]
http = "POST app /items/op-{{{{i}}}}-b"
expect.status = 200
append.items = "op-{{{{i}}}}-b"

[[step.recover]]
start = "app"

[[step.recover]]
integrity_check = "app"

[[check]]
power_loss = "items"
observe = "GET app /items"
ids = "$.items[*]"
"#,
        app = APP.replace("SYNC", "FULL")
    );
    let (r, events, _tmp) = run(&text);
    assert_eq!(r.verdict, Verdict::Passed, "{:?}", r.figures);
    let loop_done = events
        .iter()
        .find(|e| e.phase == Phase::Complete && e.kind == "crash_at_fsync")
        .unwrap();
    // Two inserts, at least one fsync each: the loop crashes at N = 1, 2, ... k and ends at k + 1.
    let k: usize = loop_done
        .detail
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", loop_done.detail));
    assert!(k >= 2, "{}", loop_done.detail);
    assert_eq!(
        loop_done.detail,
        format!(
            "{k} crashes (N = 1..{k}); the operation completed with fewer than {} fsyncs",
            k + 1
        )
    );
    assert!(
        figure(&r).contains(&format!("cycles={k}, acked=")),
        "{}",
        figure(&r)
    );
    assert_eq!(completed(&events, "integrity_check").len(), k);
}

#[test]
fn disk_full_refuses_definitely_and_heal_recovers() {
    let text = format!(
        r#"[scenario]
name = "enospc"
timeout = "60s"
{app}
[[step]]
fs_fail = "app"
op = "write"
errno = "ENOSPC"
count = 1000

[[step]]
http = "POST app /items/full"
expect.status = 503
expect.json = {{ "$.definite" = true, "$.message" = {{ contains = "full" }} }}

[[step]]
heal = "app"

[[step]]
http = "POST app /items/after"
expect.status = 200
append.items = "after"

[[step]]
fs_fail = "app"
op = "fsync"
errno = "EIO"
probability = 1.0

[[step]]
http = "POST app /items/eio"
expect.status = 503

[[step]]
heal = "app"

[[check]]
power_loss = "items"
observe = "GET app /items"
ids = "$.items[*]"
cycles_min = 0
"#,
        app = APP.replace("SYNC", "FULL")
    );
    let (r, events, _tmp) = run(&text);
    assert_eq!(r.verdict, Verdict::Passed, "{:?}", r.figures);
    let armed = completed(&events, "fs_fail");
    assert!(
        armed[0].detail.contains(r#""errno":"ENOSPC""#),
        "{}",
        armed[0].detail
    );
    assert!(
        armed[1].detail.contains(r#""seed":"#),
        "{}",
        armed[1].detail
    );
}

#[test]
fn the_summary_counts_expected_failures_as_successes() {
    let report = |verdict| Report {
        name: "x".into(),
        path: "x.toml".into(),
        verdict,
        elapsed: std::time::Duration::ZERO,
        kept_dir: None,
        figures: Vec::new(),
        pids: Vec::new(),
        seed: None,
        timeline: Default::default(),
        mismatch: None,
    };
    let once = |verdict| uat::report::Outcome {
        last: report(verdict),
        failed_before: Vec::new(),
    };
    let ok = [
        once(Verdict::Passed),
        once(Verdict::ExpectedFailure("acked_missing=3".into())),
    ];
    assert_eq!(uat::report::terminal::summarize(&ok, 0), uat::EXIT_OK);
    let bad = [once(Verdict::Failed("no".into()))];
    assert_eq!(uat::report::terminal::summarize(&bad, 0), uat::EXIT_FAILED);
    // A pass after a failed attempt is flaky, not a plain pass, and fails nothing.
    let flaky = [uat::report::Outcome {
        last: report(Verdict::Passed),
        failed_before: vec![report(Verdict::Failed("first".into()))],
    }];
    assert!(flaky[0].flaky());
    assert_eq!(uat::report::terminal::summarize(&flaky, 0), uat::EXIT_OK);
}

//! Runs scenarios against stand-in processes (python3's http.server, sh, sleep) and checks the
//! verdicts, the messages, `finally`, and that no process is left behind (by PID).

use std::path::{Path, PathBuf};

use uat::{Report, RunOptions, Verdict};

/// A web stand-in serving the scenario folder, and the file `items.json` written by a first step.
const WEB: &str = r#"
[process.web]
command = "python3"
args = ["-m", "http.server", "{{port.web}}", "--bind", "127.0.0.1", "--directory", "{{dir}}"]
ready = { http_get = "http://127.0.0.1:{{port.web}}/", timeout = "30s" }
"#;

fn items(json: &str) -> String {
    format!("[[step]]\nexec = \"sh\"\nargs = [\"-c\", '''printf '%s' '{json}' > items.json''']\n\n")
}

/// Runs `text` as `case.toml` with every folder kept; returns the report and the scenario folder.
fn run(text: &str) -> (Report, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("case.toml");
    std::fs::write(&path, text).unwrap();
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

fn failure(r: &Report) -> &str {
    match &r.verdict {
        Verdict::Failed(m) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn pid_in(dir: &Path, file: &str) -> i32 {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_failed_step_still_runs_finally_and_leaves_no_process_behind() {
    let text = format!(
        r#"[scenario]
name = "cleanup"
timeout = "60s"
{WEB}
[process.tree]
command = "sh"
args = ["-c", "sleep 300 & echo $! > tree.child.pid; sleep 300"]
ready = {{ path_exists = "{{{{dir}}}}/tree.child.pid", timeout = "10s" }}

[process.frozen]
command = "sleep"
args = ["300"]

[[step]]
pause = "frozen"

[[step]]
kill = "web"

[[step]]
start = "web"

[[step]]
name = "this step fails"
http = "GET web /missing.json"
expect.status = 200

[[step]]
exec = "touch"
args = ["never"]

[[finally]]
exec = "sh"
args = ["-c", "echo done > finally.txt"]
"#
    );
    let (r, dir, _tmp) = run(&text);
    let m = failure(&r);
    assert!(
        m.starts_with("step 4 (http `GET web /missing.json` (this step fails)) at "),
        "{m}"
    );
    assert!(
        m.contains("case.toml:28: status: expected 200, observed 404"),
        "{m}"
    );
    assert!(
        dir.join("finally.txt").exists(),
        "finally must run after a failure"
    );
    assert!(
        !dir.join("never").exists(),
        "steps after a failure must not run"
    );
    // web twice, tree, frozen, and the exec steps.
    assert!(r.pids.len() >= 4, "{:?}", r.pids);
    let mut pids = r.pids.clone();
    pids.push(pid_in(&dir, "tree.child.pid"));
    for pid in pids {
        assert!(!uat::procs::alive(pid), "pid {pid} left behind");
        assert!(
            uat::procs::group_members(pid).is_empty(),
            "group {pid} left behind"
        );
    }
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let events = uat::history::parse_jsonl(&history).unwrap();
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.outcome == Some(uat::history::Outcome::Fail))
        .collect();
    assert_eq!(failed.len(), 1, "{history}");
    assert_eq!(failed[0].step, "4");
}

#[test]
fn wait_until_gives_up_with_the_last_value_and_attempt_count() {
    let text = format!(
        "[scenario]\nname = \"wait\"\n{WEB}\n{}[[step]]\nwait_until = \"GET web /items.json\"\nexpect.json = {{ \"$.n\" = 5 }}\ntimeout = \"300ms\"\ninterval = \"20ms\"\n",
        items(r#"{"n":1}"#)
    );
    let (r, _dir, _tmp) = run(&text);
    let m = failure(&r);
    assert!(m.contains("gave up after "), "{m}");
    assert!(m.contains(" attempts in "), "{m}");
    assert!(
        m.contains(
            r#"last value seen: {"body":{"n":1},"status":200}; $.n: expected 5, observed 1"#
        ),
        "{m}"
    );
}

#[test]
fn wait_until_stops_at_abort_if() {
    let text = format!(
        "[scenario]\nname = \"abort\"\n{WEB}\n{}[[step]]\nwait_until = \"GET web /items.json\"\nexpect.json = {{ \"$.n\" = 5 }}\nabort_if.json = {{ \"$.n\" = {{ lt = 2 }} }}\ntimeout = \"30s\"\n",
        items(r#"{"n":1}"#)
    );
    let (r, _dir, _tmp) = run(&text);
    let m = failure(&r);
    assert!(m.contains("aborted: abort_if held at attempt 1"), "{m}");
}

#[test]
fn exactly_once_reports_lost_and_duplicated_items_through_the_runner() {
    let text = format!(
        r#"[scenario]
name = "exactly-once-negative"
{WEB}
{}[[step]]
repeat = 3

[[step.steps]]
http = "GET web /items.json"
append.sales = "sale-{{{{i}}}}"

[[check]]
exactly_once = "sales"
observe = "GET web /items.json"
ids = "$.docs[*].id"
"#,
        items(r#"{"docs":[{"id":"sale-1"},{"id":"sale-1"},{"id":"sale-2"}]}"#)
    );
    let (r, _dir, _tmp) = run(&text);
    let m = failure(&r);
    assert!(
        m.contains("exactly_once sales: acknowledged=3 once=1 lost=1 duplicated=1 unexpected=0 indeterminate=0; lost: sale-3; duplicated: sale-1 (x2)"),
        "{m}"
    );
}

#[test]
fn a_process_that_exits_before_ready_fails_the_start() {
    let text = "[scenario]\nname = \"early-exit\"\n\n[process.dies]\ncommand = \"sh\"\nargs = [\"-c\", \"echo bye >&2; exit 3\"]\nready = { tcp = \"127.0.0.1:{{port.dies}}\", timeout = \"30s\" }\n";
    let (r, dir, _tmp) = run(text);
    let m = failure(&r);
    assert!(m.contains("autostart of process `dies`"), "{m}");
    assert!(
        m.contains("exited (exit status: 3) before it was ready"),
        "{m}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("dies.stderr.log")).unwrap(),
        "bye\n"
    );
}

#[test]
fn failure_keeps_a_copy_of_the_database_files() {
    let text = r#"[scenario]
name = "artifacts"

[process.holder]
command = "sleep"
args = ["300"]
db = "{{dir}}/data/app.db"

[[step]]
exec = "python3"
args = ["-c", "import os, sqlite3; os.makedirs('data'); c = sqlite3.connect('data/app.db'); c.execute('CREATE TABLE t(x)'); c.commit()"]

[[step]]
sql = "SELECT count(*) FROM t"
db = "holder"
expect.rows = [[1]]
"#;
    let (r, dir, _tmp) = run(text);
    let m = failure(&r);
    assert!(m.contains("row 0 column 0: expected 1, observed 0"), "{m}");
    assert!(dir.join("artifacts/holder/app.db").is_file());
}

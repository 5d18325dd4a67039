//! The runner in a CI pipeline: live progress, `--list`, `--partition K/N` (no overlap, no gap),
//! `--fail-fast`, `--retries` (a later pass is flaky, never a plain pass), the slow notice, the
//! JUnit properties and system-out, and the JUnit of an interrupted run.

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

use crate::cli::{text, uat_run};

fn uat(dir: &std::path::Path, args: &[&str]) -> Output {
    uat_run(dir, args)
}

fn scenario(name: &str, step: &str) -> String {
    format!("[scenario]\nname = \"{name}\"\ntags = [\"quick\"]\n\n[[step]]\n{step}\n")
}

/// Writes scenario `name` of one `step` as `file` in `dir`.
fn put(dir: &std::path::Path, file: &str, name: &str, step: &str) {
    std::fs::write(dir.join(file), scenario(name, step)).unwrap();
}

/// Eleven scenarios `s00`..`s10` that pass.
fn eleven(dir: &std::path::Path) -> BTreeSet<String> {
    (0..11)
        .map(|i| {
            let name = format!("s{i:02}");
            put(dir, &format!("{name}.toml"), &name, "exec = \"true\"");
            name
        })
        .collect()
}

fn listed(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter(|l| l.contains("  [quick]  "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect()
}

#[test]
fn partitions_split_a_suite_with_no_overlap_and_no_gap_and_list_shows_them() {
    let tmp = tempfile::tempdir().unwrap();
    let all = eleven(tmp.path());
    let mut seen = BTreeSet::new();
    let mut sizes = Vec::new();
    for k in 1..=3 {
        let out = uat(
            tmp.path(),
            &["--list", "--partition", &format!("{k}/3"), "."],
        );
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        let shard = listed(&stdout);
        assert!(
            stdout.contains(&format!("{} scenarios\n", shard.len())),
            "{stdout}"
        );
        assert!(seen.is_disjoint(&shard), "shard {k} overlaps: {shard:?}");
        sizes.push(shard.len());
        seen.extend(shard);
    }
    assert_eq!(seen, all, "every scenario in exactly one shard");
    assert_eq!(sizes, [4, 4, 3]);
    // Deterministic: the same shard twice is the same list.
    let a = listed(&text(
        &uat(tmp.path(), &["--list", "--partition", "2/3", "."]).stdout,
    ));
    let b = listed(&text(
        &uat(tmp.path(), &["--list", "--partition", "2/3", "."]).stdout,
    ));
    assert_eq!(a, b);
    // Nothing ran: no JUnit, no run folder.
    assert!(!tmp.path().join("junit.xml").exists());
    let bad = uat(tmp.path(), &["--partition", "4/3", "."]);
    assert_eq!(bad.status.code(), Some(i32::from(uat::EXIT_BAD_INPUT)));
    assert!(text(&bad.stderr).contains("K/N"), "{}", text(&bad.stderr));
}

#[test]
fn a_partition_runs_its_share_with_live_progress() {
    let tmp = tempfile::tempdir().unwrap();
    eleven(tmp.path());
    let out = uat(tmp.path(), &["--partition", "3/3", "."]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("uat: partition 3/3: 3 of 11 scenarios"),
        "{stdout}"
    );
    for n in 1..=3 {
        assert!(stdout.contains(&format!("[{n}/3] running s")), "{stdout}");
    }
    assert!(stdout.ends_with("3 passed, 0 failed\n"), "{stdout}");
}

#[test]
fn a_retried_pass_is_flaky_in_the_summary_and_in_junit() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("failed-once");
    // Fails the first time (and leaves the marker), passes after.
    let step = format!(
        "exec = \"sh\"\nargs = [\"-c\", \"test -e {m} || {{ touch {m}; exit 1; }}\"]",
        m = marker.display()
    );
    put(tmp.path(), "f.toml", "wobbly", &step);
    let out = uat(tmp.path(), &["--retries", "2", "f.toml"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("RETRY wobbly failed attempt 1 of 3"),
        "{stdout}"
    );
    assert!(stdout.contains("FLAKY wobbly ("), "{stdout}");
    assert!(
        stdout.ends_with("0 passed, 0 failed, 1 flaky\n"),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<flakyFailure"), "{junit}");
    assert!(
        junit.contains("flaky: passed on attempt 2 after 1 failed"),
        "{junit}"
    );
    // Without retries the same kind of scenario fails.
    std::fs::remove_file(&marker).unwrap();
    let out = uat(tmp.path(), &["f.toml"]);
    assert_eq!(out.status.code(), Some(i32::from(uat::EXIT_FAILED)));
    assert!(
        text(&out.stdout).ends_with("0 passed, 1 failed\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn fail_fast_starts_nothing_after_a_failure_and_junit_carries_the_replay() {
    let tmp = tempfile::tempdir().unwrap();
    put(tmp.path(), "a.toml", "a-fails", "exec = \"false\"");
    put(tmp.path(), "b.toml", "b-fails", "exec = \"false\"");
    let out = uat(tmp.path(), &["--fail-fast", "a.toml", "b.toml"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(i32::from(uat::EXIT_FAILED)),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL  a-fails ("), "{stdout}");
    assert!(!stdout.contains("running b-fails"), "{stdout}");
    assert!(
        stdout.contains("--fail-fast: 1 scenarios not run"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("0 passed, 1 failed, 1 skipped\n"),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("<property name=\"replay\" value=\"uat run a.toml\"/>"),
        "{junit}"
    );
    assert!(junit.contains("<property name=\"evidence\""), "{junit}");
    assert!(junit.contains("<system-out>"), "{junit}");
    assert!(junit.contains("history.jsonl"), "{junit}");
}

#[test]
fn a_slow_scenario_is_named_while_it_runs() {
    let tmp = tempfile::tempdir().unwrap();
    put(tmp.path(), "s.toml", "sleepy", "sleep = \"2500ms\"");
    let out = uat(tmp.path(), &["--slow-after", "1", "s.toml"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let notices = stdout
        .lines()
        .filter(|l| l.starts_with("SLOW  sleepy"))
        .count();
    assert_eq!(notices, 2, "one notice per second run past: {stdout}");
    assert!(
        stdout.find("SLOW  sleepy").unwrap() < stdout.find("ok    sleepy").unwrap(),
        "{stdout}"
    );
}

#[test]
fn an_interrupted_run_still_writes_the_junit_of_what_finished() {
    let tmp = tempfile::tempdir().unwrap();
    put(tmp.path(), "a.toml", "a-quick", "exec = \"true\"");
    put(tmp.path(), "b.toml", "b-long", "sleep = \"60s\"");
    let mut child = Command::new(env!("CARGO_BIN_EXE_uat"))
        .args([
            "run",
            "--out-dir",
            "out",
            "--bin-dir",
            ".",
            "--junit",
            "junit.xml",
            "a.toml",
            "b.toml",
        ])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::interrupt_once_running(&mut child, "b-long");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(i32::from(uat::EXIT_INFRA)));
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<testcase name=\"a-quick\""), "{junit}");
    assert!(!junit.contains("b-long"), "{junit}");
}

//! The `uat` binary: exit codes, the closing line, skipped scenarios, the JUnit report and which
//! scenarios a path and `--tag` select.

use std::process::{Command, Output};

use rstest::rstest;

fn uat(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_uat"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `uat run --out-dir out --bin-dir . --junit junit.xml EXTRA...` in `dir`.
pub(crate) fn uat_run(dir: &std::path::Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "--out-dir",
        "out",
        "--bin-dir",
        ".",
        "--junit",
        "junit.xml",
    ];
    args.extend_from_slice(extra);
    uat(&args, dir)
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PASS: &str =
    "[scenario]\nname = \"passes\"\ntags = [\"quick\"]\n\n[[step]]\nexec = \"true\"\n";
const FAIL: &str = "[scenario]\nname = \"fails\"\ntags = [\"quick\"]\n\n[[step]]\nname = \"always false\"\nexec = \"false\"\n";
const OTHER: &str =
    "[scenario]\nname = \"other\"\ntags = [\"slow\"]\n\n[[step]]\nexec = \"true\"\n";
const NIGHTLY: &str =
    "[scenario]\nname = \"long\"\ntags = [\"nightly\", \"quick\"]\n\n[[step]]\nexec = \"true\"\n";

#[test]
fn passing_run_exits_0_with_the_closing_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.toml"), PASS).unwrap();
    let out = uat_run(tmp.path(), &["a.toml"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(i32::from(uat::EXIT_OK)),
        "{stdout}{}",
        text(&out.stderr)
    );
    assert!(
        stdout.ends_with("ok    passes") || stdout.contains("ok    passes ("),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 passed, 0 failed\n"), "{stdout}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(junit.contains("<testcase name=\"passes\""), "{junit}");
    // A passing scenario's folder is removed (no --keep).
    assert_eq!(
        std::fs::read_dir(tmp.path().join("out")).unwrap().count(),
        0
    );
}

#[test]
fn failing_run_exits_1_counts_skips_and_writes_the_failure_to_junit() {
    let tmp = tempfile::tempdir().unwrap();
    for (f, t) in [("a.toml", PASS), ("b.toml", FAIL), ("c.toml", OTHER)] {
        std::fs::write(tmp.path().join(f), t).unwrap();
    }
    let out = uat_run(tmp.path(), &["--tag", "quick", "--jobs", "2", "."]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(i32::from(uat::EXIT_FAILED)),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("1 passed, 1 failed, 1 skipped\n"),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL  fails ("), "{stdout}");
    let junit = std::fs::read_to_string(tmp.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("exit code: expected 0, observed exit status: 1"),
        "{junit}"
    );
    assert!(
        junit.contains("step 1 (exec `false` (always false))"),
        "{junit}"
    );
    assert!(junit.contains("<skipped/>"), "{junit}");
}

#[test]
fn invalid_file_exits_2_naming_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("bad.toml"),
        "[scenario]\nname = \"x\"\n\n[[step]]\nexec = \"true\"\nretries = 3\n",
    )
    .unwrap();
    for cmd in ["check", "run"] {
        let out = uat(&[cmd, "bad.toml"], tmp.path());
        assert_eq!(
            out.status.code(),
            Some(i32::from(uat::EXIT_BAD_INPUT)),
            "{cmd}"
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("bad.toml:6:1: unknown field `retries`"),
            "{stderr}"
        );
    }
}

#[test]
fn a_tag_no_scenario_carries_exits_4_naming_the_request_and_the_tags_present() {
    let tmp = tempfile::tempdir().unwrap();
    for (f, t) in [("a.toml", PASS), ("c.toml", OTHER)] {
        std::fs::write(tmp.path().join(f), t).unwrap();
    }
    let out = uat_run(tmp.path(), &["--tag", "nosuch", "."]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(uat::EXIT_NOTHING_SELECTED)),
        "{stderr}"
    );
    assert!(
        stderr.contains("--tag nosuch matches none of the 2 scenarios under ."),
        "{stderr}"
    );
    assert!(
        stderr.contains("tags present: quick (1), slow (1)"),
        "{stderr}"
    );
    // Nothing ran: no run folder and no report.
    assert!(!tmp.path().join("out").exists());
    assert!(!tmp.path().join("junit.xml").exists());
}

#[test]
fn a_directory_without_scenario_files_exits_4() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let out = uat_run(tmp.path(), &["empty"]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(uat::EXIT_NOTHING_SELECTED)),
        "{stderr}"
    );
    assert!(stderr.contains("no scenario files under empty"), "{stderr}");
}

#[test]
fn a_typo_beside_a_valid_tag_is_warned_about_but_runs_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.toml"), PASS).unwrap();
    let out = uat_run(tmp.path(), &["--tag", "quick", "--tag", "quikc", "."]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(i32::from(uat::EXIT_OK)), "{stderr}");
    assert!(
        stderr.contains("warning: no scenario carries --tag quikc"),
        "{stderr}"
    );
}

/// Runs `uat run ARGS` in a folder holding `a.toml` (tag quick), `c.toml` (tag slow) and
/// `sub/long.toml` (tags nightly and quick), and checks the exit code and the closing line.
fn check_selection(args: &[&str], code: u8, closing: &str) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("sub")).unwrap();
    for (f, t) in [
        ("a.toml", PASS),
        ("c.toml", OTHER),
        ("sub/long.toml", NIGHTLY),
    ] {
        std::fs::write(tmp.path().join(f), t).unwrap();
    }
    let out = uat_run(tmp.path(), args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(i32::from(code)),
        "{args:?}\n{stdout}{stderr}"
    );
    assert!(stdout.ends_with(closing), "{args:?}\n{stdout}{stderr}");
}

#[rstest]
#[case::directory_leaves_nightly_out(&["."], "2 passed, 0 failed, 1 skipped\n")]
#[case::subdirectory_leaves_nightly_out(&["sub"], "")]
#[case::another_tag_it_carries_does_not_bring_it_in(&["--tag", "quick", "."], "1 passed, 0 failed, 2 skipped\n")]
#[case::tag_nightly_runs_it_from_a_directory(&["--tag", "nightly", "."], "1 passed, 0 failed, 2 skipped\n")]
#[case::tag_nightly_beside_another_tag(&["--tag", "nightly", "--tag", "slow", "."], "2 passed, 0 failed, 1 skipped\n")]
#[case::a_named_file_runs_it(&["sub/long.toml"], "1 passed, 0 failed\n")]
#[case::a_named_file_beside_its_directory_runs_it(&["sub/long.toml", "."], "3 passed, 0 failed\n")]
#[case::a_named_file_still_obeys_tag(&["--tag", "slow", "sub/long.toml", "c.toml"], "1 passed, 0 failed, 1 skipped\n")]
fn selection(#[case] args: &[&str], #[case] closing: &str) {
    let code = if closing.is_empty() {
        uat::EXIT_NOTHING_SELECTED
    } else {
        uat::EXIT_OK
    };
    check_selection(args, code, closing);
}

#[test]
fn only_nightly_scenarios_in_a_directory_exit_4_saying_how_to_run_them() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("long.toml"), NIGHTLY).unwrap();
    let out = uat_run(tmp.path(), &["."]);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(i32::from(uat::EXIT_NOTHING_SELECTED)),
        "{stderr}"
    );
    assert!(
        stderr.contains("no --tag matches none of the 1 scenarios"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 `nightly` scenarios found in a directory run only with --tag nightly"),
        "{stderr}"
    );
}

#[test]
fn the_repository_s_scenarios_directory_leaves_every_nightly_scenario_out() {
    let dir = crate::workspace().join("scenarios");
    let all =
        uat::dispatch::load_all(std::slice::from_ref(&dir)).expect("every scenario file is valid");
    let nightly: Vec<String> = all
        .iter()
        .filter(|s| {
            s.file
                .scenario
                .tags
                .iter()
                .any(|t| t == uat::select::NIGHTLY_TAG)
        })
        .map(|s| s.name().to_owned())
        .collect();
    assert!(
        nightly.contains(&"powercut-random-cuts-nightly".to_owned()),
        "{nightly:?}"
    );
    let sel = uat::select::select(all, &[], &["powercut".to_owned()]);
    let run: Vec<&str> = sel.selected.iter().map(uat::Scenario::name).collect();
    assert!(!run.is_empty());
    assert!(
        run.iter().all(|n| !nightly.iter().any(|x| x == n)),
        "{run:?}"
    );
    assert_eq!(sel.nightly_left_out, 1, "{run:?}");
}

//! The `uat` binary: exit codes, the closing line, skipped scenarios and the JUnit report.

use std::process::{Command, Output};

fn uat(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_uat"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn uat_run(dir: &std::path::Path, extra: &[&str]) -> Output {
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const PASS: &str =
    "[scenario]\nname = \"passes\"\ntags = [\"quick\"]\n\n[[step]]\nexec = \"true\"\n";
const FAIL: &str = "[scenario]\nname = \"fails\"\ntags = [\"quick\"]\n\n[[step]]\nname = \"always false\"\nexec = \"false\"\n";
const OTHER: &str =
    "[scenario]\nname = \"other\"\ntags = [\"slow\"]\n\n[[step]]\nexec = \"true\"\n";

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

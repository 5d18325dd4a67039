//! The JUnit reporter: one testcase per scenario, with its seed, replay command and evidence folder
//! as properties and what the terminal said of it as system-out; a pass after failed attempts is a
//! success with `flakyFailure` entries (never a plain pass); skipped scenarios are listed as such.

use std::path::{Path, PathBuf};

use quick_junit::{
    NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::Outcome;
use crate::load::Scenario;
use crate::run::{Report, Verdict};

/// The most bytes of a scenario's history copied into its system-out.
const HISTORY_BYTES_MAX: usize = 64 * 1024;

/// A scenario that did not run: its name and file.
pub type NotRun = (String, PathBuf);

/// The [`NotRun`] entry of a scenario.
pub fn not_run(s: &Scenario) -> NotRun {
    (s.name().to_owned(), s.path.clone())
}

/// Writes the JUnit file for `outcomes` (in run order) and the `skipped` scenarios.
pub fn write<'a>(
    path: &Path,
    outcomes: impl IntoIterator<Item = &'a Outcome>,
    skipped: &[NotRun],
) -> std::io::Result<()> {
    let mut suite = TestSuite::new("uat");
    for o in outcomes {
        suite.add_test_case(test_case(o));
    }
    for (name, file) in skipped {
        let mut tc = TestCase::new(name.as_str(), TestCaseStatus::skipped());
        tc.set_classname(file.display().to_string());
        suite.add_test_case(tc);
    }
    let mut report = JReport::new("uat");
    report.add_test_suite(suite);
    let text = report.to_string().map_err(std::io::Error::other)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

fn kind(r: &Report) -> NonSuccessKind {
    match r.verdict {
        Verdict::Infra(_) => NonSuccessKind::Error,
        _ => NonSuccessKind::Failure,
    }
}

fn message(r: &Report) -> &str {
    match &r.verdict {
        Verdict::Failed(m) | Verdict::Infra(m) | Verdict::ExpectedFailure(m) => m,
        Verdict::Passed => "",
    }
}

fn test_case(o: &Outcome) -> TestCase {
    let r = &o.last;
    let status = if o.passed() {
        let mut st = TestCaseStatus::success();
        for before in &o.failed_before {
            let mut rerun = TestRerun::new(kind(before));
            rerun.set_message(message(before).lines().next().unwrap_or_default());
            rerun.set_description(message(before));
            rerun.set_time(before.elapsed);
            st.add_rerun(rerun);
        }
        st
    } else {
        let mut st = TestCaseStatus::non_success(kind(r));
        st.set_message(message(r).lines().next().unwrap_or_default());
        st.set_description(message(r));
        st
    };
    let mut tc = TestCase::new(r.name.as_str(), status);
    tc.set_classname(r.path.display().to_string());
    tc.set_time(r.elapsed);
    if let Some(seed) = r.seed {
        tc.add_property(("seed", seed.to_string().as_str()));
    }
    tc.add_property(("replay", o.replay().as_str()));
    if let Some(d) = &r.kept_dir {
        tc.add_property(("evidence", d.display().to_string().as_str()));
    }
    tc.set_system_out(system_out(o));
    tc
}

/// What the terminal said of the scenario, then its history when the folder was kept.
fn system_out(o: &Outcome) -> String {
    let r = &o.last;
    let mut out = String::new();
    if let Verdict::ExpectedFailure(m) = &r.verdict {
        out.push_str(&format!("expected failure: {m}\n"));
    }
    if o.flaky() {
        out.push_str(&format!(
            "flaky: passed on attempt {} after {} failed\n",
            o.failed_before.len() + 1,
            o.failed_before.len()
        ));
    }
    for f in &r.figures {
        out.push_str(f);
        out.push('\n');
    }
    out.push_str(&format!("replay: {}\n", o.replay()));
    if let Some(d) = &r.kept_dir {
        out.push_str(&format!("evidence: {}\n", d.display()));
        if let Ok(history) = std::fs::read_to_string(d.join("history.jsonl")) {
            let cut = history.len().saturating_sub(HISTORY_BYTES_MAX);
            let start = (cut..history.len())
                .find(|i| history.is_char_boundary(*i))
                .unwrap_or(history.len());
            out.push_str("history.jsonl");
            if start > 0 {
                out.push_str(" (its end)");
            }
            out.push_str(":\n");
            out.push_str(&history[start..]);
        }
    }
    out
}

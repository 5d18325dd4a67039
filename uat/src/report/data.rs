//! The data of the HTML report, as written to `report.json` beside it: per scenario its status,
//! duration, seed, replay command, failure text, step rows, history events, samples, fault
//! windows, breaker bands and receipt ticks. `html.rs` draws exactly this.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Outcome;
use super::junit::NotRun;
use crate::check::Tick;
use crate::history::{Event, Outcome as StepOutcome, Phase};
use crate::run::Verdict;
use crate::timeline::{self, Band, FaultWindow, Sample};
use crate::tokens::AUTH_DIR;

/// The most history events kept per scenario in `report.json` (the file has them all).
pub const EVENTS_MAX: usize = 100_000;
/// The most step rows kept per scenario; rows that did not end `ok` are kept past it.
pub const STEPS_MAX: usize = 2_000;
/// The most evidence files listed per scenario.
pub const EVIDENCE_FILES_MAX: usize = 200;

/// How a scenario ended, as the summary shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    /// Passed after failed attempts (`--retries`): never a plain pass.
    Flaky,
    /// A negative control whose checks failed as intended.
    ExpectedFailure,
    Failed,
    /// The runner could not do its job.
    Error,
    /// Not run (`--tag`, `nightly`, `--fail-fast`).
    Skipped,
}

impl Status {
    /// The text of the status cell, e.g. `FLAKY`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "ok",
            Status::Flaky => "FLAKY",
            Status::ExpectedFailure => "ok (expected failure)",
            Status::Failed => "FAIL",
            Status::Error => "ERROR",
            Status::Skipped => "skipped",
        }
    }

    /// The CSS class of the status, e.g. `status-expected-failure`.
    pub fn class(self) -> &'static str {
        match self {
            Status::Passed => "status-passed",
            Status::Flaky => "status-flaky",
            Status::ExpectedFailure => "status-expected-failure",
            Status::Failed => "status-failed",
            Status::Error => "status-error",
            Status::Skipped => "status-skipped",
        }
    }
}

/// One step as the history tells it: invoke and complete joined by label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    /// The label, e.g. `3` or `4[2].1`.
    pub step: String,
    pub kind: String,
    /// The invoke detail (the step's title).
    pub title: String,
    pub from_ms: u64,
    /// None while it never completed (the run was cut short).
    pub to_ms: Option<u64>,
    pub outcome: Option<StepOutcome>,
    /// The completion detail: what was observed, or why it failed (expected vs. observed).
    pub detail: String,
}

/// A failing check's values apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MismatchData {
    /// What was checked (`status`, `$.duplicates`, `exit code`, a metric series), or empty.
    pub checked: String,
    pub expected: String,
    pub observed: String,
}

/// One scenario of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioData {
    pub name: String,
    pub file: String,
    pub status: Status,
    pub duration_ms: u64,
    pub seed: Option<u64>,
    /// The command that runs it again.
    pub replay: String,
    /// Attempts made (more than 1 with `--retries`).
    pub attempts: usize,
    /// The failure's text: the step, its location, expected vs. observed.
    pub failure: Option<String>,
    /// The failing check's expected and observed values apart, when the failure is a mismatch.
    pub mismatch: Option<MismatchData>,
    pub figures: Vec<String>,
    /// The kept folder, relative to the report's folder when it can be.
    pub evidence: Option<String>,
    /// Its files (history, logs, artifacts), relative to the report's folder like `evidence`.
    pub evidence_files: Vec<String>,
    pub steps: Vec<StepRow>,
    pub steps_truncated: bool,
    pub events: Vec<Event>,
    pub events_truncated: bool,
    pub samples: Vec<Sample>,
    pub samples_truncated: bool,
    pub fault_windows: Vec<FaultWindow>,
    pub breaker_bands: Vec<Band>,
    pub ticks: Vec<Tick>,
    /// The last moment of the timeline, ms since the scenario started.
    pub end_ms: u64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunData {
    /// The run was interrupted (SIGINT/SIGTERM): the report holds what finished.
    pub interrupted: bool,
    pub passed: usize,
    pub failed: usize,
    pub flaky: usize,
    pub skipped: usize,
    pub scenarios: Vec<ScenarioData>,
}

/// Builds the report data; `dir` is the report's folder, for relative evidence paths.
pub fn build<'a>(
    dir: &Path,
    outcomes: impl IntoIterator<Item = &'a Outcome>,
    skipped: &[NotRun],
    interrupted: bool,
) -> RunData {
    let mut scenarios: Vec<ScenarioData> = outcomes.into_iter().map(|o| scenario(dir, o)).collect();
    scenarios.extend(skipped.iter().map(|(name, file)| not_run(name, file)));
    let count = |s: Status| scenarios.iter().filter(|x| x.status == s).count();
    RunData {
        interrupted,
        passed: count(Status::Passed) + count(Status::ExpectedFailure),
        failed: count(Status::Failed) + count(Status::Error),
        flaky: count(Status::Flaky),
        skipped: count(Status::Skipped),
        scenarios,
    }
}

fn status(o: &Outcome) -> Status {
    match &o.last.verdict {
        Verdict::Passed if o.flaky() => Status::Flaky,
        Verdict::Passed => Status::Passed,
        Verdict::ExpectedFailure(_) => Status::ExpectedFailure,
        Verdict::Failed(_) => Status::Failed,
        Verdict::Infra(_) => Status::Error,
    }
}

fn scenario(dir: &Path, o: &Outcome) -> ScenarioData {
    let r = &o.last;
    let t = &r.timeline;
    let failure = match &r.verdict {
        Verdict::Passed => None,
        Verdict::Failed(m) | Verdict::Infra(m) | Verdict::ExpectedFailure(m) => Some(m.clone()),
    };
    let (steps, steps_truncated) = steps(&t.events);
    let events_truncated = t.events.len() > EVENTS_MAX;
    let (evidence, evidence_files) = match &r.kept_dir {
        Some(k) => (Some(shown_path(dir, k)), evidence_files(dir, k)),
        None => (None, Vec::new()),
    };
    ScenarioData {
        name: r.name.clone(),
        file: r.path.display().to_string(),
        status: status(o),
        duration_ms: u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX),
        seed: r.seed,
        replay: o.replay(),
        attempts: o.failed_before.len() + 1,
        failure,
        mismatch: r.mismatch.as_ref().map(|m| MismatchData {
            checked: m.what.clone(),
            expected: m.expected.clone(),
            observed: m.observed.clone(),
        }),
        figures: r.figures.clone(),
        evidence,
        evidence_files,
        steps,
        steps_truncated,
        events: t.events.iter().take(EVENTS_MAX).cloned().collect(),
        events_truncated,
        samples: t.samples.clone(),
        samples_truncated: t.samples_truncated,
        fault_windows: timeline::fault_windows(t),
        breaker_bands: timeline::breaker_bands(t),
        ticks: t.ticks.clone(),
        end_ms: t.end_ms(),
    }
}

fn not_run(name: &str, file: &Path) -> ScenarioData {
    ScenarioData {
        name: name.to_owned(),
        file: file.display().to_string(),
        status: Status::Skipped,
        duration_ms: 0,
        seed: None,
        replay: format!("uat run {}", file.display()),
        attempts: 0,
        failure: None,
        mismatch: None,
        figures: Vec::new(),
        evidence: None,
        evidence_files: Vec::new(),
        steps: Vec::new(),
        steps_truncated: false,
        events: Vec::new(),
        events_truncated: false,
        samples: Vec::new(),
        samples_truncated: false,
        fault_windows: Vec::new(),
        breaker_bands: Vec::new(),
        ticks: Vec::new(),
        end_ms: 1,
    }
}

/// The step rows of a history: each invoke joined with the next complete of its label (a
/// complete without an invoke, such as a crash loop's cut, is a row of its own). At most
/// [`STEPS_MAX`] rows that ended ok; every other row is kept.
pub fn steps(events: &[Event]) -> (Vec<StepRow>, bool) {
    let mut rows: Vec<StepRow> = Vec::new();
    let mut open: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events {
        match e.phase {
            Phase::Invoke => {
                open.insert(e.step.as_str(), rows.len());
                rows.push(StepRow {
                    step: e.step.clone(),
                    kind: e.kind.clone(),
                    title: e.detail.clone(),
                    from_ms: e.t_ms,
                    to_ms: None,
                    outcome: None,
                    detail: String::new(),
                });
            }
            Phase::Complete => {
                let row = match open.remove(e.step.as_str()).and_then(|i| rows.get_mut(i)) {
                    Some(row) => row,
                    None => {
                        rows.push(StepRow {
                            step: e.step.clone(),
                            kind: e.kind.clone(),
                            title: String::new(),
                            from_ms: e.t_ms,
                            to_ms: None,
                            outcome: None,
                            detail: String::new(),
                        });
                        let last = rows.len() - 1;
                        &mut rows[last]
                    }
                };
                row.to_ms = Some(e.t_ms);
                row.outcome = e.outcome;
                row.detail = e.detail.clone();
            }
        }
    }
    let mut ok_kept = 0usize;
    let mut truncated = false;
    rows.retain(|r| {
        if r.outcome != Some(StepOutcome::Ok) {
            return true;
        }
        ok_kept += 1;
        truncated |= ok_kept > STEPS_MAX;
        ok_kept <= STEPS_MAX
    });
    (rows, truncated)
}

/// `to` relative to `from` (both made absolute), or `to` as it is when that fails.
pub fn shown_path(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).ok();
    match (abs(from), abs(to)) {
        (Some(f), Some(t)) => relative(&f, &t).display().to_string(),
        _ => to.display().to_string(),
    }
}

/// The path from directory `from` to `to`, both absolute and normalized.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<Component<'_>> = from.components().collect();
    let t: Vec<Component<'_>> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The files of a kept folder (its `auth/` tokens left out), as paths shown from the report's
/// folder, sorted, at most [`EVIDENCE_FILES_MAX`].
fn evidence_files(dir: &Path, kept: &Path) -> Vec<String> {
    let base = shown_path(dir, kept);
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(kept.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            if found.len() >= EVIDENCE_FILES_MAX {
                break;
            }
            let p = rel.join(e.file_name());
            // The run's API tokens are no evidence, and a report travels further than the folder.
            if p == Path::new(AUTH_DIR) {
                continue;
            }
            match e.file_type() {
                Ok(ft) if ft.is_dir() => stack.push(p),
                Ok(ft) if ft.is_file() => found.push(p),
                _ => {}
            }
        }
    }
    found.sort();
    found
        .into_iter()
        .map(|p| Path::new(&base).join(p).display().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_part() {
        let r = |a: &str, b: &str| relative(Path::new(a), Path::new(b)).display().to_string();
        assert_eq!(r("/t/report", "/t/out/1-2/case"), "../out/1-2/case");
        assert_eq!(r("/t", "/t/out"), "out");
        assert_eq!(r("/t/out", "/t/out"), ".");
    }

    #[test]
    fn steps_join_invoke_and_complete_and_keep_a_lone_completion() {
        let e = |t_ms, phase, step: &str, detail: &str, outcome| Event {
            t_ms,
            phase,
            step: step.into(),
            kind: "http".into(),
            detail: detail.into(),
            outcome,
            items: Vec::new(),
        };
        let (rows, truncated) = steps(&[
            e(1, Phase::Invoke, "1", "http `GET a /`", None),
            e(2, Phase::Invoke, "2", "http `GET b /`", None),
            e(5, Phase::Complete, "1", "status 200", Some(StepOutcome::Ok)),
            e(6, Phase::Complete, "3 cut", "crash", Some(StepOutcome::Ok)),
            e(
                9,
                Phase::Complete,
                "2",
                "expected 200, observed 500",
                Some(StepOutcome::Fail),
            ),
        ]);
        assert!(!truncated);
        let got: Vec<(&str, &str, Option<u64>, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.step.as_str(),
                    r.title.as_str(),
                    r.to_ms,
                    r.detail.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("1", "http `GET a /`", Some(5), "status 200"),
                ("2", "http `GET b /`", Some(9), "expected 200, observed 500"),
                ("3 cut", "", Some(6), "crash"),
            ]
        );
    }
}

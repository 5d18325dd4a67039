//! What a run tells: live progress and the closing line on the terminal (`terminal.rs`), the
//! JUnit file for CI (`junit.rs`), and the HTML report with its timelines and `report.json`
//! (`html.rs`, drawing the data of `data.rs`). Reporters read [`Outcome`]s; they never run anything.

pub mod data;
pub mod html;
pub mod junit;
pub mod terminal;

use crate::run::{Report, Verdict};

/// A scenario's result over its attempts (`--retries`): the last attempt decides, and a pass after
/// a failure is flaky, never a plain pass.
#[derive(Debug)]
pub struct Outcome {
    /// The attempt that decides.
    pub last: Report,
    /// The attempts before it, each of which failed.
    pub failed_before: Vec<Report>,
}

impl Outcome {
    /// Passed, but only after at least one failed attempt.
    pub fn flaky(&self) -> bool {
        !self.failed_before.is_empty() && self.passed()
    }

    /// Passed (or failed as expected) on its last attempt.
    pub fn passed(&self) -> bool {
        matches!(
            self.last.verdict,
            Verdict::Passed | Verdict::ExpectedFailure(_)
        )
    }

    /// The command that replays the last attempt.
    pub fn replay(&self) -> String {
        let r = &self.last;
        match r.seed {
            Some(s) => format!("uat run {} --seed {s}", r.path.display()),
            None => format!("uat run {}", r.path.display()),
        }
    }
}

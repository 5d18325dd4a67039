//! The token leak check after every scenario: the scenario folder byte for byte (logs, history,
//! databases and their `-wal`, backups), every adapter journal cell by cell through SQLite, and
//! the answers the runner received, searched for the run's secrets (see `crate::leaks`).

use std::path::PathBuf;

use super::{Runner, Verdict};
use crate::history::Outcome;
use crate::leaks::{self, FINDINGS_SHOWN_MAX};
use crate::step_error::StepError;
use crate::tokens::AUTH_DIR;

const LABEL: &str = "check tokens";
const KIND: &str = "token_leak";

impl Runner<'_> {
    /// The adapter's journal: its `db`, else its `--db` argument.
    fn journal_path(&self, process: &str) -> Option<PathBuf> {
        if let Ok(p) = self.db_path(process) {
            return Some(p);
        }
        let p = self.sc.file.process.get(process)?;
        let value = p.args.iter().enumerate().find_map(|(i, a)| {
            if a == "--db" {
                p.args.get(i + 1).map(String::as_str)
            } else {
                a.strip_prefix("--db=")
            }
        })?;
        self.vars.render(value).ok().map(PathBuf::from)
    }

    /// Runs after every process and mount is gone; Err names each place a secret was found.
    pub(super) fn leak_check(&self) -> Result<(), StepError> {
        let Some(auth) = self.vars.auth.clone() else {
            return Ok(());
        };
        self.hist
            .invoke(LABEL, KIND, "scan for the run's API token secrets");
        let secrets = auth.secrets();
        let mut scan = leaks::scan_tree(&self.dir, &self.dir.join(AUTH_DIR), &secrets);
        let mut journals = 0;
        for name in self.sc.adapters.keys() {
            let Some(db) = self.journal_path(name) else {
                continue;
            };
            // A power-cut mount is gone by now; its durable bytes are in the backing folder.
            let db = self.disks.backing_path(&db).unwrap_or(db);
            if !db.is_file() {
                continue;
            }
            if !db.starts_with(&self.dir) {
                // Outside the folder the tree scan did not see its files.
                for suffix in ["", "-wal"] {
                    let mut path = db.clone().into_os_string();
                    path.push(suffix);
                    let path = PathBuf::from(path);
                    if path.is_file()
                        && let Err(e) = leaks::scan_file(&path, &secrets, &mut scan)
                    {
                        scan.findings
                            .push(format!("cannot read {}: {e}", path.display()));
                    }
                }
            }
            let scratch = self.dir.join(format!("leak-scan-copy-{name}"));
            leaks::scan_journal(&db, &secrets, &scratch, &mut scan);
            journals += 1;
        }
        let (answers, answer_leaks) = auth.answer_findings();
        scan.findings.extend(answer_leaks);
        let summary = format!(
            "{} files ({} bytes), {journals} journals ({} text/blob cells), {answers} answers",
            scan.files, scan.bytes, scan.cells
        );
        if scan.findings.is_empty() {
            self.hist.complete(
                LABEL,
                KIND,
                &format!("no secret in {summary}"),
                Outcome::Ok,
                Vec::new(),
            );
            return Ok(());
        }
        let total = scan.findings.len();
        scan.findings.truncate(FINDINGS_SHOWN_MAX);
        let e = StepError::TokenLeak {
            total,
            summary,
            shown: scan.findings,
        };
        self.hist
            .complete(LABEL, KIND, &e.to_string(), Outcome::Fail, Vec::new());
        Err(e)
    }
}

/// A token leak fails the scenario whatever else happened, a negative control too.
pub(super) fn with_leak(v: Verdict, leak: String) -> Verdict {
    match v {
        Verdict::Passed | Verdict::ExpectedFailure(_) => Verdict::Failed(leak),
        Verdict::Failed(m) => Verdict::Failed(format!("{m}\n{leak}")),
        Verdict::Infra(m) => Verdict::Infra(format!("{m}\n{leak}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leak_fails_a_pass_and_a_negative_control_and_adds_to_other_failures() {
        let leak = || "token leak check: x".to_owned();
        assert_eq!(with_leak(Verdict::Passed, leak()), Verdict::Failed(leak()));
        assert_eq!(
            with_leak(Verdict::ExpectedFailure("check 1".into()), leak()),
            Verdict::Failed(leak())
        );
        assert_eq!(
            with_leak(Verdict::Failed("step 3".into()), leak()),
            Verdict::Failed(format!("step 3\n{}", leak()))
        );
    }
}

//! Validation of the power-loss vocabulary: data directories, the fault steps, the crash loop and
//! the `power_loss` check.

use super::Validator;
use crate::model::{CutMode, PowerLossCheck, Probe, Process, Step};

/// The binary that provides power-cut mounts, looked up like any `{{bin.NAME}}`.
pub const POWERCUT_BIN: &str = "powercut-fs";

/// Does the process keep its data directory on the power-cut filesystem?
pub fn on_powercut(p: &Process) -> bool {
    p.data_dir.as_ref().is_some_and(|d| d.powercut)
}

/// Does the step draw a seed from the scenario's generator (so the seed is reported)?
pub fn draws_seed(s: &Step) -> bool {
    match s {
        Step::PowerCut(c) => c.mode != CutMode::DropAll && c.seed.is_none(),
        Step::FsFail(f) => f.probability.is_some() && f.seed.is_none(),
        _ => false,
    }
}

fn unit_interval(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

impl Validator<'_> {
    /// `{{data.NAME}}` must name a process that declares `data_dir`.
    pub(super) fn data_template(&mut self, offset: usize, name: &str) {
        match self.file.process.get(name) {
            Some(p) if p.data_dir.is_some() => {}
            Some(_) => self.err(
                offset,
                format!("`{{{{data.{name}}}}}`: process `{name}` declares no `data_dir`"),
            ),
            None => self.err(
                offset,
                format!("`{{{{data.{name}}}}}`: unknown process `{name}`"),
            ),
        }
    }

    /// The process exists and its data directory is on the power-cut filesystem.
    fn need_powercut(&mut self, at: usize, name: &str) {
        match self.file.process.get(name) {
            None => self.err_at(at, name, format!("unknown process `{name}`")),
            Some(p) if !on_powercut(p) => self.err_at(
                at,
                name,
                format!("process `{name}` has no power-cut data directory: add `data_dir = {{ powercut = true }}`"),
            ),
            Some(_) => {}
        }
    }

    /// Validates the power-loss step kinds (the other kinds are handled by `step`).
    pub(super) fn power_step(&mut self, at: usize, s: &Step) {
        match s {
            Step::PowerCut(c) => {
                self.need_powercut(at, &c.power_cut);
                let torn = c.mode == CutMode::TornWrite;
                if torn != c.file.is_some() {
                    self.err_at(
                        at,
                        "file",
                        "`file` is required by `mode = \"torn_write\"` and only allowed there",
                    );
                }
                if c.mode == CutMode::DropAll && c.seed.is_some() {
                    self.err_at(
                        at,
                        "seed",
                        "`seed` applies to `writeback` and `torn_write` only",
                    );
                }
                match c.fraction {
                    Some(_) if c.mode != CutMode::Writeback => self.err_at(
                        at,
                        "fraction",
                        "`fraction` applies to `mode = \"writeback\"` only",
                    ),
                    Some(f) if !unit_interval(f) => {
                        self.err_at(at, "fraction", "`fraction` must be within 0..=1")
                    }
                    _ => {}
                }
            }
            Step::Remount(r) => self.need_powercut(at, &r.remount),
            Step::Heal(h) => self.need_powercut(at, &h.heal),
            Step::FsFail(f) => {
                self.need_powercut(at, &f.fs_fail);
                match (f.count, f.probability) {
                    (Some(0), None) => self.err_at(at, "count", "`count` must be at least 1"),
                    (Some(_), None) => {
                        if f.seed.is_some() {
                            self.err_at(at, "seed", "`seed` goes with `probability`, not `count`");
                        }
                    }
                    (None, Some(p)) if !unit_interval(p) => {
                        self.err_at(at, "probability", "`probability` must be within 0..=1")
                    }
                    (None, Some(_)) => {}
                    _ => self.err(at, "fs_fail needs exactly one of `count` or `probability`"),
                }
            }
            Step::CrashAtFsync(c) => {
                self.need_powercut(at, &c.crash_at_fsync);
                match (c.n, c.steps.is_empty()) {
                    (Some(0), _) => self.err_at(at, "n", "`n` counts fsyncs from 1"),
                    (Some(_), false) | (None, true) => self.err(
                        at,
                        "crash_at_fsync needs exactly one of `n` (arm once) or `steps` (the loop over N = 1, 2, ...)",
                    ),
                    (Some(_), true) => {
                        if !c.recover.is_empty() || c.n_max.is_some() {
                            self.err(at, "`recover` and `n_max` belong to the loop form (with `steps`)");
                        }
                    }
                    (None, false) => {}
                }
                if c.n_max == Some(0) {
                    self.err_at(at, "n_max", "`n_max` must be at least 1");
                }
                self.steps(&c.steps);
                self.steps(&c.recover);
            }
            Step::IntegrityCheck(i) => self.need_db(at, &i.integrity_check),
            _ => {}
        }
    }

    /// An http probe needs a JSONPath for its values; an sql probe reads its first column.
    fn probe_with_ids(&mut self, at: usize, what: &str, p: &Probe, ids: Option<&str>) {
        let sql = self.probe(at, p);
        match (sql, ids) {
            (false, None) => self.err(
                at,
                format!("power_loss: an http `{what}` needs a JSONPath for its values"),
            ),
            (true, Some(_)) => self.err(
                at,
                format!("power_loss: an sql `{what}` reads its first column; drop the JSONPath"),
            ),
            (false, Some(path)) => self.json_path(at, path),
            (true, None) => {}
        }
    }

    pub(super) fn power_check(&mut self, at: usize, x: &PowerLossCheck) {
        if !self.lists.contains(&x.power_loss) {
            self.err_at(
                at,
                &x.power_loss,
                format!("power_loss: no step appends to `{}`", x.power_loss),
            );
        }
        self.probe_with_ids(at, "observe", &x.observe, x.ids.as_deref());
        match &x.fiscal {
            Some(f) => self.probe_with_ids(at, "fiscal", f, x.fiscal_ids.as_deref()),
            None if x.fiscal_ids.is_some() => {
                self.err_at(at, "fiscal_ids", "power_loss: `fiscal_ids` needs `fiscal`")
            }
            None => {}
        }
        for p in &x.integrity {
            self.need_db(at, p);
        }
    }
}

//! Power-loss steps: cut the power of a process's data directory (and kill the process, as an
//! outage does), remount, inject ENOSPC/EIO, heal, crash at the Nth fsync (once, or SQLite's
//! loop over N), `PRAGMA integrity_check`, and the `power_loss` check.

use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use super::{Runner, StepResult, fail};
use crate::check;
use crate::disks;
use crate::history::Outcome;
use crate::model::{
    CrashAtFsyncStep, CutMode, Errno, FsFailStep, FsOp, PowerCutStep, PowerLossCheck, Probe, Step,
};
use crate::probe;
use crate::step_error::{Mismatch, StepError};

/// A crash loop arms the next crash once the disk saw no fsync for this long ...
const QUIET: Duration = Duration::from_millis(250);
/// ... or after this long at most.
const QUIET_MAX: Duration = Duration::from_secs(5);

/// How long a process killed by a power cut may take to exit.
const REAP_LIMIT: Duration = Duration::from_secs(10);

impl Runner<'_> {
    /// The control address of `process`'s power-cut mount.
    pub(super) fn control_of(&self, process: &str) -> Result<String, StepError> {
        self.disks
            .get(process)
            .and_then(|d| d.control.clone())
            .ok_or_else(|| StepError::NoPowerCut(process.to_owned()))
    }

    /// The control route and body of a cut; seeds not given are drawn from the scenario seed.
    pub(super) fn cut_request(
        &mut self,
        c: &PowerCutStep,
    ) -> Result<(&'static str, Option<Value>), StepError> {
        let seed = c.seed.unwrap_or_else(|| self.rng.random());
        Ok(match c.mode {
            CutMode::DropAll => ("power_cut", None),
            CutMode::Writeback => (
                "writeback",
                Some(json!({ "seed": seed, "fraction": c.fraction.unwrap_or(0.5) })),
            ),
            CutMode::TornWrite => {
                let file = self.vars.render(c.file.as_deref().unwrap_or_default())?;
                ("torn_write", Some(json!({ "file": file, "seed": seed })))
            }
        })
    }

    fn post(&self, process: &str, route: &str, body: Option<&Value>) -> Result<Value, StepError> {
        Ok(disks::control_post(
            &self.client,
            &self.control_of(process)?,
            route,
            body,
        )?)
    }

    fn stats(&self, process: &str) -> Result<Value, StepError> {
        Ok(disks::control_stats(
            &self.client,
            &self.control_of(process)?,
        )?)
    }

    /// SIGKILLs `process` if it runs; returns a note for the history.
    fn kill_user(&mut self, process: &str) -> Result<String, StepError> {
        match self.procs.pid(process) {
            None => Ok(String::new()),
            Some(pid) => {
                self.procs.kill(process)?;
                Ok(format!("; SIGKILL to `{process}` (pid {pid})"))
            }
        }
    }

    /// Runs a power-loss step other than the crash loop.
    pub(super) fn power_exec(&mut self, step: &Step) -> StepResult {
        let done = |d: String| Ok((d, Vec::new()));
        match step {
            Step::PowerCut(c) => {
                let (route, body) = self.cut_request(c).map_err(fail)?;
                let control = self.control_of(&c.power_cut).map_err(fail)?;
                let pid = self.procs.pid(&c.power_cut);
                let groups: Vec<i32> = pid.iter().map(|p| *p as i32).collect();
                let report = disks::cut_now(&self.client, &control, route, body.as_ref(), &groups)
                    .map_err(fail)?;
                let mut d = format!("power cut: {}", disks::report_text(&report));
                if let Some(pid) = pid {
                    self.procs.wait(&c.power_cut, REAP_LIMIT).map_err(fail)?;
                    d.push_str(&format!("; SIGKILL to `{}` (pid {pid})", c.power_cut));
                }
                done(d)
            }
            Step::Remount(r) => {
                let stats = self.stats(&r.remount).map_err(fail)?;
                // After a crash at an fsync the processes still run against a dead filesystem;
                // in a real outage they would have died with it.
                let killed = if stats.get("state") == Some(&json!("cut")) {
                    self.kill_user(&r.remount).map_err(fail)?
                } else {
                    String::new()
                };
                let after = self.post(&r.remount, "remount", None).map_err(fail)?;
                done(format!(
                    "remounted (remounts={}){killed}",
                    check::id_text(after.get("remounts").unwrap_or(&Value::Null))
                ))
            }
            Step::FsFail(f) => {
                let body = self.fail_body(f);
                self.post(&f.fs_fail, "fail", Some(&body)).map_err(fail)?;
                done(format!("armed {body}"))
            }
            Step::Heal(h) => {
                self.post(&h.heal, "heal", None).map_err(fail)?;
                done("healed".into())
            }
            Step::CrashAtFsync(c) => {
                let n = c.n.unwrap_or(1);
                self.post(
                    &c.crash_at_fsync,
                    "crash_at_fsync",
                    Some(&json!({ "n": n })),
                )
                .map_err(fail)?;
                done(format!("armed a crash at fsync {n} from now"))
            }
            Step::IntegrityCheck(i) => self
                .integrity(&i.integrity_check)
                .map_err(fail)
                .and_then(done),
            other => Err(fail(StepError::Internal(format!(
                "`{}` is not a power step",
                other.kind()
            )))),
        }
    }

    fn fail_body(&mut self, f: &FsFailStep) -> Value {
        let op = match f.op {
            FsOp::Write => "write",
            FsOp::Fsync => "fsync",
        };
        let errno = match f.errno {
            Errno::ENOSPC => "ENOSPC",
            Errno::EIO => "EIO",
        };
        match (f.count, f.probability) {
            (Some(n), _) => json!({ "op": op, "errno": errno, "count": n }),
            (None, p) => {
                let seed = f.seed.unwrap_or_else(|| self.rng.random());
                json!({ "op": op, "errno": errno, "probability": p.unwrap_or(1.0), "seed": seed })
            }
        }
    }

    /// `PRAGMA integrity_check` on the process's database, read-only; Ok only for `ok`.
    ///
    /// A database left with a hot rollback journal needs a writer to roll it back first, which a
    /// read-only connection refuses ("attempt to write a readonly database"). Then the check runs
    /// on a copy of the files (database, `-journal`, `-wal`), so the original stays untouched
    /// and the result is what the next process to open it will find.
    pub(super) fn integrity(&self, process: &str) -> Result<String, StepError> {
        const Q: &str = "PRAGMA integrity_check";
        let db = self.db_path(process)?;
        let (rows, how) = match probe::query(&db, Q, false) {
            Ok(rows) => (rows, ""),
            Err(e) if e.is_readonly_db() => {
                let copy = self.dir.join(format!("integrity-copy-{process}"));
                let rows = copy_and_check(&db, &copy, Q);
                // The copy is scratch space; a leftover only costs disk in the scenario folder.
                let _ = std::fs::remove_dir_all(&copy);
                (rows?, " (on a copy: the database needed recovery first)")
            }
            Err(e) => return Err(e),
        };
        if rows == vec![vec![json!("ok")]] {
            Ok(format!("integrity ok{how}"))
        } else {
            Err(Mismatch::new(
                format!("PRAGMA integrity_check{how}"),
                "ok",
                crate::expect::rows_text(&rows),
            )
            .into())
        }
    }

    /// The crash loop: for N = 1, 2, ... arm a crash at the Nth fsync and run the steps; after a
    /// hit, kill, remount and recover; done when the steps finish without reaching fsync N.
    pub(super) fn crash_loop(
        &mut self,
        label: &str,
        c: &CrashAtFsyncStep,
    ) -> Result<String, StepError> {
        let disk = c.crash_at_fsync.as_str();
        let n_max = c.n_max.unwrap_or(crate::model::CRASH_LOOP_MAX);
        let saved = self.vars.i;
        let mut res = Err(StepError::CrashLoopExhausted { n_max });
        for n in 1..=n_max {
            self.vars.i = Some(n);
            match self.crash_attempt(label, disk, c, n) {
                Ok(true) => continue,
                Ok(false) => {
                    res = Ok(format!(
                        "{} crashes (N = 1..{}); the operation completed with fewer than {n} fsyncs",
                        n - 1,
                        n - 1
                    ));
                    break;
                }
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        self.vars.i = saved;
        // Disarm whatever is left, also after a failure.
        let healed = self.post(disk, "heal", None);
        let d = res?;
        healed.map(|_| d)
    }

    /// One attempt of the crash loop; Ok(true) when the crash hit (and recovery ran).
    fn crash_attempt(
        &mut self,
        label: &str,
        disk: &str,
        c: &CrashAtFsyncStep,
        n: u32,
    ) -> Result<bool, StepError> {
        let at = format!("{label}[{n}]");
        let before = self.quiesce(disk)?;
        self.post(disk, "crash_at_fsync", Some(&json!({ "n": n })))?;
        let ran = self.run_steps(&c.steps, &format!("{at}."));
        let stats = self.stats(disk)?;
        let hit = stats.get("state") == Some(&json!("cut"));
        if !hit {
            // A step that failed without the crash is a real failure.
            ran?;
            self.hist
                .invoke(&format!("{at} done"), "note", "the crash was not reached");
            self.hist.complete(
                &format!("{at} done"),
                "note",
                &format!(
                    "the steps made {} fsyncs, fewer than {n}",
                    fsyncs(&stats) - before
                ),
                Outcome::Ok,
                Vec::new(),
            );
            return Ok(false);
        }
        let cut_label = format!("{at} cut");
        self.hist
            .invoke(&cut_label, "power_cut", &format!("crash at fsync {n}"));
        let killed = self.kill_user(disk)?;
        let interrupted = match &ran {
            Ok(()) => "after the steps finished".to_owned(),
            Err(e) => format!("interrupting the steps ({})", first_line(&e.to_string())),
        };
        let report = stats
            .get("last_cut")
            .map(disks::report_text)
            .unwrap_or_default();
        self.hist.complete(
            &cut_label,
            "power_cut",
            &format!("crash at fsync {n} {interrupted}: {report}{killed}"),
            Outcome::Ok,
            Vec::new(),
        );
        self.post(disk, "remount", None)?;
        self.run_steps(&c.recover, &format!("{at}.recover."))?;
        Ok(true)
    }

    /// Waits until the disk has seen no fsync for `QUIET` (at most `QUIET_MAX`), so a crash
    /// armed next counts the operation's own fsyncs, not those of a restart's deferred work.
    /// Returns the fsync count.
    fn quiesce(&self, disk: &str) -> Result<i64, StepError> {
        let end = std::time::Instant::now() + QUIET_MAX;
        let mut last = fsyncs(&self.stats(disk)?);
        let mut since = std::time::Instant::now();
        while since.elapsed() < QUIET && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(25));
            let now = fsyncs(&self.stats(disk)?);
            if now != last {
                (last, since) = (now, std::time::Instant::now());
            }
        }
        Ok(last)
    }

    /// The `power_loss` check: the figure line, and Err when it does not hold.
    pub(super) fn power_loss_check(&mut self, x: &PowerLossCheck) -> Result<(), StepError> {
        let observed = self.values(&x.observe, x.ids.as_deref())?;
        let fiscal = match &x.fiscal {
            Some(f) => self.values(f, x.fiscal_ids.as_deref())?,
            None => Vec::new(),
        };
        let mut finals = Vec::new();
        let mut notes = Vec::new();
        for p in &x.integrity {
            let label = format!("check integrity {p}");
            self.hist.invoke(&label, "integrity_check", p);
            let r = self.integrity(p);
            let (d, o) = match &r {
                Ok(d) => (d.clone(), Outcome::Ok),
                Err(e) => (e.to_string(), Outcome::Fail),
            };
            self.hist
                .complete(&label, "integrity_check", &d, o, Vec::new());
            if r.is_err() {
                notes.push(format!("{p}: {d}"));
            }
            finals.push(o == Outcome::Ok);
        }
        let history = self.hist.events();
        // The final checks were just recorded; count them once.
        let steps_only: Vec<_> = history
            .iter()
            .filter(|e| !e.step.starts_with("check integrity "))
            .cloned()
            .collect();
        let mut fig = check::power_loss(&steps_only, &x.power_loss, &observed, &fiscal, &finals);
        fig.cycles_min = x.cycles_min as usize;
        let held = fig.is_ok();
        let e = StepError::PowerLoss {
            list: x.power_loss.clone(),
            figure: Box::new(fig),
            notes,
        };
        self.figures.push(e.to_string());
        if held { Ok(()) } else { Err(e) }
    }

    /// The values a probe yields: an http response's JSONPath nodes, or an sql probe's first column.
    fn values(&mut self, p: &Probe, ids: Option<&str>) -> Result<Vec<Value>, StepError> {
        match self.probe(p)? {
            Ok(r) => {
                let path = ids.ok_or(StepError::ProbeWithoutPath)?;
                let jp = serde_json_path::JsonPath::parse(path)?;
                Ok(jp.query(&r.body).all().into_iter().cloned().collect())
            }
            Err(rows) => Ok(rows
                .into_iter()
                .filter_map(|r| r.into_iter().next())
                .collect()),
        }
    }
}

/// Copies a database with its `-journal` and `-wal` into `dir` and runs `q` read-write there.
fn copy_and_check(
    db: &std::path::Path,
    dir: &std::path::Path,
    q: &str,
) -> Result<Vec<Vec<Value>>, StepError> {
    let name = db.file_name().ok_or(StepError::DbWithoutFileName)?;
    std::fs::create_dir_all(dir).map_err(|source| StepError::Io {
        context: dir.display().to_string(),
        source,
    })?;
    for suffix in ["", "-journal", "-wal"] {
        let mut from = db.as_os_str().to_owned();
        from.push(suffix);
        let mut to = dir.join(name).into_os_string();
        to.push(suffix);
        match std::fs::copy(&from, &to) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            Err(source) => {
                return Err(StepError::Io {
                    context: format!("copying {}", from.to_string_lossy()),
                    source,
                });
            }
        }
    }
    probe::query(&dir.join(name), q, true)
}

/// File and directory fsyncs so far, from `/stats` (the crash counts both).
fn fsyncs(stats: &Value) -> i64 {
    let n = |k: &str| stats.get(k).and_then(Value::as_i64).unwrap_or(0);
    n("fsyncs") + n("dir_fsyncs")
}

fn first_line(m: &str) -> &str {
    m.lines().next().unwrap_or_default()
}

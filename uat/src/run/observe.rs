//! What the runner observes: probes, `wait_until`, SQL and file steps, the checks and failure artifacts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Runner;
use crate::check;
use crate::expect;
use crate::model::{Check, Probe, ProbeExpect, WaitStep};
use crate::probe::{self, Response};
use crate::procs;
use crate::step_error::{Mismatch, StepError};
use crate::util::At;

impl Runner<'_> {
    /// Evaluates a probe: an http response, or sql rows (as a JSON array of arrays).
    pub(super) fn probe(
        &mut self,
        p: &Probe,
    ) -> Result<Result<Response, Vec<Vec<Value>>>, StepError> {
        match p {
            Probe::Line(l) => self.probe_http(
                l,
                crate::model::RequestParts {
                    json: None,
                    body: None,
                    headers: &Default::default(),
                    timeout: crate::util::Dur(Duration::from_secs(10)),
                },
            ),
            Probe::Table(t) => match (&t.http, &t.sql, &t.db) {
                (Some(l), _, _) => self.probe_http(l, t.parts()),
                (None, Some(q), Some(db)) => self.sql(db, q, false).map(Err),
                _ => Err(StepError::EmptyProbe),
            },
        }
    }

    pub(super) fn probe_http(
        &mut self,
        line: &str,
        parts: crate::model::RequestParts<'_>,
    ) -> Result<Result<Response, Vec<Vec<Value>>>, StepError> {
        probe::request(&self.client, &self.vars, line, parts, self.remaining())
            .map(Ok)
            .map_err(StepError::from)
    }

    pub(super) fn wait_until(&mut self, w: &WaitStep) -> Result<String, StepError> {
        let started = Instant::now();
        let end = self.deadline.min(started + w.timeout.0);
        let interval = w.interval.0.max(Duration::from_millis(1));
        let judge = |e: &ProbeExpect, v: &Result<Response, Vec<Vec<Value>>>| match v {
            Ok(r) => probe::judge_response(e.status, &e.json, r),
            Err(rows) => {
                expect::check_rows(e.rows.as_deref().unwrap_or(&[]), rows).map_err(StepError::from)
            }
        };
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            let (last, why) = match self.probe(&w.wait_until) {
                Ok(v) => {
                    if let Some(a) = &w.abort_if
                        && judge(a, &v).is_ok()
                    {
                        return Err(StepError::WaitAborted {
                            attempts,
                            value: show(&v),
                        });
                    }
                    match judge(&w.expect, &v) {
                        Ok(()) => return Ok(format!("held after {attempts} attempts")),
                        Err(m) => (show(&v), m),
                    }
                }
                Err(e) => (format!("error: {e}"), e),
            };
            if Instant::now() + interval > end {
                return Err(StepError::WaitGaveUp {
                    attempts,
                    elapsed: started.elapsed(),
                    last_value: last,
                    why: Box::new(why),
                });
            }
            std::thread::sleep(interval);
        }
    }

    pub(super) fn db_path(&self, process: &str) -> Result<PathBuf, StepError> {
        let p = self
            .sc
            .file
            .process
            .get(process)
            .and_then(|p| p.db.as_ref())
            .ok_or_else(|| StepError::NoDb(process.to_owned()))?;
        Ok(PathBuf::from(self.vars.render(p)?))
    }

    pub(super) fn sql(
        &self,
        process: &str,
        q: &str,
        writable: bool,
    ) -> Result<Vec<Vec<Value>>, StepError> {
        probe::query(&self.db_path(process)?, &self.vars.render(q)?, writable)
    }

    pub(super) fn file(&self, f: &crate::model::FileStep) -> Result<String, StepError> {
        let path = self.vars.render(&f.file)?;
        let meta = std::fs::metadata(&path).ok();
        let exists = meta.is_some();
        let want_exists = f.exists.unwrap_or(true);
        if exists != want_exists {
            return Err(Mismatch::new(
                path,
                format!("exists = {want_exists}"),
                format!("exists = {exists}"),
            )
            .into());
        }
        if let (Some(size), Some(m)) = (&f.size, &meta) {
            expect::matches(size, &Value::from(m.len()))
                .map_err(|e| e.within(format!("{path} size")))?;
        }
        Ok(match meta {
            Some(m) => format!("exists, {} bytes", m.len()),
            None => "absent".into(),
        })
    }

    pub(super) fn run_check(&mut self, c: &At<Check>) -> Result<(), StepError> {
        match &c.value {
            Check::ExactlyOnce(x) => {
                let body = match self.probe(&x.observe)? {
                    Ok(r) => r.body,
                    Err(_) => return Err(StepError::ObserveNotHttp),
                };
                let path = serde_json_path::JsonPath::parse(&x.ids)?;
                let observed: Vec<Value> = path.query(&body).all().into_iter().cloned().collect();
                let (cl, ticks) =
                    check::exactly_once_ticks(&self.hist.events(), &x.exactly_once, &observed);
                self.ticks.extend(ticks);
                let held = cl.is_ok();
                let e = StepError::ExactlyOnce {
                    list: x.exactly_once.clone(),
                    counts: Box::new(cl),
                };
                self.figures.push(e.to_string());
                if held { Ok(()) } else { Err(e) }
            }
            Check::LogClean(x) => {
                let (out, err) = procs::log_paths(&self.dir, &x.log_clean);
                for p in [out, err] {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    if let Some((n, pat, line)) = check::find_forbidden(&text, &x.forbid) {
                        return Err(StepError::LogClean {
                            path: p,
                            line_no: n,
                            pattern: pat.to_owned(),
                            line: line.to_owned(),
                        });
                    }
                }
                Ok(())
            }
            Check::Sql(x) => {
                let rows = self.sql(&x.db, &x.sql, false)?;
                Ok(expect::check_rows(
                    x.expect.rows.as_deref().unwrap_or(&[]),
                    &rows,
                )?)
            }
            Check::PowerLoss(x) => self.power_loss_check(x),
        }
    }

    /// On failure, keeps a copy of each process's database files (`db`, `-wal`, `-shm`) in the folder.
    pub(super) fn copy_databases(&self) {
        for (name, _) in self.sc.file.process.iter() {
            let Ok(db) = self.db_path(name) else { continue };
            // Power-cut mounts are gone by now; their durable bytes are in the backing folder.
            let db = self.disks.backing_path(&db).unwrap_or(db);
            let (Some(parent), Some(base)) = (db.parent(), db.file_name().and_then(|b| b.to_str()))
            else {
                continue;
            };
            let target = self.dir.join("artifacts").join(name);
            let Ok(rd) = std::fs::read_dir(parent) else {
                continue;
            };
            for e in rd.flatten() {
                let fname = e.file_name();
                if fname.to_str().is_some_and(|f| f.starts_with(base))
                    && std::fs::create_dir_all(&target).is_ok()
                    && let Err(err) = std::fs::copy(e.path(), target.join(&fname))
                {
                    eprintln!("uat: cannot copy {}: {err}", e.path().display());
                }
            }
        }
    }
}

/// The value at a JSONPath: one node as itself, several as an array, none is an error.
pub(super) fn select(body: &Value, path: &str) -> Result<Value, StepError> {
    let jp = serde_json_path::JsonPath::parse(path)?;
    let nodes = jp.query(body).all();
    match nodes.as_slice() {
        [] => Err(StepError::NoNodeSelected {
            path: path.to_owned(),
            body: expect::clip(body),
        }),
        [one] => Ok((*one).clone()),
        many => Ok(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
    }
}

fn show(v: &Result<Response, Vec<Vec<Value>>>) -> String {
    match v {
        Ok(r) => expect::clip(&r.as_value()),
        Err(rows) => expect::rows_text(rows),
    }
}

//! Loading and validating scenario files: every error names file:line:column, nothing is skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::{
    Chaos, Check, Expected, Probe, ProbeExpect, Process, ScenarioFile, Step, WaitStep,
};
use crate::template;
use crate::util::{At, line_col};

/// A loaded, validated scenario.
#[derive(Debug)]
pub struct Scenario {
    pub path: PathBuf,
    pub text: String,
    pub file: ScenarioFile,
    /// Port names used as `{{port.NAME}}`; the runner picks a free port for each.
    pub ports: BTreeSet<String>,
    /// Binary names used as `{{bin.NAME}}`.
    pub bins: BTreeSet<String>,
    /// The scenario draws random numbers (a random kill or chaos), so its seed is reported.
    pub seeded: bool,
    /// Adapter processes (command `{{bin.adapter}}`) and the port name each listens on: the
    /// runner starts them with the run's API tokens and sends a token with every request there.
    pub adapters: BTreeMap<String, String>,
}

impl Scenario {
    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.file.scenario.name
    }

    /// The `file:line` of a byte offset, for failure reports.
    pub fn location(&self, offset: usize) -> String {
        let (line, _) = line_col(&self.text, offset);
        format!("{}:{}", self.path.display(), line)
    }
}

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Why a scenario file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{}", render(path, diags))]
    Invalid { path: String, diags: Vec<Diag> },
}

fn render(path: &str, diags: &[Diag]) -> String {
    let lines: Vec<String> = diags
        .iter()
        .map(|d| format!("{path}:{}:{}: {}", d.line, d.col, d.message))
        .collect();
    lines.join("\n")
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

/// Reads and validates a scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_str(path, text)
}

/// Validates scenario text; `path` is only used in messages and reports.
pub fn load_str(path: &Path, text: String) -> Result<Scenario, LoadError> {
    let invalid = |diags: Vec<Diag>| LoadError::Invalid {
        path: path.display().to_string(),
        diags,
    };
    let file: ScenarioFile = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            let (line, col) = line_col(&text, e.span().map_or(0, |s| s.start));
            return Err(invalid(vec![Diag {
                line,
                col,
                message: e.message().trim_end().to_owned(),
            }]));
        }
    };
    let mut v = Validator {
        text: &text,
        file: &file,
        diags: Vec::new(),
        ports: BTreeSet::new(),
        bins: BTreeSet::new(),
        lists: BTreeSet::new(),
        cur_end: 0,
        seeded: file.chaos.is_some(),
        adapters: BTreeMap::new(),
    };
    v.validate();
    if file.process.iter().any(|(_, p)| power::on_powercut(p)) {
        v.bins.insert(power::POWERCUT_BIN.to_owned());
    }
    let Validator {
        diags,
        ports,
        bins,
        seeded,
        adapters,
        ..
    } = v;
    if !diags.is_empty() {
        return Err(invalid(diags));
    }
    Ok(Scenario {
        path: path.to_owned(),
        text,
        file,
        ports,
        bins,
        seeded,
        adapters,
    })
}

struct Validator<'a> {
    text: &'a str,
    file: &'a ScenarioFile,
    diags: Vec<Diag>,
    ports: BTreeSet<String>,
    bins: BTreeSet<String>,
    /// Names defined by `capture` and `append`, usable as `{{NAME}}`.
    lists: BTreeSet<String>,
    /// End of the step or check table being validated, to pin errors to the offending value.
    cur_end: usize,
    seeded: bool,
    adapters: BTreeMap<String, String>,
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

impl Validator<'_> {
    /// Reports at the first occurrence of `needle` inside the current step or check table
    /// (found as a quoted string first), or at `offset` when it is not there.
    fn err_at(&mut self, offset: usize, needle: &str, message: impl Into<String>) {
        // The span of a `[[step]]` table may cover only its header: extend to the next header.
        let next_header = self
            .text
            .get(offset + 1..)
            .and_then(|t| t.find("\n["))
            .map_or(self.text.len(), |i| offset + 1 + i);
        let end = self.cur_end.max(next_header).min(self.text.len());
        let region = self.text.get(offset..end).unwrap_or("");
        let quoted = format!("\"{needle}\"");
        let pos = region
            .find(&quoted)
            .map(|i| i + 1)
            .or_else(|| region.find(needle))
            .map_or(offset, |i| offset + i);
        self.err(pos, message);
    }

    fn err(&mut self, offset: usize, message: impl Into<String>) {
        let (line, col) = line_col(self.text, offset);
        self.diags.push(Diag {
            line,
            col,
            message: message.into(),
        });
    }

    fn validate(&mut self) {
        let file = self.file;
        let chaos_steps = file.chaos.iter().flat_map(|c| {
            let load = c.load.iter().flat_map(|l| &l.value.steps);
            let actions = c.action.iter().flat_map(|a| &a.value.steps);
            load.chain(actions).chain(&c.heal)
        });
        for s in file.step.iter().chain(&file.finally).chain(chaos_steps) {
            self.collect_names(s);
        }
        self.scan_templates();
        for (name, p) in file.process.iter() {
            self.process(name, p);
        }
        self.steps(&file.step);
        self.steps(&file.finally);
        for s in &file.finally {
            if random_bound(&s.value).is_some() {
                self.err(
                    s.span.start,
                    "`at = \"random\"` is not available in `finally`",
                );
            }
        }
        if let Some(c) = &file.chaos {
            self.chaos(c);
        }
        for c in &file.check {
            self.check(c);
        }
        self.diags.sort_by_key(|d| (d.line, d.col));
    }

    fn collect_names(&mut self, s: &At<Step>) {
        match &s.value {
            Step::Http(h) => {
                for (k, _) in h.capture.iter().chain(h.append.iter()) {
                    self.lists.insert(k.to_owned());
                }
            }
            Step::Repeat(r) => {
                if let Some(v) = &r.var {
                    self.lists.insert(v.clone());
                }
                r.steps.iter().for_each(|s| self.collect_names(s));
            }
            Step::CrashAtFsync(c) => {
                c.steps.iter().for_each(|s| self.collect_names(s));
                c.recover.iter().for_each(|s| self.collect_names(s));
            }
            Step::Metric(m) => {
                if let Some(n) = &m.save_as {
                    self.lists.insert(n.clone());
                }
            }
            other => {
                if random_bound(other).is_some() || power::draws_seed(other) {
                    self.seeded = true;
                }
            }
        }
    }

    /// Checks every `{{...}}` in the raw text, so the error points at the placeholder itself.
    fn scan_templates(&mut self) {
        let text = self.text;
        for t in template::placeholders(text) {
            let name = t.name.as_str();
            if t.unterminated {
                self.err(t.offset, "unterminated `{{`");
            } else if let Some(p) = name.strip_prefix("port.") {
                self.ports.insert(p.to_owned());
            } else if let Some(b) = name.strip_prefix("bin.") {
                self.bins.insert(b.to_owned());
            } else if let Some(d) = name.strip_prefix("data.") {
                self.data_template(t.offset, d);
            } else if let Some(r) = name.strip_prefix("auth_header.") {
                self.auth_template(t.offset, r);
            } else if !(name == "dir" || name == "i" || self.lists.contains(name)) {
                self.err(
                    t.offset,
                    format!(
                        "unknown template `{{{{{name}}}}}`: expected port.NAME, bin.NAME, data.NAME, auth_header.ROLE, dir, i or a capture name"
                    ),
                );
            }
        }
    }

    fn process(&mut self, name: &str, p: &Process) {
        let at = self.find_key(&format!("[process.{name}]"));
        self.adapter_process(at, name, p);
        if let Some(r) = &p.ready {
            let n = [
                r.http_get.is_some(),
                r.tcp.is_some(),
                r.path_exists.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if n != 1 {
                self.err(
                    at,
                    format!(
                        "process `{name}`: `ready` needs exactly one of http_get, tcp, path_exists"
                    ),
                );
            }
        }
    }

    /// Offset of a literal in the text (for diagnostics on tables without spans), or 0.
    fn find_key(&self, needle: &str) -> usize {
        self.text.find(needle).unwrap_or(0)
    }

    fn need_process(&mut self, at: usize, name: &str) {
        if self.file.process.get(name).is_none() {
            self.err_at(at, name, format!("unknown process `{name}`"));
        }
    }

    fn need_db(&mut self, at: usize, name: &str) {
        match self.file.process.get(name) {
            None => self.err_at(at, name, format!("unknown process `{name}`")),
            Some(p) if p.db.is_none() => {
                self.err_at(at, name, format!("process `{name}` declares no `db` path"))
            }
            Some(_) => {}
        }
    }

    fn request_line(&mut self, at: usize, line: &str) {
        match parse_request_line(line) {
            Err(m) => self.err_at(at, line, m),
            Ok((_, port, _)) => {
                if !self.ports.contains(port) {
                    self.err_at(
                        at,
                        line,
                        format!("`{line}`: no process listens on `{{{{port.{port}}}}}`"),
                    );
                }
            }
        }
    }

    fn json_path(&mut self, at: usize, path: &str) {
        if let Err(e) = serde_json_path::JsonPath::parse(path) {
            self.err_at(at, path, format!("invalid JSONPath `{path}`: {e}"));
        }
    }

    fn expects(&mut self, at: usize, json: &crate::util::NamedMap<Expected>) {
        for (p, _) in json.iter() {
            self.json_path(at, p);
        }
    }

    /// Validates a step list: each step, and the list-level rules of random kills.
    fn steps(&mut self, list: &[At<Step>]) {
        for (n, s) in list.iter().enumerate() {
            self.step(s);
            let within = match &s.value {
                Step::Kill(k) if !k.is_random() => k.within,
                Step::PowerCut(k) if !k.is_random() => k.within,
                _ => None,
            };
            self.cur_end = s.span.end;
            if within.is_some() {
                self.err_at(s.span.start, "within", "`within` needs `at = \"random\"`");
            }
            let Some(within) = random_bound(&s.value) else {
                continue;
            };
            self.seeded = true;
            match list.get(n + 1).map(|x| &x.value) {
                None => self.err(
                    s.span.start,
                    "`at = \"random\"` fires within the next step, but this is the last step of its list",
                ),
                Some(next) if random_bound(next).is_some() => self.err(
                    s.span.start,
                    "a random kill cannot be followed by another random kill",
                ),
                Some(next) if within.is_none() && next.time_limit().is_none() => self.err(
                    s.span.start,
                    format!(
                        "a random kill before a `{}` step needs `within` (that step has no timeout to bound it)",
                        next.kind()
                    ),
                ),
                Some(_) => {}
            }
        }
    }

    fn chaos(&mut self, c: &Chaos) {
        // The [chaos] table itself has no span; its sub-tables do.
        let at = self.find_key("[chaos");
        if c.duration.0.is_zero() {
            self.err(at, "chaos: `duration` must be positive");
        }
        if c.interval.min.0 < std::time::Duration::from_millis(1) {
            self.err(at, "chaos: `interval.min` must be at least 1ms");
        }
        if c.interval.min.0 > c.interval.max.0 {
            self.err(at, "chaos: `interval.min` exceeds `interval.max`");
        }
        if c.action.is_empty() {
            self.err(at, "chaos: at least one `[[chaos.action]]` is needed");
        }
        for a in &c.action {
            if a.value.weight == 0 {
                self.err_at(
                    a.span.start,
                    "weight",
                    "chaos action: `weight` must be at least 1",
                );
            }
            if a.value.steps.is_empty() {
                self.err(a.span.start, "chaos action: `steps` is empty");
            }
            self.steps(&a.value.steps);
        }
        if let Some(l) = &c.load {
            if l.value.steps.is_empty() {
                self.err(l.span.start, "chaos load: `steps` is empty");
            }
            for s in &l.value.steps {
                if !matches!(s.value, Step::Http(_) | Step::Sleep(_)) {
                    self.err(
                        s.span.start,
                        format!(
                            "chaos load steps may only be `http` or `sleep`, not `{}`",
                            s.value.kind()
                        ),
                    );
                }
            }
            self.steps(&l.value.steps);
        }
        self.steps(&c.heal);
        self.wait(c.liveness.span.start, &c.liveness.value);
    }

    fn wait(&mut self, at: usize, w: &WaitStep) {
        let sql = self.probe(at, &w.wait_until);
        self.probe_expect(at, sql, &w.expect);
        if let Some(a) = &w.abort_if {
            self.probe_expect(at, sql, a);
        }
    }

    fn step(&mut self, s: &At<Step>) {
        let at = s.span.start;
        self.cur_end = s.span.end;
        match &s.value {
            Step::Start(x) => self.need_process(at, &x.start),
            Step::Stop(x) => self.need_process(at, &x.stop),
            Step::Kill(x) => self.need_process(at, &x.kill),
            Step::Pause(x) => self.need_process(at, &x.pause),
            Step::Resume(x) => self.need_process(at, &x.resume),
            Step::Http(h) => {
                self.request_line(at, &h.http);
                if h.json.is_some() && h.body.is_some() {
                    self.err(at, "`json` and `body` are exclusive");
                }
                if let Some(e) = &h.expect {
                    self.expects(at, &e.json);
                }
                for (_, p) in h.capture.iter() {
                    self.json_path(at, p);
                }
                for (_, p) in h.append.iter() {
                    if p.starts_with('$') {
                        self.json_path(at, p);
                    }
                }
            }
            Step::Repeat(r) => {
                if let Some(p) = &r.while_running {
                    self.need_process(at, p);
                }
                self.steps(&r.steps);
            }
            Step::WaitUntil(w) => self.wait(at, w),
            Step::Sql(q) => self.need_db(at, &q.db),
            Step::File(_) | Step::Sleep(_) | Step::Exec(_) => {}
            Step::Metric(m) => self.metric_step(at, m),
            other => self.power_step(at, other),
        }
    }

    /// Validates a probe; returns true for an sql probe.
    fn probe(&mut self, at: usize, p: &Probe) -> bool {
        match p {
            Probe::Line(l) => {
                self.request_line(at, l);
                false
            }
            Probe::Table(t) => match (&t.http, &t.sql) {
                (Some(h), None) => {
                    self.request_line(at, h);
                    false
                }
                (None, Some(_)) => {
                    match &t.db {
                        Some(db) => self.need_db(at, db),
                        None => self.err(at, "an sql probe needs `db` (a process name)"),
                    }
                    true
                }
                _ => {
                    self.err(at, "a probe needs exactly one of `http` or `sql`");
                    false
                }
            },
        }
    }

    fn probe_expect(&mut self, at: usize, sql: bool, e: &ProbeExpect) {
        if sql && (e.status.is_some() || !e.json.is_empty()) {
            self.err(
                at,
                "an sql probe is judged by `rows`, not `status` or `json`",
            );
        }
        if !sql && e.rows.is_some() {
            self.err(
                at,
                "an http probe is judged by `status` and `json`, not `rows`",
            );
        }
        self.expects(at, &e.json);
    }

    fn check(&mut self, c: &At<Check>) {
        let at = c.span.start;
        self.cur_end = c.span.end;
        match &c.value {
            Check::ExactlyOnce(x) => {
                if !self.lists.contains(&x.exactly_once) {
                    self.err_at(
                        at,
                        &x.exactly_once,
                        format!("exactly_once: no step appends to `{}`", x.exactly_once),
                    );
                }
                if self.probe(at, &x.observe) {
                    self.err(at, "exactly_once: `observe` must be an http probe");
                }
                self.json_path(at, &x.ids);
            }
            Check::LogClean(x) => self.need_process(at, &x.log_clean),
            Check::Sql(x) => self.need_db(at, &x.db),
            Check::PowerLoss(x) => self.power_check(at, x),
        }
    }
}

/// For a random kill or a random power cut, `Some(within)`; None for any other step.
fn random_bound(s: &Step) -> Option<Option<crate::util::Dur>> {
    match s {
        Step::Kill(k) if k.is_random() => Some(k.within),
        Step::PowerCut(k) if k.is_random() => Some(k.within),
        _ => None,
    }
}

mod adapter;
mod power;

pub use adapter::{ADAPTER_COMMAND, is_adapter};
pub use power::POWERCUT_BIN;

/// Splits `"METHOD port-name /path"`.
pub fn parse_request_line(line: &str) -> Result<(&str, &str, &str), String> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    match parts.as_slice() {
        [m, p, path] if METHODS.contains(m) && path.starts_with('/') => Ok((m, p, path)),
        _ => Err(format!(
            "bad request line `{line}`: expected \"METHOD process /path\" with METHOD one of {}",
            METHODS.join(", ")
        )),
    }
}

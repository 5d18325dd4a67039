//! The scenario file format: serde types with a closed vocabulary, plus the JSON Schema derived from them.
//!
//! Every struct denies unknown fields. A step is a table whose FIRST key names its kind
//! (`start = "adapter"`, `http = "POST adapter /v1/receipts"`), so the kind is read before the rest
//! and the remaining keys are deserialized straight from the TOML parser, keeping exact spans for errors.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::util::{At, Dur, NamedMap};

/// A whole scenario file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Name, tags and overall timeout.
    pub scenario: Meta,
    /// Processes the scenario may start, in declaration order.
    #[serde(default)]
    pub process: NamedMap<Process>,
    /// Steps, run in order; the first failing step ends the run (then `finally` runs).
    #[serde(default)]
    pub step: Vec<At<Step>>,
    /// Checks over the recorded history, run after the steps.
    #[serde(default)]
    pub check: Vec<At<Check>>,
    /// Seeded fault injection, run after the steps and before the checks.
    #[serde(default)]
    pub chaos: Option<Chaos>,
    /// Steps that always run at the end, even after a failure.
    #[serde(default)]
    pub finally: Vec<At<Step>>,
}

/// The `[scenario]` table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Unique name, used for the report and the per-scenario directory.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags for `--tag` selection; `ci` marks scenarios that `cargo test -p uat` runs.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whole-scenario time limit (steps and checks; `finally` gets a short extra allowance).
    #[serde(default = "default_scenario_timeout")]
    pub timeout: Dur,
    /// `"fail"` marks a negative control: it passes when its checks fail (an expected failure).
    #[serde(default)]
    pub expect: ExpectOutcome,
}

fn default_scenario_timeout() -> Dur {
    Dur(Duration::from_secs(120))
}

/// A `[process.NAME]` table.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// Program to run, e.g. `{{bin.adapter}}` or `python3`.
    pub command: String,
    /// Arguments (templated).
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables (templated values).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory; defaults to the per-scenario directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Readiness probe awaited after each start.
    #[serde(default)]
    pub ready: Option<Ready>,
    /// Path of the process's SQLite database, for `sql` steps and failure artifacts.
    #[serde(default)]
    pub db: Option<String>,
    /// Start before the first step (default true); otherwise only by a `start` step.
    #[serde(default = "yes")]
    pub autostart: bool,
    /// A data directory, `{{data.NAME}}`; `{ powercut = true }` puts it on the power-cut filesystem.
    #[serde(default)]
    pub data_dir: Option<DataDir>,
}

fn yes() -> bool {
    true
}

/// Readiness probe: exactly one of `http_get`, `tcp`, `path_exists`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// URL that must answer with a 2xx status.
    #[serde(default)]
    pub http_get: Option<String>,
    /// `host:port` that must accept a TCP connection.
    #[serde(default)]
    pub tcp: Option<String>,
    /// Path that must exist.
    #[serde(default)]
    pub path_exists: Option<String>,
    /// How long to wait before the start counts as failed.
    #[serde(default = "default_ready_timeout")]
    pub timeout: Dur,
}

fn default_ready_timeout() -> Dur {
    Dur(Duration::from_secs(15))
}

/// One step. The first key of the table names the kind.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum Step {
    Start(StartStep),
    Stop(StopStep),
    Kill(KillStep),
    Pause(PauseStep),
    Resume(ResumeStep),
    Http(HttpStep),
    Repeat(RepeatStep),
    WaitUntil(WaitStep),
    Sql(SqlStep),
    File(FileStep),
    Sleep(SleepStep),
    Exec(ExecStep),
    PowerCut(PowerCutStep),
    Remount(RemountStep),
    FsFail(FsFailStep),
    Heal(HealStep),
    CrashAtFsync(CrashAtFsyncStep),
    IntegrityCheck(IntegrityStep),
    Metric(MetricStep),
}

/// Step kinds: the key that comes first in a step table (after an optional `name`).
pub const STEP_KINDS: &[&str] = &[
    "start",
    "stop",
    "kill",
    "pause",
    "resume",
    "http",
    "repeat",
    "wait_until",
    "sql",
    "file",
    "sleep",
    "exec",
    "power_cut",
    "remount",
    "fs_fail",
    "heal",
    "crash_at_fsync",
    "integrity_check",
    "metric",
];

impl Step {
    /// The kind's key, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Start(_) => "start",
            Step::Stop(_) => "stop",
            Step::Kill(_) => "kill",
            Step::Pause(_) => "pause",
            Step::Resume(_) => "resume",
            Step::Http(_) => "http",
            Step::Repeat(_) => "repeat",
            Step::WaitUntil(_) => "wait_until",
            Step::Sql(_) => "sql",
            Step::File(_) => "file",
            Step::Sleep(_) => "sleep",
            Step::Exec(_) => "exec",
            Step::PowerCut(_) => "power_cut",
            Step::Remount(_) => "remount",
            Step::FsFail(_) => "fs_fail",
            Step::Heal(_) => "heal",
            Step::CrashAtFsync(_) => "crash_at_fsync",
            Step::IntegrityCheck(_) => "integrity_check",
            Step::Metric(_) => "metric",
        }
    }

    /// A one-line description: the kind, the primary value and the optional `name`.
    pub fn title(&self) -> String {
        let (primary, name) = match self {
            Step::Start(s) => (s.start.clone(), &s.name),
            Step::Stop(s) => (s.stop.clone(), &s.name),
            Step::Kill(s) => (s.kill.clone(), &s.name),
            Step::Pause(s) => (s.pause.clone(), &s.name),
            Step::Resume(s) => (s.resume.clone(), &s.name),
            Step::Http(s) => (s.http.clone(), &s.name),
            Step::Repeat(s) => (format!("{} times", s.repeat), &s.name),
            Step::WaitUntil(s) => (s.wait_until.describe(), &s.name),
            Step::Sql(s) => (s.sql.clone(), &s.name),
            Step::File(s) => (s.file.clone(), &s.name),
            Step::Sleep(s) => (format!("{}", s.sleep), &s.name),
            Step::Exec(s) => (s.exec.clone(), &s.name),
            Step::PowerCut(s) => (s.power_cut.clone(), &s.name),
            Step::Remount(s) => (s.remount.clone(), &s.name),
            Step::FsFail(s) => (s.fs_fail.clone(), &s.name),
            Step::Heal(s) => (s.heal.clone(), &s.name),
            Step::CrashAtFsync(s) => (s.crash_at_fsync.clone(), &s.name),
            Step::IntegrityCheck(s) => (s.integrity_check.clone(), &s.name),
            Step::Metric(s) => (s.series(), &s.name),
        };
        match name {
            Some(n) => format!("{} `{}` ({})", self.kind(), primary, n),
            None => format!("{} `{}`", self.kind(), primary),
        }
    }
}

/// `start = "NAME"`: start a declared process and await its readiness probe.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartStep {
    pub start: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `stop = "NAME"`: SIGTERM to the process group, then SIGKILL after `grace`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopStep {
    pub stop: String,
    #[serde(default = "default_grace")]
    pub grace: Dur,
    #[serde(default)]
    pub name: Option<String>,
}

fn default_grace() -> Dur {
    Dur(Duration::from_secs(5))
}

/// `kill = "NAME"`: send a signal (default KILL) to the process group; for KILL, await the exit.
/// With `at = "random"` the signal fires at a seeded random moment while the NEXT step runs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillStep {
    pub kill: String,
    #[serde(default)]
    pub signal: SignalName,
    /// `"random"`: arm the kill and run the next step concurrently; the signal fires after a
    /// seeded random delay in `0..=within` (or when the next step ends, whichever comes first).
    #[serde(default)]
    pub at: Option<KillAt>,
    /// Upper bound of the random delay; defaults to the next step's own time limit
    /// (`timeout` of http, wait_until and exec, the length of sleep).
    #[serde(default)]
    pub within: Option<Dur>,
    #[serde(default)]
    pub name: Option<String>,
}

/// When a `kill` fires.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KillAt {
    /// At a seeded random moment within the next step.
    Random,
}

impl KillStep {
    /// True for `at = "random"`.
    pub fn is_random(&self) -> bool {
        self.at == Some(KillAt::Random)
    }
}

impl Step {
    /// The step's own time limit, the default bound of a random kill armed before it.
    pub fn time_limit(&self) -> Option<Duration> {
        match self {
            Step::Http(h) => Some(h.timeout.0),
            Step::WaitUntil(w) => Some(w.timeout.0),
            Step::Exec(e) => Some(e.timeout.0),
            Step::Sleep(s) => Some(s.sleep.0),
            Step::Metric(m) => Some(m.timeout.map_or(default_http_timeout().0, |t| t.0)),
            _ => None,
        }
    }
}

/// Signals a `kill` step may send.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum SignalName {
    #[default]
    KILL,
    TERM,
    INT,
    HUP,
    QUIT,
    USR1,
    USR2,
}

/// `pause = "NAME"`: SIGSTOP to the process group.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseStep {
    pub pause: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `resume = "NAME"`: SIGCONT to the process group.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeStep {
    pub resume: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `http = "METHOD process /path"`: one request to a declared process's port.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpStep {
    pub http: String,
    /// Literal JSON body (TOML table or array); strings inside are templated.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Raw body text (templated), for bodies TOML cannot spell, such as JSON `null`.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: NamedMap<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout: Dur,
    #[serde(default)]
    pub expect: Option<HttpExpect>,
    /// `capture.NAME = "$.path"`: remember one value from the response for later templates.
    #[serde(default)]
    pub capture: NamedMap<String>,
    /// `append.LIST = "$.path"` (from the response) or a template such as `"sale-{{i}}"` (known before
    /// the request, so it is recorded as indeterminate when the request is cut off).
    #[serde(default)]
    pub append: NamedMap<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// Borrowed view of a request's body, headers and timeout (shared by `http` steps and http probes).
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub json: Option<&'a serde_json::Value>,
    pub body: Option<&'a str>,
    pub headers: &'a NamedMap<String>,
    pub timeout: Dur,
}

impl HttpStep {
    /// The request parts of this step.
    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            json: self.json.as_ref(),
            body: self.body.as_deref(),
            headers: &self.headers,
            timeout: self.timeout,
        }
    }
}

impl ProbeTable {
    /// The request parts of this probe.
    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            json: self.json.as_ref(),
            body: self.body.as_deref(),
            headers: &self.headers,
            timeout: self.timeout,
        }
    }
}

fn default_http_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}

/// Expectations on an HTTP response.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpExpect {
    /// Exact status code.
    #[serde(default)]
    pub status: Option<u16>,
    /// `"$.path" = value or matcher`; objects match partially.
    #[serde(default)]
    pub json: NamedMap<Expected>,
}

/// `repeat = N` with `steps`; `{{i}}` is the iteration number, from 1.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepeatStep {
    pub repeat: u32,
    pub steps: Vec<At<Step>>,
    /// Also names the iteration number `{{VAR}}`, so an inner repeat's `{{i}}` does not hide it
    /// (e.g. `var = "cycle"` and keys `"sale-{{cycle}}-{{i}}"`).
    #[serde(default)]
    pub var: Option<String>,
    /// End the loop early, before an iteration, once this process is no longer running (e.g.
    /// killed by a random power cut), instead of sending the rest to a closed port.
    #[serde(default)]
    pub while_running: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `wait_until = probe`: poll until `expect` holds; give up at `timeout` or when `abort_if` holds.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitStep {
    pub wait_until: Probe,
    pub expect: ProbeExpect,
    #[serde(default)]
    pub abort_if: Option<ProbeExpect>,
    pub timeout: Dur,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(default)]
    pub name: Option<String>,
}

fn default_interval() -> Dur {
    Dur(Duration::from_millis(100))
}

/// A probe: an HTTP request line (`"GET adapter /v1/health"`) or a table with `http` or `sql`.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum Probe {
    Line(String),
    Table(ProbeTable),
}

/// The table form of a probe: exactly one of `http` (with optional body) or `sql` (with `db`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeTable {
    #[serde(default)]
    pub http: Option<String>,
    /// Literal JSON body (TOML table or array); strings inside are templated.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Raw body text (templated), for bodies TOML cannot spell, such as JSON `null`.
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: NamedMap<String>,
    #[serde(default = "default_http_timeout")]
    pub timeout: Dur,
    #[serde(default)]
    pub sql: Option<String>,
    /// The process whose `db` the query reads.
    #[serde(default)]
    pub db: Option<String>,
}

impl Probe {
    /// The request line, if this is an http probe.
    pub fn http_line(&self) -> Option<&str> {
        match self {
            Probe::Line(l) => Some(l),
            Probe::Table(t) => t.http.as_deref(),
        }
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Probe::Line(l) => l.clone(),
            Probe::Table(t) => match (&t.http, &t.sql) {
                (Some(h), _) => h.clone(),
                (None, Some(s)) => format!("sql {s}"),
                (None, None) => "empty probe".into(),
            },
        }
    }
}

/// Expectations for a probe: `status`/`json` for http, `rows` for sql.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeExpect {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub json: NamedMap<Expected>,
    #[serde(default)]
    pub rows: Option<Vec<Vec<Expected>>>,
}

/// `sql = "QUERY"` on the database of process `db` (read-only unless `writable`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlStep {
    pub sql: String,
    pub db: String,
    /// Open read-write, e.g. for `PRAGMA wal_checkpoint(TRUNCATE)`.
    #[serde(default)]
    pub writable: bool,
    #[serde(default)]
    pub expect: Option<SqlExpect>,
    #[serde(default)]
    pub name: Option<String>,
}

/// Expected result rows, in order; each cell a value or matcher.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlExpect {
    #[serde(default)]
    pub rows: Option<Vec<Vec<Expected>>>,
}

/// `file = "PATH"`: existence and size of a file (e.g. the `-wal` file).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStep {
    pub file: String,
    #[serde(default)]
    pub exists: Option<bool>,
    /// Size in bytes: a number or a matcher such as `{ gt = 0 }`.
    #[serde(default)]
    pub size: Option<Expected>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `sleep = "500ms"`: discouraged; prefer `wait_until`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepStep {
    pub sleep: Dur,
    #[serde(default)]
    pub name: Option<String>,
}

/// `exec = "PROGRAM"`: the escape hatch; runs to completion in the scenario directory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecStep {
    pub exec: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default = "default_exec_timeout")]
    pub timeout: Dur,
    /// Expected exit code (default 0).
    #[serde(default)]
    pub exit: i32,
    #[serde(default)]
    pub name: Option<String>,
}

fn default_exec_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}

/// A `[[check]]` over the recorded history. The first key names the kind.
#[derive(Debug, JsonSchema)]
#[schemars(untagged)]
pub enum Check {
    ExactlyOnce(ExactlyOnceCheck),
    LogClean(LogCleanCheck),
    Sql(SqlCheck),
    PowerLoss(PowerLossCheck),
}

/// Check kinds: the key that comes first in a check table.
pub const CHECK_KINDS: &[&str] = &["exactly_once", "log_clean", "sql", "power_loss"];

/// `exactly_once = "LIST"`: every acknowledged item of LIST (from `append`) is observed exactly once.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExactlyOnceCheck {
    pub exactly_once: String,
    /// Http probe returning JSON, e.g. `"GET ofd /v1/documents"`.
    pub observe: Probe,
    /// JSONPath selecting the observed ids in the probe's response, e.g. `"$.documents[*].receipt_id"`.
    pub ids: String,
}

/// `log_clean = "NAME"`: none of `forbid` occurs in the process's stdout or stderr.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogCleanCheck {
    pub log_clean: String,
    /// Substrings that must not appear.
    pub forbid: Vec<String>,
}

/// `sql = "QUERY"`: a final read-only query.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlCheck {
    pub sql: String,
    pub db: String,
    pub expect: SqlExpect,
}

/// An expected value: a literal (objects match partially) or a matcher table.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum Expected {
    Matcher(Matcher),
    Literal(serde_json::Value),
}

/// Matcher keys; a table whose keys are all matcher keys is a matcher, and every key must hold.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    #[serde(default)]
    pub gte: Option<f64>,
    #[serde(default)]
    pub lte: Option<f64>,
    #[serde(default)]
    pub gt: Option<f64>,
    #[serde(default)]
    pub lt: Option<f64>,
    #[serde(default)]
    pub one_of: Option<Vec<serde_json::Value>>,
    #[serde(default, rename = "type")]
    pub type_: Option<JsonType>,
    /// Exact (not partial) equality, also the escape for literal tables that look like matchers.
    #[serde(default)]
    pub eq: Option<serde_json::Value>,
    /// Length of a string or array.
    #[serde(default)]
    pub len: Option<u64>,
    /// The string contains this substring.
    #[serde(default)]
    pub contains: Option<String>,
}

/// JSON value types for the `type` matcher.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
    Null,
}

mod chaos;
mod de;
mod metric;
mod power;

pub use chaos::{Action, Chaos, Interval, Load};
pub use metric::{Bound, MetricStep, holds};
pub use power::{
    CRASH_LOOP_MAX, CrashAtFsyncStep, CutMode, DataDir, Errno, ExpectOutcome, FsFailStep, FsOp,
    HealStep, IntegrityStep, PowerCutStep, PowerLossCheck, RemountStep,
};

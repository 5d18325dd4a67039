//! Why a step, a check or a `finally` step failed: [`StepError`], the one error type of the step
//! path, with the smaller errors of the modules it calls (HTTP, processes, disks, templates,
//! metrics) converted into it, and [`HttpError`], which `probe.rs` returns.
//!
//! **Invariant:** the `Display` of every variant is the text the terminal, JUnit, the HTML report
//! and `history.jsonl` show; tests compare those texts, so a variant's wording is part of the
//! runner's interface. [`StepError::mismatch`] gives the expected vs. observed pair apart, for a
//! reporter that wants structure rather than text.
//!
//! **Boundary:** load-time errors (a scenario file's file:line diagnostics) are `LoadError`, not
//! this; they never reach a running step.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::check::{Classification, PowerLoss};
use crate::disks::DiskError;
use crate::procs::ProcError;
use crate::template::TemplateError;

/// An expectation that did not hold: what was checked, the expected and the observed value.
///
/// Shown as `WHAT: expected X, observed Y NOTE` (without `WHAT: ` when nothing names the place,
/// as for a bare JSON value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was checked: `status`, `exit code`, `$.duplicates`, `row 0 column 1`, or empty.
    pub what: String,
    pub expected: String,
    pub observed: String,
    /// Text after the observed value, such as ` (body {...})`; empty when none.
    pub note: String,
}

impl Mismatch {
    pub fn new(what: impl Into<String>, expected: impl ToString, observed: impl ToString) -> Self {
        Mismatch {
            what: what.into(),
            expected: expected.to_string(),
            observed: observed.to_string(),
            note: String::new(),
        }
    }

    /// The same mismatch with a note after the observed value.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }

    /// The same mismatch inside a larger value: `$.a` around `at .b` is `$.a: at .b`.
    pub fn within(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.what = if self.what.is_empty() {
            prefix
        } else {
            format!("{prefix}: {}", self.what)
        };
        self
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.what.is_empty() {
            write!(f, "{}: ", self.what)?;
        }
        write!(
            f,
            "expected {}, observed {}{}",
            self.expected, self.observed, self.note
        )
    }
}

/// What a random fault did to a request that got no answer while it was armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillEffect {
    /// Cut off in flight: may or may not have taken effect.
    CutOff,
    /// Refused after the fault: never sent.
    NotSent,
    /// Begun after the process was killed: cannot have taken effect.
    SentAfter,
}

/// How a request failed without a response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Nothing was sent (connection refused): the operation certainly did not happen.
    #[error("connection refused: {url}: {source}")]
    Refused { url: String, source: reqwest::Error },
    /// Sent, but no complete answer (cut off, timed out): the operation may or may not have
    /// happened.
    #[error("no answer (indeterminate): {url}: {source}")]
    Cut { url: String, source: reqwest::Error },
    /// The answer's head came, its body did not: as indeterminate as a request cut off.
    #[error("no answer (indeterminate): {url}: reading the body: {source}")]
    CutInBody { url: String, source: reqwest::Error },
    /// The step itself is wrong: a placeholder without a value.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The step itself is wrong: the request line or its method.
    #[error("{0}")]
    BadRequest(String),
    /// No port of that name in this scenario.
    #[error("no port `{0}`")]
    NoPort(String),
}

impl HttpError {
    /// The request may have taken effect (sent, no complete answer).
    pub fn is_indeterminate(&self) -> bool {
        matches!(self, HttpError::Cut { .. } | HttpError::CutInBody { .. })
    }
}

/// Why a process never became ready.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    #[error("exited ({status}) before it was ready; last probe: {last_probe}")]
    Exited { status: String, last_probe: String },
    #[error("not ready after {timeout} ({attempts} attempts); last probe: {last_probe}")]
    TimedOut {
        timeout: String,
        attempts: u64,
        last_probe: String,
    },
}

/// Why a step, check or `finally` step failed. Each variant prints exactly the text the runner
/// has always printed for that failure.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// An expectation that did not hold (status, a JSON path, rows, exit code, a file, integrity).
    #[error("{0}")]
    Expectation(Mismatch),
    /// A `metric` step's value outside one or more of its bounds.
    #[error("{series} = {value}: {}", .failed.iter().map(|b| format!("expected {b}")).collect::<Vec<_>>().join(", "))]
    MetricBound {
        series: String,
        value: f64,
        /// The bounds that failed, as `gt 1` or `lt 5 ({{backlog}})`.
        failed: Vec<String>,
    },
    /// An `expect.json` path that selects nothing.
    #[error("{path}: nothing at this path in {body}")]
    NoNodeExpected { path: String, body: String },
    /// A capture, append or check path that selects nothing.
    #[error("nothing at {path} in {body}")]
    NoNodeSelected { path: String, body: String },
    /// An `expect.json` path that does not parse.
    #[error("bad JSONPath {path}: {source}")]
    BadJsonPath {
        path: String,
        source: serde_json_path::ParseError,
    },
    /// A capture, append or check path that does not parse.
    #[error(transparent)]
    JsonPath(#[from] serde_json_path::ParseError),
    /// A `wait_until` that gave up.
    #[error("gave up after {attempts} attempts in {:.1}s; last value seen: {last_value}; {why}", .elapsed.as_secs_f64())]
    WaitGaveUp {
        attempts: u64,
        elapsed: Duration,
        last_value: String,
        /// Why the last attempt did not hold.
        why: Box<StepError>,
    },
    /// A `wait_until` whose `abort_if` held.
    #[error("aborted: abort_if held at attempt {attempts}; value {value}")]
    WaitAborted { attempts: u64, value: String },
    /// A polling `metric` step that gave up.
    #[error("gave up after {attempts} scrapes in {:.1}s; last: {last}", .elapsed.as_secs_f64())]
    ScrapesGaveUp {
        attempts: u64,
        elapsed: Duration,
        last: Box<StepError>,
    },
    /// An HTTP exchange without an answer (refused, cut off, timed out) or a request that could
    /// not be built.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A process that could not be started, signalled, reaped or cleaned up.
    #[error(transparent)]
    Process(#[from] ProcError),
    /// A started process that exited or timed out before its readiness probe passed.
    #[error("`{process}` (pid {pid}) {why}; see {process}.stderr.log")]
    NotReady {
        process: String,
        pid: u32,
        why: ReadyError,
    },
    /// A template placeholder without a value.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A data directory, power-cut mount or its control API.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// A `/metrics` answer that is not a valid exposition.
    #[error("`{request}`: {reason}")]
    Exposition { request: String, reason: String },
    /// The series a `metric` step names is missing or ambiguous: what is there instead.
    #[error("{0}")]
    Series(String),
    /// A SQLite error on a process's database.
    #[error("{}: {source}", .path.display())]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("query returned more than {0} rows")]
    TooManyRows(usize),
    /// A file operation of the runner (copying a database for a check).
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("unknown process `{0}`")]
    UnknownProcess(String),
    #[error("process `{0}` has no db")]
    NoDb(String),
    #[error("the db path has no file name")]
    DbWithoutFileName,
    #[error("process `{0}` has no power-cut data directory")]
    NoPowerCut(String),
    #[error("no adapter to scrape")]
    NoAdapter,
    #[error("bound `{template}` is `{text}`, not a number")]
    BoundNotNumber { template: String, text: String },
    #[error("empty probe")]
    EmptyProbe,
    #[error("observe must be an http probe")]
    ObserveNotHttp,
    #[error("an http probe needs a JSONPath")]
    ProbeWithoutPath,
    /// An `exactly_once` check that found items lost or duplicated.
    #[error("exactly_once {list}: {counts}")]
    ExactlyOnce {
        list: String,
        counts: Box<Classification>,
    },
    /// A `power_loss` check that does not hold; `notes` are the failed final integrity checks.
    #[error("power_loss {list}: {figure}{}", .notes.iter().map(|n| format!("; {n}")).collect::<String>())]
    PowerLoss {
        list: String,
        figure: Box<PowerLoss>,
        notes: Vec<String>,
    },
    /// A `log_clean` check that found a forbidden pattern.
    #[error("log_clean: {}:{line_no} contains {pattern:?}: {line}", .path.display())]
    LogClean {
        path: PathBuf,
        line_no: usize,
        pattern: String,
        line: String,
    },
    /// The run's API token secrets found where they must not be (logs, journals, answers).
    #[error("token leak check: a secret of the run's API tokens appears where it must not ({total} findings; scanned {summary}):{}", leak_list(.shown, *.total))]
    TokenLeak {
        total: usize,
        /// What was scanned: files, journals and answers with their sizes.
        summary: String,
        /// The first findings, each naming its place without the secret.
        shown: Vec<String>,
    },
    /// The crash loop reached `n_max` with the operation still hitting the crash.
    #[error("the operation still reached fsync N for every N up to n_max = {n_max}")]
    CrashLoopExhausted { n_max: u32 },
    /// A random kill's signal that could not be sent.
    #[error("{signal} to `{process}` (pid {pid}) failed: {source}")]
    KillFailed {
        signal: nix::sys::signal::Signal,
        process: String,
        pid: u32,
        source: nix::errno::Errno,
    },
    /// A random fault that failed when its timer fired.
    #[error("after {after_ms}ms: {source}")]
    FaultFailed {
        after_ms: u128,
        source: Box<StepError>,
    },
    #[error("the kill timer thread panicked")]
    TimerPanicked,
    /// A request left without an answer by the runner's own random fault.
    #[error("{source} ({})", match .effect {
        KillEffect::CutOff => format!("cut off by the runner's kill of `{process}`"),
        KillEffect::NotSent => format!("after the runner's kill of `{process}`: not sent"),
        KillEffect::SentAfter => format!("sent after the runner's kill of `{process}`: not taken effect"),
    })]
    DuringKill {
        source: Box<StepError>,
        process: String,
        effect: KillEffect,
    },
    #[error("capture `{name}`: {source}")]
    Capture {
        name: String,
        source: Box<StepError>,
    },
    #[error("append `{list}`: {source}")]
    Append {
        list: String,
        source: Box<StepError>,
    },
    /// The scenario's time ran out before a step.
    #[error("scenario timeout {timeout} reached before step {label} ({title}) at {location}")]
    ScenarioTimeout {
        timeout: String,
        label: String,
        title: String,
        location: String,
    },
    /// The scenario's time ran out during chaos.
    #[error(
        "scenario timeout {timeout} reached during chaos, before {label} (`{action}`); seed {seed}"
    )]
    ChaosTimeout {
        timeout: String,
        label: String,
        action: String,
        seed: u64,
    },
    #[error("chaos action `{action}`: {source}; seed {seed}")]
    ChaosAction {
        action: String,
        seed: u64,
        source: Box<StepError>,
    },
    /// The chaos liveness probe did not hold in time after the faults stopped.
    #[error(
        "chaos liveness at {location}: not live within {timeout} after the faults stopped: {source}; seed {seed} (replay with --seed {seed})"
    )]
    NotLive {
        location: String,
        timeout: String,
        seed: u64,
        source: Box<StepError>,
    },
    /// The failure of one step, named by label, title and location.
    #[error("step {label} ({title}) at {location}: {source}")]
    AtStep {
        label: String,
        title: String,
        location: String,
        source: Box<StepError>,
    },
    #[error("autostart of process `{process}`: {source}")]
    Autostart {
        process: String,
        source: Box<StepError>,
    },
    /// The failure of one `[[check]]`.
    #[error("check {number} at {location}: {source}")]
    Check {
        number: usize,
        location: String,
        source: Box<StepError>,
    },
    /// A runner bug: a step kind routed to the wrong place.
    #[error("internal: {0}")]
    Internal(String),
}

impl StepError {
    /// The expected vs. observed pair under any context the error was wrapped in, for reporters
    /// that show them apart; None when the failure is not an expectation.
    pub fn mismatch(&self) -> Option<Mismatch> {
        use StepError as E;
        match self {
            E::Expectation(m) => Some(m.clone()),
            E::MetricBound {
                series,
                value,
                failed,
            } => Some(Mismatch::new(series.clone(), failed.join(", "), value)),
            E::WaitGaveUp { why: s, .. }
            | E::ScrapesGaveUp { last: s, .. }
            | E::FaultFailed { source: s, .. }
            | E::DuringKill { source: s, .. }
            | E::Capture { source: s, .. }
            | E::Append { source: s, .. }
            | E::ChaosAction { source: s, .. }
            | E::NotLive { source: s, .. }
            | E::AtStep { source: s, .. }
            | E::Autostart { source: s, .. }
            | E::Check { source: s, .. } => s.mismatch(),
            _ => None,
        }
    }

    /// The step's own failure inside `AtStep`: already labelled, so not labelled again.
    pub fn is_labelled(&self) -> bool {
        matches!(self, StepError::AtStep { .. })
    }

    /// SQLite refused to write a read-only database (a hot journal needs rolling back first).
    pub fn is_readonly_db(&self) -> bool {
        match self {
            StepError::Db { source, .. } => {
                source.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)
                    || source.to_string().contains("readonly")
            }
            _ => false,
        }
    }
}

impl From<Mismatch> for StepError {
    fn from(m: Mismatch) -> Self {
        StepError::Expectation(m)
    }
}

/// The findings shown, one per indented line, and how many more there are.
fn leak_list(shown: &[String], total: usize) -> String {
    let mut out: String = shown.iter().map(|f| format!("\n  {f}")).collect();
    if total > shown.len() {
        out.push_str(&format!("\n  ... and {} more", total - shown.len()));
    }
    out
}

/// An error equals the text it prints: that text is its interface (see the invariant above).
impl PartialEq<&str> for StepError {
    fn eq(&self, text: &&str) -> bool {
        let shown = self.to_string();
        shown == *text
    }
}

/// Several failures (of the `[[check]]`s, of the `finally` steps), one per line.
pub fn lines(errors: &[StepError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn boxed(e: StepError) -> Box<StepError> {
        Box::new(e)
    }

    fn status() -> StepError {
        Mismatch::new("status", 200, 404)
            .note(r#" (body {"error":"no"})"#)
            .into()
    }

    fn s(text: &str) -> String {
        text.to_owned()
    }

    #[rstest]
    #[case::expectation(
        status(),
        r#"status: expected 200, observed 404 (body {"error":"no"})"#
    )]
    #[case::expectation_bare(Mismatch::new("", 1, 0).into(), "expected 1, observed 0")]
    #[case::expectation_within(
        Mismatch::new("at .b", 1, 2).within("$.a").into(),
        "$.a: at .b: expected 1, observed 2"
    )]
    #[case::metric_bound(
        StepError::MetricBound { series: s(r#"x{who="pos"}"#), value: 1.0, failed: vec![s("gt 1"), s("lt 0")] },
        r#"x{who="pos"} = 1: expected gt 1, expected lt 0"#
    )]
    #[case::no_node_expected(
        StepError::NoNodeExpected { path: s("$.n"), body: s("{}") },
        "$.n: nothing at this path in {}"
    )]
    #[case::no_node_selected(
        StepError::NoNodeSelected { path: s("$.n"), body: s("{}") },
        "nothing at $.n in {}"
    )]
    #[case::wait_gave_up(
        StepError::WaitGaveUp {
            attempts: 7,
            elapsed: Duration::from_millis(1500),
            last_value: s(r#"{"body":{"n":1},"status":200}"#),
            why: boxed(Mismatch::new("$.n", 5, 1).into()),
        },
        r#"gave up after 7 attempts in 1.5s; last value seen: {"body":{"n":1},"status":200}; $.n: expected 5, observed 1"#
    )]
    #[case::wait_aborted(
        StepError::WaitAborted { attempts: 2, value: s("[[1]]") },
        "aborted: abort_if held at attempt 2; value [[1]]"
    )]
    #[case::scrapes_gave_up(
        StepError::ScrapesGaveUp { attempts: 3, elapsed: Duration::from_millis(300), last: boxed(StepError::NoAdapter) },
        "gave up after 3 scrapes in 0.3s; last: no adapter to scrape"
    )]
    #[case::http(HttpError::NoPort(s("ofd")).into(), "no port `ofd`")]
    #[case::process(ProcError::NotRunning(s("adapter")).into(), "process `adapter` is not running")]
    #[case::not_ready(
        StepError::NotReady {
            process: s("adapter"),
            pid: 42,
            why: ReadyError::TimedOut { timeout: s("10s"), attempts: 9, last_probe: s("127.0.0.1:1: refused") },
        },
        "`adapter` (pid 42) not ready after 10s (9 attempts); last probe: 127.0.0.1:1: refused; see adapter.stderr.log"
    )]
    #[case::not_ready_exited(
        StepError::NotReady {
            process: s("ofd"),
            pid: 7,
            why: ReadyError::Exited { status: s("exit status: 2"), last_probe: s("x does not exist") },
        },
        "`ofd` (pid 7) exited (exit status: 2) before it was ready; last probe: x does not exist; see ofd.stderr.log"
    )]
    #[case::template(TemplateError::NoValue(s("doc")).into(), "`{{doc}}` has no value yet (no capture ran)")]
    #[case::disk(
        DiskError::NotShutDown { path: PathBuf::from("d/data/a"), pid: 9, how: "after SIGTERM" }.into(),
        "powercut-fs (pid 9) for d/data/a did not shut down on request; unmounted after SIGTERM"
    )]
    #[case::exposition(
        StepError::Exposition { request: s("GET adapter /metrics"), reason: s("line 2: no value: `x`") },
        "`GET adapter /metrics`: line 2: no value: `x`"
    )]
    #[case::series(StepError::Series(s("no series named `x`")), "no series named `x`")]
    #[case::db(
        StepError::Db { path: PathBuf::from("a.db"), source: rusqlite::Error::QueryReturnedNoRows },
        "a.db: Query returned no rows"
    )]
    #[case::too_many_rows(
        StepError::TooManyRows(100_000),
        "query returned more than 100000 rows"
    )]
    #[case::io(
        StepError::Io { context: s("copying a.db"), source: std::io::Error::other("disk full") },
        "copying a.db: disk full"
    )]
    #[case::unknown_process(StepError::UnknownProcess(s("x")), "unknown process `x`")]
    #[case::no_db(StepError::NoDb(s("x")), "process `x` has no db")]
    #[case::db_without_file_name(StepError::DbWithoutFileName, "the db path has no file name")]
    #[case::no_power_cut(
        StepError::NoPowerCut(s("x")),
        "process `x` has no power-cut data directory"
    )]
    #[case::no_adapter(StepError::NoAdapter, "no adapter to scrape")]
    #[case::bound_not_number(
        StepError::BoundNotNumber { template: s("{{n}}"), text: s("abc") },
        "bound `{{n}}` is `abc`, not a number"
    )]
    #[case::empty_probe(StepError::EmptyProbe, "empty probe")]
    #[case::observe_not_http(StepError::ObserveNotHttp, "observe must be an http probe")]
    #[case::probe_without_path(StepError::ProbeWithoutPath, "an http probe needs a JSONPath")]
    #[case::exactly_once(
        StepError::ExactlyOnce { list: s("sales"), counts: Box::default() },
        "exactly_once sales: acknowledged=0 once=0 lost=0 duplicated=0 unexpected=0 indeterminate=0"
    )]
    #[case::power_loss(
        StepError::PowerLoss { list: s("sales"), figure: Box::default(), notes: vec![s("adapter: integrity broken")] },
        "power_loss sales: cycles=0, acked=0, acked_missing=0, integrity_ok=0/0, double_fiscalized=0; adapter: integrity broken"
    )]
    #[case::log_clean(
        StepError::LogClean { path: PathBuf::from("a.stderr.log"), line_no: 3, pattern: s("panic"), line: s("thread panicked") },
        r#"log_clean: a.stderr.log:3 contains "panic": thread panicked"#
    )]
    #[case::token_leak(
        StepError::TokenLeak { total: 3, summary: s("2 files (10 bytes)"), shown: vec![s("a.log:1 (byte 0) contains the secret of `pos`")] },
        "token leak check: a secret of the run's API tokens appears where it must not (3 findings; scanned 2 files (10 bytes)):\n  a.log:1 (byte 0) contains the secret of `pos`\n  ... and 2 more"
    )]
    #[case::crash_loop_exhausted(
        StepError::CrashLoopExhausted { n_max: 40 },
        "the operation still reached fsync N for every N up to n_max = 40"
    )]
    #[case::kill_failed(
        StepError::KillFailed {
            signal: nix::sys::signal::Signal::SIGKILL,
            process: s("adapter"),
            pid: 42,
            source: nix::errno::Errno::ESRCH,
        },
        "SIGKILL to `adapter` (pid 42) failed: ESRCH: No such process"
    )]
    #[case::fault_failed(
        StepError::FaultFailed { after_ms: 12, source: boxed(ProcError::NotRunning(s("a")).into()) },
        "after 12ms: process `a` is not running"
    )]
    #[case::timer_panicked(StepError::TimerPanicked, "the kill timer thread panicked")]
    #[case::during_kill_cut_off(
        StepError::DuringKill { source: boxed(HttpError::NoPort(s("p")).into()), process: s("a"), effect: KillEffect::CutOff },
        "no port `p` (cut off by the runner's kill of `a`)"
    )]
    #[case::during_kill_not_sent(
        StepError::DuringKill { source: boxed(HttpError::NoPort(s("p")).into()), process: s("a"), effect: KillEffect::NotSent },
        "no port `p` (after the runner's kill of `a`: not sent)"
    )]
    #[case::during_kill_sent_after(
        StepError::DuringKill { source: boxed(HttpError::NoPort(s("p")).into()), process: s("a"), effect: KillEffect::SentAfter },
        "no port `p` (sent after the runner's kill of `a`: not taken effect)"
    )]
    #[case::capture(
        StepError::Capture { name: s("doc"), source: boxed(StepError::NoNodeSelected { path: s("$.id"), body: s("{}") }) },
        "capture `doc`: nothing at $.id in {}"
    )]
    #[case::append(
        StepError::Append { list: s("sales"), source: boxed(StepError::NoNodeSelected { path: s("$.id"), body: s("{}") }) },
        "append `sales`: nothing at $.id in {}"
    )]
    #[case::scenario_timeout(
        StepError::ScenarioTimeout { timeout: s("2m"), label: s("3"), title: s("sleep 1s"), location: s("a.toml:9") },
        "scenario timeout 2m reached before step 3 (sleep 1s) at a.toml:9"
    )]
    #[case::chaos_timeout(
        StepError::ChaosTimeout { timeout: s("2m"), label: s("chaos 4"), action: s("kill"), seed: 7 },
        "scenario timeout 2m reached during chaos, before chaos 4 (`kill`); seed 7"
    )]
    #[case::chaos_action(
        StepError::ChaosAction { action: s("kill"), seed: 7, source: boxed(StepError::NoAdapter) },
        "chaos action `kill`: no adapter to scrape; seed 7"
    )]
    #[case::not_live(
        StepError::NotLive { location: s("c.toml:30"), timeout: s("60s"), seed: 42, source: boxed(StepError::NoAdapter) },
        "chaos liveness at c.toml:30: not live within 60s after the faults stopped: no adapter to scrape; seed 42 (replay with --seed 42)"
    )]
    #[case::at_step(
        StepError::AtStep { label: s("2"), title: s("exec `false`"), location: s("case.toml:28"), source: boxed(Mismatch::new("exit code", 0, "exit status: 1").note(" (see exec.stderr.log)").into()) },
        "step 2 (exec `false`) at case.toml:28: exit code: expected 0, observed exit status: 1 (see exec.stderr.log)"
    )]
    #[case::autostart(
        StepError::Autostart { process: s("adapter"), source: boxed(StepError::UnknownProcess(s("adapter"))) },
        "autostart of process `adapter`: unknown process `adapter`"
    )]
    #[case::check(
        StepError::Check { number: 1, location: s("a.toml:40"), source: boxed(Mismatch::new("$.duplicates", 0, 1).into()) },
        "check 1 at a.toml:40: $.duplicates: expected 0, observed 1"
    )]
    #[case::internal(
        StepError::Internal(s("repeat handled by run_one")),
        "internal: repeat handled by run_one"
    )]
    fn each_failure_prints_the_runners_text(#[case] e: StepError, #[case] text: &str) {
        assert_eq!(e.to_string(), text);
    }

    #[test]
    fn json_paths_that_do_not_parse_print_the_parsers_reason() {
        let source = || serde_json_path::JsonPath::parse("$[").unwrap_err();
        let reason = source().to_string();
        assert_eq!(StepError::from(source()).to_string(), reason);
        let bad = StepError::BadJsonPath {
            path: s("$["),
            source: source(),
        };
        assert_eq!(bad.to_string(), format!("bad JSONPath $[: {reason}"));
    }

    #[test]
    fn the_expected_and_observed_pair_is_found_under_every_context() {
        let wrapped = StepError::AtStep {
            label: s("4[2].1"),
            title: s("http"),
            location: s("a.toml:3"),
            source: boxed(status()),
        };
        let m = wrapped.mismatch().unwrap();
        assert_eq!(
            (m.what.as_str(), m.expected.as_str(), m.observed.as_str()),
            ("status", "200", "404")
        );
        let bound = StepError::MetricBound {
            series: s("x"),
            value: 3.0,
            failed: vec![s("lt 2")],
        };
        assert_eq!(bound.mismatch(), Some(Mismatch::new("x", "lt 2", 3)));
        assert_eq!(StepError::NoAdapter.mismatch(), None);
    }
}

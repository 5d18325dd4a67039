//! Runs one scenario: processes, steps, checks, `finally`, the history, artifacts and cleanup.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use reqwest::blocking::Client;

use crate::check::Tick;
use crate::disks::Disks;
use crate::expect;
use crate::history::{History, Item, Outcome};
use crate::load::Scenario;
use crate::model::{ExpectOutcome, HttpStep, SignalName, Step};
use crate::probe;
use crate::procs::{self, Procs, Spec};
use crate::step_error::{self, KillEffect, Mismatch, ReadyError, StepError};
use crate::template::{TemplateError, Vars};
use crate::timeline::Timeline;
use crate::tokens::{Auth, TOKENS_FILE_ENV};
use crate::util::At;
use http::http_exchange;

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run directory, `target/uat/<run-id>`; each scenario gets a folder inside.
    pub run_dir: PathBuf,
    /// Where `{{bin.NAME}}` binaries live (the cargo profile directory).
    pub bin_dir: PathBuf,
    /// Keep the scenario folder even on success.
    pub keep: bool,
    /// `--seed`: seed of every random choice (random kills, chaos). Without it a scenario uses
    /// its `[chaos] seed` or a fresh one; the seed in use is reported so a failed run can be replayed.
    pub seed: Option<u64>,
    /// Sample the adapters, mocks and emulators while each scenario runs (`--report-html`). Off
    /// otherwise: the samples are requests of their own, which a scenario counting requests sees.
    pub sample: bool,
}

/// The verdict of one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// A step, check or `finally` step failed: the message names the step and expected vs observed.
    Failed(String),
    /// The runner itself could not do its job (directory, ports, cleanup).
    Infra(String),
    /// A negative control (`expect = "fail"`) whose steps passed and whose checks failed, as
    /// intended: counts as a success. The message is the checks' failure.
    ExpectedFailure(String),
}

impl Verdict {
    /// Passed, or failed as a negative control should.
    pub fn is_success(&self) -> bool {
        matches!(self, Verdict::Passed | Verdict::ExpectedFailure(_))
    }
}

/// The outcome of one scenario.
#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    pub path: PathBuf,
    pub verdict: Verdict,
    pub elapsed: Duration,
    /// The scenario folder, when kept.
    pub kept_dir: Option<PathBuf>,
    /// Figure lines, e.g. the exactly_once counts.
    pub figures: Vec<String>,
    /// PIDs of every process group started (for tests that check nothing is left behind).
    pub pids: Vec<i32>,
    /// The seed in use, when the scenario draws random numbers (a random kill or chaos).
    pub seed: Option<u64>,
    /// The history, the samples and the receipt ticks, for the HTML report.
    pub timeline: Timeline,
    /// What the failing step checked, expected and observed, when the failure is a mismatch.
    pub mismatch: Option<Mismatch>,
}

/// Extra time `finally` steps get after the scenario timeout.
const FINALLY_GRACE: Duration = Duration::from_secs(30);

/// A step failure: its outcome (fail or indeterminate), why, and the items it touched.
struct Failure {
    outcome: Outcome,
    /// Boxed: a step result travels through every call of the step path.
    error: Box<StepError>,
    items: Vec<Item>,
    /// The port name of a request that got no answer (refused or cut off).
    unanswered: Option<String>,
    /// Caused by the runner's own random kill: recorded, but the scenario goes on.
    tolerated: bool,
}

fn fail(error: impl Into<StepError>) -> Failure {
    Failure {
        outcome: Outcome::Fail,
        error: Box::new(error.into()),
        items: Vec::new(),
        unanswered: None,
        tolerated: false,
    }
}

type StepResult = Result<(String, Vec<Item>), Failure>;

struct Runner<'a> {
    sc: &'a Scenario,
    dir: PathBuf,
    vars: Vars,
    procs: Procs,
    hist: Arc<History>,
    client: Client,
    deadline: Instant,
    figures: Vec<String>,
    /// The seed in use and the generator drawn from it, in a fixed order (random kills, then chaos).
    seed: u64,
    rng: ChaCha8Rng,
    /// Random kills armed around the step now running.
    windows: Vec<kill::Window>,
    /// Data directories and power-cut mounts; unmounted when dropped.
    disks: Disks,
    /// The verdict came from the checks (the steps all passed), for negative controls.
    checks_failed: bool,
    /// The items of the `exactly_once` checks run so far, with their fates.
    ticks: Vec<Tick>,
    /// The expected/observed pair of the failure that decided the verdict, if it has one.
    mismatch: Option<Mismatch>,
}

/// Runs one scenario to completion; never panics on bad scenario content.
pub fn run_scenario(sc: &Scenario, opts: &RunOptions) -> Report {
    let started = Instant::now();
    let dir = opts.run_dir.join(sanitize(sc.name()));
    let mut report = Report {
        name: sc.name().to_owned(),
        path: sc.path.clone(),
        verdict: Verdict::Passed,
        elapsed: Duration::ZERO,
        kept_dir: None,
        figures: Vec::new(),
        pids: Vec::new(),
        seed: None,
        timeline: Timeline::default(),
        mismatch: None,
    };
    let seed = opts
        .seed
        .or_else(|| sc.file.chaos.as_ref().and_then(|c| c.seed))
        .unwrap_or_else(rand::random);
    if sc.seeded {
        report.seed = Some(seed);
    }
    let mut runner = match Runner::new(sc, opts, &dir, seed) {
        Ok(r) => r,
        Err(v) => {
            report.verdict = v;
            report.kept_dir = Some(dir);
            return report;
        }
    };
    let sampler = opts
        .sample
        .then(|| {
            sample::Sampler::start(
                sample::targets(sc),
                runner.client.clone(),
                runner.vars.clone(),
                Arc::clone(&runner.hist),
            )
        })
        .flatten();
    let mut verdict = runner.run_body();
    if let Err(errors) = runner.run_finally()
        && verdict == Verdict::Passed
    {
        runner.mismatch = errors.iter().find_map(StepError::mismatch);
        verdict = Verdict::Failed(step_error::lines(&errors));
    }
    if let Some(s) = sampler {
        let (samples, truncated) = s.finish();
        report.timeline.samples = samples;
        report.timeline.samples_truncated = truncated;
    }
    if sc.file.scenario.expect == ExpectOutcome::Fail {
        verdict = negative_control(verdict, runner.checks_failed);
    }
    if let Err(e) = runner.procs.cleanup() {
        verdict = Verdict::Infra(e.to_string());
    }
    // After the processes are gone, so nothing keeps a mount busy.
    if let Err(e) = runner.disks.unmount_all() {
        verdict = Verdict::Infra(e.to_string());
    }
    // Every scenario, after every process and mount is gone, before the folder may be removed.
    if let Err(e) = runner.leak_check() {
        verdict = leak::with_leak(verdict, e.to_string());
    }
    if !verdict.is_success() {
        runner.copy_databases();
    }
    report.pids = runner.procs.started_groups().to_vec();
    report.figures = std::mem::take(&mut runner.figures);
    report.timeline.events = runner.hist.events();
    report.timeline.ticks = std::mem::take(&mut runner.ticks);
    if !verdict.is_success() || matches!(verdict, Verdict::ExpectedFailure(_)) {
        report.mismatch = runner.mismatch.take();
    }
    drop(runner);
    if verdict.is_success() && !opts.keep {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("uat: cannot remove {}: {e}", dir.display());
        }
    } else {
        report.kept_dir = Some(dir);
    }
    report.verdict = verdict;
    report.elapsed = started.elapsed();
    report
}

/// The verdict of a negative control: its checks must fail, after every step passed.
fn negative_control(v: Verdict, checks_failed: bool) -> Verdict {
    match v {
        Verdict::Failed(m) if checks_failed => Verdict::ExpectedFailure(m),
        Verdict::Failed(m) => Verdict::Failed(format!(
            "negative control (expect = \"fail\"): its checks must fail, but a step failed first: {m}"
        )),
        Verdict::Passed => Verdict::Failed(
            "negative control (expect = \"fail\"): every check passed, so the fault it injects did not bite".into(),
        ),
        other => other,
    }
}

/// A scenario name as a directory name.
pub fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Picks a free loopback port for every name; listeners are held until all are picked so no
/// two names share a port.
fn pick_ports(names: impl Iterator<Item = String>) -> std::io::Result<Vec<(String, u16)>> {
    let mut held = Vec::new();
    let mut out = Vec::new();
    for n in names {
        let l = TcpListener::bind("127.0.0.1:0")?;
        out.push((n, l.local_addr()?.port()));
        held.push(l);
    }
    Ok(out)
}

impl<'a> Runner<'a> {
    fn new(
        sc: &'a Scenario,
        opts: &RunOptions,
        dir: &Path,
        seed: u64,
    ) -> Result<Runner<'a>, Verdict> {
        let infra = |m: String| Verdict::Infra(m);
        std::fs::create_dir_all(dir).map_err(|e| infra(format!("{}: {e}", dir.display())))?;
        let dir =
            std::fs::canonicalize(dir).map_err(|e| infra(format!("{}: {e}", dir.display())))?;
        let mut vars = Vars {
            dir: dir.clone(),
            ..Vars::default()
        };
        let ports = pick_ports(sc.ports.iter().cloned())
            .map_err(|e| infra(format!("picking ports: {e}")))?;
        vars.ports.extend(ports);
        for b in &sc.bins {
            let p = opts.bin_dir.join(b);
            if !p.is_file() {
                return Err(Verdict::Failed(format!(
                    "binary `{b}` is not built at {} (run `cargo build --bins` or pass --bin-dir)",
                    p.display()
                )));
            }
            vars.bins.insert(b.clone(), p);
        }
        let hist = History::create(&dir.join("history.jsonl"))
            .map_err(|e| infra(format!("history.jsonl: {e}")))?;
        let client = probe::client().map_err(|e| infra(format!("http client: {e}")))?;
        let auth = Auth::create(&dir, sc.adapters.values().cloned().collect()).map_err(infra)?;
        vars.auth = Some(Arc::new(auth));
        let disks = mount_disks(sc, &dir, &mut vars)?;
        Ok(Runner {
            sc,
            procs: Procs::new(&dir),
            dir,
            vars,
            hist: Arc::new(hist),
            client,
            deadline: Instant::now() + sc.file.scenario.timeout.0,
            figures: Vec::new(),
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            windows: Vec::new(),
            disks,
            checks_failed: false,
            ticks: Vec::new(),
            mismatch: None,
        })
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Autostart, steps, then checks. Stops at the first failing step.
    fn run_body(&mut self) -> Verdict {
        let sc = self.sc;
        for (name, p) in sc.file.process.iter() {
            if !p.autostart {
                continue;
            }
            let label = format!("setup:{name}");
            self.hist.invoke(&label, "start", name);
            match self.start(name) {
                Ok(d) => self
                    .hist
                    .complete(&label, "start", &d, Outcome::Ok, Vec::new()),
                Err(f) => {
                    let e = *f.error;
                    self.hist
                        .complete(&label, "start", &e.to_string(), f.outcome, Vec::new());
                    return self.failed(StepError::Autostart {
                        process: name.to_owned(),
                        source: Box::new(e),
                    });
                }
            }
        }
        if let Err(e) = self.run_steps(&sc.file.step, "") {
            return self.failed(e);
        }
        if let Some(c) = &sc.file.chaos
            && let Err(e) = self.run_chaos(c)
        {
            return self.failed(e);
        }
        let mut errors = Vec::new();
        for (n, c) in sc.file.check.iter().enumerate() {
            if let Err(e) = self.run_check(c) {
                errors.push(StepError::Check {
                    number: n + 1,
                    location: sc.location(c.span.start),
                    source: Box::new(e),
                });
            }
        }
        if errors.is_empty() {
            Verdict::Passed
        } else {
            self.checks_failed = true;
            self.mismatch = errors.iter().find_map(StepError::mismatch);
            Verdict::Failed(step_error::lines(&errors))
        }
    }

    /// The verdict of a failed step, its expected/observed pair kept for the reports.
    fn failed(&mut self, e: StepError) -> Verdict {
        self.mismatch = e.mismatch();
        Verdict::Failed(e.to_string())
    }

    /// Runs every `finally` step, whatever fails; Err holds each failure.
    fn run_finally(&mut self) -> Result<(), Vec<StepError>> {
        self.deadline = Instant::now().max(self.deadline) + FINALLY_GRACE;
        let mut errors = Vec::new();
        for (n, s) in self.sc.file.finally.iter().enumerate() {
            let label = format!("finally {}", n + 1);
            if let Err(e) = self.run_one(&label, s) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Runs steps in order; `prefix` builds nested labels such as `4[2].1`. A random kill is
    /// armed and then fires while the step after it runs.
    fn run_steps(&mut self, steps: &[At<Step>], prefix: &str) -> Result<(), StepError> {
        let mut armed: Option<kill::Armed> = None;
        for (n, s) in steps.iter().enumerate() {
            let label = format!("{prefix}{}", n + 1);
            let res = if Instant::now() >= self.deadline {
                Err(StepError::ScenarioTimeout {
                    timeout: self.sc.file.scenario.timeout.to_string(),
                    label: label.clone(),
                    title: s.value.title(),
                    location: self.sc.location(s.span.start),
                })
            } else if is_random(&s.value)
                && let Some(next) = steps.get(n + 1)
            {
                match self.arm_kill(&label, s, &next.value) {
                    Ok(a) => {
                        armed = Some(a);
                        continue;
                    }
                    Err(e) => Err(e),
                }
            } else {
                self.run_one(&label, s)
            };
            // The kill fires by the end of the step it was armed for, whatever that step did.
            let fired = armed.take().map_or(Ok(()), |a| self.disarm_kill(a));
            res?;
            fired?;
        }
        Ok(())
    }

    /// Runs one step with its invoke/complete events; the error names step, title and location.
    fn run_one(&mut self, label: &str, s: &At<Step>) -> Result<(), StepError> {
        let title = s.value.title();
        let kind = s.value.kind();
        self.hist.invoke(label, kind, &title);
        let r = match &s.value {
            Step::Repeat(r) => {
                let saved = self.vars.i;
                let saved_var = r
                    .var
                    .as_ref()
                    .and_then(|v| self.vars.captures.get(v).cloned());
                let mut res = Ok((format!("{} iterations", r.repeat), Vec::new()));
                for i in 1..=r.repeat {
                    if let Some(p) = &r.while_running
                        && !self
                            .procs
                            .pid(p)
                            .is_some_and(|pid| procs::alive(pid as i32))
                    {
                        res = Ok((
                            format!(
                                "ended before iteration {i} of {}: `{p}` is not running",
                                r.repeat
                            ),
                            Vec::new(),
                        ));
                        break;
                    }
                    self.vars.i = Some(i);
                    if let Some(v) = &r.var {
                        self.vars
                            .captures
                            .insert(v.clone(), serde_json::Value::from(i));
                    }
                    if let Err(e) = self.run_steps(&r.steps, &format!("{label}[{i}].")) {
                        res = Err(fail(e));
                        break;
                    }
                }
                self.vars.i = saved;
                if let (Some(v), Some(old)) = (&r.var, saved_var) {
                    self.vars.captures.insert(v.clone(), old);
                }
                // A nested failure already carries its own step label and location.
                if let Err(f) = res {
                    self.hist.complete(
                        label,
                        kind,
                        &f.error.to_string(),
                        Outcome::Fail,
                        Vec::new(),
                    );
                    return Err(*f.error);
                }
                res
            }
            Step::CrashAtFsync(c) if !c.steps.is_empty() => match self.crash_loop(label, c) {
                Ok(d) => Ok((d, Vec::new())),
                Err(e) => {
                    self.hist
                        .complete(label, kind, &e.to_string(), Outcome::Fail, Vec::new());
                    // A nested step's failure already names its step; the loop's own does not.
                    return Err(if e.is_labelled() {
                        e
                    } else {
                        StepError::AtStep {
                            label: label.to_owned(),
                            title,
                            location: self.sc.location(s.span.start),
                            source: Box::new(e),
                        }
                    });
                }
            },
            other => self.exec(other),
        };
        match r {
            Ok((detail, items)) => {
                self.hist.complete(label, kind, &detail, Outcome::Ok, items);
                Ok(())
            }
            Err(f) if f.tolerated => {
                self.hist
                    .complete(label, kind, &f.error.to_string(), f.outcome, f.items);
                Ok(())
            }
            Err(f) => {
                self.hist
                    .complete(label, kind, &f.error.to_string(), f.outcome, f.items);
                Err(StepError::AtStep {
                    label: label.to_owned(),
                    title,
                    location: self.sc.location(s.span.start),
                    source: f.error,
                })
            }
        }
    }

    fn exec(&mut self, step: &Step) -> StepResult {
        match step {
            Step::Start(s) => self.start(&s.start).map(|d| (d, Vec::new())),
            Step::Stop(s) => {
                let (st, killed) = self
                    .procs
                    .stop(&s.stop, s.grace.0.min(self.remaining()))
                    .map_err(fail)?;
                let how = if killed {
                    format!(" (SIGKILL after {})", s.grace)
                } else {
                    String::new()
                };
                Ok((format!("exited: {st}{how}"), Vec::new()))
            }
            Step::Kill(k) => self.kill(&k.kill, k.signal),
            Step::Pause(p) => self
                .procs
                .pause(&p.pause)
                .map(|note| (format!("SIGSTOP ({note})"), Vec::new()))
                .map_err(fail),
            Step::Resume(p) => self
                .procs
                .signal(&p.resume, Signal::SIGCONT)
                .map(|_| ("SIGCONT".into(), Vec::new()))
                .map_err(fail),
            Step::Http(h) => self.http(h),
            Step::WaitUntil(w) => self.wait_until(w).map(|d| (d, Vec::new())).map_err(fail),
            Step::Sql(q) => {
                let rows = self.sql(&q.db, &q.sql, q.writable).map_err(fail)?;
                if let Some(rows_exp) = q.expect.as_ref().and_then(|e| e.rows.as_ref()) {
                    expect::check_rows(rows_exp, &rows).map_err(fail)?;
                }
                Ok((expect::rows_text(&rows), Vec::new()))
            }
            Step::File(f) => self.file(f).map(|d| (d, Vec::new())).map_err(fail),
            Step::Sleep(s) => {
                std::thread::sleep(s.sleep.0.min(self.remaining()));
                Ok((format!("slept {}", s.sleep), Vec::new()))
            }
            Step::Exec(e) => {
                let spec = Spec {
                    command: self.vars.render(&e.exec).map_err(fail)?,
                    args: e
                        .args
                        .iter()
                        .map(|a| self.vars.render(a))
                        .collect::<Result<_, _>>()
                        .map_err(fail)?,
                    env: Vec::new(),
                    cwd: self.dir.clone(),
                };
                let st = self
                    .procs
                    .run_once(&spec, e.timeout.0.min(self.remaining()))
                    .map_err(fail)?;
                match st.code() {
                    Some(c) if c == e.exit => Ok((format!("exit {c}"), Vec::new())),
                    _ => Err(fail(
                        Mismatch::new("exit code", e.exit, st).note(" (see exec.stderr.log)"),
                    )),
                }
            }
            Step::Metric(m) => self.metric(m).map(|d| (d, Vec::new())).map_err(fail),
            Step::Repeat(_) => Err(fail(StepError::Internal(
                "repeat handled by run_one".into(),
            ))),
            other => self.power_exec(other),
        }
    }

    fn spec(&self, name: &str) -> Result<Spec, StepError> {
        let p = self
            .sc
            .file
            .process
            .get(name)
            .ok_or_else(|| StepError::UnknownProcess(name.to_owned()))?;
        let v = &self.vars;
        let mut env: Vec<(String, String)> = p
            .env
            .iter()
            .map(|(k, x)| Ok((k.clone(), v.render(x)?)))
            .collect::<Result<_, TemplateError>>()?;
        // The path of the tokens file, never a secret, goes into the adapter's environment.
        if self.sc.adapters.contains_key(name)
            && let Some(auth) = &v.auth
        {
            env.push((
                TOKENS_FILE_ENV.to_owned(),
                auth.tokens_file().display().to_string(),
            ));
        }
        Ok(Spec {
            command: v.render(&p.command)?,
            args: p
                .args
                .iter()
                .map(|a| v.render(a))
                .collect::<Result<_, _>>()?,
            env,
            cwd: match &p.cwd {
                Some(c) => PathBuf::from(v.render(c)?),
                None => self.dir.clone(),
            },
        })
    }

    fn start(&mut self, name: &str) -> Result<String, Failure> {
        let spec = self.spec(name).map_err(fail)?;
        let pid = self.procs.start(name, &spec).map_err(fail)?;
        if let Some(r) = self
            .sc
            .file
            .process
            .get(name)
            .and_then(|p| p.ready.as_ref())
        {
            let procs = &mut self.procs;
            probe::await_ready(&self.client, r, &self.vars, self.deadline, || {
                procs.exited(name).map(|s| s.to_string())
            })
            .map_err(|why: ReadyError| {
                fail(StepError::NotReady {
                    process: name.to_owned(),
                    pid,
                    why,
                })
            })?;
        }
        Ok(format!("pid {pid}"))
    }

    fn kill(&mut self, name: &str, sig: SignalName) -> StepResult {
        let signal = signal_of(sig);
        if signal == Signal::SIGKILL {
            let st = self.procs.kill(name).map_err(fail)?;
            return Ok((format!("SIGKILL; exited: {st}"), Vec::new()));
        }
        self.procs.signal(name, signal).map_err(fail)?;
        Ok((format!("{signal} sent"), Vec::new()))
    }

    fn http(&mut self, h: &HttpStep) -> StepResult {
        let cap = self.remaining();
        let begun = Instant::now();
        http_exchange(&self.client, &mut self.vars, h, cap).map_err(|mut f| {
            if let Some(port) = &f.unanswered
                && let Some(w) = self.windows.iter().find(|w| w.covers(port))
            {
                f.tolerated = true;
                let effect = if f.outcome != Outcome::Indeterminate {
                    KillEffect::NotSent
                } else if w.dealt_before(begun) {
                    // Connected to a listening socket the killed process had not yet closed.
                    f.outcome = Outcome::Fail;
                    f.items.clear();
                    KillEffect::SentAfter
                } else {
                    KillEffect::CutOff
                };
                f.error = Box::new(StepError::DuringKill {
                    source: f.error,
                    process: w.process.clone(),
                    effect,
                });
            }
            f
        })
    }
}

/// A random kill or a random power cut.
fn is_random(s: &Step) -> bool {
    match s {
        Step::Kill(k) => k.is_random(),
        Step::PowerCut(c) => c.is_random(),
        _ => false,
    }
}

/// Creates every process's data directory, mounting the power-cut ones, and sets `{{data.NAME}}`.
fn mount_disks(sc: &Scenario, dir: &Path, vars: &mut Vars) -> Result<Disks, Verdict> {
    let mut disks = Disks::default();
    for (name, p) in sc.file.process.iter() {
        let Some(d) = &p.data_dir else { continue };
        let path = if d.powercut {
            let bin = vars
                .bins
                .get(crate::load::POWERCUT_BIN)
                .cloned()
                .ok_or_else(|| Verdict::Infra("internal: powercut-fs was not looked up".into()))?;
            disks.mount(&bin, dir, name)
        } else {
            disks.plain(dir, name)
        }
        .map_err(|e| Verdict::Infra(e.to_string()))?;
        vars.data.insert(name.to_owned(), path);
    }
    Ok(disks)
}

/// The signal a `kill` step names.
fn signal_of(sig: SignalName) -> Signal {
    match sig {
        SignalName::KILL => Signal::SIGKILL,
        SignalName::TERM => Signal::SIGTERM,
        SignalName::INT => Signal::SIGINT,
        SignalName::HUP => Signal::SIGHUP,
        SignalName::QUIT => Signal::SIGQUIT,
        SignalName::USR1 => Signal::SIGUSR1,
        SignalName::USR2 => Signal::SIGUSR2,
    }
}

mod chaos;
mod http;
mod kill;
mod leak;
mod metric;
mod observe;
mod power;
pub mod sample;
pub mod up;

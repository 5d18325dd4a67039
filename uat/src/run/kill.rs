//! Random kills and power cuts: `kill = "NAME"` or `power_cut = "NAME"` with `at = "random"` fires
//! at a seeded random moment while the next step runs; requests it cuts off are indeterminate,
//! not failures.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rand::Rng;

use super::{Runner, signal_of};
use crate::disks;
use crate::history::Outcome;
use crate::model::Step;
use crate::procs::ProcError;
use crate::step_error::StepError;
use crate::template;
use crate::util::At;

/// How long a SIGKILLed group leader may take to exit.
const REAP_LIMIT: Duration = Duration::from_secs(10);

/// While a random kill is armed: which requests it may cut off, and whether it has fired.
pub(super) struct Window {
    pub(super) process: String,
    /// Port names in the process's command, args, env and readiness probe.
    ports: BTreeSet<String>,
    fired: Arc<AtomicBool>,
    /// When the fault had been dealt (the SIGKILL sent, the disk cut): a request begun after it
    /// cannot have taken effect, since the process can no longer run a line of its own code.
    dealt: Arc<OnceLock<Instant>>,
}

impl Window {
    /// A request to `port` that got no answer was cut off by this kill.
    pub(super) fn covers(&self, port: &str) -> bool {
        self.fired.load(Ordering::SeqCst) && self.ports.contains(port)
    }

    /// The process was already killed when a request began at `begun`: the connection that
    /// broke was one the dying process never served (a listening socket not yet closed), so
    /// the request certainly did not take effect.
    pub(super) fn dealt_before(&self, begun: Instant) -> bool {
        self.dealt.get().is_some_and(|d| *d <= begun)
    }
}

/// An armed kill: the timer thread and how to tell it that the step ended.
pub(super) struct Armed {
    label: String,
    title: String,
    location: String,
    process: String,
    /// The process gets SIGKILL, so it is reaped after the step.
    reap: bool,
    step_done: mpsc::Sender<()>,
    timer: JoinHandle<Result<(), StepError>>,
}

/// What an armed fault does when it fires.
enum Fire {
    Signal(Signal),
    /// A power cut of the process's data directory: freeze, cut, SIGKILL.
    Cut {
        client: reqwest::blocking::Client,
        control: String,
        route: &'static str,
        body: Option<serde_json::Value>,
    },
}

impl Fire {
    /// Fires at the process group `pid`; returns the detail of the completion event.
    fn fire(&self, name: &str, pid: Option<u32>) -> Result<String, StepError> {
        match self {
            Fire::Signal(signal) => {
                let pid = pid.ok_or_else(|| ProcError::NotRunning(name.to_owned()))?;
                killpg(Pid::from_raw(pid as i32), *signal)
                    .map(|()| format!("{signal} to `{name}` (pid {pid})"))
                    .map_err(|source| StepError::KillFailed {
                        signal: *signal,
                        process: name.to_owned(),
                        pid,
                        source,
                    })
            }
            Fire::Cut {
                client,
                control,
                route,
                body,
            } => {
                let groups: Vec<i32> = pid.iter().map(|p| *p as i32).collect();
                let report = disks::cut_now(client, control, route, body.as_ref(), &groups)?;
                let killed = pid.map_or(String::new(), |p| {
                    format!("; SIGKILL to `{name}` (pid {p})")
                });
                Ok(format!(
                    "power cut of `{name}`'s data: {}{killed}",
                    disks::report_text(&report)
                ))
            }
        }
    }
}

impl Runner<'_> {
    /// Port names a process listens on or refers to, as written in its declaration.
    fn ports_of(&self, name: &str) -> BTreeSet<String> {
        let Some(p) = self.sc.file.process.get(name) else {
            return BTreeSet::new();
        };
        let ready = p.ready.iter().flat_map(|r| {
            [&r.http_get, &r.tcp, &r.path_exists]
                .into_iter()
                .flatten()
                .cloned()
        });
        std::iter::once(p.command.clone())
            .chain(p.args.iter().cloned())
            .chain(p.env.values().cloned())
            .chain(ready)
            .flat_map(|t| template::placeholders(&t))
            .filter_map(|ph| ph.name.strip_prefix("port.").map(str::to_owned))
            .collect()
    }

    /// What a random kill or power cut step will do, for which process, within which bound.
    fn fault_of(&mut self, s: &Step) -> Result<(String, Fire, Option<Duration>), StepError> {
        match s {
            Step::Kill(k) => Ok((
                k.kill.clone(),
                Fire::Signal(signal_of(k.signal)),
                k.within.map(|d| d.0),
            )),
            Step::PowerCut(c) => {
                let (route, body) = self.cut_request(c)?;
                let control = self.control_of(&c.power_cut)?;
                Ok((
                    c.power_cut.clone(),
                    Fire::Cut {
                        client: self.client.clone(),
                        control,
                        route,
                        body,
                    },
                    c.within.map(|d| d.0),
                ))
            }
            other => Err(StepError::Internal(format!(
                "`{}` cannot fire at random",
                other.kind()
            ))),
        }
    }

    /// Draws the delay, records the invoke event and starts the timer thread.
    pub(super) fn arm_kill(
        &mut self,
        label: &str,
        s: &At<Step>,
        next: &Step,
    ) -> Result<Armed, StepError> {
        let title = s.value.title();
        let kind = s.value.kind();
        let location = self.sc.location(s.span.start);
        let at_step = |e: StepError| StepError::AtStep {
            label: label.to_owned(),
            title: title.clone(),
            location: location.clone(),
            source: Box::new(e),
        };
        let (process, fire, within) = self.fault_of(&s.value).map_err(at_step)?;
        let bound = within
            .or_else(|| next.time_limit())
            .unwrap_or(Duration::ZERO);
        let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        let planned = Duration::from_millis(self.rng.random_range(0..=bound_ms));
        let what = match &fire {
            Fire::Signal(sig) => sig.to_string(),
            Fire::Cut { .. } => "power cut".to_owned(),
        };
        self.hist.invoke(
            label,
            kind,
            &format!(
                "{title}: {what} at random within {}ms, planned after {}ms (seed {})",
                bound_ms,
                planned.as_millis(),
                self.seed
            ),
        );
        let pid = self.procs.pid(&process);
        let reap = match &fire {
            Fire::Signal(sig) => *sig == Signal::SIGKILL,
            Fire::Cut { .. } => pid.is_some(),
        };
        if pid.is_none() && matches!(fire, Fire::Signal(_)) {
            let e = StepError::from(ProcError::NotRunning(process));
            self.hist
                .complete(label, kind, &e.to_string(), Outcome::Fail, Vec::new());
            return Err(at_step(e));
        }
        let fired = Arc::new(AtomicBool::new(false));
        let dealt = Arc::new(OnceLock::new());
        self.windows.push(Window {
            process: process.clone(),
            ports: self.ports_of(&process),
            fired: Arc::clone(&fired),
            dealt: Arc::clone(&dealt),
        });
        let (step_done, done_rx) = mpsc::channel::<()>();
        let hist = Arc::clone(&self.hist);
        let (label_t, name) = (label.to_owned(), process.clone());
        let timer = std::thread::spawn(move || {
            let started = Instant::now();
            let when = match done_rx.recv_timeout(planned) {
                Err(RecvTimeoutError::Timeout) => "during the next step",
                _ => "as the next step ended",
            };
            // Set before the signal, so every request the signal cuts off sees it.
            fired.store(true, Ordering::SeqCst);
            let r = fire.fire(&name, pid);
            if r.is_ok() && reap {
                // Only a fault that ends the process: a SIGTERM leaves it running its own code.
                let _ = dealt.set(Instant::now());
            }
            let ms = started.elapsed().as_millis();
            match r {
                Ok(d) => {
                    let d = format!("{d} after {ms}ms, {when}");
                    hist.complete(&label_t, kind, &d, Outcome::Ok, Vec::new());
                    Ok(())
                }
                Err(e) => {
                    let e = StepError::FaultFailed {
                        after_ms: ms,
                        source: Box::new(e),
                    };
                    hist.complete(&label_t, kind, &e.to_string(), Outcome::Fail, Vec::new());
                    Err(e)
                }
            }
        });
        Ok(Armed {
            label: label.to_owned(),
            title,
            location,
            process,
            reap,
            step_done,
            timer,
        })
    }

    /// Ends the window: fires the kill now if its moment has not come, and reaps a SIGKILLed process.
    pub(super) fn disarm_kill(&mut self, a: Armed) -> Result<(), StepError> {
        // A send error only means the timer already fired.
        let _ = a.step_done.send(());
        let fired = a
            .timer
            .join()
            .unwrap_or_else(|_| Err(StepError::TimerPanicked));
        self.windows.pop();
        let reaped = fired.and_then(|()| {
            if !a.reap {
                return Ok(());
            }
            match self.procs.wait(&a.process, REAP_LIMIT)? {
                Some(_) => Ok(()),
                None => Err(ProcError::SurvivedKill(a.process.clone()).into()),
            }
        });
        reaped.map_err(|e| StepError::AtStep {
            label: a.label,
            title: a.title,
            location: a.location,
            source: Box::new(e),
        })
    }
}

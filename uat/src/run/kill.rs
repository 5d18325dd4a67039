//! Random kills: `kill = "NAME"` with `at = "random"` fires at a seeded random moment while the
//! next step runs; requests that kill cuts off are indeterminate, not failures.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rand::Rng;

use super::{Runner, signal_of};
use crate::history::Outcome;
use crate::model::{KillStep, Step};
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
}

impl Window {
    /// A request to `port` that got no answer was cut off by this kill.
    pub(super) fn covers(&self, port: &str) -> bool {
        self.fired.load(Ordering::SeqCst) && self.ports.contains(port)
    }
}

/// An armed kill: the timer thread and how to tell it that the step ended.
pub(super) struct Armed {
    label: String,
    title: String,
    location: String,
    process: String,
    signal: Signal,
    step_done: mpsc::Sender<()>,
    timer: JoinHandle<Result<(), String>>,
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

    /// Draws the delay, records the invoke event and starts the timer thread.
    pub(super) fn arm_kill(
        &mut self,
        label: &str,
        s: &At<Step>,
        k: &KillStep,
        next: &Step,
    ) -> Result<Armed, String> {
        let title = s.value.title();
        let location = self.sc.location(s.span.start);
        let bound = k
            .within
            .map(|d| d.0)
            .or_else(|| next.time_limit())
            .unwrap_or(Duration::ZERO);
        let bound_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        let planned = Duration::from_millis(self.rng.random_range(0..=bound_ms));
        let signal = signal_of(k.signal);
        self.hist.invoke(
            label,
            "kill",
            &format!(
                "{title}: {signal} at random within {}ms, planned after {}ms (seed {})",
                bound_ms,
                planned.as_millis(),
                self.seed
            ),
        );
        let Some(pid) = self.procs.pid(&k.kill) else {
            let msg = format!("process `{}` is not running", k.kill);
            self.hist
                .complete(label, "kill", &msg, Outcome::Fail, Vec::new());
            return Err(format!("step {label} ({title}) at {location}: {msg}"));
        };
        let fired = Arc::new(AtomicBool::new(false));
        self.windows.push(Window {
            process: k.kill.clone(),
            ports: self.ports_of(&k.kill),
            fired: Arc::clone(&fired),
        });
        let (step_done, done_rx) = mpsc::channel::<()>();
        let hist = Arc::clone(&self.hist);
        let (label_t, name) = (label.to_owned(), k.kill.clone());
        let timer = std::thread::spawn(move || {
            let started = Instant::now();
            let when = match done_rx.recv_timeout(planned) {
                Err(RecvTimeoutError::Timeout) => "during the next step",
                _ => "as the next step ended",
            };
            // Set before the signal, so every request the signal cuts off sees it.
            fired.store(true, Ordering::SeqCst);
            let r = killpg(Pid::from_raw(pid as i32), signal);
            let ms = started.elapsed().as_millis();
            match r {
                Ok(()) => {
                    let d = format!("{signal} to `{name}` (pid {pid}) after {ms}ms, {when}");
                    hist.complete(&label_t, "kill", &d, Outcome::Ok, Vec::new());
                    Ok(())
                }
                Err(e) => {
                    let d = format!("{signal} to `{name}` (pid {pid}) after {ms}ms failed: {e}");
                    hist.complete(&label_t, "kill", &d, Outcome::Fail, Vec::new());
                    Err(d)
                }
            }
        });
        Ok(Armed {
            label: label.to_owned(),
            title,
            location,
            process: k.kill.clone(),
            signal,
            step_done,
            timer,
        })
    }

    /// Ends the window: fires the kill now if its moment has not come, and reaps a SIGKILLed process.
    pub(super) fn disarm_kill(&mut self, a: Armed) -> Result<(), String> {
        // A send error only means the timer already fired.
        let _ = a.step_done.send(());
        let fired = a
            .timer
            .join()
            .unwrap_or_else(|_| Err("the kill timer thread panicked".into()));
        self.windows.pop();
        let reaped = fired.and_then(|()| {
            if a.signal != Signal::SIGKILL {
                return Ok(());
            }
            match self.procs.wait(&a.process, REAP_LIMIT)? {
                Some(_) => Ok(()),
                None => Err(format!("`{}` survived SIGKILL for 10s", a.process)),
            }
        });
        reaped.map_err(|m| format!("step {} ({}) at {}: {m}", a.label, a.title, a.location))
    }
}

//! Chaos mode: a seeded schedule of weighted fault actions, a background load, healing steps and
//! the liveness probe.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use reqwest::blocking::Client;

use super::{Runner, http_exchange};
use crate::history::{History, Outcome};
use crate::model::{Chaos, Load, Step};
use crate::step_error::StepError;
use crate::template::Vars;

/// Most actions one chaos run may plan, whatever its duration and interval.
pub const PLAN_MAX: usize = 10_000;
/// Most iterations of the background load (it also ends with the faults and the scenario timeout).
const LOAD_ITERATIONS_MAX: u32 = 1_000_000;
/// Longest uninterrupted sleep of the load thread, so it notices the end of the faults promptly.
const NAP_SLICE: Duration = Duration::from_millis(20);

/// One planned action: its offset from the start of the faults and its index in `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub at: Duration,
    pub action: usize,
}

/// Draws the whole schedule from the generator before anything runs, so it depends on the
/// seed alone: gaps uniform in `interval.min..=interval.max`, actions by weight, offsets below
/// `duration`.
pub fn plan(c: &Chaos, rng: &mut ChaCha8Rng) -> Vec<Planned> {
    let weights: Vec<u64> = c.action.iter().map(|a| u64::from(a.value.weight)).collect();
    let total: u64 = weights.iter().sum();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (min, max) = (ms(c.interval.min.0).max(1), ms(c.interval.max.0).max(1));
    let mut out = Vec::new();
    let mut t = 0u64;
    while out.len() < PLAN_MAX && total > 0 {
        t = t.saturating_add(rng.random_range(min..=max.max(min)));
        if t >= ms(c.duration.0) {
            break;
        }
        let mut pick = rng.random_range(0..total);
        let mut action = 0;
        for (n, w) in weights.iter().enumerate() {
            if pick < *w {
                action = n;
                break;
            }
            pick -= w;
        }
        out.push(Planned {
            at: Duration::from_millis(t),
            action,
        });
    }
    out
}

/// What the background load did.
#[derive(Debug, Default)]
struct LoadStats {
    iterations: u32,
    ok: u32,
    indeterminate: u32,
    failed: u32,
    first_failure: Option<String>,
}

impl Runner<'_> {
    /// Faults on schedule while the load runs; then heal and await liveness.
    pub(super) fn run_chaos(&mut self, c: &Chaos) -> Result<(), StepError> {
        let plan = plan(c, &mut self.rng);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &plan {
            if let Some(a) = c.action.get(p.action) {
                *counts.entry(a.value.name.as_str()).or_default() += 1;
            }
        }
        let mix: Vec<String> = counts.iter().map(|(n, k)| format!("{n} x{k}")).collect();
        self.hist.invoke(
            "chaos",
            "chaos",
            &format!(
                "seed {}: {} actions planned over {} ({})",
                self.seed,
                plan.len(),
                c.duration,
                mix.join(", ")
            ),
        );
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        let ctx = (
            self.client.clone(),
            self.vars.clone(),
            Arc::clone(&self.hist),
            self.deadline,
        );
        let (res, stats) = std::thread::scope(|s| {
            let stop = &stop;
            let load = c.load.as_ref().map(|l| {
                let (client, vars, hist, deadline) = ctx;
                s.spawn(move || load_loop(&client, vars, &l.value, &hist, stop, deadline))
            });
            let r = self.run_plan(c, &plan, started);
            stop.store(true, Ordering::SeqCst);
            let stats = load.map(|h| h.join().unwrap_or_default());
            (r, stats)
        });
        let mut line = format!(
            "chaos: seed {}, {} actions ({}) in {:.1}s",
            self.seed,
            plan.len(),
            mix.join(", "),
            started.elapsed().as_secs_f64()
        );
        if let Some(st) = &stats {
            line.push_str(&format!(
                "; load: {} iterations, {} ok, {} indeterminate, {} failed",
                st.iterations, st.ok, st.indeterminate, st.failed
            ));
            if let Some(f) = &st.first_failure {
                line.push_str(&format!(" (first: {f})"));
            }
        }
        let outcome = if res.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Fail
        };
        self.hist
            .complete("chaos", "chaos", &line, outcome, Vec::new());
        self.figures.push(line);
        res?;
        self.run_steps(&c.heal, "heal ")?;
        self.liveness(c)
    }

    /// Runs the planned actions at their offsets, then waits out the rest of `duration`.
    fn run_plan(&mut self, c: &Chaos, plan: &[Planned], started: Instant) -> Result<(), StepError> {
        for (k, p) in plan.iter().enumerate() {
            let wait = (started + p.at).saturating_duration_since(Instant::now());
            std::thread::sleep(wait.min(self.remaining()));
            let Some(a) = c.action.get(p.action) else {
                continue;
            };
            let label = format!("chaos {}", k + 1);
            if Instant::now() >= self.deadline {
                return Err(StepError::ChaosTimeout {
                    timeout: self.sc.file.scenario.timeout.to_string(),
                    label,
                    action: a.value.name.clone(),
                    seed: self.seed,
                });
            }
            self.hist.invoke(
                &label,
                "chaos",
                &format!(
                    "action `{}` planned at {}ms",
                    a.value.name,
                    p.at.as_millis()
                ),
            );
            let r = self.run_steps(&a.value.steps, &format!("{label}."));
            let outcome = if r.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Fail
            };
            let late = started.elapsed().saturating_sub(p.at).as_millis();
            let detail = format!(
                "action `{}` done, started {late}ms after its plan",
                a.value.name
            );
            self.hist
                .complete(&label, "chaos", &detail, outcome, Vec::new());
            r.map_err(|e| StepError::ChaosAction {
                action: a.value.name.clone(),
                seed: self.seed,
                source: Box::new(e),
            })?;
        }
        let rest = (started + c.duration.0).saturating_duration_since(Instant::now());
        std::thread::sleep(rest.min(self.remaining()));
        Ok(())
    }

    /// The liveness probe, awaited once the faults stopped and `heal` ran.
    fn liveness(&mut self, c: &Chaos) -> Result<(), StepError> {
        let w = &c.liveness.value;
        let title = format!("wait_until `{}` (liveness)", w.wait_until.describe());
        self.hist.invoke("liveness", "wait_until", &title);
        match self.wait_until(w) {
            Ok(d) => {
                self.hist
                    .complete("liveness", "wait_until", &d, Outcome::Ok, Vec::new());
                Ok(())
            }
            Err(e) => {
                self.hist.complete(
                    "liveness",
                    "wait_until",
                    &e.to_string(),
                    Outcome::Fail,
                    Vec::new(),
                );
                Err(StepError::NotLive {
                    location: self.sc.location(c.liveness.span.start),
                    timeout: w.timeout.to_string(),
                    seed: self.seed,
                    source: Box::new(e),
                })
            }
        }
    }
}

/// The background load: `steps` again and again with `{{i}}` counting, until told to stop.
/// Its outcomes are recorded but never fail the scenario; `exactly_once` judges them.
fn load_loop(
    client: &Client,
    mut vars: Vars,
    load: &Load,
    hist: &History,
    stop: &AtomicBool,
    deadline: Instant,
) -> LoadStats {
    let mut st = LoadStats::default();
    let running = || !stop.load(Ordering::SeqCst) && Instant::now() < deadline;
    while running() && st.iterations < LOAD_ITERATIONS_MAX {
        st.iterations += 1;
        vars.i = Some(st.iterations);
        for (n, s) in load.steps.iter().enumerate() {
            if !running() {
                break;
            }
            let label = format!("load[{}].{}", st.iterations, n + 1);
            match &s.value {
                Step::Http(h) => {
                    hist.invoke(&label, "http", &s.value.title());
                    let cap = deadline.saturating_duration_since(Instant::now());
                    match http_exchange(client, &mut vars, h, cap) {
                        Ok((d, items)) => {
                            st.ok += 1;
                            hist.complete(&label, "http", &d, Outcome::Ok, items);
                        }
                        Err(f) => {
                            let why = f.error.to_string();
                            if f.outcome == Outcome::Indeterminate {
                                st.indeterminate += 1;
                            } else {
                                st.failed += 1;
                                st.first_failure
                                    .get_or_insert_with(|| format!("{label}: {why}"));
                            }
                            hist.complete(&label, "http", &why, f.outcome, f.items);
                        }
                    }
                }
                Step::Sleep(d) => nap(d.sleep.0, stop, deadline),
                // Other kinds are refused at load time.
                _ => {}
            }
        }
        nap(load.interval.0, stop, deadline);
    }
    st
}

/// Sleeps `d` in short slices, waking early when the faults stop or the scenario times out.
fn nap(d: Duration, stop: &AtomicBool, deadline: Instant) {
    let end = (Instant::now() + d).min(deadline);
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(NAP_SLICE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn chaos(text: &str) -> Chaos {
        let head = "[scenario]\nname = \"c\"\n[process.p]\ncommand = \"sleep\"\ndb = \"x.db\"\n";
        let sc = crate::load_str(std::path::Path::new("c.toml"), format!("{head}{text}"))
            .unwrap_or_else(|e| panic!("{e}"));
        sc.file.chaos.unwrap_or_else(|| panic!("no chaos"))
    }

    const TEXT: &str = r#"
[chaos]
duration = "10s"
interval = { min = "100ms", max = "900ms" }
liveness = { wait_until = { sql = "SELECT 1", db = "p" }, expect.rows = [[1]], timeout = "1s" }
[[chaos.action]]
name = "a"
weight = 3
steps = [{ pause = "p" }, { resume = "p" }]
[[chaos.action]]
name = "b"
steps = [{ sleep = "1ms" }]
"#;

    #[test]
    fn the_plan_depends_on_the_seed_alone_and_respects_bounds() {
        let c = chaos(TEXT);
        let one = plan(&c, &mut ChaCha8Rng::seed_from_u64(7));
        let again = plan(&c, &mut ChaCha8Rng::seed_from_u64(7));
        let other = plan(&c, &mut ChaCha8Rng::seed_from_u64(8));
        assert_eq!(one, again);
        assert_ne!(one, other);
        // 10s at gaps of 0.1..0.9s: at least 11 actions, at most 99.
        assert!((11..100).contains(&one.len()), "{}", one.len());
        let mut prev = Duration::ZERO;
        for p in &one {
            let gap = p.at - prev;
            assert!(gap >= Duration::from_millis(100) && gap <= Duration::from_millis(900));
            assert!(p.at < Duration::from_secs(10));
            prev = p.at;
        }
        // Weight 3 against 1: over a long plan, `a` is drawn more often than `b`.
        let long = Chaos {
            duration: crate::util::Dur(Duration::from_secs(1000)),
            ..c
        };
        let many = plan(&long, &mut ChaCha8Rng::seed_from_u64(7));
        let a = many.iter().filter(|p| p.action == 0).count();
        assert!(
            a * 2 > many.len() && a < many.len(),
            "{a} of {}",
            many.len()
        );
    }
}

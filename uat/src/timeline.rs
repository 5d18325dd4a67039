//! What a scenario's timeline is made of: the samples the runner takes while it runs (each
//! adapter's backlog and breaker, each ofd-mock's mode and counts, each emulator's counters), the
//! fault windows derived from the history and the samples, and the receipt ticks of the
//! `exactly_once` checks. The report draws and writes these; `run/sample.rs` takes the samples.
//!
//! **Boundary:** nothing here talks to a process; these are plain values and pure functions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::Tick;
use crate::history::{Event, Outcome, Phase};

/// Which of the built binaries a sampled process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Adapter,
    OfdMock,
    KktEmulator,
}

/// One reading of one process. Fields not read from that kind of process are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Values {
    /// Adapter: documents not yet delivered to the OFD (`pending` of the buffer status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
    /// Adapter: documents in the dead-letter queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dlq: Option<u64>,
    /// Adapter: the OFD circuit breaker, `CLOSED`, `OPEN` or `HALF_OPEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    /// ofd-mock: the mode in effect (`online`, `offline`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// ofd-mock: documents received, stored once, and received again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<u64>,
    /// kkt-emulator: commands executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<u64>,
    /// kkt-emulator: frames from the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_from_host: Option<u64>,
    /// kkt-emulator: the kinds of the armed faults (empty when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Vec<String>>,
    /// kkt-emulator: false after a power cut until power-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub powered: Option<bool>,
    /// kkt-emulator: `present` or `out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper: Option<String>,
}

/// A sample of one process at one moment. `values` is None when it did not answer (not started
/// yet, killed, paused): a missing sample, not an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the scenario started (the clock of `history.jsonl`).
    pub t_ms: u64,
    pub process: String,
    pub kind: TargetKind,
    pub values: Option<Values>,
}

/// Everything the report needs to draw one scenario in time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The history, as recorded.
    pub events: Vec<Event>,
    /// The samples, in time order (empty unless the run was asked for a report).
    pub samples: Vec<Sample>,
    /// The sampler stopped at its bound before the scenario ended.
    pub samples_truncated: bool,
    /// The items of every `exactly_once` check, with their fates.
    pub ticks: Vec<Tick>,
}

impl Timeline {
    /// The last moment anything happened, in ms (at least 1, so scales never divide by zero).
    pub fn end_ms(&self) -> u64 {
        let e = self.events.iter().map(|e| e.t_ms).max().unwrap_or(0);
        let s = self.samples.iter().map(|s| s.t_ms).max().unwrap_or(0);
        e.max(s).max(1)
    }
}

/// A span during which a fault was in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// `kill`, `stop`, `pause`, `power-cut`, `fs-fail`, `ofd-mode` or `kkt-fault`: the class the
    /// report gives the span.
    pub kind: String,
    pub process: Option<String>,
    pub from_ms: u64,
    pub to_ms: u64,
    /// What it was, e.g. `SIGKILL adapter` or `OFD mode offline`.
    pub label: String,
}

/// A span during which an adapter's breaker was in one state, from consecutive samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Band {
    pub process: String,
    /// `CLOSED`, `OPEN` or `HALF_OPEN`.
    pub state: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// The process a step title names: the text between its first pair of backticks (`kill
/// \`adapter\``), or the whole text for an autostart (`setup:NAME`, detail `NAME`).
fn process_of(detail: &str) -> Option<String> {
    let mut parts = detail.split('`');
    match (parts.next(), parts.next()) {
        (Some(_), Some(p)) if !p.is_empty() => Some(p.to_owned()),
        _ if !detail.is_empty() && !detail.contains(' ') => Some(detail.to_owned()),
        _ => None,
    }
}

/// How a step kind opens a fault window: the window's kind.
fn opens(kind: &str) -> Option<&'static str> {
    match kind {
        "kill" => Some("kill"),
        "stop" => Some("stop"),
        "pause" => Some("pause"),
        "power_cut" => Some("power-cut"),
        "fs_fail" => Some("fs-fail"),
        _ => None,
    }
}

/// Which open windows a completed step of `kind` closes.
fn closes(kind: &str) -> &'static [&'static str] {
    match kind {
        "start" => &["kill", "stop", "power-cut"],
        "resume" => &["pause"],
        "heal" => &["fs-fail"],
        _ => &[],
    }
}

/// The fault windows of a scenario: process faults from the history's step kinds (a kill or stop
/// until the process is started again, pause until resume, a power cut until the next start,
/// `fs_fail` until `heal`), OFD modes other than `online` and KKT faults (armed faults, power off,
/// paper out) from the samples, their edges moved to the control request that switched them when
/// one falls between two samples. A KKT fault armed and spent between two samples still shows,
/// as a short span at its request.
pub fn fault_windows(t: &Timeline) -> Vec<FaultWindow> {
    let end = t.end_ms();
    let mut out = Vec::new();
    let mut invoked: BTreeMap<&str, &str> = BTreeMap::new();
    let mut open: Vec<FaultWindow> = Vec::new();
    for e in &t.events {
        if e.phase == Phase::Invoke {
            invoked.insert(e.step.as_str(), e.detail.as_str());
            continue;
        }
        if e.outcome != Some(Outcome::Ok) {
            continue;
        }
        let title = invoked.get(e.step.as_str()).copied().unwrap_or_default();
        let process = process_of(title);
        let closing = closes(&e.kind);
        if !closing.is_empty() {
            let (done, still): (Vec<FaultWindow>, Vec<FaultWindow>) =
                open.into_iter().partition(|w| {
                    closing.contains(&w.kind.as_str())
                        && (w.process.is_none() || w.process == process)
                });
            open = still;
            out.extend(done.into_iter().map(|mut w| {
                w.to_ms = e.t_ms;
                w
            }));
        }
        if let Some(kind) = opens(&e.kind) {
            let who = process.clone().unwrap_or_else(|| "?".into());
            let label = match kind {
                "kill" => format!("{} {who}", e.detail.split(';').next().unwrap_or("kill")),
                other => format!("{other} {who}"),
            };
            open.push(FaultWindow {
                kind: kind.to_owned(),
                process,
                from_ms: e.t_ms,
                to_ms: end,
                label,
            });
        }
    }
    out.extend(open);
    let switches = |paths: &[&str]| -> Vec<u64> {
        let mut invoked: BTreeMap<&str, &str> = BTreeMap::new();
        let mut v = Vec::new();
        for e in &t.events {
            if e.phase == Phase::Invoke {
                invoked.insert(e.step.as_str(), e.detail.as_str());
            } else if e.kind == "http"
                && invoked
                    .get(e.step.as_str())
                    .is_some_and(|d| paths.iter().any(|p| d.contains(p)))
            {
                v.push(e.t_ms);
            }
        }
        v
    };
    let ofd_switches = switches(&["/_mock/mode", "/set_mode", "/_mock/reset"]);
    let kkt_switches = switches(&[
        "/_emu/fault",
        "/_emu/clear",
        "/_emu/power_on",
        "/_emu/reset",
    ]);
    let mut kkt = Vec::new();
    let mut processes: Vec<(&str, TargetKind)> = t
        .samples
        .iter()
        .map(|s| (s.process.as_str(), s.kind))
        .collect();
    processes.sort();
    processes.dedup();
    for (name, kind) in processes {
        let (fault_kind, switches) = match kind {
            TargetKind::OfdMock => ("ofd-mode", &ofd_switches),
            TargetKind::KktEmulator => ("kkt-fault", &kkt_switches),
            TargetKind::Adapter => continue,
        };
        let mine: Vec<&Sample> = t.samples.iter().filter(|s| s.process == name).collect();
        let spans = sampled_spans(&mine, fault_of, switches, end);
        for (from_ms, to_ms, what) in spans {
            let w = FaultWindow {
                kind: fault_kind.to_owned(),
                process: Some(name.to_owned()),
                from_ms,
                to_ms,
                label: what,
            };
            if kind == TargetKind::KktEmulator {
                kkt.push((w.from_ms, w.to_ms));
            }
            out.push(w);
        }
    }
    // Faults armed through the control API that no sample saw: spent within one interval.
    let mut invoked: BTreeMap<&str, &str> = BTreeMap::new();
    for e in &t.events {
        if e.phase == Phase::Invoke {
            invoked.insert(e.step.as_str(), e.detail.as_str());
            continue;
        }
        let title = invoked.get(e.step.as_str()).copied().unwrap_or_default();
        if e.kind == "http"
            && e.outcome == Some(Outcome::Ok)
            && title.contains("/_emu/fault")
            && !kkt.iter().any(|(a, b)| *a <= e.t_ms && e.t_ms <= *b)
        {
            out.push(FaultWindow {
                kind: "kkt-fault".into(),
                process: None,
                from_ms: e.t_ms,
                to_ms: e.t_ms,
                label: format!("KKT fault armed: {title}"),
            });
        }
    }
    out.sort_by_key(|w| (w.from_ms, w.to_ms));
    out
}

/// What fault a sample shows, if any: an OFD mode other than online, armed KKT faults, a KKT
/// without power or paper.
fn fault_of(v: &Values) -> Option<String> {
    if let Some(m) = v.mode.as_deref().filter(|m| *m != "online") {
        return Some(format!("OFD mode {m}"));
    }
    let mut what = Vec::new();
    if let Some(f) = v.faults.as_ref().filter(|f| !f.is_empty()) {
        what.push(format!("faults armed: {}", f.join(", ")));
    }
    if v.powered == Some(false) {
        what.push("powered off".to_owned());
    }
    if v.paper.as_deref() == Some("out") {
        what.push("paper out".to_owned());
    }
    (!what.is_empty()).then(|| format!("KKT {}", what.join("; ")))
}

/// Runs of consecutive answered samples showing the same fault, as (from, to, what). An edge
/// moves to the latest switch request between the two answered samples around it.
fn sampled_spans(
    samples: &[&Sample],
    fault: fn(&Values) -> Option<String>,
    switches: &[u64],
    end: u64,
) -> Vec<(u64, u64, String)> {
    let snap = |after: u64, upto: u64| {
        switches
            .iter()
            .copied()
            .filter(|t| *t > after && *t <= upto)
            .max()
            .unwrap_or(upto)
    };
    let mut out = Vec::new();
    let mut cur: Option<(u64, String)> = None;
    let mut prev_t = 0u64;
    // A missing sample (the process did not answer) tells nothing about the fault: skipped.
    for s in samples {
        let Some(v) = &s.values else { continue };
        let now = fault(v);
        match (&cur, now) {
            (None, Some(w)) => cur = Some((snap(prev_t, s.t_ms), w)),
            (Some((_, a)), Some(b)) if *a == b => {}
            (Some(_), next) => {
                if let Some((from, w)) = cur.take() {
                    out.push((from, snap(prev_t, s.t_ms), w));
                }
                cur = next.map(|w| (snap(prev_t, s.t_ms), w));
            }
            (None, None) => {}
        }
        prev_t = s.t_ms;
    }
    if let Some((from, w)) = cur {
        out.push((from, end, w));
    }
    out
}

/// The breaker bands of each adapter: consecutive answered samples in one state, each band
/// reaching to the next sample (a missing sample ends a band).
pub fn breaker_bands(t: &Timeline) -> Vec<Band> {
    let mut out: Vec<Band> = Vec::new();
    let mut last: BTreeMap<&str, (u64, Option<String>)> = BTreeMap::new();
    for s in t.samples.iter().filter(|s| s.kind == TargetKind::Adapter) {
        let state = s.values.as_ref().and_then(|v| v.breaker.clone());
        if let Some((prev_t, Some(prev))) = last.get(s.process.as_str()) {
            match out
                .iter_mut()
                .rev()
                .find(|b| b.process == s.process && b.to_ms == *prev_t && b.state == *prev)
            {
                Some(b) => b.to_ms = s.t_ms,
                None => out.push(Band {
                    process: s.process.clone(),
                    state: prev.clone(),
                    from_ms: *prev_t,
                    to_ms: s.t_ms,
                }),
            }
        }
        last.insert(s.process.as_str(), (s.t_ms, state));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t_ms: u64, phase: Phase, step: &str, kind: &str, detail: &str) -> Event {
        Event {
            t_ms,
            phase,
            step: step.into(),
            kind: kind.into(),
            detail: detail.into(),
            outcome: (phase == Phase::Complete).then_some(Outcome::Ok),
            items: Vec::new(),
        }
    }

    fn sample(t_ms: u64, process: &str, kind: TargetKind, v: Option<Values>) -> Sample {
        Sample {
            t_ms,
            process: process.into(),
            kind,
            values: v,
        }
    }

    #[test]
    fn a_kill_lasts_until_the_restart_and_an_ofd_mode_snaps_to_its_switch() {
        use Phase::{Complete as C, Invoke as I};
        let mode = |m: &str| {
            Some(Values {
                mode: Some(m.into()),
                ..Values::default()
            })
        };
        let t = Timeline {
            events: vec![
                ev(100, I, "1", "http", "http `POST ofd /_mock/mode` (offline)"),
                ev(120, C, "1", "http", "status 200"),
                ev(300, I, "2", "kill", "kill `adapter`"),
                ev(310, C, "2", "kill", "SIGKILL; exited: signal 9"),
                ev(400, I, "3", "start", "start `adapter`"),
                ev(900, C, "3", "start", "pid 7"),
                ev(1000, I, "4", "http", "http `POST ofd /_mock/mode`"),
                ev(1010, C, "4", "http", "status 200"),
                ev(2000, I, "5", "sleep", "sleep `1s`"),
                ev(2000, C, "5", "sleep", "slept"),
            ],
            samples: vec![
                sample(0, "ofd", TargetKind::OfdMock, mode("online")),
                sample(250, "ofd", TargetKind::OfdMock, mode("offline")),
                sample(500, "ofd", TargetKind::OfdMock, None),
                sample(750, "ofd", TargetKind::OfdMock, mode("offline")),
                sample(1250, "ofd", TargetKind::OfdMock, mode("online")),
            ],
            ..Timeline::default()
        };
        let w = fault_windows(&t);
        let got: Vec<(&str, u64, u64)> = w
            .iter()
            .map(|w| (w.kind.as_str(), w.from_ms, w.to_ms))
            .collect();
        assert_eq!(got, [("ofd-mode", 120, 1010), ("kill", 310, 900)]);
        assert_eq!(w[0].label, "OFD mode offline");
        assert_eq!(w[1].label, "SIGKILL adapter");
    }

    #[test]
    fn breaker_bands_join_equal_states_and_stop_at_a_missing_sample() {
        let b = |s: &str| {
            Some(Values {
                breaker: Some(s.into()),
                ..Values::default()
            })
        };
        let a = TargetKind::Adapter;
        let t = Timeline {
            samples: vec![
                sample(0, "ad", a, b("CLOSED")),
                sample(250, "ad", a, b("OPEN")),
                sample(500, "ad", a, b("OPEN")),
                sample(750, "ad", a, None),
                sample(1000, "ad", a, b("HALF_OPEN")),
                sample(1250, "ad", a, b("CLOSED")),
            ],
            ..Timeline::default()
        };
        let got: Vec<(String, u64, u64)> = breaker_bands(&t)
            .into_iter()
            .map(|b| (b.state, b.from_ms, b.to_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("CLOSED".into(), 0, 250),
                ("OPEN".into(), 250, 750),
                ("HALF_OPEN".into(), 1000, 1250),
            ]
        );
    }
}

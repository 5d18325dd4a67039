//! The recorded history of a scenario run: invoke/complete events, kept in memory and in `history.jsonl`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Whether an event opens or closes an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Invoke,
    Complete,
}

/// How an operation ended. Indeterminate: it may or may not have taken effect (e.g. cut off by a kill).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Fail,
    Indeterminate,
}

/// An item an operation added to a list (`append`); `id` is unknown when a cut-off request
/// was to take it from the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub list: String,
    pub id: Option<Value>,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the scenario started.
    pub t_ms: u64,
    #[serde(rename = "type")]
    pub phase: Phase,
    /// Step label such as `3` or `4[2].1` (step 4, iteration 2, sub-step 1).
    pub step: String,
    pub kind: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
}

/// The event log of one scenario. Shared by reference between the step runner, a pending random
/// kill and the chaos load thread, so events land in one file in the order they happened.
#[derive(Debug)]
pub struct History {
    start: Instant,
    inner: Mutex<Log>,
}

#[derive(Debug)]
struct Log {
    file: Option<BufWriter<File>>,
    events: Vec<Event>,
}

impl History {
    /// Starts a history written to `path` as JSON lines.
    pub fn create(path: &Path) -> std::io::Result<History> {
        Ok(History {
            start: Instant::now(),
            inner: Mutex::new(Log {
                file: Some(BufWriter::new(File::create(path)?)),
                events: Vec::new(),
            }),
        })
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Milliseconds since the scenario started: the clock of `t_ms`, for samples taken beside
    /// the history.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A copy of every event so far, in recording order.
    pub fn events(&self) -> Vec<Event> {
        self.log().events.clone()
    }

    /// Records an event; write errors are reported once and then the file is dropped, because the
    /// in-memory history still serves the checks.
    pub fn record(
        &self,
        phase: Phase,
        step: &str,
        kind: &str,
        detail: &str,
        outcome: Option<Outcome>,
        items: Vec<Item>,
    ) {
        let mut log = self.log();
        // Taken under the lock, so t_ms never decreases along the file.
        let ev = Event {
            t_ms: self.elapsed_ms(),
            phase,
            step: step.to_owned(),
            kind: kind.to_owned(),
            detail: detail.to_owned(),
            outcome,
            items,
        };
        if let Some(f) = &mut log.file {
            let line = serde_json::to_string(&ev).unwrap_or_default();
            if writeln!(f, "{line}").and_then(|_| f.flush()).is_err() {
                eprintln!("uat: cannot write history.jsonl; keeping the history in memory only");
                log.file = None;
            }
        }
        log.events.push(ev);
    }

    pub fn invoke(&self, step: &str, kind: &str, detail: &str) {
        self.record(Phase::Invoke, step, kind, detail, None, Vec::new());
    }

    pub fn complete(
        &self,
        step: &str,
        kind: &str,
        detail: &str,
        outcome: Outcome,
        items: Vec<Item>,
    ) {
        self.record(Phase::Complete, step, kind, detail, Some(outcome), items);
    }
}

/// Parses a `history.jsonl` text.
pub fn parse_jsonl(text: &str) -> Result<Vec<Event>, serde_json::Error> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

//! The sampler: while a scenario runs (only when the run writes an HTML report), a thread reads
//! every adapter's buffer status and breaker, every ofd-mock's mode and counts and every
//! kkt-emulator's counters and armed faults over their HTTP APIs, every [`INTERVAL`].
//!
//! **Boundary:** it only reads (GET requests), never fails the scenario, and is bounded: each
//! request has [`REQUEST_TIMEOUT`] (a paused process costs that much, a killed one nothing), a
//! process that does not answer is recorded as a missing sample, and after [`SAMPLES_MAX`]
//! samples it stops and says so. It stops as soon as the scenario's steps and `finally` end.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::Value;

use crate::history::History;
use crate::load::{Scenario, is_adapter};
use crate::model::{Process, RequestParts};
use crate::probe::{self, Response};
use crate::template::{self, Vars};
use crate::timeline::{Sample, TargetKind, Values};
use crate::util::{Dur, NamedMap};

/// Time between two rounds of samples.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// Time limit of one sampling request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// The most samples kept per scenario (one per process per round): at 250 ms and three processes,
/// about 27 minutes of a run.
pub const SAMPLES_MAX: usize = 20_000;

/// The command of an ofd-mock process.
const OFD_MOCK_COMMAND: &str = "{{bin.ofd-mock}}";
/// The command of a kkt-emulator process.
const KKT_EMULATOR_COMMAND: &str = "{{bin.kkt-emulator}}";

/// A process to sample: its name, which binary it is and the port name of its HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub process: String,
    pub kind: TargetKind,
    pub port: String,
}

/// The port name in `--control ADDR` / `--control=ADDR` (or the mock's `OFD_MOCK_CONTROL`).
fn control_port(p: &Process) -> Option<String> {
    let from_args = p.args.iter().enumerate().find_map(|(i, a)| {
        if a == "--control" {
            p.args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix("--control=")
        }
    });
    let value = from_args.or_else(|| p.env.get("OFD_MOCK_CONTROL").map(String::as_str))?;
    template::placeholders(value)
        .into_iter()
        .find_map(|t| t.name.strip_prefix("port.").map(str::to_owned))
}

/// The processes of a scenario the sampler reads, found by their command (`{{bin.adapter}}`,
/// `{{bin.ofd-mock}}`, `{{bin.kkt-emulator}}`): an adapter on its listen port, the mock and the
/// emulator on their `--control` port. Other processes are not sampled.
pub fn targets(sc: &Scenario) -> Vec<Target> {
    let mut out = Vec::new();
    for (name, p) in sc.file.process.iter() {
        let command = p.command.trim();
        let found = if is_adapter(p) {
            sc.adapters
                .get(name)
                .map(|port| (TargetKind::Adapter, port.clone()))
        } else if command == OFD_MOCK_COMMAND {
            control_port(p).map(|port| (TargetKind::OfdMock, port))
        } else if command == KKT_EMULATOR_COMMAND {
            control_port(p).map(|port| (TargetKind::KktEmulator, port))
        } else {
            None
        };
        if let Some((kind, port)) = found {
            out.push(Target {
                process: name.to_owned(),
                kind,
                port,
            });
        }
    }
    out
}

/// A running sampler; [`Sampler::finish`] stops it and hands over the samples.
pub struct Sampler {
    stop: Sender<()>,
    thread: JoinHandle<(Vec<Sample>, bool)>,
}

impl Sampler {
    /// Starts sampling `targets` on its own thread; None when there is nothing to sample or the
    /// thread cannot be started (the report then has no samples, the scenario runs as ever).
    pub fn start(
        targets: Vec<Target>,
        client: Client,
        vars: Vars,
        hist: Arc<History>,
    ) -> Option<Sampler> {
        if targets.is_empty() {
            return None;
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("uat-sampler".into())
            .spawn(move || {
                let mut samples = Vec::new();
                loop {
                    for t in &targets {
                        if samples.len() >= SAMPLES_MAX {
                            return (samples, true);
                        }
                        let t_ms = hist.elapsed_ms();
                        samples.push(Sample {
                            t_ms,
                            process: t.process.clone(),
                            kind: t.kind,
                            values: read(&client, &vars, t),
                        });
                    }
                    match stopped.recv_timeout(INTERVAL) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return (samples, false),
                    }
                }
            })
            .map_err(|e| eprintln!("uat: cannot start the sampler: {e}"))
            .ok()?;
        Some(Sampler { stop, thread })
    }

    /// Stops the sampler (within one round) and returns its samples and whether it hit
    /// [`SAMPLES_MAX`].
    pub fn finish(self) -> (Vec<Sample>, bool) {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or_else(|_| {
            eprintln!("uat: the sampler panicked; the report has no samples");
            (Vec::new(), false)
        })
    }
}

/// `GET port path` with the sampler's short timeout; None when there is no answer.
fn get(client: &Client, vars: &Vars, port: &str, path: &str) -> Option<Response> {
    let headers = NamedMap::default();
    let parts = RequestParts {
        json: None,
        body: None,
        headers: &headers,
        timeout: Dur(REQUEST_TIMEOUT),
    };
    probe::request(
        client,
        vars,
        &format!("GET {port} {path}"),
        parts,
        REQUEST_TIMEOUT,
    )
    .ok()
}

fn uint(body: &Value, key: &str) -> Option<u64> {
    body.get(key).and_then(Value::as_u64)
}

/// One reading of one process: None when its first request got no JSON answer.
fn read(client: &Client, vars: &Vars, t: &Target) -> Option<Values> {
    let first = match t.kind {
        TargetKind::Adapter => "/v1/kkt/buffer/status",
        TargetKind::OfdMock => "/_mock/stats",
        TargetKind::KktEmulator => "/_emu/counters",
    };
    let r = get(client, vars, &t.port, first).filter(|r| r.status == 200 && r.body.is_object())?;
    let b = &r.body;
    let mut v = Values::default();
    match t.kind {
        TargetKind::Adapter => {
            v.backlog = uint(b, "pending");
            v.dlq = uint(b, "dlq_size");
            // Health answers 503 while degraded, with the same body.
            v.breaker = get(client, vars, &t.port, "/v1/health").and_then(|h| {
                h.body
                    .pointer("/circuit_breaker/state")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        }
        TargetKind::OfdMock => {
            v.mode = b
                .pointer("/mode/mode")
                .and_then(Value::as_str)
                .map(str::to_owned);
            v.received = uint(b, "documents_received");
            v.unique = uint(b, "unique");
            v.duplicates = uint(b, "duplicates");
        }
        TargetKind::KktEmulator => {
            v.commands = uint(b, "commands");
            v.frames_from_host = uint(b, "frames_from_host");
            if let Some(s) = get(client, vars, &t.port, "/_emu/state").map(|r| r.body) {
                v.faults = s.get("faults").and_then(Value::as_array).map(|f| {
                    f.iter()
                        .filter_map(|x| x.get("kind").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                });
                v.powered = s.get("powered").and_then(Value::as_bool);
                v.paper = s.get("paper").and_then(Value::as_str).map(str::to_owned);
            }
        }
    }
    Some(v)
}

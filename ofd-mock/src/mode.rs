//! The mode menu: what the control plane can select, its validation, and the per-connection decision engine.
//!
//! Every random choice is a pure function of `(seed, n)` or `(seed, elapsed)`, so a run with the same seed and
//! the same traffic makes the same choices; this is what lets scenario files reproduce a fault exactly.

use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::schedule::{Flap, Purpose, stream, unit};

/// Longest delay a `slow` mode may ask for; bounded so a typo cannot park connections for hours.
pub const SLOW_DELAY_MS_MAX: u64 = 600_000;
/// Longest phase of a `flapping` schedule.
pub const FLAP_PHASE_MS_MAX: u64 = 3_600_000;
/// Most bytes a `garbage` answer may carry.
pub const GARBAGE_LEN_MAX: usize = 65_536;
/// Most failures a `fail_next` may queue.
pub const FAIL_NEXT_COUNT_MAX: u32 = 1_000_000;

/// Why a mode request was refused; the message is shown to the caller as is.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModeError {
    /// The body is not the JSON shape of any mode (unknown mode, unknown field, wrong type).
    #[error("{0}")]
    Shape(String),
    /// The shape is right but a value is out of range.
    #[error("{0}")]
    Range(String),
}

/// How `offline` refuses a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refuse {
    /// Close the listening socket: connects are refused by the kernel and never reach the mock's counters.
    #[default]
    CloseListener,
    /// Keep listening, accept and reset at once: every attempt is counted in `/_mock/stats`.
    Reset,
}

/// One behaviour of the mock, as selected by `POST /_mock/mode` (the `mode` field is the tag).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Behaviour {
    /// Store and acknowledge with response code 0.
    Online {},
    /// Refuse connections.
    Offline {
        #[serde(default)]
        refuse: Refuse,
    },
    /// Accept, read, never answer.
    Blackhole {},
    /// Alternate online and offline on a seeded schedule.
    Flapping {
        online_ms: u64,
        offline_ms: u64,
        #[serde(default)]
        jitter_ms: u64,
        #[serde(default)]
        refuse: Refuse,
    },
    /// Store, then answer after `delay_ms`.
    Slow { delay_ms: u64 },
    /// Store, then close without answering.
    AckLoss {},
    /// Answer with response code `code` and do not store.
    Reject {
        #[serde(default = "default_reject_code")]
        code: u8,
    },
    /// Store, write half of the acknowledgement, then reset the connection.
    ResetMidFrame {},
    /// Read the request, answer `len` seeded random bytes, close; nothing stored.
    Garbage {
        #[serde(default = "default_garbage_len")]
        len: usize,
    },
    /// Accept and close at once, before reading (the TCP analogue of a 503).
    Unavailable {},
    /// Read the document, store nothing, and answer a well-formed acknowledgement (code 0) that
    /// names another document in `field`: the mix-up an FN refuses with error 0x20.
    WrongAck { field: AckField },
    /// The next `count` connections fail as `kind`, then the mode becomes `online`.
    FailNext {
        count: u32,
        #[serde(deserialize_with = "de_kind")]
        kind: Box<Behaviour>,
    },
}

/// The acknowledgement field `wrong_ack` gets wrong: the session header's FN number, the
/// container header's FD number, or the body's 1041 (FN) or 1040 (FD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckField {
    HeaderFn,
    HeaderFd,
    BodyFn,
    BodyFd,
}

fn default_reject_code() -> u8 {
    14
}

fn default_garbage_len() -> usize {
    64
}

/// `kind` is either a mode name (`"ack_loss"`) or a whole mode object (`{"mode":"reject","code":3}`).
fn de_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Box<Behaviour>, D::Error> {
    let v = Value::deserialize(d)?;
    let v = match v {
        Value::String(s) => Value::Object(Map::from_iter([("mode".to_owned(), Value::String(s))])),
        other => other,
    };
    serde_json::from_value(v)
        .map(Box::new)
        .map_err(|e| serde::de::Error::custom(format!("in `kind`: {e}")))
}

impl Behaviour {
    /// The mode's wire name.
    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Online {} => "online",
            Behaviour::Offline { .. } => "offline",
            Behaviour::Blackhole {} => "blackhole",
            Behaviour::Flapping { .. } => "flapping",
            Behaviour::Slow { .. } => "slow",
            Behaviour::AckLoss {} => "ack_loss",
            Behaviour::Reject { .. } => "reject",
            Behaviour::ResetMidFrame {} => "reset_mid_frame",
            Behaviour::Garbage { .. } => "garbage",
            Behaviour::Unavailable {} => "unavailable",
            Behaviour::WrongAck { .. } => "wrong_ack",
            Behaviour::FailNext { .. } => "fail_next",
        }
    }

    /// Whether the behaviour acts after the document was read and parsed, so it can be limited to
    /// one FN's documents.
    pub fn reads_document(&self) -> bool {
        matches!(
            self,
            Behaviour::Reject { .. }
                | Behaviour::Slow { .. }
                | Behaviour::AckLoss {}
                | Behaviour::ResetMidFrame {}
                | Behaviour::WrongAck { .. }
        )
    }

    fn validate(&self) -> Result<(), ModeError> {
        let range = |m: String| Err(ModeError::Range(m));
        match self {
            Behaviour::Slow { delay_ms } if *delay_ms > SLOW_DELAY_MS_MAX => range(format!(
                "slow: delay_ms must be at most {SLOW_DELAY_MS_MAX}"
            )),
            Behaviour::Reject { code: 0 } => {
                range("reject: code must be 1..=255 (0 means accepted)".into())
            }
            Behaviour::Garbage { len } if *len == 0 || *len > GARBAGE_LEN_MAX => {
                range(format!("garbage: len must be 1..={GARBAGE_LEN_MAX}"))
            }
            Behaviour::Flapping {
                online_ms,
                offline_ms,
                jitter_ms,
                ..
            } => {
                if *online_ms == 0
                    || *offline_ms == 0
                    || *online_ms > FLAP_PHASE_MS_MAX
                    || *offline_ms > FLAP_PHASE_MS_MAX
                {
                    return range(format!(
                        "flapping: online_ms and offline_ms must be 1..={FLAP_PHASE_MS_MAX}"
                    ));
                }
                if jitter_ms >= online_ms || jitter_ms >= offline_ms {
                    return range(
                        "flapping: jitter_ms must be smaller than online_ms and offline_ms".into(),
                    );
                }
                Ok(())
            }
            Behaviour::FailNext { count, kind } => {
                if *count == 0 || *count > FAIL_NEXT_COUNT_MAX {
                    return range(format!(
                        "fail_next: count must be 1..={FAIL_NEXT_COUNT_MAX}"
                    ));
                }
                match **kind {
                    Behaviour::Online {}
                    | Behaviour::Flapping { .. }
                    | Behaviour::FailNext { .. } => range(format!(
                        "fail_next: kind `{}` is not a failure",
                        kind.name()
                    )),
                    ref k => k.validate(),
                }
            }
            _ => Ok(()),
        }
    }
}

/// A selected mode plus the knobs every mode shares.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeSpec {
    /// What to do.
    pub behaviour: Behaviour,
    /// Chance (0..=1) that a connection gets the behaviour; otherwise it is served online.
    pub probability: f64,
    /// Seed of every random choice of this mode.
    pub seed: u64,
    /// `fn`: only documents of this FN get the behaviour; the others are served online. Only for
    /// behaviours that read the document first (see [`Behaviour::reads_document`]).
    pub only_fn: Option<String>,
}

impl Default for ModeSpec {
    fn default() -> Self {
        ModeSpec {
            behaviour: Behaviour::Online {},
            probability: 1.0,
            seed: 0,
            only_fn: None,
        }
    }
}

impl ModeSpec {
    /// Parses and validates a `POST /_mock/mode` body.
    pub fn from_json(body: Value) -> Result<ModeSpec, ModeError> {
        let Value::Object(mut map) = body else {
            return Err(ModeError::Shape(
                "the body must be a JSON object with a `mode` field".into(),
            ));
        };
        let probability = match map.remove("probability") {
            None => 1.0,
            Some(v) => v
                .as_f64()
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| ModeError::Range("probability must be a number in 0..=1".into()))?,
        };
        let seed = match map.remove("seed") {
            None => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| ModeError::Range("seed must be an unsigned integer".into()))?,
        };
        let only_fn = match map.remove("fn") {
            None | Some(Value::Null) => None,
            Some(Value::String(f))
                if !f.is_empty() && f.len() <= 16 && f.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(f)
            }
            Some(_) => {
                return Err(ModeError::Range(
                    "fn must be an FN number: 1 to 16 digits, as a string".into(),
                ));
            }
        };
        if !map.contains_key("mode") {
            return Err(ModeError::Shape("missing field `mode`".into()));
        }
        let behaviour: Behaviour = serde_json::from_value(Value::Object(map))
            .map_err(|e| ModeError::Shape(e.to_string()))?;
        behaviour.validate()?;
        if only_fn.is_some() && !behaviour.reads_document() {
            return Err(ModeError::Shape(
                "fn picks documents by their FN, so it applies only to modes that read the document \
                 first: reject, slow, ack_loss, reset_mid_frame, wrong_ack"
                    .into(),
            ));
        }
        Ok(ModeSpec {
            behaviour,
            probability,
            seed,
            only_fn,
        })
    }

    /// The JSON form, as `GET /_mock/mode` shows it.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.behaviour).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.insert("probability".into(), self.probability.into());
            m.insert("seed".into(), self.seed.into());
            if let Some(f) = &self.only_fn {
                m.insert("fn".into(), f.clone().into());
            }
        }
        v
    }
}

/// What to do with one accepted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Store and acknowledge (code 0, or a stored acknowledgement for a duplicate).
    Answer,
    /// Reset at accept.
    Refuse,
    /// Read and never answer.
    Blackhole,
    /// Store, wait, answer.
    Slow { delay_ms: u64 },
    /// Store, close without answering.
    AckLoss,
    /// Answer with this response code, store nothing.
    Reject { code: u8 },
    /// Store, write half the acknowledgement, reset.
    ResetMidFrame,
    /// Answer random bytes, close.
    Garbage { bytes: Vec<u8> },
    /// Close at once.
    Unavailable,
    /// Answer an acknowledgement naming another document in this field, store nothing.
    WrongAck { field: AckField },
}

impl Action {
    /// Name used in the `by_mode` statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Answer => "online",
            Action::Refuse => "offline",
            Action::Blackhole => "blackhole",
            Action::Slow { .. } => "slow",
            Action::AckLoss => "ack_loss",
            Action::Reject { .. } => "reject",
            Action::ResetMidFrame => "reset_mid_frame",
            Action::Garbage { .. } => "garbage",
            Action::Unavailable => "unavailable",
            Action::WrongAck { .. } => "wrong_ack",
        }
    }
}

/// The live mode: the spec plus what it has consumed so far.
#[derive(Debug)]
pub struct ModeEngine {
    spec: ModeSpec,
    since: Instant,
    decisions: u64,
    fail_left: u32,
}

impl ModeEngine {
    /// Starts in `spec` at `now`.
    pub fn new(spec: ModeSpec, now: Instant) -> Self {
        let fail_left = match &spec.behaviour {
            Behaviour::FailNext { count, .. } => *count,
            _ => 0,
        };
        ModeEngine {
            spec,
            since: now,
            decisions: 0,
            fail_left,
        }
    }

    /// The current spec.
    pub fn spec(&self) -> &ModeSpec {
        &self.spec
    }

    /// Failures a `fail_next` still has to deliver.
    pub fn fail_left(&self) -> u32 {
        self.fail_left
    }

    fn flap(&self) -> Option<Flap> {
        match self.spec.behaviour {
            Behaviour::Flapping {
                online_ms,
                offline_ms,
                jitter_ms,
                ..
            } => Some(Flap {
                online_ms,
                offline_ms,
                jitter_ms,
                seed: self.spec.seed,
            }),
            _ => None,
        }
    }

    fn elapsed_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.since).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether the listening socket should be open now.
    pub fn listener_open(&self, now: Instant) -> bool {
        let closes = self.spec.probability >= 1.0;
        match &self.spec.behaviour {
            Behaviour::Offline {
                refuse: Refuse::CloseListener,
            } => !closes,
            Behaviour::Flapping {
                refuse: Refuse::CloseListener,
                ..
            } => !closes || self.flap().is_none_or(|f| f.phase(self.elapsed_ms(now)).0),
            _ => true,
        }
    }

    /// When [`Self::listener_open`] may change next without a new mode being set.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        let f = self.flap()?;
        let (_, next_ms) = f.phase(self.elapsed_ms(now));
        Some(self.since + Duration::from_millis(next_ms))
    }

    /// Decides the fate of the next accepted connection.
    pub fn decide(&mut self, now: Instant) -> Action {
        let n = self.decisions;
        self.decisions += 1;
        // Connection `n` draws from its own stream: first the probability, then any garbage bytes.
        let mut rng = stream(self.spec.seed, Purpose::Connection, n);
        if unit(&mut rng) >= self.spec.probability {
            return Action::Answer;
        }
        let behaviour = self.spec.behaviour.clone();
        match &behaviour {
            Behaviour::Flapping { .. } => {
                let online = self.flap().is_none_or(|f| f.phase(self.elapsed_ms(now)).0);
                if online {
                    Action::Answer
                } else {
                    Action::Refuse
                }
            }
            Behaviour::FailNext { kind, .. } => {
                self.fail_left = self.fail_left.saturating_sub(1);
                if self.fail_left == 0 {
                    // The failures are spent: the mode reads `online` from now on, as promised.
                    self.spec = ModeSpec::default();
                }
                simple_action(kind, &mut rng)
            }
            other => simple_action(other, &mut rng),
        }
    }
}

/// The action of a behaviour that needs no schedule.
fn simple_action(b: &Behaviour, rng: &mut ChaCha8Rng) -> Action {
    match b {
        Behaviour::Online {} | Behaviour::Flapping { .. } | Behaviour::FailNext { .. } => {
            Action::Answer
        }
        Behaviour::Offline { .. } => Action::Refuse,
        Behaviour::Blackhole {} => Action::Blackhole,
        Behaviour::Slow { delay_ms } => Action::Slow {
            delay_ms: *delay_ms,
        },
        Behaviour::AckLoss {} => Action::AckLoss,
        Behaviour::Reject { code } => Action::Reject { code: *code },
        Behaviour::ResetMidFrame {} => Action::ResetMidFrame,
        Behaviour::Garbage { len } => {
            let mut bytes = vec![0u8; *len];
            rng.fill_bytes(&mut bytes);
            Action::Garbage { bytes }
        }
        Behaviour::Unavailable {} => Action::Unavailable,
        Behaviour::WrongAck { field } => Action::WrongAck { field: *field },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ModeSpec, ModeError> {
        ModeSpec::from_json(v)
    }

    #[test]
    fn every_mode_parses_with_defaults() {
        let cases = [
            (json!({"mode":"online"}), Behaviour::Online {}),
            (
                json!({"mode":"offline"}),
                Behaviour::Offline {
                    refuse: Refuse::CloseListener,
                },
            ),
            (
                json!({"mode":"offline","refuse":"reset"}),
                Behaviour::Offline {
                    refuse: Refuse::Reset,
                },
            ),
            (json!({"mode":"blackhole"}), Behaviour::Blackhole {}),
            (
                json!({"mode":"slow","delay_ms":5}),
                Behaviour::Slow { delay_ms: 5 },
            ),
            (json!({"mode":"ack_loss"}), Behaviour::AckLoss {}),
            (json!({"mode":"reject"}), Behaviour::Reject { code: 14 }),
            (
                json!({"mode":"reset_mid_frame"}),
                Behaviour::ResetMidFrame {},
            ),
            (json!({"mode":"garbage"}), Behaviour::Garbage { len: 64 }),
            (json!({"mode":"unavailable"}), Behaviour::Unavailable {}),
            (
                json!({"mode":"fail_next","count":2,"kind":"ack_loss"}),
                Behaviour::FailNext {
                    count: 2,
                    kind: Box::new(Behaviour::AckLoss {}),
                },
            ),
            (
                json!({"mode":"fail_next","count":1,"kind":{"mode":"reject","code":3}}),
                Behaviour::FailNext {
                    count: 1,
                    kind: Box::new(Behaviour::Reject { code: 3 }),
                },
            ),
        ];
        for (body, want) in cases {
            let spec = parse(body.clone()).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(spec.behaviour, want, "{body}");
            assert_eq!(spec.probability, 1.0);
            // The rendered form parses back to the same spec.
            assert_eq!(parse(spec.to_json()), Ok(spec.clone()));
        }
    }

    #[test]
    fn bad_bodies_are_refused_with_a_message() {
        let cases = [
            (json!({"mode":"sideways"}), "unknown variant"),
            (json!({"mode":"online","delay_ms":3}), "unknown field"),
            (json!({"mode":"slow"}), "missing field `delay_ms`"),
            (json!({"mode":"slow","delay_ms":"x"}), "invalid type"),
            (json!({"delay_ms":3}), "missing field `mode`"),
            (json!({"mode":"online","probability":1.5}), "probability"),
            (json!({"mode":"online","seed":-1}), "seed"),
            (json!({"mode":"reject","code":0}), "code"),
            (
                json!({"mode":"flapping","online_ms":10,"offline_ms":10,"jitter_ms":10}),
                "jitter_ms",
            ),
            (
                json!({"mode":"fail_next","count":0,"kind":"ack_loss"}),
                "count",
            ),
            (
                json!({"mode":"fail_next","count":1,"kind":"online"}),
                "not a failure",
            ),
            (
                json!({"mode":"fail_next","count":1,"kind":"bogus"}),
                "in `kind`",
            ),
            (json!([1]), "JSON object"),
        ];
        for (body, needle) in cases {
            let err = parse(body.clone())
                .expect_err(&body.to_string())
                .to_string();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn probability_and_fail_next_are_reproducible() {
        let now = Instant::now();
        let run = |seed: u64| {
            let spec = parse(json!({"mode":"ack_loss","probability":0.5,"seed":seed})).unwrap();
            let mut e = ModeEngine::new(spec, now);
            (0..200)
                .map(|_| e.decide(now) == Action::AckLoss)
                .collect::<Vec<_>>()
        };
        let a = run(42);
        assert_eq!(a, run(42), "the same seed makes the same choices");
        assert_ne!(a, run(43), "another seed makes other choices");
        let hits = a.iter().filter(|x| **x).count();
        assert!((60..=140).contains(&hits), "{hits}");

        // Garbage bytes are seeded too, and differ from one connection to the next.
        let garbage = |seed: u64| {
            let spec = parse(json!({"mode":"garbage","len":16,"seed":seed})).unwrap();
            let mut e = ModeEngine::new(spec, now);
            [e.decide(now), e.decide(now)]
        };
        let g = garbage(5);
        assert_eq!(g, garbage(5));
        assert_ne!(g, garbage(6));
        assert_ne!(g[0], g[1]);

        let spec = parse(json!({"mode":"fail_next","count":2,"kind":"unavailable"})).unwrap();
        let mut e = ModeEngine::new(spec, now);
        assert_eq!(e.decide(now), Action::Unavailable);
        assert_eq!(e.decide(now), Action::Unavailable);
        assert_eq!(e.decide(now), Action::Answer);
        assert_eq!(e.spec().behaviour, Behaviour::Online {});
    }

    #[test]
    fn offline_closes_the_listener_only_when_certain() {
        let now = Instant::now();
        let e = ModeEngine::new(parse(json!({"mode":"offline"})).unwrap(), now);
        assert!(!e.listener_open(now));
        let e = ModeEngine::new(
            parse(json!({"mode":"offline","refuse":"reset"})).unwrap(),
            now,
        );
        assert!(e.listener_open(now));
        let e = ModeEngine::new(
            parse(json!({"mode":"offline","probability":0.5})).unwrap(),
            now,
        );
        assert!(e.listener_open(now));
        let e = ModeEngine::new(
            parse(json!({"mode":"flapping","online_ms":100,"offline_ms":100})).unwrap(),
            now,
        );
        assert!(e.listener_open(now));
        assert!(!e.listener_open(now + Duration::from_millis(150)));
        assert_eq!(e.next_change(now), Some(now + Duration::from_millis(100)));
    }
}

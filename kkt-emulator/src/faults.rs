//! The fault menu: what the control API can arm, and how an armed fault decides whether it fires.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Every fault kind the emulator knows; anything else is rejected by the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// No receipt tape: printing commands fail with 0x6B until `POST /_emu/clear`.
    PaperOut,
    /// Cover open: printing commands fail until `POST /_emu/clear`.
    CoverOpen,
    /// Delay an answer by `ms` milliseconds.
    Slow,
    /// Execute and commit, then hold the answer without sending it (delivered on the next ENQ).
    DropAnswer,
    /// Commit the document, then go silent as if powered off until `POST /_emu/power_on`.
    PowerCutAfterCommit,
    /// NAK a good frame (the command is not executed).
    Nak,
    /// Noise bytes before an answer.
    Garbage,
    /// Corrupt the checksum of one answer (the good one is re-sent on the next ENQ).
    BadLrc,
    /// Refuse the command with error 0x50 (printing previous command).
    Busy,
}

impl FaultKind {
    /// Conditions stay on until cleared; the others fire per command.
    pub fn is_condition(self) -> bool {
        matches!(self, Self::PaperOut | Self::CoverOpen)
    }
}

/// The JSON body of `POST /_emu/fault`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// Which fault.
    pub kind: FaultKind,
    /// Fire on this many matching commands (default 1).
    pub count: Option<u32>,
    /// Fire on each matching command with this probability (needs `seed`), until cleared.
    pub probability: Option<f64>,
    /// Seed of the probability's random stream, so a run can be replayed.
    pub seed: Option<u64>,
    /// Delay for `slow`, milliseconds.
    pub ms: Option<u64>,
    /// Only commands with this code match, in hex: "FF45", "10", "88".
    pub command: Option<String>,
}

/// Why a fault request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct FaultRequestError(pub String);

/// When an armed fault fires.
#[derive(Debug, Clone)]
enum Trigger {
    Count(u32),
    Probability { p: f64, rng: Box<ChaCha8Rng> },
}

/// A fault waiting for a command to hit.
#[derive(Debug, Clone)]
pub struct ArmedFault {
    /// Which fault.
    pub kind: FaultKind,
    /// Delay for `slow`.
    pub ms: u64,
    /// Command filter (1- or 2-byte code as u16: `0xFF45`, `0x0010`).
    pub command: Option<u16>,
    trigger: Trigger,
}

/// A fault as `GET /_emu/state` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FaultView {
    /// Which fault.
    pub kind: FaultKind,
    /// Remaining count, if counted.
    pub remaining: Option<u32>,
    /// Probability, if probabilistic.
    pub probability: Option<f64>,
    /// Delay for `slow`.
    pub ms: Option<u64>,
    /// Command filter in hex.
    pub command: Option<String>,
}

/// Parses a command filter such as "FF45" or "8d".
pub fn parse_command(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 4 || !s.len().is_multiple_of(2) {
        return None;
    }
    let v = u16::from_str_radix(s, 16).ok()?;
    // A two-byte code must start with FF: that is the only prefix the protocol has.
    if s.len() == 4 && v >> 8 != 0xFF {
        return None;
    }
    Some(v)
}

impl FaultRequest {
    /// Checks the combination of fields and turns the request into an armed fault.
    pub fn arm(self) -> Result<ArmedFault, FaultRequestError> {
        let bad = |m: &str| Err(FaultRequestError(m.to_string()));
        if self.kind.is_condition() && (self.count.is_some() || self.probability.is_some()) {
            return bad(
                "paper_out and cover_open are conditions that last until /_emu/clear; count and probability do not apply (`command` starts the condition when that command arrives)",
            );
        }
        match (self.kind, self.ms) {
            (FaultKind::Slow, None) => return bad("slow needs `ms`"),
            (FaultKind::Slow, Some(ms)) if ms > 600_000 => {
                return bad("`ms` must be at most 600000");
            }
            (k, Some(_)) if k != FaultKind::Slow => return bad("`ms` applies only to slow"),
            _ => {}
        }
        let command = match &self.command {
            None => None,
            Some(s) => Some(parse_command(s).ok_or_else(|| {
                FaultRequestError(format!(
                    "`command` {s:?} is not a hex command code like \"FF45\" or \"10\""
                ))
            })?),
        };
        let trigger = match (self.count, self.probability, self.seed) {
            (Some(_), Some(_), _) => return bad("give either `count` or `probability`, not both"),
            (_, None, Some(_)) => return bad("`seed` applies only with `probability`"),
            (Some(0), None, None) => return bad("`count` must be at least 1"),
            (Some(c), None, None) => Trigger::Count(c),
            (None, None, None) => Trigger::Count(1),
            (None, Some(p), seed) => {
                if !(p > 0.0 && p <= 1.0) {
                    return bad("`probability` must be in (0, 1]");
                }
                let Some(seed) = seed else {
                    return bad("`probability` needs a `seed`");
                };
                Trigger::Probability {
                    p,
                    rng: Box::new(ChaCha8Rng::seed_from_u64(seed)),
                }
            }
        };
        Ok(ArmedFault {
            kind: self.kind,
            ms: self.ms.unwrap_or(0),
            command,
            trigger,
        })
    }
}

impl ArmedFault {
    /// Whether this fault matches `cmd`, without deciding whether it fires.
    pub fn matches(&self, cmd: u16) -> bool {
        self.command.is_none_or(|c| c == cmd)
    }

    /// Decides whether the fault fires now, consuming one count if so.
    pub fn fire(&mut self) -> bool {
        match &mut self.trigger {
            Trigger::Count(n) if *n > 0 => {
                *n -= 1;
                true
            }
            Trigger::Count(_) => false,
            Trigger::Probability { p, rng } => rng.random_bool(*p),
        }
    }

    /// Whether the fault can never fire again.
    pub fn spent(&self) -> bool {
        matches!(self.trigger, Trigger::Count(0))
    }

    /// The view for the state endpoint.
    pub fn view(&self) -> FaultView {
        let (remaining, probability) = match &self.trigger {
            Trigger::Count(n) => (Some(*n), None),
            Trigger::Probability { p, .. } => (None, Some(*p)),
        };
        FaultView {
            kind: self.kind,
            remaining,
            probability,
            ms: (self.kind == FaultKind::Slow).then_some(self.ms),
            command: self.command.map(|c| format!("{c:02X}")),
        }
    }
}

/// The armed faults plus the two conditions.
#[derive(Debug, Default)]
pub struct Faults {
    /// Faults waiting to fire, in the order they were armed.
    pub armed: Vec<ArmedFault>,
    /// No receipt tape.
    pub paper_out: bool,
    /// Cover open.
    pub cover_open: bool,
}

/// What the armed faults decided for one command.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// NAK the frame instead of executing it.
    pub nak: bool,
    /// Answer 0x50 without executing.
    pub busy: bool,
    /// Hold the answer.
    pub drop_answer: bool,
    /// Go silent after a commit.
    pub power_cut: bool,
    /// Extra delay before the answer.
    pub slow_ms: u64,
    /// Noise before the answer.
    pub garbage: bool,
    /// Corrupt the answer's LRC once.
    pub bad_lrc: bool,
}

impl Faults {
    /// Arms a fault. A condition switches on at once, or, with a command filter, when that
    /// command arrives ([`Faults::start_conditions`]).
    pub fn arm(&mut self, f: ArmedFault) {
        match f.kind {
            k if k.is_condition() && f.command.is_some() => self.armed.push(f),
            FaultKind::PaperOut => self.paper_out = true,
            FaultKind::CoverOpen => self.cover_open = true,
            _ => self.armed.push(f),
        }
    }

    /// Switches on the conditions armed for command `cmd`, before it executes: the paper runs out
    /// as that command starts printing, so it and every printing command after it fail until
    /// cleared.
    pub fn start_conditions(&mut self, cmd: u16) {
        for f in &self.armed {
            if f.kind.is_condition() && f.matches(cmd) {
                match f.kind {
                    FaultKind::PaperOut => self.paper_out = true,
                    FaultKind::CoverOpen => self.cover_open = true,
                    _ => {}
                }
            }
        }
        self.armed
            .retain(|f| !(f.kind.is_condition() && f.matches(cmd)));
    }

    /// Decides the effects of the faults of `kinds` for command `cmd`, consuming counts.
    ///
    /// The link asks in two steps (before and after execution), so a power cut armed for the
    /// next commit is not consumed by a status command.
    pub fn take(&mut self, cmd: u16, kinds: &[FaultKind], fx: &mut Effects) {
        for f in self.armed.iter_mut() {
            if !kinds.contains(&f.kind) || !f.matches(cmd) || !f.fire() {
                continue;
            }
            match f.kind {
                FaultKind::Nak => fx.nak = true,
                FaultKind::Busy => fx.busy = true,
                FaultKind::DropAnswer => fx.drop_answer = true,
                FaultKind::PowerCutAfterCommit => fx.power_cut = true,
                FaultKind::Slow => fx.slow_ms = fx.slow_ms.max(f.ms),
                FaultKind::Garbage => fx.garbage = true,
                FaultKind::BadLrc => fx.bad_lrc = true,
                FaultKind::PaperOut | FaultKind::CoverOpen => {}
            }
        }
        self.armed.retain(|f| !f.spent());
    }

    /// Whether a power cut is armed that would match `cmd` (checked without consuming it).
    pub fn power_cut_armed_for(&self, cmd: u16) -> bool {
        self.armed
            .iter()
            .any(|f| f.kind == FaultKind::PowerCutAfterCommit && f.command == Some(cmd))
    }

    /// Disarms the power cuts waiting for a commit; returns how many there were.
    pub fn disarm_power_cuts(&mut self) -> usize {
        let before = self.armed.len();
        self.armed
            .retain(|f| f.kind != FaultKind::PowerCutAfterCommit);
        before - self.armed.len()
    }

    /// Clears every fault and condition.
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> Result<ArmedFault, String> {
        let r: FaultRequest = serde_json::from_str(json).map_err(|e| e.to_string())?;
        r.arm().map_err(|e| e.0)
    }

    #[test]
    fn unknown_kind_and_field_are_rejected() {
        assert!(req(r#"{"kind":"meteor"}"#).is_err());
        assert!(req(r#"{"kind":"nak","cuont":2}"#).is_err());
        assert!(req(r#"{"kind":"slow"}"#).is_err());
        assert!(req(r#"{"kind":"nak","ms":5}"#).is_err());
        assert!(req(r#"{"kind":"nak","probability":0.5}"#).is_err());
        assert!(req(r#"{"kind":"paper_out","count":2}"#).is_err());
        assert!(req(r#"{"kind":"paper_out","command":"FF45"}"#).is_ok());
        assert!(req(r#"{"kind":"nak","command":"1245"}"#).is_err());
        assert!(req(r#"{"kind":"nak","count":0}"#).is_err());
    }

    #[test]
    fn counted_fault_fires_exactly_count_times_on_matching_commands() {
        let mut faults = Faults::default();
        faults.arm(req(r#"{"kind":"nak","count":2,"command":"FF45"}"#).expect("arm"));
        let mut fired = 0;
        for cmd in [0x10, 0xFF45, 0x10, 0xFF45, 0xFF45] {
            let mut fx = Effects::default();
            faults.take(cmd, &[FaultKind::Nak], &mut fx);
            fired += usize::from(fx.nak);
        }
        assert_eq!(fired, 2);
        assert!(faults.armed.is_empty());
    }

    #[test]
    fn probabilistic_fault_replays_with_the_same_seed() {
        let run = |seed: u64| {
            let mut faults = Faults::default();
            let body = format!(r#"{{"kind":"garbage","probability":0.5,"seed":{seed}}}"#);
            faults.arm(req(&body).expect("arm"));
            (0..64)
                .map(|_| {
                    let mut fx = Effects::default();
                    faults.take(0x10, &[FaultKind::Garbage], &mut fx);
                    fx.garbage
                })
                .collect::<Vec<_>>()
        };
        let a = run(9);
        assert_eq!(a, run(9), "the same seed fires on the same commands");
        assert_ne!(a, run(10), "another seed fires on others");
        assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
    }

    #[test]
    fn a_condition_armed_for_a_command_starts_when_that_command_arrives() {
        let mut faults = Faults::default();
        faults.arm(req(r#"{"kind":"paper_out","command":"FF45"}"#).unwrap());
        assert!(!faults.paper_out, "not before the command");
        faults.start_conditions(0xFF46);
        assert!(!faults.paper_out, "another command leaves it armed");
        faults.start_conditions(0xFF45);
        assert!(faults.paper_out, "the close starts it");
        assert!(faults.armed.is_empty(), "and it is no longer armed");
        faults.start_conditions(0x10);
        assert!(faults.paper_out, "it lasts until cleared");
        faults.clear();
        assert!(!faults.paper_out);
    }
}

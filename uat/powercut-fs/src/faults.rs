//! The faults a test can inject (power cut modes, failing writes and fsyncs) and the
//! reports and counters the filesystem hands back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How much of the unsynced state survives a power cut.
#[derive(Debug, Clone, PartialEq)]
pub enum CutMode {
    /// Every unsynced write and directory change is lost.
    DropAll,
    /// Background writeback got a seeded random subset of the dirty pages to disk first
    /// (each with probability `fraction`), and a random prefix of the directory changes.
    Writeback { seed: u64, fraction: f64 },
    /// Only a prefix of the last unsynced write to `file` (a path relative to the mount
    /// root, e.g. `db.sqlite-wal`) reached the disk; everything else unsynced is lost.
    TornWrite { file: PathBuf, seed: u64 },
}

impl CutMode {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            CutMode::DropAll => "power_cut",
            CutMode::Writeback { .. } => "writeback",
            CutMode::TornWrite { .. } => "torn_write",
        }
    }
}

/// Which operation an injected failure hits. `Fsync` covers fsync, fdatasync and directory fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOp {
    Write,
    Fsync,
}

/// The error an injected failure returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailErrno {
    #[serde(rename = "ENOSPC")]
    Enospc,
    #[serde(rename = "EIO")]
    Eio,
}

/// When an injected failure fires.
#[derive(Debug, Clone, PartialEq)]
pub enum FailTrigger {
    /// The next `n` calls fail, then the rule expires.
    Count(u64),
    /// Each call fails with this probability, drawn from a generator seeded with `seed`.
    Probability { probability: f64, seed: u64 },
}

/// One failure rule; a new rule for the same operation replaces the old one.
#[derive(Debug, Clone, PartialEq)]
pub struct FailRule {
    pub op: FailOp,
    pub errno: FailErrno,
    pub trigger: FailTrigger,
}

/// A failure rule being applied, with its generator state.
#[derive(Debug)]
pub(crate) struct ActiveRule {
    errno: FailErrno,
    remaining: Option<u64>,
    probability: f64,
    rng: SplitMix64,
}

impl ActiveRule {
    pub(crate) fn new(rule: &FailRule) -> Self {
        let (remaining, probability, seed) = match rule.trigger {
            FailTrigger::Count(n) => (Some(n), 1.0, 0),
            FailTrigger::Probability { probability, seed } => (None, probability, seed),
        };
        Self {
            errno: rule.errno,
            remaining,
            probability,
            rng: SplitMix64::new(seed),
        }
    }

    /// Decides whether this call fails. Returns the errno and whether the rule is used up.
    pub(crate) fn fire(&mut self) -> (Option<FailErrno>, bool) {
        match &mut self.remaining {
            Some(0) => (None, true),
            Some(n) => {
                *n -= 1;
                (Some(self.errno), *n == 0)
            }
            None => {
                let hit = self.rng.next_f64() < self.probability;
                (hit.then_some(self.errno), false)
            }
        }
    }
}

/// A tiny seeded generator (SplitMix64), so a seed means the same choices on every machine
/// and with every version of this crate's dependencies.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, bound); 0 when `bound` is 0.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }
}

/// What a power cut kept and what it threw away.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CutReport {
    pub mode: String,
    pub dropped_pages: u64,
    pub persisted_pages: u64,
    pub undone_entry_changes: u64,
    pub kept_entry_changes: u64,
    /// Undo steps that failed (an entry changed in ways the log cannot reverse); logged.
    pub undo_errors: u64,
    pub torn: Option<TornReport>,
}

/// The write a torn-write cut tore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TornReport {
    pub file: PathBuf,
    pub offset: u64,
    pub len: u64,
    pub kept: u64,
}

/// Counters and the current state, for tests and the runner.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// `live`, `cut` (refusing IO until remounted) or `unmounted`.
    pub state: String,
    pub dirty_files: u64,
    pub dirty_pages: u64,
    pub pending_entry_changes: u64,
    pub writes: u64,
    pub fsyncs: u64,
    pub dir_fsyncs: u64,
    pub cuts: u64,
    pub remounts: u64,
    pub injected_failures: u64,
    /// Sync calls left before an armed `crash_at_fsync` cuts the power.
    pub crash_at_fsync_remaining: Option<u64>,
    pub last_cut: Option<CutReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_rule_fails_exactly_n_calls() {
        let mut rule = ActiveRule::new(&FailRule {
            op: FailOp::Write,
            errno: FailErrno::Enospc,
            trigger: FailTrigger::Count(2),
        });
        assert_eq!(rule.fire(), (Some(FailErrno::Enospc), false));
        assert_eq!(rule.fire(), (Some(FailErrno::Enospc), true));
    }

    #[test]
    fn a_probability_rule_is_reproducible_from_its_seed() {
        let rule = FailRule {
            op: FailOp::Fsync,
            errno: FailErrno::Eio,
            trigger: FailTrigger::Probability {
                probability: 0.3,
                seed: 42,
            },
        };
        let draw = |r: &mut ActiveRule| (0..200).map(|_| r.fire().0.is_some()).collect::<Vec<_>>();
        let first = draw(&mut ActiveRule::new(&rule));
        let second = draw(&mut ActiveRule::new(&rule));
        assert_eq!(first, second);
        let hits = first.iter().filter(|h| **h).count();
        assert!((30..=90).contains(&hits), "hits={hits}");
    }

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First output of SplitMix64 seeded with 0, from the reference implementation.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
    }
}

//! Power-loss vocabulary: a process's data directory on the power-cut filesystem, the steps that
//! cut, remount, fail and heal it, the crash-at-the-Nth-fsync loop, integrity checks and the
//! `power_loss` check.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{KillAt, Probe, Step};
use crate::util::{At, Dur};

/// `data_dir = { powercut = true }` in a `[process.NAME]` table: a data directory for the process,
/// templated as `{{data.NAME}}`. With `powercut = true` it is a `powercut-fs` mount (backing
/// directory and mountpoint inside the scenario folder), mounted before the first process starts
/// and unmounted at the end whatever happens; otherwise a plain directory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataDir {
    /// Mount the power-cut filesystem here, so `power_cut`, `fs_fail` and friends can target it.
    #[serde(default)]
    pub powercut: bool,
}

/// How a `power_cut` treats the writes that were not fsynced.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CutMode {
    /// Drop every unsynced page and directory change.
    #[default]
    DropAll,
    /// Persist a seeded random subset (`fraction`) of dirty pages, then cut.
    Writeback,
    /// Persist a seeded prefix of the last unsynced write to `file`, then cut.
    TornWrite,
}

/// `power_cut = "NAME"`: freeze the processes using NAME's data directory (SIGSTOP), cut the power
/// of the filesystem, SIGKILL them and reap them, as a real outage does. The filesystem then
/// refuses every operation until `remount`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerCutStep {
    pub power_cut: String,
    #[serde(default)]
    pub mode: CutMode,
    /// Seed of `writeback` and `torn_write`; default: drawn from the scenario seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// `writeback`: probability that each dirty page persists (0..=1, default 0.5).
    #[serde(default)]
    pub fraction: Option<f64>,
    /// `torn_write`: the file, relative to the data directory, e.g. `"adapter.db-wal"` (templated).
    #[serde(default)]
    pub file: Option<String>,
    /// `"random"`: cut at a seeded random moment while the NEXT step runs (like a random kill).
    #[serde(default)]
    pub at: Option<KillAt>,
    /// Upper bound of the random delay (default: the next step's own time limit).
    #[serde(default)]
    pub within: Option<Dur>,
    #[serde(default)]
    pub name: Option<String>,
}

impl PowerCutStep {
    /// True for `at = "random"`.
    pub fn is_random(&self) -> bool {
        self.at == Some(KillAt::Random)
    }
}

/// `remount = "NAME"`: the reboot after a cut (or a clean remount without one). Processes still
/// using the mount after a crash at an fsync are SIGKILLed first.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemountStep {
    pub remount: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// Which filesystem call `fs_fail` makes fail.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FsOp {
    Write,
    Fsync,
}

/// The error `fs_fail` returns.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
pub enum Errno {
    /// Disk full.
    ENOSPC,
    /// I/O error.
    EIO,
}

/// `fs_fail = "NAME"`: `op` calls on NAME's data directory fail with `errno`, the next `count`
/// times, or each with `probability` drawn from `seed`, until `heal`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsFailStep {
    pub fs_fail: String,
    pub op: FsOp,
    pub errno: Errno,
    /// The next `count` calls fail (exclusive with `probability`).
    #[serde(default)]
    pub count: Option<u64>,
    /// Each call fails with this probability (0..=1), drawn from `seed`.
    #[serde(default)]
    pub probability: Option<f64>,
    /// Seed of `probability` (default: drawn from the scenario seed).
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `heal = "NAME"`: remove every failure rule and an armed crash (does not undo a cut).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealStep {
    pub heal: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `crash_at_fsync = "NAME"`: either arm a crash at the `n`th fsync from now, or, with `steps`,
/// SQLite's own crash loop: for N = 1, 2, ... arm N, run `steps` (`{{i}}` = N); when the crash
/// hit, SIGKILL the processes using the mount, remount and run `recover`; stop at the first N
/// whose `steps` finish without reaching the Nth fsync, failing after `n_max`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrashAtFsyncStep {
    pub crash_at_fsync: String,
    /// Arm once, at this fsync (exclusive with `steps`).
    #[serde(default)]
    pub n: Option<u64>,
    /// The operation run for each N; a step failing because the crash hit ends that attempt.
    #[serde(default)]
    pub steps: Vec<At<Step>>,
    /// Run after each hit, once the mount is back (restart, integrity check, retry ...).
    #[serde(default)]
    pub recover: Vec<At<Step>>,
    /// Most attempts of the loop (default 100).
    #[serde(default)]
    pub n_max: Option<u32>,
    #[serde(default)]
    pub name: Option<String>,
}

/// Attempts of a crash loop when `n_max` is not given.
pub const CRASH_LOOP_MAX: u32 = 100;

/// `integrity_check = "NAME"`: `PRAGMA integrity_check` on the process's `db`, read-only; it must
/// answer `ok`. Counted by the `power_loss` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrityStep {
    pub integrity_check: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// `power_loss = "LIST"`: the figure of a power-loss scenario, over the history and final probes:
/// `cycles` (power cuts that happened), `acked_missing` (items acknowledged through `append.LIST`
/// that `observe` no longer shows), `integrity_ok` (integrity checks that answered ok, of all run,
/// including the final ones in `integrity`) and `double_fiscalized` (values that `fiscal` shows
/// more than once). Fails unless acked_missing = 0, every integrity check ok, double_fiscalized = 0
/// and cycles >= `cycles_min`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerLossCheck {
    pub power_loss: String,
    /// Where acknowledged items must still be: an http probe (with `ids`) or an sql probe whose
    /// first column holds the ids, e.g. `{ sql = "SELECT idempotency_key FROM receipts", db = "adapter" }`.
    pub observe: Probe,
    /// JSONPath of the ids in an http `observe` response.
    #[serde(default)]
    pub ids: Option<String>,
    /// The ground truth of fiscal documents, e.g. `"GET kkt-control /_emu/journal"` (http or sql).
    #[serde(default)]
    pub fiscal: Option<Probe>,
    /// JSONPath of the values that must be unique in an http `fiscal` response, e.g.
    /// `"$.documents[*].tag_1192"` (nulls are ignored).
    #[serde(default)]
    pub fiscal_ids: Option<String>,
    /// Processes whose `db` gets a final read-only integrity check.
    #[serde(default)]
    pub integrity: Vec<String>,
    /// Fewest power cuts the scenario must have made (default 1), so a scenario whose cuts never
    /// happened cannot pass.
    #[serde(default = "one")]
    pub cycles_min: u32,
}

fn one() -> u32 {
    1
}

/// `[scenario] expect`: whether the scenario is meant to pass or to fail (a negative control).
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExpectOutcome {
    #[default]
    Pass,
    /// A negative control: it passes when its steps pass and a check fails, and is reported as
    /// an expected failure with the failing figure. Passing checks (or a failing step) fail it.
    Fail,
}

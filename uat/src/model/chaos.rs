//! The `[chaos]` table: weighted fault actions at seeded random moments, an optional background
//! load, healing steps and a liveness probe that must hold once the faults stop.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Step, WaitStep};
use crate::util::{At, Dur};

/// `[chaos]`: runs after the steps and before the checks.
///
/// The schedule (which action, at which offset) is drawn from the seed alone before the first
/// action, so the same seed always yields the same action sequence, however long actions take.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Chaos {
    /// Seed used when `uat run` gets no `--seed`; without either a fresh seed is drawn. The
    /// seed in use is printed, and `uat run --seed S` replays the same schedule.
    #[serde(default)]
    pub seed: Option<u64>,
    /// How long faults are injected: actions are planned at offsets below this.
    pub duration: Dur,
    /// Time between two actions, drawn uniformly from `min..=max`.
    pub interval: Interval,
    /// The fault actions, chosen with probability proportional to `weight`.
    pub action: Vec<At<Action>>,
    /// Requests repeated in the background while the faults run.
    #[serde(default)]
    pub load: Option<At<Load>>,
    /// Steps run once after the faults stopped and the load ended, e.g. the OFD back online.
    #[serde(default)]
    pub heal: Vec<At<Step>>,
    /// Must hold within its `timeout` after healing, e.g. the backlog drained.
    pub liveness: At<WaitStep>,
}

/// `{ min = "100ms", max = "1s" }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    pub min: Dur,
    pub max: Dur,
}

/// One `[[chaos.action]]`: a named, weighted step list such as kill + start, or pause + sleep + resume.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Recorded in history.jsonl for every time the action runs.
    pub name: String,
    /// Relative probability (at least 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// The steps, any kind; a failing step fails the scenario.
    pub steps: Vec<At<Step>>,
}

fn one() -> u32 {
    1
}

/// `[chaos.load]`: `steps` (http and sleep only) repeated with `{{i}}` = 1, 2, ... until the faults stop.
///
/// Load requests never fail the scenario by themselves: requests that got no answer are recorded
/// as indeterminate, refused or unexpected answers as failed, and only acknowledged ones (the step
/// completed and its expectations held) count for `exactly_once`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Pause between two iterations.
    #[serde(default = "default_load_interval")]
    pub interval: Dur,
    pub steps: Vec<At<Step>>,
}

fn default_load_interval() -> Dur {
    Dur(Duration::from_millis(20))
}

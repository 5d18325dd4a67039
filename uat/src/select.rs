//! Which loaded scenarios `uat run` runs: the `--tag` filter, `nightly` left out of directory
//! searches, and the message for a selection that matches nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::load::Scenario;
use crate::paths::same_file_key;

/// The tag of long scenarios: found by searching a directory, such a scenario runs only when
/// `--tag nightly` is given. A file named on the command line runs whatever its tags are, because
/// the user asked for that file.
pub const NIGHTLY_TAG: &str = "nightly";

/// The outcome of a selection: what runs, and what is reported as skipped.
#[derive(Debug, Default)]
pub struct Selection {
    /// Scenarios to run, in load order.
    pub selected: Vec<Scenario>,
    /// Scenarios left out by `--tag` or by the nightly rule; JUnit lists them as skipped.
    pub skipped: Vec<Scenario>,
    /// Of the skipped, those left out only because they are `nightly` and came from a directory.
    pub nightly_left_out: usize,
}

/// Splits `scenarios` into selected and skipped.
///
/// `named` are the paths given on the command line that are files (not directories); a scenario
/// loaded from one of them counts as named even if a directory search found it too (paths are
/// compared as files, not as strings). `tags` are the `--tag` values: empty selects every
/// eligible scenario, else those carrying any of them.
pub fn select(scenarios: Vec<Scenario>, named: &[PathBuf], tags: &[String]) -> Selection {
    let nightly_asked = tags.iter().any(|t| t == NIGHTLY_TAG);
    let named: Vec<PathBuf> = named.iter().map(|p| same_file_key(p)).collect();
    let mut out = Selection::default();
    for s in scenarios {
        let own = &s.file.scenario.tags;
        let eligible = nightly_asked
            || !own.iter().any(|t| t == NIGHTLY_TAG)
            || named.contains(&same_file_key(&s.path));
        let tagged = tags.is_empty() || own.iter().any(|t| tags.contains(t));
        if eligible && tagged {
            out.selected.push(s);
        } else {
            if tagged {
                out.nightly_left_out += 1;
            }
            out.skipped.push(s);
        }
    }
    out
}

/// The explanation printed when a selection is empty: what was asked and which tags exist.
pub fn nothing_selected(paths: &[PathBuf], tags: &[String], sel: &Selection) -> String {
    let where_ = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let total = sel.selected.len() + sel.skipped.len();
    if total == 0 {
        return format!("uat: no scenario selected: no scenario files under {where_}");
    }
    let asked = if tags.is_empty() {
        "no --tag".to_owned()
    } else {
        tags.iter()
            .map(|t| format!("--tag {t}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &sel.skipped {
        for t in &s.file.scenario.tags {
            *counts.entry(t.as_str()).or_default() += 1;
        }
    }
    let present = if counts.is_empty() {
        "none".to_owned()
    } else {
        counts
            .iter()
            .map(|(t, n)| format!("{t} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut msg = format!(
        "uat: no scenario selected: {asked} matches none of the {total} scenarios under {where_}\n\
         uat: tags present: {present}"
    );
    if sel.nightly_left_out > 0 {
        msg.push_str(&format!(
            "\nuat: {} `{NIGHTLY_TAG}` scenarios found in a directory run only with --tag {NIGHTLY_TAG} \
             (or when their file is named)",
            sel.nightly_left_out
        ));
    }
    msg
}

/// The `--tag` values no loaded scenario carries (likely typos), in the order given.
pub fn unknown_tags<'a>(scenarios: &[Scenario], tags: &'a [String]) -> Vec<&'a str> {
    tags.iter()
        .filter(|t| !scenarios.iter().any(|s| s.file.scenario.tags.contains(t)))
        .map(String::as_str)
        .collect()
}

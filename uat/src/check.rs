//! Checks over the recorded history; `exactly_once` classifies each item as once, lost, duplicated or unexpected.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::history::{Event, Outcome, Phase};

/// The verdict of an `exactly_once` check for one list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Classification {
    pub acknowledged: usize,
    pub once: Vec<String>,
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub unexpected: Vec<String>,
    /// Items of operations that may or may not have happened, and how each was resolved.
    pub indeterminate: Vec<String>,
}

impl Classification {
    /// True when nothing was lost, duplicated or unexpected.
    pub fn is_ok(&self) -> bool {
        self.lost.is_empty() && self.duplicated.is_empty() && self.unexpected.is_empty()
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acknowledged={} once={} lost={} duplicated={} unexpected={} indeterminate={}",
            self.acknowledged,
            self.once.len(),
            self.lost.len(),
            self.duplicated.len(),
            self.unexpected.len(),
            self.indeterminate.len()
        )?;
        for (what, ids) in [
            ("lost", &self.lost),
            ("duplicated", &self.duplicated),
            ("unexpected", &self.unexpected),
        ] {
            if !ids.is_empty() {
                let shown: Vec<&str> = ids.iter().take(20).map(String::as_str).collect();
                write!(f, "; {what}: {}", shown.join(", "))?;
                if ids.len() > 20 {
                    write!(f, " and {} more", ids.len() - 20)?;
                }
            }
        }
        Ok(())
    }
}

/// An id as compared: strings as they are, anything else as its JSON text.
pub fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The fate of one item of an `exactly_once` list, as the report's timeline colours its tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Acknowledged and observed exactly once.
    Once,
    /// Acknowledged and never observed.
    Lost,
    /// Observed more than once.
    Duplicated,
    /// Its operation may or may not have happened (cut off), and it was not observed twice.
    Indeterminate,
}

impl Fate {
    /// The name used in the report (`once`, `lost`, `duplicated`, `indeterminate`).
    pub fn name(self) -> &'static str {
        match self {
            Fate::Once => "once",
            Fate::Lost => "lost",
            Fate::Duplicated => "duplicated",
            Fate::Indeterminate => "indeterminate",
        }
    }
}

/// One item of an `exactly_once` list at the moment its operation completed, with its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// When the operation completed, ms since the scenario started.
    pub t_ms: u64,
    pub list: String,
    /// The item id; None for a cut-off request whose id was to come from the response.
    pub id: Option<String>,
    pub fate: Fate,
}

/// Classifies the items appended to `list` in the history against the `observed` ids.
///
/// Acknowledged items (operation completed ok) must be observed exactly once. Items of
/// indeterminate operations may be observed once or not at all; an indeterminate operation whose
/// id was unknown (it was to come from the response) may explain one otherwise unexpected id.
pub fn exactly_once(history: &[Event], list: &str, observed: &[Value]) -> Classification {
    exactly_once_ticks(history, list, observed).0
}

/// [`exactly_once`], and the fate of each acknowledged or indeterminate item at the time its
/// operation completed (an id acknowledged twice is one item, ticked at its first completion).
pub fn exactly_once_ticks(
    history: &[Event],
    list: &str,
    observed: &[Value],
) -> (Classification, Vec<Tick>) {
    let mut acked: Vec<(String, u64)> = Vec::new();
    let mut maybe: Vec<(String, u64)> = Vec::new();
    let mut anonymous: Vec<u64> = Vec::new();
    for ev in history.iter().filter(|e| e.phase == Phase::Complete) {
        for item in ev.items.iter().filter(|i| i.list == list) {
            match (ev.outcome, &item.id) {
                (Some(Outcome::Ok), Some(id)) => acked.push((id_text(id), ev.t_ms)),
                (Some(Outcome::Indeterminate), Some(id)) => maybe.push((id_text(id), ev.t_ms)),
                (Some(Outcome::Indeterminate), None) => anonymous.push(ev.t_ms),
                _ => {}
            }
        }
    }
    let mut ticks = Vec::new();
    let mut tick = |t_ms: u64, id: Option<&str>, fate: Fate| {
        ticks.push(Tick {
            t_ms,
            list: list.to_owned(),
            id: id.map(str::to_owned),
            fate,
        });
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in observed {
        *counts.entry(id_text(v)).or_default() += 1;
    }
    let mut c = Classification {
        acknowledged: acked.len(),
        ..Classification::default()
    };
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    for (id, t) in &acked {
        if seen.insert(id.clone(), ()).is_some() {
            // The same id acknowledged twice is one item; the scenario reuses an idempotency key.
            continue;
        }
        match counts.remove(id).unwrap_or(0) {
            0 => {
                c.lost.push(id.clone());
                tick(*t, Some(id), Fate::Lost);
            }
            1 => {
                c.once.push(id.clone());
                tick(*t, Some(id), Fate::Once);
            }
            n => {
                c.duplicated.push(format!("{id} (x{n})"));
                tick(*t, Some(id), Fate::Duplicated);
            }
        }
    }
    for (id, t) in &maybe {
        if seen.insert(id.clone(), ()).is_some() {
            continue;
        }
        match counts.remove(id).unwrap_or(0) {
            0 => c.indeterminate.push(format!("{id} (not applied)")),
            1 => c.indeterminate.push(format!("{id} (applied)")),
            n => {
                c.duplicated.push(format!("{id} (x{n})"));
                tick(*t, Some(id), Fate::Duplicated);
                continue;
            }
        }
        tick(*t, Some(id), Fate::Indeterminate);
    }
    for t in &anonymous {
        tick(*t, None, Fate::Indeterminate);
    }
    let mut anonymous = anonymous.len();
    for (id, n) in counts {
        if anonymous > 0 && n == 1 {
            anonymous -= 1;
            c.indeterminate
                .push(format!("{id} (applied, id from a cut-off response)"));
        } else if n > 1 {
            c.duplicated
                .push(format!("{id} (x{n}, never acknowledged)"));
        } else {
            c.unexpected.push(id);
        }
    }
    ticks.sort_by_key(|t| t.t_ms);
    (c, ticks)
}

/// The figure of a `power_loss` check.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PowerLoss {
    /// Power cuts that happened (`power_cut` events that completed ok, random, scheduled or a
    /// crash at an fsync).
    pub cycles: usize,
    /// Distinct items acknowledged through the list.
    pub acked: usize,
    /// Acknowledged items the observation no longer shows.
    pub acked_missing: Vec<String>,
    /// Integrity checks that answered `ok`, and all that ran.
    pub integrity_ok: usize,
    pub integrity_total: usize,
    /// Fiscal ids seen more than once, with their count.
    pub double_fiscalized: Vec<String>,
    /// The `cycles_min` of the check.
    pub cycles_min: usize,
    /// Items definitely refused (answered `definite: true`) and never acknowledged later.
    pub refused: usize,
    /// Refused items the observation shows anyway: the answer lied.
    pub refused_applied: Vec<String>,
}

impl PowerLoss {
    /// True when nothing acknowledged is missing, every integrity check held, nothing was
    /// fiscalized twice and enough power cuts happened.
    pub fn is_ok(&self) -> bool {
        self.acked_missing.is_empty()
            && self.integrity_ok == self.integrity_total
            && self.double_fiscalized.is_empty()
            && self.refused_applied.is_empty()
            && self.cycles >= self.cycles_min
    }
}

impl fmt::Display for PowerLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cycles={}, acked={}, acked_missing={}, integrity_ok={}/{}, double_fiscalized={}",
            self.cycles,
            self.acked,
            self.acked_missing.len(),
            self.integrity_ok,
            self.integrity_total,
            self.double_fiscalized.len()
        )?;
        if self.refused > 0 {
            write!(
                f,
                ", refused={} (applied {})",
                self.refused,
                self.refused_applied.len()
            )?;
        }
        if self.cycles < self.cycles_min {
            write!(f, "; fewer cycles than cycles_min={}", self.cycles_min)?;
        }
        for (what, ids) in [
            ("missing", &self.acked_missing),
            ("fiscalized twice", &self.double_fiscalized),
            ("refused definitely but applied", &self.refused_applied),
        ] {
            if !ids.is_empty() {
                let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
                write!(f, "; {what}: {}", shown.join(", "))?;
                if ids.len() > 10 {
                    write!(f, " and {} more", ids.len() - 10)?;
                }
            }
        }
        Ok(())
    }
}

/// Computes the `power_loss` figure from the history, the observed ids, the fiscal ids (nulls
/// ignored) and the results of the final integrity checks.
pub fn power_loss(
    history: &[Event],
    list: &str,
    observed: &[Value],
    fiscal: &[Value],
    final_integrity: &[bool],
) -> PowerLoss {
    let done = || history.iter().filter(|e| e.phase == Phase::Complete);
    let cycles = done()
        .filter(|e| e.kind == "power_cut" && e.outcome == Some(Outcome::Ok))
        .count();
    let integrity: Vec<bool> = done()
        .filter(|e| e.kind == "integrity_check")
        .map(|e| e.outcome == Some(Outcome::Ok))
        .chain(final_integrity.iter().copied())
        .collect();
    let mut acked: Vec<String> = done()
        .filter(|e| e.outcome == Some(Outcome::Ok))
        .flat_map(|e| e.items.iter().filter(|i| i.list == list))
        .filter_map(|i| i.id.as_ref().map(id_text))
        .collect();
    acked.sort();
    acked.dedup();
    let mut refused: Vec<String> = done()
        .filter(|e| e.outcome == Some(Outcome::Fail))
        .flat_map(|e| e.items.iter().filter(|i| i.list == list))
        .filter_map(|i| i.id.as_ref().map(id_text))
        .filter(|id| acked.binary_search(id).is_err())
        .collect();
    refused.sort();
    refused.dedup();
    let seen: std::collections::BTreeSet<String> = observed.iter().map(id_text).collect();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in fiscal.iter().filter(|v| !v.is_null()) {
        *counts.entry(id_text(v)).or_default() += 1;
    }
    PowerLoss {
        cycles,
        acked: acked.len(),
        acked_missing: acked.into_iter().filter(|a| !seen.contains(a)).collect(),
        integrity_ok: integrity.iter().filter(|ok| **ok).count(),
        integrity_total: integrity.len(),
        double_fiscalized: counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(id, n)| format!("{id} (x{n})"))
            .collect(),
        cycles_min: 0,
        refused: refused.len(),
        refused_applied: refused.into_iter().filter(|r| seen.contains(r)).collect(),
    }
}

/// Finds the first forbidden substring in a log text; returns (line number, line).
pub fn find_forbidden<'a>(
    text: &'a str,
    forbid: &'a [String],
) -> Option<(usize, &'a str, &'a str)> {
    for (n, line) in text.lines().enumerate() {
        for f in forbid {
            if line.contains(f.as_str()) {
                return Some((n + 1, f.as_str(), line));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Item, parse_jsonl};
    use serde_json::json;

    fn ev(outcome: Outcome, id: Option<&str>) -> Event {
        Event {
            t_ms: 0,
            phase: Phase::Complete,
            step: "1".into(),
            kind: "http".into(),
            detail: String::new(),
            outcome: Some(outcome),
            items: vec![Item {
                list: "receipts".into(),
                id: id.map(Value::from),
            }],
        }
    }

    fn event(kind: &str, outcome: Outcome, id: Option<&str>) -> Event {
        Event {
            kind: kind.into(),
            ..ev(outcome, id)
        }
    }

    #[test]
    fn power_loss_counts_cycles_missing_integrity_and_doubles() {
        let history = vec![
            event("http", Outcome::Ok, Some("s1")),
            event("http", Outcome::Ok, Some("s2")),
            event("http", Outcome::Indeterminate, Some("s3")),
            event("power_cut", Outcome::Ok, None),
            event("power_cut", Outcome::Fail, None),
            event("integrity_check", Outcome::Ok, None),
            event("integrity_check", Outcome::Fail, None),
            event("http", Outcome::Fail, Some("s4")),
            event("http", Outcome::Fail, Some("s5")),
        ];
        let fiscal = [json!("a"), json!(null), json!(null), json!("b"), json!("a")];
        let mut p = power_loss(
            &history,
            "receipts",
            &[json!("s1"), json!("s4")],
            &fiscal,
            &[true],
        );
        p.cycles_min = 2;
        assert!(!p.is_ok());
        assert_eq!(
            p.to_string(),
            "cycles=1, acked=2, acked_missing=1, integrity_ok=2/3, double_fiscalized=1, \
             refused=2 (applied 1); fewer cycles than cycles_min=2; missing: s2; \
             fiscalized twice: a (x2); refused definitely but applied: s4"
        );
        let clean = power_loss(
            &history[..4],
            "receipts",
            &[json!("s1"), json!("s2")],
            &[],
            &[],
        );
        assert!(clean.is_ok(), "{clean}");
        assert_eq!(
            clean.to_string(),
            "cycles=1, acked=2, acked_missing=0, integrity_ok=0/0, double_fiscalized=0"
        );
    }

    #[test]
    fn negative_control_reports_lost_and_duplicated() {
        let history = vec![
            ev(Outcome::Ok, Some("a")),
            ev(Outcome::Ok, Some("b")),
            ev(Outcome::Ok, Some("c")),
        ];
        let c = exactly_once(&history, "receipts", &[json!("a"), json!("b"), json!("b")]);
        assert!(!c.is_ok());
        assert_eq!(c.once, vec!["a"]);
        assert_eq!(c.lost, vec!["c"]);
        assert_eq!(c.duplicated, vec!["b (x2)"]);
        assert_eq!(
            c.to_string(),
            "acknowledged=3 once=1 lost=1 duplicated=1 unexpected=0 indeterminate=0; lost: c; duplicated: b (x2)"
        );
    }

    #[test]
    fn ticks_carry_each_items_fate_at_its_completion() {
        let mut history = vec![
            ev(Outcome::Ok, Some("a")),
            ev(Outcome::Ok, Some("b")),
            ev(Outcome::Ok, Some("c")),
            ev(Outcome::Indeterminate, Some("d")),
            ev(Outcome::Fail, Some("e")),
        ];
        for (t, e) in history.iter_mut().enumerate() {
            e.t_ms = 10 * t as u64;
        }
        let (c, ticks) =
            exactly_once_ticks(&history, "receipts", &[json!("a"), json!("b"), json!("b")]);
        assert_eq!(
            c,
            exactly_once(&history, "receipts", &[json!("a"), json!("b"), json!("b")])
        );
        let got: Vec<(u64, Option<&str>, Fate)> = ticks
            .iter()
            .map(|t| (t.t_ms, t.id.as_deref(), t.fate))
            .collect();
        assert_eq!(
            got,
            [
                (0, Some("a"), Fate::Once),
                (10, Some("b"), Fate::Duplicated),
                (20, Some("c"), Fate::Lost),
                (30, Some("d"), Fate::Indeterminate),
            ]
        );
    }

    #[test]
    fn history_file_round_trip_feeds_the_check() {
        let text = r#"{"t_ms":1,"type":"invoke","step":"1","kind":"http","detail":"POST a /r"}
{"t_ms":2,"type":"complete","step":"1","kind":"http","detail":"200","outcome":"ok","items":[{"list":"receipts","id":"r1"}]}
{"t_ms":3,"type":"complete","step":"2","kind":"http","detail":"200","outcome":"ok","items":[{"list":"receipts","id":"r2"}]}
"#;
        let h = parse_jsonl(text).unwrap();
        let c = exactly_once(&h, "receipts", &[json!("r1"), json!("r1"), json!("x9")]);
        assert_eq!(c.lost, vec!["r2"]);
        assert_eq!(c.duplicated, vec!["r1 (x2)"]);
        assert_eq!(c.unexpected, vec!["x9"]);
    }

    #[test]
    fn indeterminate_items_may_go_either_way_but_not_twice() {
        let history = vec![
            ev(Outcome::Ok, Some("a")),
            ev(Outcome::Indeterminate, Some("b")),
            ev(Outcome::Indeterminate, Some("c")),
            ev(Outcome::Indeterminate, None),
            ev(Outcome::Fail, Some("d")),
        ];
        let ok = exactly_once(&history, "receipts", &[json!("a"), json!("b"), json!("z")]);
        assert!(ok.is_ok(), "{ok}");
        assert_eq!(ok.indeterminate.len(), 3);
        let dup = exactly_once(&history, "receipts", &[json!("a"), json!("c"), json!("c")]);
        assert_eq!(dup.duplicated, vec!["c (x2)"]);
        let unexpected = exactly_once(&history[..3], "receipts", &[json!("a"), json!("d")]);
        assert_eq!(unexpected.unexpected, vec!["d"]);
    }
}

//! Checks over the recorded history; `exactly_once` classifies each item as once, lost, duplicated or unexpected.

use std::collections::BTreeMap;
use std::fmt;

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

/// Classifies the items appended to `list` in the history against the `observed` ids.
///
/// Acknowledged items (operation completed ok) must be observed exactly once. Items of
/// indeterminate operations may be observed once or not at all; an indeterminate operation whose
/// id was unknown (it was to come from the response) may explain one otherwise unexpected id.
pub fn exactly_once(history: &[Event], list: &str, observed: &[Value]) -> Classification {
    let mut acked: Vec<String> = Vec::new();
    let mut maybe: Vec<String> = Vec::new();
    let mut anonymous = 0usize;
    for ev in history.iter().filter(|e| e.phase == Phase::Complete) {
        for item in ev.items.iter().filter(|i| i.list == list) {
            match (ev.outcome, &item.id) {
                (Some(Outcome::Ok), Some(id)) => acked.push(id_text(id)),
                (Some(Outcome::Indeterminate), Some(id)) => maybe.push(id_text(id)),
                (Some(Outcome::Indeterminate), None) => anonymous += 1,
                _ => {}
            }
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in observed {
        *counts.entry(id_text(v)).or_default() += 1;
    }
    let mut c = Classification {
        acknowledged: acked.len(),
        ..Classification::default()
    };
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    for id in &acked {
        if seen.insert(id.clone(), ()).is_some() {
            // The same id acknowledged twice is one item; the scenario reuses an idempotency key.
            continue;
        }
        match counts.remove(id).unwrap_or(0) {
            0 => c.lost.push(id.clone()),
            1 => c.once.push(id.clone()),
            n => c.duplicated.push(format!("{id} (x{n})")),
        }
    }
    for id in &maybe {
        if seen.insert(id.clone(), ()).is_some() {
            continue;
        }
        match counts.remove(id).unwrap_or(0) {
            0 => c.indeterminate.push(format!("{id} (not applied)")),
            1 => c.indeterminate.push(format!("{id} (applied)")),
            n => c.duplicated.push(format!("{id} (x{n})")),
        }
    }
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
    c
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

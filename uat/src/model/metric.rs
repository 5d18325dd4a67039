//! The `metric` step: one series of a Prometheus `GET /metrics` exposition, compared with numbers
//! or with values saved by an earlier `metric` step (`save_as`), so "the backlog rose while the
//! OFD was offline, and fell after" is two steps.

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de;

use crate::util::{Dur, NamedMap};

/// `metric = "NAME"`: scrapes `GET /metrics` on an adapter's port (with the admin token), picks the
/// one series named NAME whose labels include `labels`, and checks its value against every
/// comparison given. Without a comparison it checks that the series is present.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricStep {
    /// The series name as exposed, e.g. `adapter_backlog_documents` or `adapter_receipts_total`.
    pub metric: String,
    /// The port name to scrape; by default the listen port of the scenario's only adapter.
    #[serde(default)]
    pub port: Option<String>,
    /// Label values the series must have (templated); other labels may be present. Exactly one
    /// series may match.
    #[serde(default)]
    pub labels: NamedMap<String>,
    /// Equal to.
    #[serde(default)]
    pub eq: Option<Bound>,
    /// Greater than.
    #[serde(default)]
    pub gt: Option<Bound>,
    /// Greater than or equal to.
    #[serde(default)]
    pub gte: Option<Bound>,
    /// Less than.
    #[serde(default)]
    pub lt: Option<Bound>,
    /// Less than or equal to.
    #[serde(default)]
    pub lte: Option<Bound>,
    /// Saves the value observed (once the comparisons hold) as `{{NAME}}`, for a later bound such
    /// as `gt = "{{NAME}}"`.
    #[serde(default)]
    pub save_as: Option<String>,
    /// Scrape again every `interval` until the comparisons hold, for at most this long; without
    /// it the step scrapes once.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Time between two scrapes when `timeout` is given (default 100ms).
    #[serde(default)]
    pub interval: Option<Dur>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A comparison operand: a number, or a template naming a saved value (`"{{backlog_offline}}"`).
#[derive(Debug, Clone, JsonSchema)]
#[schemars(untagged)]
pub enum Bound {
    Number(f64),
    Template(String),
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Bound;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a saved value such as \"{{backlog_offline}}\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bound, E> {
                Ok(Bound::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bound, E> {
                Ok(Bound::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bound, E> {
                Ok(Bound::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bound, E> {
                Ok(Bound::Template(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

impl MetricStep {
    /// The comparisons given, by operator.
    pub fn comparisons(&self) -> Vec<(&'static str, &Bound)> {
        [
            ("eq", &self.eq),
            ("gt", &self.gt),
            ("gte", &self.gte),
            ("lt", &self.lt),
            ("lte", &self.lte),
        ]
        .into_iter()
        .filter_map(|(op, b)| b.as_ref().map(|b| (op, b)))
        .collect()
    }

    /// `name{label="value",...}` as written in the step.
    pub fn series(&self) -> String {
        if self.labels.is_empty() {
            return self.metric.clone();
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}{{{}}}", self.metric, labels.join(","))
    }
}

/// Does `value` satisfy `op bound`?
pub fn holds(op: &str, value: f64, bound: f64) -> bool {
    match op {
        "eq" => value == bound,
        "gt" => value > bound,
        "gte" => value >= bound,
        "lt" => value < bound,
        _ => value <= bound,
    }
}

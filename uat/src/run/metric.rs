//! The `metric` step: scrape `GET /metrics` (the admin token goes with it, as with every request
//! to an adapter), pick one series, compare, and save the value for a later step.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Runner;
use crate::metrics;
use crate::model::{Bound, MetricStep, RequestParts, holds};
use crate::probe;
use crate::step_error::{Mismatch, StepError};
use crate::template::TemplateError;
use crate::util::{Dur, NamedMap};

/// Time between scrapes when a `metric` step polls and gives no `interval`.
const INTERVAL_DEFAULT: Duration = Duration::from_millis(100);
/// Time limit of one scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// A number as a template value: integral values without a fraction, so `{{n}}` reads `3`.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

impl Runner<'_> {
    pub(super) fn metric(&mut self, m: &MetricStep) -> Result<String, StepError> {
        let port = match &m.port {
            Some(p) => p.clone(),
            None => self
                .sc
                .adapters
                .values()
                .next()
                .cloned()
                .ok_or(StepError::NoAdapter)?,
        };
        let started = Instant::now();
        let end = self
            .deadline
            .min(started + m.timeout.map_or(Duration::ZERO, |t| t.0));
        let interval = m
            .interval
            .map_or(INTERVAL_DEFAULT, |d| d.0.max(Duration::from_millis(1)));
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            let why = match self.metric_once(&port, m) {
                Ok((value, detail)) => {
                    if let Some(name) = &m.save_as {
                        self.vars.captures.insert(name.clone(), number(value));
                    }
                    return Ok(detail);
                }
                Err(why) => why,
            };
            if m.timeout.is_none() {
                return Err(why);
            }
            if Instant::now() + interval > end {
                return Err(StepError::ScrapesGaveUp {
                    attempts,
                    elapsed: started.elapsed(),
                    last: Box::new(why),
                });
            }
            std::thread::sleep(interval);
        }
    }

    /// One scrape and comparison: Ok(value, detail) when every comparison holds.
    fn metric_once(&mut self, port: &str, m: &MetricStep) -> Result<(f64, String), StepError> {
        let headers = NamedMap::default();
        let parts = RequestParts {
            json: None,
            body: None,
            headers: &headers,
            timeout: Dur(SCRAPE_TIMEOUT),
        };
        let line = format!("GET {port} /metrics");
        let r = probe::request(&self.client, &self.vars, &line, parts, self.remaining())?;
        let text = match (r.status, &r.body) {
            (200, Value::String(t)) => t.as_str(),
            (200, Value::Null) => "",
            _ => {
                return Err(Mismatch::new(
                    format!("`{line}`"),
                    "status 200 and the text exposition",
                    crate::expect::clip(&r.as_value()),
                )
                .into());
            }
        };
        let samples = metrics::parse(text).map_err(|reason| StepError::Exposition {
            request: line.clone(),
            reason,
        })?;
        let labels = m
            .labels
            .iter()
            .map(|(k, v)| Ok((k.to_owned(), self.vars.render(v)?)))
            .collect::<Result<Vec<_>, TemplateError>>()?;
        let value = metrics::select(&samples, &m.metric, &labels).map_err(StepError::Series)?;
        let mut failed = Vec::new();
        let mut held = Vec::new();
        for (op, bound) in m.comparisons() {
            let (b, shown) = self.bound(bound)?;
            if holds(op, value, b) {
                held.push(format!("{op} {shown}"));
            } else {
                failed.push(format!("{op} {shown}"));
            }
        }
        let series = m.series();
        if !failed.is_empty() {
            return Err(StepError::MetricBound {
                series,
                value,
                failed,
            });
        }
        let mut detail = format!("{series} = {value}");
        if !held.is_empty() {
            detail.push_str(&format!(" ({})", held.join(", ")));
        }
        if let Some(n) = &m.save_as {
            detail.push_str(&format!(", saved as {n}"));
        }
        Ok((value, detail))
    }

    /// A bound's number and how to show it (`3` or `5 ({{backlog_offline}})`).
    fn bound(&self, b: &Bound) -> Result<(f64, String), StepError> {
        match b {
            Bound::Number(n) => Ok((*n, n.to_string())),
            Bound::Template(t) => {
                let text = self.vars.render(t)?;
                let n = text
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| StepError::BoundNotNumber {
                        template: t.clone(),
                        text: text.clone(),
                    })?;
                let shown = if &text == t {
                    text
                } else {
                    format!("{text} ({t})")
                };
                Ok((n, shown))
            }
        }
    }
}

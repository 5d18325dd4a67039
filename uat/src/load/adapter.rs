//! Validation around the adapters a scenario starts: which processes are adapters and the port
//! each listens on (their requests carry the run's API tokens), `{{auth_header.ROLE}}`, and the
//! `metric` step that scrapes an adapter's `/metrics`.

use super::Validator;
use crate::model::{Bound, MetricStep, Process};
use crate::template;
use crate::tokens::{Role, TOKENS_FILE_ENV};

/// The command that makes a process an adapter: the runner gives it the run's tokens.
pub const ADAPTER_COMMAND: &str = "{{bin.adapter}}";

/// Is this process the built adapter?
pub fn is_adapter(p: &Process) -> bool {
    p.command.trim() == ADAPTER_COMMAND
}

/// The value of the adapter's listen address, from `--listen ADDR`, `--listen=ADDR` or
/// `ADAPTER_LISTEN`.
fn listen_value(p: &Process) -> Option<&str> {
    let from_args = p.args.iter().enumerate().find_map(|(i, a)| {
        if a == "--listen" {
            p.args.get(i + 1).map(String::as_str)
        } else {
            a.strip_prefix("--listen=")
        }
    });
    from_args.or_else(|| p.env.get("ADAPTER_LISTEN").map(String::as_str))
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl Validator<'_> {
    /// An adapter must listen on a `{{port.NAME}}` (so the runner knows which requests carry a
    /// token) and must leave its tokens file to the runner.
    pub(super) fn adapter_process(&mut self, at: usize, name: &str, p: &Process) {
        if !is_adapter(p) {
            return;
        }
        if p.env.contains_key(TOKENS_FILE_ENV) {
            self.err_at(
                at,
                TOKENS_FILE_ENV,
                format!(
                    "process `{name}`: the runner sets {TOKENS_FILE_ENV} itself (fresh tokens for every run)"
                ),
            );
        }
        let port = listen_value(p).and_then(|v| {
            template::placeholders(v)
                .into_iter()
                .find_map(|t| t.name.strip_prefix("port.").map(str::to_owned))
        });
        match port {
            Some(port) => {
                self.adapters.insert(name.to_owned(), port);
            }
            None => self.err(
                at,
                format!(
                    "process `{name}` runs {ADAPTER_COMMAND}, but its `--listen` names no `{{{{port.NAME}}}}`: \
                     the runner must know its port to send it the run's API tokens"
                ),
            ),
        }
    }

    /// `{{auth_header.ROLE}}` names a role the runner holds a token for.
    pub(super) fn auth_template(&mut self, offset: usize, role: &str) {
        if Role::parse(role).is_none() {
            self.err(
                offset,
                format!("`{{{{auth_header.{role}}}}}`: the roles are `pos` and `admin`"),
            );
        }
    }

    pub(super) fn metric_step(&mut self, at: usize, m: &MetricStep) {
        if !is_metric_name(&m.metric) {
            self.err_at(
                at,
                &m.metric,
                format!("metric: `{}` is not a metric name", m.metric),
            );
        }
        match &m.port {
            Some(port) if !self.ports.contains(port) => self.err_at(
                at,
                port,
                format!("metric: no process listens on `{{{{port.{port}}}}}`"),
            ),
            Some(_) => {}
            None if self.adapters.len() != 1 => self.err(
                at,
                format!(
                    "metric: give `port`: the scenario starts {} adapter processes, not exactly one",
                    self.adapters.len()
                ),
            ),
            None => {}
        }
        for (_, b) in m.comparisons() {
            if let Bound::Template(t) = b
                && template::placeholders(t).is_empty()
                && t.trim().parse::<f64>().is_err()
            {
                self.err_at(
                    at,
                    t,
                    format!(
                        "metric: `{t}` is neither a number nor a saved value such as \"{{{{name}}}}\""
                    ),
                );
            }
        }
        if m.timeout.is_none() && m.interval.is_some() {
            self.err_at(at, "interval", "metric: `interval` needs `timeout`");
        }
    }
}

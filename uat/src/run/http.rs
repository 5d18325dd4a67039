//! The `http` step as a function of the client and the template values, shared by the step
//! runner and the chaos load thread.

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::Value;

use super::{Failure, StepResult, fail, observe};
use crate::history::{Item, Outcome};
use crate::load::parse_request_line;
use crate::model::HttpStep;
use crate::probe::{self, HttpError};
use crate::template::Vars;

/// One `http` step: the request, its expectations, captures and appends (into `vars`).
/// Shared by the step runner and the chaos load thread.
pub(super) fn http_exchange(
    client: &Client,
    vars: &mut Vars,
    h: &HttpStep,
    cap: Duration,
) -> StepResult {
    let port = || {
        vars.render(&h.http)
            .ok()
            .and_then(|l| parse_request_line(&l).ok().map(|(_, p, _)| p.to_owned()))
    };
    let resp = match probe::request(client, vars, &h.http, h.parts(), cap) {
        Ok(r) => r,
        Err(HttpError::Cut(m)) => {
            // Cut off: an item known in advance may or may not exist now.
            let items = h
                .append
                .iter()
                .map(|(list, spec)| Item {
                    list: list.to_owned(),
                    id: if spec.starts_with('$') {
                        None
                    } else {
                        vars.render(spec).ok().map(Value::from)
                    },
                })
                .collect();
            return Err(Failure {
                outcome: Outcome::Indeterminate,
                msg: HttpError::Cut(m).to_string(),
                items,
                unanswered: port(),
                tolerated: false,
            });
        }
        Err(e @ HttpError::Refused(_)) => {
            let mut f = fail(e.to_string());
            f.unanswered = port();
            return Err(f);
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    if let Some(e) = &h.expect
        && let Err(m) = probe::judge_response(e.status, &e.json, &resp)
    {
        // The house-style error answer `definite: true` says the operation certainly did not
        // happen: its items are recorded as refused, so a check can prove they never appear.
        let mut f = fail(m);
        if resp.body.get("definite") == Some(&Value::Bool(true)) {
            f.items = h
                .append
                .iter()
                .filter(|(_, spec)| !spec.starts_with('$'))
                .filter_map(|(list, spec)| {
                    vars.render(spec).ok().map(|id| Item {
                        list: list.to_owned(),
                        id: Some(Value::from(id)),
                    })
                })
                .collect();
        }
        return Err(f);
    }
    for (name, path) in h.capture.iter() {
        let v = observe::select(&resp.body, path)
            .map_err(|m| fail(format!("capture `{name}`: {m}")))?;
        vars.captures.insert(name.to_owned(), v);
    }
    let mut items = Vec::new();
    for (list, spec) in h.append.iter() {
        let v = if spec.starts_with('$') {
            observe::select(&resp.body, spec).map_err(|m| fail(format!("append `{list}`: {m}")))?
        } else {
            Value::from(vars.render(spec).map_err(fail)?)
        };
        let entry = vars
            .captures
            .entry(list.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            a.push(v.clone());
        }
        items.push(Item {
            list: list.to_owned(),
            id: Some(v),
        });
    }
    Ok((format!("status {}", resp.status), items))
}

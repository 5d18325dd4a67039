//! The `http` step as a function of the client and the template values, shared by the step
//! runner and the chaos load thread.

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::Value;

use super::{Failure, StepResult, fail, observe};
use crate::history::{Item, Outcome};
use crate::load::parse_request_line;
use crate::model::HttpStep;
use crate::probe;
use crate::step_error::{HttpError, StepError};
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
        Err(e) if e.is_indeterminate() => {
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
                error: Box::new(e.into()),
                items,
                unanswered: port(),
                tolerated: false,
            });
        }
        Err(e @ HttpError::Refused { .. }) => {
            let mut f = fail(e);
            f.unanswered = port();
            return Err(f);
        }
        Err(e) => return Err(fail(e)),
    };
    if let Some(e) = &h.expect
        && let Err(why) = probe::judge_response(e.status, &e.json, &resp)
    {
        // The house-style error answer `definite: true` says the operation certainly did not
        // happen: its items are recorded as refused, so a check can prove they never appear.
        let mut f = fail(why);
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
        let v = observe::select(&resp.body, path).map_err(|e| {
            fail(StepError::Capture {
                name: name.to_owned(),
                source: Box::new(e),
            })
        })?;
        vars.captures.insert(name.to_owned(), v);
    }
    let mut items = Vec::new();
    for (list, spec) in h.append.iter() {
        let v = if spec.starts_with('$') {
            observe::select(&resp.body, spec).map_err(|e| {
                fail(StepError::Append {
                    list: list.to_owned(),
                    source: Box::new(e),
                })
            })?
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

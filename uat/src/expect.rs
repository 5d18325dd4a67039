//! Structured expectations: partial JSON matching, matchers and SQL rows, with expected-vs-observed messages.

use serde_json::Value;

use crate::model::{Expected, JsonType, Matcher};
use crate::step_error::{Mismatch, StepError};
use crate::util::NamedMap;

/// Checks one value; on mismatch says "expected X, observed Y" (and where, inside the value).
pub fn matches(expected: &Expected, actual: &Value) -> Result<(), Mismatch> {
    match expected {
        Expected::Literal(e) => partial(e, actual, "").map_err(|(at, exp, obs)| {
            let what = if at.is_empty() {
                String::new()
            } else {
                format!("at {at}")
            };
            Mismatch::new(what, exp, obs)
        }),
        Expected::Matcher(m) => matcher(m, actual).map_err(|want| Mismatch::new("", want, actual)),
    }
}

/// Where inside a value, the expected and the observed part.
type PartMismatch = (String, String, String);

fn partial(e: &Value, a: &Value, at: &str) -> Result<(), PartMismatch> {
    let miss = || (at.to_owned(), e.to_string(), a.to_string());
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            for (k, ev) in em {
                let here = format!("{at}.{k}");
                match am.get(k) {
                    Some(av) => partial(ev, av, &here)?,
                    None => return Err((here, ev.to_string(), "nothing".into())),
                }
            }
            Ok(())
        }
        (Value::Array(ea), Value::Array(aa)) => {
            if ea.len() != aa.len() {
                return Err(miss());
            }
            for (n, (ev, av)) in ea.iter().zip(aa).enumerate() {
                partial(ev, av, &format!("{at}[{n}]"))?;
            }
            Ok(())
        }
        (Value::Number(en), Value::Number(an)) => {
            if en.as_f64() == an.as_f64() {
                Ok(())
            } else {
                Err(miss())
            }
        }
        _ => {
            if e == a {
                Ok(())
            } else {
                Err(miss())
            }
        }
    }
}

/// Returns the failed condition, e.g. "a value >= 0": the expected side of a [`Mismatch`].
fn matcher(m: &Matcher, a: &Value) -> Result<(), String> {
    let num = a.as_f64();
    let cmp = |bound: Option<f64>, op: &str, ok: fn(f64, f64) -> bool| -> Result<(), String> {
        match bound {
            Some(b) if !num.is_some_and(|n| ok(n, b)) => Err(format!("a number {op} {b}")),
            _ => Ok(()),
        }
    };
    cmp(m.gte, ">=", |n, b| n >= b)?;
    cmp(m.lte, "<=", |n, b| n <= b)?;
    cmp(m.gt, ">", |n, b| n > b)?;
    cmp(m.lt, "<", |n, b| n < b)?;
    if let Some(set) = &m.one_of
        && !set.iter().any(|e| partial(e, a, "").is_ok())
    {
        return Err(format!("one of {}", Value::from(set.clone())));
    }
    if let Some(t) = m.type_
        && !type_is(t, a)
    {
        return Err(format!("a value of type {t:?}").to_lowercase());
    }
    if let Some(e) = &m.eq
        && e != a
    {
        return Err(format!("exactly {e}"));
    }
    if let Some(n) = m.len {
        let len = match a {
            Value::String(s) => Some(s.chars().count() as u64),
            Value::Array(x) => Some(x.len() as u64),
            _ => None,
        };
        if len != Some(n) {
            return Err(format!("length {n}"));
        }
    }
    if let Some(sub) = &m.contains
        && !a.as_str().is_some_and(|s| s.contains(sub.as_str()))
    {
        return Err(format!("a string containing {sub:?}"));
    }
    Ok(())
}

fn type_is(t: JsonType, a: &Value) -> bool {
    match t {
        JsonType::String => a.is_string(),
        JsonType::Number => a.is_number(),
        JsonType::Integer => a.is_i64() || a.is_u64(),
        JsonType::Boolean => a.is_boolean(),
        JsonType::Array => a.is_array(),
        JsonType::Object => a.is_object(),
        JsonType::Null => a.is_null(),
    }
}

/// Checks `expect.json` against a response body. A path selecting one node is compared with that
/// node; a path selecting several is compared with the array of them.
pub fn check_json(exp: &NamedMap<Expected>, body: &Value) -> Result<(), StepError> {
    for (path, e) in exp.iter() {
        let jp =
            serde_json_path::JsonPath::parse(path).map_err(|source| StepError::BadJsonPath {
                path: path.to_owned(),
                source,
            })?;
        let nodes = jp.query(body).all();
        let actual = match nodes.as_slice() {
            [] => {
                return Err(StepError::NoNodeExpected {
                    path: path.to_owned(),
                    body: clip(body),
                });
            }
            [one] => (*one).clone(),
            many => Value::Array(many.iter().map(|v| (*v).clone()).collect()),
        };
        matches(e, &actual).map_err(|m| m.within(path))?;
    }
    Ok(())
}

/// Checks result rows, in order and count.
pub fn check_rows(exp: &[Vec<Expected>], rows: &[Vec<Value>]) -> Result<(), Mismatch> {
    if exp.len() != rows.len() {
        return Err(Mismatch::new(
            "",
            format!("{} rows", exp.len()),
            format!("{} rows: {}", rows.len(), rows_text(rows)),
        ));
    }
    for (r, (er, ar)) in exp.iter().zip(rows).enumerate() {
        if er.len() != ar.len() {
            return Err(Mismatch::new(
                format!("row {r}"),
                format!("{} columns", er.len()),
                ar.len(),
            ));
        }
        for (c, (e, a)) in er.iter().zip(ar).enumerate() {
            matches(e, a).map_err(|m| m.within(format!("row {r} column {c}")))?;
        }
    }
    Ok(())
}

/// Rows as compact JSON, for messages.
pub fn rows_text(rows: &[Vec<Value>]) -> String {
    clip(&Value::from(
        rows.iter()
            .map(|r| Value::from(r.clone()))
            .collect::<Vec<_>>(),
    ))
}

/// Compact JSON text, cut at 300 characters for messages.
pub fn clip(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        let cut: String = s.chars().take(300).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exp(toml_value: &str) -> Expected {
        #[derive(serde::Deserialize)]
        struct W {
            v: Expected,
        }
        toml::from_str::<W>(&format!("v = {toml_value}")).unwrap().v
    }

    fn check(e: &str, actual: Value, ok: bool) {
        let r = matches(&exp(e), &actual);
        assert_eq!(r.is_ok(), ok, "{e} vs {actual}: {r:?}");
    }

    #[test]
    fn literals_match_partially() {
        check("{ a = 1 }", json!({"a": 1, "b": 2}), true);
        check("{ a = 1 }", json!({"a": 1.0}), true);
        check("{ a = 1 }", json!({"b": 1}), false);
        check("[1, 2]", json!([1, 2, 3]), false);
        check("\"x\"", json!("x"), true);
    }

    #[test]
    fn matchers_hold_or_fail() {
        check("{ gte = 0, lte = 100 }", json!(55.5), true);
        check("{ gte = 0 }", json!(-1), false);
        check("{ gte = 0 }", json!("5"), false);
        check(
            "{ one_of = [\"printed\", \"buffered\"] }",
            json!("buffered"),
            true,
        );
        check("{ one_of = [\"printed\"] }", json!("failed"), false);
        check("{ type = \"string\" }", json!("x"), true);
        check("{ type = \"integer\" }", json!(1.5), false);
        check("{ len = 2 }", json!([1, 2]), true);
        check("{ eq = { a = 1 } }", json!({"a": 1, "b": 2}), false);
    }

    #[test]
    fn mismatch_names_expected_and_observed() {
        let mut m = NamedMap::default();
        m.0.push(("$.status".to_owned(), exp("\"printed\"")));
        let err = check_json(&m, &json!({"status": "failed"})).unwrap_err();
        assert_eq!(err, "$.status: expected \"printed\", observed \"failed\"");
    }
}

//! Minimal templating: `{{port.NAME}}`, `{{bin.NAME}}`, `{{data.NAME}}`, `{{auth_header.ROLE}}`,
//! `{{dir}}`, `{{i}}` and capture names. No expressions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

/// One `{{...}}` occurrence in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub offset: usize,
    pub name: String,
    pub unterminated: bool,
}

/// Every placeholder in `text`, in order.
pub fn placeholders(text: &str) -> Vec<Placeholder> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rel) = text.get(pos..).and_then(|t| t.find("{{")) {
        let start = pos + rel;
        let inner = start + 2;
        match text.get(inner..).and_then(|t| t.find("}}")) {
            Some(len) => {
                let name = text.get(inner..inner + len).unwrap_or("").trim().to_owned();
                out.push(Placeholder {
                    offset: start,
                    name,
                    unterminated: false,
                });
                pos = inner + len + 2;
            }
            None => {
                out.push(Placeholder {
                    offset: start,
                    name: String::new(),
                    unterminated: true,
                });
                break;
            }
        }
    }
    out
}

/// A placeholder that has no value here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("no port `{0}`")]
    NoPort(String),
    #[error("no binary `{0}`")]
    NoBinary(String),
    #[error("no data directory `{0}`")]
    NoDataDir(String),
    #[error("no token role `{0}`")]
    NoRole(String),
    #[error("no API tokens in this run")]
    NoTokens,
    #[error("`{{{{i}}}}` outside a repeat")]
    IOutsideRepeat,
    /// A capture name no capture has set yet.
    #[error("`{{{{{0}}}}}` has no value yet (no capture ran)")]
    NoValue(String),
    #[error("unterminated `{{{{` in `{0}`")]
    Unterminated(String),
}

/// The values templates may refer to.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub dir: PathBuf,
    pub ports: BTreeMap<String, u16>,
    pub bins: BTreeMap<String, PathBuf>,
    /// `{{data.NAME}}`: the data directory (a power-cut mountpoint or a plain folder) of process NAME.
    pub data: BTreeMap<String, PathBuf>,
    pub i: Option<u32>,
    pub captures: BTreeMap<String, Value>,
    /// The scenario's API tokens: requests to an adapter's port carry one, and
    /// `{{auth_header.ROLE}}` is the file holding its `Authorization` line.
    pub auth: Option<Arc<crate::tokens::Auth>>,
}

impl Vars {
    fn lookup(&self, name: &str) -> Result<Value, TemplateError> {
        if let Some(p) = name.strip_prefix("port.") {
            return self
                .ports
                .get(p)
                .map(|p| Value::from(*p))
                .ok_or_else(|| TemplateError::NoPort(p.to_owned()));
        }
        if let Some(b) = name.strip_prefix("bin.") {
            return self
                .bins
                .get(b)
                .map(|p| Value::from(p.display().to_string()))
                .ok_or_else(|| TemplateError::NoBinary(b.to_owned()));
        }
        if let Some(d) = name.strip_prefix("data.") {
            return self
                .data
                .get(d)
                .map(|p| Value::from(p.display().to_string()))
                .ok_or_else(|| TemplateError::NoDataDir(d.to_owned()));
        }
        if let Some(r) = name.strip_prefix("auth_header.") {
            let role =
                crate::tokens::Role::parse(r).ok_or_else(|| TemplateError::NoRole(r.to_owned()))?;
            return self
                .auth
                .as_ref()
                .map(|a| Value::from(a.header_file(role).display().to_string()))
                .ok_or(TemplateError::NoTokens);
        }
        match name {
            "dir" => Ok(Value::from(self.dir.display().to_string())),
            "i" => self.i.map(Value::from).ok_or(TemplateError::IOutsideRepeat),
            _ => self
                .captures
                .get(name)
                .cloned()
                .ok_or_else(|| TemplateError::NoValue(name.to_owned())),
        }
    }

    /// Substitutes every placeholder in `s`; strings go in raw, other values as JSON text.
    pub fn render(&self, s: &str) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(s.len());
        let mut pos = 0;
        for p in placeholders(s) {
            if p.unterminated {
                return Err(TemplateError::Unterminated(s.to_owned()));
            }
            out.push_str(s.get(pos..p.offset).unwrap_or(""));
            match self.lookup(&p.name)? {
                Value::String(v) => out.push_str(&v),
                v => out.push_str(&v.to_string()),
            }
            let close = s.get(p.offset..).and_then(|t| t.find("}}")).unwrap_or(0);
            pos = p.offset + close + 2;
        }
        out.push_str(s.get(pos..).unwrap_or(""));
        Ok(out)
    }

    /// Renders every string inside a JSON value; a string that is exactly one placeholder
    /// takes the referenced value with its JSON type (a captured number stays a number).
    pub fn render_json(&self, v: &Value) -> Result<Value, TemplateError> {
        Ok(match v {
            Value::String(s) => {
                let ps = placeholders(s);
                match ps.as_slice() {
                    [p] if !p.unterminated && s.starts_with("{{") && s.ends_with("}}") => {
                        self.lookup(&p.name)?
                    }
                    _ => Value::String(self.render(s)?),
                }
            }
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.render_json(x))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, x) in m {
                    out.insert(self.render(k)?, self.render_json(x)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let mut v = Vars {
            i: Some(3),
            ..Vars::default()
        };
        v.ports.insert("web".into(), 8080);
        v.captures.insert("n".into(), json!(42));
        v
    }

    #[test]
    fn renders_strings_and_keeps_types_of_whole_placeholders() {
        let v = vars();
        assert_eq!(
            v.render("http://127.0.0.1:{{port.web}}/x/{{ i }}").unwrap(),
            "http://127.0.0.1:8080/x/3"
        );
        assert_eq!(
            v.render_json(&json!({"a": "{{n}}", "b": "id-{{n}}"}))
                .unwrap(),
            json!({"a": 42, "b": "id-42"})
        );
        assert!(v.render("{{missing}}").is_err());
        assert!(v.render("{{i").is_err());
    }

    #[test]
    fn finds_placeholders_with_offsets() {
        let ps = placeholders("a {{x}} b {{y");
        assert_eq!(
            ps[0],
            Placeholder {
                offset: 2,
                name: "x".into(),
                unterminated: false
            }
        );
        assert!(ps[1].unterminated);
    }
}

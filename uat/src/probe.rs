//! The runner's senses: HTTP requests to processes, read-only SQLite queries and readiness probes.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::Value;

use crate::expect;
use crate::load::parse_request_line;
use crate::model::{Expected, Ready, RequestParts};
use crate::step_error::{HttpError, Mismatch, ReadyError, StepError};
use crate::template::Vars;
use crate::util::NamedMap;

/// A response: status and body (JSON if it parses, else a string, null when empty).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl Response {
    /// The response as one JSON value, for "last value seen" messages.
    pub fn as_value(&self) -> Value {
        serde_json::json!({ "status": self.status, "body": self.body })
    }
}

/// A client that never uses a proxy (every target is on loopback) and opens a connection per
/// request: a request sent on a kept-alive connection to a process killed since fails like one cut
/// off in flight, so the history would call it indeterminate; on a fresh connection it is refused,
/// definitely.
pub fn client() -> reqwest::Result<Client> {
    Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
}

/// Sends `"METHOD port /path"` to 127.0.0.1 on the named port; `cap` bounds the timeout.
pub fn request(
    client: &Client,
    vars: &Vars,
    line: &str,
    parts: RequestParts<'_>,
    cap: Duration,
) -> Result<Response, HttpError> {
    let line = vars.render(line)?;
    let (method_name, port_name, path) =
        parse_request_line(&line).map_err(HttpError::BadRequest)?;
    let port = vars
        .ports
        .get(port_name)
        .ok_or_else(|| HttpError::NoPort(port_name.to_owned()))?;
    let url = format!("http://127.0.0.1:{port}{path}");
    let method = reqwest::Method::from_bytes(method_name.as_bytes())
        .map_err(|e| HttpError::BadRequest(e.to_string()))?;
    let mut rb = client
        .request(method, &url)
        .timeout(parts.timeout.0.min(cap));
    let mut explicit_auth = false;
    for (k, v) in parts.headers.iter() {
        explicit_auth |= k.eq_ignore_ascii_case("authorization");
        rb = rb.header(k, vars.render(v)?);
    }
    // A request to an adapter carries the run's token for the route's role, unless the step
    // spells out its own `Authorization` (to test a refusal).
    if !explicit_auth
        && let Some(bearer) = vars
            .auth
            .as_ref()
            .and_then(|a| a.bearer(port_name, method_name, path))
    {
        rb = rb.header(reqwest::header::AUTHORIZATION, bearer);
    }
    if let Some(j) = parts.json {
        rb = rb.json(&vars.render_json(j)?);
    } else if let Some(b) = parts.body {
        rb = rb
            .header("content-type", "application/json")
            .body(vars.render(b)?);
    }
    let resp = rb.send().map_err(|e| classify(&url, e))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().map_err(|source| HttpError::CutInBody {
        url: url.clone(),
        source,
    })?;
    if let Some(auth) = &vars.auth {
        auth.scan_answer(&format!("`{line}` (status {status})"), &headers, &bytes);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok(Response { status, body })
}

fn classify(url: &str, source: reqwest::Error) -> HttpError {
    let url = url.to_owned();
    if source.is_connect() {
        HttpError::Refused { url, source }
    } else {
        HttpError::Cut { url, source }
    }
}

/// Checks a response against `status`/`json` expectations.
pub fn judge_response(
    status: Option<u16>,
    json: &NamedMap<Expected>,
    r: &Response,
) -> Result<(), StepError> {
    if let Some(s) = status
        && s != r.status
    {
        let body = format!(" (body {})", expect::clip(&r.body));
        return Err(Mismatch::new("status", s, r.status).note(body).into());
    }
    expect::check_json(json, &r.body)
}

/// Upper bound on rows read by one query; scenario queries are small by design.
const ROWS_MAX: usize = 100_000;

/// Runs one query on the SQLite file at `path`, read-only unless `writable`.
pub fn query(path: &Path, sql: &str, writable: bool) -> Result<Vec<Vec<Value>>, StepError> {
    use rusqlite::OpenFlags;
    let flags = if writable {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let err = |source: rusqlite::Error| StepError::Db {
        path: path.to_owned(),
        source,
    };
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    let mut stmt = conn.prepare(sql).map_err(err)?;
    let ncol = stmt.column_count();
    let mut rows = stmt.query([]).map_err(err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(err)? {
        if out.len() >= ROWS_MAX {
            return Err(StepError::TooManyRows(ROWS_MAX));
        }
        let mut r = Vec::with_capacity(ncol);
        for c in 0..ncol {
            r.push(cell(row.get_ref(c).map_err(err)?));
        }
        out.push(r);
    }
    Ok(out)
}

fn cell(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}

/// One readiness attempt; Err carries what was seen, the "last probe" of a [`ReadyError`] (an
/// observation for the message, not an error of its own).
fn ready_once(client: &Client, r: &Ready, vars: &Vars) -> Result<(), String> {
    let render = |t: &str| vars.render(t).map_err(|e| e.to_string());
    if let Some(u) = &r.http_get {
        let url = render(u)?;
        let resp = client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().unwrap_or_default();
        if let Some(auth) = &vars.auth {
            auth.scan_answer(&format!("the readiness probe `{url}`"), &headers, &bytes);
        }
        if status.is_success() {
            return Ok(());
        }
        return Err(format!("{url}: status {status}"));
    }
    if let Some(a) = &r.tcp {
        let addr: SocketAddr = render(a)?
            .parse()
            .map_err(|e| format!("bad tcp address `{a}`: {e}"))?;
        return TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .map(drop)
            .map_err(|e| format!("{addr}: {e}"));
    }
    if let Some(p) = &r.path_exists {
        let p = render(p)?;
        return if Path::new(&p).exists() {
            Ok(())
        } else {
            Err(format!("{p} does not exist"))
        };
    }
    Err("empty readiness probe".into())
}

/// Polls the readiness probe until it passes, `exited` reports an exit, or the timeout passes.
pub fn await_ready(
    client: &Client,
    r: &Ready,
    vars: &Vars,
    deadline: Instant,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<(), ReadyError> {
    let end = deadline.min(Instant::now() + r.timeout.0);
    let mut attempts = 0u64;
    loop {
        attempts += 1;
        let last = match ready_once(client, r, vars) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Some(status) = exited() {
            return Err(ReadyError::Exited {
                status,
                last_probe: last,
            });
        }
        if Instant::now() >= end {
            return Err(ReadyError::TimedOut {
                timeout: r.timeout.to_string(),
                attempts,
                last_probe: last,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

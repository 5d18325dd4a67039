//! One error contract for every answer (issue #13): every refusal, the framework's and hyper's
//! limits included, reaches the POS as JSON `{"code","message","definite"}`. Requests go over a
//! raw TCP socket, so no client library refuses to send an oversized head or rewrites a bad one.

use std::time::{Duration, Instant};

use rstest::rstest;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::Stack;

/// Every exchange of a test is bounded.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(20);
/// An answer's head is small; a longer one is a failure, not something to buffer.
const ANSWER_HEAD_BYTES_MAX: usize = 64 * 1024;

/// A request as it goes on the wire.
struct Raw {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
}

fn raw(method: &'static str, target: impl Into<String>) -> Raw {
    Raw {
        method,
        target: target.into(),
        headers: Vec::new(),
        body: Vec::new(),
        chunked: false,
    }
}

impl Raw {
    fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Raw {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `count` distinct filler headers.
    fn headers(self, count: usize) -> Raw {
        (0..count).fold(self, |r, i| r.header(format!("x-filler-{i}"), "1"))
    }

    fn json(mut self, body: impl Into<Vec<u8>>) -> Raw {
        self.body = body.into();
        self.header("content-type", "application/json")
    }

    /// Sends the body with `Transfer-Encoding: chunked`, so no length is announced up front.
    fn chunked(mut self) -> Raw {
        self.chunked = true;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: 127.0.0.1\r\n",
            self.method, self.target
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.chunked {
            head.push_str(&format!(
                "transfer-encoding: chunked\r\n\r\n{:x}\r\n",
                self.body.len()
            ));
        } else {
            head.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        }
        let mut out = head.into_bytes();
        out.extend(&self.body);
        if self.chunked {
            out.extend(b"\r\n0\r\n\r\n");
        }
        out
    }
}

/// One HTTP/1.1 answer.
pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` on a fresh connection to `addr` and reads one answer. The request is written
/// while the answer is read: the server may answer (and close) before it has read a large body.
async fn exchange(addr: &str, request: &Raw) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("adapter accepts");
    let (mut reader, mut writer) = stream.split();
    let bytes = request.bytes();
    let write = async {
        // A server that refused early stops reading; the rest of the body may not be taken.
        let _ = writer.write_all(&bytes).await;
        std::future::pending::<()>().await
    };
    let answer = async {
        tokio::select! {
            answer = read_answer(&mut reader) => answer,
            () = write => unreachable!("the writer never finishes"),
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, answer)
        .await
        .expect("an answer within the timeout")
}

pub(crate) async fn read_answer(reader: &mut (impl AsyncRead + Unpin)) -> Answer {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        assert!(buf.len() < ANSWER_HEAD_BYTES_MAX, "answer head too long");
        let mut chunk = [0u8; 4096];
        let n = reader.read(&mut chunk).await.expect("answer readable");
        assert!(n > 0, "connection closed without an answer; got {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: buf[head_end + 4..].to_vec(),
    };
    let length: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("the answer has a content-length");
    while answer.body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = reader.read(&mut chunk).await.expect("answer body readable");
        assert!(n > 0, "connection closed inside the answer body");
        answer.body.extend_from_slice(&chunk[..n]);
    }
    answer
}

fn filler(len: usize) -> String {
    "a".repeat(len)
}

/// Sends `request` to a fresh adapter and checks the answer is the contract's, with `code`.
async fn check(request: Raw, status: u16, code: &str, message_part: &str) {
    let stack = Stack::with_adapter(&[]).await;
    let addr = stack
        .adapter_url
        .strip_prefix("http://")
        .expect("an http url")
        .to_owned();
    let answer = exchange(&addr, &request).await;
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert_eq!(answer.status, status, "body: {text}");
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "body: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["definite"], true, "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(message.contains(message_part), "{body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(3),
        "exactly code, message and definite: {body}"
    );
}

#[rstest]
#[case::body_over_the_limit(
    raw("POST", "/v1/kkt/receipt").json(vec![b' '; 300_000]),
    413, "body_too_large", "the body is 300000 bytes; at most 262144 are accepted"
)]
#[case::chunked_body_over_the_limit(
    raw("POST", "/v1/kkt/receipt").json(vec![b' '; 300_000]).chunked(),
    413, "body_too_large", "longer than the 262144 bytes accepted"
)]
#[case::wrong_method_on_an_existing_route(
    raw("GET", "/v1/kkt/buffer/sync"),
    405,
    "method_not_allowed",
    "GET is not allowed on /v1/kkt/buffer/sync; use POST"
)]
#[case::unknown_route(raw("GET", "/v1/kkt/nothing-here"), 404, "not_found", "endpoint")]
#[case::uri_over_the_limit(
    raw("GET", format!("/v1/kkt/receipt?idempotency_key={}", filler(9_000))),
    414, "uri_too_long", "at most 8192 are accepted"
)]
#[case::uri_over_the_limit_on_an_unknown_route(
    raw("GET", format!("/{}", filler(20_000))),
    414, "uri_too_long", "at most 8192 are accepted"
)]
#[case::too_many_headers(
    raw("GET", "/v1/health").headers(70),
    431, "headers_too_large", "at most 64 are accepted"
)]
#[case::more_headers_than_hyper_takes_by_default(
    raw("GET", "/v1/health").headers(150),
    431, "headers_too_large", "at most 64 are accepted"
)]
#[case::too_large_headers(
    raw("GET", "/v1/health").header("x-big", filler(17_000)),
    431, "headers_too_large", "at most 16384 are accepted"
)]
#[case::missing_query_on_get_receipt(
    raw("GET", "/v1/kkt/receipt"),
    400,
    "invalid_query",
    "missing field `idempotency_key`"
)]
#[case::repeated_key_on_get_receipt(
    raw("GET", "/v1/kkt/receipt?idempotency_key=a&idempotency_key=b"),
    400,
    "invalid_query",
    "duplicate field `idempotency_key`"
)]
#[case::bad_force_on_buffer_sync(
    raw("POST", "/v1/kkt/buffer/sync?force=maybe"),
    400,
    "invalid_query",
    "the query string of POST /v1/kkt/buffer/sync is invalid"
)]
#[case::json_syntax_error_in_a_receipt(
    raw("POST", "/v1/kkt/receipt").json(r#"{"type": "#),
    400, "malformed_body", "receipt body"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_in_the_contract(
    #[case] request: Raw,
    #[case] status: u16,
    #[case] code: &str,
    #[case] message_part: &str,
) {
    check(request, status, code, message_part).await;
}

/// An in-process server of `app` with the given timeouts; returns its address, the shutdown
/// trigger and the server task.
async fn serve_in_process(
    app: axum::Router,
    config: adapter::http::ServeConfig,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(adapter::http::serve(listener, app, config, async {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

fn slow_app() -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .route(
            "/slow/{ms}",
            axum::routing::get(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    "done"
                },
            ),
        )
}

fn timeouts(header_read_ms: u64, shutdown_deadline_ms: u64) -> adapter::http::ServeConfig {
    adapter::http::ServeConfig {
        header_read_timeout: Duration::from_millis(header_read_ms),
        shutdown_deadline: Duration::from_millis(shutdown_deadline_ms),
        ..adapter::http::ServeConfig::default()
    }
}

#[tokio::test]
async fn headers_that_trickle_in_slower_than_the_timeout_close_the_connection() {
    let (addr, _stop, _server) = serve_in_process(slow_app(), timeouts(300, 1_000)).await;
    // A prompt request on the same server is answered: the timeout is what closes the slow one.
    let prompt = exchange(&addr, &raw("GET", "/")).await;
    assert_eq!(prompt.status, 200);

    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let (mut reader, mut writer) = stream.split();
    let started = Instant::now();
    let trickle = async {
        let _ = writer.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await;
        for i in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer
                .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        std::future::pending::<()>().await
    };
    let mut got = Vec::new();
    let closed = async {
        // EOF or a reset, with no answer: the client never finished asking.
        loop {
            let mut chunk = [0u8; 1024];
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::select! {
        () = closed => {}
        () = trickle => unreachable!("the trickle never finishes"),
        () = tokio::time::sleep(Duration::from_secs(2)) => panic!("the slow connection stayed open"),
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed too early: {elapsed:?}"
    );
    assert!(got.is_empty(), "no answer expected: {got:?}");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_the_request_in_flight_finish() {
    let (addr, stop, server) = serve_in_process(slow_app(), timeouts(1_000, 5_000)).await;
    let in_flight = {
        let addr = addr.clone();
        tokio::spawn(async move { exchange(&addr, &raw("GET", "/slow/600")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).expect("server waits for the signal");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(&addr).await.is_err(),
        "a new connection is refused once shutting down"
    );
    let answer = in_flight.await.expect("client task");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"done");
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("serve returns once the last connection closed")
        .expect("server task");
}

#[tokio::test]
async fn shutdown_waits_no_longer_than_its_deadline() {
    let (addr, stop, server) = serve_in_process(slow_app(), timeouts(1_000, 300)).await;
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream
        .write_all(raw("GET", "/slow/30000").bytes().as_slice())
        .await
        .expect("request sent");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    stop.send(()).expect("server waits for the signal");
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("serve returns at the deadline despite the open request")
        .expect("server task");
    assert!(started.elapsed() >= Duration::from_millis(250));
}

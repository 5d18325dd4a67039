//! Bounds on what clients can hold (issue #15): a body that trickles gets 408, and the bounds on
//! concurrent requests, open connections and each token's rate answer in the error contract with
//! `Retry-After`. The flood of slow connections is `adapter/tests/flood.rs`.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::contract::{Answer, read_answer};
use crate::harness::{Stack, lenses, limit_events};

/// Every wait of these tests is bounded.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes `bytes` on a new connection to the adapter and keeps the connection.
async fn send_part(addr: &str, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("adapter accepts");
    stream.write_all(bytes).await.expect("request written");
    stream
}

async fn answer_on(stream: &mut TcpStream) -> Answer {
    tokio::time::timeout(ANSWER_TIMEOUT, read_answer(stream))
        .await
        .expect("an answer within the timeout")
}

fn error_code(answer: &Answer) -> (u16, String, bool) {
    let body: Value = serde_json::from_slice(&answer.body).expect("a JSON error body");
    (
        answer.status,
        body["code"].as_str().unwrap_or_default().to_owned(),
        body["definite"].as_bool().unwrap_or(false),
    )
}

/// The head of a sale with `key` whose body of `len` bytes has not been sent yet.
fn sale_head(key: &str, len: usize) -> String {
    format!(
        "POST /v1/kkt/receipt HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         idempotency-key: {key}\r\ncontent-length: {len}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408_and_nothing_is_done() {
    let s = Stack::with_adapter(&["--body-read-timeout-ms", "300"]).await;
    let body = serde_json::to_vec(&lenses("slow-body")).unwrap();
    let mut stream = send_part(
        &s.adapter_addr(),
        sale_head("slow-body", body.len()).as_bytes(),
    )
    .await;
    stream.write_all(&body[..10]).await.unwrap();
    let started = Instant::now();
    let answer = answer_on(&mut stream).await;
    assert_eq!(
        error_code(&answer),
        (408, "request_timeout".to_owned(), true)
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(s.fiscal_commands().await, 0, "nothing reached the KKT");
    let (status, _) = s
        .call(
            "GET",
            "/v1/kkt/receipt?idempotency_key=slow-body",
            None,
            &[],
        )
        .await;
    assert_eq!(status, 404, "nothing was journaled");
    assert_eq!(limit_events(&s.scrape().await, "body_timeout"), 1);
    // The same sale sent promptly prints.
    let (status, v) = s.post_receipt(lenses("slow-body")).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("printed")),
        "{v}"
    );
}

#[tokio::test]
async fn a_request_above_the_concurrency_bound_gets_503_with_retry_after() {
    let s = Stack::with_adapter(&["--max-concurrent-requests", "1"]).await;
    let body = serde_json::to_vec(&lenses("held")).unwrap();
    // A sale whose body is on its way holds the one place.
    let mut held = send_part(&s.adapter_addr(), sale_head("held", body.len()).as_bytes()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut probe = send_part(
        &s.adapter_addr(),
        b"GET /v1/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n",
    )
    .await;
    let refused = answer_on(&mut probe).await;
    assert_eq!(error_code(&refused), (503, "overloaded".to_owned(), true));
    assert_eq!(refused.header("retry-after"), Some("1"));
    // The held sale completes and prints; then the place is free again.
    held.write_all(&body).await.unwrap();
    let printed = answer_on(&mut held).await;
    assert_eq!(printed.status, 200);
    let (status, _) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_connection_above_the_bound_with_every_one_busy_gets_503() {
    let s = Stack::with_adapter(&["--max-connections", "2"]).await;
    let body = serde_json::to_vec(&lenses("busy-1")).unwrap();
    // Two connections, each with a request in progress (a body on its way): none can make room.
    let mut busy = Vec::new();
    for i in 0..2 {
        let head = sale_head(&format!("busy-{i}"), body.len());
        busy.push(send_part(&s.adapter_addr(), head.as_bytes()).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = send_part(
        &s.adapter_addr(),
        b"GET /v1/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n",
    )
    .await;
    let refused = answer_on(&mut third).await;
    assert_eq!(error_code(&refused), (503, "overloaded".to_owned(), true));
    assert_eq!(refused.header("retry-after"), Some("1"));
    // An idle connection, though, makes room: the first finishes its sale and stays open idle.
    let first_body = serde_json::to_vec(&lenses("busy-0")).unwrap();
    busy[0].write_all(&first_body).await.unwrap();
    assert_eq!(answer_on(&mut busy[0]).await.status, 200);
    let (status, _) = s.call("GET", "/v1/health", None, &[]).await;
    assert_eq!(status, 200, "the idle keep-alive connection made room");
    let mut closed = [0u8; 1];
    let n = tokio::time::timeout(ANSWER_TIMEOUT, busy[0].read(&mut closed))
        .await
        .expect("the idle connection is closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle connection was closed to make room");
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_and_others_go_on() {
    let s = Stack::with_adapter(&[
        "--auth-token",
        "till1:pos:pos-secret-0123456789abcdef,till2:pos:pos2-secret-0123456789abcdef,\
         ops:admin:admin-secret-0123456789abcdef",
        "--token-rate-limit",
        "2",
    ])
    .await;
    let till1 = [("authorization", "Bearer pos-secret-0123456789abcdef")];
    let till2 = [("authorization", "Bearer pos2-secret-0123456789abcdef")];
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(s.call("GET", "/v1/kkt/buffer/status", None, &till1).await);
    }
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[1].0, 200);
    let (status, body) = &statuses[2];
    assert_eq!(
        (*status, body["code"].as_str(), body["definite"].as_bool()),
        (429, Some("rate_limited"), Some(true)),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("till1"));
    // Another token has its own allowance; open routes are not counted.
    let (status, _) = s.call("GET", "/v1/kkt/buffer/status", None, &till2).await;
    assert_eq!(status, 200);
    let (status, body) = s.call("GET", "/v1/ready", None, &[]).await;
    assert_ne!(status, 429, "{body}");
    // The answer says when to come back, and then the token is served again.
    let answer = reqwest::Client::new()
        .get(format!("{}/v1/kkt/buffer/status", s.adapter_url))
        .header("authorization", "Bearer pos-secret-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 429);
    let retry_after: u64 = answer.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _) = s.call("GET", "/v1/kkt/buffer/status", None, &till1).await;
    assert_eq!(status, 200);
    let admin = [("authorization", "Bearer admin-secret-0123456789abcdef")];
    let (status, metrics) = s.call("GET", "/metrics", None, &admin).await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert_eq!(limit_events(&metrics, "rate_limited"), 2, "{metrics}");
}

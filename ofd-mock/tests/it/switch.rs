//! Control calls take effect before they answer: right after a 200, a connect to the OFD port is refused
//! after `offline` and accepted after `online`, every time.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rstest::rstest;
use serde_json::json;
use tokio::net::TcpStream;

use crate::{ANSWER_WAIT, Mock};

/// Mode switches per run: offline and online alternate, half each.
const SWITCHES: usize = 200;

/// What a connect made right after a control answer got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connect {
    Accepted,
    Refused,
    /// Reset during the handshake: it reached a listening socket that was closed under it.
    Reset,
}

async fn connect(addr: SocketAddr) -> Connect {
    match tokio::time::timeout(ANSWER_WAIT, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => Connect::Accepted,
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => Connect::Refused,
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => Connect::Reset,
        other => panic!("connect to {addr}: {other:?}"),
    }
}

#[rstest]
#[case::set_mode("/set_mode")]
#[case::mock_mode("/_mock/mode")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_switches_are_in_effect_when_they_answer(#[case] path: &str) {
    let mock = Mock::start().await;
    let addr = mock.running.ofd_addr;
    let (mut refused_after_online, mut accepted_after_offline) = (0u32, 0u32);
    let (mut onlines, mut offlines) = (0u32, 0u32);
    let mut slowest = Duration::ZERO;
    let start = Instant::now();
    for i in 0..SWITCHES {
        // The mock starts online, so the first switch is to offline.
        let online = i % 2 == 1;
        let mode = if online { "online" } else { "offline" };
        let asked = Instant::now();
        let (status, answer) = mock.post(path, json!({ "mode": mode })).await;
        slowest = slowest.max(asked.elapsed());
        assert_eq!(status, 200, "switch {i} to {mode}: {answer}");
        // A reset counts against the switch either way: after `offline` the port was still listening,
        // after `online` the connect did not get through.
        match (online, connect(addr).await) {
            (true, Connect::Refused | Connect::Reset) => refused_after_online += 1,
            (false, Connect::Accepted | Connect::Reset) => accepted_after_offline += 1,
            _ => {}
        }
        if online {
            onlines += 1;
        } else {
            offlines += 1;
        }
    }
    println!(
        "{path}: {SWITCHES} switches ({offlines} offline, {onlines} online) in {:?}, slowest answer {slowest:?}: \
         refused after online {refused_after_online}, accepted after offline {accepted_after_offline}",
        start.elapsed()
    );
    assert_eq!((offlines, onlines), (100, 100));
    assert_eq!(
        (refused_after_online, accepted_after_offline),
        (0, 0),
        "refused after online, accepted after offline"
    );
}

#[tokio::test]
async fn reset_reopens_the_listener_before_it_answers() {
    let mock = Mock::start().await;
    assert_eq!(
        mock.post("/set_mode", json!({"mode": "offline"})).await.0,
        200
    );
    assert_eq!(connect(mock.running.ofd_addr).await, Connect::Refused);
    assert_eq!(mock.post("/_mock/reset", json!({})).await.0, 200);
    assert_eq!(connect(mock.running.ofd_addr).await, Connect::Accepted);
    mock.assert_listening(true).await;
}

/// When another socket holds the port, `online` cannot take effect: the call says so instead of a 200, and
/// the listener reopens by itself once the port is free.
#[tokio::test]
async fn online_that_cannot_take_effect_answers_503_not_in_effect() {
    let mock = Mock::start().await;
    let addr = mock.running.ofd_addr;
    assert_eq!(
        mock.post("/set_mode", json!({"mode": "offline"})).await.0,
        200
    );
    // A listening socket on the port keeps the mock from binding it again, SO_REUSEADDR or not.
    let squatter = std::net::TcpListener::bind(addr).expect("take the closed port");
    let asked = Instant::now();
    let (status, answer) = mock.post("/set_mode", json!({"mode": "online"})).await;
    assert_eq!(
        (
            status,
            answer["code"].as_str(),
            answer["definite"].as_bool()
        ),
        (503, Some("not_in_effect"), Some(false)),
        "{answer}"
    );
    assert!(asked.elapsed() >= ofd_mock::control::APPLY_WAIT_MAX);
    mock.assert_listening(false).await;
    drop(squatter);
    // The supervisor retries every 50 ms; the bound keeps this loop finite.
    let freed = Instant::now();
    while mock.get("/_mock/health").await.1["listening"] != json!(true) {
        assert!(freed.elapsed() < ANSWER_WAIT, "listener never reopened");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(mock.send(1).await.ack().response_code, 0);
}

//! Integration tests of the mock OFD over real sockets: a small client built on `ofd-proto` and a helper DSL.

mod control;
mod counters;
mod guard;
mod modes;
mod records;
mod switch;
mod versions;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ofd_mock::{Config, RunningMock};
use ofd_proto::{OperatorAck, Tlv};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The FN number every test document carries.
pub const FN: &str = "9999078900005488";
/// The FPD secret of the verification tests.
pub const SECRET: &[u8] = b"emulator-secret";
/// How long a client waits for an answer unless a test says otherwise.
pub const ANSWER_WAIT: Duration = Duration::from_secs(3);
/// Upper bound of every polling loop.
pub const POLL_LIMIT: Duration = Duration::from_secs(3);

/// A config on ephemeral loopback ports.
pub fn test_config() -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        control: SocketAddr::from(([127, 0, 0, 1], 0)),
        read_timeout_ms: 2_000,
        write_timeout_ms: 2_000,
        blackhole_hold_ms: 5_000,
        ..Config::default()
    }
}

/// A mock started in this process plus an HTTP client for its control plane.
pub struct Mock {
    pub running: RunningMock,
    http: reqwest::Client,
}

impl Mock {
    pub async fn start() -> Mock {
        Mock::start_with(test_config()).await
    }

    pub async fn start_with(config: Config) -> Mock {
        let running = ofd_mock::serve(config).await.expect("mock starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        Mock { running, http }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.control_addr)
    }

    /// GET a control path; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .send()
            .await
            .expect("control GET");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// POST a raw body to a control path.
    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("control POST");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string()).await
    }

    /// Selects a mode and insists that it was accepted and is already in effect on the listener.
    pub async fn mode(&self, body: Value) {
        let (status, answer) = self.post("/_mock/mode", body.clone()).await;
        assert_eq!(status, 200, "{body} -> {answer}");
        self.assert_listening(
            self.running
                .state
                .with_mode(|m| m.listener_open(Instant::now())),
        )
        .await;
    }

    /// Asserts, without waiting, that the OFD listener is open or closed: a control call answers only
    /// after its change is in effect, so no polling is needed after one.
    pub async fn assert_listening(&self, open: bool) {
        let health = self.get("/_mock/health").await.1;
        assert_eq!(health["listening"], json!(open), "{health}");
    }

    pub async fn stats(&self) -> Value {
        self.get("/_mock/stats").await.1
    }

    pub async fn documents(&self) -> Value {
        self.get("/_mock/documents").await.1
    }

    /// Sends a receipt with this FD number and returns what came back.
    pub async fn send(&self, fd: u32) -> Outcome {
        send_to(self.running.ofd_addr, &message(fd, 12_345), ANSWER_WAIT).await
    }

    pub async fn send_bytes(&self, bytes: &[u8], wait: Duration) -> Outcome {
        send_to(self.running.ofd_addr, bytes, wait).await
    }
}

/// What the client saw on the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// connect() was refused.
    Refused,
    /// The mock sent these bytes and closed with a FIN.
    Closed(Vec<u8>),
    /// The connection was reset after these bytes.
    Reset(Vec<u8>),
    /// Nothing more arrived before the client gave up; these bytes had arrived.
    Silent(Vec<u8>),
}

impl Outcome {
    /// The acknowledgement, when the outcome is a complete, valid answer.
    pub fn ack(&self) -> OperatorAck {
        match self {
            Outcome::Closed(b) => ofd_proto::parse_reply(b).expect("a valid reply").1,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    /// Whether the mock closed (FIN or reset) without sending a byte.
    pub fn closed_empty(&self) -> bool {
        matches!(self, Outcome::Closed(b) | Outcome::Reset(b) if b.is_empty())
    }
}

/// Connects, writes `bytes`, reads until the mock closes or `wait` passes.
pub async fn send_to(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Outcome {
    let mut stream = match tokio::time::timeout(ANSWER_WAIT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => return Outcome::Refused,
        // A connect queued when the listener closes is reset by the kernel.
        Ok(Err(e)) if is_reset(&e) => return Outcome::Reset(Vec::new()),
        other => panic!("connect to {addr}: {other:?}"),
    };
    if let Err(e) = stream.write_all(bytes).await {
        assert!(is_reset(&e), "write: {e}");
        return Outcome::Reset(Vec::new());
    }
    read_all(&mut stream, wait).await
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Reads until EOF, a reset or `wait`.
pub async fn read_all(stream: &mut TcpStream, wait: Duration) -> Outcome {
    let deadline = tokio::time::Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Outcome::Silent(got),
            Ok(Ok(0)) => return Outcome::Closed(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if is_reset(&e) => return Outcome::Reset(got),
            Ok(Err(e)) => panic!("read: {e}"),
        }
    }
}

/// A receipt document with a valid emulator FPD under [`SECRET`].
pub fn receipt(fd: u32, total: u64) -> Tlv {
    let time = 1_700_000_000 + fd;
    let fpd = ofd_proto::fpd(SECRET, FN, fd, time, total, 1);
    receipt_with_fpd(fd, total, u64::from(fpd))
}

pub fn receipt_with_fpd(fd: u32, total: u64, fpd: u64) -> Tlv {
    Tlv::stlv(
        3,
        vec![
            Tlv::time(1012, 1_700_000_000 + fd),
            Tlv::string(1041, FN),
            Tlv::u32(1040, fd),
            Tlv::byte(1054, 1),
            Tlv::vln(1020, total),
            Tlv::vln(1077, fpd),
        ],
    )
}

/// A whole message carrying [`receipt`].
pub fn message(fd: u32, total: u64) -> Vec<u8> {
    ofd_proto::build_message(FN, fd, &receipt(fd, total)).expect("message builds")
}

/// Reads counters from a stats body; `a.b` reaches into a nested object; a missing counter reads as
/// `u64::MAX`, so a misspelt name cannot pass for zero.
pub fn counts(stats: &Value, keys: &[&str]) -> Vec<u64> {
    keys.iter()
        .map(|k| {
            k.split('.')
                .fold(stats, |v, part| &v[part])
                .as_u64()
                .unwrap_or(u64::MAX)
        })
        .collect()
}

//! The TCP client of the OFD: one message per connection, with connect, write and read timeouts,
//! exactly one reply read under a size bound, and a connect-only probe.
//!
//! **Boundary:** this module knows the envelope only as far as framing and the operator
//! acknowledgement go; it does not journal, retry or decide what a response code means.

use std::io::ErrorKind;
use std::time::Duration;

use ofd_proto::{Need, OperatorAck, bytes_needed, parse_reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Largest OFD reply accepted: an acknowledgement is a few hundred bytes, so anything near the
/// envelope's own limit is garbage.
pub const REPLY_LEN_MAX: usize = 16 * 1024;

/// Where a transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Opening the connection.
    Connect,
    /// Writing the message.
    Write,
    /// Reading the reply.
    Read,
}

/// A failure of the exchange itself, before a reply could be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The address did not resolve.
    #[error("OFD address {addr} does not resolve: {message}")]
    Resolve {
        /// The configured address.
        addr: String,
        /// The resolver's message.
        message: String,
    },
    /// The OFD refused the connection.
    #[error("OFD refused the connection")]
    Refused,
    /// A deadline passed.
    #[error("OFD timed out during {0:?}")]
    Timeout(Stage),
    /// The connection was reset or closed before a whole reply arrived.
    #[error("OFD connection reset during {0:?}")]
    Reset(Stage),
    /// The reply is not a valid OFD acknowledgement.
    #[error("OFD answered garbage: {0}")]
    Garbage(String),
    /// A well-formed acknowledgement that does not match the document sent in a field the FN
    /// checks (header FN or FD, body 1041 or 1040): the FN would refuse it, so it is never written.
    #[error("OFD acknowledged the wrong document: {0}")]
    WrongAck(String),
    /// Any other socket error.
    #[error("OFD socket error during {stage:?}: {message}")]
    Io {
        /// Where it happened.
        stage: Stage,
        /// The OS message.
        message: String,
    },
}

impl TransportError {
    /// True if the connection was established: the OFD was reachable, and the failure may
    /// belong to the document rather than to the network.
    pub fn reached(&self) -> bool {
        match self {
            TransportError::Resolve { .. } | TransportError::Refused => false,
            TransportError::Timeout(stage)
            | TransportError::Reset(stage)
            | TransportError::Io { stage, .. } => *stage != Stage::Connect,
            TransportError::Garbage(_) | TransportError::WrongAck(_) => true,
        }
    }

    /// A short stable name for logs and `last_error`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportError::Resolve { .. } => "resolve",
            TransportError::Refused => "refused",
            TransportError::Timeout(_) => "timeout",
            TransportError::Reset(_) => "reset",
            TransportError::Garbage(_) => "garbage",
            TransportError::WrongAck(_) => "wrong_ack",
            TransportError::Io { .. } => "io",
        }
    }
}

fn classify(stage: Stage, err: &std::io::Error) -> TransportError {
    match err.kind() {
        ErrorKind::ConnectionRefused => TransportError::Refused,
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof
        | ErrorKind::NotConnected => TransportError::Reset(stage),
        ErrorKind::TimedOut => TransportError::Timeout(stage),
        _ => TransportError::Io {
            stage,
            message: err.to_string(),
        },
    }
}

/// The OFD's answer to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfdAnswer {
    /// The reply, byte for byte, as it must be written back to the FN.
    pub reply: Vec<u8>,
    /// The A-protocol version of the reply's session header.
    pub version: ofd_proto::envelope::AppVersion,
    /// The FN number in the reply's session header (blank padding trimmed).
    pub header_fn: String,
    /// The FD number in the reply's container header.
    pub header_fd: u32,
    /// The parsed acknowledgement body (response code, FN 1041, FD 1040, operator sign).
    pub ack: OperatorAck,
}

impl OfdAnswer {
    /// Checks every field an FN compares before it takes an acknowledgement (the session
    /// header's FN number, the container header's FD number, the body's 1041 and 1040) against
    /// the document that was sent. A mismatch names the field with both values.
    pub fn check_for(&self, fn_number: &str, fd: u32) -> Result<(), TransportError> {
        let mut wrong = Vec::new();
        if self.header_fn != fn_number {
            wrong.push(format!("header FN {} (sent {fn_number})", self.header_fn));
        }
        if self.header_fd != fd {
            wrong.push(format!("header FD {} (sent {fd})", self.header_fd));
        }
        if self.ack.fn_number.trim() != fn_number {
            wrong.push(format!(
                "body 1041 FN {} (sent {fn_number})",
                self.ack.fn_number.trim()
            ));
        }
        if self.ack.fd_number != fd {
            wrong.push(format!("body 1040 FD {} (sent {fd})", self.ack.fd_number));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(TransportError::WrongAck(wrong.join(", ")))
        }
    }
}

/// Connection settings of the OFD client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfdClient {
    addr: String,
    connect_timeout: Duration,
    io_timeout: Duration,
}

impl OfdClient {
    /// A client of the OFD at `addr` (`host:port`).
    pub fn new(addr: impl Into<String>, connect_timeout: Duration, io_timeout: Duration) -> Self {
        OfdClient {
            addr: addr.into(),
            connect_timeout,
            io_timeout,
        }
    }

    /// The configured address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn connect(&self) -> Result<TcpStream, TransportError> {
        let addrs: Vec<_> = match tokio::net::lookup_host(&self.addr).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => {
                return Err(TransportError::Resolve {
                    addr: self.addr.clone(),
                    message: e.to_string(),
                });
            }
        };
        let Some(addr) = addrs.first() else {
            return Err(TransportError::Resolve {
                addr: self.addr.clone(),
                message: "no address".into(),
            });
        };
        match timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => Err(TransportError::Timeout(Stage::Connect)),
            Ok(Err(e)) => Err(classify(Stage::Connect, &e)),
            Ok(Ok(stream)) => {
                // One small message then one small reply: Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
        }
    }

    /// Opens and closes a connection without sending anything: tells whether the OFD is
    /// reachable.
    pub async fn probe(&self) -> Result<(), TransportError> {
        let mut stream = self.connect().await?;
        // A failed shutdown of a connection that did open says nothing about reachability.
        let _ = timeout(self.io_timeout, stream.shutdown()).await;
        Ok(())
    }

    /// Sends one message and reads exactly one reply.
    pub async fn send(&self, message: &[u8]) -> Result<OfdAnswer, TransportError> {
        let mut stream = self.connect().await?;
        match timeout(self.io_timeout, stream.write_all(message)).await {
            Err(_) => return Err(TransportError::Timeout(Stage::Write)),
            Ok(Err(e)) => return Err(classify(Stage::Write, &e)),
            Ok(Ok(())) => {}
        }
        let reply = match timeout(self.io_timeout, read_one(&mut stream)).await {
            Err(_) => return Err(TransportError::Timeout(Stage::Read)),
            Ok(result) => result?,
        };
        let (frame, ack) =
            parse_reply(&reply).map_err(|e| TransportError::Garbage(e.to_string()))?;
        Ok(OfdAnswer {
            version: frame.session.a_protocol,
            header_fn: frame.session.fn_number_str().trim().to_string(),
            header_fd: frame.container.fd_number,
            reply,
            ack,
        })
    }
}

/// Reads exactly one envelope, refusing anything above [`REPLY_LEN_MAX`]. The loop is bounded:
/// every round either grows the buffer towards a bounded total or returns.
async fn read_one(stream: &mut TcpStream) -> Result<Vec<u8>, TransportError> {
    let mut buf = Vec::with_capacity(512);
    loop {
        let more = match bytes_needed(&buf, REPLY_LEN_MAX) {
            Ok(Need::Complete(len)) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Ok(Need::More(n)) => n,
            Err(e) => return Err(TransportError::Garbage(e.to_string())),
        };
        let start = buf.len();
        buf.resize(start + more, 0);
        match stream.read(&mut buf[start..]).await {
            Ok(0) if start == 0 => return Err(TransportError::Reset(Stage::Read)),
            Ok(0) => {
                return Err(TransportError::Garbage(format!(
                    "connection closed after {start} bytes of a reply"
                )));
            }
            Ok(n) => buf.truncate(start + n),
            Err(e) => return Err(classify(Stage::Read, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn answer(header_fn: &str, header_fd: u32, body_fn: &str, body_fd: u32) -> OfdAnswer {
        OfdAnswer {
            reply: Vec::new(),
            version: ofd_proto::envelope::AppVersion::DEFAULT,
            header_fn: header_fn.into(),
            header_fd,
            ack: OperatorAck {
                ofd_inn: "7704358518".into(),
                fn_number: body_fn.into(),
                fd_number: body_fd,
                date_time: 0,
                response_code: 0,
                operator_sign: None,
            },
        }
    }

    #[rstest]
    #[case::all_match(answer("9999078900001234", 7, "9999078900001234", 7), None)]
    #[case::header_fd(
        answer("9999078900001234", 8, "9999078900001234", 7),
        Some("header FD 8 (sent 7)")
    )]
    #[case::header_fn(
        answer("9999078900009999", 7, "9999078900001234", 7),
        Some("header FN 9999078900009999 (sent 9999078900001234)")
    )]
    #[case::body_fd(
        answer("9999078900001234", 7, "9999078900001234", 6),
        Some("body 1040 FD 6 (sent 7)")
    )]
    #[case::body_fn(
        answer("9999078900001234", 7, "9999078900000000", 7),
        Some("body 1041 FN 9999078900000000 (sent 9999078900001234)")
    )]
    fn an_ack_must_match_the_document_in_every_field_the_fn_checks(
        #[case] a: OfdAnswer,
        #[case] wrong: Option<&str>,
    ) {
        match (a.check_for("9999078900001234", 7), wrong) {
            (Ok(()), None) => {}
            (Err(TransportError::WrongAck(text)), Some(needle)) => {
                assert!(text.contains(needle), "{text:?} names {needle:?}");
                assert!(TransportError::WrongAck(text).reached());
            }
            (got, want) => panic!("got {got:?}, want a mismatch naming {want:?}"),
        }
    }

    #[test]
    fn only_failures_after_connect_count_as_reached() {
        assert!(!TransportError::Refused.reached());
        assert!(!TransportError::Timeout(Stage::Connect).reached());
        assert!(TransportError::Timeout(Stage::Read).reached());
        assert!(TransportError::Reset(Stage::Write).reached());
        assert!(TransportError::Garbage("x".into()).reached());
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_garbage_is_told_apart() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let client = OfdClient::new(
            format!("127.0.0.1:{port}"),
            Duration::from_secs(2),
            Duration::from_secs(2),
        );
        assert_eq!(client.probe().await, Err(TransportError::Refused));
        assert_eq!(client.send(b"x").await, Err(TransportError::Refused));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 503\r\n\r\n").await.unwrap();
        });
        let client = OfdClient::new(
            addr.to_string(),
            Duration::from_secs(2),
            Duration::from_secs(2),
        );
        let err = client.send(b"x").await.unwrap_err();
        assert!(matches!(err, TransportError::Garbage(_)), "{err:?}");
        server.await.unwrap();
    }
}

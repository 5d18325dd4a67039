//! Test DSL: an in-process emulator, a byte-level serial host and a tiny HTTP client for the control API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use kkt_emulator::{Config, Running};
use kkt_proto::{
    ACK, CloseReceipt, ENQ, FnOperation, NAK, Reply, Request, STX, Text, decode_frame,
};
use serde_json::Value;

/// The frozen device time most tests use, so times and fiscal signs are exact.
pub const T0: u32 = 1_700_000_000;
/// Timeout of one read on the serial port.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// An emulator running in-process on its own runtime, with files in a temporary directory.
pub struct Emu {
    // Field order matters: the server stops before its runtime goes away.
    pub running: Running,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Emu {
    /// Starts an emulator with a frozen clock at [`T0`].
    pub fn start() -> Self {
        let emu = Self::start_with(|_| {});
        emu.post_ok("/_emu/clock", &format!(r#"{{"frozen_unix":{T0}}}"#));
        emu
    }

    /// Starts an emulator with a configuration tweak.
    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::in_dir(dir.path());
        tweak(&mut config);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = rt.block_on(kkt_emulator::serve(config)).expect("serve");
        Self {
            running,
            _rt: rt,
            _dir: dir,
        }
    }

    /// A serial host on the emulator's published link.
    pub fn host(&self) -> Host {
        Host::open(&self.running.pty_link)
    }

    /// GET a control endpoint, expecting 200.
    pub fn get(&self, path: &str) -> Value {
        let (status, v) = http(self.running.control_addr, "GET", path, None);
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    /// POST to a control endpoint.
    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        http(self.running.control_addr, "POST", path, Some(body))
    }

    /// POST expecting 200.
    pub fn post_ok(&self, path: &str, body: &str) -> Value {
        let (status, v) = self.post(path, body);
        assert_eq!(status, 200, "{path} {body}: {v}");
        v
    }

    /// Arms a fault, expecting it to be accepted.
    pub fn fault(&self, body: &str) {
        self.post_ok("/_emu/fault", body);
    }

    /// The FN secret, for recomputing fiscal signs.
    pub fn secret(&self) -> Vec<u8> {
        let hex = self.get("/_emu/state")["fpd_secret_hex"]
            .as_str()
            .expect("secret")
            .to_string();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }
}

/// A minimal HTTP/1.1 client (one request per connection).
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    http_with(addr, method, path, body, None)
}

/// [`http`] with an optional `Authorization` header value.
pub fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    authorization: Option<&str>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect control");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = body.unwrap_or("");
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: emu\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let text = String::from_utf8_lossy(&resp);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

/// Parses hex with spaces.
pub fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("hex byte")
}

/// A host on the serial line, speaking bytes so tests can see every fault exactly.
pub struct Host {
    port: serialport::TTYPort,
}

impl Host {
    /// Opens the port as a driver opens /dev/ttyUSB0.
    pub fn open(path: &Path) -> Self {
        let port = serialport::new(path.to_string_lossy(), 115_200)
            .timeout(READ_TIMEOUT)
            .open_native()
            .expect("open pty");
        Self { port }
    }

    /// Writes bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).expect("write");
    }

    /// Reads one byte, or `None` when nothing arrives within `timeout`.
    pub fn read_byte_within(&mut self, timeout: Duration) -> Option<u8> {
        use serialport::SerialPort;
        self.port.set_timeout(timeout).expect("set timeout");
        let mut b = [0u8; 1];
        let got = match self.port.read(&mut b) {
            Ok(1) => Some(b[0]),
            _ => None,
        };
        self.port.set_timeout(READ_TIMEOUT).expect("set timeout");
        got
    }

    /// One read of up to one byte within `timeout`, as the port reports it (a timeout is an
    /// error of kind `TimedOut`; a device that went away, `BrokenPipe`).
    pub fn read_within(&mut self, timeout: Duration) -> std::io::Result<usize> {
        use serialport::SerialPort;
        self.port.set_timeout(timeout).expect("set timeout");
        let mut b = [0u8; 1];
        let got = self.port.read(&mut b);
        self.port.set_timeout(READ_TIMEOUT).expect("set timeout");
        got
    }

    /// Reads one byte, failing the test if none arrives.
    pub fn read_byte(&mut self) -> u8 {
        self.read_byte_within(READ_TIMEOUT)
            .expect("a byte from the device")
    }

    /// Asserts the device says nothing for `ms` milliseconds.
    pub fn expect_silence(&mut self, ms: u64) {
        if let Some(b) = self.read_byte_within(Duration::from_millis(ms)) {
            panic!("expected silence, got {b:#04x}");
        }
    }

    /// Reads the rest of a frame whose STX was already read; returns the whole frame.
    pub fn read_frame_after_stx(&mut self) -> Vec<u8> {
        let len = self.read_byte();
        let mut frame = vec![STX, len];
        for _ in 0..=len {
            frame.push(self.read_byte());
        }
        frame
    }

    /// Reads a frame that must start right away.
    pub fn read_frame(&mut self) -> Vec<u8> {
        let stx = self.read_byte();
        assert_eq!(stx, STX, "expected STX");
        self.read_frame_after_stx()
    }

    /// ENQ expecting NAK (idle device).
    pub fn enq_idle(&mut self) {
        self.write(&[ENQ]);
        assert_eq!(self.read_byte(), NAK, "idle device answers ENQ with NAK");
    }

    /// The whole exchange for one request frame: ENQ/NAK, frame/ACK, answer, ACK. Returns the answer frame.
    pub fn exchange(&mut self, frame: &[u8]) -> Vec<u8> {
        self.enq_idle();
        self.write(frame);
        assert_eq!(self.read_byte(), ACK, "frame accepted");
        let answer = self.read_frame();
        self.write(&[ACK]);
        answer
    }

    /// Sends a typed request with `password` and decodes the answer.
    pub fn call_as(&mut self, password: u32, req: &Request) -> Reply {
        let frame = req.to_frame(password).expect("encode request");
        let answer = self.exchange(&frame);
        assert!(decode_frame(&answer).is_ok(), "answer LRC");
        Reply::from_frame(&answer).expect("answer decodes")
    }

    /// Sends a typed request as the system administrator.
    pub fn call(&mut self, req: &Request) -> Reply {
        self.call_as(30, req)
    }

    /// Sends a request that must succeed; returns its answer.
    pub fn ok(&mut self, req: &Request) -> kkt_proto::Answer {
        match self.call(req) {
            Reply::Ok(a) => a,
            Reply::Error { error, .. } => panic!("{req:?} failed with {error:?}"),
        }
    }

    /// Sends a request that must fail; returns the error byte.
    pub fn err(&mut self, req: &Request) -> u8 {
        match self.call(req) {
            Reply::Error { error, .. } => error.code(),
            Reply::Ok(a) => panic!("{req:?} unexpectedly answered {a:?}"),
        }
    }
}

/// An FF46 sale line: quantity in thousandths, price in kopecks, Shtrih tax bits.
pub fn item(name: &str, qty_milli: u64, price: u64, tax_bits: u8) -> Request {
    Request::FnOperation(FnOperation {
        check_type: 1,
        quantity: qty_milli * 1000,
        price,
        sum: None,
        tax_value: None,
        tax_bits,
        department: 1,
        payment_method: 4,
        payment_object: 1,
        name: Text::new(name).expect("cp1251"),
    })
}

/// An FF45 close with cash and card sums, taxation OSN.
pub fn close(cash: u64, card: u64) -> Request {
    let mut payments = [0u64; 16];
    payments[0] = cash;
    payments[1] = card;
    Request::CloseReceipt(CloseReceipt {
        payments,
        rounding: 0,
        taxes: [0; 6],
        tax_system: 1,
        text: Text::from_raw(Vec::new()),
    })
}

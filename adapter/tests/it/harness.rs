//! A small DSL for the adapter's integration tests: a stack of emulator + mock + adapter process, and
//! helpers to post sales and read the ground truth (the emulator's FN journal, the mock's records).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// Every HTTP call of a test is bounded.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub emu: kkt_emulator::Running,
    pub mock: ofd_mock::RunningMock,
    adapter: Option<Child>,
    pub adapter_url: String,
    pub http: reqwest::Client,
    /// The `Authorization` value `call` sends when a test gives none, for adapters run with tokens.
    pub bearer: Option<String>,
    extra_args: Vec<String>,
    /// `RUST_LOG` of the adapter; `ADAPTER_TEST_LOG` or `warn` when not set.
    log_filter: Option<String>,
    /// The adapter's open-file limit (soft and hard), set by util-linux `prlimit`, which execs it.
    open_file_limit: Option<u64>,
    /// Registers beyond `emu`, each its own emulator with its own FN; when there are any, the
    /// adapter is started with `--kkt till-1=<emu>` and `--kkt till-N=<...>` instead of `--kkt-port`.
    pub more_emus: Vec<kkt_emulator::Running>,
}

impl Stack {
    /// Emulator and mock up, adapter not yet started.
    pub async fn new() -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let emu = kkt_emulator::serve(kkt_emulator::Config::in_dir(dir.path()))
            .await
            .expect("emulator starts");
        let mock_config = ofd_mock::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            control: "127.0.0.1:0".parse().unwrap(),
            ..ofd_mock::Config::default()
        };
        let mock = ofd_mock::serve(mock_config).await.expect("mock starts");
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .unwrap();
        Stack {
            dir,
            emu,
            mock,
            adapter: None,
            adapter_url: String::new(),
            http,
            bearer: None,
            extra_args: Vec::new(),
            log_filter: None,
            open_file_limit: None,
            more_emus: Vec::new(),
        }
    }

    /// `registers` emulators (`till-1` is `emu`), each with its own FN, behind one adapter.
    pub async fn with_registers(registers: usize, args: &[&str]) -> Stack {
        let mut s = Stack::new().await;
        for n in 2..=registers {
            let dir = s.dir.path().join(format!("till-{n}"));
            std::fs::create_dir_all(&dir).expect("emulator dir");
            let mut config = kkt_emulator::Config::in_dir(&dir);
            config.fn_seed = n as u64;
            let emu = kkt_emulator::serve(config).await.expect("emulator starts");
            s.more_emus.push(emu);
        }
        s.extra_args = args.iter().map(|a| a.to_string()).collect();
        s.start_adapter();
        s
    }

    /// The control address of register `till-N` (1-based).
    pub fn emu_of(&self, till: usize) -> std::net::SocketAddr {
        match till {
            1 => self.emu.control_addr,
            n => self.more_emus[n - 2].control_addr,
        }
    }

    /// A control call to register `till-N`'s emulator.
    pub async fn emu_n(&self, till: usize, method: &str, path: &str, body: Option<Value>) -> Value {
        self.control(format!("http://{}", self.emu_of(till)), method, path, body)
            .await
    }

    /// Emulator, mock and adapter, with extra adapter flags.
    pub async fn with_adapter(args: &[&str]) -> Stack {
        let mut s = Stack::new().await;
        s.extra_args = args.iter().map(|a| a.to_string()).collect();
        s.start_adapter();
        s
    }

    /// An adapter whose OFD relay runs only when asked (`POST /v1/kkt/buffer/sync`): a ten-minute
    /// interval and no idle probes, so a test decides every attempt the mock sees.
    pub async fn with_manual_sync() -> Stack {
        Stack::with_adapter(&["--sync-interval-ms", "600000", "--probe-when-idle", "false"]).await
    }

    /// [`Stack::with_manual_sync`] with the mock OFD refusing every document with code 14.
    pub async fn with_manual_sync_and_a_rejecting_ofd() -> Stack {
        let s = Stack::with_manual_sync().await;
        s.mock(
            "POST",
            "/_mock/mode",
            Some(json!({"mode": "reject", "code": 14})),
        )
        .await;
        s
    }

    /// A forced delivery pass on a [`Stack::with_manual_sync_and_a_rejecting_ofd`] whose FN
    /// holds `documents`: the head is refused once and nothing behind it moves. A fiscalized
    /// sale wakes the background pass too, so either pass may make that one attempt; a forced
    /// pass that finds the background one holding the FN asks again (at most 5 s).
    #[allow(dead_code)] // not used by the `flood` test binary, which shares this file
    pub async fn force_sync_past_a_refused_head(&self, documents: u64) -> Value {
        let mut r = Value::Null;
        for _ in 0..100 {
            r = self
                .call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
                .await
                .1;
            if r["stopped"] != "LockBusy" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = (
            r["failed"].clone(),
            r["synced"].clone(),
            r["skipped"].clone(),
        );
        let refused_here = (json!(1), json!(0), json!(documents - 1));
        let refused_before = (json!(0), json!(0), json!(documents));
        assert!(
            seen == refused_here || (seen == refused_before && r["stopped"] == "DlqHead"),
            "the forced pass: {r}"
        );
        let stats = self.mock("GET", "/_mock/stats", None).await;
        assert_eq!(stats["rejected"], 1, "the head is refused once: {stats}");
        r
    }

    /// Like [`Stack::with_adapter`], with the adapter's open-file limit at `files`.
    #[allow(dead_code)] // used by the `flood` test binary, which shares this file
    pub async fn with_adapter_file_limit(args: &[&str], files: u64) -> Stack {
        let mut s = Stack::new().await;
        s.extra_args = args.iter().map(|a| a.to_string()).collect();
        s.open_file_limit = Some(files);
        s.start_adapter();
        s
    }

    /// Like [`Stack::with_adapter`], with the adapter logging at `filter` (a `RUST_LOG` value).
    pub async fn with_adapter_logging(args: &[&str], filter: &str) -> Stack {
        let mut s = Stack::new().await;
        s.extra_args = args.iter().map(|a| a.to_string()).collect();
        s.log_filter = Some(filter.to_owned());
        s.start_adapter();
        s
    }

    /// Journals a sale as an adapter that stopped after journaling it in flight, before sending it,
    /// would have left it: written through the journal's own API while the adapter is down.
    /// Returns its receipt id.
    pub async fn journal_in_flight(&self, key: &str, request_hash: &str, body: &str) -> String {
        let journal =
            adapter::journal::Journal::open(adapter::journal::JournalConfig::new(self.db_path()))
                .expect("journal opens");
        let new = adapter::journal::NewReceipt {
            kkt_id: adapter::journal::DEFAULT_KKT_ID.into(),
            idempotency_key: key.into(),
            request_hash: request_hash.into(),
            request_body: body.into(),
        };
        let row = match journal.insert_received(new).await.expect("insert") {
            adapter::journal::InsertOutcome::Inserted(row) => row,
            other => panic!("{other:?}"),
        };
        journal
            .mark_in_flight(&row.receipt_id)
            .await
            .expect("in flight");
        journal.close().await.expect("journal closes");
        row.receipt_id
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("data/buffer.db")
    }

    /// Starts the adapter binary and waits for its "listening" line.
    pub fn start_adapter(&mut self) {
        assert!(self.adapter.is_none(), "adapter already running");
        let mut args: Vec<(String, String)> = [
            ("--listen", "127.0.0.1:0".to_owned()),
            ("--db", self.db_path().display().to_string()),
            ("--kkt-port", self.emu.pty_link.display().to_string()),
            ("--ofd-addr", self.mock.ofd_addr.to_string()),
            ("--sync-interval-ms", "200".to_owned()),
            ("--backoff-initial-ms", "50".to_owned()),
            ("--backoff-max-ms", "200".to_owned()),
            ("--breaker-open-ms", "300".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if !self.more_emus.is_empty() {
            args.retain(|(k, _)| k != "--kkt-port");
            args.push((
                "--kkt".to_owned(),
                format!("till-1={}", self.emu.pty_link.display()),
            ));
            for (i, emu) in self.more_emus.iter().enumerate() {
                args.push((
                    "--kkt".to_owned(),
                    format!("till-{}={}", i + 2, emu.pty_link.display()),
                ));
            }
        }
        // A test's own flags replace the defaults of the same name.
        for pair in self.extra_args.chunks(2) {
            args.retain(|(k, _)| *k != pair[0]);
            args.push((pair[0].clone(), pair.get(1).cloned().unwrap_or_default()));
        }
        let mut cmd = match self.open_file_limit {
            None => Command::new(env!("CARGO_BIN_EXE_adapter")),
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(env!("CARGO_BIN_EXE_adapter"));
                c
            }
        };
        cmd.args(args.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]))
            .env(
                "RUST_LOG",
                self.log_filter.clone().unwrap_or_else(|| {
                    std::env::var("ADAPTER_TEST_LOG").unwrap_or_else(|_| "warn".into())
                }),
            )
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(self.dir.path().join("adapter.log"))
                    .map(Stdio::from)
                    .unwrap_or(Stdio::null()),
            );
        let mut child = cmd.spawn().expect("adapter starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("adapter prints its address");
        let url = line
            .trim()
            .strip_prefix("adapter listening on ")
            .unwrap_or_else(|| panic!("unexpected start line {line:?}; log: {}", self.log()));
        self.adapter_url = url.to_owned();
        self.adapter = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("adapter.log")).unwrap_or_default()
    }

    /// SIGKILLs the adapter and reaps it.
    pub fn kill_adapter(&mut self) {
        if let Some(mut child) = self.adapter.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs the adapter and returns its exit code.
    pub fn stop_adapter(&mut self) -> Option<i32> {
        let mut child = self.adapter.take()?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .ok()?;
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.adapter_url);
        let mut req = self.http.request(method.parse().unwrap(), url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(bearer) = &self.bearer
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            req = req.header("authorization", bearer);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("adapter answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post_receipt(&self, body: Value) -> (u16, Value) {
        self.call("POST", "/v1/kkt/receipt", Some(body), &[]).await
    }

    async fn control(&self, base: String, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{base}{path}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("control API answers");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// The device commits the next receipt's close (FF45) and loses power before it answers:
    /// the sale's outcome is unknown to the adapter until reconciliation reads the FN.
    pub async fn cut_power_after_the_next_close(&self) {
        self.emu(
            "POST",
            "/_emu/fault",
            Some(json!({"kind": "power_cut_after_commit", "command": "FF45"})),
        )
        .await;
    }

    pub async fn emu(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.control(
            format!("http://{}", self.emu.control_addr),
            method,
            path,
            body,
        )
        .await
    }

    /// Commands that open, fill, close or cancel a receipt (FF46, FF0C, FF45, 8D, 88) the emulator
    /// executed since it started: a refused request must not move this count.
    pub async fn fiscal_commands(&self) -> u64 {
        const FISCAL_COMMANDS: [&str; 5] = ["FF46", "FF0C", "FF45", "8D", "88"];
        let c = self.emu("GET", "/_emu/commands", None).await;
        FISCAL_COMMANDS
            .iter()
            .map(|code| c["by_code"][code].as_u64().unwrap_or(0))
            .sum()
    }

    pub async fn mock(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.control(
            format!("http://{}", self.mock.control_addr),
            method,
            path,
            body,
        )
        .await
    }

    /// Receipt documents (type 3) in the emulator's FN journal.
    pub async fn fn_receipts(&self) -> Vec<Value> {
        let j = self.emu("GET", "/_emu/journal", None).await;
        j["documents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| is_receipt(d))
            .cloned()
            .collect()
    }

    /// Polls `GET /v1/kkt/receipt/{id}` until `status` is reached, at most `timeout`.
    pub async fn wait_receipt_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = Value::Null;
        while tokio::time::Instant::now() < deadline {
            let (code, v) = self
                .call("GET", &format!("/v1/kkt/receipt/{id}"), None, &[])
                .await;
            if code == 200 && v["status"] == status {
                return v;
            }
            last = v;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("receipt {id} did not reach {status} within {timeout:?}; last: {last}");
    }
}

impl Stack {
    /// Polls `GET /v1/kkt/buffer/status` until `field` equals `value`, at most `timeout`; on
    /// give-up it shows the last status and the tail of the adapter's log.
    pub async fn wait_buffer(&self, field: &str, value: u64, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (_, st) = self.call("GET", "/v1/kkt/buffer/status", None, &[]).await;
            if st[field] == value {
                return st;
            }
            if tokio::time::Instant::now() >= deadline {
                let log = self.log();
                let tail = &log[log.len().saturating_sub(4000)..];
                panic!(
                    "{field} never reached {value} within {timeout:?}: {st}\nadapter log tail:\n{tail}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A tiny deterministic generator, so a failing run can be replayed from its seed.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound.max(1)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.kill_adapter();
    }
}

fn is_receipt(doc: &Value) -> bool {
    doc["type"] == "receipt" || doc["type"] == 3
}

/// The seed's sale: progressive lenses, 25,000.00 by card.
pub fn lenses(key: &str) -> Value {
    json!({"idempotency_key": key, "type": "sale", "taxation": "osn", "operator": "Ivanova",
        "customer_contact": "+79990000000",
        "items": [{"name": "Progressive lenses", "price": "25000.00", "quantity": "1", "vat": "vat20",
                   "payment_method": "full_payment", "payment_object": "commodity"}],
        "payments": [{"type": "card", "amount": "25000.00"}]})
}

/// A small cash sale with change.
pub fn bread(key: &str) -> Value {
    json!({"idempotency_key": key, "type": "sale", "taxation": "osn",
        "items": [{"name": "Bread", "price": "45.50", "quantity": "2", "vat": "vat10"},
                  {"name": "Milk", "price": 89.9, "quantity": 1.5, "vat": "vat10"}],
        "payments": [{"type": "cash", "amount": "300"}]})
}

/// Signals and exits of the adapter process, for the shutdown and SIGHUP tests.
impl Stack {
    /// Sends `signal` to the running adapter.
    pub fn signal_adapter(&self, signal: nix::sys::signal::Signal) {
        let child = self.adapter.as_ref().expect("the adapter runs");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)
            .expect("signal sent");
    }

    /// Waits up to `limit` for the adapter to exit: its status, or `None` while it still runs.
    pub fn wait_adapter_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        loop {
            let child = self.adapter.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.adapter = None;
                return Some(status);
            }
            if std::time::Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The adapter's process id.
    pub fn adapter_pid(&self) -> u32 {
        self.adapter.as_ref().expect("the adapter runs").id()
    }

    /// The adapter's `host:port`, for tests that speak raw HTTP.
    pub fn adapter_addr(&self) -> String {
        self.adapter_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    }
}

/// What the bounds on clients did, for the tests of `limits.rs` and the `flood` binary.
impl Stack {
    /// `GET /metrics` of an adapter run without tokens (loopback serves it).
    pub async fn scrape(&self) -> String {
        match self.call("GET", "/metrics", None, &[]).await {
            (200, Value::String(text)) => text,
            other => panic!("metrics: {other:?}"),
        }
    }
}

/// The count of `adapter_http_limit_events_total{event="..."}` in a scrape, 0 when absent.
pub fn limit_events(metrics: &str, event: &str) -> u64 {
    let series = format!("adapter_http_limit_events_total{{event=\"{event}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().expect("a counter value"))
}

//! Tests of the sync worker against the real ofd-mock, kkt-emulator and redis-server, all on
//! loopback; the mock and the emulator are hosted in-process through their libraries.

mod head;
mod lock;
mod ofd;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{BreakerConfig, SyncHandle, SyncLock, SyncSettings};
use crate::journal::{Journal, JournalConfig};
use crate::kkt::{KktConfig, KktHandle};
use crate::sale::{Operation, Sale, SaleItem, Taxation, Vat};
use crate::service::Fiscalizer;

/// Bound of every HTTP call and every polling loop in these tests.
const WAIT_MAX: Duration = Duration::from_secs(20);

/// A mock OFD hosted in this process, with its control plane.
pub(super) struct Mock {
    pub running: ofd_mock::RunningMock,
    http: reqwest::Client,
}

impl Mock {
    pub async fn start() -> Mock {
        let config = ofd_mock::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            control: "127.0.0.1:0".parse().unwrap(),
            read_timeout_ms: 2_000,
            write_timeout_ms: 2_000,
            blackhole_hold_ms: 5_000,
            ..ofd_mock::Config::default()
        };
        let running = ofd_mock::serve(config).await.expect("mock starts");
        let http = reqwest::Client::builder()
            .timeout(WAIT_MAX)
            .build()
            .unwrap();
        Mock { running, http }
    }

    pub fn addr(&self) -> String {
        self.running.ofd_addr.to_string()
    }

    async fn call(&self, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://{}{path}", self.running.control_addr);
        let req = match body {
            Some(b) => self.http.post(url).json(&b),
            None => self.http.get(url),
        };
        let resp = req.send().await.expect("mock control answers");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("mock answers JSON")
    }

    /// Selects a mode and waits (bounded) until the listener matches it.
    pub async fn mode(&self, body: Value) {
        self.call("/_mock/mode", Some(body.clone())).await;
        let closed = body["mode"] == "offline" && body.get("refuse").is_none();
        let deadline = tokio::time::Instant::now() + WAIT_MAX;
        while self.call("/_mock/health", None).await["listening"] != json!(!closed) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mock listener never settled for {body}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stats(&self) -> Value {
        self.call("/_mock/stats", None).await
    }

    pub async fn documents(&self) -> Vec<Value> {
        let v = self.call("/_mock/documents", None).await;
        v["documents"].as_array().cloned().unwrap_or_default()
    }
}

/// Reads one counter; a missing counter reads as `u64::MAX`, so a misspelt name cannot pass.
pub(super) fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(u64::MAX)
}

/// Worker settings with short timings for tests.
pub(super) fn settings(ofd_addr: &str) -> SyncSettings {
    SyncSettings {
        ofd_addr: ofd_addr.to_string(),
        interval: Duration::from_millis(200),
        batch_size_max: 100,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        retry_max: 20,
        breaker: BreakerConfig {
            failures_max: 5,
            open_for: Duration::from_millis(500),
            probes_needed: 2,
        },
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(2),
        probe_when_idle: true,
    }
}

/// An emulator, the KKT driver on its pty, a journal and the phase-1 service.
pub(super) struct Shop {
    pub dir: tempfile::TempDir,
    pub emu: kkt_emulator::Running,
    pub kkt: KktHandle,
    pub journal: Journal,
    pub fiscalizer: Fiscalizer,
}

fn decode_nothing(_: &str) -> Result<Sale, String> {
    Err("tests submit typed sales".into())
}

impl Shop {
    pub async fn open() -> Shop {
        let dir = tempfile::tempdir().expect("temp dir");
        let emu = kkt_emulator::serve(kkt_emulator::Config::in_dir(dir.path()))
            .await
            .expect("emulator starts");
        let kkt = KktHandle::spawn(KktConfig {
            port: emu.pty_link.clone(),
            baud: 115_200,
            password: 30,
            link: kkt_proto::LinkConfig::default(),
        });
        let path = dir.path().join("buffer.db");
        let journal = tokio::task::spawn_blocking(move || Journal::open(JournalConfig::new(path)))
            .await
            .unwrap()
            .expect("journal opens");
        let fiscalizer = Fiscalizer::new(
            crate::journal::DEFAULT_KKT_ID.to_owned(),
            journal.clone(),
            kkt.clone(),
            true,
            decode_nothing,
            crate::service::ReconcilePolicy::default(),
        );
        Shop {
            dir,
            emu,
            kkt,
            journal,
            fiscalizer,
        }
    }

    /// A second journal handle on the same database (a second adapter process, as far as the
    /// lease is concerned).
    pub async fn second_journal(&self) -> Journal {
        let path = self.dir.path().join("buffer.db");
        tokio::task::spawn_blocking(move || Journal::open(JournalConfig::new(path)))
            .await
            .unwrap()
            .expect("journal opens twice")
    }

    /// One sale through the phase-1 service; returns its receipt id.
    pub async fn sell(&self, n: u32) -> String {
        let item = SaleItem {
            name: format!("Lens {n}"),
            price_kopecks: 100 + u64::from(n),
            quantity_millionths: 1_000_000,
            sum_kopecks: 0,
            vat: Vat::Vat20,
            payment_method: 4,
            payment_object: 1,
        };
        let sale = Sale::new(
            Operation::Sale,
            Taxation::Osn,
            None,
            None,
            vec![item],
            0,
            100 + u64::from(n),
        )
        .expect("valid sale");
        let key = format!("sync-test-{n}");
        let row = self
            .fiscalizer
            .submit(key.clone(), key.clone(), sale)
            .await
            .expect("sale succeeds");
        assert!(row.fiscal.is_some(), "sale {n} fiscalized: {row:?}");
        row.receipt_id
    }

    /// Documents the emulator's FN has not had acknowledged.
    pub fn unsent(&self) -> usize {
        self.emu.shared.state_view().unsent
    }

    pub fn last_fd(&self) -> u32 {
        self.emu.shared.state_view().last_fd
    }

    /// A worker over this shop's FN with the journal lease as its lock.
    pub fn worker(&self, journal: Journal, ofd_addr: &str) -> SyncHandle {
        self.worker_with(journal, settings(ofd_addr))
    }

    pub fn worker_with(&self, journal: Journal, settings: SyncSettings) -> SyncHandle {
        let lock = SyncLock::sqlite(
            journal.clone(),
            super::lock::owner_id(),
            Duration::from_secs(30),
        );
        SyncHandle::new(journal, Arc::new(self.kkt.clone()), lock, settings)
    }
}

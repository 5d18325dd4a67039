//! Ceilings: what this machine allows at best for each thing a sale or a drained document does,
//! measured in the same run as the adapter's figures so that only ratios are compared.
//!
//! - `ceiling.fdatasync_append`: append one journal-row-sized record and `fdatasync`, in the
//!   directory the benchmarks' journals live in.
//! - `ceiling.sqlite_commit_rows_1|8|32|128`: rows of the journal's real size inserted into SQLite
//!   with WAL and `synchronous=FULL`, one transaction per 1, 8, 32 or 128 rows.
//! - `ceiling.pty_round_trip`: a Shtrih-M-sized request and answer across a raw pty, unpaced.
//! - `reference.sales_c1|c8|c64`: a batched reference server (axum, SQLite FULL, one writer thread
//!   that commits whatever is waiting in one transaction) answering JSON sales.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::Connection;

use super::Plan;
use super::figure::Figure;

/// A journal row as the adapter writes one for a sale: the request body, the fiscal document's
/// TLV and the ids (about 1 KiB in all).
pub const SALE_BODY: &str = r#"{"type":"sale","taxation":"osn","operator":"Ivanova","customer_contact":"+79990000000","items":[{"name":"Progressive lenses","price":"25000.00","quantity":"1","vat":"vat20","payment_method":"full_payment","payment_object":"commodity"}],"payments":[{"type":"card","amount":"25000.00"}]}"#;
const TLV_BYTES: usize = 420;
const RECORD_BYTES: usize = 1_024;

pub fn all(plan: &Plan, out: &mut Vec<Figure>) -> anyhow::Result<()> {
    out.push(plan.repeat("ceiling.fdatasync_append", "/s", |_| {
        fdatasync_append(&plan.dir, plan.count(2_000, 30))
    })?);
    for rows in [1usize, 8, 32, 128] {
        let name = format!("ceiling.sqlite_commit_rows_{rows}");
        out.push(plan.repeat(&name, "rows/s", |run| {
            sqlite_commits(&plan.dir, run, rows, plan.count(2_560, 256))
        })?);
    }
    out.push(plan.repeat("ceiling.pty_round_trip", "us", |_| {
        pty_round_trip(plan.count(2_000, 50))
    })?);
    for concurrency in [1usize, 8, 64] {
        let name = format!("reference.sales_c{concurrency}");
        out.push(plan.repeat(&name, "/s", |run| {
            reference_server(&plan.dir, run, concurrency, plan.count(3_000, 64))
        })?);
    }
    Ok(())
}

/// Appends `count` records with an `fdatasync` after each; returns records per second.
fn fdatasync_append(dir: &Path, count: usize) -> anyhow::Result<f64> {
    let path = dir.join("fdatasync.bin");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    let record = vec![0x5a_u8; RECORD_BYTES];
    let started = Instant::now();
    for _ in 0..count {
        file.write_all(&record)?;
        file.sync_data()?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// Inserts `count` journal-sized rows, `rows` per transaction; returns rows per second.
fn sqlite_commits(dir: &Path, run: usize, rows: usize, count: usize) -> anyhow::Result<f64> {
    let path = dir.join(format!("ceiling-{rows}-{run}.db"));
    let conn = Connection::open(&path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE receipts (receipt_id TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE NOT NULL,
           request_hash TEXT NOT NULL, request_body TEXT NOT NULL, document_tlv BLOB,
           kkt_state TEXT NOT NULL, created_at_ms INTEGER NOT NULL);",
    )?;
    let tlv = vec![0x11_u8; TLV_BYTES];
    let started = Instant::now();
    let mut i = 0usize;
    while i < count {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut insert = conn.prepare_cached(
                "INSERT INTO receipts VALUES (?1, ?2, ?3, ?4, ?5, 'received', ?6)",
            )?;
            for _ in 0..rows.min(count - i) {
                insert.execute(rusqlite::params![
                    format!("r-{run}-{i:08}-0123456789abcdef"),
                    format!("k-{run}-{i:08}"),
                    format!("{:064x}", i),
                    SALE_BODY,
                    tlv,
                    i as i64,
                ])?;
                i += 1;
            }
        }
        conn.execute_batch("COMMIT")?;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(rate)
}

/// Request and answer sizes of a typical Shtrih-M exchange (an FF0C line item and its answer,
/// framed, with the ENQ/ACK bytes around them).
const PTY_REQUEST_BYTES: usize = 64;
const PTY_ANSWER_BYTES: usize = 12;

/// `count` request/answer round trips across a raw pty; returns microseconds per round trip.
fn pty_round_trip(count: usize) -> anyhow::Result<f64> {
    use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
    let pair = nix::pty::openpty(None, None).context("openpty")?;
    let mut tio = tcgetattr(&pair.slave).context("tcgetattr")?;
    cfmakeraw(&mut tio);
    tcsetattr(&pair.slave, SetArg::TCSANOW, &tio).context("tcsetattr")?;
    let mut host = std::fs::File::from(pair.slave);
    let mut device = std::fs::File::from(pair.master);
    // The answerer hands the master back instead of closing it: closing the master hangs the line
    // up, and the host's read of the last answer would fail with EIO.
    let answerer = std::thread::spawn(move || -> std::io::Result<std::fs::File> {
        let mut request = [0u8; PTY_REQUEST_BYTES];
        let answer = [0x06_u8; PTY_ANSWER_BYTES];
        for _ in 0..count {
            device.read_exact(&mut request)?;
            device.write_all(&answer)?;
        }
        Ok(device)
    });
    let request = [0x02_u8; PTY_REQUEST_BYTES];
    let mut answer = [0u8; PTY_ANSWER_BYTES];
    let started = Instant::now();
    let trips = (|| -> std::io::Result<()> {
        for _ in 0..count {
            host.write_all(&request)?;
            host.read_exact(&mut answer)?;
        }
        Ok(())
    })();
    let per_trip = started.elapsed().as_secs_f64() * 1e6 / count as f64;
    let device_side = answerer
        .join()
        .map_err(|_| anyhow::anyhow!("pty answerer panicked"))?;
    trips.context("pty host side")?;
    drop(device_side.context("pty device side")?);
    Ok(per_trip)
}

/// Sales waiting for the reference server's writer, with the channel each answer goes back on.
type Pending = (String, tokio::sync::oneshot::Sender<Result<u64, String>>);

/// Serves `POST /sale` on loopback with one writer thread that commits every waiting sale in one
/// transaction (group commit), then sends `count` sales from `concurrency` clients; returns sales
/// per second. The bound a simple, correct, durable server reaches on this machine.
fn reference_server(
    dir: &Path,
    run: usize,
    concurrency: usize,
    count: usize,
) -> anyhow::Result<f64> {
    let path = dir.join(format!("reference-{concurrency}-{run}.db"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let rate = runtime.block_on(async {
        let (tx, rx) = std::sync::mpsc::channel::<Pending>();
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || writer_loop(&path, &rx))
        };
        let app = axum::Router::new().route(
            "/sale",
            axum::routing::post(move |body: String| {
                let tx = tx.clone();
                async move {
                    let (answer_tx, answer_rx) = tokio::sync::oneshot::channel();
                    if tx.send((body, answer_tx)).is_err() {
                        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new());
                    }
                    match answer_rx.await {
                        Ok(Ok(id)) => (axum::http::StatusCode::OK, format!("{{\"id\":{id}}}")),
                        _ => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, String::new()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let rate = load(&format!("http://{addr}/sale"), concurrency, count).await?;
        server.abort();
        let _ = server.await;
        // The router (and with it the last sender) is gone: the writer ends.
        let _ = writer.join();
        Ok::<f64, anyhow::Error>(rate)
    })?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(rate)
}

/// The reference server's writer: waits for one sale, takes every other one waiting (at most
/// 256), commits them in one transaction, answers each.
fn writer_loop(path: &Path, rx: &std::sync::mpsc::Receiver<Pending>) -> anyhow::Result<()> {
    let conn = Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE IF NOT EXISTS sales (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    )?;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let result = (|| -> rusqlite::Result<Vec<u64>> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let mut ids = Vec::with_capacity(batch.len());
            {
                let mut insert = conn.prepare_cached("INSERT INTO sales (body) VALUES (?1)")?;
                for (body, _) in &batch {
                    insert.execute([body])?;
                    ids.push(conn.last_insert_rowid() as u64);
                }
            }
            conn.execute_batch("COMMIT")?;
            Ok(ids)
        })();
        match result {
            Ok(ids) => {
                for ((_, answer), id) in batch.into_iter().zip(ids) {
                    let _ = answer.send(Ok(id));
                }
            }
            Err(e) => {
                for (_, answer) in batch {
                    let _ = answer.send(Err(e.to_string()));
                }
            }
        }
    }
    Ok(())
}

/// Posts `count` sales from `concurrency` clients, each waiting for its answer before the next;
/// returns answered sales per second. Any answer but 200 fails the figure.
pub async fn load(url: &str, concurrency: usize, count: usize) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next, url) = (client.clone(), next.clone(), url.to_owned());
            tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                    let answer = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(SALE_BODY)
                        .send()
                        .await?;
                    anyhow::ensure!(answer.status().is_success(), "answered {}", answer.status());
                }
                Ok(())
            })
        })
        .collect();
    for c in clients {
        c.await??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    #[test]
    fn pty_round_trips_run() {
        let us = super::pty_round_trip(20).unwrap();
        assert!(us > 0.0);
    }
}

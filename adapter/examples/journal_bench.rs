//! Measures journal insert throughput with 1 and with 16 concurrent writers (group commit).
//!
//! Run with `cargo run --release -p adapter --example journal_bench [COUNT] [DIR]`. COUNT
//! inserts per run (default 2,000, at most 100,000); DIR is where the temporary database
//! goes (default: the system temp dir), so the figure reflects that disk's fsync cost.

use std::time::Instant;

use adapter::journal::{Journal, JournalConfig, NewReceipt};

fn sale(run: &str, i: usize) -> NewReceipt {
    NewReceipt {
        kkt_id: adapter::journal::DEFAULT_KKT_ID.into(),
        idempotency_key: format!("{run}-{i}"),
        request_hash: format!("hash-{i}"),
        request_body: "{\"type\":\"sale\",\"items\":[]}".to_string(),
    }
}

/// Inserts `count` sales from `writers` concurrent tasks; returns inserts per second.
async fn measure(journal: &Journal, run: &str, count: usize, writers: usize) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (journal, run) = (journal.clone(), run.to_string());
            tokio::spawn(async move {
                for i in (w..count).step_by(writers) {
                    journal
                        .insert_received(sale(&run, i))
                        .await
                        .expect("insert");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer task");
    }
    count as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000)
        .min(100_000);
    let parent = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(parent).expect("temp dir");
    let mut config = JournalConfig::new(dir.path().join("bench.db"));
    config.capacity_max = 2 * count as u64 + 1;
    let journal = Journal::open(config).expect("open");
    for writers in [1, 16] {
        let before = journal.stats();
        let rate = measure(&journal, &format!("w{writers}"), count, writers).await;
        let after = journal.stats();
        let transactions = after.transactions_committed - before.transactions_committed;
        println!(
            "writers={writers} inserts={count} inserts_per_s={rate:.0} transactions={transactions}"
        );
    }
    journal.close().await.expect("close");
}

//! SQLite in WAL mode on the mount, cut at a random moment while a writer commits:
//! with synchronous=FULL every acknowledged commit survives any cut mode; with NORMAL some
//! are lost (the negative control: if it loses nothing, the filesystem is not dropping data).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use powercut_fs::CutMode;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::{Fixture, fixture};

/// Rows one writer attempts per cycle, and the most a cut waits for (in acknowledged rows).
const ROWS_PER_CYCLE_MAX: i64 = 300;
const CUT_AFTER_ROWS_MAX: u64 = 150;
/// Bound on how long a cycle waits for its writer to reach the cut point: 2,000 × 5 ms.
const WAIT_POLLS_MAX: u32 = 2_000;

#[derive(Debug, Default)]
struct Figures {
    cycles: u32,
    acked: u64,
    acked_missing: u64,
    integrity_ok: u32,
}

fn open(db: &Path, synchronous: &str) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok(conn)
}

/// Commits rows `first..first + ROWS_PER_CYCLE_MAX` one per transaction until an error,
/// returning the acknowledged ids.
fn write_rows(db: &Path, synchronous: &str, first: i64, acked: &AtomicU64) -> Vec<i64> {
    let mut ids = Vec::new();
    let Ok(conn) = open(db, synchronous) else {
        return ids;
    };
    for id in first..first + ROWS_PER_CYCLE_MAX {
        let sql = "INSERT INTO receipts (id, payload) VALUES (?1, randomblob(200))";
        if conn.execute(sql, [id]).is_err() {
            break;
        }
        ids.push(id);
        acked.fetch_add(1, Ordering::SeqCst);
    }
    ids
}

fn one_cycle(
    fx: &mut Fixture,
    synchronous: &str,
    first: i64,
    cut_after: u64,
    mode: CutMode,
) -> Vec<i64> {
    let db = fx.path("db.sqlite");
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, acked, sync) = (db.clone(), Arc::clone(&acked), synchronous.to_owned());
        std::thread::spawn(move || write_rows(&db, &sync, first, &acked))
    };
    for _ in 0..WAIT_POLLS_MAX {
        if acked.load(Ordering::SeqCst) >= cut_after || writer.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    fx.fs.cut(mode).expect("cut");
    let ids = writer.join().expect("writer thread");
    fx.fs.remount().expect("remount");
    ids
}

/// Runs `cycles` cut-and-recover cycles. With `mixed`, the cut mode rotates through drop-all,
/// seeded writeback and a torn `-wal` write; otherwise every cut drops everything.
fn run(synchronous: &str, cycles: u32, seed: u64, mixed: bool) -> Figures {
    let mut fx = fixture();
    let db = fx.path("db.sqlite");
    {
        let conn = open(&db, "FULL").expect("open");
        conn.execute_batch("CREATE TABLE receipts (id INTEGER PRIMARY KEY, payload BLOB)")
            .expect("create table");
    }
    // The workspace's one seeded generator, so the cycles repeat run to run.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut figures = Figures::default();
    let mut expected = BTreeSet::new();
    let mut next_id = 1;
    for cycle in 0..cycles {
        let cut_after = 1 + rng.next_u64() % CUT_AFTER_ROWS_MAX;
        let mode_seed = rng.next_u64();
        let mode = match (mixed, cycle % 3) {
            (true, 1) => CutMode::Writeback {
                seed: mode_seed,
                fraction: 0.5,
            },
            (true, 2) => CutMode::TornWrite {
                file: "db.sqlite-wal".into(),
                seed: mode_seed,
            },
            _ => CutMode::DropAll,
        };
        let ids = one_cycle(&mut fx, synchronous, next_id, cut_after, mode);
        next_id += ROWS_PER_CYCLE_MAX;
        figures.acked += ids.len() as u64;
        expected.extend(ids);

        let conn = open(&db, synchronous).expect("reopen after the cut");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        figures.integrity_ok += u32::from(check == "ok");
        let mut stmt = conn.prepare("SELECT id FROM receipts").expect("prepare");
        let present: BTreeSet<i64> = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        figures.acked_missing += expected.difference(&present).count() as u64;
        // A lost row is counted once; later cycles only check what is still there.
        expected.retain(|id| present.contains(id));
        figures.cycles += 1;
    }
    println!(
        "sqlite wal synchronous={synchronous}: cycles={}, acked={}, acked_missing={}, integrity_ok={}/{}",
        figures.cycles, figures.acked, figures.acked_missing, figures.integrity_ok, figures.cycles
    );
    figures
}

#[test]
fn sqlite_synchronous_full_keeps_every_acknowledged_commit() {
    let figures = run("FULL", 12, 0x5eed_f011, true);
    assert_eq!(figures.acked_missing, 0, "{figures:?}");
    assert_eq!(figures.integrity_ok, figures.cycles, "{figures:?}");
    assert!(figures.acked > 0, "the writer never committed: {figures:?}");
}

#[test]
fn sqlite_synchronous_normal_loses_acknowledged_commits() {
    let figures = run("NORMAL", 20, 0x5eed_0002, false);
    assert_eq!(figures.integrity_ok, figures.cycles, "{figures:?}");
    assert!(
        figures.acked_missing > 0,
        "synchronous=NORMAL lost nothing, so the filesystem is not dropping unsynced writes: {figures:?}"
    );
}

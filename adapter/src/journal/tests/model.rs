//! Model-based test: random operations and restarts, compared with a plain in-memory model.
//!
//! The model is a map of rows with the specified state machine written as simply as possible.
//! After every operation the journal's outcome and counts must match the model's; after every
//! restart (and at the end) every row is compared field by field and the invariants checked.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{FN, Fixture, fiscal, sale};
use crate::hlc::HlcStamp;
use crate::journal::{
    BufferCounts, DocKind, InsertOutcome, JournalError, KktState, OfdStatus, ReceiptRow, RejectCode,
};

const KEYS: u8 = 8;
const CAPACITY: u64 = 5;

#[derive(Debug, Clone)]
enum Op {
    Insert(u8),
    InFlight(u8),
    Fiscalize(u8),
    Reject(u8),
    Shift,
    Fail(u8),
    Synced(u8),
    Dlq(u8),
    Retry(u8),
    ClockBack(u16),
    ClockForward(u16),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS;
    let fd = 1..14_u8;
    prop_oneof![
        3 => k.clone().prop_map(Op::Insert),
        2 => k.clone().prop_map(Op::InFlight),
        3 => k.clone().prop_map(Op::Fiscalize),
        1 => k.clone().prop_map(Op::Reject),
        1 => Just(Op::Shift),
        2 => fd.clone().prop_map(Op::Fail),
        2 => fd.clone().prop_map(Op::Synced),
        1 => fd.prop_map(Op::Dlq),
        1 => k.prop_map(Op::Retry),
        1 => any::<u16>().prop_map(Op::ClockBack),
        1 => any::<u16>().prop_map(Op::ClockForward),
        1 => Just(Op::Reopen),
    ]
}

/// The outcome classes both sides must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// The write changed a row.
    Changed,
    /// Accepted without change (replay, idempotent step).
    Unchanged,
    Capacity,
    Invalid,
    NotFound,
    /// An OFD step for an FD no row holds.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MRow {
    state: KktState,
    status: Option<OfdStatus>,
    retry_count: u32,
    fd: Option<u32>,
    error_code: Option<String>,
    /// Taken from the journal's answer at insert; it must never change afterwards.
    created_at_ms: i64,
    /// Moves from pending to the DLQ: each keeps one `delivery_rejection` row, across retries.
    rejections: i64,
}

#[derive(Debug, Default)]
struct Model {
    rows: BTreeMap<String, MRow>,
    ids: BTreeMap<String, String>,
    next_fd: u32,
}

impl Model {
    fn counts(&self) -> BufferCounts {
        let mut c = BufferCounts::default();
        for r in self.rows.values() {
            c.total += 1;
            let in_kkt = matches!(r.state, KktState::Received | KktState::InFlight);
            c.in_kkt += u64::from(in_kkt);
            c.rejected += u64::from(r.state == KktState::Rejected);
            match r.status {
                Some(OfdStatus::Pending) => {
                    c.pending += 1;
                    c.failed += u64::from(r.retry_count > 0);
                }
                Some(OfdStatus::Synced) => c.synced += 1,
                Some(OfdStatus::Dlq) => c.dlq += 1,
                None => {}
            }
        }
        c.undelivered = c.in_kkt + c.pending + c.dlq;
        c.oldest_undelivered_ms = self
            .rows
            .values()
            .filter(|r| matches!(r.status, Some(OfdStatus::Pending | OfdStatus::Dlq)))
            .map(|r| r.created_at_ms)
            .min();
        c
    }

    fn key_by_fd(&self, fd: u32) -> Option<String> {
        self.rows
            .iter()
            .find(|(_, r)| r.fd == Some(fd))
            .map(|(k, _)| k.clone())
    }

    fn fiscalize(&mut self, key: &str) -> Out {
        let fd = self.next_fd + 1;
        let Some(row) = self.rows.get_mut(key) else {
            return Out::NotFound;
        };
        if !matches!(row.state, KktState::Received | KktState::InFlight) {
            return Out::Invalid;
        }
        self.next_fd = fd;
        *row = MRow {
            state: KktState::Fiscalized,
            status: Some(OfdStatus::Pending),
            retry_count: 0,
            fd: Some(fd),
            error_code: None,
            created_at_ms: row.created_at_ms,
            rejections: 0,
        };
        Out::Changed
    }

    /// Applies an OFD step to the row holding `fd`.
    fn ofd(&mut self, fd: u32, from: &[OfdStatus], apply: impl FnOnce(&mut MRow)) -> Out {
        let Some(key) = self.key_by_fd(fd) else {
            return Out::Absent;
        };
        let Some(row) = self.rows.get_mut(&key) else {
            return Out::Absent;
        };
        if !row.status.is_some_and(|s| from.contains(&s)) {
            return Out::Invalid;
        }
        apply(row);
        Out::Changed
    }
}

fn key(k: u8) -> String {
    format!("k{k}")
}

fn class<T>(result: &Result<T, JournalError>, changed: impl Fn(&T) -> bool) -> Out {
    match result {
        Ok(v) if changed(v) => Out::Changed,
        Ok(_) => Out::Unchanged,
        Err(JournalError::CapacityExceeded { .. }) => Out::Capacity,
        Err(JournalError::InvalidTransition { .. }) => Out::Invalid,
        Err(JournalError::NotFound(_)) => Out::NotFound,
        Err(e) => panic!("unexpected journal error {e:?}"),
    }
}

/// Runs one operation on both sides; returns (model outcome, journal outcome, written row).
async fn step(f: &Fixture, m: &mut Model, op: &Op) -> (Out, Out, Option<ReceiptRow>) {
    let j = &f.journal;
    // A copy of the ids known before the step, so the model can change under the closure.
    let ids = m.ids.clone();
    let id = |k: u8| {
        ids.get(&key(k))
            .cloned()
            .unwrap_or_else(|| "missing".into())
    };
    match *op {
        Op::Insert(k) => {
            let expected = if m.rows.contains_key(&key(k)) {
                Out::Unchanged
            } else if m.counts().undelivered >= CAPACITY {
                Out::Capacity
            } else {
                Out::Changed
            };
            let r = j.insert_received(sale(&key(k))).await;
            let got = class(&r, |o| matches!(o, InsertOutcome::Inserted(_)));
            if let (Out::Changed, Ok(o)) = (expected, &r) {
                m.ids.insert(key(k), o.row().receipt_id.clone());
                m.rows.insert(
                    key(k),
                    MRow {
                        state: KktState::Received,
                        status: None,
                        retry_count: 0,
                        fd: None,
                        error_code: None,
                        created_at_ms: o.row().created_at_ms,
                        rejections: 0,
                    },
                );
            }
            (expected, got, r.ok().map(|o| o.row().clone()))
        }
        Op::InFlight(k) => {
            let expected = match m.rows.get_mut(&key(k)) {
                None => Out::NotFound,
                Some(r) if r.state == KktState::Received => {
                    r.state = KktState::InFlight;
                    Out::Changed
                }
                Some(r) if r.state == KktState::InFlight => Out::Unchanged,
                Some(_) => Out::Invalid,
            };
            let before = j.get_by_id(&id(k)).await.ok().flatten();
            let r = j.mark_in_flight(&id(k)).await;
            (
                expected,
                class(&r, |row| Some(row) != before.as_ref()),
                r.ok(),
            )
        }
        Op::Fiscalize(k) => {
            let fd = m.next_fd + 1;
            let expected = m.fiscalize(&key(k));
            let r = j.mark_fiscalized(&id(k), fiscal(fd)).await;
            (expected, class(&r, |_| true), r.ok())
        }
        Op::Reject(k) => {
            let expected = match m.rows.get_mut(&key(k)) {
                None => Out::NotFound,
                Some(r) if matches!(r.state, KktState::Received | KktState::InFlight) => {
                    r.state = KktState::Rejected;
                    r.error_code = Some(RejectCode::KktPrinter.as_str().into());
                    Out::Changed
                }
                Some(r) if r.state == KktState::Rejected => Out::Unchanged,
                Some(_) => Out::Invalid,
            };
            let before = j.get_by_id(&id(k)).await.ok().flatten();
            let r = j
                .mark_rejected(&id(k), RejectCode::KktPrinter, "no paper")
                .await;
            (
                expected,
                class(&r, |row| Some(row) != before.as_ref()),
                r.ok(),
            )
        }
        Op::Shift => {
            m.next_fd += 1;
            let fd = m.next_fd;
            let r = j
                .insert_fiscal_document(
                    crate::journal::DEFAULT_KKT_ID,
                    DocKind::ShiftOpen,
                    fiscal(fd),
                )
                .await;
            if let Ok(o) = &r {
                let k = o.row().idempotency_key.clone();
                m.ids.insert(k.clone(), o.row().receipt_id.clone());
                m.rows.insert(
                    k,
                    MRow {
                        state: KktState::Fiscalized,
                        status: Some(OfdStatus::Pending),
                        retry_count: 0,
                        fd: Some(fd),
                        error_code: None,
                        created_at_ms: o.row().created_at_ms,
                        rejections: 0,
                    },
                );
            }
            let got = class(&r, |o| matches!(o, InsertOutcome::Inserted(_)));
            (Out::Changed, got, r.ok().map(|o| o.row().clone()))
        }
        Op::Fail(fd) => {
            let fd = u32::from(fd);
            let expected = m.ofd(fd, &[OfdStatus::Pending], |r| r.retry_count += 1);
            let r = j.record_delivery_failure(FN, fd, "refused", 5).await;
            (expected, ofd_class(&r), r.ok().flatten())
        }
        Op::Synced(fd) => {
            let fd = u32::from(fd);
            let from = [OfdStatus::Pending, OfdStatus::Synced];
            let expected = m.ofd(fd, &from, |r| r.status = Some(OfdStatus::Synced));
            let r = j.mark_synced(FN, fd, None).await;
            (expected, ofd_class(&r), r.ok().flatten())
        }
        Op::Dlq(fd) => {
            let fd = u32::from(fd);
            let expected = m.ofd(fd, &[OfdStatus::Pending, OfdStatus::Dlq], |r| {
                r.rejections += i64::from(r.status == Some(OfdStatus::Pending));
                r.status = Some(OfdStatus::Dlq);
                r.error_code = Some("ofd_14".into());
                r.retry_count += 1;
            });
            let r = j.mark_dlq(FN, fd, "ofd_14", "format", None).await;
            (expected, ofd_class(&r), r.ok().flatten())
        }
        Op::Retry(k) => {
            let expected = match m.rows.get_mut(&key(k)) {
                None => Out::NotFound,
                Some(r) if r.status == Some(OfdStatus::Dlq) => {
                    r.status = Some(OfdStatus::Pending);
                    r.error_code = None;
                    Out::Changed
                }
                Some(_) => Out::Invalid,
            };
            let r = j.dlq_retry(&id(k)).await;
            (expected, class(&r, |_| true), r.ok())
        }
        Op::ClockBack(_) | Op::ClockForward(_) | Op::Reopen => {
            (Out::Unchanged, Out::Unchanged, None)
        }
    }
}

fn ofd_class(r: &Result<Option<ReceiptRow>, JournalError>) -> Out {
    match r {
        Ok(None) => Out::Absent,
        other => class(other, |_| true),
    }
}

/// Compares every row and the invariants (after a restart and at the end).
async fn compare_all(f: &Fixture, m: &Model) -> Result<(), TestCaseError> {
    f.journal
        .check_invariants()
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (k, expected) in &m.rows {
        let row = f.journal.get_by_key(k).await.ok().flatten();
        let row = row.ok_or_else(|| TestCaseError::fail(format!("row {k} lost")))?;
        let got = MRow {
            state: row.kkt_state,
            status: row.status,
            retry_count: row.retry_count,
            fd: row.fiscal.as_ref().map(|x| x.fd_number),
            error_code: row.error_code.clone(),
            created_at_ms: row.created_at_ms,
            rejections: f.sql_i64(&format!(
                "SELECT count(*) FROM delivery_rejection WHERE receipt_id = '{}'",
                row.receipt_id
            )),
        };
        prop_assert_eq!(&got, expected, "row {}", k);
    }
    let pending = f.sql_i64("SELECT count(*) FROM receipts WHERE status='pending'");
    prop_assert_eq!(pending as u64, m.counts().pending);
    Ok(())
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut f = Fixture::with(|c| c.capacity_max = CAPACITY).await;
    let mut m = Model::default();
    let mut hlc_max = HlcStamp::ZERO;
    for op in &ops {
        match *op {
            Op::ClockBack(ms) => f.clock.set(f.clock_ms() - u64::from(ms) * 1_000),
            Op::ClockForward(ms) => f.clock.advance(u64::from(ms)),
            Op::Reopen => {
                f = f.reopen().await;
                compare_all(&f, &m).await?;
            }
            _ => {}
        }
        let (expected, got, row) = step(&f, &mut m, op).await;
        prop_assert_eq!(expected, got, "outcome of {:?}", op);
        if let (Out::Changed, Some(row)) = (got, row) {
            prop_assert!(
                row.hlc > hlc_max,
                "stamp went back: {:?} <= {:?}",
                row.hlc,
                hlc_max
            );
            hlc_max = row.hlc;
        }
        let counts = f
            .journal
            .counts()
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(counts, m.counts(), "counts after {:?}", op);
    }
    compare_all(&f, &m).await?;
    prop_assert!(f.journal.hlc_high_water().await.unwrap_or_default() >= hlc_max);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn journal_matches_the_model_across_restarts(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rt.block_on(run(ops))?;
    }
}

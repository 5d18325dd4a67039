//! The on-disk form of the FN state: the atomic head file, its log beside it, migration and replay.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::log::{self, LogFile, LogRecord, sync_dir, with_suffix};
use super::{FnState, OpenReceipt, STATE_VERSION, StoreError};

/// The head file: [`FnState`] without the documents, plus how much of the log it reflects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Head {
    version: u32,
    /// Must match the log header; a reset starts a new generation.
    log_generation: u64,
    /// Log records already reflected in the counters below; later ones are replayed on load.
    log_records: u64,
    seed: u64,
    fn_serial: String,
    reg_number: String,
    kkt_serial: String,
    inn: String,
    secret: Vec<u8>,
    last_fd: u32,
    shift_number: u32,
    shift_open: bool,
    shift_opened_at: u32,
    receipts_in_shift: u32,
    open_receipt: Option<OpenReceipt>,
    clock_offset_s: i64,
}

impl Head {
    fn of(st: &FnState, log_generation: u64, log_records: u64) -> Self {
        let h = st.head_clone();
        Self {
            version: STATE_VERSION,
            log_generation,
            log_records,
            seed: h.seed,
            fn_serial: h.fn_serial,
            reg_number: h.reg_number,
            kkt_serial: h.kkt_serial,
            inn: h.inn,
            secret: h.secret,
            last_fd: h.last_fd,
            shift_number: h.shift_number,
            shift_open: h.shift_open,
            shift_opened_at: h.shift_opened_at,
            receipts_in_shift: h.receipts_in_shift,
            open_receipt: h.open_receipt,
            clock_offset_s: h.clock_offset_s,
        }
    }

    fn into_state(self) -> FnState {
        FnState {
            version: STATE_VERSION,
            seed: self.seed,
            fn_serial: self.fn_serial,
            reg_number: self.reg_number,
            kkt_serial: self.kkt_serial,
            inn: self.inn,
            secret: self.secret,
            last_fd: self.last_fd,
            shift_number: self.shift_number,
            shift_open: self.shift_open,
            shift_opened_at: self.shift_opened_at,
            receipts_in_shift: self.receipts_in_shift,
            open_receipt: self.open_receipt,
            documents: Vec::new(),
            clock_offset_s: self.clock_offset_s,
        }
    }
}

/// Just the version field, read first to choose the layout.
#[derive(Deserialize)]
struct Probe {
    version: u32,
}

/// Where the state lives; `memory()` keeps it in memory only (unit tests).
#[derive(Debug)]
pub struct Store {
    path: Option<PathBuf>,
    log: Option<LogFile>,
}

/// The log file of the state file `path`: `path` + `.log`, beside it.
pub fn log_path(path: &Path) -> PathBuf {
    with_suffix(path, ".log")
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync dir.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = with_suffix(path, ".tmp");
    let mut f = log::create_private(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

impl Store {
    /// A store backed by `path` (the head file) and `path.log`; call [`Store::load`] or
    /// [`Store::create`] before committing.
    pub fn file(path: PathBuf) -> Self {
        Self {
            path: Some(path),
            log: None,
        }
    }

    /// A store that keeps nothing (for unit tests of the device logic).
    pub fn memory() -> Self {
        Self {
            path: None,
            log: None,
        }
    }

    fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn inconsistent(path: &Path, reason: String) -> StoreError {
        StoreError::Inconsistent {
            path: path.to_path_buf(),
            reason,
        }
    }

    /// Loads the state, or `None` when the head file does not exist yet. A state file of the old
    /// single-file layout (version 1) is migrated to head + log. A torn last log record is cut off.
    pub fn load(&mut self) -> Result<Option<FnState>, StoreError> {
        let Some(path) = self.path.clone() else {
            return Ok(None);
        };
        let Some(bytes) = read_opt(&path)? else {
            return Ok(None);
        };
        let corrupt = |source| StoreError::Corrupt {
            path: path.clone(),
            source,
        };
        let probe: Probe = serde_json::from_slice(&bytes).map_err(corrupt)?;
        match probe.version {
            1 => {
                let mut st: FnState = serde_json::from_slice(&bytes).map_err(corrupt)?;
                st.version = STATE_VERSION;
                // The log is written before the head replaces the old file, so a crash here leaves the
                // old file in place and the next start migrates again.
                self.create(&st)?;
                tracing::info!(path = %path.display(), documents = st.documents.len(), "migrated FN state to head + log");
                Ok(Some(st))
            }
            STATE_VERSION => {
                let head: Head = serde_json::from_slice(&bytes).map_err(corrupt)?;
                self.load_head(&path, head).map(Some)
            }
            v => Err(Self::inconsistent(
                &path,
                format!("unknown state version {v}"),
            )),
        }
    }

    fn load_head(&mut self, path: &Path, head: Head) -> Result<FnState, StoreError> {
        log::make_private(path).map_err(Self::io_err(path))?;
        let log_path = log_path(path);
        let scan = read_opt(&log_path)?.and_then(|b| log::scan(&b));
        let scan = match scan {
            Some(s) if s.generation == head.log_generation => s,
            Some(s) if s.generation > head.log_generation => {
                return Err(Self::inconsistent(
                    &log_path,
                    format!(
                        "log generation {} is newer than the head's {}",
                        s.generation, head.log_generation
                    ),
                ));
            }
            // No log, or one left from before a reset: fine only if the head counts no record yet
            // (the crash came between writing the head and creating its log).
            _ if head.log_records == 0 => {
                let log = LogFile::create(&log_path, head.log_generation, &[])
                    .map_err(Self::io_err(&log_path))?;
                self.log = Some(log);
                return Ok(head.into_state());
            }
            _ => {
                return Err(Self::inconsistent(
                    &log_path,
                    format!(
                        "log of generation {} with {} committed records is missing",
                        head.log_generation, head.log_records
                    ),
                ));
            }
        };
        if (scan.records.len() as u64) < head.log_records {
            return Err(Self::inconsistent(
                &log_path,
                format!(
                    "the head counts {} log records, the log holds {} valid ones",
                    head.log_records,
                    scan.records.len()
                ),
            ));
        }
        self.log = Some(LogFile::open(&log_path, &scan).map_err(Self::io_err(&log_path))?);
        let counted = head.log_records;
        let mut st = head.into_state();
        for (i, rec) in (0u64..).zip(scan.records) {
            if i < counted {
                st.restore(rec);
            } else {
                st.apply(rec);
            }
        }
        Ok(st)
    }

    /// Writes `st` as a new FN state from scratch (first start, migration, reset): a new log generation
    /// holding its documents, and the head.
    pub fn create(&mut self, st: &FnState) -> Result<(), StoreError> {
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        let log_path = log_path(&path);
        let old = self.log.as_ref().map(|l| l.generation);
        let generation = old.max(log::generation_of(&log_path)).unwrap_or(0) + 1;
        let records: Vec<LogRecord> = st.documents.iter().cloned().map(LogRecord::Doc).collect();
        let head = Head::of(st, generation, records.len() as u64);
        let head_bytes =
            serde_json::to_vec(&head).map_err(|e| Self::io_err(&path)(std::io::Error::other(e)))?;
        // Order matters for a crash in between. Without documents the head goes first: a head whose log
        // is older and counts no record is completed on load. With documents (migration) the log goes
        // first: the old single file stays until the head replaces it.
        if records.is_empty() {
            write_atomic(&path, &head_bytes).map_err(Self::io_err(&path))?;
        }
        self.log = None;
        let log =
            LogFile::create(&log_path, generation, &records).map_err(Self::io_err(&log_path))?;
        self.log = Some(log);
        if !records.is_empty() {
            write_atomic(&path, &head_bytes).map_err(Self::io_err(&path))?;
        }
        Ok(())
    }

    /// Rewrites the head file atomically (counters, open receipt, clock offset), recording that it
    /// reflects every log record so far.
    pub fn save_head(&mut self, st: &FnState) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let log = self
            .log
            .as_ref()
            .ok_or_else(|| StoreError::NotOpen(path.clone()))?;
        let head = Head::of(st, log.generation, log.records);
        let bytes =
            serde_json::to_vec(&head).map_err(|e| Self::io_err(path)(std::io::Error::other(e)))?;
        write_atomic(path, &bytes).map_err(Self::io_err(path))
    }

    /// Appends one record to the log and fsyncs it; when this returns Ok the change is committed.
    pub fn append(&mut self, rec: &LogRecord) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let log = self
            .log
            .as_mut()
            .ok_or_else(|| StoreError::NotOpen(path.clone()))?;
        log.append(rec).map_err(Self::io_err(&log_path(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OfdAck, StoredDoc};
    use ofd_proto::DocCode;

    fn doc(fd: u32, doc_code: u8, shift: u32, receipt_no: u32) -> StoredDoc {
        StoredDoc {
            fd,
            doc_code,
            time: 1_700_000_000 + fd,
            shift,
            receipt_no,
            op_type: 1,
            total: 100,
            cash: 100,
            card: 0,
            change: 0,
            items: Vec::new(),
            tag_1192: Some(format!("order-{fd}")),
            fpd: fd,
            tlv: vec![1, 2, 3],
            ack: None,
        }
    }

    /// Commits `rec` the way the device does: append (fsync), then apply.
    fn commit(store: &mut Store, st: &mut FnState, rec: LogRecord) {
        store.append(&rec).expect("append");
        st.apply(rec);
    }

    fn load(path: &Path) -> Result<Option<FnState>, StoreError> {
        Store::file(path.to_path_buf()).load()
    }

    /// A store with shift 1 open, receipts FD 2 and 3, the head written after FD 2 (an open receipt
    /// at that time), FD 3 in the log only.
    fn shift_with_receipts(path: &Path) -> (Store, FnState) {
        let mut store = Store::file(path.to_path_buf());
        let mut st = FnState::fresh(3);
        store.create(&st).expect("create");
        commit(
            &mut store,
            &mut st,
            LogRecord::Doc(doc(1, DocCode::ShiftOpen.code(), 1, 0)),
        );
        commit(
            &mut store,
            &mut st,
            LogRecord::Doc(doc(2, DocCode::Receipt.code(), 1, 1)),
        );
        st.open_receipt = Some(OpenReceipt {
            op_type: 1,
            operator: 1,
            items: Vec::new(),
            extra_tlv: b"x".to_vec(),
        });
        store.save_head(&st).expect("head");
        commit(
            &mut store,
            &mut st,
            LogRecord::Doc(doc(3, DocCode::Receipt.code(), 1, 2)),
        );
        (store, st)
    }

    #[test]
    fn create_then_load_round_trips_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fn.json");
        assert_eq!(load(&path).expect("load"), None);
        let (_store, st) = shift_with_receipts(&path);
        let back = load(&path).expect("load").expect("state");
        assert_eq!(back, st);
        assert_eq!((back.last_fd, back.receipts_in_shift), (3, 2));
        assert_eq!(back.open_receipt, None, "replaying FD 3 closed the receipt");
        assert!(!with_suffix(&path, ".tmp").exists());
        assert!(!with_suffix(&log_path(&path), ".tmp").exists());
    }

    #[test]
    fn corrupt_head_is_an_error_not_a_fresh_fn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fn.json");
        std::fs::write(&path, b"{not json").expect("write");
        assert!(matches!(load(&path), Err(StoreError::Corrupt { .. })));
        std::fs::write(&path, br#"{"version":9}"#).expect("write");
        assert!(matches!(load(&path), Err(StoreError::Inconsistent { .. })));
    }

    #[test]
    fn torn_last_record_is_discarded_and_the_fd_counter_never_goes_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fn.json");
        let (_store, st) = shift_with_receipts(&path);
        let full = std::fs::read(log_path(&path)).expect("log");
        let last =
            log::encode(&LogRecord::Doc(doc(3, DocCode::Receipt.code(), 1, 2))).expect("encode");
        let start = full.len() - last.len();
        // Every cut inside the last record (stepping to keep the loop short) and a flipped byte in it.
        let mut damaged: Vec<Vec<u8>> = (start..full.len())
            .step_by(13)
            .map(|n| full[..n].to_vec())
            .collect();
        let mut flipped = full.clone();
        flipped[full.len() - 2] ^= 0x40;
        damaged.push(flipped);
        for bytes in damaged {
            std::fs::write(log_path(&path), &bytes).expect("write log");
            let back = load(&path).expect("load").expect("state");
            assert_eq!(back.last_fd, 2, "FD 3 was never answered; FD 2 was");
            assert_eq!(back.documents, st.documents[..2]);
            assert!(
                back.open_receipt.is_some(),
                "the receipt FD 3 would have closed is open again"
            );
            let len = std::fs::metadata(log_path(&path)).expect("meta").len();
            assert_eq!(len as usize, start, "the torn tail was cut off");
        }
        // Appending after the cut gives a clean log again, and FD 3 is the next number.
        let mut store = Store::file(path.clone());
        let mut st = store.load().expect("load").expect("state");
        let next = doc(st.last_fd + 1, DocCode::Receipt.code(), 1, 2);
        commit(&mut store, &mut st, LogRecord::Doc(next));
        let back = load(&path).expect("load").expect("state");
        assert_eq!(back, st);
        assert_eq!(back.last_fd, 3);
    }

    #[test]
    fn a_lost_committed_record_is_an_error_not_a_rollback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fn.json");
        let (_store, _st) = shift_with_receipts(&path);
        let full = std::fs::read(log_path(&path)).expect("log");
        // Cut into FD 2, which the head counts as committed.
        let fd3 =
            log::encode(&LogRecord::Doc(doc(3, DocCode::Receipt.code(), 1, 2))).expect("encode");
        std::fs::write(log_path(&path), &full[..full.len() - fd3.len() - 1]).expect("write");
        assert!(matches!(load(&path), Err(StoreError::Inconsistent { .. })));
        std::fs::remove_file(log_path(&path)).expect("rm");
        assert!(matches!(load(&path), Err(StoreError::Inconsistent { .. })));
    }

    #[test]
    fn acks_survive_and_head_changes_after_them_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fn.json");
        let (mut store, mut st) = shift_with_receipts(&path);
        let ack = OfdAck {
            response_code: 0,
            time: 1_700_000_100,
            operator_sign: vec![9; 4],
            raw: vec![7; 10],
        };
        commit(
            &mut store,
            &mut st,
            LogRecord::Ack {
                fd: 1,
                ack: ack.clone(),
            },
        );
        st.clock_offset_s = 3600;
        store.save_head(&st).expect("head");
        let back = load(&path).expect("load").expect("state");
        assert_eq!(back, st);
        assert_eq!(back.doc(1).and_then(|d| d.ack.clone()), Some(ack));
        assert_eq!(back.unsent().map(|d| d.fd).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn single_file_state_is_migrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fn.json");
        let mut old = FnState::fresh(5);
        old.version = 1;
        old.apply(LogRecord::Doc(doc(1, DocCode::ShiftOpen.code(), 1, 0)));
        old.apply(LogRecord::Doc(doc(2, DocCode::Receipt.code(), 1, 1)));
        old.documents[0].ack = Some(OfdAck {
            response_code: 0,
            time: 1,
            operator_sign: Vec::new(),
            raw: vec![1],
        });
        std::fs::write(&path, serde_json::to_vec(&old).expect("json")).expect("write");
        let mut want = old.clone();
        want.version = STATE_VERSION;
        assert_eq!(load(&path).expect("migrate"), Some(want.clone()));
        let head: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("head")).expect("json");
        assert_eq!(head["version"], STATE_VERSION);
        assert!(
            head.get("documents").is_none(),
            "documents moved to the log"
        );
        assert_eq!(load(&path).expect("load"), Some(want));
    }

    #[test]
    fn reset_starts_a_new_generation_even_if_the_log_is_not_rewritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fn.json");
        let (mut store, st) = shift_with_receipts(&path);
        let fresh = FnState::fresh(st.seed + 1);
        // The crash window of a reset: the new head is written, the old log is still there.
        let head = Head::of(&fresh, 2, 0);
        write_atomic(&path, &serde_json::to_vec(&head).expect("json")).expect("head");
        assert_eq!(load(&path).expect("load"), Some(fresh.clone()));
        assert_eq!(log::generation_of(&log_path(&path)), Some(2));
        // The full reset through the store.
        let mut again = FnState::fresh(st.seed + 2);
        store.create(&again).expect("reset");
        assert_eq!(log::generation_of(&log_path(&path)), Some(3));
        commit(
            &mut store,
            &mut again,
            LogRecord::Doc(doc(1, DocCode::ShiftOpen.code(), 1, 0)),
        );
        assert_eq!(load(&path).expect("load"), Some(again));
    }
}

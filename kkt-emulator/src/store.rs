//! The durable fiscal-storage (FN) state: a small atomic head file plus an append-only document log.
//!
//! The head (`--state FILE`: identity, counters, open receipt, clock offset) is rewritten atomically
//! (temp file, fsync, rename, fsync dir); it is small and does not grow with the FN. Every committed
//! document and OFD acknowledgement is one record appended to `FILE.log` and fsynced. So a commit costs
//! O(size of the change), not O(documents in the FN).
//!
//! The head records how many log records it already reflects (`log_records`). A document commit only
//! appends to the log; on load, records beyond that mark are replayed onto the head, and a document's
//! effect on the counters is derived from the document itself ([`FnState::apply`]), so the replayed
//! state equals the state the device answered from. A torn tail record is discarded: its fsync never
//! returned, so its command was never answered.

use std::path::PathBuf;

use ofd_proto::DocCode;
use serde::{Deserialize, Serialize};

mod file;
mod log;

pub use file::{Store, log_path};
pub use log::LogRecord;

/// Errors while loading or saving the FN state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("state file {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file exists but is not a state file this version understands.
    #[error("state file {path} is corrupt: {source}")]
    Corrupt {
        /// The file involved.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The head file and the log do not fit together (a committed record is missing), or the version is
    /// unknown.
    #[error("FN state {path} is inconsistent: {reason}")]
    Inconsistent {
        /// The file involved.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// A file-backed store was used before `load` or `create` opened its log.
    #[error("FN state {0}: the log is not open (load or create first)")]
    NotOpen(PathBuf),
}

/// Version of the state layout: 1 was one JSON file with every document, 2 is head file + log.
pub const STATE_VERSION: u32 = 2;

/// One receipt line as the emulator keeps it (the TLV is derived from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// Item name (tag 1030).
    pub name: String,
    /// Quantity in units of 10^-6 as the device receives it (FF46), or 10^-3 times 1000 (legacy 80).
    pub quantity_micro: u64,
    /// Unit price in kopecks (tag 1079).
    pub price: u64,
    /// Line total in kopecks (tag 1043).
    pub sum: u64,
    /// FFD 1199 VAT rate code.
    pub vat: u8,
    /// Tag 1214 payment method.
    pub payment_method: u8,
    /// Tag 1212 payment object.
    pub payment_object: u8,
}

/// The OFD's acknowledgement of a document, as the FN stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfdAck {
    /// Tag 1022 response code (0 = accepted).
    pub response_code: u8,
    /// Time of the acknowledgement (tag 1012 in the ack), Unix seconds.
    pub time: u32,
    /// The operator's sign (tag 1078) or empty when the ack carried none.
    pub operator_sign: Vec<u8>,
    /// The ack as written by the host, kept for FF3C.
    pub raw: Vec<u8>,
}

/// A fiscal document committed to the FN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDoc {
    /// FD number (tag 1040).
    pub fd: u32,
    /// FFD document code (`ofd_proto::DocCode`): 2 shift open, 3 receipt, 5 shift close.
    pub doc_code: u8,
    /// Unix seconds of the device clock (tag 1012).
    pub time: u32,
    /// Shift number (tag 1038).
    pub shift: u32,
    /// Receipt number in the shift (tag 1042); 0 for shift documents.
    pub receipt_no: u32,
    /// Operation type (tag 1054); 0 for shift documents.
    pub op_type: u8,
    /// Receipt total in kopecks (tag 1020); 0 for shift documents.
    pub total: u64,
    /// Cash paid (tag 1031).
    pub cash: u64,
    /// Electronic payment (tag 1081).
    pub card: u64,
    /// Change given, kopecks.
    pub change: u64,
    /// Receipt lines.
    pub items: Vec<ItemRecord>,
    /// Tag 1192 if the host passed it.
    pub tag_1192: Option<String>,
    /// The fiscal sign (tag 1077), computed where the document is built.
    pub fpd: u32,
    /// The whole document as FFD 1.05 TLV (outer tag = document code).
    pub tlv: Vec<u8>,
    /// The OFD's acknowledgement once received.
    pub ack: Option<OfdAck>,
}

impl StoredDoc {
    /// The document's code as `ofd-proto` names it; `None` for a code the emulator never commits.
    pub fn code(&self) -> Option<DocCode> {
        DocCode::from_code(self.doc_code)
    }
}

/// A receipt being built (mode 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenReceipt {
    /// Operation type (tag 1054): 1 sale, 2 sale refund, 3 buy, 4 buy refund.
    pub op_type: u8,
    /// Operator who opened it.
    pub operator: u8,
    /// Lines so far.
    pub items: Vec<ItemRecord>,
    /// Extra TLV passed with FF0C, in order.
    pub extra_tlv: Vec<u8>,
}

/// Everything the FN must never forget (in memory; on disk it is split into head and log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FnState {
    /// Layout version ([`STATE_VERSION`]; 1 in a state file of the old single-file layout).
    pub version: u32,
    /// The seed the FN identity was derived from; a reset derives the next FN from `seed + 1`.
    pub seed: u64,
    /// FN serial number (tag 1041), 16 digits.
    pub fn_serial: String,
    /// KKT registration number (tag 1037).
    pub reg_number: String,
    /// KKT serial number (tag 1013).
    pub kkt_serial: String,
    /// Seller INN (tag 1018).
    pub inn: String,
    /// Per-FN secret for the FPD HMAC.
    pub secret: Vec<u8>,
    /// Last FD number issued; the next document gets `last_fd + 1`.
    pub last_fd: u32,
    /// Number of the current (or last) shift.
    pub shift_number: u32,
    /// Whether a shift is open.
    pub shift_open: bool,
    /// Device time the current shift opened, Unix seconds.
    pub shift_opened_at: u32,
    /// Receipts closed in the current shift.
    pub receipts_in_shift: u32,
    /// The receipt being built, if any.
    pub open_receipt: Option<OpenReceipt>,
    /// Every committed document in FD order.
    pub documents: Vec<StoredDoc>,
    /// Device clock minus host clock, seconds.
    pub clock_offset_s: i64,
}

impl FnState {
    /// A factory-fresh FN whose identity is derived from `seed`, so tests get stable numbers.
    pub fn fresh(seed: u64) -> Self {
        let secret: Vec<u8> = format!("kkt-emulator-fn-secret-{seed:016}").into_bytes();
        Self {
            version: STATE_VERSION,
            seed,
            fn_serial: format!("{:016}", 9_999_078_900_000_000u64 + seed % 100_000_000),
            reg_number: format!("{:016}", 1_000_000_000_000_000u64 + seed % 100_000_000),
            kkt_serial: format!("{:016}", 31_000_000u64 + seed % 1_000_000),
            inn: "7700000000".to_string(),
            secret,
            last_fd: 0,
            shift_number: 0,
            shift_open: false,
            shift_opened_at: 0,
            receipts_in_shift: 0,
            open_receipt: None,
            documents: Vec::new(),
            clock_offset_s: 0,
        }
    }

    /// Documents not yet acknowledged by the OFD, in FD order.
    ///
    /// The FN takes the OFD's tickets strictly in FD order (only the first unsent document can be
    /// acknowledged), so the acknowledged documents are a prefix of the journal: the search for the
    /// first unsent one is a binary search, as cheap with 10,000 documents behind it as with none,
    /// the way a real FN's index is (debug builds check the prefix).
    pub fn unsent(&self) -> impl Iterator<Item = &StoredDoc> {
        let first = self.documents.partition_point(|d| d.ack.is_some());
        debug_assert!(
            self.documents[..first].iter().all(|d| d.ack.is_some()),
            "acknowledged documents are a prefix of the journal"
        );
        self.documents[first..].iter().filter(|d| d.ack.is_none())
    }

    /// The document with FD number `fd`.
    pub fn doc(&self, fd: u32) -> Option<&StoredDoc> {
        // Documents are appended in FD order with no gaps, so this is usually a direct index.
        let idx = usize::try_from(fd.checked_sub(1)?).ok()?;
        match self.documents.get(idx) {
            Some(d) if d.fd == fd => Some(d),
            _ => self.documents.iter().find(|d| d.fd == fd),
        }
    }

    fn doc_mut(&mut self, fd: u32) -> Option<&mut StoredDoc> {
        let idx = usize::try_from(fd.checked_sub(1)?).ok()?;
        if self.documents.get(idx).is_some_and(|d| d.fd == fd) {
            return self.documents.get_mut(idx);
        }
        self.documents.iter_mut().find(|d| d.fd == fd)
    }

    /// A copy of everything but the documents (what the head file holds), without cloning the journal.
    pub fn head_clone(&self) -> Self {
        Self {
            version: self.version,
            seed: self.seed,
            fn_serial: self.fn_serial.clone(),
            reg_number: self.reg_number.clone(),
            kkt_serial: self.kkt_serial.clone(),
            inn: self.inn.clone(),
            secret: self.secret.clone(),
            last_fd: self.last_fd,
            shift_number: self.shift_number,
            shift_open: self.shift_open,
            shift_opened_at: self.shift_opened_at,
            receipts_in_shift: self.receipts_in_shift,
            open_receipt: self.open_receipt.clone(),
            documents: Vec::new(),
            clock_offset_s: self.clock_offset_s,
        }
    }

    /// Applies a committed log record: the document and its effect on the counters, or an OFD ticket.
    ///
    /// The device commits documents through this very function, and load replays uncounted log records
    /// through it, so a replayed state cannot drift from the state the device answered from.
    pub fn apply(&mut self, rec: LogRecord) {
        if let LogRecord::Doc(doc) = &rec {
            match doc.code() {
                Some(DocCode::ShiftOpen) => {
                    self.shift_number = doc.shift;
                    self.shift_open = true;
                    self.shift_opened_at = doc.time;
                    self.receipts_in_shift = 0;
                }
                Some(DocCode::Receipt) => {
                    self.receipts_in_shift = doc.receipt_no;
                    self.open_receipt = None;
                }
                Some(DocCode::ShiftClose) => self.shift_open = false,
                _ => {}
            }
        }
        self.restore(rec);
    }

    /// Adds a log record the head already reflects: only the journal changes (and the FD counter, which
    /// never goes backwards).
    pub(crate) fn restore(&mut self, rec: LogRecord) {
        match rec {
            LogRecord::Doc(doc) => {
                self.last_fd = self.last_fd.max(doc.fd);
                self.documents.push(doc);
            }
            LogRecord::Ack { fd, ack } => {
                if let Some(d) = self.doc_mut(fd) {
                    d.ack = Some(ack);
                }
            }
        }
    }
}

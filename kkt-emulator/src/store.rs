//! The durable fiscal-storage (FN) state and its atomic save: temp file, fsync, rename, fsync dir.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors while loading or saving the FN state file.
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
}

/// Version of the state file layout, checked on load.
pub const STATE_VERSION: u32 = 1;

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
    /// FFD document code: 2 shift open, 3 receipt, 5 shift close.
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
    /// The fiscal sign (tag 1077), see `docs::fpd`.
    pub fpd: u32,
    /// The whole document as FFD 1.05 TLV (outer tag = document code).
    pub tlv: Vec<u8>,
    /// The OFD's acknowledgement once received.
    pub ack: Option<OfdAck>,
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

/// Everything the FN must never forget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FnState {
    /// Layout version.
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
    pub fn unsent(&self) -> impl Iterator<Item = &StoredDoc> {
        self.documents.iter().filter(|d| d.ack.is_none())
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
}

/// Where the state lives; `None` keeps it in memory only (unit tests).
#[derive(Debug, Clone)]
pub struct Store {
    path: Option<PathBuf>,
}

impl Store {
    /// A store backed by `path`.
    pub fn file(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    /// A store that keeps nothing (for unit tests of the device logic).
    pub fn memory() -> Self {
        Self { path: None }
    }

    /// Loads the state, or `None` when the file does not exist yet.
    pub fn load(&self) -> Result<Option<FnState>, StoreError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    path: path.clone(),
                    source,
                });
            }
        };
        let state: FnState =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                path: path.clone(),
                source,
            })?;
        Ok(Some(state))
    }

    /// Saves the state durably: after this returns, a crash cannot lose it or expose half of it.
    pub fn save(&self, state: &FnState) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let err = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(state).map_err(|e| err(std::io::Error::other(e)))?;
        let tmp = tmp_path(path);
        let mut f = File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(err)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir).and_then(|d| d.sync_all()).map_err(err)
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fn.json");
        let store = Store::file(path.clone());
        assert_eq!(store.load().expect("load"), None);
        let mut st = FnState::fresh(7);
        st.last_fd = 42;
        store.save(&st).expect("save");
        assert_eq!(store.load().expect("load"), Some(st));
        assert!(!tmp_path(&path).exists());
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_fresh_fn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fn.json");
        std::fs::write(&path, b"{not json").expect("write");
        assert!(matches!(
            Store::file(path).load(),
            Err(StoreError::Corrupt { .. })
        ));
    }
}

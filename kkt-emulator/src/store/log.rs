//! The append-only document log beside the FN head file: one length-prefixed, CRC-checked record per
//! committed document or OFD acknowledgement, fsynced before the answer.
//!
//! Layout: a 16-byte header (`KKTFNLOG` + generation u64 LE), then records of `len u32 LE`,
//! `crc32c u32 LE` of the payload, and the payload (the record as JSON). A record whose length runs past
//! the end of the file, whose CRC does not match or whose payload does not parse ends the log: it is a
//! tail torn by a crash during its write, and its command was never answered because the fsync had not
//! returned.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{OfdAck, StoredDoc};

const MAGIC: &[u8; 8] = b"KKTFNLOG";
/// Length of the file header (magic + generation).
pub const HEADER_LEN: u64 = 16;
const RECORD_HEAD: usize = 8;
/// Largest record accepted on load; a longer length field can only come from a torn or corrupt tail.
const MAX_RECORD: usize = 16 << 20;
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// One committed change that lives in the log rather than in the head file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogRecord {
    /// A fiscal document; its effect on the counters is derived from it on replay.
    Doc(StoredDoc),
    /// The OFD's acknowledgement of document `fd`.
    Ack {
        /// The acknowledged FD.
        fd: u32,
        /// The ticket as stored.
        ack: OfdAck,
    },
}

/// Frames one record: length, CRC, payload.
pub fn encode(rec: &LogRecord) -> std::io::Result<Vec<u8>> {
    let payload = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l as usize <= MAX_RECORD)
        .ok_or_else(|| std::io::Error::other("log record too large"))?;
    let mut out = Vec::with_capacity(RECORD_HEAD + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&CRC32C.checksum(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// What a log file holds: its generation and every whole record up to the first torn one.
#[derive(Debug)]
pub struct Scan {
    /// Generation from the header; it must match the head file's.
    pub generation: u64,
    /// The valid records in order.
    pub records: Vec<LogRecord>,
    /// Bytes up to the end of the last valid record.
    pub valid_len: u64,
    /// Bytes in the file (more than `valid_len` when a torn tail is present).
    pub file_len: u64,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// Decodes the record at `at`, returning it and the offset after it; `None` for a torn or corrupt one.
fn decode_at(bytes: &[u8], at: usize) -> Option<(LogRecord, usize)> {
    let len = u32_at(bytes, at)? as usize;
    let crc = u32_at(bytes, at + 4)?;
    if len > MAX_RECORD {
        return None;
    }
    let start = at + RECORD_HEAD;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    if CRC32C.checksum(payload) != crc {
        return None;
    }
    let rec = serde_json::from_slice(payload).ok()?;
    Some((rec, start + len))
}

/// Reads a log's bytes; `None` when the header is missing or wrong (the file was never completed).
pub fn scan(bytes: &[u8]) -> Option<Scan> {
    let generation = header_generation(bytes)?;
    let mut at = HEADER_LEN as usize;
    let mut records = Vec::new();
    while let Some((rec, next)) = decode_at(bytes, at) {
        records.push(rec);
        at = next;
    }
    Some(Scan {
        generation,
        records,
        valid_len: at as u64,
        file_len: bytes.len() as u64,
    })
}

fn header_generation(bytes: &[u8]) -> Option<u64> {
    if bytes.get(..8)? != MAGIC {
        return None;
    }
    Some(u64::from_le_bytes(bytes.get(8..16)?.try_into().ok()?))
}

/// The generation in the header of the log at `path`, if it has a valid one.
pub fn generation_of(path: &Path) -> Option<u64> {
    let mut head = [0u8; HEADER_LEN as usize];
    File::open(path).ok()?.read_exact(&mut head).ok()?;
    header_generation(&head)
}

/// Fsyncs the directory holding `path`, so a created or renamed entry survives a power cut.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Owner read and write only: the FN state holds the FPD key, which signs every document.
pub const PRIVATE_MODE: u32 = 0o600;

/// Creates or truncates `path` with [`PRIVATE_MODE`]. The mode is set again on the open file, because
/// `mode` applies only to a file this call creates, not to a temp file a crash left behind.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_MODE)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(PRIVATE_MODE))?;
    Ok(f)
}

/// Sets [`PRIVATE_MODE`] on an existing file, so state written by an earlier version (0644) is
/// tightened at the next start.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(PRIVATE_MODE))
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// An open log, positioned for appends.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    /// Generation from the header.
    pub generation: u64,
    /// Committed bytes; the next record is written here.
    pub len: u64,
    /// Committed records.
    pub records: u64,
}

impl LogFile {
    /// Writes a complete log atomically (temp file, fsync, rename, fsync dir) and opens it.
    pub fn create(path: &Path, generation: u64, records: &[LogRecord]) -> std::io::Result<Self> {
        let tmp = with_suffix(path, ".tmp");
        let mut bytes = Vec::with_capacity(HEADER_LEN as usize);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&generation.to_le_bytes());
        for rec in records {
            bytes.extend_from_slice(&encode(rec)?);
        }
        let mut f = create_private(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(path)?;
        Ok(Self {
            file: OpenOptions::new().read(true).write(true).open(path)?,
            generation,
            len: bytes.len() as u64,
            records: records.len() as u64,
        })
    }

    /// Opens a scanned log for appends, cutting off (durably) a torn tail first.
    pub fn open(path: &Path, scan: &Scan) -> std::io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        file.set_permissions(Permissions::from_mode(PRIVATE_MODE))?;
        if scan.file_len != scan.valid_len {
            tracing::warn!(
                path = %path.display(),
                discarded_bytes = scan.file_len.saturating_sub(scan.valid_len),
                "FN log: discarding a torn tail record (its command was never answered)"
            );
            file.set_len(scan.valid_len)?;
            file.sync_all()?;
        }
        Ok(Self {
            file,
            generation: scan.generation,
            len: scan.valid_len,
            records: scan.records.len() as u64,
        })
    }

    /// Appends one record and fsyncs it: when this returns Ok the record survives a power cut.
    pub fn append(&mut self, rec: &LogRecord) -> std::io::Result<()> {
        let bytes = encode(rec)?;
        let written = self
            .file
            .write_all_at(&bytes, self.len)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Nothing was committed; cut the partial record so a later, shorter record is not followed
            // by its leftovers (the CRC would reject them anyway, this keeps the file tidy).
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += bytes.len() as u64;
        self.records += 1;
        Ok(())
    }
}

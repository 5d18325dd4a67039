//! The record of received documents, keyed by (FN number, FD number): in memory, written through to SQLite with `--db`.
//!
//! **Invariant:** a key is stored once; later deliveries only bump its counters and get the stored
//! acknowledgement back, byte for byte. The whole check-and-store runs under one lock, so two
//! connections racing with the same document still store it once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};
use serde_json::{Value, json};

/// Failures of the persistent store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored row could not be read back.
    #[error("corrupt row for fn={fn_number} fd={fd_number}: {reason}")]
    Corrupt {
        fn_number: String,
        fd_number: u32,
        reason: String,
    },
}

/// The identity of a fiscal document.
pub type Key = (String, u32);

/// One stored document.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// FN serial number (tag 1041).
    pub fn_number: String,
    /// FD number (tag 1040).
    pub fd_number: u32,
    /// The document bytes (container body) as first received; later deliveries are compared against it.
    pub body: Vec<u8>,
    /// The document decoded to JSON.
    pub document: Value,
    /// The whole answer message sent for this document; duplicates get these bytes again.
    pub ack: Vec<u8>,
    /// How many times the document arrived (1 + duplicates + conflicts).
    pub receive_count: u64,
    /// Deliveries whose content differed from the stored one: a bug in the sender.
    pub conflicts: u64,
    /// Unix milliseconds of the first delivery.
    pub first_received_ms: i64,
    /// Unix milliseconds of the last delivery.
    pub last_received_ms: i64,
}

impl Record {
    /// The JSON form served by `GET /_mock/documents`.
    pub fn to_json(&self) -> Value {
        json!({
            "fn": self.fn_number,
            "fd": self.fd_number,
            "receive_count": self.receive_count,
            "duplicates": self.receive_count - 1 - self.conflicts,
            "conflicts": self.conflicts,
            "first_received": render_ms(self.first_received_ms),
            "last_received": render_ms(self.last_received_ms),
            "document": self.document,
            "ack_hex": hex::encode(&self.ack),
        })
    }
}

/// Renders unix milliseconds as RFC 3339.
pub fn render_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// How a delivery was classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// First time this key was seen: stored.
    New,
    /// Same key, same content: counted, not stored again.
    Duplicate,
    /// Same key, different content: counted as a conflict, the first content is kept.
    Conflict,
}

/// Totals derived from the records (so they survive a restart with `--db`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub unique: u64,
    pub received: u64,
    pub duplicates: u64,
    pub conflicts: u64,
}

struct Inner {
    records: BTreeMap<Key, Record>,
    db: Option<Connection>,
}

/// The record store.
pub struct Store {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS documents (
    fn TEXT NOT NULL,
    fd INTEGER NOT NULL,
    body BLOB NOT NULL,
    document TEXT NOT NULL,
    ack BLOB NOT NULL,
    receive_count INTEGER NOT NULL,
    conflicts INTEGER NOT NULL,
    first_received_ms INTEGER NOT NULL,
    last_received_ms INTEGER NOT NULL,
    PRIMARY KEY (fn, fd)
);";

impl Store {
    /// An empty store in memory.
    pub fn memory() -> Store {
        Store {
            inner: Mutex::new(Inner {
                records: BTreeMap::new(),
                db: None,
            }),
        }
    }

    /// A store written through to the SQLite file at `path`, loaded with what it already holds.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Connection::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(SCHEMA)?;
        let records = load(&db)?;
        Ok(Store {
            inner: Mutex::new(Inner {
                records,
                db: Some(db),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written record (each update is one assignment),
        // so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored acknowledgement of `key`, if the document is already stored.
    pub fn ack_of(&self, key: &Key) -> Option<Vec<u8>> {
        self.lock().records.get(key).map(|r| r.ack.clone())
    }

    /// Records one delivery of `body` under `key`. A new key is stored with the acknowledgement that
    /// `make_ack(first_received_ms)` builds; a known key keeps its first content and acknowledgement.
    /// Returns the classification and the acknowledgement to send.
    pub fn deliver(
        &self,
        key: Key,
        body: &[u8],
        document: Value,
        now_ms: i64,
        make_ack: impl FnOnce(i64) -> Vec<u8>,
    ) -> Result<(Delivery, Vec<u8>), StoreError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let (delivery, record) = match inner.records.get(&key) {
            Some(old) => {
                let mut r = old.clone();
                r.receive_count += 1;
                r.last_received_ms = now_ms;
                let delivery = if r.body == body {
                    Delivery::Duplicate
                } else {
                    Delivery::Conflict
                };
                if delivery == Delivery::Conflict {
                    r.conflicts += 1;
                }
                (delivery, r)
            }
            None => {
                let r = Record {
                    fn_number: key.0.clone(),
                    fd_number: key.1,
                    body: body.to_vec(),
                    document,
                    ack: make_ack(now_ms),
                    receive_count: 1,
                    conflicts: 0,
                    first_received_ms: now_ms,
                    last_received_ms: now_ms,
                };
                (Delivery::New, r)
            }
        };
        // Persist before the record becomes visible, so an answer is never sent for a row the file lacks.
        if let Some(db) = &inner.db {
            upsert(db, &record)?;
        }
        let ack = record.ack.clone();
        inner.records.insert(key, record);
        Ok((delivery, ack))
    }

    /// Every record, in (FN, FD) order, optionally only one FN's.
    pub fn list(&self, fn_number: Option<&str>) -> Vec<Record> {
        self.lock()
            .records
            .values()
            .filter(|r| fn_number.is_none_or(|f| r.fn_number == f))
            .cloned()
            .collect()
    }

    /// Totals over every record.
    pub fn totals(&self) -> Totals {
        let inner = self.lock();
        let mut t = Totals::default();
        for r in inner.records.values() {
            t.unique += 1;
            t.received += r.receive_count;
            t.conflicts += r.conflicts;
            t.duplicates += r.receive_count - 1 - r.conflicts;
        }
        t
    }

    /// Forgets every record, in memory and in the file.
    pub fn clear(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(db) = &inner.db {
            db.execute("DELETE FROM documents", [])?;
        }
        inner.records.clear();
        Ok(())
    }
}

fn upsert(db: &Connection, r: &Record) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO documents (fn, fd, body, document, ack, receive_count, conflicts, first_received_ms, last_received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (fn, fd) DO UPDATE SET receive_count = excluded.receive_count,
             conflicts = excluded.conflicts, last_received_ms = excluded.last_received_ms",
        params![
            r.fn_number,
            r.fd_number,
            r.body,
            r.document.to_string(),
            r.ack,
            i64::try_from(r.receive_count).unwrap_or(i64::MAX),
            i64::try_from(r.conflicts).unwrap_or(i64::MAX),
            r.first_received_ms,
            r.last_received_ms
        ],
    )?;
    Ok(())
}

fn load(db: &Connection) -> Result<BTreeMap<Key, Record>, StoreError> {
    let mut stmt = db.prepare(
        "SELECT fn, fd, body, document, ack, receive_count, conflicts, first_received_ms, last_received_ms FROM documents",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, u32>(1)?,
            row.get::<_, Vec<u8>>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, Vec<u8>>(4)?,
            row.get::<_, i64>(5)?,
            row.get::<_, i64>(6)?,
            row.get::<_, i64>(7)?,
            row.get::<_, i64>(8)?,
        ))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (fn_number, fd_number, body, document, ack, count, conflicts, first, last) = row?;
        let corrupt = |reason: String| StoreError::Corrupt {
            fn_number: fn_number.clone(),
            fd_number,
            reason,
        };
        let document = serde_json::from_str(&document).map_err(|e| corrupt(e.to_string()))?;
        let receive_count = u64::try_from(count).map_err(|e| corrupt(e.to_string()))?;
        let conflicts = u64::try_from(conflicts).map_err(|e| corrupt(e.to_string()))?;
        if receive_count == 0 || conflicts >= receive_count {
            return Err(corrupt(format!(
                "receive_count {receive_count} with {conflicts} conflicts"
            )));
        }
        let record = Record {
            fn_number: fn_number.clone(),
            fd_number,
            body,
            document,
            ack,
            receive_count,
            conflicts,
            first_received_ms: first,
            last_received_ms: last,
        };
        out.insert((fn_number, fd_number), record);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fd: u32) -> Key {
        ("9999078900000001".into(), fd)
    }

    fn deliver(s: &Store, fd: u32, body: &[u8], now: i64) -> (Delivery, Vec<u8>) {
        s.deliver(key(fd), body, json!({"fd": fd}), now, |t| {
            format!("ack-{fd}-{t}").into_bytes()
        })
        .unwrap()
    }

    #[test]
    fn duplicates_and_conflicts_keep_the_first_ack() {
        let s = Store::memory();
        assert_eq!(
            deliver(&s, 1, b"a", 10),
            (Delivery::New, b"ack-1-10".to_vec())
        );
        assert_eq!(
            deliver(&s, 1, b"a", 20),
            (Delivery::Duplicate, b"ack-1-10".to_vec())
        );
        assert_eq!(
            deliver(&s, 1, b"b", 30),
            (Delivery::Conflict, b"ack-1-10".to_vec())
        );
        assert_eq!(deliver(&s, 2, b"a", 40).0, Delivery::New);
        assert_eq!(
            s.totals(),
            Totals {
                unique: 2,
                received: 4,
                duplicates: 1,
                conflicts: 1
            }
        );
        let r = &s.list(None)[0];
        assert_eq!(
            (r.first_received_ms, r.last_received_ms, r.body.as_slice()),
            (10, 30, &b"a"[..])
        );
        assert_eq!(s.list(Some("other")).len(), 0);
        s.clear().unwrap();
        assert_eq!(s.totals(), Totals::default());
    }

    #[test]
    fn sqlite_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ofd.sqlite");
        {
            let s = Store::open(&path).unwrap();
            deliver(&s, 5, b"x", 1);
            deliver(&s, 5, b"x", 2);
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.totals(),
            Totals {
                unique: 1,
                received: 2,
                duplicates: 1,
                conflicts: 0
            }
        );
        assert_eq!(
            deliver(&s, 5, b"x", 3),
            (Delivery::Duplicate, b"ack-5-1".to_vec())
        );
        assert_eq!(s.list(None)[0].document, json!({"fd": 5}));
    }
}

//! The token leak check run after every scenario: no configured secret may appear in any file
//! the scenario left in its folder (logs, `history.jsonl`, databases and their `-wal`, byte for
//! byte) nor in any text or blob cell of an adapter's journal, read through SQLite so that pages
//! still in the `-wal` count too. The token files themselves are skipped; they must hold it.
//!
//! Boundary: it finds a secret written as it is (the runner's secrets are hex digits, which no
//! log or JSON encoder escapes); it does not look for encodings of it (base64, a hash).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A named secret: (token name, secret).
pub type Secret<'a> = (&'a str, &'a str);

/// Bytes read at a time from one file; a match across two reads is found through the overlap.
const CHUNK_BYTES: usize = 1 << 20;
/// Files deeper than this below the scenario folder are not expected; the walk stops there.
const DEPTH_MAX: usize = 16;
/// Findings reported in full; more are counted.
pub const FINDINGS_SHOWN_MAX: usize = 20;

/// What a scan looked at and what it found.
#[derive(Debug, Default)]
pub struct Scan {
    pub files: usize,
    pub bytes: u64,
    pub cells: u64,
    /// One line per occurrence found (file:line, or table.column rowid), never the secret.
    pub findings: Vec<String>,
}

/// The first offset of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = hay.get(from..)?.iter().position(|&b| b == first) {
        let at = from + i;
        if hay.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Scans every regular file below `root` (symlinks and the `skip` folder are not followed).
pub fn scan_tree(root: &Path, skip: &Path, secrets: &[Secret<'_>]) -> Scan {
    let mut scan = Scan::default();
    walk(root, skip, secrets, 0, &mut scan);
    scan
}

fn walk(dir: &Path, skip: &Path, secrets: &[Secret<'_>], depth: usize, scan: &mut Scan) {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            scan.findings.push(format!(
                "cannot list {}: {e}; a secret there would go unnoticed",
                dir.display()
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path == skip {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() && depth < DEPTH_MAX {
            walk(&path, skip, secrets, depth + 1, scan);
        } else if meta.is_file() {
            scan.files += 1;
            scan.bytes += meta.len();
            if let Err(e) = scan_file(&path, secrets, scan) {
                scan.findings.push(format!(
                    "cannot read {}: {e}; a secret there would go unnoticed",
                    path.display()
                ));
            }
        }
    }
}

/// Reports the first occurrence of each secret in a file as `path:line (byte N)`.
pub fn scan_file(path: &Path, secrets: &[Secret<'_>], scan: &mut Scan) -> std::io::Result<()> {
    let overlap = secrets.iter().map(|(_, s)| s.len()).max().unwrap_or(1) - 1;
    let mut f = File::open(path)?;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + overlap);
    // Offset in the file of buf[0], and the newlines before it.
    let mut base: u64 = 0;
    let mut lines_before: u64 = 0;
    let mut found = vec![false; secrets.len()];
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let n = f.read(&mut chunk)?;
        let at_end = n == 0;
        buf.extend_from_slice(&chunk[..n]);
        for (k, (name, secret)) in secrets.iter().enumerate() {
            if found[k] {
                continue;
            }
            if let Some(i) = find(&buf, secret.as_bytes()) {
                found[k] = true;
                let line = lines_before + count_newlines(&buf[..i]) + 1;
                scan.findings.push(format!(
                    "{}:{line} (byte {}) contains the secret of `{name}`",
                    path.display(),
                    base + i as u64
                ));
            }
        }
        if at_end || found.iter().all(|f| *f) {
            return Ok(());
        }
        // Keep the last `overlap` bytes, so a secret split by the read is still found.
        let keep_from = buf.len().saturating_sub(overlap);
        lines_before += count_newlines(&buf[..keep_from]);
        base += keep_from as u64;
        buf.drain(..keep_from);
    }
}

fn count_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Scans every text and blob cell of every table of the SQLite database at `db`, opened
/// read-only (so pages in its `-wal` are read too). A database that needs a writer first (a hot
/// rollback journal) is scanned on a copy in `scratch`, which is removed afterwards.
pub fn scan_journal(db: &Path, secrets: &[Secret<'_>], scratch: &Path, scan: &mut Scan) {
    match scan_db(db, secrets, scan, false) {
        Ok(()) => {}
        Err(e) if e.contains("readonly") => {
            let copied = copy_db(db, scratch).and_then(|copy| scan_db(&copy, secrets, scan, true));
            let _ = std::fs::remove_dir_all(scratch);
            if let Err(e) = copied {
                scan.findings
                    .push(format!("cannot scan the journal {}: {e}", db.display()));
            }
        }
        Err(e) => scan
            .findings
            .push(format!("cannot scan the journal {}: {e}", db.display())),
    }
}

fn copy_db(db: &Path, dir: &Path) -> Result<PathBuf, String> {
    let name = db.file_name().ok_or("the db path has no file name")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for suffix in ["", "-journal", "-wal"] {
        let mut from = db.as_os_str().to_owned();
        from.push(suffix);
        let mut to = dir.join(name).into_os_string();
        to.push(suffix);
        match std::fs::copy(&from, &to) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            Err(e) => return Err(format!("copying {}: {e}", from.to_string_lossy())),
        }
    }
    Ok(dir.join(name))
}

fn scan_db(
    db: &Path,
    secrets: &[Secret<'_>],
    scan: &mut Scan,
    writable: bool,
) -> Result<(), String> {
    use rusqlite::OpenFlags;
    use rusqlite::types::ValueRef;
    let flags = if writable {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let err = |e: rusqlite::Error| e.to_string();
    let conn = rusqlite::Connection::open_with_flags(db, flags).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(err)?;
    let label = db.file_name().map_or_else(
        || db.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    for table in tables {
        let quoted = table.replace('"', "\"\"");
        // WITHOUT ROWID tables have no rowid; their rows are then named by position.
        let (mut stmt, has_rowid) =
            match conn.prepare(&format!("SELECT rowid, * FROM \"{quoted}\"")) {
                Ok(s) => (s, true),
                Err(_) => (
                    conn.prepare(&format!("SELECT * FROM \"{quoted}\""))
                        .map_err(err)?,
                    false,
                ),
            };
        let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
        let first = usize::from(has_rowid);
        let mut rows = stmt.query([]).map_err(err)?;
        let mut position = 0u64;
        while let Some(row) = rows.next().map_err(err)? {
            position += 1;
            let id = if has_rowid {
                format!("rowid {}", row.get::<_, i64>(0).map_err(err)?)
            } else {
                format!("row {position}")
            };
            for (c, column) in names.iter().enumerate().skip(first) {
                let bytes = match row.get_ref(c).map_err(err)? {
                    ValueRef::Text(b) | ValueRef::Blob(b) => b,
                    _ => continue,
                };
                scan.cells += 1;
                for (name, secret) in secrets {
                    if find(bytes, secret.as_bytes()).is_some() {
                        scan.findings.push(format!(
                            "{label}: {table}.{column} {id} contains the secret of `{name}`"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRETS: &[Secret<'static>] = &[
        ("uat-pos", "0123456789abcdef0123456789abcdef01234567"),
        ("uat-admin", "fedcba9876543210fedcba9876543210fedcba98"),
    ];

    #[test]
    fn find_locates_a_needle_anywhere_and_only_whole() {
        assert_eq!(find(b"xxabcxx", b"abc"), Some(2));
        assert_eq!(find(b"abab", b"abc"), None);
        assert_eq!(find(b"aab", b"ab"), Some(1));
        assert_eq!(find(b"", b"a"), None);
        assert_eq!(find(b"abc", b""), None);
    }

    #[test]
    fn a_secret_planted_in_a_log_is_found_by_file_and_line_and_clean_files_pass() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("auth")).unwrap();
        std::fs::write(
            root.join("auth/tokens"),
            format!("p pos {}\n", SECRETS[0].1),
        )
        .unwrap();
        std::fs::write(root.join("adapter.stderr.log"), "start\nuat-pos sold\n").unwrap();
        let clean = scan_tree(root, &root.join("auth"), SECRETS);
        assert!(clean.findings.is_empty(), "{:?}", clean.findings);
        assert_eq!(clean.files, 1, "the token file is skipped");

        let log = format!("start\nok\nAuthorization: Bearer {}\n", SECRETS[1].1);
        std::fs::write(root.join("adapter.stderr.log"), log).unwrap();
        let found = scan_tree(root, &root.join("auth"), SECRETS);
        assert_eq!(found.findings.len(), 1, "{:?}", found.findings);
        let f = &found.findings[0];
        assert!(f.contains("adapter.stderr.log:3 (byte 31)"), "{f}");
        assert!(
            f.contains("`uat-admin`") && !f.contains(SECRETS[1].1),
            "{f}"
        );
    }

    #[test]
    fn a_secret_split_across_two_reads_is_found_with_its_line() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big.log");
        let mut text = "x\n".repeat(CHUNK_BYTES / 2 - 5).into_bytes();
        text.extend_from_slice(b"yyyyy");
        text.extend_from_slice(SECRETS[0].1.as_bytes());
        std::fs::write(&path, &text).unwrap();
        let mut scan = Scan::default();
        scan_file(&path, SECRETS, &mut scan).unwrap();
        let want = format!(":{} (byte {})", CHUNK_BYTES / 2 - 4, CHUNK_BYTES - 5);
        assert!(
            scan.findings[0].contains(&want),
            "{:?} {want}",
            scan.findings
        );
    }

    #[test]
    fn a_secret_in_a_journal_column_is_found_by_table_column_and_rowid_also_in_the_wal() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("adapter.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE receipts (id INTEGER PRIMARY KEY, requester TEXT, body BLOB, n INTEGER);
             CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
             INSERT INTO receipts VALUES (1, 'uat-pos', x'00ff', 7);
             INSERT INTO kv VALUES ('a', 'b');",
        )
        .unwrap();
        let scratch = tmp.path().join("scratch");
        let mut clean = Scan::default();
        scan_journal(&db, SECRETS, &scratch, &mut clean);
        assert!(clean.findings.is_empty(), "{:?}", clean.findings);
        assert_eq!(clean.cells, 4);

        // Still open and never checkpointed: these rows live only in the -wal.
        conn.execute(
            "INSERT INTO receipts VALUES (5, 'x', ?1, 0)",
            [format!("{{\"token\":\"{}\"}}", SECRETS[0].1).into_bytes()],
        )
        .unwrap();
        conn.execute("INSERT INTO kv VALUES ('z', ?1)", [SECRETS[1].1])
            .unwrap();
        let mut raw = Scan::default();
        scan_file(&tmp.path().join("adapter.db-wal"), SECRETS, &mut raw).unwrap();
        assert_eq!(raw.findings.len(), 2, "{:?}", raw.findings);
        let mut found = Scan::default();
        scan_journal(&db, SECRETS, &scratch, &mut found);
        assert_eq!(
            found.findings,
            [
                "adapter.db: kv.v row 2 contains the secret of `uat-admin`",
                "adapter.db: receipts.body rowid 5 contains the secret of `uat-pos`",
            ]
        );
    }
}

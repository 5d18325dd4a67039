//! Online backup and restore: `adapter backup` taken while sales run gives a 0600 file that opens
//! as a journal, passes its invariants and holds every sale acknowledged before the backup began.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use adapter::journal::{Journal, JournalConfig, KktState};
use serde_json::json;

use crate::harness::{Stack, bread};

/// Runs `adapter backup --db db --to dest`; its exit code and output.
fn backup(db: &Path, dest: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_adapter"))
        .args(["backup", "--db"])
        .arg(db)
        .arg("--to")
        .arg(dest)
        .output()
        .expect("adapter backup runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Opens `copy` as a journal (the restore), checks its invariants and that each key is there,
/// fiscalized.
async fn check_restored(copy: &Path, keys: &[String]) {
    let mode = std::fs::metadata(copy).expect("copy").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", copy.display());
    let restored = copy.with_extension("restored.db");
    std::fs::copy(copy, &restored).expect("restore the copy");
    let journal = tokio::task::spawn_blocking(move || Journal::open(JournalConfig::new(restored)))
        .await
        .expect("open task")
        .expect("the copy opens as a journal");
    journal.check_invariants().await.expect("invariants");
    for key in keys {
        let row = journal.get_by_key(key).await.expect("read");
        let row = row.unwrap_or_else(|| panic!("acknowledged sale {key} missing from the backup"));
        assert_eq!(row.kkt_state, KktState::Fiscalized, "{key}");
    }
    journal.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_sales_run_restores_every_acknowledged_sale() {
    let s = Arc::new(Stack::with_adapter(&[]).await);
    let out = tempfile::tempdir().expect("temp dir");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let sales = {
        let (s, acked) = (Arc::clone(&s), Arc::clone(&acked));
        tokio::spawn(async move {
            for i in 0..40 {
                let key = format!("backup-{i}");
                let (code, r) = s.post_receipt(bread(&key)).await;
                assert_eq!((code, r["status"].clone()), (200, json!("printed")), "{r}");
                acked.lock().unwrap().push(key);
            }
        })
    };
    let mut taken = Vec::new();
    for n in 0..3 {
        // Let a few sales through, then back up while the next ones are being sold.
        while acked.lock().unwrap().len() < 5 + n * 10 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let before: Vec<String> = acked.lock().unwrap().clone();
        let dest = out.path().join(format!("journal-{n}.db"));
        let (db, d) = (s.db_path(), dest.clone());
        let (code, text) = tokio::task::spawn_blocking(move || backup(&db, &d))
            .await
            .expect("backup task");
        assert_eq!(code, Some(0), "{text}");
        assert!(text.contains("checked"), "{text}");
        taken.push((dest, before));
    }
    sales.await.expect("sales");
    assert_eq!(acked.lock().unwrap().len(), 40);
    for (copy, keys) in &taken {
        check_restored(copy, keys).await;
    }
    // A final backup after the sales holds all of them.
    let last = out.path().join("journal-last.db");
    let (code, text) = backup(&s.db_path(), &last);
    assert_eq!(code, Some(0), "{text}");
    let all = acked.lock().unwrap().clone();
    check_restored(&last, &all).await;
}

#[test]
fn a_backup_never_overwrites_a_file_and_needs_an_existing_journal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = dir.path().join("taken.db");
    std::fs::write(&taken, b"keep me").expect("write");
    let journal = dir.path().join("journal.db");
    let opened = Journal::open(JournalConfig::new(&journal)).expect("journal");
    drop(opened);
    let (code, text) = backup(&journal, &taken);
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(std::fs::read(&taken).expect("read"), b"keep me");
    let (code, text) = backup(&dir.path().join("absent.db"), &dir.path().join("new.db"));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        !dir.path().join("new.db").exists(),
        "a failed backup left its file"
    );
    let (code, text) = backup(&journal, &dir.path().join("empty.db"));
    assert_eq!(code, Some(0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_backs_up_into_the_configured_directory_only() {
    let out = tempfile::tempdir().expect("temp dir");
    let dir = out.path().join("backups");
    let s = Stack::with_adapter(&["--backup-dir", dir.to_str().expect("utf-8")]).await;
    let keys: Vec<String> = (0..3).map(|i| format!("admin-backup-{i}")).collect();
    for key in &keys {
        let (code, r) = s.post_receipt(bread(key)).await;
        assert_eq!(code, 200, "{r}");
    }
    // A client-given path is refused: the adapter names the file.
    let evil = out.path().join("evil.db");
    let (code, e) = s
        .call(
            "POST",
            "/v1/admin/backup",
            Some(json!({"path": evil.to_str()})),
            &[],
        )
        .await;
    assert_eq!(
        (code, e["code"].clone()),
        (400, json!("malformed_body")),
        "{e}"
    );
    assert!(!evil.exists());
    let mut files = Vec::new();
    for _ in 0..2 {
        let (code, r) = s.call("POST", "/v1/admin/backup", None, &[]).await;
        assert_eq!(code, 200, "{r}");
        let file = r["file"].as_str().expect("file").to_string();
        assert!(!file.contains('/'), "{r}");
        // Three sales and the shift-open report.
        assert_eq!(r["receipts"], 4, "{r}");
        files.push(file);
    }
    assert_ne!(files[0], files[1]);
    for file in &files {
        check_restored(&dir.join(file), &keys).await;
    }
}

//! `POST /v1/admin/backup`: an online backup of the journal into the configured backup directory
//! (`--backup-dir`), under a name the adapter picks, so no client can make the adapter write where
//! it chooses. One backup at a time; the copy is checked before the answer (journal/backup.rs).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use adapter_api as api;
use api::ErrorCode;
use axum::Json;
use axum::extract::State;

use super::{AppError, AppState};

/// Backups run one at a time: a second request waits for the first (bounded by the request
/// timeouts of the server), so two copies never compete for the disk.
static BACKUP_RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(super) async fn backup(
    State(state): State<Arc<AppState>>,
    body: axum::body::Bytes,
) -> Result<Json<api::BackupResponse>, AppError> {
    if !body.is_empty() {
        let _: api::BackupRequest = serde_json::from_slice(&body).map_err(|e| {
            AppError::definite(
                ErrorCode::MalformedBody,
                format!("backup body: {e}; the file name and directory are the adapter's"),
            )
        })?;
    }
    let Some(dir) = state.config.backup_dir.clone() else {
        return Err(AppError::definite(
            ErrorCode::BackupNotConfigured,
            "no backup directory is configured (--backup-dir)",
        ));
    };
    let _running = BACKUP_RUNNING.lock().await;
    let stamp_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    // Under the lock, the time alone names the file uniquely unless the clock stepped back; the
    // journal refuses to overwrite a file in that case.
    let file = format!("journal-{stamp_ms}.db");
    let dest = dir.join(&file);
    let created = tokio::fs::create_dir_all(&dir).await;
    let info = match created {
        Ok(()) => state
            .any()
            .fiscalizer
            .backup_to(dest)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("creating the backup directory: {e}")),
    };
    match info {
        Ok(info) => {
            tracing::info!(
                file,
                pages = info.pages,
                receipts = info.receipts,
                "journal backed up"
            );
            Ok(Json(api::BackupResponse {
                file,
                pages: info.pages,
                receipts: info.receipts,
            }))
        }
        Err(e) => {
            tracing::error!(file, error = %e, "journal backup failed");
            // Definite: a failed backup removes its partial file, so nothing was left behind.
            Err(AppError::definite(
                ErrorCode::BackupFailed,
                "the backup failed; see the adapter's log",
            ))
        }
    }
}

//! Admin actions beside the DLQ and resolve: the online journal backup.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/admin/backup`: an empty body or `{}`. The file goes to the configured backup
/// directory under a name the adapter picks; a client never names a path on the shop's machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {}

/// `POST /v1/admin/backup` answer: the new file (created 0600) and what the checked copy holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupResponse {
    /// The file name inside the backup directory.
    pub file: String,
    pub pages: u64,
    pub receipts: u64,
}

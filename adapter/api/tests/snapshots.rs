//! The wire JSON of every response type, pinned by snapshot (insta): a renamed field, a changed enum
//! string or a new field fails here first, with the diff, instead of reaching a POS silently.
//!
//! Each value fills every optional field, so nested types show too. A new response type in the
//! OpenAPI document without a snapshot here fails `every_response_type_has_a_snapshot`. After a
//! deliberate change: `INSTA_UPDATE=always cargo test -p adapter-api --test snapshots`, then read the
//! diff of `tests/snapshots/` before committing it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use adapter_api::*;
use serde::Serialize;

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Snapshots `value` as `tests/snapshots/<name>.snap`; `name` is the type's OpenAPI schema name.
fn snap(name: &str, value: &impl Serialize) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_sort_maps(false);
    settings.bind(|| insta::assert_json_snapshot!(name, value));
}

fn money(s: &str) -> Money {
    s.parse().expect("money")
}

fn receipt() -> ReceiptResponse {
    ReceiptResponse {
        receipt_id: "01a23c6515ee0000".into(),
        kkt_id: "till-1".into(),
        status: ReceiptStatus::Printed,
        fiscal_doc_id: Some("9999078900012345-17".into()),
        fiscal: Some(Fiscal {
            fn_number: "9999078900012345".into(),
            fd_number: 17,
            fpd: "2345678901".into(),
            shift_number: 3,
            receipt_number: 5,
            datetime: "2026-12-03T10:15:00".into(),
            total: money("123.45"),
            qr: "t=20261203T1015&s=123.45&fn=9999078900012345&i=17&fp=2345678901&n=1".into(),
        }),
        ofd_status: OfdStatus::Pending,
    }
}

fn stuck() -> DeliveryStuck {
    DeliveryStuck {
        fn_number: "9999078900012345".into(),
        fd_number: 12,
        receipt_id: Some("01a23c6515ee0001".into()),
        since_unix_ms: Some(1_764_756_000_000),
        response_code: Some(14),
        last_error: Some("OFD response code 14".into()),
        retry_count: 2,
        waiting_behind: 40,
    }
}

#[test]
fn receipt_response() {
    snap("ReceiptResponse", &receipt());
}

#[test]
fn buffer_status() {
    snap(
        "BufferStatus",
        &BufferStatus {
            total_capacity: 100_000,
            current_queued: 41,
            percent_full: 0.041,
            network_status: NetworkStatus::Degraded,
            total_receipts: 1_000,
            pending: 41,
            synced: 959,
            failed: 1,
            dlq_size: 1,
            in_flight: 1,
            unresolved_stuck: 0,
            oldest_undelivered_unix_ms: Some(1_764_756_000_000),
            oldest_undelivered_age_s: Some(3_600),
            delivery_stuck: Some(stuck()),
            devices: vec![DeviceBuffer {
                kkt_id: "till-1".into(),
                total_receipts: 1_000,
                current_queued: 42,
                pending: 41,
                synced: 958,
                dlq_size: 1,
                in_flight: 1,
                oldest_undelivered_unix_ms: Some(1_764_756_000_000),
            }],
        },
    );
}

#[test]
fn readiness() {
    snap(
        "Readiness",
        &Readiness {
            ready: false,
            journal_open: true,
            kkt_reachable: false,
        },
    );
}

#[test]
fn sync_result_and_every_stop_reason() {
    snap(
        "SyncResult",
        &SyncResult {
            synced: 9,
            failed: 1,
            skipped: 0,
            stopped: SyncStop::Transport,
        },
    );
    snap(
        "SyncStop",
        &[
            SyncStop::Drained,
            SyncStop::BatchFull,
            SyncStop::BreakerOpen,
            SyncStop::BackingOff,
            SyncStop::LockBusy,
            SyncStop::LockLost,
            SyncStop::DlqHead,
            SyncStop::Transport,
            SyncStop::FnRefusedAck,
            SyncStop::Kkt,
        ],
    );
}

#[test]
fn dlq_retry_response() {
    snap(
        "DlqRetryResponse",
        &DlqRetryResponse {
            results: vec![
                DlqRetryItem {
                    receipt_id: "01a23c6515ee0001".into(),
                    retried: true,
                    error: None,
                    ofd_status: Some(OfdStatus::Synced),
                },
                DlqRetryItem {
                    receipt_id: "nope".into(),
                    retried: false,
                    error: Some(ErrorCode::NotFound),
                    ofd_status: None,
                },
            ],
            synced: 1,
            failed: 0,
            skipped: 0,
            dlq_size: 0,
        },
    );
}

#[test]
fn dlq_retry_one_response() {
    snap(
        "DlqRetryOneResponse",
        &DlqRetryOneResponse {
            receipt: receipt(),
            sync: SyncCounts {
                synced: 1,
                failed: 0,
                skipped: 0,
            },
        },
    );
}

#[test]
fn dlq_list() {
    snap(
        "DlqList",
        &DlqList {
            dlq_size: 1,
            documents: vec![DlqDocument {
                receipt_id: "01a23c6515ee0001".into(),
                fiscal_doc_id: Some("9999078900012345-12".into()),
                fd_number: Some(12),
                response_code: Some(14),
                error_code: Some("ofd_response_14".into()),
                last_error: Some("OFD response code 14".into()),
                retry_count: 2,
                first_attempt_unix_ms: Some(1_764_756_000_000),
                last_attempt_unix_ms: Some(1_764_756_060_000),
                rejections: vec![DlqRejection {
                    at_unix_ms: 1_764_756_000_000,
                    response_code: Some(14),
                    error_code: "ofd_response_14".into(),
                    message: "OFD response code 14".into(),
                }],
            }],
        },
    );
}

#[test]
fn backup_response() {
    snap(
        "BackupResponse",
        &BackupResponse {
            file: "journal-1764756000000.db".into(),
            pages: 120,
            receipts: 1_000,
        },
    );
}

#[test]
fn resolve_response() {
    snap(
        "ResolveResponse",
        &ResolveResponse {
            receipt: receipt(),
            outcome: ResolveOutcome::Fiscalized,
            resolved_by: "ops".into(),
            reason: "KKT back after a power cut".into(),
        },
    );
}

#[test]
fn shift_response() {
    snap(
        "ShiftResponse",
        &ShiftResponse {
            fiscal_doc_id: "9999078900012345-16".into(),
            fn_number: "9999078900012345".into(),
            fd_number: 16,
            fpd: "1234567890".into(),
            shift_number: 3,
            datetime: "2026-12-03T08:00:00".into(),
        },
    );
}

#[test]
fn kkt_status_and_every_mode_name() {
    snap(
        "KktStatus",
        &KktStatus {
            mode: KktMode::ShiftOpen,
            mode_code: 2,
            fn_number: "9999078900012345".into(),
            last_fd: 17,
            unresolved_receipts: false,
        },
    );
    snap("KktMode", &KktMode::wire_values());
}

#[test]
fn devices() {
    snap(
        "Devices",
        &Devices {
            devices: vec![
                Device {
                    kkt_id: "till-1".into(),
                    link_ok: true,
                    last_error: None,
                    unresolved_receipts: false,
                    delivery_stuck: false,
                },
                Device {
                    kkt_id: "till-2".into(),
                    link_ok: false,
                    last_error: Some("KKT unavailable: no answer".into()),
                    unresolved_receipts: true,
                    delivery_stuck: true,
                },
            ],
        },
    );
}

#[test]
fn health() {
    snap(
        "Health",
        &Health {
            status: HealthStatus::Degraded,
            process: ProcessHealth {
                uptime_s: 86_400,
                version: "0.1.0".into(),
            },
            journal: JournalHealth {
                journal_mode: "wal".into(),
                synchronous: 2,
                synchronous_name: "full".into(),
                wal_autocheckpoint: 1_000,
                schema_version: 3,
            },
            kkt: KktHealth {
                link_ok: true,
                last_error: Some("KKT refused the receipt: paper out".into()),
                unresolved_receipts: true,
                unresolved: vec![UnresolvedReceipt {
                    receipt_id: "01a23c6515ee0002".into(),
                    since_unix_ms: 1_764_756_000_000,
                    attempts: 4,
                    last_error: Some("no answer".into()),
                    stuck: false,
                }],
            },
            circuit_breaker: CircuitBreaker {
                state: BreakerState::HalfOpen,
                consecutive_failures: 3,
                opened_at_unix_ms: Some(1_764_756_000_000),
                next_probe_at_unix_ms: Some(1_764_756_001_000),
                transitions: BreakerTransitions {
                    to_closed: 1,
                    to_open: 2,
                    to_half_open: 2,
                },
            },
            network_status: NetworkStatus::Offline,
            dlq_head: Some(DlqHead {
                fn_number: "9999078900012345".into(),
                fd_number: 12,
            }),
            dlq_size: 1,
            delivery: DeliveryHealth {
                oldest_undelivered_unix_ms: Some(1_764_756_000_000),
                oldest_undelivered_age_s: Some(3_600),
                age_alarm_after_s: 259_200,
                age_alarm: false,
                stuck: Some(stuck()),
            },
        },
    );
}

#[test]
fn error_body_and_every_error_code() {
    snap(
        "ErrorBody",
        &ErrorBody {
            code: ErrorCode::KktRefused,
            message: "KKT refused the receipt: paper out".into(),
            definite: true,
        },
    );
    let codes: Vec<(&str, u16)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str(), c.http_status()))
        .collect();
    snap("ErrorCode", &codes);
}

/// The response schemas the OpenAPI document names (`docs/openapi.json`, kept current by the
/// adapter's own test).
fn response_schemas() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("docs/openapi.json"))
            .expect("OpenAPI JSON");
    let mut names = BTreeSet::new();
    for operations in doc["paths"].as_object().expect("paths").values() {
        for operation in operations.as_object().expect("operations").values() {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for response in responses.values() {
                let text = response["content"].to_string();
                for part in text.split("#/components/schemas/").skip(1) {
                    let name: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .collect();
                    names.insert(name);
                }
            }
        }
    }
    names
}

#[test]
fn every_response_type_has_a_snapshot() {
    let names = response_schemas();
    assert!(names.len() >= 10, "found only {names:?}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !snapshot_dir().join(format!("{n}.snap")).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "response types without a snapshot in tests/snapshots: {missing:?}"
    );
}

//! `GET /metrics` (issue #15): admin only, every documented name exposed, the gauges and counters
//! moving with the backlog, and the example alert rules valid for `promtool` and using only names
//! the adapter exposes.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::harness::{Stack, bread};

const ADMIN: &str = "Bearer admin-secret-0123456789abcdef";
const POS: &str = "Bearer pos-secret-0123456789abcdef";

/// Every family the adapter documents; a rename fails here before it breaks a dashboard.
const NAMES: &[&str] = &[
    "adapter_receipts_total",
    "adapter_http_request_duration_seconds",
    "adapter_http_limit_events_total",
    "adapter_http_connections_open",
    "adapter_kkt_command_duration_seconds",
    "adapter_kkt_command_errors_total",
    "adapter_journal_commit_duration_seconds",
    "adapter_backlog_documents",
    "adapter_oldest_undelivered_age_seconds",
    "adapter_dlq_documents",
    "adapter_unresolved_receipts",
    "adapter_ofd_stuck_head",
    "adapter_kkt_link_up",
    "adapter_ofd_breaker_state",
    "adapter_ofd_breaker_transitions_total",
];

fn rules_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/adapter-alerts.yml")
}

/// Scrapes `/metrics` (with `bearer`, if any) and returns the status and the body.
async fn scrape(s: &Stack, bearer: Option<&str>) -> (u16, String) {
    let mut req = s.http.get(format!("{}/metrics", s.adapter_url));
    if let Some(b) = bearer {
        req = req.header("authorization", b);
    }
    let resp = req.send().await.expect("adapter answers");
    let status = resp.status().as_u16();
    if status == 200 {
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    }
    (status, resp.text().await.unwrap_or_default())
}

/// The value of the first sample of `name` whose labels contain every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().expect("a sample value is a number"))
}

/// The families a scrape declares with `# TYPE`.
fn declared(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_admin_token() {
    let s = Stack::with_adapter(&[
        "--auth-token",
        "ops:admin:admin-secret-0123456789abcdef,till1:pos:pos-secret-0123456789abcdef",
    ])
    .await;
    assert_eq!(scrape(&s, None).await.0, 401);
    assert_eq!(
        scrape(&s, Some("Bearer wrong-0123456789abcdef")).await.0,
        401
    );
    assert_eq!(scrape(&s, Some(POS)).await.0, 403);
    let (code, text) = scrape(&s, Some(ADMIN)).await;
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("# TYPE adapter_backlog_documents gauge"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backlog_rises_while_offline_and_drains_after_a_sync() {
    // A long interval: only the manual sync delivers.
    let s = Stack::with_manual_sync().await;
    let (code, before) = scrape(&s, None).await;
    assert_eq!(
        code, 200,
        "without tokens the loopback adapter is open: {before}"
    );
    let declared_names = declared(&before);
    for name in NAMES {
        assert!(
            declared_names.iter().any(|d| d == name),
            "{name} missing:\n{before}"
        );
    }
    assert_eq!(sample(&before, "adapter_backlog_documents", &[]), Some(0.0));
    assert_eq!(
        sample(&before, "adapter_oldest_undelivered_age_seconds", &[]),
        None
    );

    s.mock("POST", "/set_mode", Some(json!({"mode": "offline"})))
        .await;
    for i in 0..3 {
        let (code, r) = s.post_receipt(bread(&format!("metrics-{i}"))).await;
        assert_eq!((code, r["status"].clone()), (200, json!("printed")), "{r}");
    }
    let (_, offline) = scrape(&s, None).await;
    assert_eq!(
        sample(&offline, "adapter_backlog_documents", &[]),
        Some(4.0),
        "shift report + 3 sales:\n{offline}"
    );
    assert_eq!(
        sample(&offline, "adapter_receipts_total", &["outcome=\"printed\""]),
        Some(3.0),
        "{offline}"
    );
    assert!(
        sample(
            &offline,
            "adapter_journal_commit_duration_seconds_count",
            &[]
        )
        .unwrap()
            > 0.0,
        "{offline}"
    );
    assert!(
        sample(
            &offline,
            "adapter_http_request_duration_seconds_count",
            &["route=\"/v1/kkt/receipt\"", "status_class=\"2xx\""]
        )
        .unwrap()
            >= 3.0,
        "{offline}"
    );
    assert!(
        sample(&offline, "adapter_kkt_command_duration_seconds_count", &[]).unwrap() > 0.0,
        "{offline}"
    );
    assert_eq!(sample(&offline, "adapter_kkt_link_up", &[]), Some(1.0));
    // The age is in whole seconds: wait until the oldest document is at least two seconds old.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (_, later) = scrape(&s, None).await;
    let age = sample(
        &later,
        "adapter_oldest_undelivered_age_seconds",
        &["fn_number=\""],
    )
    .unwrap_or_else(|| panic!("no age by FN:\n{later}"));
    assert!(age >= 2.0, "{later}");

    s.mock("POST", "/set_mode", Some(json!({"mode": "online"})))
        .await;
    let (code, r) = s
        .call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    assert_eq!((code, r["synced"].clone()), (200, json!(4)), "{r}");
    s.wait_buffer("pending", 0, Duration::from_secs(5)).await;
    let (_, after) = scrape(&s, None).await;
    assert_eq!(
        sample(&after, "adapter_backlog_documents", &[]),
        Some(0.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "adapter_oldest_undelivered_age_seconds", &[]),
        None,
        "{after}"
    );
    assert_eq!(sample(&after, "adapter_dlq_documents", &[]), Some(0.0));
    assert_eq!(sample(&after, "adapter_ofd_stuck_head", &[]), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_refusal_counts_as_refused_and_as_a_kkt_error_by_code() {
    let s = Stack::with_adapter(&[]).await;
    let (code, shift) = s.call("POST", "/v1/kkt/shift/open", None, &[]).await;
    assert_eq!(code, 200, "{shift}");
    let (_, before) = scrape(&s, None).await;
    assert_eq!(
        sample(&before, "adapter_kkt_command_errors_total", &[]),
        None,
        "{before}"
    );
    s.emu("POST", "/_emu/fault", Some(json!({"kind": "paper_out"})))
        .await;
    let (code, e) = s.post_receipt(bread("refused-1")).await;
    assert_eq!(
        (code, e["code"].clone()),
        (409, json!("kkt_refused")),
        "{e}"
    );
    let (_, after) = scrape(&s, None).await;
    assert_eq!(
        sample(&after, "adapter_receipts_total", &["outcome=\"refused\""]),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "adapter_receipts_total", &["outcome=\"printed\""]),
        None
    );
    let errors = sample(&after, "adapter_kkt_command_errors_total", &["code=\""])
        .unwrap_or_else(|| panic!("no KKT error counted:\n{after}"));
    assert!(errors >= 1.0, "{after}");
    assert!(
        sample(
            &after,
            "adapter_http_request_duration_seconds_count",
            &["route=\"/v1/kkt/receipt\"", "status_class=\"4xx\""]
        )
        .is_some(),
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_head_shows_as_dlq_size_and_stuck_head() {
    let s = Stack::with_manual_sync_and_a_rejecting_ofd().await;
    // Read before the sale: the sale wakes the background pass, which may refuse the head at once.
    let (_, before) = scrape(&s, None).await;
    assert_eq!(
        sample(&before, "adapter_dlq_documents", &[]),
        Some(0.0),
        "{before}"
    );
    assert_eq!(
        sample(&before, "adapter_ofd_stuck_head", &[]),
        Some(0.0),
        "{before}"
    );
    let (code, r) = s.post_receipt(bread("dlq-1")).await;
    assert_eq!(code, 200, "{r}");
    s.force_sync_past_a_refused_head(2).await;
    let (_, after) = scrape(&s, None).await;
    assert_eq!(
        sample(&after, "adapter_dlq_documents", &[]),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "adapter_ofd_stuck_head", &[]),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        sample(&after, "adapter_backlog_documents", &[]),
        Some(2.0),
        "the refused shift report and the sale behind it:\n{after}"
    );
}

/// The adapter_* names in the rules' `expr:` lines.
fn names_in_rules() -> Vec<String> {
    let text = std::fs::read_to_string(rules_path()).expect("the alert rules exist");
    let mut names = Vec::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with("expr:")) {
        let mut rest = line;
        while let Some(at) = rest.find("adapter_") {
            let word: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + word.len()..];
            names.push(word);
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_name_in_the_alert_rules_is_exposed() {
    let names = names_in_rules();
    assert!(names.len() >= 4, "one name per alert at least: {names:?}");
    let s = Stack::with_adapter(&[]).await;
    let (code, text) = scrape(&s, None).await;
    assert_eq!(code, 200, "{text}");
    let exposed = declared(&text);
    for name in &names {
        assert!(
            exposed.contains(name),
            "{name} is used by an alert but not exposed:\n{text}"
        );
    }
}

#[test]
fn the_alert_rules_pass_promtool() {
    let path = rules_path();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool cannot run ({e}); install the Debian package `prometheus` \
                 (ci/test.sh does) to check {}",
                path.display()
            )
        });
    assert!(
        out.status.success(),
        "promtool check rules {}:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool read every rule the file declares.
    let declared = std::fs::read_to_string(&path)
        .expect("rules readable")
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(declared >= 5, "{declared} alerts");
    assert!(
        stdout.contains(&format!("SUCCESS: {declared} rules found")),
        "{stdout}"
    );
}

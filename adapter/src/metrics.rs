//! Prometheus metrics of the adapter, written by hand in the text exposition format (version 0.0.4).
//!
//! Events (a receipt answered, an HTTP request, a KKT command, a journal commit) are recorded as
//! they happen into one process-wide registry, so the KKT driver thread and the journal writer
//! thread need no handle passed down to them. State (backlog, DLQ, breaker, device link) is not
//! recorded here: `GET /metrics` reads it from the journal and the sync handle at scrape time and
//! passes it in as a [`Gauges`] value, so a gauge can never drift from the state it reports.
//!
//! Invariant: every label value comes from a closed set (outcomes, route patterns, status classes,
//! command codes, error codes, FN numbers), so the number of series stays bounded.
//!
//! Boundary: no HTTP here; the route lives in `http/mod.rs`. Hand-written rather than a crate: the
//! exposition format is a few lines, and it keeps the journal writer and the driver thread free of
//! a registry dependency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Buckets for HTTP requests and KKT commands: from a fast read to a report that prints for 15 s.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets for journal commits: an fsync takes from well under a millisecond to a slow card's second.
const COMMIT_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// One histogram series: cumulative counts are computed when rendered.
#[derive(Debug, Clone)]
struct Histogram {
    bucket_counts: Vec<u64>,
    sum_seconds: f64,
    count: u64,
}

impl Histogram {
    fn new(buckets: &[f64]) -> Histogram {
        Histogram {
            bucket_counts: vec![0; buckets.len()],
            sum_seconds: 0.0,
            count: 0,
        }
    }
}

/// Series keyed by their rendered label set (`route="/v1/health",status_class="2xx"`).
#[derive(Default)]
struct Registry {
    receipts_total: BTreeMap<String, u64>,
    http_duration: BTreeMap<String, Histogram>,
    kkt_duration: BTreeMap<String, Histogram>,
    kkt_errors_total: BTreeMap<String, u64>,
    journal_commit: Option<Histogram>,
    http_limits_total: BTreeMap<String, u64>,
}

/// Client connections open now, kept by the accept loop's bound (`http/limits.rs`).
static HTTP_CONNECTIONS_OPEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

fn with_registry(f: impl FnOnce(&mut Registry)) {
    // A panic while the lock was held cannot leave a counter half-written in a way that matters
    // more than losing metrics, so a poisoned lock is used as it is.
    let mut guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut guard);
}

fn observe(series: &mut Histogram, buckets: &[f64], elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    if let Some(i) = buckets.iter().position(|b| seconds <= *b) {
        series.bucket_counts[i] += 1;
    }
    series.sum_seconds += seconds;
    series.count += 1;
}

/// Escapes a label value as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Counts one answered sale by its outcome (`printed`, `buffered`, `refused`, `kkt_unavailable`, ...).
pub fn receipt(outcome: &str) {
    let key = labels(&[("outcome", outcome)]);
    with_registry(|r| *r.receipts_total.entry(key).or_default() += 1);
}

/// Observes one HTTP request by its route pattern (`-` when no route served it) and status class.
pub fn http_request(route: &str, status: u16, elapsed: Duration) {
    let class = format!("{}xx", status / 100);
    let key = labels(&[("route", route), ("status_class", &class)]);
    with_registry(|r| {
        let series = r
            .http_duration
            .entry(key)
            .or_insert_with(|| Histogram::new(LATENCY_BUCKETS_SECONDS));
        observe(series, LATENCY_BUCKETS_SECONDS, elapsed);
    });
}

/// Observes one KKT command (its hex command code), and counts its failure by `error_code`: the
/// device's error byte in hex, or the kind of link failure when the device gave none.
pub fn kkt_command(command: &str, elapsed: Duration, error_code: Option<&str>) {
    let key = labels(&[("command", command)]);
    let error_key = error_code.map(|code| labels(&[("command", command), ("code", code)]));
    with_registry(|r| {
        let series = r
            .kkt_duration
            .entry(key)
            .or_insert_with(|| Histogram::new(LATENCY_BUCKETS_SECONDS));
        observe(series, LATENCY_BUCKETS_SECONDS, elapsed);
        if let Some(k) = error_key {
            *r.kkt_errors_total.entry(k).or_default() += 1;
        }
    });
}

/// What the HTTP bounds did (`http/limits.rs`): `connection_refused`, `idle_connection_closed`,
/// `request_refused`, `rate_limited`, `body_timeout`.
pub fn http_limit(event: &'static str) {
    let key = labels(&[("event", event)]);
    with_registry(|r| *r.http_limits_total.entry(key).or_default() += 1);
}

/// Sets the number of client connections open.
pub fn http_connections_open(n: usize) {
    HTTP_CONNECTIONS_OPEN.store(n as u64, std::sync::atomic::Ordering::Relaxed);
}

/// Observes one journal group commit, from `COMMIT` issued to returned.
pub fn journal_commit(elapsed: Duration) {
    with_registry(|r| {
        let series = r
            .journal_commit
            .get_or_insert_with(|| Histogram::new(COMMIT_BUCKETS_SECONDS));
        observe(series, COMMIT_BUCKETS_SECONDS, elapsed);
    });
}

/// State read at scrape time from the journal, the sync worker and the KKT driver.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    /// Documents not yet delivered to the OFD (in the KKT, pending or in the DLQ).
    pub backlog_documents: u64,
    /// Age of the oldest undelivered document, by FN number.
    pub oldest_undelivered_age_seconds: Vec<(String, u64)>,
    /// Documents the OFD refused.
    pub dlq_documents: u64,
    /// Receipts whose outcome at the KKT is not known yet.
    pub unresolved_receipts: u64,
    /// True when a refused document blocks the head of an FN's queue.
    pub stuck_head: bool,
    /// True when the last exchange with the KKT succeeded.
    pub kkt_link_up: bool,
    /// The breaker's current state, as `BreakerState::as_str` spells it.
    pub breaker_state: &'static str,
    /// Transitions into each breaker state since start: (state, count).
    pub breaker_transitions: Vec<(&'static str, u64)>,
}

/// Every breaker state, so each has a series (1 for the current one, 0 for the others).
pub const BREAKER_STATES: [&str; 3] = ["CLOSED", "OPEN", "HALF_OPEN"];

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn counters(out: &mut String, name: &str, help: &str, series: &BTreeMap<String, u64>) {
    header(out, name, "counter", help);
    for (key, value) in series {
        let _ = writeln!(out, "{name}{{{key}}} {value}");
    }
}

fn histogram_series(out: &mut String, name: &str, key: &str, buckets: &[f64], h: &Histogram) {
    let sep = if key.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (bound, n) in buckets.iter().zip(&h.bucket_counts) {
        cumulative += n;
        let _ = writeln!(
            out,
            "{name}_bucket{{{key}{sep}le=\"{bound}\"}} {cumulative}"
        );
    }
    let _ = writeln!(out, "{name}_bucket{{{key}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if key.is_empty() {
        String::new()
    } else {
        format!("{{{key}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum_seconds);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

fn histograms(
    out: &mut String,
    name: &str,
    help: &str,
    buckets: &[f64],
    series: &BTreeMap<String, Histogram>,
) {
    header(out, name, "histogram", help);
    for (key, h) in series {
        histogram_series(out, name, key, buckets, h);
    }
}

/// The whole exposition: the recorded events and the scrape-time `gauges`.
pub fn render(gauges: &Gauges) -> String {
    let registry = {
        let guard = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
        (
            guard.receipts_total.clone(),
            guard.http_duration.clone(),
            guard.kkt_duration.clone(),
            guard.kkt_errors_total.clone(),
            guard.journal_commit.clone(),
            guard.http_limits_total.clone(),
        )
    };
    let (receipts, http, kkt, kkt_errors, commit, limits) = registry;
    let mut out = String::new();
    counters(
        &mut out,
        "adapter_receipts_total",
        "Sales answered, by outcome.",
        &receipts,
    );
    histograms(
        &mut out,
        "adapter_http_request_duration_seconds",
        "HTTP request latency, by route pattern and status class.",
        LATENCY_BUCKETS_SECONDS,
        &http,
    );
    counters(
        &mut out,
        "adapter_http_limit_events_total",
        "What the bounds on clients did: connections refused or closed to make room, requests \
         refused for load, rate limit or a body not sent in time.",
        &limits,
    );
    gauge(
        &mut out,
        "adapter_http_connections_open",
        "Client connections open.",
        HTTP_CONNECTIONS_OPEN.load(std::sync::atomic::Ordering::Relaxed),
    );
    histograms(
        &mut out,
        "adapter_kkt_command_duration_seconds",
        "KKT command latency including busy retries, by command code.",
        LATENCY_BUCKETS_SECONDS,
        &kkt,
    );
    counters(
        &mut out,
        "adapter_kkt_command_errors_total",
        "Failed KKT commands, by command code and error code.",
        &kkt_errors,
    );
    header(
        &mut out,
        "adapter_journal_commit_duration_seconds",
        "histogram",
        "Journal group commit latency.",
    );
    let commit = commit.unwrap_or_else(|| Histogram::new(COMMIT_BUCKETS_SECONDS));
    histogram_series(
        &mut out,
        "adapter_journal_commit_duration_seconds",
        "",
        COMMIT_BUCKETS_SECONDS,
        &commit,
    );
    gauge(
        &mut out,
        "adapter_backlog_documents",
        "Documents not yet delivered to the OFD.",
        gauges.backlog_documents,
    );
    header(
        &mut out,
        "adapter_oldest_undelivered_age_seconds",
        "gauge",
        "Age of the oldest document not yet delivered to the OFD, by FN; the FN blocks at 30 days.",
    );
    for (fn_number, age) in &gauges.oldest_undelivered_age_seconds {
        let key = labels(&[("fn_number", fn_number)]);
        let _ = writeln!(out, "adapter_oldest_undelivered_age_seconds{{{key}}} {age}");
    }
    gauge(
        &mut out,
        "adapter_dlq_documents",
        "Documents the OFD refused (dead-letter queue).",
        gauges.dlq_documents,
    );
    gauge(
        &mut out,
        "adapter_unresolved_receipts",
        "Receipts whose outcome at the KKT is not known yet.",
        gauges.unresolved_receipts,
    );
    gauge(
        &mut out,
        "adapter_ofd_stuck_head",
        "1 when a refused document blocks the head of an FN's queue.",
        u64::from(gauges.stuck_head),
    );
    gauge(
        &mut out,
        "adapter_kkt_link_up",
        "1 when the last exchange with the KKT succeeded.",
        u64::from(gauges.kkt_link_up),
    );
    header(
        &mut out,
        "adapter_ofd_breaker_state",
        "gauge",
        "OFD circuit breaker state: 1 for the current state.",
    );
    for state in BREAKER_STATES {
        let key = labels(&[("state", state)]);
        let value = u8::from(state == gauges.breaker_state);
        let _ = writeln!(out, "adapter_ofd_breaker_state{{{key}}} {value}");
    }
    header(
        &mut out,
        "adapter_ofd_breaker_transitions_total",
        "counter",
        "OFD circuit breaker transitions since start, by the state entered.",
    );
    for (state, n) in &gauges.breaker_transitions {
        let key = labels(&[("to", state)]);
        let _ = writeln!(out, "adapter_ofd_breaker_transitions_total{{{key}}} {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\nw")]), r#"a="x\"y\\z\nw""#);
    }

    #[test]
    fn a_histogram_renders_cumulative_buckets_and_inf() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        observe(&mut h, &[0.1, 1.0], Duration::from_millis(0));
        observe(&mut h, &[0.1, 1.0], Duration::from_millis(500));
        observe(&mut h, &[0.1, 1.0], Duration::from_millis(4_250));
        let mut out = String::new();
        histogram_series(&mut out, "x_seconds", "k=\"v\"", &[0.1, 1.0], &h);
        assert_eq!(
            out,
            "x_seconds_bucket{k=\"v\",le=\"0.1\"} 1\n\
             x_seconds_bucket{k=\"v\",le=\"1\"} 2\n\
             x_seconds_bucket{k=\"v\",le=\"+Inf\"} 3\n\
             x_seconds_sum{k=\"v\"} 4.75\n\
             x_seconds_count{k=\"v\"} 3\n"
        );
    }

    #[test]
    fn the_current_breaker_state_is_one_and_the_others_zero() {
        let out = render(&Gauges {
            breaker_state: "OPEN",
            ..Gauges::default()
        });
        assert!(
            out.contains("adapter_ofd_breaker_state{state=\"OPEN\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("adapter_ofd_breaker_state{state=\"CLOSED\"} 0\n"),
            "{out}"
        );
    }
}

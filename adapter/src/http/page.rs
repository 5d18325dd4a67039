//! The status page `GET /` for shop support staff: one self-contained HTML page (no scripts, no
//! external assets, one inline style sheet) with every register's link, mode, shift and FN
//! counters, the backlog and its age against the FN's 30-day limit, the OFD breaker and its next
//! probe, a stuck queue head, the DLQ with a retry button per document, and the newest receipts
//! with their phase 1 and phase 2 states. It reloads itself every few seconds and fits a phone.
//!
//! Boundary: the page reads what the JSON routes read (the journal through the service, each
//! register's status commands between fiscal operations); it changes nothing. Its retry buttons
//! are plain HTML forms posting to `POST /v1/kkt/buffer/dlq/{receipt_id}/retry`, which answers a
//! form with a redirect back here (`status::dlq_retry`), and are checked like any API call: the
//! same token (HTTP Basic in a browser), the admin role, and an `Origin` of the page itself.
//!
//! Invariant: every text that comes from outside the program (OFD error messages, ids, device
//! errors, the query string) goes through [`esc`] before it reaches the page.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::status::{api_network_status, delivery, unix_ms_now};
use super::{AppError, AppState, Requester, journal_error};
use crate::config::Role;
use crate::fiscal::DocKind;
use crate::service::{DeviceSnapshot, Glance, GlanceMiss, KktState, OfdStatus, ReceiptRow};
use crate::sync::BreakerState;
use adapter_api::ErrorCode;

/// Seconds between the page's own reloads.
pub const REFRESH_S: u32 = 5;
/// Receipts listed, newest first.
pub const RECENT_MAX: u32 = 50;
/// DLQ documents listed (the JSON route lists more).
const DLQ_SHOWN_MAX: u32 = 100;
/// How long the page waits for one register's status commands (an unplugged register is shown as
/// not answering, and the page still comes).
const DEVICE_WAIT: Duration = Duration::from_millis(1_500);
/// A register's status read for the page serves every page load this long: any number of viewers
/// cost the register at most one status read (four commands) per period, between sales.
const GLANCE_FRESH: Duration = Duration::from_secs(2);
/// The FN refuses to fiscalize once its oldest unsent document is this old (54-FZ, FN rules).
const FN_UNSENT_LIMIT_MS: i64 = 30 * 24 * 3_600 * 1_000;

/// The query string of a redirect after a retry form: which document, and the refusal's code if
/// the retry was refused.
#[derive(Debug, Default, Deserialize)]
pub(super) struct PageQuery {
    retried: Option<String>,
    retry_error: Option<String>,
}

/// One register as the page shows it.
struct RegisterView {
    id: String,
    link_ok: bool,
    link_error: Option<String>,
    unresolved: bool,
    /// The snapshot, with a note when it is not fresh; or why there is none.
    device: Result<(DeviceSnapshot, Option<String>), String>,
    queued: u64,
    dlq: u64,
    oldest_undelivered_ms: Option<i64>,
}

/// `GET /`: the page.
pub(super) async fn status_page(
    State(state): State<Arc<AppState>>,
    requester: Option<Extension<Requester>>,
    Query(q): Query<PageQuery>,
) -> Result<Response, AppError> {
    let service = &state.any().fiscalizer;
    let counts = service.counts().await.map_err(journal_error)?;
    let delivery = delivery(&state, &counts).await?;
    let by_kkt = service.counts_by_register().await.map_err(journal_error)?;
    let dlq = state
        .any()
        .sync
        .dlq_list(DLQ_SHOWN_MAX)
        .await
        .map_err(journal_error)?;
    let recent = service
        .recent_receipts(RECENT_MAX)
        .await
        .map_err(journal_error)?;
    // Every register at once, each bounded; a register busy with a sale is not waited for.
    let asks: Vec<_> = state
        .shop
        .all()
        .iter()
        .map(|r| {
            let f = r.fiscalizer.clone();
            tokio::spawn(
                async move { tokio::time::timeout(DEVICE_WAIT, f.glance(GLANCE_FRESH)).await },
            )
        })
        .collect();
    let mut registers = Vec::new();
    for (r, ask) in state.shop.all().iter().zip(asks) {
        let device = match ask.await {
            Ok(Ok(Glance::Read { snapshot, .. })) => Ok((snapshot, None)),
            Ok(Ok(Glance::Stale { snapshot, age, why })) => Ok((
                snapshot,
                Some(format!("as read {} ago: {}", span(millis(age)), miss(&why))),
            )),
            Ok(Ok(Glance::None(why))) => Err(miss(&why)),
            Ok(Err(_elapsed)) => Err(format!(
                "did not answer within {} ms",
                DEVICE_WAIT.as_millis()
            )),
            Err(e) => return Err(AppError::internal(e)),
        };
        let link = r.fiscalizer.link_state();
        let c = by_kkt
            .iter()
            .find(|(id, _)| id == r.id())
            .map(|(_, c)| *c)
            .unwrap_or_default();
        registers.push(RegisterView {
            id: r.id().to_owned(),
            link_ok: link.ok,
            link_error: link.last_error,
            unresolved: r.fiscalizer.has_unresolved(),
            device,
            queued: c.undelivered,
            dlq: c.dlq,
            oldest_undelivered_ms: c.oldest_undelivered_ms,
        });
    }
    let may_retry = requester.is_none_or(|Extension(r)| r.role.may(Role::Admin));
    let now = unix_ms_now();
    let mut page = Page::new(now);
    page.head();
    page.notice(&q);
    page.summary(&state, &counts, &delivery, now);
    page.registers(&registers, now);
    page.stuck(&delivery);
    page.dlq(&dlq, may_retry, now);
    page.recent(&recent, now);
    page.end(&state);
    Ok(html(page.out))
}

/// Why the page shows no fresh read of a register: the kind of failure, never the serial port's
/// path.
fn miss(why: &GlanceMiss) -> String {
    match why {
        GlanceMiss::Busy => "busy (a sale, a shift report or reconciliation)".to_owned(),
        GlanceMiss::Failed(e) if e.device_error().is_some() => {
            format!("answered with an error: {e}")
        }
        GlanceMiss::Failed(_) => "no answer on the serial line".to_owned(),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The page with the headers that keep it to itself: no caching, no framing (a hostile page
/// cannot overlay the retry buttons), no script, forms only to this origin.
fn html(body: String) -> Response {
    let mut answer = body.into_response();
    let h = answer.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with the page's own form posts,
    // and the origin check could no longer tell them from a sandboxed frame's.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    answer
}

/// HTML-escapes a text for an element's content or a quoted attribute.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Unix-ms time as `YYYY-MM-DD HH:MM:SS UTC`.
fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| format!("{ms} ms"))
}

/// A duration in ms as the largest two units (`3 d 4 h`, `5 min 2 s`, `800 ms`).
fn span(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1_000;
    match s {
        0 => format!("{ms} ms"),
        1..60 => format!("{s} s"),
        60..3_600 => format!("{} min {} s", s / 60, s % 60),
        3_600..86_400 => format!("{} h {} min", s / 3_600, (s % 3_600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3_600),
    }
}

/// The page's text, written in order.
struct Page {
    out: String,
    now_ms: i64,
}

impl Page {
    fn new(now_ms: i64) -> Page {
        Page {
            out: String::with_capacity(32 * 1024),
            now_ms,
        }
    }

    fn w(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn head(&mut self) {
        let _ = writeln!(
            self.out,
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_S}; url=/">
<title>Fiscal adapter status</title>
<style>
body{{font:15px/1.4 system-ui,sans-serif;margin:0;padding:12px;color:#1b1f23;background:#f6f8fa}}
h1{{font-size:20px;margin:0 0 4px}} h2{{font-size:17px;margin:18px 0 6px}}
.sub{{color:#57606a;font-size:13px}}
.cards{{display:flex;flex-wrap:wrap;gap:8px}}
.card{{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:140px;flex:1 1 140px}}
.card .v{{font-size:22px;font-weight:600}} .card .k{{color:#57606a;font-size:12px}}
.ok{{color:#1a7f37}} .warn{{color:#9a6700}} .bad{{color:#cf222e}}
.scroll{{overflow-x:auto;background:#fff;border:1px solid #d0d7de;border-radius:6px}}
table{{border-collapse:collapse;width:100%;font-size:13px}}
th,td{{text-align:left;padding:5px 8px;border-bottom:1px solid #eaeef2;vertical-align:top;white-space:nowrap}}
td.text{{white-space:normal;min-width:180px;word-break:break-word}}
.bar{{height:6px;background:#eaeef2;border-radius:3px;margin-top:4px}} .bar i{{display:block;height:6px;border-radius:3px}}
.notice{{padding:8px 12px;border-radius:6px;margin:8px 0;border:1px solid}}
.notice.ok{{background:#dafbe1;border-color:#1a7f37}} .notice.bad{{background:#ffebe9;border-color:#cf222e}}
button{{font-size:14px;padding:4px 12px}}
</style></head><body>
<h1>Fiscal adapter</h1>
<div class="sub">as of <span id="generated">{}</span>; this page reloads every {REFRESH_S} s</div>"#,
            when(self.now_ms)
        );
    }

    /// The notice after a retry form came back. Only a receipt id and a known refusal code are
    /// taken from the query string, so a crafted link cannot put its own words on the page.
    fn notice(&mut self, q: &PageQuery) {
        let id = q.retried.as_deref().filter(|id| is_receipt_id(id));
        let refused = q.retry_error.as_deref().map(|code| {
            ErrorCode::ALL
                .iter()
                .find(|c| c.as_str() == code)
                .map_or("refused", |c| refusal(*c))
        });
        match (id, refused) {
            (Some(id), None) => {
                let _ = write!(
                    self.out,
                    r#"<div class="notice ok" id="notice">Document {} was sent back to the OFD queue.</div>"#,
                    esc(id)
                );
            }
            (id, Some(why)) => {
                let _ = write!(
                    self.out,
                    r#"<div class="notice bad" id="notice">The retry of {} was refused: {why}.</div>"#,
                    id.map_or_else(|| "a document".to_owned(), esc)
                );
            }
            (None, None) => {}
        }
    }

    fn summary(
        &mut self,
        state: &AppState,
        counts: &crate::service::BufferCounts,
        delivery: &adapter_api::DeliveryHealth,
        now: i64,
    ) {
        let b = state.any().sync.breaker_snapshot();
        let network = api_network_status(state.network().status);
        let (breaker, class) = match b.state {
            BreakerState::Closed => ("closed", "ok"),
            BreakerState::HalfOpen => ("half-open", "warn"),
            BreakerState::Open => ("open", "bad"),
        };
        let probe = match b.next_probe_at_unix_ms {
            Some(t) if b.state != BreakerState::Closed => format!(
                r#"next probe <span id="next-probe">{}</span> (in {})"#,
                when(t),
                span(t - now)
            ),
            _ => format!("{} failures in a row", b.consecutive_failures),
        };
        let age = counts.oldest_undelivered_ms.map(|t| now - t);
        let (age_text, age_class) = match age {
            None => ("nothing waiting".to_owned(), "ok"),
            Some(a) if delivery.age_alarm => (span(a), "bad"),
            Some(a) => (span(a), "ok"),
        };
        let _ = writeln!(
            self.out,
            r#"<h2>Delivery to the OFD</h2><div class="cards">
<div class="card"><div class="k">backlog (not yet at the OFD)</div><div class="v" id="backlog">{backlog}</div><div class="k">of {capacity} the journal holds</div></div>
<div class="card"><div class="k">OFD breaker</div><div class="v {class}" id="breaker">{breaker}</div><div class="k">{probe}</div></div>
<div class="card"><div class="k">network</div><div class="v" id="network">{network}</div><div class="k">pending {pending}, in the register {in_kkt}</div></div>
<div class="card"><div class="k">oldest undelivered</div><div class="v {age_class}" id="oldest-age">{age_text}</div><div class="k">alarm after {alarm}; FN limit 30 d</div>{bar}</div>
<div class="card"><div class="k">DLQ (needs a person)</div><div class="v {dlq_class}" id="dlq-size">{dlq}</div><div class="k">refused by the OFD</div></div>
</div>"#,
            backlog = counts.undelivered,
            capacity = state.config.capacity,
            network = network_name(network),
            pending = counts.pending,
            in_kkt = counts.in_kkt,
            alarm =
                span(i64::try_from(delivery.age_alarm_after_s).unwrap_or(i64::MAX / 1_000) * 1_000),
            bar = limit_bar(age),
            dlq = counts.dlq,
            dlq_class = if counts.dlq > 0 { "bad" } else { "ok" },
        );
    }

    fn registers(&mut self, registers: &[RegisterView], now: i64) {
        self.w(
            r#"<h2>Registers</h2><div class="scroll"><table id="registers"><thead><tr><th>register</th><th>link</th><th>mode</th><th>shift</th><th>FN</th><th>last FD</th><th>FN unsent</th><th>backlog</th><th>oldest undelivered (of 30 d)</th></tr></thead><tbody>
"#,
        );
        for r in registers {
            let link = match (r.link_ok, &r.link_error) {
                (true, None) => r#"<span class="ok">up</span>"#.to_owned(),
                (true, Some(e)) => format!(r#"<span class="warn">up</span> ({})"#, esc(e)),
                (false, e) => format!(
                    r#"<span class="bad">down</span> {}"#,
                    esc(e.as_deref().unwrap_or(""))
                ),
            };
            let unresolved = if r.unresolved {
                r#"<br><span class="warn">a receipt's outcome is being reconciled</span>"#
            } else {
                ""
            };
            let (mode, shift, fn_number, last_fd, unsent) = match &r.device {
                Ok((d, note)) => (
                    format!(
                        "{}{}",
                        esc(&adapter_api::KktMode::from_code(d.mode.code()).to_string()),
                        note.as_deref().map_or_else(String::new, |n| format!(
                            r#"<br><span class="warn">{}</span>"#,
                            esc(n)
                        ))
                    ),
                    match d.shift_open {
                        true => format!(r#"<span class="ok">open</span> #{}"#, d.shift_number),
                        false => format!("closed (last #{})", d.shift_number),
                    },
                    esc(&d.fn_number),
                    d.last_fd.to_string(),
                    match d.ofd_queue_len {
                        0 => "0".to_owned(),
                        n => {
                            let [y, mo, day, h, mi] = d.ofd_first_datetime;
                            format!(
                                "{n} from FD {} ({:04}-{mo:02}-{day:02} {h:02}:{mi:02}, register clock)",
                                d.ofd_first_fd,
                                2000 + u32::from(y)
                            )
                        }
                    },
                ),
                Err(e) => {
                    let e = format!(r#"<span class="bad">{}</span>"#, esc(e));
                    (e, "?".into(), "?".into(), "?".into(), "?".into())
                }
            };
            let oldest = match r.oldest_undelivered_ms {
                None => "none".to_owned(),
                Some(t) => format!("{}{}", span(now - t), limit_bar(Some(now - t))),
            };
            let _ = writeln!(
                self.out,
                "<tr data-kkt=\"{id}\"><td>{id}</td><td class=\"text\">{link}{unresolved}</td><td>{mode}</td><td>{shift}</td><td>{fn_number}</td><td>{last_fd}</td><td>{unsent}</td><td>{queued}{dlq}</td><td>{oldest}</td></tr>",
                id = esc(&r.id),
                queued = r.queued,
                dlq = match r.dlq {
                    0 => String::new(),
                    n => format!(r#" <span class="bad">({n} in DLQ)</span>"#),
                },
            );
        }
        self.w("</tbody></table></div>\n");
    }

    fn stuck(&mut self, delivery: &adapter_api::DeliveryHealth) {
        let Some(s) = &delivery.stuck else {
            return;
        };
        let _ = writeln!(
            self.out,
            r#"<h2>Stuck queue head</h2><div class="notice bad" id="stuck">FN {} document {} blocks {} behind it{}{}{}</div>"#,
            esc(&s.fn_number),
            s.fd_number,
            s.waiting_behind,
            s.since_unix_ms
                .map_or_else(String::new, |t| format!(", since {}", when(t))),
            s.response_code
                .map_or_else(String::new, |c| format!("; OFD answered code {c}")),
            s.last_error
                .as_deref()
                .map_or_else(String::new, |e| format!(": {}", esc(e))),
        );
    }

    fn dlq(&mut self, entries: &[crate::service::DlqEntry], may_retry: bool, now: i64) {
        let _ = writeln!(
            self.out,
            r#"<h2>DLQ: documents the OFD refused</h2>{}<div class="scroll"><table id="dlq"><thead><tr><th></th><th>receipt</th><th>FN / FD</th><th>last attempt</th><th>attempts</th><th>last error</th></tr></thead><tbody>"#,
            if may_retry {
                ""
            } else {
                r#"<div class="sub">retrying needs a token with the admin role</div>"#
            }
        );
        if entries.is_empty() {
            self.w(r#"<tr><td colspan="6" class="ok">empty</td></tr>"#);
        }
        for e in entries {
            let r = &e.receipt;
            let id = esc(&r.receipt_id);
            let button = if may_retry {
                format!(
                    r#"<form method="post" action="/v1/kkt/buffer/dlq/{id}/retry"><button type="submit">Retry</button></form>"#
                )
            } else {
                String::new()
            };
            let at = e.last_attempt_ms.unwrap_or(r.updated_at_ms);
            let _ = writeln!(
                self.out,
                "<tr data-receipt=\"{id}\"><td>{button}</td><td>{id}</td><td>{fiscal}</td><td>{at} ({ago} ago)</td><td>{attempts}</td><td class=\"text\">{error}</td></tr>",
                fiscal = r.fiscal.as_ref().map_or_else(String::new, |f| format!(
                    "{} / {}",
                    esc(&f.fn_number),
                    f.fd_number
                )),
                at = when(at),
                ago = span(now - at),
                attempts = r.retry_count.max(e.rejections.len() as u32),
                error = esc(&[
                    e.response_code.map(|c| format!("OFD code {c}")),
                    r.error_code.clone(),
                    r.last_error.clone(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ")),
            );
        }
        self.w("</tbody></table></div>\n");
    }

    fn recent(&mut self, rows: &[ReceiptRow], now: i64) {
        let _ = writeln!(
            self.out,
            r#"<h2>Last {RECENT_MAX} documents</h2><div class="scroll"><table id="recent"><thead><tr><th>receipt</th><th>register</th><th>kind</th><th>journaled</th><th>phase 1: register</th><th>phase 2: OFD</th><th>FD</th><th>total</th></tr></thead><tbody>"#
        );
        if rows.is_empty() {
            self.w(r#"<tr><td colspan="8">no documents yet</td></tr>"#);
        }
        for r in rows {
            let (p1, p1_class) = match r.kkt_state {
                KktState::Received => ("received", "warn"),
                KktState::InFlight => ("at the register", "warn"),
                KktState::Fiscalized => ("printed", "ok"),
                KktState::Rejected => ("rejected", "bad"),
            };
            let (p2, p2_class) = match r.status {
                None => ("-", ""),
                Some(OfdStatus::Pending) => ("pending", "warn"),
                Some(OfdStatus::Synced) => ("delivered", "ok"),
                Some(OfdStatus::Dlq) => ("DLQ", "bad"),
            };
            let kind = match r.kind {
                DocKind::Receipt => "receipt",
                DocKind::ShiftOpen => "shift open",
                DocKind::ShiftClose => "shift close",
            };
            let _ = writeln!(
                self.out,
                "<tr data-receipt=\"{id}\"><td>{id}</td><td>{kkt}</td><td>{kind}</td><td>{at} ({ago} ago)</td><td class=\"{p1_class} phase1\">{p1}</td><td class=\"{p2_class} phase2\">{p2}</td><td>{fd}</td><td>{total}</td></tr>",
                id = esc(&r.receipt_id),
                kkt = esc(&r.kkt_id),
                at = when(r.created_at_ms),
                ago = span(now - r.created_at_ms),
                fd = r
                    .fiscal
                    .as_ref()
                    .map_or_else(String::new, |f| f.fd_number.to_string()),
                total = r.fiscal.as_ref().map_or_else(String::new, |f| {
                    format!(
                        "{}.{:02}",
                        f.total_kopecks / 100,
                        (f.total_kopecks % 100).abs()
                    )
                }),
            );
        }
        self.w("</tbody></table></div>\n");
    }

    fn end(&mut self, state: &AppState) {
        let _ = writeln!(
            self.out,
            r#"<p class="sub">adapter {} up {}; JSON: <a href="/v1/health">/v1/health</a>, <a href="/v1/kkt/buffer/status">/v1/kkt/buffer/status</a>, <a href="/v1/kkt/buffer/dlq">/v1/kkt/buffer/dlq</a></p>
</body></html>"#,
            env!("CARGO_PKG_VERSION"),
            span(i64::try_from(state.started.elapsed().as_millis()).unwrap_or(i64::MAX)),
        );
    }
}

fn network_name(status: adapter_api::NetworkStatus) -> &'static str {
    match status {
        adapter_api::NetworkStatus::Online => "online",
        adapter_api::NetworkStatus::Offline => "offline",
        adapter_api::NetworkStatus::Degraded => "degraded",
    }
}

/// A receipt id as the adapter makes them (hex digits of its creation stamp), bounded.
fn is_receipt_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a refused retry's code means to a person at the page.
fn refusal(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NotFound => "there is no such document",
        ErrorCode::NotInDlq => "it is not in the DLQ any more (retried already?)",
        ErrorCode::Forbidden => "retrying needs a token with the admin role",
        ErrorCode::JournalUnavailable => "the journal cannot be written right now; try again",
        _ => "refused",
    }
}

/// A bar of how much of the FN's 30-day limit an age has used: amber past half, red past 80 %.
fn limit_bar(age_ms: Option<i64>) -> String {
    let Some(age) = age_ms else {
        return String::new();
    };
    let used = (age.max(0) as f64 / FN_UNSENT_LIMIT_MS as f64).min(1.0);
    let colour = match used {
        u if u >= 0.8 => "#cf222e",
        u if u >= 0.5 => "#bf8700",
        _ => "#1a7f37",
    };
    format!(
        r#"<div class="bar" title="{:.1} % of the FN's 30 days"><i style="width:{:.1}%;background:{colour}"></i></div>"#,
        used * 100.0,
        (used * 100.0).max(1.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_leaves_no_markup() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(esc("a\nb\u{7}"), "a b ");
    }

    #[test]
    fn spans_read_as_the_two_largest_units() {
        assert_eq!(span(800), "800 ms");
        assert_eq!(span(59_000), "59 s");
        assert_eq!(span(62_000), "1 min 2 s");
        assert_eq!(span(3 * 3_600_000 + 120_000), "3 h 2 min");
        assert_eq!(span(31 * 86_400_000 + 3_600_000), "31 d 1 h");
        assert_eq!(span(-5), "0 ms");
    }

    #[test]
    fn the_limit_bar_turns_amber_at_half_and_red_at_four_fifths() {
        let day = 86_400_000;
        assert!(limit_bar(Some(day)).contains("#1a7f37"));
        assert!(limit_bar(Some(16 * day)).contains("#bf8700"));
        assert!(limit_bar(Some(25 * day)).contains("#cf222e"));
        assert!(limit_bar(Some(90 * day)).contains("width:100.0%"));
        assert_eq!(limit_bar(None), "");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
    }
}

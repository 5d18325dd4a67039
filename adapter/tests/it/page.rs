//! The status page `GET /` over plain HTTP (the browser test, `tests/browser.rs`, reads it in
//! Chromium): who may see it and how a browser is asked to sign in, the headers that keep it to
//! itself, the retry button's form post and its redirect, and escaping of what others wrote.

use base64::Engine as _;
use serde_json::json;

use super::harness::{Stack, lenses};

const ADMIN: &str = "page-admin-secret-8d1e";
const POS: &str = "page-pos-secret-51c0";

fn basic(name: &str, secret: &str) -> String {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{secret}"));
    format!("Basic {pair}")
}

/// An adapter with an admin and a POS token whose OFD refused its first document: one DLQ entry.
async fn stack_with_a_dlq_document() -> (Stack, String) {
    let mut s = Stack::with_adapter(&[
        "--auth-token",
        &format!("ops:admin:{ADMIN},till:pos:{POS}"),
        "--sync-interval-ms",
        "600000",
        "--probe-when-idle",
        "false",
    ])
    .await;
    s.bearer = Some(format!("Bearer {ADMIN}"));
    s.mock(
        "POST",
        "/_mock/mode",
        Some(json!({"mode": "reject", "code": 14})),
    )
    .await;
    let (code, v) = s.post_receipt(lenses("page-1")).await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = s
        .call("POST", "/v1/kkt/buffer/sync?force=true", None, &[])
        .await;
    assert_eq!(code, 200, "{v}");
    let dlq = s.call("GET", "/v1/kkt/buffer/dlq", None, &[]).await.1;
    let id = dlq["documents"][0]["receipt_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a DLQ document: {dlq}"))
        .to_owned();
    (s, id)
}

async fn get_page(s: &Stack, query: &str, auth: &str) -> reqwest::Response {
    s.http
        .get(format!("{}/{query}", s.adapter_url))
        .header("authorization", auth)
        .send()
        .await
        .expect("adapter answers")
}

/// A form post as a browser sends it, its redirect not followed (so the test sees it).
async fn post_form(s: &Stack, path: &str, origin: &str) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    http.post(format!("{}{path}", s.adapter_url))
        .header("authorization", basic("ops", ADMIN))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", origin)
        .header("content-length", "0")
        .send()
        .await
        .expect("adapter answers")
}

#[tokio::test]
async fn a_browser_is_asked_to_sign_in_with_basic_and_the_page_keeps_to_itself() {
    let (s, id) = stack_with_a_dlq_document().await;
    let r = get_page(&s, "", "").await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    // The API's own routes still ask for a bearer token.
    let api = s
        .http
        .get(format!("{}/v1/kkt/buffer/status", s.adapter_url))
        .send()
        .await
        .unwrap();
    assert_eq!(api.headers()["www-authenticate"], "Bearer");

    let r = get_page(&s, "", &basic("ops", ADMIN)).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp} lacks {part}");
    }
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(
        page.contains(r#"<meta http-equiv="refresh""#),
        "reloads itself"
    );
    assert!(page.contains(r#"name="viewport""#), "fits a phone");
    assert!(!page.contains("<script"), "no script");
    assert!(!page.contains("src=\"http"), "no external asset");
    // Two documents (shift-open report and the sale): the report is the queue's head in the DLQ.
    assert!(
        page.contains(r#"<div class="v" id="backlog">2</div>"#),
        "{page}"
    );
    assert!(page.contains(&format!(r#"action="/v1/kkt/buffer/dlq/{id}/retry""#)));
    assert!(page.contains("OFD code 14"), "the refusal is shown");
    assert!(page.contains(r#"id="stuck""#), "the stuck head is shown");
    assert_eq!(
        page.matches(r#"<tr data-receipt="#).count(),
        3,
        "one DLQ row and two recent documents"
    );

    // A POS token reads the page but is offered no retry.
    let pos = get_page(&s, "", &basic("till", POS)).await;
    assert_eq!(pos.status(), 200);
    let pos = pos.text().await.unwrap();
    assert!(!pos.contains("<form"), "no retry form for the POS role");
    assert!(pos.contains("retrying needs a token with the admin role"));
    // A secret under another token's name is refused.
    assert_eq!(get_page(&s, "", &basic("ops", POS)).await.status(), 401);
}

#[tokio::test]
async fn the_retry_form_comes_back_to_the_page_and_other_sites_cannot_post_it() {
    let (s, id) = stack_with_a_dlq_document().await;
    let path = format!("/v1/kkt/buffer/dlq/{id}/retry");
    let own = s.adapter_url.clone();
    // Another site's page cannot press the button for support.
    let r = post_form(&s, &path, "http://evil.example").await;
    assert_eq!(r.status(), 403);
    let dlq = s.call("GET", "/v1/kkt/buffer/dlq", None, &[]).await.1;
    assert_eq!(dlq["dlq_size"], 1, "nothing was retried: {dlq}");
    // A form with fields is a body that is not JSON: refused before routing.
    let r = s
        .http
        .post(format!("{own}{path}"))
        .header("authorization", basic("ops", ADMIN))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", own.as_str())
        .body("a=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    // The page's own form: retried, and the browser goes back to the page with a notice.
    s.mock("POST", "/_mock/mode", Some(json!({"mode": "online"})))
        .await;
    let r = post_form(&s, &path, &own).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/?retried={id}").as_str());
    let dlq = s.call("GET", "/v1/kkt/buffer/dlq", None, &[]).await.1;
    assert_eq!(dlq["dlq_size"], 0, "{dlq}");
    let page = get_page(&s, &format!("?retried={id}"), &basic("ops", ADMIN))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("Document {id} was sent back to the OFD queue")));

    // A refused retry comes back with its code.
    let r = post_form(&s, "/v1/kkt/buffer/dlq/no%20such/retry", &own).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/?retried=no%20such&retry_error=not_found"
    );
    // The JSON API answers as before.
    let (code, v) = s.call("POST", &path, None, &[]).await;
    assert_eq!((code, v["code"].as_str()), (409, Some("not_in_dlq")), "{v}");
}

#[tokio::test]
async fn the_notice_takes_only_an_id_and_a_known_code_from_the_query_string() {
    let (s, id) = stack_with_a_dlq_document().await;
    let page = |q: String| {
        let s = &s;
        async move {
            get_page(s, &q, &basic("ops", ADMIN))
                .await
                .text()
                .await
                .unwrap()
        }
    };
    let crafted = page(
        "?retried=%3Cscript%3Ealert(1)%3C/script%3E&retry_error=call%20us%20at%20555".to_owned(),
    )
    .await;
    assert!(
        !crafted.contains("<script") && !crafted.contains("alert(1)"),
        "{crafted}"
    );
    assert!(
        !crafted.contains("call us"),
        "no words of the link's own on the page"
    );
    assert!(crafted.contains("The retry of a document was refused: refused."));
    let known = page(format!("?retried={id}&retry_error=not_in_dlq")).await;
    assert!(
        known.contains(&format!(
            "The retry of {id} was refused: it is not in the DLQ any more (retried already?)."
        )),
        "{known}"
    );
    assert!(!page(String::new()).await.contains(r#"id="notice""#));
}

/// Any number of viewers cost the register at most one status read (FF40 among its four commands)
/// per two seconds: ten page loads in a row read the device once per period, not ten times.
#[tokio::test]
async fn page_loads_share_one_status_read_of_the_register() {
    let (s, _) = stack_with_a_dlq_document().await;
    let ff40 = |v: &serde_json::Value| v["by_code"]["FF40"].as_u64().unwrap_or(0);
    let before = ff40(&s.emu("GET", "/_emu/commands", None).await);
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let r = get_page(&s, "", &basic("ops", ADMIN)).await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("ShiftOpen"));
    }
    let periods = started.elapsed().as_secs() / 2 + 1;
    let reads = ff40(&s.emu("GET", "/_emu/commands", None).await) - before;
    assert!(
        (1..=periods).contains(&reads),
        "{reads} status reads for 10 page loads in {:?}",
        started.elapsed()
    );
}

/// With several registers the page has a row per register, each with its own FN, and a register
/// that does not answer in time says so while the other's row is whole.
#[tokio::test]
async fn each_register_has_its_row_and_a_dead_one_does_not_hide_the_others() {
    let s = Stack::with_registers(2, &[]).await;
    let fn_of = |v: serde_json::Value| v["fn_serial"].as_str().unwrap().to_owned();
    let (fn1, fn2) = (
        fn_of(s.emu_n(1, "GET", "/_emu/state", None).await),
        fn_of(s.emu_n(2, "GET", "/_emu/state", None).await),
    );
    // Both registers reconciled and answering first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.call("GET", "/v1/ready", None, &[]).await.0 != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // till-2 answers its next commands three seconds late: past the page's wait.
    s.emu_n(
        2,
        "POST",
        "/_emu/fault",
        Some(json!({"kind": "slow", "ms": 3000, "count": 4})),
    )
    .await;
    let load = async || {
        s.http
            .get(format!("{}/", s.adapter_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let row = |page: &str, kkt: &str| {
        let start = page
            .find(&format!("<tr data-kkt=\"{kkt}\">"))
            .unwrap_or_else(|| panic!("no row for {kkt}: {page}"));
        page[start..start + page[start..].find("</tr>").unwrap()].to_owned()
    };
    // till-1 may be between two of its own background reads at one load; not for five seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let page = loop {
        let page = load().await;
        if row(&page, "till-1").contains(&fn1) || std::time::Instant::now() >= deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let (r1, r2) = (row(&page, "till-1"), row(&page, "till-2"));
    assert!(r1.contains(&fn1), "{r1}");
    assert!(
        !r2.contains(&fn2),
        "a register that did not answer shows no FN: {r2}"
    );
    assert!(
        r2.contains("no answer on the serial line") || r2.contains("did not answer"),
        "{r2}"
    );
}

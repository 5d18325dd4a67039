//! `uat run --report-html DIR`: a real run (kkt-emulator, ofd-mock and the adapter, with the OFD
//! offline and the adapter killed and restarted) and a failing scenario, then the structure of
//! `index.html` (the timeline's backlog series, breaker band, fault spans and receipt ticks, the
//! failure's expected vs. observed text, the replay commands, evidence links) and of
//! `report.json`; and the report of an interrupted run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::cli::text;

/// Builds the three binaries the scenario starts, once, and returns the profile directory.
fn bin_dir() -> PathBuf {
    crate::built(&["adapter", "ofd-mock", "kkt-emulator"])
}

/// The OFD goes offline until the breaker opens, three sales wait in the backlog, the adapter is
/// killed and restarted, the OFD comes back and everything is delivered once.
const OFFLINE_KILL: &str = r#"[scenario]
name = "report-offline-kill"
timeout = "90s"

[process.emu]
command = "{{bin.kkt-emulator}}"
args = ["--pty-link", "{{dir}}/kkt.tty", "--state", "{{dir}}/fn.json", "--control", "127.0.0.1:{{port.emu}}"]
ready = { http_get = "http://127.0.0.1:{{port.emu}}/_emu/health", timeout = "20s" }

[process.ofd]
command = "{{bin.ofd-mock}}"
args = ["--listen", "127.0.0.1:{{port.ofdtcp}}", "--control", "127.0.0.1:{{port.ofd}}", "--db", "{{dir}}/ofd.db"]
ready = { http_get = "http://127.0.0.1:{{port.ofd}}/_mock/health", timeout = "20s" }

[process.adapter]
command = "{{bin.adapter}}"
args = ["--listen", "127.0.0.1:{{port.adapter}}", "--db", "{{dir}}/adapter.db", "--kkt-port", "{{dir}}/kkt.tty",
  "--ofd-addr", "127.0.0.1:{{port.ofdtcp}}", "--sync-interval-ms", "200", "--backoff-initial-ms", "50",
  "--backoff-max-ms", "500", "--breaker-failures", "3", "--breaker-open-ms", "2000", "--breaker-probes", "2",
  "--ofd-connect-timeout-ms", "500", "--ofd-io-timeout-ms", "1000"]
db = "{{dir}}/adapter.db"
ready = { http_get = "http://127.0.0.1:{{port.adapter}}/v1/ready", timeout = "20s" }

[[step]]
http = "POST adapter /v1/kkt/shift/open"
expect.status = 200
append.fds = "$.fd_number"

[[step]]
wait_until = "GET adapter /v1/kkt/buffer/status"
expect.json = { "$.pending" = 0, "$.synced" = 1 }
timeout = "15s"

[[step]]
name = "the OFD goes offline"
http = "POST ofd /_mock/mode"
json = { mode = "offline" }
expect.status = 200

[[step]]
wait_until = "GET adapter /v1/health"
expect.json = { "$.circuit_breaker.state" = "OPEN" }
timeout = "15s"

[[step]]
repeat = 3

[[step.steps]]
http = "POST adapter /v1/kkt/receipt"
json = { idempotency_key = "report-{{i}}", type = "sale", taxation = "osn", operator = "Ivanova", items = [{ name = "Lens cloth", price = "300.00", quantity = "1", vat = "vat20", payment_method = "full_payment", payment_object = "commodity" }], payments = [{ type = "cash", amount = "300.00" }] }
expect.status = 200
append.fds = "$.fiscal.fd_number"

[[step]]
wait_until = "GET adapter /v1/kkt/buffer/status"
expect.json = { "$.pending" = 3 }
timeout = "5s"

[[step]]
name = "let the sampler see the backlog (it reads every 250 ms)"
sleep = "800ms"

[[step]]
kill = "adapter"

[[step]]
start = "adapter"

[[step]]
name = "the OFD comes back"
http = "POST ofd /_mock/mode"
json = { mode = "online" }
expect.status = 200

[[step]]
http = "POST adapter /v1/kkt/buffer/sync?force=true"
expect.status = 200

[[step]]
wait_until = "GET adapter /v1/kkt/buffer/status"
expect.json = { "$.pending" = 0, "$.synced" = 4 }
timeout = "30s"

[[check]]
exactly_once = "fds"
observe = "GET ofd /_mock/documents"
ids = "$.documents[*].fd"
"#;

const FAILS: &str = r#"[scenario]
name = "report-fails"

[[step]]
name = "always false"
exec = "false"
"#;

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// The part of the page about scenario `n` (its section up to the next one).
fn section(html: &str, n: usize) -> &str {
    let start = html
        .find(&format!("<section id=\"s{n}\">"))
        .unwrap_or_else(|| panic!("no section s{n}"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").unwrap()]
}

#[test]
fn the_html_report_draws_the_timeline_and_tells_the_failure_and_report_json_has_the_samples() {
    let bins = bin_dir();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.toml"), OFFLINE_KILL).unwrap();
    std::fs::write(tmp.path().join("b.toml"), FAILS).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_uat"))
        .args(["run", "--out-dir", "out", "--bin-dir"])
        .arg(&bins)
        .args(["--report-html", "report", "a.toml", "b.toml"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(i32::from(uat::EXIT_FAILED)),
        "{stdout}{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("ok    report-offline-kill ("), "{stdout}");
    assert!(stdout.ends_with("1 passed, 1 failed\n"), "{stdout}");

    let html = std::fs::read_to_string(tmp.path().join("report/index.html")).unwrap();
    // Self-contained: nothing to fetch.
    for fetch in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(fetch), "{fetch} in the page");
    }
    assert!(html.contains("<table class=\"summary\">"), "{html}");
    let a = section(&html, 0);
    assert!(a.contains("<svg class=\"timeline\""), "{a}");
    assert!(
        a.contains("class=\"series backlog\" data-process=\"adapter\""),
        "{a}"
    );
    assert!(a.contains("class=\"band breaker-open\""), "{a}");
    assert!(a.contains("class=\"fault kill\""), "{a}");
    assert!(a.contains("class=\"fault ofd-mode\""), "{a}");
    assert_eq!(
        count(a, "<line class=\"tick once\""),
        4,
        "the shift report and three sales, each delivered once: {a}"
    );
    assert_eq!(count(a, "class=\"tick lost\""), 0, "{a}");
    assert!(
        a.contains("<code class=\"replay\">uat run a.toml</code>"),
        "{a}"
    );
    let b = section(&html, 1);
    assert!(b.contains("class=\"status-failed\""), "{b}");
    assert!(
        b.contains("step 1 (exec `false` (always false)) at b.toml:")
            && b.contains("exit code: expected 0, observed exit status: 1"),
        "the failure names the step, its location, expected vs. observed: {b}"
    );
    assert!(
        b.contains("<code class=\"replay\">uat run b.toml</code>"),
        "{b}"
    );
    assert!(
        b.contains("<tr class=\"fail\"><td>1</td><td>exec</td>"),
        "{b}"
    );

    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("report/report.json")).unwrap(),
    )
    .unwrap();
    let scenarios = json["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    let (ja, jb) = (&scenarios[0], &scenarios[1]);
    assert_eq!(ja["name"], "report-offline-kill");
    assert_eq!(ja["status"], "passed");
    let backlog: Vec<u64> = ja["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["process"] == "adapter" && s["kind"] == "adapter")
        .filter_map(|s| s["values"]["backlog"].as_u64())
        .collect();
    assert!(!backlog.is_empty(), "{ja}");
    assert!(
        backlog.contains(&3),
        "the backlog of three was sampled: {backlog:?}"
    );
    for kind in ["ofd_mock", "kkt_emulator"] {
        assert!(
            ja["samples"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["kind"] == kind && s["values"].is_object()),
            "{kind} sampled"
        );
    }
    let faults: Vec<&str> = ja["fault_windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["kind"].as_str().unwrap())
        .collect();
    assert!(
        faults.contains(&"kill") && faults.contains(&"ofd-mode"),
        "{faults:?}"
    );
    let ticks = ja["ticks"].as_array().unwrap();
    assert_eq!(ticks.len(), 4, "{ticks:?}");
    assert!(ticks.iter().all(|t| t["fate"] == "once"), "{ticks:?}");
    assert!(ja["events"].as_array().unwrap().len() > 10);
    assert_eq!(jb["status"], "failed");
    assert!(
        jb["failure"]
            .as_str()
            .unwrap()
            .contains("expected 0, observed exit status: 1"),
        "{jb}"
    );
    assert_eq!(jb["replay"], "uat run b.toml");
    // The failing check's values apart, for tools that read the JSON, and on the page.
    assert_eq!(jb["mismatch"]["checked"], "exit code", "{jb}");
    assert_eq!(jb["mismatch"]["expected"], "0", "{jb}");
    assert_eq!(jb["mismatch"]["observed"], "exit status: 1", "{jb}");
    assert!(ja["mismatch"].is_null(), "a pass has no mismatch: {ja}");
    assert!(
        b.contains("<td class=\"expected\">0</td><td class=\"observed\">exit status: 1</td>"),
        "{b}"
    );
    // The failed scenario's folder is kept; its files are linked relative to the report.
    let files: Vec<&str> = jb["evidence_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let history = files
        .iter()
        .find(|f| f.ends_with("report-fails/history.jsonl"))
        .unwrap_or_else(|| panic!("{files:?}"));
    assert!(history.starts_with("../out/"), "{history}");
    assert!(tmp.path().join("report").join(history).is_file());
    assert!(b.contains(&format!("href=\"{history}\"")), "{b}");
    assert!(jb["samples"].as_array().unwrap().is_empty());

    drawn_in_a_browser(&tmp.path().join("report/index.html"));
}

/// The report opened from disk in headless Chromium, as from a CI artifact: the timeline is laid
/// out and drawn (the backlog line has a length, the breaker band, fault spans and the four ticks
/// have a size on the page), and a screenshot is kept in `target/tmp/browser/`.
fn drawn_in_a_browser(index: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = test_browser::Browser::start(1280, 1600)
            .await
            .expect("headless Chromium starts");
        b.client
            .goto(&format!("file://{}", index.display()))
            .await
            .expect("the report opens from disk");
        let drawn = b
            .client
            .execute(
                r#"const svg = document.querySelector('svg.timeline');
                   const size = (sel) => Array.from(svg.querySelectorAll(sel))
                       .map((e) => e.getBoundingClientRect())
                       .filter((r) => r.width > 0 || r.height > 0).length;
                   const line = svg.querySelector('polyline.series.backlog');
                   return {
                     svg_width: svg.getBoundingClientRect().width,
                     backlog_length: line ? line.getTotalLength() : 0,
                     backlog_points: line ? line.points.numberOfItems : 0,
                     breaker_bands: size('.band.breaker-open'),
                     kill_spans: size('.fault.kill'),
                     ofd_spans: size('.fault.ofd-mode'),
                     ticks_once: size('.tick.once'),
                   };"#,
                vec![],
            )
            .await
            .expect("the page runs the check");
        let num = |k: &str| drawn[k].as_f64().unwrap_or(0.0);
        assert!(
            num("svg_width") > 300.0,
            "the timeline is laid out: {drawn}"
        );
        assert!(
            num("backlog_length") > 0.0 && num("backlog_points") > 2.0,
            "{drawn}"
        );
        assert!(num("breaker_bands") >= 1.0, "{drawn}");
        assert!(
            num("kill_spans") >= 1.0 && num("ofd_spans") >= 1.0,
            "{drawn}"
        );
        assert_eq!(num("ticks_once"), 4.0, "{drawn}");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
        let shot = b.screenshot(&dir, "uat-report.png").await;
        // Kept beside the report too, so a CI artifact of the report folder shows it.
        std::fs::copy(&shot, index.with_file_name("screenshot.png")).unwrap();
        b.client.clone().close().await.expect("the session closes");
    });
}

#[test]
fn an_interrupted_run_still_writes_the_report_of_what_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let put = |file: &str, name: &str, step: &str| {
        std::fs::write(
            tmp.path().join(file),
            format!("[scenario]\nname = \"{name}\"\n\n[[step]]\n{step}\n"),
        )
        .unwrap();
    };
    put("a.toml", "a-quick", "exec = \"true\"");
    put("b.toml", "b-long", "sleep = \"60s\"");
    let mut child = Command::new(env!("CARGO_BIN_EXE_uat"))
        .args(["run", "--out-dir", "out", "--bin-dir", ".", "--report-html"])
        .arg(Path::new("report"))
        .args(["a.toml", "b.toml"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::interrupt_once_running(&mut child, "b-long");
    assert_eq!(
        child.wait().unwrap().code(),
        Some(i32::from(uat::EXIT_INFRA))
    );
    let html = std::fs::read_to_string(tmp.path().join("report/index.html")).unwrap();
    assert!(html.contains("The run was interrupted"), "{html}");
    assert!(html.contains("<a href=\"#s0\">a-quick</a>"), "{html}");
    assert!(!html.contains("b-long"), "{html}");
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("report/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["interrupted"], true);
    assert_eq!(json["passed"], 1);
    assert_eq!(json["scenarios"].as_array().unwrap().len(), 1);
}

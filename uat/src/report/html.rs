//! The HTML reporter (`--report-html DIR`): one self-contained `DIR/index.html` (inline CSS and
//! SVG, no script, nothing fetched, so it opens from a CI artifact) with a summary table and, per
//! scenario, its failure, a timeline, its steps and links to its evidence; and `DIR/report.json`
//! with the same data (`data.rs`) for other tools.
//!
//! The SVG's elements carry stable classes, which tests look for: `series backlog` (one polyline
//! per adapter run of answered samples), `band breaker-closed|breaker-open|breaker-half-open`,
//! `fault KIND` (`kill`, `stop`, `pause`, `power-cut`, `fs-fail`, `ofd-mode`, `kkt-fault`),
//! `tick once|lost|duplicated|indeterminate` and `marker fail` (a step that failed).

use std::fmt::Write as _;
use std::path::Path;

use super::Outcome;
use super::data::{self, RunData, ScenarioData, Status};
use super::junit::NotRun;
use crate::history::Outcome as StepOutcome;
use crate::timeline::TargetKind;

/// The page's file name inside the report folder.
pub const HTML_FILE: &str = "index.html";
/// The data's file name inside the report folder.
pub const JSON_FILE: &str = "report.json";
/// The most step rows shown per scenario; rows that did not end ok are shown past it.
const ROWS_SHOWN_MAX: usize = 300;

/// Writes `index.html` and `report.json` into `dir` (created if needed), each through a temporary
/// file and a rename, so a reader never sees half a report.
pub fn write<'a>(
    dir: &Path,
    outcomes: impl IntoIterator<Item = &'a Outcome>,
    skipped: &[NotRun],
    interrupted: bool,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let data = data::build(dir, outcomes, skipped, interrupted);
    let json = serde_json::to_string(&data).map_err(std::io::Error::other)?;
    put(dir, JSON_FILE, &json)?;
    put(dir, HTML_FILE, &render(&data))
}

fn put(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Text made safe for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative file path as a link target: each byte outside the unreserved set and `/` is
/// percent-encoded, so `#`, `?` and spaces in a name cannot change what the link points at.
fn href(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}code,pre{font-family:ui-monospace,monospace;font-size:90%}
pre.failure{background:#fff0f0;border-left:4px solid #c00;padding:.5em;white-space:pre-wrap}
.status-passed,.status-expected-failure{color:#070}.status-failed,.status-error{color:#c00;font-weight:bold}
.status-flaky{color:#b60;font-weight:bold}.status-skipped{color:#777}
tr.fail td{background:#fff0f0}tr.indeterminate td{background:#fff8e0}
section{border-top:2px solid #ddd;margin-top:2em}
svg{background:#fff;border:1px solid #ddd}svg text{font-size:10px;fill:#444}
.fault{fill-opacity:.18}.fault.kill,.fault.power-cut{fill:#c00}.fault.stop{fill:#a33}.fault.pause{fill:#888}
.fault.fs-fail{fill:#a0a}.fault.ofd-mode{fill:#f80}.fault.kkt-fault{fill:#06c}
.band.breaker-closed{fill:#6c6}.band.breaker-open{fill:#d33}.band.breaker-half-open{fill:#fc3}
.series{fill:none;stroke-width:1.5}.tick{stroke-width:1.5}
.tick.once{stroke:#2a2}.tick.lost{stroke:#d00}.tick.duplicated{stroke:#90c}.tick.indeterminate{stroke:#e90}
.marker.fail{stroke:#c00;stroke-dasharray:3 2}.axis{stroke:#999}
.legend span{display:inline-block;margin-right:1em}.sw{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin-right:.3em}
";

/// Colours of the backlog series, one per adapter in turn.
const PALETTE: &[&str] = &["#1f77b4", "#9467bd", "#8c564b", "#17becf", "#e377c2"];

/// The whole page.
pub fn render(d: &RunData) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<title>uat report</title>\n<style>");
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n<h1>uat report</h1>\n");
    let _ = writeln!(
        h,
        "<p class=\"totals\">{} passed, {} failed, {} flaky, {} skipped</p>",
        d.passed, d.failed, d.flaky, d.skipped
    );
    if d.interrupted {
        h.push_str("<p class=\"interrupted\"><b>The run was interrupted</b>: this report holds the scenarios that finished.</p>\n");
    }
    summary(&mut h, d);
    for (n, s) in d.scenarios.iter().enumerate() {
        if s.status != Status::Skipped {
            scenario(&mut h, n, s);
        }
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn summary(h: &mut String, d: &RunData) {
    h.push_str("<table class=\"summary\">\n<tr><th>scenario</th><th>status</th><th>duration</th><th>seed</th><th>replay</th></tr>\n");
    for (n, s) in d.scenarios.iter().enumerate() {
        let name = if s.status == Status::Skipped {
            esc(&s.name)
        } else {
            format!("<a href=\"#s{n}\">{}</a>", esc(&s.name))
        };
        let attempts = if s.attempts > 1 {
            format!(" ({} attempts)", s.attempts)
        } else {
            String::new()
        };
        let _ = writeln!(
            h,
            "<tr><td>{name}</td><td class=\"{}\">{}{attempts}</td><td>{:.1}s</td><td>{}</td><td><code>{}</code></td></tr>",
            s.status.class(),
            esc(s.status.label()),
            s.duration_ms as f64 / 1000.0,
            s.seed.map(|x| x.to_string()).unwrap_or_default(),
            esc(&s.replay),
        );
    }
    h.push_str("</table>\n");
}

fn scenario(h: &mut String, n: usize, s: &ScenarioData) {
    let _ = writeln!(
        h,
        "<section id=\"s{n}\">\n<h2>{} <span class=\"{}\">{}</span></h2>",
        esc(&s.name),
        s.status.class(),
        esc(s.status.label())
    );
    let _ = writeln!(
        h,
        "<p>file <code>{}</code>, {:.1}s{}; replay: <code class=\"replay\">{}</code></p>",
        esc(&s.file),
        s.duration_ms as f64 / 1000.0,
        s.seed.map(|x| format!(", seed {x}")).unwrap_or_default(),
        esc(&s.replay)
    );
    if let Some(f) = &s.failure {
        let _ = writeln!(h, "<pre class=\"failure\">{}</pre>", esc(f));
        if let Some(m) = &s.mismatch {
            let _ = writeln!(
                h,
                "<table class=\"mismatch\"><tr><th>checked</th><th>expected</th><th>observed</th></tr><tr><td>{}</td><td class=\"expected\">{}</td><td class=\"observed\">{}</td></tr></table>",
                esc(&m.checked),
                esc(&m.expected),
                esc(&m.observed)
            );
        }
    }
    if !s.figures.is_empty() {
        let _ = writeln!(
            h,
            "<pre class=\"figures\">{}</pre>",
            esc(&s.figures.join("\n"))
        );
    }
    h.push_str("<h3>Timeline</h3>\n");
    timeline_svg(h, s);
    legend(h);
    steps_table(h, s);
    if let Some(e) = &s.evidence {
        let _ = writeln!(
            h,
            "<h3>Evidence</h3>\n<p>folder <a href=\"{}\"><code>{}</code></a></p>\n<ul class=\"evidence\">",
            esc(&href(e)),
            esc(e)
        );
        for f in &s.evidence_files {
            let _ = writeln!(h, "<li><a href=\"{}\">{}</a></li>", esc(&href(f)), esc(f));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

/// The key to the colours. It uses inline colours, not the timeline's classes, so a class found
/// in the page is one the timeline drew.
fn legend(h: &mut String) {
    h.push_str("<p class=\"legend\">");
    for (colour, what) in [
        ("#c00", "kill / power cut"),
        ("#888", "pause"),
        ("#f80", "OFD mode"),
        ("#06c", "KKT fault"),
        ("#6c6", "breaker closed"),
        ("#d33", "breaker open"),
        ("#fc3", "breaker half-open"),
        ("#2a2", "receipt once"),
        ("#d00", "lost"),
        ("#90c", "duplicated"),
        ("#e90", "indeterminate"),
    ] {
        let _ = write!(
            h,
            "<span><span class=\"sw\" style=\"background:{colour}\"></span>{what}</span>"
        );
    }
    h.push_str("</p>\n");
}

/// Plot geometry: the x scale and the vertical lanes.
struct Geo {
    left: f64,
    width: f64,
    end_ms: f64,
}

impl Geo {
    fn x(&self, t_ms: u64) -> f64 {
        self.left + self.width * (t_ms as f64 / self.end_ms).min(1.0)
    }
}

const SVG_WIDTH: f64 = 1000.0;
const PLOT_TOP: f64 = 10.0;
const PLOT_HEIGHT: f64 = 140.0;
const LANE: f64 = 12.0;

fn timeline_svg(h: &mut String, s: &ScenarioData) {
    let g = Geo {
        left: 60.0,
        width: SVG_WIDTH - 70.0,
        end_ms: s.end_ms.max(1) as f64,
    };
    let mut adapters: Vec<&str> = s
        .samples
        .iter()
        .filter(|x| x.kind == TargetKind::Adapter)
        .map(|x| x.process.as_str())
        .collect();
    adapters.dedup();
    adapters.sort_unstable();
    adapters.dedup();
    let bands_top = PLOT_TOP + PLOT_HEIGHT + 6.0;
    let ticks_top = bands_top + LANE * adapters.len() as f64 + 4.0;
    let axis_y = ticks_top + LANE + 4.0;
    let height = axis_y + 16.0;
    let _ = writeln!(
        h,
        "<svg class=\"timeline\" width=\"{SVG_WIDTH}\" height=\"{height}\" viewBox=\"0 0 {SVG_WIDTH} {height}\">"
    );
    for w in &s.fault_windows {
        let (x0, x1) = (g.x(w.from_ms), g.x(w.to_ms));
        let _ = writeln!(
            h,
            "<rect class=\"fault {}\" x=\"{x0:.1}\" y=\"{PLOT_TOP}\" width=\"{:.1}\" height=\"{:.1}\"><title>{} ({}..{} ms)</title></rect>",
            esc(&w.kind),
            (x1 - x0).max(2.0),
            axis_y - PLOT_TOP,
            esc(&w.label),
            w.from_ms,
            w.to_ms
        );
    }
    backlog(h, s, &g, &adapters);
    for (i, a) in adapters.iter().enumerate() {
        let y = bands_top + LANE * i as f64;
        let _ = writeln!(
            h,
            "<text x=\"2\" y=\"{:.1}\">{}</text>",
            y + LANE - 3.0,
            esc(&clip(a, 10))
        );
        for b in s.breaker_bands.iter().filter(|b| b.process == *a) {
            let class = format!("breaker-{}", b.state.to_lowercase().replace('_', "-"));
            let (x0, x1) = (g.x(b.from_ms), g.x(b.to_ms));
            let _ = writeln!(
                h,
                "<rect class=\"band {}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{} breaker {} ({}..{} ms)</title></rect>",
                esc(&class),
                (x1 - x0).max(1.0),
                LANE - 2.0,
                esc(a),
                esc(&b.state),
                b.from_ms,
                b.to_ms
            );
        }
    }
    let _ = writeln!(
        h,
        "<text x=\"2\" y=\"{:.1}\">receipts</text>",
        ticks_top + LANE - 3.0
    );
    for t in &s.ticks {
        let x = g.x(t.t_ms);
        let _ = writeln!(
            h,
            "<line class=\"tick {}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{ticks_top:.1}\" y2=\"{:.1}\"><title>{} {} {} at {} ms</title></line>",
            t.fate.name(),
            ticks_top + LANE,
            esc(&t.list),
            esc(t.id.as_deref().unwrap_or("(id unknown)")),
            t.fate.name(),
            t.t_ms
        );
    }
    for r in s
        .steps
        .iter()
        .filter(|r| r.outcome == Some(StepOutcome::Fail))
    {
        let x = g.x(r.to_ms.unwrap_or(r.from_ms));
        let _ = writeln!(
            h,
            "<line class=\"marker fail\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{PLOT_TOP}\" y2=\"{axis_y:.1}\"><title>step {} failed: {}</title></line>",
            esc(&r.step),
            esc(&clip(&r.detail, 300))
        );
    }
    axis(h, &g, axis_y);
    h.push_str("</svg>\n");
}

/// The backlog polylines: one per run of consecutive answered samples of each adapter.
fn backlog(h: &mut String, s: &ScenarioData, g: &Geo, adapters: &[&str]) {
    let max = s
        .samples
        .iter()
        .filter_map(|x| x.values.as_ref().and_then(|v| v.backlog))
        .max()
        .unwrap_or(0)
        .max(1);
    let y = |v: u64| PLOT_TOP + PLOT_HEIGHT - PLOT_HEIGHT * v as f64 / max as f64;
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{0}\" x2=\"{0}\" y1=\"{PLOT_TOP}\" y2=\"{1}\"/><text x=\"2\" y=\"{2}\">backlog {max}</text><text x=\"2\" y=\"{1}\">0</text>",
        g.left,
        PLOT_TOP + PLOT_HEIGHT,
        PLOT_TOP + 8.0
    );
    for (i, a) in adapters.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut runs: Vec<Vec<(u64, u64)>> = vec![Vec::new()];
        for x in s.samples.iter().filter(|x| x.process == *a) {
            match x.values.as_ref().and_then(|v| v.backlog) {
                Some(v) => {
                    if let Some(r) = runs.last_mut() {
                        r.push((x.t_ms, v));
                    }
                }
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            // A step line: a reading holds until the next one.
            let mut points: Vec<String> = Vec::new();
            let mut held: Option<u64> = None;
            for (t, v) in run {
                if let Some(before) = held.filter(|b| b != v) {
                    points.push(format!("{:.1},{:.1}", g.x(*t), y(before)));
                }
                points.push(format!("{:.1},{:.1}", g.x(*t), y(*v)));
                held = Some(*v);
            }
            if points.len() == 1 {
                points.push(points[0].clone());
            }
            let _ = writeln!(
                h,
                "<polyline class=\"series backlog\" data-process=\"{}\" style=\"stroke:{colour}\" points=\"{}\"><title>{} backlog</title></polyline>",
                esc(a),
                points.join(" "),
                esc(a)
            );
        }
    }
}

fn axis(h: &mut String, g: &Geo, y: f64) {
    let _ = writeln!(
        h,
        "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>",
        g.left,
        g.left + g.width
    );
    let end_s = g.end_ms / 1000.0;
    let step_s = [
        0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    ]
    .into_iter()
    .find(|st| end_s / st <= 12.0)
    .unwrap_or(3600.0);
    let mut t = 0.0;
    while t <= end_s + 1e-9 {
        let x = g.left + g.width * (t / end_s).min(1.0);
        let _ = writeln!(
            h,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t}s</text>",
            y + 12.0
        );
        t += step_s;
    }
}

fn steps_table(h: &mut String, s: &ScenarioData) {
    if s.steps.is_empty() {
        return;
    }
    h.push_str("<h3>Steps</h3>\n<table class=\"steps\">\n<tr><th>step</th><th>kind</th><th>what</th><th>at</th><th>outcome</th><th>observed</th></tr>\n");
    let mut ok_shown = 0usize;
    let mut hidden = 0usize;
    for r in &s.steps {
        let ok = r.outcome == Some(StepOutcome::Ok);
        if ok {
            ok_shown += 1;
            if ok_shown > ROWS_SHOWN_MAX {
                hidden += 1;
                continue;
            }
        }
        let outcome = match r.outcome {
            Some(StepOutcome::Ok) => "ok",
            Some(StepOutcome::Fail) => "fail",
            Some(StepOutcome::Indeterminate) => "indeterminate",
            None => "unfinished",
        };
        let at = match r.to_ms {
            Some(to) => format!("{}..{} ms", r.from_ms, to),
            None => format!("{} ms..", r.from_ms),
        };
        let _ = writeln!(
            h,
            "<tr class=\"{outcome}\"><td>{}</td><td>{}</td><td>{}</td><td>{at}</td><td>{outcome}</td><td>{}</td></tr>",
            esc(&r.step),
            esc(&r.kind),
            esc(&clip(&r.title, 200)),
            esc(&clip(&r.detail, 2000))
        );
    }
    h.push_str("</table>\n");
    if hidden > 0 || s.steps_truncated {
        let _ = writeln!(
            h,
            "<p>{hidden} more steps that ended ok are not shown{}; see history.jsonl.</p>",
            if s.steps_truncated {
                " (report.json is cut too)"
            } else {
                ""
            }
        );
    }
}

/// At most `n` characters of `s`, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_links_are_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(href("../out/a b#1?.log"), "../out/a%20b%231%3F.log");
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("привет", 3), "при…");
        assert_eq!(clip("abc", 3), "abc");
    }
}

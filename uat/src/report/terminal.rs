//! The terminal reporter: a line when a scenario starts (`[3/47] running NAME`), a notice while one
//! runs past the slow threshold, its result when it ends (with the folder and the replay command on
//! a failure), and the closing line `N passed, N failed` that decides the exit code.

use std::time::Duration;

use super::Outcome;
use crate::exit::{EXIT_FAILED, EXIT_INFRA, EXIT_OK};
use crate::run::{Report, Verdict};

/// `[n/total] running NAME`, as a scenario starts.
pub fn started(n: usize, total: usize, name: &str) {
    println!("[{n}/{total}] running {name}");
}

/// A scenario still running past the slow threshold (printed once per threshold crossed).
pub fn slow(name: &str, running: Duration) {
    println!("SLOW  {name} has been running for {}s", running.as_secs());
}

/// A failed attempt that will be run again (`--retries`).
pub fn retrying(r: &Report, attempt: u32, of: u32) {
    println!(
        "RETRY {} failed attempt {attempt} of {of}; running it again",
        r.name
    );
    print_lines(r);
}

/// The result of a scenario, as it ends.
pub fn finished(o: &Outcome) {
    let r = &o.last;
    let secs = r.elapsed.as_secs_f64();
    let seed = r.seed.map(|s| format!(", seed {s}")).unwrap_or_default();
    match &r.verdict {
        Verdict::Passed if o.flaky() => println!(
            "FLAKY {} ({secs:.1}s{seed}), passed on attempt {}",
            r.name,
            o.failed_before.len() + 1
        ),
        Verdict::Passed => println!("ok    {} ({secs:.1}s{seed})", r.name),
        Verdict::ExpectedFailure(m) => {
            println!("ok    {} ({secs:.1}s{seed}), expected failure:", r.name);
            for line in m.lines() {
                println!("      {line}");
            }
        }
        Verdict::Failed(_) | Verdict::Infra(_) => {
            let what = if matches!(r.verdict, Verdict::Failed(_)) {
                "FAIL "
            } else {
                "ERROR"
            };
            println!("{what} {} ({secs:.1}s{seed})", r.name);
            print_lines(r);
            if r.seed.is_some() {
                println!("      replay: {}", o.replay());
            }
        }
    }
    figures(r);
}

/// The failure text and the kept folder of an attempt.
fn print_lines(r: &Report) {
    if let Verdict::Failed(m) | Verdict::Infra(m) = &r.verdict {
        for line in m.lines() {
            println!("      {line}");
        }
    }
    if let Some(d) = &r.kept_dir {
        println!("      folder: {}", d.display());
    }
}

fn figures(r: &Report) {
    let told = match &r.verdict {
        Verdict::Passed => "",
        Verdict::Failed(m) | Verdict::Infra(m) | Verdict::ExpectedFailure(m) => m.as_str(),
    };
    // A failing check already printed its figure line in the message.
    for f in r.figures.iter().filter(|f| !told.contains(f.as_str())) {
        println!("      {f}");
    }
}

/// Prints the closing line and returns the exit code.
pub fn summarize(outcomes: &[Outcome], skipped: usize) -> u8 {
    let flaky = outcomes.iter().filter(|o| o.flaky()).count();
    let passed = outcomes
        .iter()
        .filter(|o| o.last.verdict == Verdict::Passed && !o.flaky())
        .count();
    let xfail = outcomes
        .iter()
        .filter(|o| matches!(o.last.verdict, Verdict::ExpectedFailure(_)))
        .count();
    let failed = outcomes.len() - passed - xfail - flaky;
    let mut line = format!("{passed} passed, {failed} failed");
    if flaky > 0 {
        line.push_str(&format!(", {flaky} flaky"));
    }
    if xfail > 0 {
        line.push_str(&format!(", {xfail} expected failures"));
    }
    if skipped > 0 {
        line.push_str(&format!(", {skipped} skipped"));
    }
    println!("{line}");
    if outcomes
        .iter()
        .any(|o| matches!(o.last.verdict, Verdict::Infra(_)))
    {
        EXIT_INFRA
    } else if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

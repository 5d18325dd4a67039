//! The command line: `uat run`, `uat check` and `uat up`, progress lines, the closing summary, JUnit and exit codes.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

use crate::load::{self, Scenario};
use crate::paths;
use crate::run::{self, Report, RunOptions, Verdict};
use crate::select;

/// Every selected scenario passed.
pub const EXIT_OK: u8 = 0;
/// At least one scenario failed.
pub const EXIT_FAILED: u8 = 1;
/// A scenario file (or the command line) is invalid.
pub const EXIT_BAD_INPUT: u8 = 2;
/// The runner could not do its job: directories, ports, leftover processes, report files.
pub const EXIT_INFRA: u8 = 3;
/// `uat run` selected no scenario (a `--tag` no scenario carries, a directory without scenario
/// files, only `nightly` scenarios in a directory): nothing ran, so nothing can have passed.
pub const EXIT_NOTHING_SELECTED: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "uat",
    about = "Runs acceptance scenarios against the built binaries",
    after_help = "Exit codes: 0 every selected scenario passed, 1 a scenario failed, 2 invalid \
                  scenario file or command line, 3 infrastructure error, 4 `uat run` selected no \
                  scenario."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run scenarios (files or directories; default `scenarios`). Exits 4 when the selection
    /// matches no scenario.
    Run(RunArgs),
    /// Validate scenario files without running them.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Start a scenario's processes (default: kkt-emulator, ofd-mock and adapter), print their
    /// URLs and keep them running until Ctrl-C.
    Up(UpArgs),
}

/// Arguments of `uat up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// A scenario file whose processes to start; without it, the default stack.
    pub scenario: Option<PathBuf>,
    /// Directory of the built binaries for `{{bin.NAME}}` (default: this executable's cargo profile dir).
    #[arg(long, env = "UAT_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Parent of the process folder (default: a fresh folder under the system temp directory).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Keep the folder (logs, databases) after Ctrl-C.
    #[arg(long)]
    pub keep: bool,
}

/// Arguments of `uat run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario files or directories searched for `*.toml`. A directory search leaves out
    /// scenarios tagged `nightly` unless `--tag nightly` is given; a file named here always counts.
    pub paths: Vec<PathBuf>,
    /// Run only scenarios with this tag (repeatable: any of them). A selection that matches no
    /// scenario exits 4, naming the tags that exist.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Scenarios run in parallel.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Seed for random choices (printed; replay a failed run with it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Keep every scenario folder, not only failed ones.
    #[arg(long)]
    pub keep: bool,
    /// Directory of the built binaries for `{{bin.NAME}}` (default: this executable's cargo profile dir).
    #[arg(long, env = "UAT_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Root of the run folders (default: `<target>/uat`).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// Parses the command line and runs; returns the process exit code.
pub fn main_entry() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_OK
            };
        }
    };
    match cli.cmd {
        Cmd::Check { files } => check_cmd(&files),
        Cmd::Run(args) => run_cmd(&args),
        Cmd::Up(args) => up_cmd(&args),
    }
}

fn up_cmd(args: &UpArgs) -> u8 {
    let sc = match &args.scenario {
        Some(path) => match load::load_file(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return EXIT_BAD_INPUT;
            }
        },
        None => match run::up::default_stack() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("uat up: the default stack is invalid: {e}");
                return EXIT_INFRA;
            }
        },
    };
    let Some(bin_dir) = args.bin_dir.clone().or_else(paths::bin_dir) else {
        eprintln!("uat: cannot find the cargo target directory; pass --bin-dir");
        return EXIT_INFRA;
    };
    let run_dir = match &args.out_dir {
        Some(d) => d.join(run_id()),
        None => std::env::temp_dir().join(format!("uat-up-{}", run_id())),
    };
    let stop = match crate::procs::signal_channel() {
        Ok(rx) => rx,
        Err(m) => {
            eprintln!("uat up: {m}");
            return EXIT_INFRA;
        }
    };
    let opts = RunOptions {
        run_dir: run_dir.clone(),
        bin_dir,
        keep: args.keep,
        seed: None,
    };
    let code = run::up::up(&sc, &opts, &stop);
    // Empty unless kept.
    let _ = std::fs::remove_dir(&run_dir);
    code
}

/// Loads every scenario file under `paths`; prints each error. None when any file is invalid.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, u8> {
    let files = paths::scenario_files(paths).map_err(|e| {
        eprintln!("uat: {e}");
        EXIT_BAD_INPUT
    })?;
    let mut out = Vec::new();
    let mut bad = false;
    for f in files {
        match load::load_file(&f) {
            Ok(s) => out.push(s),
            Err(e) => {
                eprintln!("{e}");
                bad = true;
            }
        }
    }
    let mut names: Vec<&str> = out.iter().map(Scenario::name).collect();
    names.sort_unstable();
    for w in names.windows(2) {
        if w[0] == w[1] {
            eprintln!("uat: two scenarios are named `{}`", w[0]);
            bad = true;
        }
    }
    if bad { Err(EXIT_BAD_INPUT) } else { Ok(out) }
}

fn check_cmd(files: &[PathBuf]) -> u8 {
    match load_all(files) {
        Ok(s) => {
            println!("{} scenario files valid", s.len());
            EXIT_OK
        }
        Err(code) => code,
    }
}

fn run_cmd(args: &RunArgs) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        args.paths.clone()
    };
    let scenarios = match load_all(&paths) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let unknown: Vec<String> = select::unknown_tags(&scenarios, &args.tags)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let named: Vec<PathBuf> = paths.iter().filter(|p| !p.is_dir()).cloned().collect();
    let sel = select::select(scenarios, &named, &args.tags);
    if sel.selected.is_empty() {
        eprintln!("{}", select::nothing_selected(&paths, &args.tags, &sel));
        return EXIT_NOTHING_SELECTED;
    }
    // A typo beside a valid tag still selects something; say so rather than fail the run.
    for t in &unknown {
        eprintln!("uat: warning: no scenario carries --tag {t}");
    }
    let (selected, skipped) = (sel.selected, sel.skipped);
    let out_root = args
        .out_dir
        .clone()
        .or_else(|| paths::target_dir().map(|t| t.join("uat")))
        .unwrap_or_else(|| PathBuf::from("target/uat"));
    let Some(bin_dir) = args.bin_dir.clone().or_else(paths::bin_dir) else {
        eprintln!("uat: cannot find the cargo target directory; pass --bin-dir");
        return EXIT_INFRA;
    };
    let opts = RunOptions {
        run_dir: out_root.join(run_id()),
        bin_dir,
        keep: args.keep,
        seed: args.seed,
    };
    let seed = match args.seed {
        Some(s) => format!("seed {s}"),
        None => "seeds per scenario".to_owned(),
    };
    println!(
        "uat: {} scenarios, {seed}, run folder {}",
        selected.len(),
        opts.run_dir.display()
    );
    crate::procs::install_interrupt_handler(i32::from(EXIT_INFRA));
    let reports = run_parallel(&selected, &opts, args.jobs.max(1));
    let mut code = summarize(&reports, skipped.len());
    if let Some(path) = &args.junit
        && let Err(e) = write_junit(path, &reports, &skipped)
    {
        eprintln!("uat: cannot write {}: {e}", path.display());
        code = code.max(EXIT_INFRA);
    }
    // The run folder is empty when every scenario passed and was cleaned up.
    let _ = std::fs::remove_dir(&opts.run_dir);
    code
}

/// A run id that sorts by time: `<unix seconds>-<pid>`.
pub fn run_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}-{}", std::process::id())
}

/// Runs scenarios on up to `jobs` threads, printing one progress line per scenario as it ends.
pub fn run_parallel(scenarios: &[Scenario], opts: &RunOptions, jobs: usize) -> Vec<Report> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Report)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(scenarios.len()) {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    let Some(sc) = scenarios.get(n) else { break };
                    let r = run::run_scenario(sc, opts);
                    print_progress(&r);
                    done.lock().unwrap_or_else(|p| p.into_inner()).push((n, r));
                }
            });
        }
    });
    let mut v = done.into_inner().unwrap_or_else(|p| p.into_inner());
    v.sort_by_key(|(n, _)| *n);
    v.into_iter().map(|(_, r)| r).collect()
}

fn print_progress(r: &Report) {
    let secs = r.elapsed.as_secs_f64();
    let seed = r.seed.map(|s| format!(", seed {s}")).unwrap_or_default();
    match &r.verdict {
        Verdict::Passed => println!("ok    {} ({secs:.1}s{seed})", r.name),
        Verdict::ExpectedFailure(m) => {
            println!("ok    {} ({secs:.1}s{seed}), expected failure:", r.name);
            for line in m.lines() {
                println!("      {line}");
            }
        }
        Verdict::Failed(m) | Verdict::Infra(m) => {
            let what = if matches!(r.verdict, Verdict::Failed(_)) {
                "FAIL "
            } else {
                "ERROR"
            };
            let mut text = format!("{what} {} ({secs:.1}s{seed})\n", r.name);
            for line in m.lines() {
                text.push_str(&format!("      {line}\n"));
            }
            if let Some(d) = &r.kept_dir {
                text.push_str(&format!("      folder: {}\n", d.display()));
            }
            if let Some(s) = r.seed {
                text.push_str(&format!(
                    "      replay: uat run {} --seed {s}\n",
                    r.path.display()
                ));
            }
            print!("{text}");
        }
    }
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
pub fn summarize(reports: &[Report], skipped: usize) -> u8 {
    let passed = reports
        .iter()
        .filter(|r| r.verdict == Verdict::Passed)
        .count();
    let xfail = reports
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::ExpectedFailure(_)))
        .count();
    let failed = reports.len() - passed - xfail;
    let mut line = format!("{passed} passed, {failed} failed");
    if xfail > 0 {
        line.push_str(&format!(", {xfail} expected failures"));
    }
    if skipped > 0 {
        line.push_str(&format!(", {skipped} skipped"));
    }
    println!("{line}");
    if reports
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Infra(_)))
    {
        EXIT_INFRA
    } else if failed > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Writes one JUnit testcase per scenario.
pub fn write_junit(
    path: &std::path::Path,
    reports: &[Report],
    skipped: &[Scenario],
) -> std::io::Result<()> {
    use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new("uat");
    for r in reports {
        let status = match &r.verdict {
            Verdict::Passed | Verdict::ExpectedFailure(_) => TestCaseStatus::success(),
            Verdict::Failed(m) | Verdict::Infra(m) => {
                let kind = if matches!(r.verdict, Verdict::Failed(_)) {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut st = TestCaseStatus::non_success(kind);
                st.set_message(m.lines().next().unwrap_or_default());
                st.set_description(m.as_str());
                st
            }
        };
        let mut tc = TestCase::new(r.name.as_str(), status);
        if let Verdict::ExpectedFailure(m) = &r.verdict {
            tc.set_system_out(format!("expected failure: {m}"));
        }
        tc.set_classname(r.path.display().to_string());
        tc.set_time(r.elapsed);
        suite.add_test_case(tc);
    }
    for s in skipped {
        let mut tc = TestCase::new(s.name(), TestCaseStatus::skipped());
        tc.set_classname(s.path.display().to_string());
        suite.add_test_case(tc);
    }
    let mut report = JReport::new("uat");
    report.add_test_suite(suite);
    let text = report.to_string().map_err(std::io::Error::other)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}

//! What each command does: `uat run` (select, partition, run with retries and live progress,
//! report), `uat check` and `uat up`. `cli.rs` parses; the reporters are in `report/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::{Cmd, Partition, RunArgs, UpArgs};
use crate::exit::{EXIT_BAD_INPUT, EXIT_INFRA, EXIT_NOTHING_SELECTED, EXIT_OK};
use crate::load::{self, Scenario};
use crate::paths;
use crate::report::junit::NotRun;
use crate::report::{self, Outcome, terminal};
use crate::run::{self, RunOptions, Verdict};
use crate::select;

/// Runs a parsed command; returns the process exit code.
pub fn dispatch(cmd: Cmd) -> u8 {
    match cmd {
        Cmd::Check { files } => check_cmd(&files),
        Cmd::Run(args) => run_cmd(&args),
        Cmd::Up(args) => up_cmd(&args),
    }
}

/// How often the slow-scenario watch looks at the running scenarios.
const WATCH_TICK: Duration = Duration::from_millis(250);

pub(crate) fn up_cmd(args: &UpArgs) -> u8 {
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
        sample: false,
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

pub(crate) fn check_cmd(files: &[PathBuf]) -> u8 {
    match load_all(files) {
        Ok(s) => {
            println!("{} scenario files valid", s.len());
            EXIT_OK
        }
        Err(code) => code,
    }
}

/// What `uat run` does after parsing.
pub(crate) fn run_cmd(args: &RunArgs) -> u8 {
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
    let (mut selected, skipped) = (sel.selected, sel.skipped);
    if let Some(p) = args.partition {
        let all = selected.len();
        selected = partition(selected, p);
        println!(
            "uat: partition {}/{}: {} of {all} scenarios",
            p.shard,
            p.total,
            selected.len()
        );
        if selected.is_empty() {
            eprintln!(
                "uat: partition {}/{} of {all} scenarios is empty; nothing ran",
                p.shard, p.total
            );
            return EXIT_NOTHING_SELECTED;
        }
    }
    if args.list {
        for s in &selected {
            let tags = s.file.scenario.tags.join(", ");
            println!("{}  [{tags}]  {}", s.name(), s.path.display());
        }
        println!("{} scenarios", selected.len());
        return EXIT_OK;
    }
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
        sample: args.report_html.is_some(),
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
    let finished: Arc<Mutex<Vec<(usize, Outcome)>>> = Arc::new(Mutex::new(Vec::new()));
    if args.junit.is_some() || args.report_html.is_some() {
        // An interrupted run still leaves the JUnit file and the HTML report of what finished.
        let (junit, html) = (args.junit.clone(), args.report_html.clone());
        let done = Arc::clone(&finished);
        let skipped: Vec<NotRun> = skipped.iter().map(report::junit::not_run).collect();
        crate::procs::on_interrupt(Box::new(move || {
            let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
            done.sort_by_key(|(n, _)| *n);
            let outcomes = || done.iter().map(|(_, o)| o);
            if let Some(path) = &junit
                && let Err(e) = report::junit::write(path, outcomes(), &skipped)
            {
                eprintln!("uat: cannot write {}: {e}", path.display());
            }
            if let Some(dir) = &html
                && let Err(e) = report::html::write(dir, outcomes(), &skipped, true)
            {
                eprintln!("uat: cannot write the report in {}: {e}", dir.display());
            }
        }));
    }
    crate::procs::install_interrupt_handler(i32::from(EXIT_INFRA));
    let plan = Plan {
        jobs: args.jobs.max(1),
        retries: args.retries,
        fail_fast: args.fail_fast,
        slow_after: Duration::from_secs(args.slow_after_s.max(1)),
    };
    let not_run = run_planned(&selected, &opts, &plan, &finished);
    let outcomes: Vec<Outcome> = {
        let mut v = std::mem::take(&mut *finished.lock().unwrap_or_else(|p| p.into_inner()));
        v.sort_by_key(|(n, _)| *n);
        v.into_iter().map(|(_, o)| o).collect()
    };
    let mut skipped: Vec<NotRun> = skipped.iter().map(report::junit::not_run).collect();
    if !not_run.is_empty() {
        println!(
            "uat: --fail-fast: {} scenarios not run after the first failure",
            not_run.len()
        );
        skipped.extend(not_run);
    }
    let mut code = terminal::summarize(&outcomes, skipped.len());
    if let Some(path) = &args.junit
        && let Err(e) = report::junit::write(path, &outcomes, &skipped)
    {
        eprintln!("uat: cannot write {}: {e}", path.display());
        code = code.max(EXIT_INFRA);
    }
    if let Some(dir) = &args.report_html
        && let Err(e) = report::html::write(dir, &outcomes, &skipped, false)
    {
        eprintln!("uat: cannot write the report in {}: {e}", dir.display());
        code = code.max(EXIT_INFRA);
    }
    // The run folder is empty when every scenario passed and was cleaned up.
    let _ = std::fs::remove_dir(&opts.run_dir);
    code
}

/// The scenarios of shard `p.shard` of `p.total`: sorted by name, every `total`-th from the
/// shard's own (nextest's count partitioning), so each scenario lands in exactly one shard and
/// the split depends only on the names.
pub fn partition(mut scenarios: Vec<Scenario>, p: Partition) -> Vec<Scenario> {
    scenarios.sort_by(|a, b| a.name().cmp(b.name()));
    scenarios
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % p.total == p.shard - 1)
        .map(|(_, s)| s)
        .collect()
}

/// A run id that sorts by time: `<unix seconds>-<pid>`.
pub fn run_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}-{}", std::process::id())
}

/// How `uat run` runs its selection.
pub struct Plan {
    /// Scenarios run in parallel.
    pub jobs: usize,
    /// Attempts after a failed one.
    pub retries: u32,
    /// Start no scenario after one failed (for good, retries spent).
    pub fail_fast: bool,
    /// A notice for each multiple of this a scenario runs.
    pub slow_after: Duration,
}

/// Runs `scenarios` on up to `plan.jobs` threads, with the live progress, the slow notices and the
/// retries; each outcome goes into `finished` (with its index) as it ends. Returns the scenarios
/// `--fail-fast` left unrun.
pub fn run_planned(
    scenarios: &[Scenario],
    opts: &RunOptions,
    plan: &Plan,
    finished: &Mutex<Vec<(usize, Outcome)>>,
) -> Vec<NotRun> {
    let next = AtomicUsize::new(0);
    let started = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let all_done = AtomicBool::new(false);
    let running: Mutex<BTreeMap<usize, (String, Instant)>> = Mutex::new(BTreeMap::new());
    let total = scenarios.len();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..plan.jobs.min(total))
            .map(|_| {
                s.spawn(|| {
                    loop {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        let Some(sc) = scenarios.get(n) else { break };
                        let k = started.fetch_add(1, Ordering::SeqCst) + 1;
                        terminal::started(k, total, sc.name());
                        lock(&running).insert(n, (sc.name().to_owned(), Instant::now()));
                        let o = attempts(sc, opts, plan.retries);
                        lock(&running).remove(&n);
                        terminal::finished(&o);
                        if plan.fail_fast && !o.passed() {
                            stop.store(true, Ordering::SeqCst);
                        }
                        lock(finished).push((n, o));
                    }
                })
            })
            .collect();
        // The slow watch: one notice per scenario each time it runs past another multiple.
        s.spawn(|| {
            let mut told: BTreeMap<usize, u32> = BTreeMap::new();
            while !all_done.load(Ordering::SeqCst) {
                std::thread::sleep(WATCH_TICK);
                for (n, (name, since)) in lock(&running).iter() {
                    let ran = since.elapsed();
                    let multiple = (ran.as_millis() / plan.slow_after.as_millis().max(1)) as u32;
                    let seen = told.entry(*n).or_default();
                    if multiple > *seen {
                        *seen = multiple;
                        terminal::slow(name, ran);
                    }
                }
            }
        });
        for w in workers {
            let _ = w.join();
        }
        all_done.store(true, Ordering::SeqCst);
    });
    let ended: Vec<usize> = lock(finished).iter().map(|(n, _)| *n).collect();
    scenarios
        .iter()
        .enumerate()
        .filter(|(n, _)| !ended.contains(n))
        .map(|(_, s)| report::junit::not_run(s))
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs one scenario up to `1 + retries` times, until it passes.
fn attempts(sc: &Scenario, opts: &RunOptions, retries: u32) -> Outcome {
    let mut failed_before = Vec::new();
    loop {
        let r = run::run_scenario(sc, opts);
        let passed = matches!(r.verdict, Verdict::Passed | Verdict::ExpectedFailure(_));
        let used = u32::try_from(failed_before.len()).unwrap_or(u32::MAX);
        if passed || used >= retries {
            return Outcome {
                last: r,
                failed_before,
            };
        }
        terminal::retrying(&r, used + 1, retries + 1);
        failed_before.push(r);
    }
}

//! The scenario runner's figures (issue #16 items 6 and 7): wall time of `uat run` over the UAT-08 and
//! UAT-10c suites and over the whole CI scenario set, and the runner's own peak RSS during the set,
//! each against the target (60 s and 10 minutes on 2 cores).
//!
//! `uat` runs as a black box, the built binary beside `ci`, from the workspace root with its run
//! folders in the bench's scratch directory. A run that fails a scenario fails the figure: a wall
//! time of a failing run says nothing about the runner.
//!
//! Boundary: the peak RSS is the runner process's alone. Its children (the emulators, adapters and
//! mocks of each scenario) are left out: the runner reports their pids only in its run report, after
//! they are gone, so their peaks cannot be read while they run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Plan;
use super::figure::{Figure, Samples};
use super::procs::{self, Bins};

/// The target for the UAT-08 and UAT-10c suites.
const SUITES_TARGET_S: f64 = 60.0;
/// The target for the whole CI scenario set on 2 cores.
const CI_SET_TARGET_S: f64 = 600.0;
/// Scenarios `uat` runs at once, as on the 2-core CI machine.
const JOBS: &str = "2";
/// A `uat run` still going after this long is stopped and fails the figure.
const RUN_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How often the runner's VmHWM is read while it runs.
const PEAK_POLL: Duration = Duration::from_millis(20);
/// How long `uat` may take to stop its scenarios' processes after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(15);

/// What `uat run` is given for each figure: full selection, smoke selection.
struct Selection {
    figure: &'static str,
    target_figure: &'static str,
    target_s: f64,
    full: &'static [&'static str],
    smoke: &'static [&'static str],
}

const SUITES: Selection = Selection {
    figure: "runner.uat08_uat10c_s",
    target_figure: "runner.uat08_uat10c_target_s",
    target_s: SUITES_TARGET_S,
    full: &["scenarios", "--tag", "uat-08", "--tag", "uat-10c"],
    smoke: &["scenarios/uat-08/smoke.toml"],
};

const CI_SET: Selection = Selection {
    figure: "runner.ci_set_s",
    target_figure: "runner.ci_set_target_s",
    target_s: CI_SET_TARGET_S,
    full: &["scenarios", "--tag", "ci"],
    smoke: &["scenarios/uat-08/short-outage.toml"],
};

/// Measures the runner figures `wanted` selects, [`super::REPS`] times each.
pub fn all(
    plan: &Plan,
    wanted: &dyn Fn(&str) -> bool,
    out: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let suites = wanted("runner.uat08");
    let ci_set = wanted("runner.ci_set") || wanted("memory.runner");
    if !suites && !ci_set {
        return Ok(());
    }
    let uat = uat_beside_ci()?;
    let mut samples = Samples::default();
    for rep in 0..super::REPS {
        if suites {
            let run = run_uat(&uat, plan, &SUITES, rep)?;
            samples.push(SUITES.figure, "s", run.wall_s);
            samples.push(SUITES.target_figure, "s", SUITES.target_s);
        }
        if ci_set {
            let run = run_uat(&uat, plan, &CI_SET, rep)?;
            samples.push(CI_SET.figure, "s", run.wall_s);
            samples.push(CI_SET.target_figure, "s", CI_SET.target_s);
            samples.push("memory.runner_peak_mib", "MiB", run.peak_mib);
        }
    }
    out.extend(samples.into_figures(NOTES));
    Ok(())
}

/// The `uat` binary beside `ci`, with everything it starts (`{{bin.NAME}}` and `powercut-fs`); built
/// first when one is missing.
fn uat_beside_ci() -> anyhow::Result<PathBuf> {
    Bins::beside_ci()?;
    let dir = procs::ci_dir()?;
    procs::build_missing(&dir, &["uat", "powercut-fs"], &["uat", "powercut-fs"])?;
    Ok(dir.join("uat"))
}

/// One `uat run`: its wall time and the runner's peak RSS.
struct UatRun {
    wall_s: f64,
    peak_mib: f64,
}

/// Runs `uat run` with the selection, from spawn to exit, reading its VmHWM every [`PEAK_POLL`].
fn run_uat(uat: &Path, plan: &Plan, sel: &Selection, rep: usize) -> anyhow::Result<UatRun> {
    let name = sel.figure.trim_start_matches("runner.");
    let dir = plan.dir.join(format!("{name}-{rep}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let log = dir.join("uat.log");
    let file = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
    let selection = if plan.smoke { sel.smoke } else { sel.full };
    let mut args: Vec<&str> = vec!["run"];
    args.extend(selection);
    args.extend(["--jobs", JOBS]);
    let out_dir = dir.join("runs");
    let started = Instant::now();
    let child = Command::new(uat)
        .args(&args)
        .arg("--out-dir")
        .arg(&out_dir)
        .current_dir(procs::workspace_root())
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("start {}", uat.display()))?;
    let mut guard = Uat(child);
    let pid = guard.0.id();
    let mut peak_kib = 0;
    let status = loop {
        if let Some(kib) = procs::vm_hwm_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = guard.0.try_wait()? {
            break status;
        }
        anyhow::ensure!(
            started.elapsed() < RUN_LIMIT,
            "uat {} still running after {RUN_LIMIT:?}; log in {}",
            args.join(" "),
            log.display()
        );
        std::thread::sleep(PEAK_POLL);
    };
    let wall_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        status.success(),
        "uat {} failed ({status}); its log {} ends: {}",
        args.join(" "),
        log.display(),
        procs::tail(&log)
    );
    eprintln!(
        "  {name} rep {}: uat {} took {wall_s:.1} s, peak RSS {:.1} MiB",
        rep + 1,
        args.join(" "),
        peak_kib as f64 / 1024.0
    );
    // A passed run's folders go at once; a failed run keeps them with the scratch directory.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(UatRun {
        wall_s,
        peak_mib: peak_kib as f64 / 1024.0,
    })
}

/// A running `uat`; dropping it while it runs sends SIGTERM, on which `uat` stops every process
/// group it started (and unmounts its power-cut disks), then SIGKILL after [`TERM_GRACE`].
struct Uat(Child);

impl Drop for Uat {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let end = Instant::now() + TERM_GRACE;
        while Instant::now() < end {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What each figure is, printed under its line.
const NOTES: &[(&str, &str)] = &[
    (
        "runner.uat08_uat10c_s",
        "wall time of `uat run scenarios --tag uat-08 --tag uat-10c --jobs 2` (the UAT-08 and UAT-10c suites, the power-cut one included), spawn to exit; smoke: scenarios/uat-08/smoke.toml alone",
    ),
    (
        "runner.uat08_uat10c_target_s",
        "the issue's target for the two suites: 60 s (a constant)",
    ),
    (
        "runner.ci_set_s",
        "wall time of `uat run scenarios --tag ci --jobs 2` (the whole CI scenario set), spawn to exit; smoke: scenarios/uat-08/short-outage.toml alone",
    ),
    (
        "runner.ci_set_target_s",
        "the issue's target for the CI set on 2 cores: 10 minutes (a constant)",
    ),
    (
        "memory.runner_peak_mib",
        "the uat process's VmHWM during runner.ci_set_s, read every 20 ms (growth in its last 20 ms is missed); its children are not counted, and the emulators' peak during the set is not measured: the runner reports their pids only after the run",
    ),
];

//! Runs every scenario tagged `ci` under `scenarios/` as one libtest-mimic trial each, building
//! the binaries they reference (`{{bin.NAME}}`) first.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use uat::{RunOptions, Scenario, Verdict};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Builds the named binaries in the profile this test runs in.
fn build_bins(names: &[String], bin_dir: &Path) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace().join("Cargo.toml"));
    if bin_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    for n in names {
        cmd.arg("--bin").arg(n);
    }
    let st = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cargo build of {names:?} failed: {st}"))
    }
}

fn main() {
    let args = Arguments::from_args();
    uat::procs::install_interrupt_handler(101);
    let scenarios = match uat::dispatch::load_all(&[workspace().join("scenarios")]) {
        Ok(s) => s,
        Err(_) => {
            let t = Trial::test("load scenarios", || {
                Err("a scenario file is invalid (see above)".into())
            });
            libtest_mimic::run(&args, vec![t]).exit();
        }
    };
    let ci: Vec<Arc<Scenario>> = scenarios
        .into_iter()
        .filter(|s| s.file.scenario.tags.iter().any(|t| t == "ci"))
        .map(Arc::new)
        .collect();
    let bin_dir = uat::paths::bin_dir().unwrap_or_else(|| workspace().join("target/debug"));
    let mut bins: Vec<String> = ci.iter().flat_map(|s| s.bins.iter().cloned()).collect();
    bins.sort();
    bins.dedup();
    // Build only when a trial will run, so `--list` stays cheap.
    let build = if args.list {
        Ok(())
    } else {
        build_bins(&bins, &bin_dir)
    };
    let target = uat::paths::target_dir().unwrap_or_else(|| workspace().join("target"));
    let opts = Arc::new(RunOptions {
        run_dir: target
            .join("uat")
            .join(format!("{}-cargo-test", uat::dispatch::run_id())),
        bin_dir,
        keep: false,
        // `UAT_SEED=S cargo test -p uat --test scenarios` replays a failed seeded scenario.
        seed: std::env::var("UAT_SEED").ok().and_then(|s| s.parse().ok()),
        sample: false,
    });
    let trials = ci
        .into_iter()
        .map(|sc| {
            let opts = Arc::clone(&opts);
            let build = build.clone();
            Trial::test(sc.name().to_owned(), move || -> Result<(), Failed> {
                build?;
                let r = uat::run_scenario(&sc, &opts);
                // The figure lines (power_loss, exactly_once, chaos) belong in the CI log.
                for f in &r.figures {
                    println!("    {}: {f}", r.name);
                }
                match r.verdict {
                    Verdict::Passed => Ok(()),
                    Verdict::ExpectedFailure(m) => {
                        println!("    {}: expected failure: {m}", r.name);
                        Ok(())
                    }
                    Verdict::Failed(m) | Verdict::Infra(m) => {
                        let folder = r
                            .kept_dir
                            .map(|d| d.display().to_string())
                            .unwrap_or_default();
                        let replay = r
                            .seed
                            .map(|s| format!("\nseed {s} (replay: UAT_SEED={s})"))
                            .unwrap_or_default();
                        Err(format!("{m}\nfolder: {folder}{replay}").into())
                    }
                }
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // Passing scenarios removed their folders; drop the run folder too when it is empty.
    let _ = std::fs::remove_dir(&opts.run_dir);
    conclusion.exit();
}

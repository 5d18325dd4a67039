//! Workspace automation (xtask style): tidy checks and self-checks called by `.ci/run`, and the
//! benchmarks (`ci bench`).

pub mod bench;
pub mod selfcheck;

/// Entry point of the `ci` binary: `ci selfcheck`, `ci bench [..]`.
pub fn main_entry() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("bench") => bench::run(&args[2..]),
        Some("selfcheck") => {
            let failed = selfcheck::run();
            anyhow::ensure!(failed == 0, "{failed} protocol vectors failed");
            Ok(())
        }
        other => anyhow::bail!(
            "usage: ci selfcheck | ci bench [--smoke] [--compare OLD.json] [--only PREFIX] (got {other:?})"
        ),
    }
}

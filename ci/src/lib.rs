//! Workspace automation (xtask style): tidy checks and self-checks called by `.ci/run`.

pub mod selfcheck;

/// Entry point of the `ci` binary: `ci selfcheck`.
pub fn main_entry() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("selfcheck") => {
            let failed = selfcheck::run();
            anyhow::ensure!(failed == 0, "{failed} protocol vectors failed");
            Ok(())
        }
        other => anyhow::bail!("usage: ci selfcheck (got {other:?})"),
    }
}

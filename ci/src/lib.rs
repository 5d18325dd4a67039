//! Workspace automation (xtask style): tidy checks and self-checks called by `.ci/run`.

/// Entry point of the `ci` binary.
pub fn main_entry() -> anyhow::Result<()> {
    anyhow::bail!("usage: ci <command>")
}

//! Workspace automation entry point (xtask style); see `ci/src/lib.rs`.

fn main() -> anyhow::Result<()> {
    ci::main_entry()
}

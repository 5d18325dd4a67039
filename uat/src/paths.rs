//! Finding the cargo target directory and the built binaries without linking them.

use std::path::{Path, PathBuf};

/// The cargo target directory: `CARGO_TARGET_DIR`, else the nearest ancestor of this executable
/// that holds cargo's `CACHEDIR.TAG`.
pub fn target_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(d);
        return Some(if d.is_absolute() {
            d
        } else {
            std::env::current_dir().ok()?.join(d)
        });
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .skip(1)
        .find(|a| a.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}

/// The profile directory holding the workspace binaries (`target/debug` when this executable
/// is `target/debug/uat` or `target/debug/deps/<test>`); `UAT_BIN_DIR` overrides it.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("UAT_BIN_DIR") {
        return Some(PathBuf::from(d));
    }
    let exe = std::env::current_exe().ok()?;
    let target = exe
        .ancestors()
        .skip(1)
        .find(|a| a.join("CACHEDIR.TAG").is_file())?
        .to_path_buf();
    exe.ancestors()
        .find(|a| a.parent() == Some(target.as_path()))
        .map(Path::to_path_buf)
}

/// Every `*.toml` file under the given paths (files are taken as they are), sorted, each file once
/// even when two paths reach it (`sub/a.toml` and `.`, which finds `./sub/a.toml`).
pub fn scenario_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out, 0)?;
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(same_file_key(p)));
    Ok(out)
}

/// A key equal for two spellings of one file: its canonical path, else the path as given (a
/// missing file is reported when it is loaded).
pub fn same_file_key(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Directory depth limit, so a symlink loop cannot recurse forever.
const DEPTH_MAX: usize = 16;

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> std::io::Result<()> {
    if depth > DEPTH_MAX {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out, depth + 1)?;
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
    Ok(())
}

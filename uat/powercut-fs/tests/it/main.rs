//! Integration tests: each mounts a real powercut filesystem in a temporary directory.

mod basics;
mod control;
mod faults;
mod sqlite;

use std::path::{Path, PathBuf};

use powercut_fs::{Mounted, Options};

/// A mount over a fresh backing directory. Fields drop in order: unmount, then delete.
pub struct Fixture {
    pub fs: Mounted,
    pub mnt: PathBuf,
    pub backing: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = dir.path().join("backing");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&backing).expect("mkdir backing");
    std::fs::create_dir(&mnt).expect("mkdir mnt");
    let fs = powercut_fs::mount(&backing, &mnt, Options::default()).expect("mount");
    Fixture {
        mnt: fs.mountpoint().to_path_buf(),
        fs,
        backing,
        _dir: dir,
    }
}

impl Fixture {
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    pub fn cut_and_remount(&mut self) {
        self.fs.cut(powercut_fs::CutMode::DropAll).expect("cut");
        self.fs.remount().expect("remount");
    }
}

/// Reads a file on the mount, `None` if it does not exist.
pub fn read(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(data) => Some(data),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

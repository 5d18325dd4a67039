//! powercut-fs, a TEST TOOL ONLY: a FUSE pass-through filesystem that keeps every write not
//! yet fsynced in a page cache of its own, so a test can cut the power and lose exactly what
//! a real outage would lose. Never put data you want to keep on it.
//!
//! The model: a volatile write cache above a disk that honours fsync. File data reaches the
//! backing directory only on fsync/fdatasync of that file; creates, renames and removals are
//! applied at once but undone at a cut unless every directory they touched was fsynced since.
//! See README.md for what it does and does not model.
//!
//! ```no_run
//! # fn main() -> Result<(), powercut_fs::Error> {
//! let mut fs = powercut_fs::mount("/tmp/backing", "/tmp/mnt", powercut_fs::Options::default())?;
//! std::fs::write("/tmp/mnt/a", b"never synced").ok();
//! fs.cut(powercut_fs::CutMode::DropAll)?;
//! fs.remount()?;
//! assert!(!std::path::Path::new("/tmp/mnt/a").exists());
//! fs.unmount()
//! # }
//! ```

pub mod control;
mod entries;
mod faults;
mod fs;
mod pages;
mod state;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fuser::{BackgroundSession, MountOption, SessionACL};

pub use crate::faults::{
    CutMode, CutReport, FailErrno, FailOp, FailRule, FailTrigger, Stats, TornReport,
};

/// Errors of the mount handle and the control actions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("backing directory {path}: {source}", path = .0.display(), source = .1)]
    Backing(PathBuf, #[source] io::Error),
    #[error("mounting FUSE at {path}: {source}", path = .0.display(), source = .1)]
    Mount(PathBuf, #[source] io::Error),
    #[error("unmounting {path}: {source}", path = .0.display(), source = .1)]
    Unmount(PathBuf, #[source] io::Error),
    #[error("the power is already cut; remount first")]
    AlreadyCut,
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// Mount options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Let users other than the mounting one use the mount (FUSE `allow_other`).
    pub allow_other: bool,
    /// Upper bound on unsynced data held in memory; writes beyond it fail with ENOSPC.
    pub dirty_bytes_max: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_other: false,
            dirty_bytes_max: 512 * 1024 * 1024,
        }
    }
}

/// How often, and how long apart, an unmount is retried while the mount is busy (a killed
/// process may take a moment to close its files) before falling back to a lazy detach.
const UNMOUNT_ATTEMPTS_MAX: u32 = 100;
const UNMOUNT_RETRY_INTERVAL: Duration = Duration::from_millis(20);

/// A mounted powercut filesystem. Dropping it unmounts (a clean shutdown, which writes
/// everything out unless the power was cut).
pub struct Mounted {
    core: Arc<Mutex<state::Core>>,
    session: Option<BackgroundSession>,
    backing: PathBuf,
    mountpoint: PathBuf,
    config: fuser::Config,
}

impl std::fmt::Debug for Mounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mounted")
            .field("backing", &self.backing)
            .field("mountpoint", &self.mountpoint)
            .finish_non_exhaustive()
    }
}

/// Mounts a powercut filesystem showing `backing` at `mountpoint`. Both directories must
/// exist and neither may contain the other.
pub fn mount(
    backing: impl AsRef<Path>,
    mountpoint: impl AsRef<Path>,
    options: Options,
) -> Result<Mounted, Error> {
    let backing_arg = backing.as_ref();
    let backing = backing_arg
        .canonicalize()
        .map_err(|e| Error::Backing(backing_arg.to_path_buf(), e))?;
    let mountpoint = mountpoint.as_ref();
    detach_stale(mountpoint);
    let mountpoint = mountpoint
        .canonicalize()
        .map_err(|e| Error::Mount(mountpoint.to_path_buf(), e))?;
    if mountpoint.starts_with(&backing) || backing.starts_with(&mountpoint) {
        // The filesystem would end up reading through itself and deadlock.
        return Err(Error::Invalid(
            "the mountpoint and the backing directory must not contain each other".into(),
        ));
    }
    let core = state::Core::new(backing.clone(), options.dirty_bytes_max);
    core.prepare_backing()
        .map_err(|e| Error::Backing(backing.clone(), e))?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::FSName("powercut-fs".into()),
        MountOption::Subtype("powercut".into()),
        MountOption::DefaultPermissions,
    ];
    if options.allow_other {
        config.acl = SessionACL::All;
    }
    let mut mounted = Mounted {
        core: Arc::new(Mutex::new(core)),
        session: None,
        backing,
        mountpoint,
        config,
    };
    mounted.start()?;
    Ok(mounted)
}

impl Mounted {
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn backing(&self) -> &Path {
        &self.backing
    }

    fn core(&self) -> MutexGuard<'_, state::Core> {
        let mut core = self.core.lock().unwrap_or_else(PoisonError::into_inner);
        core.enter(None);
        core
    }

    /// Cuts the power: what `mode` does not persist is lost, and every operation on the mount
    /// fails with EIO until `remount`.
    pub fn cut(&self, mode: CutMode) -> Result<CutReport, Error> {
        let mut core = self.core();
        core.check_cut(&mode)?;
        core.cut(&mode)
    }

    /// Arms a power cut at the `n`th fsync (file or directory) from now, counting from 1.
    /// That fsync fails with EIO and persists nothing.
    pub fn crash_at_fsync(&self, n: u64) -> Result<(), Error> {
        self.core().arm_crash_at_fsync(n)
    }

    /// Installs a failure rule; it replaces an earlier rule for the same operation.
    pub fn fail(&self, rule: FailRule) -> Result<(), Error> {
        self.core().fail(&rule)
    }

    /// Removes every failure rule and any armed crash. It does not undo a cut.
    pub fn heal(&self) {
        self.core().heal();
    }

    pub fn stats(&self) -> Stats {
        self.core().stats(self.session.is_some())
    }

    /// Unmounts and mounts again, as after a reboot: the kernel forgets its caches, and a
    /// cut filesystem serves what the disk kept. Failure rules stay until `heal`.
    pub fn remount(&mut self) -> Result<(), Error> {
        self.stop()?;
        self.core().count_remount();
        self.start()
    }

    /// Unmounts. Without a cut this is a clean shutdown that persists everything.
    pub fn unmount(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn start(&mut self) -> Result<(), Error> {
        let generation = self.core().generation();
        let fs = fs::PowercutFs {
            core: Arc::clone(&self.core),
            generation,
        };
        let session = fuser::spawn_mount(fs, &self.mountpoint, &self.config)
            .map_err(|e| Error::Mount(self.mountpoint.clone(), e))?;
        self.session = Some(session);
        Ok(())
    }

    fn stop(&mut self) -> Result<(), Error> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        match unmount_path(&self.mountpoint) {
            Ok(true) => {
                self.core().next_generation();
                // The session thread ends once the kernel drops the connection.
                if session.join().is_err() {
                    eprintln!("powercut-fs: the FUSE session ended with an error");
                }
            }
            Ok(false) => {
                // Lazily detached: lingering users still reach the old session, which now
                // answers EIO (stale generation); its thread ends when they close their files.
                self.core().next_generation();
                drop(session);
            }
            Err(e) => {
                self.session = Some(session);
                return Err(Error::Unmount(self.mountpoint.clone(), e));
            }
        }
        self.core().after_unmount()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("powercut-fs: {e}");
        }
    }
}

/// Unmounts `path`, retrying while it is busy. Returns `true` for a full unmount and `false`
/// when it had to fall back to a lazy detach.
fn unmount_path(path: &Path) -> io::Result<bool> {
    for _ in 0..UNMOUNT_ATTEMPTS_MAX {
        match nix::mount::umount(path) {
            Ok(()) => return Ok(true),
            Err(nix::errno::Errno::EBUSY) => std::thread::sleep(UNMOUNT_RETRY_INTERVAL),
            Err(e) => return Err(e.into()),
        }
    }
    nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)?;
    Ok(false)
}

/// A mount left behind by a killed powercut-fs answers ENOTCONN; detach it so the mountpoint
/// can be used again.
fn detach_stale(path: &Path) {
    if let Err(e) = std::fs::metadata(path)
        && e.raw_os_error() == Some(nix::errno::Errno::ENOTCONN as i32)
    {
        let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
    }
}

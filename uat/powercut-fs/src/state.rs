//! The filesystem's whole state behind its one lock: inode table, page cache, directory
//! change log and fault settings. Every FUSE request and every control action runs with
//! this lock held, so a power cut never interleaves with an fsync.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo, TimeOrNow};
use nix::fcntl::OFlag;

use crate::entries::{self, Change, ChangeLog, Inodes, ROOT_INO, STASH_DIR};
use crate::faults::{ActiveRule, CutMode, FailErrno, FailOp, Stats};
use crate::pages::{DirtyFile, PAGE_SIZE, read_full_at};

mod cut;

pub(crate) type Res<T> = Result<T, Errno>;

/// State that lives exactly as long as one mount; a remount starts afresh.
#[derive(Debug)]
struct Live {
    inodes: Inodes,
    files: HashMap<u64, DirtyFile>,
    /// One backing file descriptor per regular file, opened on first use. No hard links are
    /// supported, so an inode and its descriptor stay paired across renames and removals.
    fds: HashMap<u64, File>,
    log: ChangeLog,
    next_stash: u64,
}

impl Live {
    fn new() -> Self {
        Self {
            inodes: Inodes::new(),
            files: HashMap::new(),
            fds: HashMap::new(),
            log: ChangeLog::default(),
            next_stash: 1,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Core {
    backing: PathBuf,
    live: Live,
    /// Set by a power cut; every request fails with EIO until the remount.
    cut: bool,
    /// Bumped at each unmount; a request from an older FUSE session (a lazily detached mount
    /// that still has users) is stale and fails with EIO.
    generation: u64,
    /// Whether the request holding the lock right now comes from a stale session.
    caller_stale: bool,
    write_rule: Option<ActiveRule>,
    fsync_rule: Option<ActiveRule>,
    crash_at_fsync: Option<u64>,
    dirty_bytes_max: u64,
    stats: Stats,
}

impl Core {
    pub(crate) fn new(backing: PathBuf, dirty_bytes_max: u64) -> Self {
        Self {
            backing,
            live: Live::new(),
            cut: false,
            generation: 0,
            caller_stale: false,
            write_rule: None,
            fsync_rule: None,
            crash_at_fsync: None,
            dirty_bytes_max,
            stats: Stats::default(),
        }
    }

    /// Creates the stash directory and empties it: leftovers come from a run that ended
    /// without a clean unmount, and treating them as durably removed is a state a disk can hold.
    pub(crate) fn prepare_backing(&self) -> io::Result<()> {
        let stash = self.backing.join(STASH_DIR);
        entries::remove_any(&stash)?;
        std::fs::create_dir(&stash)
    }

    /// Notes who holds the lock: a FUSE session of `generation`, or the control side (`None`).
    pub(crate) fn enter(&mut self, generation: Option<u64>) {
        self.caller_stale = generation.is_some_and(|g| g != self.generation);
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn next_generation(&mut self) {
        self.generation += 1;
    }

    pub(crate) fn live(&self) -> Res<()> {
        if self.cut || self.caller_stale {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }

    fn full(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    fn path(&self, ino: u64) -> Res<PathBuf> {
        self.live
            .inodes
            .path(ino)
            .map(Path::to_path_buf)
            .ok_or(Errno::ENOENT)
    }

    /// The path of `name` in directory `parent`; the stash name at the root is reserved.
    fn child(&self, parent: u64, name: &OsStr) -> Res<PathBuf> {
        if parent == ROOT_INO && name == STASH_DIR {
            return Err(Errno::EPERM);
        }
        Ok(self.path(parent)?.join(name))
    }

    fn next_stash(&mut self) -> PathBuf {
        let n = self.live.next_stash;
        self.live.next_stash += 1;
        Path::new(STASH_DIR).join(n.to_string())
    }

    fn meta(&self, ino: u64) -> Res<Metadata> {
        match self.live.fds.get(&ino) {
            Some(fd) => Ok(fd.metadata()?),
            None => Ok(std::fs::symlink_metadata(self.full(&self.path(ino)?))?),
        }
    }

    fn attr(&self, ino: u64) -> Res<FileAttr> {
        let meta = self.meta(ino)?;
        let size = self.live.files.get(&ino).map(DirtyFile::size);
        Ok(attr_of(ino, &meta, size))
    }

    fn ensure_fd(&mut self, ino: u64) -> Res<()> {
        if !self.live.fds.contains_key(&ino) {
            let path = self.full(&self.path(ino)?);
            let fd = File::options().read(true).write(true).open(path)?;
            self.live.fds.insert(ino, fd);
        }
        Ok(())
    }

    /// The dirty state of a regular file, created on its first unsynced change.
    fn dirty(&mut self, ino: u64) -> Res<(&File, &mut DirtyFile)> {
        self.ensure_fd(ino)?;
        let fd = self.live.fds.get(&ino).ok_or(Errno::EIO)?;
        let dirty = match self.live.files.entry(ino) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(DirtyFile::new(fd.metadata()?.len()))
            }
        };
        Ok((fd, dirty))
    }

    fn dirty_pages(&self) -> u64 {
        self.live
            .files
            .values()
            .map(|f| f.page_count() as u64)
            .sum()
    }

    pub(crate) fn lookup(&mut self, parent: u64, name: &OsStr) -> Res<FileAttr> {
        self.live()?;
        if parent == ROOT_INO && name == STASH_DIR {
            return Err(Errno::ENOENT);
        }
        let rel = self.child(parent, name)?;
        std::fs::symlink_metadata(self.full(&rel))?;
        let ino = self.live.inodes.ino_for(&rel);
        self.attr(ino)
    }

    pub(crate) fn getattr(&mut self, ino: u64) -> Res<FileAttr> {
        self.live()?;
        self.attr(ino)
    }

    pub(crate) fn setattr(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        owner: (Option<u32>, Option<u32>),
        size: Option<u64>,
        times: (Option<TimeOrNow>, Option<TimeOrNow>),
    ) -> Res<FileAttr> {
        self.live()?;
        let full = self.full(&self.path(ino)?);
        if let Some(size) = size {
            self.dirty(ino)?.1.set_size(size);
        }
        // File metadata other than the size is applied at once and is not modelled by cuts.
        if let Some(mode) = mode {
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
        if owner.0.is_some() || owner.1.is_some() {
            std::os::unix::fs::lchown(&full, owner.0, owner.1)?;
        }
        if times.0.is_some() || times.1.is_some() {
            let resolve = |t: TimeOrNow| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            };
            let mut ft = std::fs::FileTimes::new();
            if let Some(t) = times.0 {
                ft = ft.set_accessed(resolve(t));
            }
            if let Some(t) = times.1 {
                ft = ft.set_modified(resolve(t));
            }
            File::open(&full)?.set_times(ft)?;
        }
        self.attr(ino)
    }

    pub(crate) fn readlink(&mut self, ino: u64) -> Res<Vec<u8>> {
        self.live()?;
        let target = std::fs::read_link(self.full(&self.path(ino)?))?;
        Ok(target.into_os_string().into_vec())
    }

    pub(crate) fn open(&mut self, ino: u64) -> Res<()> {
        self.live()?;
        if self.meta(ino)?.is_file() {
            self.ensure_fd(ino)?;
        }
        Ok(())
    }

    pub(crate) fn opendir(&mut self, ino: u64) -> Res<()> {
        self.live()?;
        if self.meta(ino)?.is_dir() {
            Ok(())
        } else {
            Err(Errno::ENOTDIR)
        }
    }

    pub(crate) fn read(&mut self, ino: u64, offset: u64, len: u32) -> Res<Vec<u8>> {
        self.live()?;
        self.ensure_fd(ino)?;
        let fd = self.live.fds.get(&ino).ok_or(Errno::EIO)?;
        if let Some(dirty) = self.live.files.get(&ino) {
            return Ok(dirty.read(fd, offset, len)?);
        }
        let mut buf = vec![0; len as usize];
        let n = read_full_at(fd, &mut buf, offset)?;
        buf.truncate(n);
        Ok(buf)
    }

    pub(crate) fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Res<u32> {
        self.live()?;
        self.inject(FailOp::Write)?;
        if (self.dirty_pages() + 2) * PAGE_SIZE + data.len() as u64 > self.dirty_bytes_max {
            eprintln!(
                "powercut-fs: dirty page cache full ({} bytes max)",
                self.dirty_bytes_max
            );
            return Err(Errno::ENOSPC);
        }
        let (fd, dirty) = self.dirty(ino)?;
        dirty.write(fd, offset, data)?;
        self.stats.writes += 1;
        Ok(u32::try_from(data.len()).unwrap_or(u32::MAX))
    }

    pub(crate) fn fallocate(&mut self, ino: u64, offset: u64, len: u64, mode: i32) -> Res<()> {
        self.live()?;
        if mode != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let (_, dirty) = self.dirty(ino)?;
        if offset + len > dirty.size() {
            dirty.set_size(offset + len);
        }
        Ok(())
    }

    /// Applies an injected failure rule for `op`, if one fires.
    fn inject(&mut self, op: FailOp) -> Res<()> {
        let slot = match op {
            FailOp::Write => &mut self.write_rule,
            FailOp::Fsync => &mut self.fsync_rule,
        };
        let Some(rule) = slot else {
            return Ok(());
        };
        let (errno, used_up) = rule.fire();
        if used_up {
            *slot = None;
        }
        match errno {
            None => Ok(()),
            Some(e) => {
                self.stats.injected_failures += 1;
                Err(match e {
                    FailErrno::Enospc => Errno::ENOSPC,
                    FailErrno::Eio => Errno::EIO,
                })
            }
        }
    }

    /// Every fsync passes here first: an armed crash cuts the power instead of syncing.
    fn sync_point(&mut self) -> Res<()> {
        self.live()?;
        match self.crash_at_fsync {
            Some(n) if n <= 1 => {
                self.crash_at_fsync = None;
                if let Err(e) = self.cut(&CutMode::DropAll) {
                    eprintln!("powercut-fs: crash_at_fsync cut failed: {e}");
                }
                return Err(Errno::EIO);
            }
            Some(n) => self.crash_at_fsync = Some(n - 1),
            None => {}
        }
        self.inject(FailOp::Fsync)
    }

    pub(crate) fn fsync(&mut self, ino: u64, datasync: bool) -> Res<()> {
        self.sync_point()?;
        if let Some(dirty) = self.live.files.remove(&ino) {
            let fd = self.live.fds.get(&ino).ok_or(Errno::EIO)?;
            if let Err(e) = dirty.persist_all(fd) {
                // The data stays dirty, so a retried fsync can still make it durable.
                self.live.files.insert(ino, dirty);
                return Err(e.into());
            }
        }
        if let Some(fd) = self.live.fds.get(&ino) {
            if datasync {
                fd.sync_data()?
            } else {
                fd.sync_all()?
            }
        }
        self.stats.fsyncs += 1;
        Ok(())
    }

    pub(crate) fn fsyncdir(&mut self, ino: u64) -> Res<()> {
        self.sync_point()?;
        let dir = self.full(&self.path(ino)?);
        for change in self.live.log.dir_synced(ino) {
            if let Err(e) = entries::purge(&self.backing, &change) {
                eprintln!("powercut-fs: purging {change:?}: {e}");
            }
        }
        File::open(dir)?.sync_all()?;
        self.stats.dir_fsyncs += 1;
        Ok(())
    }

    pub(crate) fn readdir(&mut self, ino: u64) -> Res<Vec<(u64, FileType, OsString)>> {
        self.live()?;
        let rel = self.path(ino)?;
        let parent_ino = rel
            .parent()
            .and_then(|p| self.live.inodes.find(p))
            .unwrap_or(ino);
        let mut out = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (parent_ino, FileType::Directory, OsString::from("..")),
        ];
        for entry in std::fs::read_dir(self.full(&rel))? {
            let entry = entry?;
            let name = entry.file_name();
            if ino == ROOT_INO && name == STASH_DIR {
                continue;
            }
            let kind = FileType::from_std(entry.file_type()?).unwrap_or(FileType::RegularFile);
            let child = self.live.inodes.ino_for(&rel.join(&name));
            out.push((child, kind, name));
        }
        Ok(out)
    }

    pub(crate) fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Res<FileAttr> {
        self.live()?;
        let rel = self.child(parent, name)?;
        let full = self.full(&rel);
        let existed = std::fs::symlink_metadata(&full).is_ok();
        let flags = OFlag::from_bits_truncate(flags);
        if existed && flags.contains(OFlag::O_EXCL) {
            return Err(Errno::EEXIST);
        }
        let fd = File::options()
            .read(true)
            .write(true)
            .create(true)
            .mode(mode & 0o7777)
            .open(&full)?;
        let ino = self.live.inodes.ino_for(&rel);
        self.live.fds.insert(ino, fd);
        if !existed {
            self.live
                .log
                .record(Change::Created { path: rel }, vec![parent]);
        } else if flags.contains(OFlag::O_TRUNC) {
            self.dirty(ino)?.1.set_size(0);
        }
        self.attr(ino)
    }

    pub(crate) fn mkdir(&mut self, parent: u64, name: &OsStr, mode: u32) -> Res<FileAttr> {
        self.live()?;
        let rel = self.child(parent, name)?;
        std::fs::DirBuilder::new()
            .mode(mode & 0o7777)
            .create(self.full(&rel))?;
        let ino = self.live.inodes.ino_for(&rel);
        self.live
            .log
            .record(Change::Created { path: rel }, vec![parent]);
        self.attr(ino)
    }

    pub(crate) fn symlink(&mut self, parent: u64, name: &OsStr, target: &Path) -> Res<FileAttr> {
        self.live()?;
        let rel = self.child(parent, name)?;
        std::os::unix::fs::symlink(target, self.full(&rel))?;
        let ino = self.live.inodes.ino_for(&rel);
        self.live
            .log
            .record(Change::Created { path: rel }, vec![parent]);
        self.attr(ino)
    }

    /// Removes a file (`dir == false`) or an empty directory by moving it to the stash.
    pub(crate) fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Res<()> {
        self.live()?;
        let rel = self.child(parent, name)?;
        let full = self.full(&rel);
        let meta = std::fs::symlink_metadata(&full)?;
        match (dir, meta.is_dir()) {
            (false, true) => return Err(Errno::EISDIR),
            (true, false) => return Err(Errno::ENOTDIR),
            (true, true) if std::fs::read_dir(&full)?.next().is_some() => {
                return Err(Errno::ENOTEMPTY);
            }
            _ => {}
        }
        let stash = self.next_stash();
        std::fs::rename(&full, self.full(&stash))?;
        self.live.inodes.moved(&rel, &stash);
        self.live
            .log
            .record(Change::Removed { path: rel, stash }, vec![parent]);
        Ok(())
    }

    pub(crate) fn rename(
        &mut self,
        from: (u64, &OsStr),
        to: (u64, &OsStr),
        noreplace: bool,
    ) -> Res<()> {
        self.live()?;
        let (from_rel, to_rel) = (self.child(from.0, from.1)?, self.child(to.0, to.1)?);
        let from_meta = std::fs::symlink_metadata(self.full(&from_rel))?;
        if from_rel == to_rel {
            return Ok(());
        }
        if to_rel.starts_with(&from_rel) {
            return Err(Errno::EINVAL);
        }
        let replaced = match std::fs::symlink_metadata(self.full(&to_rel)) {
            Ok(_) if noreplace => return Err(Errno::EEXIST),
            Ok(to_meta) => Some(self.stash_replaced(&from_meta, &to_meta, &to_rel)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = std::fs::rename(self.full(&from_rel), self.full(&to_rel)) {
            if let Some(stash) = &replaced {
                let _ = std::fs::rename(self.full(stash), self.full(&to_rel));
                self.live.inodes.moved(stash, &to_rel);
            }
            return Err(e.into());
        }
        self.live.inodes.moved(&from_rel, &to_rel);
        let change = Change::Renamed {
            from: from_rel,
            to: to_rel,
            replaced,
        };
        self.live.log.record(change, vec![from.0, to.0]);
        Ok(())
    }

    /// Moves the entry a rename replaces into the stash, after the checks rename(2) makes.
    fn stash_replaced(&mut self, from: &Metadata, to: &Metadata, to_rel: &Path) -> Res<PathBuf> {
        match (from.is_dir(), to.is_dir()) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            (true, true) if std::fs::read_dir(self.full(to_rel))?.next().is_some() => {
                return Err(Errno::ENOTEMPTY);
            }
            _ => {}
        }
        let stash = self.next_stash();
        std::fs::rename(self.full(to_rel), self.full(&stash))?;
        self.live.inodes.moved(to_rel, &stash);
        Ok(stash)
    }

    pub(crate) fn statfs(&mut self) -> Res<nix::sys::statvfs::Statvfs> {
        self.live()?;
        nix::sys::statvfs::statvfs(&self.backing).map_err(|e| Errno::from_i32(e as i32))
    }
}

/// Builds the attributes FUSE reports from the backing entry, with the cached size if dirty.
fn attr_of(ino: u64, meta: &Metadata, size: Option<u64>) -> FileAttr {
    let size = size.unwrap_or(meta.len());
    let ctime = u64::try_from(meta.ctime())
        .map(|s| UNIX_EPOCH + Duration::new(s, u32::try_from(meta.ctime_nsec()).unwrap_or(0)))
        .unwrap_or(UNIX_EPOCH);
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: meta.blocks().max(size.div_ceil(512)),
        atime: meta.accessed().unwrap_or(UNIX_EPOCH),
        mtime: meta.modified().unwrap_or(UNIX_EPOCH),
        ctime,
        crtime: UNIX_EPOCH,
        kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
        perm: (meta.mode() & 0o7777) as u16,
        nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: u32::try_from(meta.rdev()).unwrap_or(0),
        blksize: PAGE_SIZE as u32,
        flags: 0,
    }
}

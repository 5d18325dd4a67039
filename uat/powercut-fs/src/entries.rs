//! Directory-entry bookkeeping: the inode table (inode number to path in the backing
//! directory) and the log of creates, renames and removals not yet made durable by an fsync
//! of every directory they touched, with the undo step a power cut applies to each.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// Name of the hidden directory, at the root of the backing directory, that keeps removed
/// or replaced entries until their removal is durable, so a cut can bring them back.
pub(crate) const STASH_DIR: &str = ".powercut-fs-stash";

/// Inode number of the root directory, fixed by FUSE.
pub(crate) const ROOT_INO: u64 = 1;

/// Inode numbers are handed out once and never reused while mounted, so the kernel can never
/// confuse a new file with an old one.
#[derive(Debug)]
pub(crate) struct Inodes {
    by_ino: HashMap<u64, PathBuf>,
    by_path: HashMap<PathBuf, u64>,
    next: u64,
}

impl Inodes {
    pub(crate) fn new() -> Self {
        let mut inodes = Self {
            by_ino: HashMap::new(),
            by_path: HashMap::new(),
            next: ROOT_INO + 1,
        };
        inodes.by_ino.insert(ROOT_INO, PathBuf::new());
        inodes.by_path.insert(PathBuf::new(), ROOT_INO);
        inodes
    }

    /// The path relative to the backing directory.
    pub(crate) fn path(&self, ino: u64) -> Option<&Path> {
        self.by_ino.get(&ino).map(PathBuf::as_path)
    }

    pub(crate) fn find(&self, path: &Path) -> Option<u64> {
        self.by_path.get(path).copied()
    }

    /// The inode for `path`, allocated on first sight.
    pub(crate) fn ino_for(&mut self, path: &Path) -> u64 {
        if let Some(ino) = self.by_path.get(path) {
            return *ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(ino, path.to_path_buf());
        self.by_path.insert(path.to_path_buf(), ino);
        ino
    }

    /// Follows a rename (or a move to the stash) of `from` and everything below it.
    pub(crate) fn moved(&mut self, from: &Path, to: &Path) {
        let affected: Vec<PathBuf> = self
            .by_path
            .keys()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for old in affected {
            let Some(ino) = self.by_path.remove(&old) else {
                continue;
            };
            let rest = old.strip_prefix(from).unwrap_or(Path::new(""));
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            self.by_path.insert(new.clone(), ino);
            self.by_ino.insert(ino, new);
        }
    }
}

/// One directory change applied to the backing directory but not yet durable.
#[derive(Debug)]
pub(crate) enum Change {
    /// A file, symlink or directory was created at `path`.
    Created { path: PathBuf },
    /// The entry at `path` was removed; it waits in the stash.
    Removed { path: PathBuf, stash: PathBuf },
    /// `from` was renamed to `to`; an entry it replaced waits in the stash.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<PathBuf>,
    },
}

/// A change and the directories that still have to be fsynced to make it durable.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) change: Change,
    dirs: Vec<u64>,
}

/// The changes made since the directories involved were last fsynced, oldest first.
#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    pending: Vec<Pending>,
}

impl ChangeLog {
    pub(crate) fn record(&mut self, change: Change, mut dirs: Vec<u64>) {
        dirs.dedup();
        self.pending.push(Pending { change, dirs });
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// An fsync of directory `dir` makes durable every earlier change in it; a change that
    /// touched two directories needs both. Returns the changes that just became durable.
    pub(crate) fn dir_synced(&mut self, dir: u64) -> Vec<Change> {
        for p in &mut self.pending {
            p.dirs.retain(|d| *d != dir);
        }
        let (done, rest): (Vec<Pending>, Vec<Pending>) =
            self.pending.drain(..).partition(|p| p.dirs.is_empty());
        self.pending = rest;
        done.into_iter().map(|p| p.change).collect()
    }

    /// Takes every pending change, oldest first.
    pub(crate) fn take_all(&mut self) -> Vec<Change> {
        self.pending.drain(..).map(|p| p.change).collect()
    }
}

/// Forgets a stashed entry for good: its removal is durable.
pub(crate) fn purge(backing: &Path, change: &Change) -> io::Result<()> {
    let stash = match change {
        Change::Created { .. } => return Ok(()),
        Change::Removed { stash, .. } => stash,
        Change::Renamed { replaced, .. } => match replaced {
            Some(stash) => stash,
            None => return Ok(()),
        },
    };
    remove_any(&backing.join(stash))
}

/// Reverts a change that did not survive the power cut.
pub(crate) fn undo(backing: &Path, change: &Change) -> io::Result<()> {
    match change {
        Change::Created { path } => remove_any(&backing.join(path)),
        Change::Removed { path, stash } => std::fs::rename(backing.join(stash), backing.join(path)),
        Change::Renamed { from, to, replaced } => {
            std::fs::rename(backing.join(to), backing.join(from))?;
            match replaced {
                Some(stash) => std::fs::rename(backing.join(stash), backing.join(to)),
                None => Ok(()),
            }
        }
    }
}

/// Removes a file, symlink or directory tree; a missing entry is not an error.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_durable_only_after_every_directory_it_touched_is_synced() {
        let mut log = ChangeLog::default();
        log.record(Change::Created { path: "a/x".into() }, vec![2]);
        log.record(
            Change::Renamed {
                from: "a/x".into(),
                to: "b/x".into(),
                replaced: None,
            },
            vec![2, 3],
        );
        assert_eq!(log.dir_synced(2).len(), 1);
        assert_eq!(log.len(), 1);
        assert_eq!(log.dir_synced(3).len(), 1);
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn renames_move_descendants_in_the_inode_table() {
        let mut inodes = Inodes::new();
        let dir = inodes.ino_for(Path::new("d"));
        let file = inodes.ino_for(Path::new("d/f"));
        let other = inodes.ino_for(Path::new("dd"));
        inodes.moved(Path::new("d"), Path::new("e"));
        assert_eq!(inodes.path(dir), Some(Path::new("e")));
        assert_eq!(inodes.path(file), Some(Path::new("e/f")));
        assert_eq!(inodes.path(other), Some(Path::new("dd")));
        assert_eq!(inodes.find(Path::new("e/f")), Some(file));
        assert_eq!(inodes.find(Path::new("d/f")), None);
    }

    #[test]
    fn undoing_a_rename_over_a_file_brings_the_old_file_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        std::fs::create_dir(root.join(STASH_DIR)).expect("stash");
        std::fs::write(root.join("target"), b"old").expect("write");
        std::fs::write(root.join("tmp"), b"new").expect("write");
        let stash = PathBuf::from(STASH_DIR).join("1");
        std::fs::rename(root.join("target"), root.join(&stash)).expect("stash");
        std::fs::rename(root.join("tmp"), root.join("target")).expect("rename");
        let change = Change::Renamed {
            from: "tmp".into(),
            to: "target".into(),
            replaced: Some(stash),
        };
        undo(root, &change).expect("undo");
        assert_eq!(std::fs::read(root.join("target")).expect("read"), b"old");
        assert_eq!(std::fs::read(root.join("tmp")).expect("read"), b"new");
    }
}

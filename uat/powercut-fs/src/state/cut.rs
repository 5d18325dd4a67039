//! The control side of the state: power cuts in their three modes, fault rules, remount
//! bookkeeping and statistics.

use std::path::Path;

use rand_chacha::ChaCha8Rng;

use super::{Core, Live};
use crate::Error;
use crate::entries;
use crate::faults::{ActiveRule, CutMode, CutReport, FailOp, FailRule, FailTrigger};
use crate::faults::{Stats, TornReport};
use crate::faults::{below, seeded, unit};

/// Control actions: power cuts, fault rules, remount bookkeeping and statistics.
impl Core {
    pub(crate) fn cut(&mut self, mode: &CutMode) -> Result<CutReport, Error> {
        if self.cut {
            return Err(Error::AlreadyCut);
        }
        let mut report = CutReport {
            mode: mode.name().to_owned(),
            ..CutReport::default()
        };
        let total_pages = self.dirty_pages();
        let mut changes = self.live.log.take_all();
        let mut undo_from = 0;
        match mode {
            CutMode::DropAll => {}
            CutMode::Writeback { seed, fraction } => {
                let mut rng = seeded(*seed);
                report.persisted_pages = self.writeback(&mut rng, *fraction);
                // Journaling filesystems commit directory changes in order: keep a prefix.
                while undo_from < changes.len() && unit(&mut rng) < *fraction {
                    undo_from += 1;
                }
            }
            CutMode::TornWrite { file, seed } => {
                report.torn = self.tear(file, &mut seeded(*seed));
            }
        }
        for change in &changes[..undo_from] {
            if let Err(e) = entries::purge(&self.backing, change) {
                eprintln!("powercut-fs: purging {change:?}: {e}");
            }
        }
        report.kept_entry_changes = undo_from as u64;
        for change in changes.drain(undo_from..).rev() {
            report.undone_entry_changes += 1;
            if let Err(e) = entries::undo(&self.backing, &change) {
                eprintln!("powercut-fs: undoing {change:?}: {e}");
                report.undo_errors += 1;
            }
        }
        report.dropped_pages = total_pages - report.persisted_pages;
        self.live.files.clear();
        self.cut = true;
        self.crash_at_fsync = None;
        self.stats.cuts += 1;
        self.stats.last_cut = Some(report.clone());
        Ok(report)
    }

    /// Persists each dirty page (and each pending truncate) with probability `fraction`.
    fn writeback(&mut self, rng: &mut ChaCha8Rng, fraction: f64) -> u64 {
        let mut inos: Vec<u64> = self.live.files.keys().copied().collect();
        inos.sort_unstable();
        let mut persisted = 0;
        for ino in inos {
            let (Some(dirty), Some(fd)) = (self.live.files.get(&ino), self.live.fds.get(&ino))
            else {
                continue;
            };
            if unit(rng) < fraction
                && let Err(e) = dirty.persist_floor(fd)
            {
                eprintln!("powercut-fs: writeback truncate: {e}");
            }
            for idx in dirty.page_indexes() {
                if unit(rng) < fraction {
                    match dirty.persist_page(fd, idx) {
                        Ok(_) => persisted += 1,
                        Err(e) => eprintln!("powercut-fs: writeback page: {e}"),
                    }
                }
            }
        }
        persisted
    }

    /// Persists a seeded prefix (whole 512-byte sectors when possible) of the last unsynced
    /// write to `file`.
    fn tear(&mut self, file: &Path, rng: &mut ChaCha8Rng) -> Option<TornReport> {
        let ino = self.live.inodes.find(file)?;
        let (dirty, fd) = (self.live.files.get(&ino)?, self.live.fds.get(&ino)?);
        let (offset, len) = dirty.last_write()?;
        let kept = if len >= 1024 {
            below(rng, len / 512) * 512
        } else {
            below(rng, len)
        };
        if let Err(e) = dirty.persist_range(fd, offset, kept) {
            eprintln!("powercut-fs: torn write: {e}");
        }
        Some(TornReport {
            file: file.to_path_buf(),
            offset,
            len,
            kept,
        })
    }

    /// Checks a torn-write target before cutting, so a typo in a scenario is an error.
    pub(crate) fn check_cut(&self, mode: &CutMode) -> Result<(), Error> {
        match mode {
            CutMode::DropAll => Ok(()),
            CutMode::Writeback { fraction, .. } => check_fraction("fraction", *fraction),
            CutMode::TornWrite { file, .. } => {
                if file.is_absolute() || self.live.inodes.find(file).is_none() {
                    return Err(Error::Invalid(format!(
                        "torn_write: {} is not a file the mount has seen",
                        file.display()
                    )));
                }
                Ok(())
            }
        }
    }

    pub(crate) fn arm_crash_at_fsync(&mut self, n: u64) -> Result<(), Error> {
        if n == 0 {
            return Err(Error::Invalid("crash_at_fsync: n counts from 1".into()));
        }
        self.crash_at_fsync = Some(n);
        Ok(())
    }

    pub(crate) fn fail(&mut self, rule: &FailRule) -> Result<(), Error> {
        if let FailTrigger::Probability { probability, .. } = rule.trigger {
            check_fraction("probability", probability)?;
        }
        let active = Some(ActiveRule::new(rule));
        match rule.op {
            FailOp::Write => self.write_rule = active,
            FailOp::Fsync => self.fsync_rule = active,
        }
        Ok(())
    }

    pub(crate) fn heal(&mut self) {
        self.write_rule = None;
        self.fsync_rule = None;
        self.crash_at_fsync = None;
    }

    /// Called once the FUSE session has ended. Without a cut this was a clean shutdown, which
    /// writes everything out, as an operating system does when unmounting.
    pub(crate) fn after_unmount(&mut self) -> Result<(), Error> {
        let mut result = Ok(());
        if !self.cut {
            for (ino, dirty) in std::mem::take(&mut self.live.files) {
                if let Some(fd) = self.live.fds.get(&ino)
                    && let Err(e) = dirty.persist_all(fd).and_then(|()| fd.sync_all())
                {
                    result = Err(Error::Backing(self.backing.clone(), e));
                }
            }
            for change in self.live.log.take_all() {
                if let Err(e) = entries::purge(&self.backing, &change) {
                    eprintln!("powercut-fs: purging {change:?}: {e}");
                }
            }
        }
        self.live = Live::new();
        self.cut = false;
        result
    }

    pub(crate) fn count_remount(&mut self) {
        self.stats.remounts += 1;
    }

    pub(crate) fn stats(&self, mounted: bool) -> Stats {
        let state = match (mounted, self.cut) {
            (false, _) => "unmounted",
            (true, true) => "cut",
            (true, false) => "live",
        };
        Stats {
            state: state.to_owned(),
            dirty_files: self.live.files.len() as u64,
            dirty_pages: self.dirty_pages(),
            pending_entry_changes: self.live.log.len() as u64,
            crash_at_fsync_remaining: self.crash_at_fsync,
            ..self.stats.clone()
        }
    }
}

fn check_fraction(what: &str, value: f64) -> Result<(), Error> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{what} must be within 0..=1, got {value}"
        )))
    }
}

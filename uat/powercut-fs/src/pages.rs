//! The volatile page cache of one file: data written but not yet fsynced, served to readers
//! from memory and written to the backing file only by fsync (or by a simulated writeback).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Size of one cached page. Writes are tracked at this granularity, like a kernel page cache.
pub(crate) const PAGE_SIZE: u64 = 4096;

/// The unsynced state of one regular file.
///
/// Invariant: the backing file is not touched while a `DirtyFile` exists, except by
/// `persist_*`, so `floor` and the backing length stay consistent.
#[derive(Debug)]
pub(crate) struct DirtyFile {
    /// Page index to `PAGE_SIZE` bytes, the full current content of that page.
    pages: BTreeMap<u64, Vec<u8>>,
    /// The logical size readers see.
    size: u64,
    /// The smallest size since the last sync: backing bytes at or beyond it read as zeros,
    /// because an unsynced truncate removed them.
    floor: u64,
    /// Offset and length of the most recent write, for the torn-write mode.
    last_write: Option<(u64, u64)>,
}

impl DirtyFile {
    /// Starts tracking a file whose backing file is `backing_len` bytes long.
    pub(crate) fn new(backing_len: u64) -> Self {
        Self {
            pages: BTreeMap::new(),
            size: backing_len,
            floor: backing_len,
            last_write: None,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn page_count(&self) -> usize {
        self.pages.len()
    }

    pub(crate) fn page_indexes(&self) -> Vec<u64> {
        self.pages.keys().copied().collect()
    }

    pub(crate) fn last_write(&self) -> Option<(u64, u64)> {
        self.last_write
    }

    /// Reads the durable content of page `idx`, honouring an unsynced truncate.
    fn base_page(&self, fd: &File, idx: u64) -> io::Result<Vec<u8>> {
        let mut page = vec![0; PAGE_SIZE as usize];
        let start = idx * PAGE_SIZE;
        if start < self.floor {
            let visible = (self.floor - start).min(PAGE_SIZE) as usize;
            read_full_at(fd, &mut page[..visible], start)?;
        }
        Ok(page)
    }

    /// Caches a write; nothing reaches the backing file.
    pub(crate) fn write(&mut self, fd: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset + data.len() as u64;
        for idx in offset / PAGE_SIZE..=(end - 1) / PAGE_SIZE {
            if !self.pages.contains_key(&idx) {
                let base = self.base_page(fd, idx)?;
                self.pages.insert(idx, base);
            }
            let page_start = idx * PAGE_SIZE;
            let from = offset.max(page_start);
            let to = end.min(page_start + PAGE_SIZE);
            if let Some(page) = self.pages.get_mut(&idx) {
                let src = &data[(from - offset) as usize..(to - offset) as usize];
                page[(from - page_start) as usize..(to - page_start) as usize].copy_from_slice(src);
            }
        }
        self.size = self.size.max(end);
        self.last_write = Some((offset, data.len() as u64));
        Ok(())
    }

    /// Reads through the cache: dirty pages first, then the backing file below `floor`.
    pub(crate) fn read(&self, fd: &File, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        if offset >= self.size {
            return Ok(Vec::new());
        }
        let end = (offset + u64::from(len)).min(self.size);
        let mut buf = vec![0; (end - offset) as usize];
        if offset < self.floor {
            let visible = (end.min(self.floor) - offset) as usize;
            read_full_at(fd, &mut buf[..visible], offset)?;
        }
        for (&idx, page) in self.pages.range(offset / PAGE_SIZE..=(end - 1) / PAGE_SIZE) {
            let page_start = idx * PAGE_SIZE;
            let from = offset.max(page_start);
            let to = end.min(page_start + PAGE_SIZE);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&page[(from - page_start) as usize..(to - page_start) as usize]);
        }
        Ok(buf)
    }

    /// Records an unsynced truncate or extension.
    pub(crate) fn set_size(&mut self, new_size: u64) {
        if new_size < self.size {
            let first_gone = new_size.div_ceil(PAGE_SIZE);
            self.pages.retain(|&idx, _| idx < first_gone);
            let tail = (new_size % PAGE_SIZE) as usize;
            if tail != 0
                && let Some(page) = self.pages.get_mut(&(new_size / PAGE_SIZE))
            {
                page[tail..].fill(0);
            }
            self.floor = self.floor.min(new_size);
        }
        self.size = new_size;
    }

    /// Writes everything to the backing file (the caller then fsyncs it).
    pub(crate) fn persist_all(&self, fd: &File) -> io::Result<()> {
        self.persist_floor(fd)?;
        for &idx in self.pages.keys() {
            self.persist_page(fd, idx)?;
        }
        if fd.metadata()?.len() != self.size {
            fd.set_len(self.size)?;
        }
        Ok(())
    }

    /// Applies an unsynced truncate to the backing file.
    pub(crate) fn persist_floor(&self, fd: &File) -> io::Result<()> {
        if self.floor < fd.metadata()?.len() {
            fd.set_len(self.floor)?;
        }
        Ok(())
    }

    /// Writes one dirty page, clipped to the logical size, to the backing file.
    /// Returns whether anything was written.
    pub(crate) fn persist_page(&self, fd: &File, idx: u64) -> io::Result<bool> {
        let start = idx * PAGE_SIZE;
        let Some(page) = self.pages.get(&idx) else {
            return Ok(false);
        };
        if start >= self.size {
            return Ok(false);
        }
        let len = (self.size - start).min(PAGE_SIZE) as usize;
        fd.write_all_at(&page[..len], start)?;
        Ok(true)
    }

    /// Writes the cached bytes of `[offset, offset + len)` to the backing file: the part of a
    /// write that reached the platter before the power went.
    pub(crate) fn persist_range(&self, fd: &File, offset: u64, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let bytes = self.read(fd, offset, u32::try_from(len).unwrap_or(u32::MAX))?;
        fd.write_all_at(&bytes, offset)
    }
}

/// Reads until `buf` is full or the file ends; the rest of `buf` is left untouched.
pub(crate) fn read_full_at(fd: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match fd.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backing(content: &[u8]) -> (tempfile::NamedTempFile, File) {
        let tmp = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(tmp.path(), content).expect("write");
        let fd = File::options()
            .read(true)
            .write(true)
            .open(tmp.path())
            .expect("open");
        (tmp, fd)
    }

    fn on_disk(tmp: &tempfile::NamedTempFile) -> Vec<u8> {
        std::fs::read(tmp.path()).expect("read back")
    }

    #[test]
    fn writes_stay_in_memory_until_persisted() {
        let (tmp, fd) = backing(b"hello world");
        let mut dirty = DirtyFile::new(11);
        dirty.write(&fd, 6, b"WORLD!").expect("write");
        assert_eq!(on_disk(&tmp), b"hello world");
        assert_eq!(dirty.read(&fd, 0, 100).expect("read"), b"hello WORLD!");
        assert_eq!(dirty.size(), 12);
        dirty.persist_all(&fd).expect("persist");
        assert_eq!(on_disk(&tmp), b"hello WORLD!");
    }

    #[test]
    fn writes_spanning_pages_and_holes_read_back() {
        let (tmp, fd) = backing(b"");
        let mut dirty = DirtyFile::new(0);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        dirty.write(&fd, 5000, &data).expect("write");
        assert_eq!(dirty.page_count(), 3);
        let all = dirty.read(&fd, 0, 20_000).expect("read");
        assert_eq!(all.len(), 15_000);
        assert!(all[..5000].iter().all(|&b| b == 0));
        assert_eq!(&all[5000..], &data[..]);
        dirty.persist_all(&fd).expect("persist");
        assert_eq!(on_disk(&tmp), all);
    }

    #[test]
    fn unsynced_truncate_hides_backing_bytes_until_persisted() {
        let (tmp, fd) = backing(&[7u8; 6000]);
        let mut dirty = DirtyFile::new(6000);
        dirty.set_size(100);
        dirty.set_size(5000);
        let all = dirty.read(&fd, 0, 10_000).expect("read");
        assert_eq!(all.len(), 5000);
        assert!(all[..100].iter().all(|&b| b == 7));
        assert!(all[100..].iter().all(|&b| b == 0));
        assert_eq!(on_disk(&tmp).len(), 6000);
        dirty.persist_all(&fd).expect("persist");
        assert_eq!(on_disk(&tmp), all);
    }

    #[test]
    fn a_persisted_range_is_a_prefix_of_the_write() {
        let (tmp, fd) = backing(b"");
        let mut dirty = DirtyFile::new(0);
        dirty.write(&fd, 0, b"abcdefgh").expect("write");
        assert_eq!(dirty.last_write(), Some((0, 8)));
        dirty.persist_range(&fd, 0, 3).expect("persist");
        assert_eq!(on_disk(&tmp), b"abc");
    }
}

//! Cut modes and injected failures: EIO after a cut, crash at the Nth fsync, ENOSPC/EIO
//! rules, seeded writeback and torn writes.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;

use powercut_fs::{CutMode, Error, FailErrno, FailOp, FailRule, FailTrigger};

use crate::{Fixture, fixture, read};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

fn errno(result: std::io::Result<impl Sized>) -> Option<i32> {
    result.err().and_then(|e| e.raw_os_error())
}

fn durable_file(fx: &Fixture, name: &str, data: &[u8]) {
    let mut f = File::create(fx.path(name)).expect("create");
    f.write_all(data).expect("write");
    f.sync_all().expect("fsync");
    File::open(&fx.mnt)
        .expect("dir")
        .sync_all()
        .expect("fsync dir");
}

#[test]
fn every_operation_fails_with_eio_between_the_cut_and_the_remount() {
    let mut fx = fixture();
    durable_file(&fx, "a", b"data");
    let open = File::options()
        .read(true)
        .write(true)
        .open(fx.path("a"))
        .expect("open");
    fx.fs.cut(CutMode::DropAll).expect("cut");
    assert_eq!(fx.fs.stats().state, "cut");
    assert_eq!(errno(open.write_at(b"x", 0)), Some(EIO));
    assert_eq!(errno(open.read_at(&mut [0; 4], 0)), Some(EIO));
    assert_eq!(errno(open.sync_all()), Some(EIO));
    assert_eq!(errno(std::fs::metadata(fx.path("b"))), Some(EIO));
    assert_eq!(errno(std::fs::read_dir(&fx.mnt)), Some(EIO));
    assert_eq!(errno(File::create(fx.path("c"))), Some(EIO));
    assert!(matches!(
        fx.fs.cut(CutMode::DropAll),
        Err(Error::AlreadyCut)
    ));
    drop(open);
    fx.fs.remount().expect("remount");
    assert_eq!(fx.fs.stats().state, "live");
    assert_eq!(read(&fx.path("a")).as_deref(), Some(&b"data"[..]));
}

#[test]
fn crash_at_fsync_cuts_the_power_at_the_nth_fsync() {
    let mut fx = fixture();
    durable_file(&fx, "a", b"");
    let f = File::options()
        .write(true)
        .open(fx.path("a"))
        .expect("open");
    fx.fs.crash_at_fsync(3).expect("arm");
    f.write_all_at(b"one", 0).expect("write");
    f.sync_data().expect("fsync 1");
    f.write_all_at(b"two", 3).expect("write");
    f.sync_data().expect("fsync 2");
    assert_eq!(fx.fs.stats().crash_at_fsync_remaining, Some(1));
    f.write_all_at(b"three", 6).expect("write");
    assert_eq!(
        errno(f.sync_data()),
        Some(EIO),
        "the 3rd fsync is where the power goes"
    );
    assert_eq!(fx.fs.stats().state, "cut");
    assert_eq!(fx.fs.stats().crash_at_fsync_remaining, None);
    drop(f);
    fx.fs.remount().expect("remount");
    assert_eq!(read(&fx.path("a")).as_deref(), Some(&b"onetwo"[..]));
}

#[test]
fn injected_enospc_fails_the_next_n_writes_then_clears() {
    let fx = fixture();
    durable_file(&fx, "a", b"");
    let f = File::options()
        .write(true)
        .open(fx.path("a"))
        .expect("open");
    let rule = FailRule {
        op: FailOp::Write,
        errno: FailErrno::Enospc,
        trigger: FailTrigger::Count(2),
    };
    fx.fs.fail(rule).expect("fail rule");
    assert_eq!(errno(f.write_at(b"x", 0)), Some(ENOSPC));
    assert_eq!(errno(f.write_at(b"x", 0)), Some(ENOSPC));
    f.write_all_at(b"ok", 0).expect("third write succeeds");
    assert_eq!(fx.fs.stats().injected_failures, 2);
    drop(f);
    assert_eq!(read(&fx.path("a")).as_deref(), Some(&b"ok"[..]));
}

#[test]
fn injected_fsync_eio_keeps_the_data_dirty_until_heal() {
    let mut fx = fixture();
    durable_file(&fx, "a", b"");
    let f = File::options()
        .write(true)
        .open(fx.path("a"))
        .expect("open");
    let rule = FailRule {
        op: FailOp::Fsync,
        errno: FailErrno::Eio,
        trigger: FailTrigger::Probability {
            probability: 1.0,
            seed: 1,
        },
    };
    fx.fs.fail(rule).expect("fail rule");
    f.write_all_at(b"pending", 0).expect("write");
    assert_eq!(errno(f.sync_all()), Some(EIO));
    assert_eq!(errno(f.sync_all()), Some(EIO));
    fx.fs.heal();
    f.sync_all().expect("fsync after heal");
    drop(f);
    fx.cut_and_remount();
    assert_eq!(read(&fx.path("a")).as_deref(), Some(&b"pending"[..]));
}

#[test]
fn writeback_persists_a_seeded_subset_of_dirty_pages() {
    const PAGES: usize = 64;
    let mut fx = fixture();
    durable_file(&fx, "a", &vec![b'o'; PAGES * 4096]);
    let f = File::options()
        .write(true)
        .open(fx.path("a"))
        .expect("open");
    f.write_all_at(&vec![b'n'; PAGES * 4096], 0).expect("write");
    drop(f);
    let mode = CutMode::Writeback {
        seed: 7,
        fraction: 0.5,
    };
    let report = fx.fs.cut(mode).expect("cut");
    fx.fs.remount().expect("remount");
    let data = read(&fx.path("a")).expect("file");
    let new_pages = data
        .chunks(4096)
        .filter(|p| p.iter().all(|b| *b == b'n'))
        .count();
    let old_pages = data
        .chunks(4096)
        .filter(|p| p.iter().all(|b| *b == b'o'))
        .count();
    assert_eq!(new_pages + old_pages, PAGES, "pages are persisted whole");
    assert_eq!(new_pages as u64, report.persisted_pages, "{report:?}");
    assert!(new_pages > 0 && old_pages > 0, "{report:?}");
}

#[test]
fn writeback_with_fraction_zero_or_one_keeps_nothing_or_everything() {
    for (fraction, expected) in [(0.0, b"old"), (1.0, b"new")] {
        let mut fx = fixture();
        durable_file(&fx, "a", b"old");
        std::fs::write(fx.path("a"), b"new").expect("write");
        fx.fs
            .cut(CutMode::Writeback { seed: 3, fraction })
            .expect("cut");
        fx.fs.remount().expect("remount");
        assert_eq!(
            read(&fx.path("a")).as_deref(),
            Some(&expected[..]),
            "{fraction}"
        );
    }
}

#[test]
fn a_torn_write_keeps_only_a_prefix_of_the_last_write() {
    let mut fx = fixture();
    durable_file(&fx, "db-wal", b"");
    let data: Vec<u8> = (0..8192u32).map(|i| (i % 253) as u8 + 1).collect();
    let f = File::options()
        .write(true)
        .open(fx.path("db-wal"))
        .expect("open");
    f.write_all_at(&data, 0).expect("write");
    drop(f);
    let mode = CutMode::TornWrite {
        file: "db-wal".into(),
        seed: 11,
    };
    let report = fx.fs.cut(mode).expect("cut");
    let torn = report.torn.expect("a torn write");
    assert_eq!((torn.offset, torn.len), (0, 8192));
    assert!(
        torn.kept < 8192 && torn.kept.is_multiple_of(512),
        "{torn:?}"
    );
    fx.fs.remount().expect("remount");
    let on_disk = read(&fx.path("db-wal")).expect("file");
    assert_eq!(on_disk, &data[..torn.kept as usize]);
}

#[test]
fn a_torn_write_on_an_unknown_file_is_refused_without_cutting() {
    let fx = fixture();
    let mode = CutMode::TornWrite {
        file: "nope".into(),
        seed: 1,
    };
    assert!(matches!(fx.fs.cut(mode), Err(Error::Invalid(_))));
    assert_eq!(fx.fs.stats().state, "live");
    assert_eq!(
        std::fs::metadata(fx.path("nope"))
            .map_err(|e| e.kind())
            .err(),
        Some(ErrorKind::NotFound)
    );
}

//! Data and directory-entry durability across a power cut.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::{Fixture, fixture, read};

fn fsync_dir(dir: &Path) {
    File::open(dir)
        .expect("open dir")
        .sync_all()
        .expect("fsync dir");
}

/// Creates `name` with `data`, fsyncs it and the mount root: a durable starting point.
fn durable_file(fx: &Fixture, name: &str, data: &[u8]) {
    let mut f = File::create(fx.path(name)).expect("create");
    f.write_all(data).expect("write");
    f.sync_all().expect("fsync");
    fsync_dir(&fx.mnt);
}

#[test]
fn a_write_without_fsync_is_gone_after_a_power_cut() {
    let mut fx = fixture();
    durable_file(&fx, "a", b"synced");
    let mut f = File::options()
        .append(true)
        .open(fx.path("a"))
        .expect("open");
    f.write_all(b" and not").expect("write");
    drop(f);
    assert_eq!(read(&fx.path("a")).as_deref(), Some(&b"synced and not"[..]));
    assert_eq!(fx.fs.stats().dirty_pages, 1);
    fx.cut_and_remount();
    assert_eq!(read(&fx.path("a")).as_deref(), Some(&b"synced"[..]));
    assert_eq!(fx.fs.stats().cuts, 1);
}

#[test]
fn a_write_with_fsync_survives_a_power_cut() {
    let mut fx = fixture();
    durable_file(&fx, "a", b"first");
    let mut f = File::options()
        .write(true)
        .open(fx.path("a"))
        .expect("open");
    f.write_all(b"FIRST, second").expect("write");
    f.sync_data().expect("fdatasync");
    drop(f);
    fx.cut_and_remount();
    assert_eq!(read(&fx.path("a")).as_deref(), Some(&b"FIRST, second"[..]));
}

#[test]
fn an_unsynced_truncate_is_undone_by_a_power_cut() {
    let mut fx = fixture();
    durable_file(&fx, "a", &[b'x'; 10_000]);
    File::options()
        .write(true)
        .open(fx.path("a"))
        .expect("open")
        .set_len(10)
        .expect("truncate");
    assert_eq!(read(&fx.path("a")).map(|d| d.len()), Some(10));
    fx.cut_and_remount();
    assert_eq!(read(&fx.path("a")).map(|d| d.len()), Some(10_000));
}

#[test]
fn a_new_file_without_a_directory_fsync_vanishes_even_if_the_file_was_fsynced() {
    let mut fx = fixture();
    let mut f = File::create(fx.path("new")).expect("create");
    f.write_all(b"data").expect("write");
    f.sync_all().expect("fsync");
    drop(f);
    fx.cut_and_remount();
    assert_eq!(read(&fx.path("new")), None);
}

#[test]
fn a_rename_without_a_directory_fsync_is_undone() {
    let mut fx = fixture();
    durable_file(&fx, "target", b"old");
    durable_file(&fx, "tmp", b"new");
    std::fs::rename(fx.path("tmp"), fx.path("target")).expect("rename");
    assert_eq!(read(&fx.path("target")).as_deref(), Some(&b"new"[..]));
    fx.cut_and_remount();
    assert_eq!(read(&fx.path("target")).as_deref(), Some(&b"old"[..]));
    assert_eq!(read(&fx.path("tmp")).as_deref(), Some(&b"new"[..]));
}

#[test]
fn a_rename_followed_by_a_directory_fsync_survives() {
    let mut fx = fixture();
    durable_file(&fx, "target", b"old");
    durable_file(&fx, "tmp", b"new");
    std::fs::rename(fx.path("tmp"), fx.path("target")).expect("rename");
    fsync_dir(&fx.mnt);
    fx.cut_and_remount();
    assert_eq!(read(&fx.path("target")).as_deref(), Some(&b"new"[..]));
    assert_eq!(read(&fx.path("tmp")), None);
}

#[test]
fn renaming_an_unsynced_temp_file_over_a_synced_file_can_leave_an_empty_file() {
    // The classic write-rename-without-fsync bug: the directory change is durable, the data
    // is not, so the disk holds an empty file where the old one was.
    let mut fx = fixture();
    durable_file(&fx, "config", b"old config");
    std::fs::write(fx.path("config.tmp"), b"new config").expect("write tmp");
    std::fs::rename(fx.path("config.tmp"), fx.path("config")).expect("rename");
    fsync_dir(&fx.mnt);
    fx.cut_and_remount();
    assert_eq!(read(&fx.path("config")).as_deref(), Some(&b""[..]));
}

#[test]
fn an_unlink_without_a_directory_fsync_is_undone() {
    let mut fx = fixture();
    durable_file(&fx, "a", b"keep me");
    std::fs::remove_file(fx.path("a")).expect("unlink");
    assert_eq!(read(&fx.path("a")), None);
    fx.cut_and_remount();
    assert_eq!(read(&fx.path("a")).as_deref(), Some(&b"keep me"[..]));
}

#[test]
fn a_directory_whose_parent_was_not_fsynced_vanishes_with_its_contents() {
    let mut fx = fixture();
    std::fs::create_dir(fx.path("d")).expect("mkdir");
    let mut f = File::create(fx.path("d/f")).expect("create");
    f.write_all(b"x").expect("write");
    f.sync_all().expect("fsync");
    fsync_dir(&fx.path("d"));
    fx.cut_and_remount();
    assert!(!fx.path("d").exists());
    assert!(!fx.backing.join("d").exists());
}

#[test]
fn the_stash_directory_is_hidden_from_the_mount() {
    let fx = fixture();
    durable_file(&fx, "a", b"x");
    std::fs::remove_file(fx.path("a")).expect("unlink");
    let names: Vec<_> = std::fs::read_dir(&fx.mnt)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(names.is_empty(), "{names:?}");
    assert!(File::create(fx.path(".powercut-fs-stash")).is_err());
}

#[test]
fn a_clean_remount_keeps_everything() {
    let mut fx = fixture();
    std::fs::create_dir(fx.path("d")).expect("mkdir");
    std::fs::write(fx.path("d/f"), b"unsynced but cleanly unmounted").expect("write");
    fx.fs.remount().expect("remount");
    assert_eq!(
        read(&fx.path("d/f")).as_deref(),
        Some(&b"unsynced but cleanly unmounted"[..])
    );
}

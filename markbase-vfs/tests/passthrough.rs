//! Handles passed through to the kernel ([`Vfs::pass_through`]): the kernel writes the
//! file without the core seeing it, and the core still records what it wrote and
//! reports the file as it is.

mod common;

use std::os::unix::fs::FileExt;
use std::time::Duration;

use markbase_vfs::{NodeId, OpenFlags, Vfs};

#[test]
fn writes_the_core_never_saw_are_recorded_at_flush_and_close() {
    let dir = tempfile::tempdir().unwrap();
    common::raw_catalog(dir.path());
    // Attributes trusted for a minute, as a mount does for a second.
    let vfs = common::reopen(dir.path(), |config| {
        config.attr_ttl = Duration::from_secs(60);
    });
    let id = common::write_file(&vfs, NodeId::ROOT, "clip.mov", b"first take");
    // The stat of the file is cached, as any getattr leaves it.
    assert_eq!(vfs.getattr(id).unwrap().size, 10);

    let opened = vfs.open_node(id, OpenFlags::write()).unwrap();
    let passed = vfs.pass_through(opened.handle).unwrap();
    // What the kernel does on the passed file: the core is not told.
    let frame = vec![9u8; 1 << 20];
    passed.file().write_all_at(&frame, 0).unwrap();
    // The core looks at the file, not at a stat it cached, each time.
    assert_eq!(vfs.getattr(id).unwrap().size, 1 << 20);
    // Another program opens the file meanwhile, as a player would (the core
    // resolves the node again and caches what it saw), then the kernel writes on.
    let reader = vfs.open_node(id, OpenFlags::read()).unwrap();
    assert_eq!(vfs.getattr(id).unwrap().size, 1 << 20);
    passed.file().write_all_at(&frame, 1 << 20).unwrap();
    assert_eq!(vfs.getattr(id).unwrap().size, 2 << 20);
    vfs.release(reader.handle).unwrap();
    vfs.flush(opened.handle).unwrap();
    assert_eq!(vfs.node(id).unwrap().recorded_size, 2 << 20);

    passed.file().write_all_at(&frame, 2 << 20).unwrap();
    drop(passed);
    vfs.release(opened.handle).unwrap();
    let again = Vfs::open(common::config(&dir.path().join(common::CATALOG))).unwrap();
    assert_eq!(again.node(id).unwrap().recorded_size, 3 << 20);
    assert_eq!(common::read_all(&again, id), frame.repeat(3));
    assert!(again.check().unwrap().is_clean());
}

#[test]
fn a_read_only_handle_passed_through_serves_the_node_s_file() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let id = common::write_file(&vfs, NodeId::ROOT, "a.txt", b"hello");
    let one = vfs.open_node(id, OpenFlags::read()).unwrap();
    let two = vfs.open_node(id, OpenFlags::write()).unwrap();
    let (one_passed, two_passed) = (
        vfs.pass_through(one.handle).unwrap(),
        vfs.pass_through(two.handle).unwrap(),
    );
    // Two handles of one node are served by one file, and say so.
    assert_eq!(one_passed.identity(), two_passed.identity());
    let mut bytes = [0u8; 5];
    one_passed.file().read_exact_at(&mut bytes, 0).unwrap();
    assert_eq!(&bytes, b"hello");
    vfs.release(one.handle).unwrap();
    vfs.release(two.handle).unwrap();
    // Released handles cannot be passed through.
    assert!(vfs.pass_through(one.handle).is_err());
}

//! `VfsFile`: an open catalog file used as a `std::fs::File` is.

mod common;

use std::io::{self, Read, Seek, SeekFrom, Write};

use common::{empty_vfs, write_file};
use markbase_vfs::{NodeId, OpenFlags, VfsFile};

#[test]
fn reads_seeks_and_writes_like_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = empty_vfs(dir.path());
    write_file(&vfs, NodeId::ROOT, "clip.mov", b"0123456789");

    let mut file = VfsFile::open(&vfs, "/clip.mov", OpenFlags::write()).unwrap();
    let mut head = [0; 4];
    file.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"0123");
    assert_eq!(file.seek(SeekFrom::Current(2)).unwrap(), 6);
    assert_eq!(file.seek(SeekFrom::End(-1)).unwrap(), 9);
    let err = file.seek(SeekFrom::Current(-20)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    file.seek(SeekFrom::Start(8)).unwrap();
    file.write_all(b"ABCD").unwrap();
    file.flush().unwrap();
    assert_eq!(file.attr().unwrap().size, 12);
    let mut at = [0; 3];
    assert_eq!(file.read_at(&mut at, 7).unwrap(), 3);
    assert_eq!(&at, b"7AB");
    drop(file);
    assert_eq!(
        vfs.open_handles(),
        0,
        "dropping the file released its handle"
    );

    let mut all = Vec::new();
    let mut file = VfsFile::open(&vfs, "/clip.mov", OpenFlags::read()).unwrap();
    io::copy(&mut file, &mut all).unwrap();
    assert_eq!(all, b"01234567ABCD");
}

#[test]
fn append_writes_at_the_end_and_read_only_files_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = empty_vfs(dir.path());
    let mut log = VfsFile::open(&vfs, "/log.txt", OpenFlags::write().create()).unwrap();
    log.write_all(b"one\n").unwrap();
    let mut again = VfsFile::open(&vfs, "/log.txt", OpenFlags::write().append()).unwrap();
    log.write_all(b"two\n").unwrap();
    again.write_all(b"three\n").unwrap();
    drop((log, again));

    let mut text = String::new();
    let mut file = VfsFile::open(&vfs, "/log.txt", OpenFlags::read()).unwrap();
    file.read_to_string(&mut text).unwrap();
    assert_eq!(text, "one\ntwo\nthree\n");
    let err = file.write(b"no").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        None,
        "the core's message is kept: {err}"
    );
    assert_eq!(
        io::Error::from_raw_os_error(libc::EBADF).kind(),
        err.kind(),
        "{err}"
    );
    assert!(err.to_string().contains("not open for writing"), "{err}");
}

#[test]
fn opening_follows_the_core_s_rules() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = empty_vfs(dir.path());
    write_file(&vfs, NodeId::ROOT, "clip.mov", b"frames");
    let errno = |path, flags| VfsFile::open(&vfs, path, flags).unwrap_err().errno();
    assert_eq!(errno("/missing", OpenFlags::read()), libc::ENOENT);
    assert_eq!(
        errno("/clip.mov", OpenFlags::write().exclusive()),
        libc::EEXIST
    );
    assert_eq!(errno("/", OpenFlags::read()), libc::EISDIR);
    assert_eq!(
        errno("/new", OpenFlags::write().create().replace()),
        libc::EINVAL
    );
    let file = VfsFile::open(&vfs, "/clip.mov", OpenFlags::write().truncate()).unwrap();
    assert_eq!(file.attr().unwrap().size, 0);
}

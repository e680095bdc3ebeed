//! Every NFSv3 procedure of `markbase-nfs`, and its errors, through a real NFSv3
//! client (`nfs3_client`) against a server started in this process over a temp
//! catalog: what each call answers, that the catalog (read with plain SQL) agrees
//! after namespace calls, that listings survive changes between pages, that handles
//! of removed, damaged or foreign nodes are refused, and that changes another program
//! makes to the catalog are seen.

mod common;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use markbase_testkit::{pattern_byte, write_pattern_file};
use nfs3_client::MountError;
use nfs3_types::nfs3::*;
use nfs3_types::xdr_codec::Opaque;

/// `len` bytes of the pattern made with `seed`.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| pattern_byte(seed, i)).collect()
}

/// An NFS time in nanoseconds.
fn ns(time: nfstime3) -> i64 {
    i64::from(time.seconds) * 1_000_000_000 + i64::from(time.nseconds)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Asserts that `result` failed with `expected`.
#[track_caller]
fn assert_status<T: std::fmt::Debug>(result: Result<T, nfsstat3>, expected: nfsstat3) {
    match result {
        Err(stat) => assert_eq!(stat, expected),
        Ok(value) => panic!("expected {expected:?}, got {value:?}"),
    }
}

/// The names in `listing`.
fn names(listing: &[Listed]) -> Vec<&str> {
    listing.iter().map(|entry| entry.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_and_getattr_of_the_root() {
    let served = Served::start().await;
    let mut client = served.client().await;
    client.null().await;
    let root = client.root().await;
    let attr = client.getattr(&root).await.unwrap();
    assert_eq!(attr.type_, ftype3::NF3DIR);
    assert_eq!(attr.fileid, ROOT_ID as u64);
    assert_eq!(node_id(&root), ROOT_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setattr_truncates_extends_sets_times_and_takes_a_mode() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let data = pattern(1, 10_000);
    let file = client.new_file(&root, b"f", &data).await;

    let attr = client.setattr(&file, size_attr(4_000)).await.unwrap();
    assert_eq!(attr.size, 4_000);
    assert_eq!(client.read_all(&file).await, data[..4_000]);

    let attr = client.setattr(&file, size_attr(20_000)).await.unwrap();
    assert_eq!(attr.size, 20_000);
    let read = client.read_all(&file).await;
    assert_eq!(read.len(), 20_000);
    assert_eq!(read[..4_000], data[..4_000]);
    assert!(
        read[4_000..].iter().all(|&b| b == 0),
        "an extension reads zeros"
    );

    let client_time = nfstime3 {
        seconds: 1_500_000_000,
        nseconds: 123_456_789,
    };
    let set_client = sattr3 {
        mtime: set_mtime::SET_TO_CLIENT_TIME(client_time),
        ..sattr3::default()
    };
    let attr = client.setattr(&file, set_client).await.unwrap();
    assert_eq!(attr.mtime, client_time);
    assert_eq!(client.getattr(&file).await.unwrap().mtime, client_time);

    let before = now_ns();
    let set_server = sattr3 {
        mtime: set_mtime::SET_TO_SERVER_TIME,
        ..sattr3::default()
    };
    let attr = client.setattr(&file, set_server).await.unwrap();
    let after = now_ns();
    assert!(
        (before..=after).contains(&ns(attr.mtime)),
        "server time {} not within [{before}, {after}]",
        ns(attr.mtime)
    );

    let mode = sattr3 {
        mode: set_mode3::Some(0o600),
        ..sattr3::default()
    };
    let attr = client.setattr(&file, mode).await.unwrap();
    assert_eq!(attr.type_, ftype3::NF3REG);
    assert_eq!(attr.size, 20_000, "a mode change keeps the size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_of_names_dots_and_errors() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let sub = client.mkdir(&root, b"sub").await.unwrap();
    let file = client.new_file(&sub, b"file", b"x").await;

    assert_eq!(client.lookup(&root, b"sub").await.unwrap(), sub);
    assert_eq!(client.lookup(&sub, b"file").await.unwrap(), file);
    assert_eq!(client.lookup(&sub, b".").await.unwrap(), sub);
    assert_eq!(client.lookup(&sub, b"..").await.unwrap(), root);
    assert_eq!(
        client.lookup(&root, b"..").await.unwrap(),
        root,
        "`..` of the root is the root"
    );
    assert_status(
        client.lookup(&sub, b"missing").await,
        nfsstat3::NFS3ERR_NOENT,
    );
    assert_status(client.lookup(&file, b"x").await, nfsstat3::NFS3ERR_NOTDIR);
    assert_status(client.lookup(&file, b".").await, nfsstat3::NFS3ERR_NOTDIR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_grants_reads_and_writes_of_a_writable_catalog() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let file = client.new_file(&root, b"f", b"x").await;
    let all = ACCESS3_READ
        | ACCESS3_LOOKUP
        | ACCESS3_MODIFY
        | ACCESS3_EXTEND
        | ACCESS3_DELETE
        | ACCESS3_EXECUTE;
    let granted = client.access(&file, all).await.unwrap();
    for bit in [ACCESS3_READ, ACCESS3_MODIFY, ACCESS3_EXTEND] {
        assert_ne!(granted & bit, 0, "file access {granted:#x} lacks {bit:#x}");
    }
    assert_eq!(granted & !all, 0, "more granted than asked: {granted:#x}");
    // What the mode allows the server's user (root here): a 0644 file is not
    // executable, and DELETE and LOOKUP are a directory's.
    assert_eq!(
        granted & (ACCESS3_EXECUTE | ACCESS3_DELETE | ACCESS3_LOOKUP),
        0,
        "file access {granted:#x}"
    );
    let granted = client.access(&root, ACCESS3_LOOKUP | ACCESS3_MODIFY).await;
    assert_eq!(granted.unwrap(), ACCESS3_LOOKUP | ACCESS3_MODIFY);
    assert_eq!(
        client.access(&root, all).await.unwrap(),
        all & !ACCESS3_EXECUTE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_at_offsets_to_and_past_the_end() {
    const SIZE: u64 = 3 * 1024 * 1024 + 12_345;
    // An imported file: its bytes outside the store, its row written as the
    // importer would.
    let served = Served::start_with(|raw, dir| {
        write_pattern_file(&dir.join("big.bin"), SIZE, 7).unwrap();
        raw.insert(
            2,
            Some(ROOT_ID),
            "big.bin",
            "file",
            SIZE as i64,
            "[\"big.bin\"]",
        )
        .unwrap();
    })
    .await;
    let mut client = served.client().await;
    let root = client.root().await;
    let file = client.lookup(&root, b"big.bin").await.unwrap();
    let expected = |offset: u64, len: u64| -> Vec<u8> {
        (offset..offset + len).map(|i| pattern_byte(7, i)).collect()
    };

    let (data, eof) = client.read(&file, 0, 1 << 20).await.unwrap();
    assert_eq!(data.len(), 1 << 20, "a 1 MiB READ is answered whole");
    assert!(!eof);
    assert_eq!(data, expected(0, 1 << 20));

    let (data, eof) = client.read(&file, 1_000_003, 5_000).await.unwrap();
    assert_eq!((data, eof), (expected(1_000_003, 5_000), false));

    let (data, eof) = client.read(&file, SIZE - 100, 100).await.unwrap();
    assert_eq!(data, expected(SIZE - 100, 100));
    assert!(eof, "a READ that ends at the end is at eof");

    let (data, eof) = client.read(&file, SIZE - 100, 1 << 20).await.unwrap();
    assert_eq!((data, eof), (expected(SIZE - 100, 100), true));

    let (data, eof) = client.read(&file, SIZE + 10, 4096).await.unwrap();
    assert!(data.is_empty() && eof, "past the end: nothing, at eof");

    let (data, eof) = client.read(&file, 0, 4 << 20).await.unwrap();
    assert!(
        data.len() <= 1 << 20,
        "READ larger than rtmax answered {}",
        data.len()
    );
    assert!(!eof);
    assert_eq!(data, expected(0, data.len() as u64));

    assert_eq!(client.read_all(&file).await, expected(0, SIZE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_answers_how_it_was_committed_and_the_new_size() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let file = client
        .create(&root, b"w", createhow3::GUARDED(no_change()))
        .await
        .unwrap();

    let unstable = client
        .write(&file, 0, &pattern(1, 100_000), stable_how::UNSTABLE)
        .await
        .unwrap();
    assert_eq!(unstable.committed, stable_how::UNSTABLE);
    assert_eq!(unstable.count, 100_000);
    assert_eq!(unstable.file_wcc.after.unwrap().size, 100_000);

    let file_sync = client
        .write(&file, 200_000, b"tail", stable_how::FILE_SYNC)
        .await
        .unwrap();
    assert_eq!(file_sync.committed, stable_how::FILE_SYNC);
    assert_eq!(file_sync.file_wcc.after.unwrap().size, 200_004);

    let data_sync = client
        .write(&file, 10, b"middle", stable_how::DATA_SYNC)
        .await
        .unwrap();
    assert_eq!(data_sync.committed, stable_how::FILE_SYNC);
    assert_eq!(data_sync.file_wcc.after.unwrap().size, 200_004);

    assert_eq!(unstable.verf, file_sync.verf, "one verifier per server run");
    assert_eq!(client.commit(&file).await.unwrap(), unstable.verf);

    let mut expected = pattern(1, 100_000);
    expected[10..16].copy_from_slice(b"middle");
    expected.resize(200_000, 0);
    expected.extend_from_slice(b"tail");
    assert_eq!(client.read_all(&file).await, expected);

    let big = pattern(2, 1 << 20);
    let written = client
        .write(&file, 0, &big, stable_how::UNSTABLE)
        .await
        .unwrap();
    assert_eq!(written.count, 1 << 20, "a 1 MiB WRITE is taken whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_unchecked_guarded_and_exclusive() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let file = client.new_file(&root, b"f", b"hello world").await;

    let reopened = client
        .create(&root, b"f", createhow3::UNCHECKED(no_change()))
        .await
        .unwrap();
    assert_eq!(reopened, file, "UNCHECKED of an existing file opens it");
    assert_eq!(client.read_all(&file).await, b"hello world");

    let truncated = client
        .create(&root, b"f", createhow3::UNCHECKED(size_attr(0)))
        .await
        .unwrap();
    assert_eq!(truncated, file);
    assert_eq!(client.getattr(&file).await.unwrap().size, 0);

    let fresh = client
        .create(&root, b"new", createhow3::UNCHECKED(no_change()))
        .await
        .unwrap();
    assert_ne!(fresh, file);

    client
        .write(&file, 0, b"kept", stable_how::FILE_SYNC)
        .await
        .unwrap();
    assert_status(
        client
            .create(&root, b"f", createhow3::GUARDED(size_attr(0)))
            .await,
        nfsstat3::NFS3ERR_EXIST,
    );
    assert_eq!(
        client.read_all(&file).await,
        b"kept",
        "GUARDED kept the file"
    );

    let verifier = createverf3(*b"verifier");
    let exclusive = client
        .create(&root, b"x", createhow3::EXCLUSIVE(verifier))
        .await
        .unwrap();
    let retried = client
        .create(&root, b"x", createhow3::EXCLUSIVE(verifier))
        .await
        .unwrap();
    assert_eq!(
        retried, exclusive,
        "a retry with the same verifier succeeds"
    );
    assert_status(
        client
            .create(
                &root,
                b"x",
                createhow3::EXCLUSIVE(createverf3(*b"another!")),
            )
            .await,
        nfsstat3::NFS3ERR_EXIST,
    );
    assert_status(
        client
            .create(&root, b"f", createhow3::EXCLUSIVE(verifier))
            .await,
        nfsstat3::NFS3ERR_EXIST,
    );
    // A client sets the times after an EXCLUSIVE create; the file is then usable.
    let attr = client
        .setattr(
            &exclusive,
            sattr3 {
                mtime: set_mtime::SET_TO_SERVER_TIME,
                ..sattr3::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((attr.type_, attr.size), (ftype3::NF3REG, 0));

    let sql = served.sql();
    for name in ["f", "new", "x"] {
        let (id, kind) = catalog_child(&sql, ROOT_ID, name).expect(name);
        assert_eq!(kind, "file");
        assert_eq!(
            id,
            node_id(&client.lookup(&root, name.as_bytes()).await.unwrap())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mkdir_remove_and_rmdir_keep_files_and_dirs_apart() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let dir = client.mkdir(&root, b"d").await.unwrap();
    assert_eq!(client.getattr(&dir).await.unwrap().type_, ftype3::NF3DIR);
    assert_status(client.mkdir(&root, b"d").await, nfsstat3::NFS3ERR_EXIST);
    client.new_file(&dir, b"inside", b"1").await;
    client.new_file(&root, b"file", b"2").await;

    assert!(client.remove(&root, b"d").await.is_err(), "REMOVE of a dir");
    assert_status(client.rmdir(&root, b"file").await, nfsstat3::NFS3ERR_NOTDIR);
    assert_status(client.rmdir(&root, b"d").await, nfsstat3::NFS3ERR_NOTEMPTY);
    assert_status(
        client.remove(&root, b"missing").await,
        nfsstat3::NFS3ERR_NOENT,
    );
    assert_status(
        client.rmdir(&root, b"missing").await,
        nfsstat3::NFS3ERR_NOENT,
    );
    let sql = served.sql();
    let dir_id = node_id(&dir);
    assert_eq!(
        catalog_child(&sql, ROOT_ID, "d"),
        Some((dir_id, "dir".into()))
    );
    assert!(catalog_child(&sql, dir_id, "inside").is_some());
    assert!(catalog_child(&sql, ROOT_ID, "file").is_some());

    client.remove(&dir, b"inside").await.unwrap();
    client.rmdir(&root, b"d").await.unwrap();
    client.remove(&root, b"file").await.unwrap();
    assert_eq!(catalog_child(&sql, ROOT_ID, "d"), None);
    assert_eq!(catalog_child(&sql, dir_id, "inside"), None);
    assert_eq!(catalog_child(&sql, ROOT_ID, "file"), None);
    assert_status(client.getattr(&dir).await, nfsstat3::NFS3ERR_STALE);
    assert!(client.list(&root, true, 4096).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_replaces_moves_across_dirs_and_refuses_a_loop() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let a = client.mkdir(&root, b"a").await.unwrap();
    let b = client.mkdir(&root, b"b").await.unwrap();
    let inner = client.mkdir(&a, b"inner").await.unwrap();
    let src = client.new_file(&root, b"src", b"source").await;
    client.new_file(&root, b"dst", b"old target").await;

    client.rename(&root, b"src", &root, b"dst").await.unwrap();
    assert_status(client.lookup(&root, b"src").await, nfsstat3::NFS3ERR_NOENT);
    assert_eq!(client.lookup(&root, b"dst").await.unwrap(), src);
    assert_eq!(client.read_all(&src).await, b"source");

    client.rename(&root, b"dst", &b, b"moved").await.unwrap();
    assert_eq!(client.lookup(&b, b"moved").await.unwrap(), src);
    assert_eq!(client.read_all(&src).await, b"source");

    assert_status(
        client.rename(&root, b"a", &inner, b"a").await,
        nfsstat3::NFS3ERR_INVAL,
    );
    assert_status(
        client.rename(&root, b"missing", &root, b"x").await,
        nfsstat3::NFS3ERR_NOENT,
    );

    client.rename(&root, b"a", &b, b"a2").await.unwrap();
    assert_eq!(client.lookup(&inner, b"..").await.unwrap(), {
        client.lookup(&b, b"a2").await.unwrap()
    });

    let sql = served.sql();
    assert_eq!(catalog_child(&sql, ROOT_ID, "src"), None);
    assert_eq!(catalog_child(&sql, ROOT_ID, "dst"), None);
    assert_eq!(
        catalog_child(&sql, node_id(&b), "moved"),
        Some((node_id(&src), "file".into()))
    );
    assert_eq!(
        catalog_child(&sql, node_id(&b), "a2"),
        Some((node_id(&a), "dir".into()))
    );
    assert_eq!(
        catalog_child(&sql, node_id(&a), "inner").map(|c| c.0),
        Some(node_id(&inner))
    );
    let files: i64 = sql
        .query_row("SELECT count(*) FROM nodes WHERE kind = 'file'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(files, 1, "the replaced target is gone from the catalog");
}

/// Lists `dir` a few entries at a time, and between pages creates a file and
/// removes one that was listed or not yet listed; the entries that existed
/// throughout must each come exactly once, and nothing may come twice.
async fn list_while_changing(plus: bool) {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let dir = client.mkdir(&root, b"d").await.unwrap();
    let mut kept = Vec::new();
    for i in 0..40 {
        let kept_name = format!("keep-{i:02}");
        client.new_file(&dir, kept_name.as_bytes(), b"").await;
        kept.push(kept_name);
        client
            .new_file(&dir, format!("gone-{i:02}").as_bytes(), b"")
            .await;
    }

    let mut seen: HashMap<String, usize> = HashMap::new();
    let (mut cookie, mut verifier) = (0, cookieverf3::default());
    let mut pages = 0;
    let mut removed = 0;
    loop {
        let page = if plus {
            client.readdirplus(&dir, cookie, verifier, 700).await
        } else {
            client.readdir(&dir, cookie, verifier, 300).await
        }
        .unwrap_or_else(|stat| panic!("page {pages} after cookie {cookie}: {stat:?}"));
        pages += 1;
        verifier = page.verifier;
        for entry in &page.entries {
            *seen.entry(entry.name.clone()).or_default() += 1;
        }
        if page.eof {
            break;
        }
        let last = page.entries.last().expect("a page before eof has entries");
        cookie = last.cookie;
        // The entry the cookie came from, when it is one that may go.
        if last.name.starts_with("gone-") {
            client.remove(&dir, last.name.as_bytes()).await.unwrap();
        }
        // One not listed yet, and a new one.
        if removed < 40 {
            let name = format!("gone-{:02}", 39 - removed);
            let _ = client.remove(&dir, name.as_bytes()).await;
            removed += 1;
        }
        client
            .new_file(&dir, format!("new-{pages:03}").as_bytes(), b"")
            .await;
        assert!(pages < 1000, "the listing does not end");
    }
    assert!(pages > 5, "only {pages} pages: the count did not page");
    for name in &kept {
        assert_eq!(
            seen.get(name),
            Some(&1),
            "{name}: seen {:?}",
            seen.get(name)
        );
    }
    for (name, times) in &seen {
        assert_eq!(*times, 1, "{name} listed {times} times");
    }
    assert_eq!(seen.get("."), Some(&1));
    assert_eq!(seen.get(".."), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdir_pages_survive_inserts_and_deletes() {
    list_while_changing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readdirplus_pages_survive_inserts_and_deletes() {
    list_while_changing(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_of_ten_thousand_entries_is_listed_whole() {
    const ENTRIES: i64 = 10_000;
    let served = Served::start_with(|raw, _| {
        raw.conn.execute_batch("BEGIN").unwrap();
        raw.dir(2, ROOT_ID, "big").unwrap();
        for i in 0..ENTRIES {
            raw.insert(10 + i, Some(2), &format!("entry-{i:05}"), "file", 0, "[]")
                .unwrap();
        }
        raw.conn.execute_batch("COMMIT").unwrap();
    })
    .await;
    let mut client = served.client().await;
    let root = client.root().await;
    let big = client.lookup(&root, b"big").await.unwrap();
    for plus in [false, true] {
        let listed = client.list(&big, plus, 32 * 1024).await;
        let mut got: Vec<u64> = listed.iter().map(|entry| entry.fileid).collect();
        got.sort_unstable();
        let expected: Vec<u64> = (0..ENTRIES).map(|i| 10 + i as u64).collect();
        assert_eq!(
            got.len(),
            expected.len(),
            "READDIR{}",
            if plus { "PLUS" } else { "" }
        );
        assert_eq!(got, expected);
        for entry in &listed {
            assert_eq!(entry.name, format!("entry-{:05}", entry.fileid - 10));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsstat_fsinfo_and_pathconf_describe_the_store() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let res = client
        .raw()
        .fsstat(&FSSTAT3args {
            fsroot: root.clone(),
        })
        .await
        .unwrap();
    let fs = ok(res).unwrap();
    let vfs = rustix_statvfs(served.dir.path());
    let tolerance = 256 << 20; // Other tests write while this one runs.
    assert_eq!(fs.tbytes, vfs.0, "total bytes");
    assert!(
        fs.fbytes.abs_diff(vfs.1) < tolerance,
        "free {} vs {}",
        fs.fbytes,
        vfs.1
    );
    assert!(
        fs.abytes.abs_diff(vfs.2) < tolerance,
        "avail {} vs {}",
        fs.abytes,
        vfs.2
    );
    assert!(fs.abytes <= fs.fbytes && fs.fbytes <= fs.tbytes);

    let res = client
        .raw()
        .fsinfo(&FSINFO3args {
            fsroot: root.clone(),
        })
        .await
        .unwrap();
    let info = ok(res).unwrap();
    assert_eq!(
        (info.rtmax, info.rtpref, info.wtmax, info.wtpref),
        (1 << 20, 1 << 20, 1 << 20, 1 << 20)
    );
    assert!(
        info.maxfilesize >= 1 << 40,
        "maxfilesize {}",
        info.maxfilesize
    );
    assert_eq!(info.properties & (FSF3_LINK | FSF3_SYMLINK), 0);

    let res = client
        .raw()
        .pathconf(&PATHCONF3args {
            object: root.clone(),
        })
        .await
        .unwrap();
    let conf = ok(res).unwrap();
    assert_eq!(conf.name_max, 255);
    assert!(conf.no_trunc);
    assert!(!conf.case_insensitive && conf.case_preserving);
}

/// Total, free and available bytes of the filesystem holding `path`.
fn rustix_statvfs(path: &std::path::Path) -> (u64, u64, u64) {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut vfs) }, 0);
    let block = vfs.f_frsize;
    (
        vfs.f_blocks * block,
        vfs.f_bfree * block,
        vfs.f_bavail * block,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_makes_unstable_writes_durable_in_the_store() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let file = client
        .create(&root, b"c.bin", createhow3::GUARDED(no_change()))
        .await
        .unwrap();
    let data = pattern(3, 300_000);
    let write = client
        .write(&file, 0, &data, stable_how::UNSTABLE)
        .await
        .unwrap();
    assert_eq!(client.commit(&file).await.unwrap(), write.verf);
    let alias: String = served
        .sql()
        .query_row(
            "SELECT json_extract(aliases_json, '$[0]') FROM nodes WHERE id = ?1",
            [node_id(&file)],
            |row| row.get(0),
        )
        .unwrap();
    let stored = std::fs::read(served.dir.path().join(&alias)).unwrap();
    assert_eq!(stored, data, "the store file after COMMIT");
    assert!(served.dir.path().join(alias).starts_with(served.store()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_readlink_mknod_and_link_are_not_supported() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let file = client.new_file(&root, b"f", b"x").await;
    let symlink = client
        .raw()
        .symlink(&SYMLINK3args {
            where_: diropargs3 {
                dir: root.clone(),
                name: name(b"link"),
            },
            symlink: symlinkdata3 {
                symlink_attributes: no_change(),
                symlink_data: nfspath3(Opaque::borrowed(b"f")),
            },
        })
        .await
        .unwrap();
    assert_eq!(status_of(&symlink), nfsstat3::NFS3ERR_NOTSUPP);
    let readlink = client
        .raw()
        .readlink(&READLINK3args {
            symlink: file.clone(),
        })
        .await
        .unwrap();
    assert_eq!(status_of(&readlink), nfsstat3::NFS3ERR_NOTSUPP);
    let mknod = client
        .raw()
        .mknod(&MKNOD3args {
            where_: diropargs3 {
                dir: root.clone(),
                name: name(b"fifo"),
            },
            what: mknoddata3::NF3FIFO(no_change()),
        })
        .await
        .unwrap();
    assert_eq!(status_of(&mknod), nfsstat3::NFS3ERR_NOTSUPP);
    let link = client
        .raw()
        .link(&LINK3args {
            file: file.clone(),
            link: diropargs3 {
                dir: root.clone(),
                name: name(b"hard"),
            },
        })
        .await
        .unwrap();
    assert_eq!(status_of(&link), nfsstat3::NFS3ERR_NOTSUPP);
    let listed = client.list(&root, true, 4096).await;
    assert_eq!(names(&listed), ["f"], "nothing was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_of_removed_damaged_and_foreign_nodes_are_refused() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let file = client.new_file(&root, b"f", b"bytes").await;
    let dir = client.mkdir(&root, b"d").await.unwrap();

    let mut damaged = file.data.to_vec();
    damaged[12] ^= 0x40;
    let damaged = nfs_fh3 {
        data: Opaque::owned(damaged),
    };
    assert_status(client.getattr(&damaged).await, nfsstat3::NFS3ERR_BADHANDLE);
    assert_status(
        client.read(&damaged, 0, 10).await,
        nfsstat3::NFS3ERR_BADHANDLE,
    );
    let short = nfs_fh3 {
        data: Opaque::owned(file.data[..20].to_vec()),
    };
    assert_status(client.getattr(&short).await, nfsstat3::NFS3ERR_BADHANDLE);

    let other = Served::start().await;
    let mut other_client = other.client().await;
    let other_root = other_client.root().await;
    let foreign = other_client.new_file(&other_root, b"f", b"other").await;
    for handle in [&foreign, &other_root] {
        let refused = client.getattr(handle).await;
        assert!(
            matches!(
                refused,
                Err(nfsstat3::NFS3ERR_STALE | nfsstat3::NFS3ERR_BADHANDLE)
            ),
            "a handle of another catalog: {refused:?}"
        );
    }

    // Another program removes the rows.
    let sql = served.sql();
    sql.execute(
        "DELETE FROM nodes WHERE id IN (?1, ?2)",
        [node_id(&file), node_id(&dir)],
    )
    .unwrap();
    assert_status(client.getattr(&file).await, nfsstat3::NFS3ERR_STALE);
    assert_status(client.read(&file, 0, 10).await, nfsstat3::NFS3ERR_STALE);
    assert_status(
        client.write(&file, 0, b"x", stable_how::FILE_SYNC).await,
        nfsstat3::NFS3ERR_STALE,
    );
    assert_status(client.lookup(&dir, b"x").await, nfsstat3::NFS3ERR_STALE);
    assert_status(
        client
            .readdirplus(&dir, 0, cookieverf3::default(), 4096)
            .await
            .map(|_| ()),
        nfsstat3::NFS3ERR_STALE,
    );
    assert_status(
        client
            .create(&dir, b"x", createhow3::GUARDED(no_change()))
            .await,
        nfsstat3::NFS3ERR_STALE,
    );
    assert_status(client.lookup(&root, b"f").await, nfsstat3::NFS3ERR_NOENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_insert_changes_the_directory_mtime_and_is_listed() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let dir = client.mkdir(&root, b"d").await.unwrap();
    client.new_file(&dir, b"ours", b"x").await;
    let before = client.getattr(&dir).await.unwrap();
    assert_eq!(names(&client.list(&dir, false, 4096).await), ["ours"]);

    let sql = served.sql();
    sql.execute(
        "INSERT INTO nodes (parent_id, name, kind, size, mtime_ns, aliases_json) \
         VALUES (?1, 'theirs', 'file', 0, 0, '[]')",
        [node_id(&dir)],
    )
    .unwrap();

    let after = client.getattr(&dir).await.unwrap();
    assert_ne!(
        (after.mtime, after.ctime),
        (before.mtime, before.ctime),
        "a client would keep its cached listing"
    );
    let mut listed = names(&client.list(&dir, true, 4096).await)
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    listed.sort();
    assert_eq!(listed, ["ours", "theirs"]);
    assert!(client.lookup(&dir, b"theirs").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_of_the_root_a_subdirectory_and_refusals() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let sub = client.mkdir(&root, b"sub").await.unwrap();
    let deeper = client.mkdir(&sub, b"deeper").await.unwrap();
    client.new_file(&sub, b"file", b"x").await;

    assert_eq!(client.mount("/").await.unwrap(), root);
    assert_eq!(client.mount("/sub").await.unwrap(), sub);
    assert_eq!(client.mount("/sub/").await.unwrap(), sub);
    assert_eq!(client.mount("/sub/deeper").await.unwrap(), deeper);
    for refused in ["/missing", "/sub/file", "/sub/missing/x"] {
        match client.mount(refused).await {
            Err(MountError::Denied(_)) => {}
            other => panic!("MNT {refused}: {other:?}"),
        }
    }
    // A mounted subdirectory works as a root.
    let mounted = client.mount("/sub").await.unwrap();
    assert!(client.lookup(&mounted, b"file").await.is_ok());
}

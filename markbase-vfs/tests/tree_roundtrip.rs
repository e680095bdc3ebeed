//! Property: a random folder tree, imported and walked through the Vfs, equals the
//! source tree: names, kinds, sizes and every byte (through `read` and `read_at`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use markbase_testkit::{pattern_byte, write_pattern_file};
use markbase_vfs::{
    NodeId, NodeKind, Vfs,
    handles::FileHandle,
    import::{ImportOptions, import},
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Tree {
    File { size: u64, seed: u64 },
    Dir(BTreeMap<String, Tree>),
}

/// Names a file system and the catalog both accept: ASCII, Latin, CJK, emoji,
/// spaces and dots, never `.` or `..`.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._\\-éüßÅ日本語☕🎬]{1,16}".prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0u64..=64,
        3 => 0u64..=8 * 1024,
        2 => 0u64..=256 * 1024,
        1 => Just(0u64),
        1 => prop::sample::select(vec![4095u64, 4096, 4097, 65_536, 131_071, 262_144]),
    ]
}

fn tree() -> impl Strategy<Value = BTreeMap<String, Tree>> {
    let leaf = (size(), any::<u64>()).prop_map(|(size, seed)| Tree::File { size, seed });
    let node = leaf.prop_recursive(4, 40, 6, |inner| {
        prop::collection::btree_map(name(), inner, 0..6).prop_map(Tree::Dir)
    });
    prop::collection::btree_map(name(), node, 0..8)
}

fn build(dir: &Path, entries: &BTreeMap<String, Tree>) {
    for (name, entry) in entries {
        let path = dir.join(name);
        match entry {
            Tree::File { size, seed } => write_pattern_file(&path, *size, *seed).unwrap(),
            Tree::Dir(children) => {
                std::fs::create_dir(&path).unwrap();
                build(&path, children);
            }
        }
    }
}

fn count(entries: &BTreeMap<String, Tree>) -> (u64, u64, u64) {
    let (mut dirs, mut files, mut bytes) = (0, 0, 0);
    for entry in entries.values() {
        match entry {
            Tree::File { size, .. } => {
                files += 1;
                bytes += size;
            }
            Tree::Dir(children) => {
                let (d, f, b) = count(children);
                dirs += 1 + d;
                files += f;
                bytes += b;
            }
        }
    }
    (dirs, files, bytes)
}

/// A sink that appends to a buffer, as an adapter's reply buffer does.
struct Appender(Vec<u8>);

impl markbase_vfs::handles::ReadSink for Appender {
    fn read_from(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let start = self.0.len();
        self.0.resize(start + len, 0);
        let n = file.read_at(&mut self.0[start..], offset)?;
        self.0.truncate(start + n);
        Ok(n)
    }

    fn take(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }
}

fn check_file(
    vfs: &Vfs,
    handle: FileHandle,
    path: &str,
    size: u64,
    seed: u64,
    probe: u64,
) -> Result<(), TestCaseError> {
    // Sequential reads of odd sizes through the sink path.
    let mut sink = Appender(Vec::with_capacity(size as usize));
    loop {
        let at = sink.0.len() as u64;
        let n = vfs.read(handle, at, 61_441, &mut sink).unwrap();
        if n == 0 {
            break;
        }
    }
    prop_assert_eq!(sink.0.len() as u64, size, "{} read via read()", path);
    if let Some(bad) = (0..size).find(|&i| sink.0[i as usize] != pattern_byte(seed, i)) {
        return Err(TestCaseError::fail(format!(
            "{path}: wrong byte at {bad} via read()"
        )));
    }
    // Random-offset reads with read_at, including past the end.
    for k in 0..8u64 {
        let offset = probe.wrapping_mul(k + 1) % (size + 10);
        let mut buf = vec![0u8; ((probe >> 8) % 70_000) as usize + 1];
        let n = vfs.read_at(handle, offset, &mut buf).unwrap();
        let expected = (size.saturating_sub(offset)).min(buf.len() as u64);
        prop_assert_eq!(n as u64, expected, "{} read_at({})", path, offset);
        for (i, byte) in buf[..n].iter().enumerate() {
            prop_assert_eq!(
                *byte,
                pattern_byte(seed, offset + i as u64),
                "{} at {}",
                path,
                offset + i as u64
            );
        }
    }
    Ok(())
}

/// Compares directory `dir` of the Vfs with `expected`, recursively.
fn compare(
    vfs: &Vfs,
    dir: NodeId,
    path: &str,
    expected: &BTreeMap<String, Tree>,
    probe: u64,
) -> Result<(), TestCaseError> {
    let listed = common::list(vfs, dir);
    let listed_names: Vec<&str> = listed.iter().map(|e| &*e.name).collect();
    // The catalog lists in byte order, as BTreeMap<String> iterates.
    let expected_names: Vec<&str> = expected.keys().map(String::as_str).collect();
    prop_assert_eq!(&listed_names, &expected_names, "names in {}", path);
    for (entry, (name, tree)) in listed.iter().zip(expected) {
        let child_path = format!("{path}/{name}");
        let attr = vfs.lookup(dir, name).unwrap();
        prop_assert_eq!(attr.id, entry.id);
        prop_assert_eq!(vfs.path_of(entry.id).unwrap(), child_path.clone());
        match tree {
            Tree::Dir(children) => {
                prop_assert_eq!(entry.kind, NodeKind::Dir, "{}", child_path);
                compare(vfs, entry.id, &child_path, children, probe.rotate_left(7))?;
            }
            Tree::File { size, seed } => {
                prop_assert_eq!(entry.kind, NodeKind::File, "{}", child_path);
                prop_assert_eq!(attr.size, *size, "{} size", child_path);
                prop_assert_eq!(vfs.getattr(entry.id).unwrap().size, *size);
                let handle = vfs.open_file(entry.id).unwrap();
                let checked = check_file(vfs, handle, &child_path, *size, *seed, probe ^ seed);
                vfs.release(handle).unwrap();
                checked?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn imported_tree_reads_back_identically(entries in tree(), probe in any::<u64>()) {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::create_dir(&source).unwrap();
        build(&source, &entries);
        let catalog = dir.path().join(common::CATALOG);

        let stats = import(&source, &catalog, &ImportOptions::default()).unwrap();
        let (dirs, files, bytes) = count(&entries);
        prop_assert_eq!((stats.dirs_added, stats.files_added, stats.bytes), (dirs, files, bytes));
        prop_assert!(stats.skipped.is_empty(), "{:?}", stats.skipped);

        let vfs = common::open(&catalog);
        compare(&vfs, NodeId::ROOT, "", &entries, probe)?;
        prop_assert_eq!(vfs.open_handles(), 0);
    }
}

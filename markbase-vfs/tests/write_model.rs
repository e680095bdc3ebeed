//! Model-based test of the write path: random sequences of create / open / write /
//! truncate / release / rename / unlink / mkdir / rmdir are applied both to a `Vfs`
//! over a fresh catalog and to a plain directory through `std::fs`. After every
//! step both must give the same outcome (success, or the same errno) and hold the
//! same tree: names, kinds, sizes and every byte. At the end a fresh `Vfs` on the
//! same catalog must see the same tree, with every released size recorded in the
//! catalog, and the consistency check must be clean.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use markbase_testkit::{pattern_byte, rename_noreplace};
use markbase_vfs::{
    NodeId, NodeKind, Vfs, VfsError, handles::FileHandle, namespace::RenameMode, write::SetAttr,
};
use proptest::prelude::*;

/// Open-handle slots per side.
const SLOTS: usize = 3;

/// Few names, so that steps often meet what earlier steps made.
const NAMES: [&str; 3] = ["a", "b", "c"];

/// Files that exist before the first step, outside the store (a user's originals).
const ORIGINALS: [(&str, u64, u64); 2] = [("c", 5_000, 11), ("a/b", 1_234, 12)];

/// A path of one to three components, shown as `/a/b`.
#[derive(Clone, PartialEq, Eq)]
struct ModelPath(Vec<&'static str>);

impl ModelPath {
    fn parent(&self) -> String {
        let parts = &self.0[..self.0.len() - 1];
        format!("/{}", parts.join("/"))
    }

    fn name(&self) -> &'static str {
        self.0[self.0.len() - 1]
    }

    fn under(&self, root: &Path) -> PathBuf {
        self.0
            .iter()
            .fold(root.to_owned(), |path, part| path.join(part))
    }
}

impl fmt::Debug for ModelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0.join("/"))
    }
}

#[derive(Clone, Copy, Debug)]
enum Offset {
    /// At the current end of the file: sequential writing.
    Append,
    /// Anywhere, often past the end (a hole).
    At(u64),
}

#[derive(Clone, Debug)]
enum Target {
    Path(ModelPath),
    Slot(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        path: ModelPath,
        exclusive: bool,
        slot: usize,
    },
    Open {
        path: ModelPath,
        slot: usize,
    },
    Write {
        slot: usize,
        at: Offset,
        len: usize,
        seed: u64,
    },
    Truncate {
        target: Target,
        size: u64,
    },
    Sync {
        slot: usize,
        datasync: bool,
    },
    Release {
        slot: usize,
    },
    Rename {
        from: ModelPath,
        to: ModelPath,
        no_replace: bool,
    },
    Unlink {
        path: ModelPath,
    },
    Mkdir {
        path: ModelPath,
    },
    Rmdir {
        path: ModelPath,
    },
}

/// Mostly shallow paths, so that parents often exist.
fn path() -> impl Strategy<Value = ModelPath> {
    let name = || prop::sample::select(NAMES.to_vec());
    prop_oneof![
        3 => prop::collection::vec(name(), 1),
        3 => prop::collection::vec(name(), 2),
        1 => prop::collection::vec(name(), 3),
    ]
    .prop_map(ModelPath)
}

fn slot() -> impl Strategy<Value = usize> {
    0..SLOTS
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..=5_000, 0u64..=70_000, Just(0u64)]
}

fn op() -> impl Strategy<Value = Op> {
    let offset = prop_oneof![
        2 => Just(Offset::Append),
        1 => (0u64..=20_000).prop_map(Offset::At),
        1 => (0u64..=70_000).prop_map(Offset::At),
    ];
    prop_oneof![
        4 => (path(), any::<bool>(), slot())
            .prop_map(|(path, exclusive, slot)| Op::Create { path, exclusive, slot }),
        1 => (path(), slot()).prop_map(|(path, slot)| Op::Open { path, slot }),
        5 => (slot(), offset, 0usize..=9_000, any::<u64>())
            .prop_map(|(slot, at, len, seed)| Op::Write { slot, at, len, seed }),
        2 => (prop_oneof![path().prop_map(Target::Path), slot().prop_map(Target::Slot)], size())
            .prop_map(|(target, size)| Op::Truncate { target, size }),
        1 => (slot(), any::<bool>()).prop_map(|(slot, datasync)| Op::Sync { slot, datasync }),
        1 => slot().prop_map(|slot| Op::Release { slot }),
        4 => (path(), path(), prop::bool::weighted(0.25))
            .prop_map(|(from, to, no_replace)| Op::Rename { from, to, no_replace }),
        2 => path().prop_map(|path| Op::Unlink { path }),
        3 => path().prop_map(|path| Op::Mkdir { path }),
        1 => path().prop_map(|path| Op::Rmdir { path }),
    ]
}

/// What a step did: success, or the errno it failed with (and the message, for the log).
type Outcome = Result<(), (i32, String)>;

fn bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| pattern_byte(seed, offset + i))
        .collect()
}

fn from_vfs<T>(result: Result<T, VfsError>) -> Result<T, (i32, String)> {
    result.map_err(|err| (err.errno(), err.to_string()))
}

fn from_io<T>(result: io::Result<T>) -> Result<T, (i32, String)> {
    result.map_err(|err| {
        let errno = err
            .raw_os_error()
            .unwrap_or_else(|| panic!("an I/O error without an errno: {err}"));
        (errno, err.to_string())
    })
}

/// The plain directory, changed through `std::fs`: the model.
struct Plain {
    root: PathBuf,
    slots: [Option<File>; SLOTS],
}

impl Plain {
    /// Where an `Append` write goes: the end of the slot's file.
    fn offset(&self, slot: usize, at: Offset) -> Option<u64> {
        let file = self.slots[slot].as_ref()?;
        Some(match at {
            Offset::Append => file.metadata().expect("fstat").len(),
            Offset::At(offset) => offset,
        })
    }

    fn apply(&mut self, op: &Op) -> Outcome {
        match op {
            Op::Create {
                path,
                exclusive,
                slot,
            } => {
                self.slots[*slot] = None;
                let file = from_io(
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .create_new(*exclusive)
                        .open(path.under(&self.root)),
                )?;
                self.slots[*slot] = Some(file);
                Ok(())
            }
            Op::Open { path, slot } => {
                self.slots[*slot] = None;
                let file = from_io(
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(path.under(&self.root)),
                )?;
                self.slots[*slot] = Some(file);
                Ok(())
            }
            Op::Write {
                slot,
                at,
                len,
                seed,
            } => {
                let offset = self
                    .offset(*slot, *at)
                    .expect("only open slots are written");
                let file = self.slots[*slot].as_ref().expect("open slot");
                from_io(file.write_all_at(&bytes(*seed, offset, *len), offset))
            }
            Op::Truncate { target, size } => match target {
                Target::Path(path) => {
                    let file =
                        from_io(OpenOptions::new().write(true).open(path.under(&self.root)))?;
                    from_io(file.set_len(*size))
                }
                Target::Slot(slot) => from_io(
                    self.slots[*slot]
                        .as_ref()
                        .expect("open slot")
                        .set_len(*size),
                ),
            },
            Op::Sync { slot, datasync } => {
                let file = self.slots[*slot].as_ref().expect("open slot");
                from_io(if *datasync {
                    file.sync_data()
                } else {
                    file.sync_all()
                })
            }
            Op::Release { slot } => {
                self.slots[*slot] = None;
                Ok(())
            }
            Op::Rename {
                from,
                to,
                no_replace,
            } => {
                let (from, to) = (from.under(&self.root), to.under(&self.root));
                if *no_replace {
                    from_io(rename_noreplace(&from, &to))
                } else {
                    from_io(std::fs::rename(from, to))
                }
            }
            Op::Unlink { path } => from_io(std::fs::remove_file(path.under(&self.root))),
            Op::Mkdir { path } => from_io(std::fs::create_dir(path.under(&self.root))),
            Op::Rmdir { path } => from_io(std::fs::remove_dir(path.under(&self.root))),
        }
    }
}

/// The `Vfs` under test, driven as a path-based adapter drives it: parents are found
/// with `lookup_path`, then the call is made on the parent's inode.
struct Model {
    vfs: Vfs,
    slots: [Option<(FileHandle, NodeId)>; SLOTS],
}

impl Model {
    fn parent(&self, path: &ModelPath) -> Result<NodeId, (i32, String)> {
        from_vfs(self.vfs.lookup_path(&path.parent())).map(|attr| attr.id)
    }

    fn ino(&self, path: &ModelPath) -> Result<NodeId, (i32, String)> {
        from_vfs(self.vfs.lookup_path(&format!("{path:?}"))).map(|attr| attr.id)
    }

    fn release(&mut self, slot: usize) {
        if let Some((handle, _)) = self.slots[slot].take() {
            self.vfs
                .release(handle)
                .unwrap_or_else(|err| panic!("release of slot {slot}: {err}"));
        }
    }

    fn apply(&mut self, op: &Op, offset: Option<u64>) -> Outcome {
        match op {
            Op::Create {
                path,
                exclusive,
                slot,
            } => {
                self.release(*slot);
                let parent = self.parent(path)?;
                let (attr, handle) = from_vfs(self.vfs.create(parent, path.name(), *exclusive))?;
                assert_eq!(attr.kind, NodeKind::File, "{op:?}");
                self.slots[*slot] = Some((handle, attr.id));
                Ok(())
            }
            Op::Open { path, slot } => {
                self.release(*slot);
                let ino = self.ino(path)?;
                let handle = from_vfs(self.vfs.open_file_rw(ino))?;
                self.slots[*slot] = Some((handle, ino));
                Ok(())
            }
            Op::Write {
                slot, len, seed, ..
            } => {
                let (handle, _) = self.slots[*slot].expect("only open slots are written");
                let offset = offset.expect("offset of an open slot");
                let mut data = bytes(*seed, offset, *len);
                // Both entry points: write_at, and write with the slice as the source.
                let written = if seed.is_multiple_of(2) {
                    from_vfs(self.vfs.write_at(handle, offset, &data))?
                } else {
                    from_vfs(self.vfs.write(handle, offset, data.len(), &mut data[..]))?
                };
                assert_eq!(written, data.len(), "short write in {op:?}");
                Ok(())
            }
            Op::Truncate { target, size } => {
                let (ino, handle) = match target {
                    Target::Path(path) => (self.ino(path)?, None),
                    Target::Slot(slot) => {
                        let (handle, ino) = self.slots[*slot].expect("open slot");
                        (ino, Some(handle))
                    }
                };
                let attr = from_vfs(self.vfs.setattr(ino, SetAttr::size(*size), handle))?;
                assert_eq!(attr.size, *size, "size after {op:?}");
                Ok(())
            }
            Op::Sync { slot, datasync } => {
                let (handle, _) = self.slots[*slot].expect("open slot");
                from_vfs(self.vfs.fsync(handle, *datasync))?;
                from_vfs(self.vfs.flush(handle))
            }
            Op::Release { slot } => {
                self.release(*slot);
                Ok(())
            }
            Op::Rename {
                from,
                to,
                no_replace,
            } => {
                let parent = from_vfs(self.vfs.lookup_path(&from.parent()))?;
                if parent.kind != NodeKind::Dir {
                    // As a path walk does: the source's parent must be a directory
                    // before the target's parent is looked at.
                    return Err((libc::ENOTDIR, format!("{} is a file", from.parent())));
                }
                let parent = parent.id;
                let new_parent = self.parent(to)?;
                let mode = if *no_replace {
                    RenameMode::NoReplace
                } else {
                    RenameMode::Replace
                };
                from_vfs(
                    self.vfs
                        .rename(parent, from.name(), new_parent, to.name(), mode),
                )
            }
            Op::Unlink { path } => {
                let parent = self.parent(path)?;
                from_vfs(self.vfs.unlink(parent, path.name()))
            }
            Op::Mkdir { path } => {
                let parent = self.parent(path)?;
                let attr = from_vfs(self.vfs.mkdir(parent, path.name()))?;
                assert_eq!(attr.kind, NodeKind::Dir, "{op:?}");
                Ok(())
            }
            Op::Rmdir { path } => {
                let parent = self.parent(path)?;
                from_vfs(self.vfs.rmdir(parent, path.name()))
            }
        }
    }
}

#[derive(PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir => f.write_str("dir"),
            Self::File(bytes) => write!(f, "file of {} bytes", bytes.len()),
        }
    }
}

/// The plain tree: path -> entry.
fn plain_tree(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Entry>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().into_string().expect("UTF-8 name");
        let path = format!("{prefix}/{name}");
        if entry.file_type().expect("file type").is_dir() {
            out.insert(path.clone(), Entry::Dir);
            plain_tree(&entry.path(), &path, out);
        } else {
            out.insert(
                path,
                Entry::File(std::fs::read(entry.path()).expect("read")),
            );
        }
    }
}

/// The tree as the `Vfs` shows it, checking that readdir, lookup, getattr, path_of
/// and the bytes read agree with each other on the way.
fn vfs_tree(vfs: &Vfs, dir: NodeId, prefix: &str, out: &mut BTreeMap<String, Entry>) {
    for entry in common::list(vfs, dir) {
        let path = format!("{prefix}/{}", entry.name);
        let attr = vfs
            .lookup(dir, &entry.name)
            .unwrap_or_else(|err| panic!("lookup of listed {path}: {err}"));
        assert_eq!(attr.id, entry.id, "{path}: lookup and readdir disagree");
        assert_eq!(attr.kind, entry.kind, "{path}: lookup and readdir disagree");
        assert_eq!(vfs.path_of(entry.id).unwrap(), path);
        match entry.kind {
            NodeKind::Dir => {
                out.insert(path.clone(), Entry::Dir);
                vfs_tree(vfs, entry.id, &path, out);
            }
            NodeKind::File => {
                let bytes = common::read_all(vfs, entry.id);
                assert_eq!(
                    vfs.getattr(entry.id).unwrap().size,
                    bytes.len() as u64,
                    "{path}: getattr size and the bytes read disagree"
                );
                out.insert(path, Entry::File(bytes));
            }
        }
    }
}

fn assert_same_trees(vfs: &Vfs, plain: &Path, when: &str) {
    let mut expected = BTreeMap::new();
    plain_tree(plain, "", &mut expected);
    let mut seen = BTreeMap::new();
    vfs_tree(vfs, NodeId::ROOT, "", &mut seen);
    if expected == seen {
        return;
    }
    let mut diffs = Vec::new();
    for (path, want) in &expected {
        match seen.get(path) {
            None => diffs.push(format!("{path}: missing from the Vfs ({want:?})")),
            Some(got) if got != want => {
                let detail = match (want, got) {
                    (Entry::File(a), Entry::File(b)) if a.len() == b.len() => {
                        let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap();
                        format!(" (first differing byte at {at})")
                    }
                    _ => String::new(),
                };
                diffs.push(format!(
                    "{path}: plain has {want:?}, the Vfs {got:?}{detail}"
                ));
            }
            Some(_) => {}
        }
    }
    for (path, got) in &seen {
        if !expected.contains_key(path) {
            diffs.push(format!("{path}: only in the Vfs ({got:?})"));
        }
    }
    panic!("trees differ {when}:\n  {}", diffs.join("\n  "));
}

/// The step as it is run: a write, sync or handle truncate goes to the `slot`-th open
/// slot (counting round), so that it happens whenever any handle is open; `None`
/// when none is.
fn resolve(op: &Op, plain: &Plain) -> Option<Op> {
    let open: Vec<usize> = (0..SLOTS).filter(|s| plain.slots[*s].is_some()).collect();
    let pick = |slot: usize| (!open.is_empty()).then(|| open[slot % open.len()]);
    let mut op = op.clone();
    match &mut op {
        Op::Write { slot, .. }
        | Op::Sync { slot, .. }
        | Op::Truncate {
            target: Target::Slot(slot),
            ..
        } => *slot = pick(*slot)?,
        _ => {}
    }
    Some(op)
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("library");
    let plain_root = dir.path().join("plain");
    std::fs::create_dir_all(library.join("originals")).unwrap();
    std::fs::create_dir_all(plain_root.join("a")).unwrap();

    // The same starting tree on both sides: /a, /a/b and /c, whose bytes are
    // originals outside the store.
    let raw = common::raw_catalog(&library);
    raw.dir(2, 1, "a").unwrap();
    for (i, (path, size, seed)) in ORIGINALS.iter().enumerate() {
        let original = format!("originals/{}", path.replace('/', "-"));
        markbase_testkit::write_pattern_file(&library.join(&original), *size, *seed).unwrap();
        markbase_testkit::write_pattern_file(&plain_root.join(path), *size, *seed).unwrap();
        let (parent, name) = match path.split_once('/') {
            Some((_, name)) => (2, name),
            None => (1, *path),
        };
        let aliases = format!("[\"{original}\"]");
        raw.insert(
            3 + i as i64,
            Some(parent),
            name,
            "file",
            *size as i64,
            &aliases,
        )
        .unwrap();
    }
    let catalog = raw.path.clone();
    drop(raw);

    let mut model = Model {
        vfs: common::open(&catalog),
        slots: [None; SLOTS],
    };
    let mut plain = Plain {
        root: plain_root.clone(),
        slots: [const { None }; SLOTS],
    };
    assert_same_trees(&model.vfs, &plain_root, "at the start");

    for (step, op) in ops.iter().enumerate() {
        let Some(op) = resolve(op, &plain) else {
            continue;
        };
        let op = &op;
        let offset = match op {
            Op::Write { slot, at, .. } => plain.offset(*slot, *at),
            _ => None,
        };
        let expected = plain.apply(op);
        let got = model.apply(op, offset);
        let errno = |outcome: &Outcome| outcome.as_ref().err().map(|(errno, _)| *errno);
        assert_eq!(
            errno(&got),
            errno(&expected),
            "step {step}, {op:?}: the Vfs gave {got:?}, the plain directory {expected:?}"
        );
        assert_same_trees(
            &model.vfs,
            &plain_root,
            &format!("after step {step}, {op:?}"),
        );
        let report = model.vfs.check().unwrap();
        assert!(
            report.is_clean(),
            "after step {step}, {op:?}: check() found {report:?}"
        );
    }

    // Release everything: what was released is in the catalog.
    for slot in 0..SLOTS {
        model.release(slot);
    }
    plain.slots = [const { None }; SLOTS];
    assert_eq!(model.vfs.open_handles(), 0);
    drop(model);
    let fresh = common::open(&catalog);
    assert_same_trees(&fresh, &plain_root, "in a fresh Vfs at the end");
    assert_recorded_sizes(&fresh, NodeId::ROOT);
    let report = fresh.check().unwrap();
    assert!(report.is_clean(), "at the end: {report:?}");
    // The originals outside the store were never deleted, whatever was unlinked or replaced.
    for (path, _, _) in ORIGINALS {
        let original = library.join("originals").join(path.replace('/', "-"));
        assert!(original.is_file(), "{} was deleted", original.display());
    }
}

/// Every file node's size in the catalog is its real size once all handles are released.
fn assert_recorded_sizes(vfs: &Vfs, dir: NodeId) {
    for entry in common::list(vfs, dir) {
        match entry.kind {
            NodeKind::Dir => assert_recorded_sizes(vfs, entry.id),
            NodeKind::File => {
                let real = vfs.getattr(entry.id).unwrap().size;
                let node = vfs.node(entry.id).unwrap();
                assert_eq!(
                    node.recorded_size,
                    real,
                    "{}: the catalog records {} bytes, the file has {real}",
                    vfs.path_of(entry.id).unwrap(),
                    node.recorded_size
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn vfs_and_a_plain_directory_agree_after_every_step(
        ops in prop::collection::vec(op(), 1..=40)
    ) {
        run(&ops);
    }
}

/// `/a/b` as a model path.
fn p(path: &str) -> ModelPath {
    ModelPath(
        path.split('/')
            .map(|part| {
                *NAMES
                    .iter()
                    .find(|name| **name == part)
                    .unwrap_or_else(|| panic!("unknown name {part}"))
            })
            .collect(),
    )
}

fn rename(from: &str, to: &str, no_replace: bool) -> Op {
    Op::Rename {
        from: p(from),
        to: p(to),
        no_replace,
    }
}

fn create(path: &str, exclusive: bool, slot: usize) -> Op {
    Op::Create {
        path: p(path),
        exclusive,
        slot,
    }
}

fn write(slot: usize, at: Offset, len: usize, seed: u64) -> Op {
    Op::Write {
        slot,
        at,
        len,
        seed,
    }
}

fn truncate(target: Target, size: u64) -> Op {
    Op::Truncate { target, size }
}

/// Hand-picked sequences for the corner cases, run every time.
#[test]
fn corner_cases_agree() {
    let sequences: Vec<Vec<Op>> = vec![
        // A file onto its own parent, a directory into itself and onto its parent,
        // onto itself, with and without replacing.
        vec![
            rename("a/b", "a", false),
            Op::Mkdir { path: p("a/c") },
            rename("a", "a/c/a", false),
            rename("a", "a/b", false),
            rename("a/c", "a", false),
            rename("a", "a", false),
            rename("a", "a", true),
            rename("a", "a/b", true),
        ],
        // Operations below a file, and on a missing parent.
        vec![
            Op::Unlink { path: p("c/a") },
            Op::Rmdir { path: p("c/a") },
            Op::Mkdir { path: p("c/a") },
            create("c/a", false, 0),
            rename("c/a", "b", false),
            rename("b/a", "c/a", false),
            rename("b", "c/a", true),
            Op::Unlink { path: p("b/c") },
        ],
        // Handles outliving their names: written and truncated after unlink and replace.
        vec![
            create("b", true, 0),
            write(0, Offset::At(10_000), 100, 1),
            Op::Open {
                path: p("c"),
                slot: 1,
            },
            rename("b", "c", false),
            write(1, Offset::Append, 100, 2),
            truncate(Target::Slot(1), 7),
            Op::Unlink { path: p("c") },
            write(0, Offset::Append, 5, 3),
            truncate(Target::Slot(0), 3),
            Op::Sync {
                slot: 0,
                datasync: false,
            },
            create("c", false, 2),
            truncate(Target::Path(p("c")), 40_000),
        ],
        // A new file where an unlinked one with an open handle was.
        vec![
            create("b", false, 2),
            Op::Unlink { path: p("b") },
            create("b", false, 1),
            create("b", false, 0),
            truncate(Target::Slot(2), 1),
            write(2, Offset::Append, 10, 4),
        ],
    ];
    for ops in sequences {
        run(&ops);
    }
}

/// A node id is an inode number: while this `Vfs` lives, a removed node's id is not
/// given to a new node, so a handle still open on the removed file can never reach
/// (or record its size onto) the node that would have taken its id.
#[test]
fn ids_of_removed_nodes_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::open(&common::raw_catalog(dir.path()).path);
    let (old, handle) = vfs.create(NodeId::ROOT, "old.mov", true).unwrap();
    vfs.write_at(handle, 0, b"old bytes").unwrap();
    vfs.unlink(NodeId::ROOT, "old.mov").unwrap();
    let (new, new_handle) = vfs.create(NodeId::ROOT, "new.mov", true).unwrap();
    assert_ne!(new.id, old.id, "the id of the removed node was reused");
    let dir_attr = vfs.mkdir(NodeId::ROOT, "d").unwrap();
    vfs.rmdir(NodeId::ROOT, "d").unwrap();
    assert!(vfs.mkdir(NodeId::ROOT, "e").unwrap().id > dir_attr.id);

    // The open handle of the removed file still writes and truncates its own bytes...
    vfs.write_at(handle, 9, b" and more").unwrap();
    let attr = vfs.setattr(old.id, SetAttr::size(3), Some(handle)).unwrap();
    assert_eq!((attr.id, attr.size, attr.nlink), (old.id, 3, 0));
    vfs.release(handle).unwrap();
    // ...and nothing of it reaches the new file or its catalog row.
    vfs.write_at(new_handle, 0, b"new").unwrap();
    vfs.release(new_handle).unwrap();
    assert_eq!(vfs.node(new.id).unwrap().recorded_size, 3);
    assert_eq!(common::read_all(&vfs, new.id), b"new");
    assert_eq!(vfs.getattr(old.id).unwrap_err().errno(), libc::ENOENT);
    assert!(vfs.check().unwrap().is_clean());
}

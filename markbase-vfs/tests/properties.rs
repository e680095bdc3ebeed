//! Client-set properties: kept beside the catalog, outliving the process, going
//! with their node.

mod common;

use markbase_vfs::{
    NodeId, Vfs, VfsError,
    namespace::RenameMode,
    properties::{Property, PropertyChange},
};

fn property(namespace: &str, name: &str, value: &[u8]) -> Property {
    Property {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        prefix: Some(String::from("x")),
        value: Some(value.to_vec()),
    }
}

fn set(vfs: &Vfs, node: NodeId, properties: &[Property]) {
    let changes: Vec<_> = properties
        .iter()
        .cloned()
        .map(PropertyChange::Set)
        .collect();
    vfs.change_properties(node, &changes).unwrap();
}

#[test]
fn properties_are_kept_per_node_and_outlive_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let clip = common::write_file(&vfs, NodeId::ROOT, "clip.mov", b"clip.mov");
    let properties_dir = dir.path().join("warren-store/properties");

    // Nothing is made until the first change.
    assert_eq!(vfs.properties(clip).unwrap(), []);
    assert_eq!(vfs.property(clip, "urn:x", "a").unwrap(), None);
    assert!(!properties_dir.exists());

    let binary = property("urn:x", "b", &[0, 0xff, b'<', 0xfe]);
    let unicode = property("", "Überblick", "<x:v>日本</x:v>".as_bytes());
    set(
        &vfs,
        clip,
        &[
            property("urn:x", "a", b"one"),
            binary.clone(),
            unicode.clone(),
        ],
    );
    // Replacing one and removing one in the same change.
    vfs.change_properties(
        clip,
        &[
            PropertyChange::Set(property("urn:x", "a", b"two")),
            PropertyChange::Remove {
                namespace: String::from("urn:x"),
                name: String::from("b"),
            },
            // The same name in another namespace is another property.
            PropertyChange::Set(property("urn:y", "a", b"other")),
        ],
    )
    .unwrap();
    let expected = vec![
        unicode.clone(),
        property("urn:x", "a", b"two"),
        property("urn:y", "a", b"other"),
    ];
    assert_eq!(vfs.properties(clip).unwrap(), expected);
    assert_eq!(vfs.properties(NodeId::ROOT).unwrap(), []);
    drop(vfs);

    let vfs = common::reopen(dir.path(), |_| {});
    assert_eq!(vfs.properties(clip).unwrap(), expected);
    assert_eq!(vfs.property(clip, "", "Überblick").unwrap(), Some(unicode));
    // The store check does not take the properties file for an orphan.
    assert!(
        vfs.check().unwrap().is_clean(),
        "{:?}",
        vfs.check().unwrap()
    );
    assert!(properties_dir.join("properties.sqlite").is_file());
}

#[test]
fn properties_follow_renames_and_copies_and_go_with_their_node() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let day = vfs.mkdir(NodeId::ROOT, "Day 1").unwrap().id;
    let clip = common::write_file(&vfs, day, "clip.mov", b"clip.mov");
    set(&vfs, clip, &[property("urn:x", "rating", b"5")]);
    set(&vfs, day, &[property("urn:x", "label", b"red")]);

    vfs.rename(
        day,
        "clip.mov",
        NodeId::ROOT,
        "moved.mov",
        RenameMode::Replace,
    )
    .unwrap();
    assert_eq!(vfs.properties(clip).unwrap().len(), 1);
    let copy = vfs.copy_file(clip, NodeId::ROOT, "copy.mov").unwrap().id;
    assert_eq!(vfs.properties(copy).unwrap(), vfs.properties(clip).unwrap());

    // A new content keeps the node, and so its properties.
    let upload = vfs.begin_upload(NodeId::ROOT, "moved.mov").unwrap();
    upload.write_at(0, b"new").unwrap();
    assert_eq!(vfs.commit_upload(upload).unwrap().id, clip);
    assert_eq!(vfs.properties(clip).unwrap().len(), 1);

    // Removed nodes take theirs along: unlink, rmdir, a rename that replaces.
    vfs.unlink(NodeId::ROOT, "copy.mov").unwrap();
    vfs.rmdir(NodeId::ROOT, "Day 1").unwrap();
    let other = common::write_file(&vfs, NodeId::ROOT, "other.mov", b"other.mov");
    vfs.rename(
        NodeId::ROOT,
        "other.mov",
        NodeId::ROOT,
        "moved.mov",
        RenameMode::Replace,
    )
    .unwrap();
    assert_eq!(vfs.properties(other).unwrap(), []);
    for gone in [copy, day, clip] {
        assert!(matches!(vfs.properties(gone), Err(VfsError::NotFound(_))));
    }
    let rows =
        rusqlite::Connection::open(dir.path().join("warren-store/properties/properties.sqlite"))
            .unwrap()
            .query_row("SELECT count(*) FROM properties", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn read_only_reads_properties_and_changes_none() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let clip = common::write_file(&vfs, NodeId::ROOT, "clip.mov", b"clip.mov");
    set(&vfs, clip, &[property("urn:x", "a", b"kept")]);
    drop(vfs);

    let vfs = common::reopen(dir.path(), |config| config.read_only = true);
    assert_eq!(vfs.properties(clip).unwrap().len(), 1);
    let change = [PropertyChange::Set(property("urn:x", "a", b"changed"))];
    assert!(matches!(
        vfs.change_properties(clip, &change),
        Err(VfsError::ReadOnly)
    ));
    assert_eq!(
        vfs.property(clip, "urn:x", "a")
            .unwrap()
            .unwrap()
            .value
            .unwrap(),
        b"kept"
    );
    // Unknown nodes have none, and take none.
    let missing = NodeId::new(999).unwrap();
    assert!(matches!(
        vfs.properties(missing),
        Err(VfsError::NotFound(_))
    ));
}

#[test]
fn properties_of_nodes_removed_by_another_program_are_not_inherited() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let clip = common::write_file(&vfs, NodeId::ROOT, "clip.mov", b"clip.mov");
    set(&vfs, clip, &[property("urn:x", "rating", b"5")]);
    drop(vfs);

    // Another program removes the node; the next node made gets its id again.
    rusqlite::Connection::open(dir.path().join(common::CATALOG))
        .unwrap()
        .execute("DELETE FROM nodes WHERE id = ?1", [clip.get() as i64])
        .unwrap();
    let vfs = common::reopen(dir.path(), |_| {});
    let next = common::write_file(&vfs, NodeId::ROOT, "next.mov", b"next.mov");
    assert_eq!(next, clip, "the id is given again");
    assert_eq!(vfs.properties(next).unwrap(), []);

    // The same when the other program also makes the node that gets the id: what
    // the catalog no longer had was dropped when the properties were first read.
    set(&vfs, next, &[property("urn:x", "rating", b"1")]);
    drop(vfs);
    let catalog = rusqlite::Connection::open(dir.path().join(common::CATALOG)).unwrap();
    catalog
        .execute("DELETE FROM nodes WHERE id = ?1", [next.get() as i64])
        .unwrap();
    let vfs = common::reopen(dir.path(), |_| {});
    assert_eq!(vfs.properties(NodeId::ROOT).unwrap(), []);
    catalog
        .execute(
            "INSERT INTO nodes (id, parent_id, name, kind) VALUES (?1, 1, 'theirs', 'dir')",
            [next.get() as i64],
        )
        .unwrap();
    assert_eq!(vfs.lookup_path("/theirs").unwrap().id, next);
    assert_eq!(vfs.properties(next).unwrap(), []);
}

#[test]
fn whether_any_node_has_properties_is_cheap_and_notices_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = common::empty_vfs(dir.path());
    let clip = common::write_file(&vfs, NodeId::ROOT, "clip.mov", b"clip.mov");
    let other = common::reopen(dir.path(), |_| {});
    assert!(!vfs.has_properties().unwrap());
    assert!(!other.has_properties().unwrap());

    set(&vfs, clip, &[property("urn:x", "a", b"1")]);
    assert!(
        vfs.has_properties().unwrap(),
        "its own change counts at once"
    );
    // Another process trusts "none" for at most a second.
    let started = std::time::Instant::now();
    while !other.has_properties().unwrap() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "another process's property is not noticed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(other.properties(clip).unwrap().len(), 1);
}

//! Copies a folder of a MarkBase catalog out to an ordinary directory, as a tool
//! built on `markbase-vfs` would: list with `readdir_plus`, read with `VfsFile` and
//! `std::io::copy`, keep each file's mtime.
//!
//! ```sh
//! cargo run -p markbase-vfs --example copy_out -- warren.sqlite /Projects ./Projects-copy
//! ```

use std::fs::{self, File};
use std::io;
use std::path::Path;

use markbase_vfs::{FileAttr, NodeId, NodeKind, OpenFlags, Vfs, VfsConfig, VfsFile};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [catalog, folder, destination] = args.as_slice() else {
        eprintln!("usage: copy_out CATALOG /FOLDER DESTINATION");
        std::process::exit(2);
    };
    let vfs = Vfs::open(VfsConfig::new(catalog))?;
    let top = vfs.lookup_path(folder)?;
    if top.kind != NodeKind::Dir {
        return Err(format!("{folder} is not a folder").into());
    }
    let (files, bytes) = copy_dir(&vfs, top.id, Path::new(destination))?;
    println!("copied {files} files, {bytes} bytes, to {destination}");
    Ok(())
}

/// Copies directory `dir` into `to` (made if missing); the files and bytes copied.
fn copy_dir(vfs: &Vfs, dir: NodeId, to: &Path) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    fs::create_dir_all(to)?;
    let mut entries: Vec<(String, FileAttr)> = Vec::new();
    vfs.readdir_plus(dir, 0, |entry, attr| {
        entries.push((entry.name.to_string(), *attr));
        true
    })?;
    let (mut files, mut bytes) = (0, 0);
    for (name, attr) in entries {
        let target = to.join(&name);
        match attr.kind {
            NodeKind::Dir => {
                let (f, b) = copy_dir(vfs, attr.id, &target)?;
                files += f;
                bytes += b;
            }
            NodeKind::File => {
                let mut source = VfsFile::open_node(vfs, attr.id, OpenFlags::read())?;
                let out = File::create(&target)?;
                bytes += io::copy(&mut source, &mut &out)?;
                out.set_modified(attr.mtime())?;
                files += 1;
            }
        }
    }
    Ok((files, bytes))
}

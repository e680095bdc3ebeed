//! [`MarkbaseDavFs`]: the dav-server filesystem, each call translated into `Vfs` calls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, DavProp, FsError, FsFuture, FsResult,
    FsStream, OpenOptions, ReadDirMeta,
};
use futures_util::FutureExt;
use http::StatusCode;
use markbase_vfs::{
    NodeKind, OpenFlags, Vfs, namespace::RenameMode, open::OpenedPath, write::SetAttr,
};

use crate::errors::{blocking, fs_error};
use crate::file::{OpenFile, Target};
use crate::meta::{Entry, Meta};
use crate::props;
use crate::readahead::ReadAhead;

/// A catalog as a dav-server filesystem. Cheap to clone (dav-server clones it per request).
#[derive(Clone)]
pub struct MarkbaseDavFs {
    vfs: Arc<Vfs>,
}

impl MarkbaseDavFs {
    /// A filesystem serving `vfs`.
    pub fn new(vfs: Arc<Vfs>) -> Self {
        Self { vfs }
    }

    /// Runs `work` on the blocking pool with the core and `path`.
    async fn at<T: Send + 'static>(
        &self,
        path: &DavPath,
        work: impl FnOnce(&Vfs, &str) -> FsResult<T> + Send + 'static,
    ) -> FsResult<T> {
        let (vfs, path) = (Arc::clone(&self.vfs), path_of(path)?);
        blocking(move || work(&vfs, &path)).await
    }

    /// Runs `work` as [`Self::at`] does, but on this thread (telling a multi-thread
    /// runtime that it blocks): for the short calls dav-server makes for every entry
    /// of a listing, where a trip to the blocking pool and back costs more than the
    /// work (a 100,000-entry PROPFIND took 9 s that way, 3 s this way).
    fn here<T>(&self, path: &DavPath, work: impl FnOnce(&Vfs, &str) -> FsResult<T>) -> FsResult<T> {
        let path = path_of(path)?;
        let run = || work(&self.vfs, &path);
        match tokio::runtime::Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }

    fn remove<'a>(&'a self, path: &'a DavPath, kind: NodeKind) -> FsFuture<'a, ()> {
        self.at(path, move |vfs, path| {
            let (parent, name) = vfs.lookup_parent(path).map_err(fs_error)?;
            match kind {
                NodeKind::Dir => vfs.rmdir(parent.id, name),
                NodeKind::File => vfs.unlink(parent.id, name),
            }
            .map_err(fs_error)
        })
        .boxed()
    }

    /// Runs `work` with `from` and `to`.
    async fn between<T: Send + 'static>(
        &self,
        from: &DavPath,
        to: &DavPath,
        work: impl FnOnce(&Vfs, &str, &str) -> FsResult<T> + Send + 'static,
    ) -> FsResult<T> {
        let (vfs, from, to) = (Arc::clone(&self.vfs), path_of(from)?, path_of(to)?);
        blocking(move || work(&vfs, &from, &to)).await
    }
}

/// The path dav-server decoded (percent-decoding done, `..` resolved, prefix
/// stripped); the catalog holds UTF-8 names only.
fn path_of(path: &DavPath) -> FsResult<String> {
    std::str::from_utf8(path.as_bytes())
        .map(str::to_owned)
        .map_err(|_| FsError::NotFound)
}

/// Opens the file at `path` as `options` ask (the core decides: a whole new content,
/// a PUT, becomes an upload that takes the name only when complete).
fn open_path(vfs: &Vfs, path: &str, options: &OpenOptions) -> FsResult<Target> {
    let flags = open_flags(options);
    match vfs.open_path(path, flags).map_err(fs_error)? {
        OpenedPath::Upload(upload) => Ok(Target::Upload {
            upload: Some(upload),
            expected: options.size,
        }),
        OpenedPath::File(opened) => Ok(Target::Handle {
            handle: opened.handle,
            node: opened.attr.id,
            writes: flags.writes() || opened.created,
        }),
    }
}

/// dav-server's open options as the core's flags; a whole new content (a PUT)
/// replaces.
fn open_flags(options: &OpenOptions) -> OpenFlags {
    let mut flags = OpenFlags::read();
    flags.write = options.write || options.append;
    flags.create = options.create || options.create_new;
    flags.exclusive = options.create_new;
    flags.truncate = options.truncate;
    flags.append = options.append;
    flags.replace = options.write && options.truncate && !options.append;
    flags
}

impl DavFileSystem for MarkbaseDavFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        async move {
            let target = self
                .at(path, move |vfs, path| open_path(vfs, path, &options))
                .await?;
            Ok(Box::new(OpenFile {
                vfs: Arc::clone(&self.vfs),
                target,
                position: 0,
                read_ahead: ReadAhead::default(),
            }) as Box<dyn DavFile>)
        }
        .boxed()
    }

    /// Lists a directory (the core never lists Finder files kept aside, nor probe files).
    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _: ReadDirMeta,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        async move {
            let (vfs, path) = (Arc::clone(&self.vfs), path_of(path)?);
            let entries = blocking(move || {
                let dir = vfs.lookup_path(&path).map_err(fs_error)?;
                let mut children = Vec::new();
                vfs.readdir_plus(dir.id, 0, |entry, attr| {
                    children.push(Entry {
                        name: entry.name.to_string(),
                        attr: *attr,
                    });
                    true
                })
                .map_err(fs_error)?;
                Ok(children)
            })
            .await?;
            let stream = futures_util::stream::iter(
                entries
                    .into_iter()
                    .map(|entry| Ok(Box::new(entry) as Box<dyn DavDirEntry>)),
            );
            Ok(Box::pin(stream) as FsStream<Box<dyn DavDirEntry>>)
        }
        .boxed()
    }

    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let meta = self
                .at(path, |vfs, path| {
                    vfs.lookup_path(path)
                        .map(|attr| Meta::of_node(&attr))
                        .map_err(fs_error)
                })
                .await?;
            Ok(Box::new(meta) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.at(path, |vfs, path| {
            let (parent, name) = vfs.lookup_parent(path).map_err(fs_error)?;
            vfs.mkdir(parent.id, name).map(drop).map_err(fs_error)
        })
        .boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.remove(path, NodeKind::Dir)
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.remove(path, NodeKind::File)
    }

    /// Moves a file or directory (between the catalog and Finder files kept aside, the
    /// core refuses: 403).
    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        self.between(from, to, |vfs, from, to| {
            let (old_parent, old_name) = vfs.lookup_parent(from).map_err(fs_error)?;
            let (new_parent, new_name) = vfs.lookup_parent(to).map_err(fs_error)?;
            vfs.rename(
                old_parent.id,
                old_name,
                new_parent.id,
                new_name,
                RenameMode::Replace,
            )
            .map_err(fs_error)
        })
        .boxed()
    }

    /// Copies a file (as [`Self::rename`], never between the catalog and Finder files).
    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        self.between(from, to, move |vfs, from, to| {
            let source = vfs.lookup_path(from).map_err(fs_error)?;
            let (parent, name) = vfs.lookup_parent(to).map_err(fs_error)?;
            vfs.copy_file(source.id, parent.id, name)
                .map(drop)
                .map_err(fs_error)
        })
        .boxed()
    }

    fn set_modified<'a>(
        &'a self,
        path: &'a DavPath,
        time: std::time::SystemTime,
    ) -> FsFuture<'a, ()> {
        async move {
            let mtime_ns = time
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|since| i64::try_from(since.as_nanos()).ok())
                .ok_or(FsError::Forbidden)?;
            self.at(path, move |vfs, path| {
                let attr = vfs.lookup_path(path).map_err(fs_error)?;
                vfs.setattr(attr.id, SetAttr::mtime_ns(mtime_ns), None)
                    .map(drop)
                    .map_err(fs_error)
            })
            .await
        }
        .boxed()
    }

    fn have_props<'a>(&'a self, _: &'a DavPath) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async { true })
    }

    /// Sets and removes properties, all or none (Finder files kept aside and probe
    /// files take none: 403).
    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        self.at(path, move |vfs, path| {
            let node = vfs.lookup_path_node(path).map_err(fs_error)?;
            vfs.change_properties(node, &props::changes(&patch))
                .map_err(fs_error)?;
            Ok(patch
                .iter()
                .map(|(_, prop)| (StatusCode::OK, props::name_only(prop)))
                .collect())
        })
        .boxed()
    }

    /// dav-server asks for every entry of a listing, whatever the PROPFIND asked for.
    /// While no node has properties (the common case: Finder sets none) that costs
    /// nothing; the check asks the properties file at most once a second.
    fn get_props<'a>(&'a self, path: &'a DavPath, values: bool) -> FsFuture<'a, Vec<DavProp>> {
        async move {
            if !self.vfs.has_properties().map_err(fs_error)? {
                return Ok(Vec::new());
            }
            self.here(path, move |vfs, path| {
                let node = vfs.lookup_path_node(path).map_err(fs_error)?;
                let properties = vfs.properties(node).map_err(fs_error)?;
                Ok(properties
                    .into_iter()
                    .map(|property| props::dav_prop(property, values))
                    .collect())
            })
        }
        .boxed()
    }

    fn get_prop<'a>(&'a self, path: &'a DavPath, prop: DavProp) -> FsFuture<'a, Vec<u8>> {
        async move {
            if !self.vfs.has_properties().map_err(fs_error)? {
                return Err(FsError::NotFound);
            }
            self.here(path, move |vfs, path| {
                let node = vfs.lookup_path_node(path).map_err(fs_error)?;
                let namespace = prop.namespace.as_deref().unwrap_or_default();
                vfs.property(node, namespace, &prop.name)
                    .map_err(fs_error)?
                    .and_then(|property| property.value)
                    .ok_or(FsError::NotFound)
            })
        }
        .boxed()
    }

    /// Used and total bytes of the store's filesystem, so that clients show free space.
    fn get_quota(&self) -> FsFuture<'_, (u64, Option<u64>)> {
        let vfs = Arc::clone(&self.vfs);
        blocking(move || {
            let fs = vfs.statfs().map_err(fs_error)?;
            let used = fs.blocks.saturating_sub(fs.blocks_free) * fs.block_size;
            Ok((used, Some(fs.blocks * fs.block_size)))
        })
        .boxed()
    }
}

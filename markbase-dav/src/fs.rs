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
    AsideOpen, NodeId, NodeKind, OpenFlags, OpenedPath, Place, RenameMode, SetAttr, Vfs, VfsError,
};

use crate::errors::{blocking, fs_error, io_error};
use crate::file::{OpenFile, Target};
use crate::meta::{Entry, Meta};
use crate::props;
use crate::readahead::ReadAhead;
use crate::upload::PendingUpload;

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

    /// Runs `work` on the blocking pool with the core and what `path` names.
    async fn at<T: Send + 'static>(
        &self,
        path: &DavPath,
        work: impl FnOnce(&Vfs, &str, Place) -> FsResult<T> + Send + 'static,
    ) -> FsResult<T> {
        let (vfs, path) = (Arc::clone(&self.vfs), path_of(path)?);
        blocking(move || {
            let place = vfs.place(&path).map_err(fs_error)?;
            work(&vfs, &path, place)
        })
        .await
    }

    /// Runs `work` as [`Self::at`] does, but on this thread (telling a multi-thread
    /// runtime that it blocks): for the short calls dav-server makes for every entry
    /// of a listing, where a trip to the blocking pool and back costs more than the
    /// work (a 100,000-entry PROPFIND took 9 s that way, 3 s this way).
    fn here<T>(
        &self,
        path: &DavPath,
        work: impl FnOnce(&Vfs, &str, Place) -> FsResult<T>,
    ) -> FsResult<T> {
        let path = path_of(path)?;
        let run = || {
            let place = self.vfs.place(&path).map_err(fs_error)?;
            work(&self.vfs, &path, place)
        };
        match tokio::runtime::Handle::try_current().map(|runtime| runtime.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }

    fn remove<'a>(&'a self, path: &'a DavPath, kind: NodeKind) -> FsFuture<'a, ()> {
        self.at(path, move |vfs, path, place| match (place, kind) {
            (Place::Catalog, _) => {
                let (parent, name) = vfs.lookup_parent(path).map_err(fs_error)?;
                match kind {
                    NodeKind::Dir => vfs.rmdir(parent.id, name),
                    NodeKind::File => vfs.unlink(parent.id, name),
                }
                .map_err(fs_error)
            }
            (Place::Aside(file), NodeKind::File) => file.remove().map_err(fs_error),
            (Place::Aside(_), NodeKind::Dir) => Err(FsError::NotFound),
            (Place::Probe, _) => Err(FsError::Forbidden),
        })
        .boxed()
    }

    /// Runs `work` with what `from` and `to` name.
    async fn between<T: Send + 'static>(
        &self,
        from: &DavPath,
        to: &DavPath,
        work: impl FnOnce(&Vfs, (&str, Place), (&str, Place)) -> FsResult<T> + Send + 'static,
    ) -> FsResult<T> {
        let (vfs, from, to) = (Arc::clone(&self.vfs), path_of(from)?, path_of(to)?);
        blocking(move || {
            let from_place = vfs.place(&from).map_err(fs_error)?;
            let to_place = vfs.place(&to).map_err(fs_error)?;
            work(&vfs, (&from, from_place), (&to, to_place))
        })
        .await
    }
}

/// The path dav-server decoded (percent-decoding done, `..` resolved, prefix
/// stripped); the catalog holds UTF-8 names only.
fn path_of(path: &DavPath) -> FsResult<String> {
    std::str::from_utf8(path.as_bytes())
        .map(str::to_owned)
        .map_err(|_| FsError::NotFound)
}

/// The node at `path`, or `None` for a file that is not one (a Finder file kept aside,
/// a probe file), which has no properties of its own.
fn node_at(vfs: &Vfs, path: &str, place: Place) -> FsResult<Option<NodeId>> {
    match place {
        Place::Catalog => vfs.lookup_path_node(path).map(Some).map_err(fs_error),
        Place::Aside(file) => file.metadata().map(|_| None).map_err(fs_error),
        Place::Probe => Ok(None),
    }
}

/// Whether `options` open for a whole new content (a PUT).
fn replaces(options: &OpenOptions) -> bool {
    options.write && options.truncate && !options.append
}

/// Opens what `path` names as `options` ask.
fn open_path(vfs: &Vfs, path: &str, place: Place, options: &OpenOptions) -> FsResult<Target> {
    let writes = options.write || options.append || options.create || options.create_new;
    match place {
        Place::Catalog => open_node(vfs, path, options),
        Place::Aside(file) if replaces(options) => {
            match file.metadata() {
                Ok(_) if options.create_new => return Err(FsError::Exists),
                Err(VfsError::NotFound(_)) if !(options.create || options.create_new) => {
                    return Err(FsError::NotFound);
                }
                _ => {}
            }
            let upload = file.begin_replace().map_err(fs_error)?;
            Ok(Target::Upload {
                upload: Some(PendingUpload::Aside(upload)),
                expected: options.size,
            })
        }
        Place::Aside(file) => {
            let options = AsideOpen {
                write: options.write,
                append: options.append,
                truncate: options.truncate,
                create: options.create,
                create_new: options.create_new,
            };
            let file = file.open(options).map_err(fs_error)?;
            Ok(Target::Aside(Arc::new(file)))
        }
        Place::Probe if writes => Err(FsError::Forbidden),
        Place::Probe => Ok(Target::Probe),
    }
}

/// Opens the file node at `path` as `options` ask (the core decides: a whole new
/// content, a PUT, becomes an upload that takes the name only when complete).
fn open_node(vfs: &Vfs, path: &str, options: &OpenOptions) -> FsResult<Target> {
    let flags = open_flags(options);
    match vfs.open_path(path, flags).map_err(fs_error)? {
        OpenedPath::Upload(upload) => Ok(Target::Upload {
            upload: Some(PendingUpload::Node(upload)),
            expected: options.size,
        }),
        OpenedPath::File(opened) => Ok(Target::Handle {
            handle: opened.handle,
            node: opened.attr.id,
            writes: flags.writes() || opened.created,
        }),
    }
}

/// dav-server's open options as the core's flags.
fn open_flags(options: &OpenOptions) -> OpenFlags {
    let mut flags = OpenFlags::read();
    flags.write = options.write || options.append;
    flags.create = options.create || options.create_new;
    flags.exclusive = options.create_new;
    flags.truncate = options.truncate;
    flags.append = options.append;
    flags.replace = replaces(options);
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
                .at(path, move |vfs, path, place| {
                    open_path(vfs, path, place, &options)
                })
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

    /// Lists the catalog's children; Finder files kept aside and probe files are
    /// never listed.
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
                .at(path, |vfs, path, place| match place {
                    Place::Catalog => vfs
                        .lookup_path(path)
                        .map(|attr| Meta::of_node(&attr))
                        .map_err(fs_error),
                    Place::Aside(file) => file
                        .metadata()
                        .map(|meta| Meta::of_aside(&meta))
                        .map_err(fs_error),
                    Place::Probe => Ok(Meta::probe()),
                })
                .await?;
            Ok(Box::new(meta) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        self.at(path, |vfs, path, _| {
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

    /// Moves within the catalog, or between Finder files kept aside; never from one
    /// to the other.
    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        self.between(from, to, |vfs, from, to| match (from, to) {
            ((from, Place::Catalog), (to, Place::Catalog)) => {
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
            }
            ((_, Place::Aside(from)), (_, Place::Aside(to))) => from.rename(&to).map_err(fs_error),
            _ => Err(FsError::Forbidden),
        })
        .boxed()
    }

    /// Copies within the catalog, or between Finder files kept aside.
    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        self.between(from, to, move |vfs, from, to| match (from, to) {
            ((from, Place::Catalog), (to, Place::Catalog)) => {
                let source = vfs.lookup_path(from).map_err(fs_error)?;
                let (parent, name) = vfs.lookup_parent(to).map_err(fs_error)?;
                vfs.copy_file(source.id, parent.id, name)
                    .map(drop)
                    .map_err(fs_error)
            }
            ((_, Place::Aside(from)), (_, Place::Aside(to))) => from.copy(&to).map_err(fs_error),
            _ => Err(FsError::Forbidden),
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
            self.at(path, move |vfs, path, place| match place {
                Place::Catalog => {
                    let attr = vfs.lookup_path(path).map_err(fs_error)?;
                    vfs.setattr(attr.id, SetAttr::mtime_ns(mtime_ns), None)
                        .map(drop)
                        .map_err(fs_error)
                }
                Place::Aside(file) => {
                    let write = AsideOpen {
                        write: true,
                        ..AsideOpen::default()
                    };
                    file.open(write)
                        .map_err(fs_error)?
                        .set_modified(time)
                        .map_err(|err| io_error("setting the time of", err))
                }
                Place::Probe => Err(FsError::Forbidden),
            })
            .await
        }
        .boxed()
    }

    fn have_props<'a>(&'a self, _: &'a DavPath) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async { true })
    }

    /// Sets and removes properties, all or none; Finder files kept aside and probe
    /// files take none.
    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        self.at(path, move |vfs, path, place| {
            let node = node_at(vfs, path, place)?.ok_or(FsError::Forbidden)?;
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
            self.here(path, move |vfs, path, place| {
                let Some(node) = node_at(vfs, path, place)? else {
                    return Ok(Vec::new());
                };
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
            self.here(path, move |vfs, path, place| {
                let node = node_at(vfs, path, place)?.ok_or(FsError::NotFound)?;
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

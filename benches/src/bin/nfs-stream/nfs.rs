//! The one-at-a-time MOUNT and NFSv3 calls that come before and after a stream: getting the
//! export's root handle, walking a path, a file's size, the server's transfer limits,
//! creating the file to write, committing it and removing it.

use anyhow::{Context, Result, bail};
use nfs3_types::mount::{MOUNT_PROGRAM, dirpath, mountres3};
use nfs3_types::nfs3::{
    COMMIT3args, COMMIT3res, CREATE3args, CREATE3res, FSINFO3args, FSINFO3res, GETATTR3args,
    GETATTR3res, LOOKUP3args, LOOKUP3res, NFS_PROGRAM, Nfs3Option, Nfs3Result, REMOVE3args,
    REMOVE3res, createhow3, diropargs3, ftype3, nfs_fh3, sattr3, writeverf3,
};
use nfs3_types::xdr_codec::Opaque;

use crate::rpc::{Connection, Procedure};

/// The handle of `export`'s root, from MOUNTPROC3_MNT on a connection to the MOUNT service.
pub fn mount(conn: &mut Connection, export: &str) -> Result<nfs_fh3> {
    let procedure = Procedure::Mount(MOUNT_PROGRAM::MOUNTPROC3_MNT);
    let path = dirpath(Opaque::borrowed(export.as_bytes()));
    match conn.call::<mountres3>(procedure, &path)? {
        mountres3::Ok(ok) => Ok(nfs_fh3 {
            data: Opaque::owned(ok.fhandle.0.into_owned()),
        }),
        mountres3::Err(stat) => bail!("{procedure} of {export:?} failed: {stat}"),
    }
}

/// The handle of `path` (components separated by '/') under the directory `dir`.
pub fn lookup_path(conn: &mut Connection, dir: nfs_fh3, path: &str) -> Result<nfs_fh3> {
    path.split('/')
        .filter(|name| !name.is_empty())
        .try_fold(dir, |dir, name| lookup(conn, dir, name))
}

/// The handle of `name` in the directory `dir` (NFSPROC3_LOOKUP).
fn lookup(conn: &mut Connection, dir: nfs_fh3, name: &str) -> Result<nfs_fh3> {
    let procedure = Procedure::Nfs(NFS_PROGRAM::NFSPROC3_LOOKUP);
    let args = LOOKUP3args {
        what: diropargs3 {
            dir,
            name: name.as_bytes().into(),
        },
    };
    let res: LOOKUP3res = conn.call(procedure, &args)?;
    Ok(ok(procedure, res)
        .with_context(|| format!("looking up {name:?}"))?
        .object)
}

/// The size of the regular file `file` (NFSPROC3_GETATTR).
pub fn file_size(conn: &mut Connection, file: &nfs_fh3) -> Result<u64> {
    let procedure = Procedure::Nfs(NFS_PROGRAM::NFSPROC3_GETATTR);
    let res: GETATTR3res = conn.call(procedure, &GETATTR3args::from(file.clone()))?;
    let attrs = ok(procedure, res)?.obj_attributes;
    if !matches!(attrs.type_, ftype3::NF3REG) {
        bail!("not a regular file but {:?}", attrs.type_);
    }
    Ok(attrs.size)
}

/// The largest READ and WRITE the server takes (rtmax, wtmax of NFSPROC3_FSINFO).
pub fn transfer_limits(conn: &mut Connection, fsroot: &nfs_fh3) -> Result<(u32, u32)> {
    let procedure = Procedure::Nfs(NFS_PROGRAM::NFSPROC3_FSINFO);
    let res: FSINFO3res = conn.call(procedure, &FSINFO3args::from(fsroot.clone()))?;
    let info = ok(procedure, res)?;
    Ok((info.rtmax, info.wtmax))
}

/// Creates `name` in `dir`, or truncates it to 0 bytes if it exists (NFSPROC3_CREATE
/// UNCHECKED, mode 0644); returns its handle.
pub fn create(conn: &mut Connection, dir: nfs_fh3, name: &str) -> Result<nfs_fh3> {
    let procedure = Procedure::Nfs(NFS_PROGRAM::NFSPROC3_CREATE);
    let attrs = sattr3 {
        mode: Nfs3Option::Some(0o644),
        size: Nfs3Option::Some(0),
        ..sattr3::default()
    };
    let args = CREATE3args {
        where_: diropargs3 {
            dir: dir.clone(),
            name: name.as_bytes().into(),
        },
        how: createhow3::UNCHECKED(attrs),
    };
    let res: CREATE3res = conn.call(procedure, &args)?;
    match ok(procedure, res)
        .with_context(|| format!("creating {name:?}"))?
        .obj
    {
        Nfs3Option::Some(file) => Ok(file),
        // The reply may leave the handle out; then it is looked up.
        Nfs3Option::None => lookup(conn, dir, name),
    }
}

/// Commits everything written to `file` to stable storage (NFSPROC3_COMMIT of the whole
/// file); returns the server's write verifier.
pub fn commit(conn: &mut Connection, file: &nfs_fh3) -> Result<writeverf3> {
    let procedure = Procedure::Nfs(NFS_PROGRAM::NFSPROC3_COMMIT);
    let args = COMMIT3args {
        file: file.clone(),
        offset: 0,
        count: 0,
    };
    let res: COMMIT3res = conn.call(procedure, &args)?;
    Ok(ok(procedure, res)?.verf)
}

/// Removes the file `name` from the directory `dir` (NFSPROC3_REMOVE).
pub fn remove(conn: &mut Connection, dir: nfs_fh3, name: &str) -> Result<()> {
    let procedure = Procedure::Nfs(NFS_PROGRAM::NFSPROC3_REMOVE);
    let args = REMOVE3args {
        object: diropargs3 {
            dir,
            name: name.as_bytes().into(),
        },
    };
    let res: REMOVE3res = conn.call(procedure, &args)?;
    ok(procedure, res).with_context(|| format!("removing {name:?}"))?;
    Ok(())
}

/// The result of `procedure` if its status is NFS3_OK, else an error naming both.
pub fn ok<T, E>(procedure: Procedure, res: Nfs3Result<T, E>) -> Result<T> {
    match res {
        Nfs3Result::Ok(value) => Ok(value),
        Nfs3Result::Err((stat, _)) => bail!("{procedure} failed: {stat}"),
    }
}

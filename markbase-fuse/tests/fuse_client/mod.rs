//! A FUSE client in memory: requests are encoded with fuse-backend-rs's own ABI
//! structs and handed to its [`Server::handle_message`], exactly as a request thread
//! hands it what it read from `/dev/fuse`, and replies are decoded again. No kernel,
//! no mount, no root.
//!
//! A request is one buffer (`InHeader` and the opcode's arguments) read through
//! [`Reader::from_fuse_buffer`]. A reply is composed by a [`FuseDevWriter`] in a buffer
//! of ours and then written to a file descriptor, as to `/dev/fuse`; here that is a
//! memfd, read back after each request. Everything the server wrote for one request
//! must be exactly one message (its `OutHeader.len` is what was written, its `unique`
//! the request's), or none for `FORGET`.

use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::mem::size_of;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use fuse_backend_rs::abi::fuse_abi::{
    AttrOut, CreateIn, Dirent, EntryOut, FlushIn, ForgetIn, FsOptions, FsyncIn, GETATTR_FH,
    GetattrIn, InHeader, InitIn, InitIn2, InitOut, KERNEL_MINOR_VERSION, KERNEL_VERSION, Kstatfs,
    LinkIn, MkdirIn, MknodIn, Opcode, OpenIn, OpenOut, OutHeader, ReadIn, ReleaseIn, Rename2In,
    RenameIn, SetattrIn, WriteIn, WriteOut,
};
use fuse_backend_rs::api::server::{MAX_BUFFER_SIZE, Server};
use fuse_backend_rs::transport::{FuseBuf, FuseDevWriter, Reader};
use markbase_fuse::MarkbaseFs;
use vm_memory::ByteValued;

/// The reply buffer: the largest reply (a 1 MiB read) and its header page, as a
/// request thread allocates it.
const REPLY_BUFFER: usize = MAX_BUFFER_SIZE as usize + 4096;

/// An errno a request was answered with (the negated `OutHeader.error`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "errno {} ({})",
            self.0,
            io::Error::from_raw_os_error(self.0)
        )
    }
}

/// What a request got: its errno, or the reply's body.
pub type Answer<T> = Result<T, Errno>;

/// One entry of a READDIR reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub ino: u64,
    /// The offset to pass to continue after this entry.
    pub off: u64,
    /// `DT_DIR`, `DT_REG`...
    pub type_: u32,
    pub name: Vec<u8>,
}

impl Listed {
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.name).expect("a UTF-8 name")
    }
}

/// One entry of a READDIRPLUS reply: the entry and what a LOOKUP of it would say.
#[derive(Debug)]
pub struct ListedPlus {
    pub entry: EntryOut,
    pub dirent: Listed,
}

/// `T` from exactly its bytes.
pub fn decode<T: ByteValued + Default>(bytes: &[u8], what: &str) -> T {
    assert_eq!(
        bytes.len(),
        size_of::<T>(),
        "{what}: reply body of {} bytes, {} expected",
        bytes.len(),
        size_of::<T>()
    );
    let mut value = T::default();
    value.as_mut_slice().copy_from_slice(bytes);
    value
}

/// `name` as the kernel sends it: NUL-terminated.
fn c_name(name: &[u8]) -> Vec<u8> {
    CString::new(name)
        .expect("a name without NUL")
        .into_bytes_with_nul()
}

/// A FUSE client of one `MarkbaseFs`, asking as user `uid`/`gid`.
pub struct Client {
    server: Server<Arc<MarkbaseFs>>,
    fs: Arc<MarkbaseFs>,
    replies: File,
    reply_buf: Vec<u8>,
    unique: u64,
    /// The user the requests come from (`InHeader.uid`, the `Context` markbase gets).
    pub uid: u32,
    /// The group the requests come from.
    pub gid: u32,
}

impl Client {
    /// A client of `fs`, asking as the user running the test. No INIT is sent.
    pub fn new(fs: MarkbaseFs) -> Self {
        let fs = Arc::new(fs);
        let replies = rustix::fs::memfd_create("fuse-replies", rustix::fs::MemfdFlags::CLOEXEC)
            .expect("memfd for replies");
        Self {
            server: Server::new(Arc::clone(&fs)),
            fs,
            replies: File::from(replies),
            reply_buf: vec![0; REPLY_BUFFER],
            unique: 0,
            // SAFETY: geteuid and getegid have no preconditions and cannot fail.
            uid: unsafe { libc::geteuid() },
            gid: unsafe { libc::getegid() },
        }
    }

    /// The filesystem served.
    pub fn fs(&self) -> &MarkbaseFs {
        &self.fs
    }

    /// Sends one request (`parts` after the `InHeader`) about `nodeid`; its reply,
    /// or `None` when the server sent none.
    pub fn send(&mut self, opcode: Opcode, nodeid: u64, parts: &[&[u8]]) -> Option<Reply> {
        self.unique += 1;
        let len = size_of::<InHeader>() + parts.iter().map(|part| part.len()).sum::<usize>();
        let header = InHeader {
            len: u32::try_from(len).expect("a request under 4 GiB"),
            opcode: opcode as u32,
            unique: self.unique,
            nodeid,
            uid: self.uid,
            gid: self.gid,
            pid: std::process::id(),
            padding: 0,
        };
        let mut request = Vec::with_capacity(len);
        request.extend_from_slice(header.as_slice());
        for part in parts {
            request.extend_from_slice(part);
        }
        let reader = Reader::<()>::from_fuse_buffer(FuseBuf::new(&mut request))
            .expect("a reader over the request");
        let writer = FuseDevWriter::<()>::new(self.replies.as_raw_fd(), &mut self.reply_buf)
            .expect("a writer over the reply buffer");
        if let Err(err) = self
            .server
            .handle_message(reader, writer.into(), None, None)
        {
            panic!("{opcode:?} on node {nodeid}: the server failed: {err}");
        }
        let written = self.take_written();
        if written.is_empty() {
            return None;
        }
        let (head, body) = written.split_at(size_of::<OutHeader>().min(written.len()));
        let header: OutHeader = decode(head, "OutHeader");
        assert_eq!(
            header.len as usize,
            written.len(),
            "{opcode:?}: the reply says it is {} bytes long, {} were written",
            header.len,
            written.len()
        );
        assert_eq!(
            header.unique, self.unique,
            "{opcode:?}: reply to another request"
        );
        assert!(
            header.error <= 0,
            "{opcode:?}: error {} is not negated",
            header.error
        );
        if header.error != 0 {
            assert!(body.is_empty(), "{opcode:?}: an error reply with a body");
        }
        Some(Reply {
            opcode,
            error: -header.error,
            body: body.to_vec(),
        })
    }

    /// Sends a request that must be answered.
    pub fn call(&mut self, opcode: Opcode, nodeid: u64, parts: &[&[u8]]) -> Reply {
        self.send(opcode, nodeid, parts)
            .unwrap_or_else(|| panic!("{opcode:?} on node {nodeid}: no reply"))
    }

    /// What the server wrote since the last request, leaving the memfd empty.
    fn take_written(&mut self) -> Vec<u8> {
        let mut written = Vec::new();
        self.replies
            .seek(SeekFrom::Start(0))
            .expect("rewind replies");
        self.replies
            .read_to_end(&mut written)
            .expect("read replies");
        self.replies.set_len(0).expect("empty replies");
        self.replies
            .seek(SeekFrom::Start(0))
            .expect("rewind replies");
        written
    }

    /// INIT with the kernel's version (7.33), `offered` features (their upper half
    /// in `InitIn2`, sent when `offered` has `INIT_EXT`) and `max_readahead`.
    pub fn init(&mut self, offered: FsOptions, max_readahead: u32) -> Answer<InitOut> {
        let bits = offered.bits();
        let init = InitIn {
            major: KERNEL_VERSION,
            minor: KERNEL_MINOR_VERSION,
            max_readahead,
            flags: bits as u32,
        };
        let init2 = InitIn2 {
            flags2: (bits >> 32) as u32,
            unused: [0; 11],
        };
        let mut parts: Vec<&[u8]> = vec![init.as_slice()];
        if offered.contains(FsOptions::INIT_EXT) {
            parts.push(init2.as_slice());
        }
        self.call(Opcode::Init, 0, &parts).obj()
    }

    pub fn lookup(&mut self, parent: u64, name: &[u8]) -> Answer<EntryOut> {
        self.call(Opcode::Lookup, parent, &[&c_name(name)]).obj()
    }

    /// FORGET, which has no reply: what the server sent anyway.
    pub fn forget(&mut self, ino: u64, nlookup: u64) -> Option<Reply> {
        self.send(Opcode::Forget, ino, &[ForgetIn { nlookup }.as_slice()])
    }

    /// GETATTR, naming the open file `fh` if given (as `fstat` does).
    pub fn getattr(&mut self, ino: u64, fh: Option<u64>) -> Answer<AttrOut> {
        let args = GetattrIn {
            flags: if fh.is_some() { GETATTR_FH } else { 0 },
            dummy: 0,
            fh: fh.unwrap_or(0),
        };
        self.call(Opcode::Getattr, ino, &[args.as_slice()]).obj()
    }

    pub fn setattr(&mut self, ino: u64, args: SetattrIn) -> Answer<AttrOut> {
        self.call(Opcode::Setattr, ino, &[args.as_slice()]).obj()
    }

    pub fn mkdir(&mut self, parent: u64, name: &[u8], mode: u32, umask: u32) -> Answer<EntryOut> {
        let args = MkdirIn { mode, umask };
        self.call(Opcode::Mkdir, parent, &[args.as_slice(), &c_name(name)])
            .obj()
    }

    pub fn mknod(&mut self, parent: u64, name: &[u8], mode: u32, rdev: u32) -> Answer<EntryOut> {
        let args = MknodIn {
            mode,
            rdev,
            umask: 0,
            padding: 0,
        };
        self.call(Opcode::Mknod, parent, &[args.as_slice(), &c_name(name)])
            .obj()
    }

    pub fn symlink(&mut self, parent: u64, name: &[u8], target: &[u8]) -> Answer<EntryOut> {
        self.call(Opcode::Symlink, parent, &[&c_name(name), &c_name(target)])
            .obj()
    }

    /// LINK: a new name `name` in `parent` for node `ino`.
    pub fn link(&mut self, ino: u64, parent: u64, name: &[u8]) -> Answer<EntryOut> {
        let args = LinkIn { oldnodeid: ino };
        self.call(Opcode::Link, parent, &[args.as_slice(), &c_name(name)])
            .obj()
    }

    pub fn unlink(&mut self, parent: u64, name: &[u8]) -> Answer<()> {
        self.call(Opcode::Unlink, parent, &[&c_name(name)]).empty()
    }

    pub fn rmdir(&mut self, parent: u64, name: &[u8]) -> Answer<()> {
        self.call(Opcode::Rmdir, parent, &[&c_name(name)]).empty()
    }

    /// RENAME (the one without flags).
    pub fn rename(&mut self, dir: u64, name: &[u8], new_dir: u64, new_name: &[u8]) -> Answer<()> {
        let args = RenameIn { newdir: new_dir };
        self.call(
            Opcode::Rename,
            dir,
            &[args.as_slice(), &c_name(name), &c_name(new_name)],
        )
        .empty()
    }

    /// RENAME2 with `flags` (`RENAME_NOREPLACE`...).
    pub fn rename2(
        &mut self,
        dir: u64,
        name: &[u8],
        new_dir: u64,
        new_name: &[u8],
        flags: u32,
    ) -> Answer<()> {
        let args = Rename2In {
            newdir: new_dir,
            flags,
            padding: 0,
        };
        self.call(
            Opcode::Rename2,
            dir,
            &[args.as_slice(), &c_name(name), &c_name(new_name)],
        )
        .empty()
    }

    /// OPEN with `open(2)` flags (`O_RDONLY`, `O_WRONLY | O_TRUNC`...).
    pub fn open(&mut self, ino: u64, flags: i32) -> Answer<OpenOut> {
        let args = OpenIn {
            flags: flags as u32,
            fuse_flags: 0,
        };
        self.call(Opcode::Open, ino, &[args.as_slice()]).obj()
    }

    /// CREATE: the new entry and the open file.
    pub fn create(
        &mut self,
        parent: u64,
        name: &[u8],
        flags: i32,
        mode: u32,
        umask: u32,
    ) -> Answer<(EntryOut, OpenOut)> {
        let args = CreateIn {
            flags: flags as u32,
            mode,
            umask,
            fuse_flags: 0,
        };
        let body = self
            .call(Opcode::Create, parent, &[args.as_slice(), &c_name(name)])
            .result()?;
        let (entry, open) = body.split_at(size_of::<EntryOut>().min(body.len()));
        Ok((decode(entry, "CREATE entry"), decode(open, "CREATE open")))
    }

    /// READ of `size` bytes at `offset`: the bytes the reply carries.
    pub fn read(&mut self, ino: u64, fh: u64, offset: u64, size: u32) -> Answer<Vec<u8>> {
        let args = ReadIn {
            fh,
            offset,
            size,
            ..ReadIn::default()
        };
        self.call(Opcode::Read, ino, &[args.as_slice()]).result()
    }

    /// WRITE of `data` at `offset`: the count the server says it wrote.
    pub fn write(&mut self, ino: u64, fh: u64, offset: u64, data: &[u8]) -> Answer<u32> {
        let args = WriteIn {
            fh,
            offset,
            size: u32::try_from(data.len()).expect("a write under 4 GiB"),
            ..WriteIn::default()
        };
        let out: WriteOut = self
            .call(Opcode::Write, ino, &[args.as_slice(), data])
            .obj()?;
        Ok(out.size)
    }

    pub fn flush(&mut self, ino: u64, fh: u64) -> Answer<()> {
        let args = FlushIn {
            fh,
            ..FlushIn::default()
        };
        self.call(Opcode::Flush, ino, &[args.as_slice()]).empty()
    }

    pub fn fsync(&mut self, ino: u64, fh: u64, datasync: bool) -> Answer<()> {
        let args = FsyncIn {
            fh,
            fsync_flags: u32::from(datasync),
            padding: 0,
        };
        self.call(Opcode::Fsync, ino, &[args.as_slice()]).empty()
    }

    pub fn release(&mut self, ino: u64, fh: u64) -> Answer<()> {
        let args = ReleaseIn {
            fh,
            ..ReleaseIn::default()
        };
        self.call(Opcode::Release, ino, &[args.as_slice()]).empty()
    }

    pub fn opendir(&mut self, ino: u64) -> Answer<OpenOut> {
        let args = OpenIn {
            flags: libc::O_RDONLY as u32 | libc::O_DIRECTORY as u32,
            fuse_flags: 0,
        };
        self.call(Opcode::Opendir, ino, &[args.as_slice()]).obj()
    }

    pub fn releasedir(&mut self, ino: u64, fh: u64) -> Answer<()> {
        let args = ReleaseIn {
            fh,
            ..ReleaseIn::default()
        };
        self.call(Opcode::Releasedir, ino, &[args.as_slice()])
            .empty()
    }

    /// READDIR from `offset` into a buffer of `size` bytes.
    pub fn readdir(&mut self, ino: u64, fh: u64, offset: u64, size: u32) -> Answer<Vec<Listed>> {
        let body = self.readdir_request(Opcode::Readdir, ino, fh, offset, size)?;
        let mut rest = &body[..];
        let mut listed = Vec::new();
        while !rest.is_empty() {
            listed.push(take_dirent(&mut rest));
        }
        Ok(listed)
    }

    /// READDIRPLUS from `offset` into a buffer of `size` bytes.
    pub fn readdirplus(
        &mut self,
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Answer<Vec<ListedPlus>> {
        let body = self.readdir_request(Opcode::Readdirplus, ino, fh, offset, size)?;
        let mut rest = &body[..];
        let mut listed = Vec::new();
        while !rest.is_empty() {
            assert!(rest.len() >= size_of::<EntryOut>(), "a truncated entry");
            let (entry, after) = rest.split_at(size_of::<EntryOut>());
            rest = after;
            listed.push(ListedPlus {
                entry: decode(entry, "READDIRPLUS entry"),
                dirent: take_dirent(&mut rest),
            });
        }
        Ok(listed)
    }

    fn readdir_request(
        &mut self,
        opcode: Opcode,
        ino: u64,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Answer<Vec<u8>> {
        let args = ReadIn {
            fh,
            offset,
            size,
            ..ReadIn::default()
        };
        let body = self.call(opcode, ino, &[args.as_slice()]).result()?;
        assert!(
            body.len() <= size as usize,
            "{opcode:?}: {} bytes in a {size}-byte buffer",
            body.len()
        );
        Ok(body)
    }

    /// The whole listing of `ino`, READDIR after READDIR from offset 0 with a buffer
    /// of `size` bytes, until one comes back empty.
    pub fn list_all(&mut self, ino: u64, size: u32) -> Vec<Listed> {
        let mut all: Vec<Listed> = Vec::new();
        loop {
            let offset = all.last().map_or(0, |last| last.off);
            let batch = self
                .readdir(ino, 0, offset, size)
                .unwrap_or_else(|errno| panic!("READDIR of {ino} at {offset}: {errno:?}"));
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
            assert!(all.len() < 100_000, "READDIR of {ino} does not end");
        }
    }

    pub fn statfs(&mut self, ino: u64) -> Answer<Kstatfs> {
        self.call(Opcode::Statfs, ino, &[]).obj()
    }
}

/// One `Dirent`, its name and its padding (to 8 bytes) from the front of `rest`.
fn take_dirent(rest: &mut &[u8]) -> Listed {
    assert!(rest.len() >= size_of::<Dirent>(), "a truncated dirent");
    let (head, after) = rest.split_at(size_of::<Dirent>());
    let dirent: Dirent = decode(head, "Dirent");
    let padded = (dirent.namelen as usize).next_multiple_of(8);
    assert!(after.len() >= padded, "a dirent whose name is cut off");
    let (name, padding) = after[..padded].split_at(dirent.namelen as usize);
    assert!(padding.iter().all(|&b| b == 0), "padding that is not zeros");
    *rest = &after[padded..];
    Listed {
        ino: dirent.ino,
        off: dirent.off,
        type_: dirent.type_,
        name: name.to_vec(),
    }
}

/// A reply: an errno, or a body.
#[derive(Debug)]
pub struct Reply {
    pub opcode: Opcode,
    /// 0, or the errno.
    pub error: i32,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body, or the errno.
    pub fn result(self) -> Answer<Vec<u8>> {
        match self.error {
            0 => Ok(self.body),
            errno => Err(Errno(errno)),
        }
    }

    /// A body that is exactly one `T`, or the errno.
    pub fn obj<T: ByteValued + Default>(self) -> Answer<T> {
        let what = format!("{:?}", self.opcode);
        self.result().map(|body| decode(&body, &what))
    }

    /// An empty body, or the errno.
    pub fn empty(self) -> Answer<()> {
        let opcode = self.opcode;
        let body = self.result()?;
        assert!(
            body.is_empty(),
            "{opcode:?}: a body of {} bytes",
            body.len()
        );
        Ok(())
    }
}

//! ONC RPC (RFC 5531) over one TCP connection with record marking, several calls in flight.
//!
//! Calls are sent whole (one record of one fragment each); replies are read into one buffer
//! that is reused for every record, and matched to their calls by xid, in whatever order the
//! server sends them.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufReader, Cursor, Read, Write};
use std::net::TcpStream;

use anyhow::{Context, Result, bail, ensure};
use nfs3_types::mount::{self, MOUNT_PROGRAM};
use nfs3_types::nfs3::{self, NFS_PROGRAM};
use nfs3_types::rpc::{
    RPC_VERSION_2, accept_stat_data, auth_unix, call_body, fragment_header, msg_body, opaque_auth,
    reply_body, rpc_msg,
};
use nfs3_types::xdr_codec::{Opaque, Pack, Unpack};

/// Largest reply record accepted: a 1 MiB READ is far below it; anything larger is garbage.
const MAX_RECORD: usize = 64 << 20;

/// Read buffer of the socket: holds the small replies and the headers of the big ones.
const READ_BUFFER: usize = 64 << 10;

/// One remote procedure: of MOUNT version 3 or of NFS version 3.
#[derive(Clone, Copy, Debug)]
pub enum Procedure {
    /// A procedure of the MOUNT protocol (program 100005).
    Mount(MOUNT_PROGRAM),
    /// A procedure of NFS (program 100003).
    Nfs(NFS_PROGRAM),
}

impl Procedure {
    /// Program, version and procedure numbers of the call.
    const fn numbers(self) -> (u32, u32, u32) {
        match self {
            Self::Mount(p) => (mount::PROGRAM, mount::VERSION, p as u32),
            Self::Nfs(p) => (nfs3::PROGRAM, nfs3::VERSION, p as u32),
        }
    }
}

impl fmt::Display for Procedure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mount(p) => p.fmt(f),
            Self::Nfs(p) => p.fmt(f),
        }
    }
}

/// AUTH_UNIX credentials of this process: its real uid and gid, machine name "nfs-stream".
pub fn unix_credentials() -> opaque_auth<'static> {
    // SAFETY: getuid and getgid always succeed and touch no memory of ours.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    opaque_auth::auth_unix(&auth_unix {
        stamp: 0,
        machinename: Opaque::borrowed(b"nfs-stream"),
        uid,
        gid,
        gids: vec![gid],
    })
}

/// A reply whose call the server accepted and ran; `body` is the procedure's result, still
/// in XDR.
#[derive(Debug)]
pub struct Reply<'a> {
    /// The xid of the call this answers.
    pub xid: u32,
    /// The procedure that was called.
    pub procedure: Procedure,
    /// The encoded result (e.g. a `READ3res`), borrowed from the connection's buffer.
    pub body: &'a [u8],
}

/// A TCP connection to one RPC server, with the calls sent on it that await a reply.
pub struct Connection {
    peer: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    cred: opaque_auth<'static>,
    next_xid: u32,
    in_flight: HashMap<u32, Procedure>,
    send: Vec<u8>,
    record: Vec<u8>,
    record_len: usize,
}

impl Connection {
    /// Connects to `host:port` (Nagle off); calls carry `cred`.
    pub fn connect(host: &str, port: u16, cred: opaque_auth<'static>) -> Result<Self> {
        let peer = format!("{host}:{port}");
        let stream = TcpStream::connect(&peer).with_context(|| format!("connecting to {peer}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let writer = stream.try_clone().context("cloning the socket")?;
        Ok(Self {
            peer,
            reader: BufReader::with_capacity(READ_BUFFER, stream),
            writer,
            cred,
            // Distinct across processes, so that no server's duplicate request cache takes one
            // process's call for another's.
            next_xid: std::process::id().rotate_left(16),
            in_flight: HashMap::new(),
            send: Vec::new(),
            record: Vec::new(),
            record_len: 0,
        })
    }

    /// Sends one call of `procedure` with `args`, without waiting; returns its xid.
    pub fn send_call(&mut self, procedure: Procedure, args: &impl Pack) -> Result<u32> {
        let xid = self.next_xid;
        self.next_xid = xid.wrapping_add(1);
        self.encode_call(xid, procedure, args)
            .with_context(|| format!("encoding a {procedure} call"))?;
        self.writer
            .write_all(&self.send)
            .with_context(|| format!("sending a {procedure} call to {}", self.peer))?;
        self.in_flight.insert(xid, procedure);
        Ok(xid)
    }

    /// Receives the next reply, of any call in flight; fails unless the call was accepted
    /// and run (the procedure's own status is the caller's to check).
    pub fn recv_reply(&mut self) -> Result<Reply<'_>> {
        ensure!(
            !self.in_flight.is_empty(),
            "waiting for a reply with no call in flight"
        );
        self.read_record()
            .with_context(|| format!("receiving a reply from {}", self.peer))?;
        let mut cursor = Cursor::new(&self.record[..self.record_len]);
        let (msg, _) = rpc_msg::unpack(&mut cursor).context("decoding an RPC reply header")?;
        let start = usize::try_from(cursor.position()).context("reply offset")?;
        let procedure = self
            .in_flight
            .remove(&msg.xid)
            .with_context(|| format!("reply from {} to unknown xid {:#x}", self.peer, msg.xid))?;
        check_accepted(procedure, msg.body)?;
        Ok(Reply {
            xid: msg.xid,
            procedure,
            body: &self.record[start..self.record_len],
        })
    }

    /// Calls `procedure` and waits for its result (no other call may be in flight).
    pub fn call<R: Unpack>(&mut self, procedure: Procedure, args: &impl Pack) -> Result<R> {
        ensure!(
            self.in_flight.is_empty(),
            "{procedure} called with calls in flight"
        );
        self.send_call(procedure, args)?;
        let reply = self.recv_reply()?;
        let (result, _) = R::unpack(&mut Cursor::new(reply.body))
            .with_context(|| format!("decoding the {procedure} result"))?;
        Ok(result)
    }

    /// Encodes the record of one call (fragment header, RPC header, arguments) into `send`.
    fn encode_call(&mut self, xid: u32, procedure: Procedure, args: &impl Pack) -> Result<()> {
        let (prog, vers, proc) = procedure.numbers();
        let msg = rpc_msg {
            xid,
            body: msg_body::CALL(call_body {
                rpcvers: RPC_VERSION_2,
                prog,
                vers,
                proc,
                cred: self.cred.borrow(),
                verf: opaque_auth::default(),
            }),
        };
        self.send.clear();
        self.send.extend_from_slice(&[0; 4]);
        msg.pack(&mut self.send)?;
        args.pack(&mut self.send)?;
        let len = u32::try_from(self.send.len() - 4)
            .ok()
            .filter(|&len| len <= fragment_header::MASK)
            .context("call larger than one record fragment")?;
        self.send[..4].copy_from_slice(&fragment_header::new(len, true).into_xdr_buf());
        Ok(())
    }

    /// Reads the fragments of one record into `record[..record_len]`, growing it as needed.
    fn read_record(&mut self) -> Result<()> {
        self.record_len = 0;
        loop {
            let mut header = [0; 4];
            self.reader.read_exact(&mut header)?;
            let header = fragment_header::from(header);
            let end = self.record_len + header.fragment_length() as usize;
            ensure!(end <= MAX_RECORD, "reply record over {MAX_RECORD} bytes");
            if self.record.len() < end {
                self.record.resize(end, 0);
            }
            self.reader
                .read_exact(&mut self.record[self.record_len..end])?;
            self.record_len = end;
            if header.eof() {
                return Ok(());
            }
        }
    }
}

/// Fails unless `body` is a reply saying the server accepted the call and ran it.
fn check_accepted(procedure: Procedure, body: msg_body<'_, '_>) -> Result<()> {
    match body {
        msg_body::REPLY(reply_body::MSG_ACCEPTED(accepted)) => match accepted.reply_data {
            accept_stat_data::SUCCESS => Ok(()),
            refused => bail!("{procedure}: the server did not run the call: {refused:?}"),
        },
        msg_body::REPLY(reply_body::MSG_DENIED(denied)) => {
            bail!("{procedure}: the server denied the call: {denied:?}")
        }
        msg_body::CALL(_) => bail!("{procedure}: the server sent a call, not a reply"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use nfs3_types::rpc::{accepted_reply, auth_stat, rejected_reply};
    use nfs3_types::xdr_codec::Void;

    use super::*;

    const NULL: Procedure = Procedure::Nfs(NFS_PROGRAM::NFSPROC3_NULL);

    /// Reads one call record and returns its xid.
    fn read_call(stream: &mut TcpStream) -> u32 {
        let mut header = [0; 4];
        stream.read_exact(&mut header).expect("a fragment header");
        let header = fragment_header::from(header);
        assert!(header.eof(), "calls are sent as one fragment");
        let mut record = vec![0; header.fragment_length() as usize];
        stream.read_exact(&mut record).expect("a call record");
        u32::from_be_bytes(record[..4].try_into().expect("an xid"))
    }

    /// Sends `body` as the reply to `xid`, with `payload` after it, cut into two fragments.
    fn send_reply(stream: &mut TcpStream, xid: u32, body: reply_body<'static>, payload: u32) {
        let mut record = Vec::new();
        let msg = rpc_msg {
            xid,
            body: msg_body::REPLY(body),
        };
        msg.pack(&mut record).expect("packing a reply");
        payload.pack(&mut record).expect("packing its payload");
        let (first, second) = record.split_at(record.len() / 2);
        for (fragment, last) in [(first, false), (second, true)] {
            let len = u32::try_from(fragment.len()).expect("a small fragment");
            stream
                .write_all(&fragment_header::new(len, last).into_xdr_buf())
                .and_then(|()| stream.write_all(fragment))
                .expect("sending a fragment");
        }
    }

    fn accepted() -> reply_body<'static> {
        reply_body::MSG_ACCEPTED(accepted_reply {
            verf: opaque_auth::default(),
            reply_data: accept_stat_data::SUCCESS,
        })
    }

    /// A server that reads `calls` calls, then answers them last first with `reply(i)`.
    fn serve(calls: usize, reply: fn(usize) -> reply_body<'static>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("a client");
            let xids: Vec<u32> = (0..calls).map(|_| read_call(&mut stream)).collect();
            for (i, &xid) in xids.iter().enumerate().rev() {
                send_reply(&mut stream, xid, reply(i), xid.wrapping_add(1));
            }
        });
        port
    }

    fn payload(reply: &Reply<'_>) -> u32 {
        u32::unpack(&mut Cursor::new(reply.body))
            .expect("a payload")
            .0
    }

    #[test]
    fn replies_in_any_order_and_fragments_are_matched_to_their_calls() {
        let port = serve(3, |_| accepted());
        let mut conn =
            Connection::connect("127.0.0.1", port, unix_credentials()).expect("connecting");
        let sent: Vec<u32> = (0..3)
            .map(|_| conn.send_call(NULL, &Void).expect("a call"))
            .collect();
        for &xid in sent.iter().rev() {
            let reply = conn.recv_reply().expect("a reply");
            assert_eq!(reply.xid, xid);
            assert_eq!(payload(&reply), xid.wrapping_add(1));
        }
        conn.recv_reply().expect_err("no call in flight");
    }

    #[test]
    fn a_denied_call_names_its_procedure() {
        let port = serve(1, |_| {
            reply_body::MSG_DENIED(rejected_reply::auth_error(auth_stat::AUTH_TOOWEAK))
        });
        let mut conn =
            Connection::connect("127.0.0.1", port, unix_credentials()).expect("connecting");
        let err = conn.call::<u32>(NULL, &Void).expect_err("denied");
        let message = format!("{err:#}");
        assert!(
            message.contains("NFSPROC3_NULL") && message.contains("AUTH_TOOWEAK"),
            "{message}"
        );
    }
}

//! What a hostile or broken client can do to the NFS server over raw TCP: garbage,
//! truncated and oversized RPC records, calls of unknown programs, versions and
//! procedures, undecodable arguments, invalid names, stalled and idle
//! connections. Each must get its RPC or NFS error (or its connection closed)
//! without changing the catalog or the store, and the server must go on serving
//! other clients promptly: after each, a fresh connection gets NULL and GETATTR.

mod common;

use std::io::Cursor;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use nfs3_types::nfs3::{self, createhow3, nfsstat3};
use nfs3_types::rpc::{
    RPC_VERSION_2, accept_stat_data, call_body, fragment_header, msg_body, opaque_auth, reply_body,
    rpc_msg,
};
use nfs3_types::xdr_codec::{Pack, Unpack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// How long a server that is still healthy may take to answer.
const PROMPT: Duration = Duration::from_secs(5);

/// The bytes of one RPC call record: header, call and `args` (already XDR).
fn call_record(xid: u32, prog: u32, vers: u32, proc: u32, args: &[u8]) -> Vec<u8> {
    let msg = rpc_msg {
        xid,
        body: msg_body::CALL(call_body {
            rpcvers: RPC_VERSION_2,
            prog,
            vers,
            proc,
            cred: opaque_auth::default(),
            verf: opaque_auth::default(),
        }),
    };
    let mut body = Vec::new();
    msg.pack(&mut body).unwrap();
    body.extend_from_slice(args);
    let mut record = Vec::new();
    fragment_header::new(body.len() as u32, true)
        .pack(&mut record)
        .unwrap();
    record.extend_from_slice(&body);
    record
}

/// The XDR of `value`.
fn xdr(value: &impl Pack) -> Vec<u8> {
    let mut out = Vec::new();
    value.pack(&mut out).unwrap();
    out
}

/// Reads one reply record from `stream`: its xid, its accept status and the
/// bytes of the result after it.
async fn read_reply(stream: &mut TcpStream) -> (u32, accept_stat_data, Vec<u8>) {
    let mut header = [0; 4];
    timeout(PROMPT, stream.read_exact(&mut header))
        .await
        .expect("a reply in time")
        .expect("a reply header");
    let header = fragment_header::from(header);
    assert!(header.eof(), "a reply in one fragment");
    let mut body = vec![0; header.fragment_length() as usize];
    timeout(PROMPT, stream.read_exact(&mut body))
        .await
        .expect("a reply in time")
        .expect("a reply body");
    let mut cursor = Cursor::new(body);
    let (msg, _) = rpc_msg::unpack(&mut cursor).expect("an RPC reply");
    let msg_body::REPLY(reply_body::MSG_ACCEPTED(accepted)) = msg.body else {
        panic!("not an accepted reply: {msg:?}");
    };
    let rest = cursor.get_ref()[cursor.position() as usize..].to_vec();
    (msg.xid, accepted.reply_data, rest)
}

/// Sends one call on a new connection and returns its reply.
async fn call(addr: SocketAddr, record: &[u8]) -> (u32, accept_stat_data, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(record).await.unwrap();
    read_reply(&mut stream).await
}

/// Waits for the server to close `stream` (end of file or a reset), within
/// `limit`; whatever it sent before is ignored.
async fn assert_closed(stream: &mut TcpStream, limit: Duration) {
    let closed = timeout(limit, async {
        let mut buf = [0; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection {limit:?}");
}

/// Asserts that a fresh connection gets NULL and GETATTR of the root promptly.
async fn assert_still_serves(served: &Served) {
    let started = Instant::now();
    timeout(PROMPT, async {
        let mut client = served.client().await;
        client.null().await;
        let root = client.root().await;
        let attr = client.getattr(&root).await.expect("GETATTR of the root");
        assert_eq!(attr.fileid, ROOT_ID as u64);
    })
    .await
    .unwrap_or_else(|_| panic!("no NULL and GETATTR within {PROMPT:?}"));
    assert!(started.elapsed() < PROMPT);
}

/// The process's virtual size in KiB (the server runs in this process).
fn virtual_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmSize in /proc/self/status")
}

/// The rows of the catalog, and the files of the store.
fn catalog_and_store(served: &Served) -> (i64, usize) {
    let rows = served
        .sql()
        .query_row("SELECT count(*) FROM nodes", [], |row| row.get(0))
        .unwrap();
    let files = std::fs::read_dir(served.store()).map_or(0, |dir| dir.count());
    (rows, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_close_the_connection() {
    let served = Served::start().await;
    // Not RPC at all: the first four bytes read as a huge record header.
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_closed(&mut stream, PROMPT).await;
    assert_still_serves(&served).await;

    // A record of the right length holding no RPC message.
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    let mut record = xdr(&fragment_header::new(32, true));
    record.extend((0..32u8).map(|i| i.wrapping_mul(37) | 0x80));
    stream.write_all(&record).await.unwrap();
    assert_closed(&mut stream, PROMPT).await;
    assert_still_serves(&served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_record_is_dropped_with_its_connection() {
    let served = Served::start().await;
    let record = call_record(7, nfs3::PROGRAM, nfs3::VERSION, 0, &[]);
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream.write_all(&record[..record.len() - 8]).await.unwrap();
    stream.shutdown().await.unwrap();
    assert_closed(&mut stream, PROMPT).await;
    assert_still_serves(&served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_header_of_two_gib_closes_the_connection_without_allocating() {
    let served = Served::start().await;
    let before = virtual_kib();
    let mut streams = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(served.addr).await.unwrap();
        let mut bytes = xdr(&fragment_header::new(fragment_header::MASK, true));
        bytes.extend_from_slice(&[0; 1024]);
        stream.write_all(&bytes).await.unwrap();
        streams.push(stream);
    }
    // Others are served meanwhile.
    assert_still_serves(&served).await;
    for stream in &mut streams {
        assert_closed(stream, PROMPT).await;
    }
    let grown = virtual_kib().saturating_sub(before);
    assert!(
        grown < 1024 * 1024,
        "eight 2 GiB headers grew the process by {grown} KiB"
    );
    // Fragments that never end their record are bounded too: the server closes
    // the connection (what the socket buffers took before is not a measure).
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    let fragment = vec![0; 1 << 20];
    let header = xdr(&fragment_header::new(fragment.len() as u32, false));
    for _ in 0..16 {
        let written = async {
            stream.write_all(&header).await?;
            stream.write_all(&fragment).await
        };
        if !matches!(timeout(PROMPT, written).await, Ok(Ok(()))) {
            break;
        }
    }
    assert_closed(&mut stream, PROMPT).await;
    assert_still_serves(&served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_programs_versions_and_procedures_get_their_rpc_errors() {
    let served = Served::start().await;
    let (xid, stat, _) = call(served.addr, &call_record(11, 100_099, 1, 0, &[])).await;
    assert_eq!(xid, 11);
    assert!(matches!(stat, accept_stat_data::PROG_UNAVAIL), "{stat:?}");

    let (_, stat, _) = call(served.addr, &call_record(12, nfs3::PROGRAM, 4, 0, &[])).await;
    match stat {
        accept_stat_data::PROG_MISMATCH { low, high } => assert_eq!((low, high), (3, 3)),
        other => panic!("NFS version 4: {other:?}"),
    }
    let (_, stat, _) = call(served.addr, &call_record(13, nfs3::PROGRAM, 2, 0, &[])).await;
    assert!(
        matches!(stat, accept_stat_data::PROG_MISMATCH { .. }),
        "{stat:?}"
    );

    let (_, stat, _) = call(
        served.addr,
        &call_record(14, nfs3::PROGRAM, nfs3::VERSION, 99, &[]),
    )
    .await;
    assert!(matches!(stat, accept_stat_data::PROC_UNAVAIL), "{stat:?}");

    // The connection stays usable after an RPC error.
    let mut stream = TcpStream::connect(served.addr).await.unwrap();
    stream
        .write_all(&call_record(15, nfs3::PROGRAM, nfs3::VERSION, 99, &[]))
        .await
        .unwrap();
    let (_, stat, _) = read_reply(&mut stream).await;
    assert!(matches!(stat, accept_stat_data::PROC_UNAVAIL));
    stream
        .write_all(&call_record(16, nfs3::PROGRAM, nfs3::VERSION, 0, &[]))
        .await
        .unwrap();
    let (xid, stat, _) = read_reply(&mut stream).await;
    assert_eq!(xid, 16);
    assert!(matches!(stat, accept_stat_data::SUCCESS), "NULL: {stat:?}");
    assert_still_serves(&served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_arguments_are_garbage_args() {
    let served = Served::start().await;
    const GETATTR: u32 = 1;
    const LOOKUP: u32 = 3;
    // A handle whose length runs past the record.
    let mut args = xdr(&64u32);
    args.extend_from_slice(&[0; 8]);
    let (_, stat, _) = call(
        served.addr,
        &call_record(21, nfs3::PROGRAM, nfs3::VERSION, GETATTR, &args),
    )
    .await;
    assert!(matches!(stat, accept_stat_data::GARBAGE_ARGS), "{stat:?}");
    // No arguments at all.
    let (_, stat, _) = call(
        served.addr,
        &call_record(22, nfs3::PROGRAM, nfs3::VERSION, LOOKUP, &[]),
    )
    .await;
    assert!(matches!(stat, accept_stat_data::GARBAGE_ARGS), "{stat:?}");
    // A handle longer than NFS3_FHSIZE.
    let mut args = xdr(&1000u32);
    args.extend_from_slice(&[0; 1000]);
    let (_, stat, _) = call(
        served.addr,
        &call_record(23, nfs3::PROGRAM, nfs3::VERSION, GETATTR, &args),
    )
    .await;
    assert!(
        matches!(
            stat,
            accept_stat_data::GARBAGE_ARGS | accept_stat_data::SUCCESS
        ),
        "{stat:?}"
    );
    assert_still_serves(&served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_names_are_refused_and_nothing_is_made() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let dir = client.mkdir(&root, b"d").await.unwrap();
    let file = client.new_file(&dir, b"ok", b"x").await;
    let before = catalog_and_store(&served);

    let long = vec![b'n'; 256];
    let bad: [&[u8]; 7] = [b"a/b", b"/", b"a\0b", &long, b"", b"\xff\xfe", b"."];
    for name in bad {
        let shown = String::from_utf8_lossy(name).into_owned();
        let created = client
            .create(&dir, name, createhow3::GUARDED(no_change()))
            .await;
        assert!(created.is_err(), "CREATE {shown:?}: {created:?}");
        assert!(client.mkdir(&dir, name).await.is_err(), "MKDIR {shown:?}");
        assert!(
            client.rename(&dir, b"ok", &dir, name).await.is_err(),
            "RENAME to {shown:?}"
        );
        let looked = client.lookup(&dir, name).await;
        assert!(
            looked.is_err() || name == b".",
            "LOOKUP {shown:?}: {looked:?}"
        );
    }
    let too_long = client
        .create(&dir, &long, createhow3::GUARDED(no_change()))
        .await;
    assert_eq!(too_long, Err(nfsstat3::NFS3ERR_NAMETOOLONG));
    assert_eq!(catalog_and_store(&served), before, "nothing was made");
    assert_eq!(client.lookup(&dir, b"ok").await.unwrap(), file);

    // The longest name is fine.
    let longest = vec![b'n'; 255];
    client
        .create(&dir, &longest, createhow3::GUARDED(no_change()))
        .await
        .expect("a 255-byte name");
    assert_still_serves(&served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_at_the_root_stays_at_the_root() {
    let served = Served::start().await;
    let mut client = served.client().await;
    let root = client.root().await;
    let mut at = root.clone();
    for _ in 0..5 {
        at = client.lookup(&at, b"..").await.unwrap();
        assert_eq!(at, root);
    }
    let before = catalog_and_store(&served);
    for name in [&b".."[..], b"."] {
        assert!(client.mkdir(&root, name).await.is_err());
        assert!(client.rmdir(&root, name).await.is_err());
        assert!(client.remove(&root, name).await.is_err());
    }
    assert_eq!(catalog_and_store(&served), before);
    assert_eq!(client.getattr(&root).await.unwrap().fileid, ROOT_ID as u64);
    assert_still_serves(&served).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_half_request_does_not_hold_up_others() {
    let served = Served::start().await;
    let record = call_record(31, nfs3::PROGRAM, nfs3::VERSION, 0, &[]);
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(served.addr).await.unwrap();
        stream.write_all(&record[..record.len() / 2]).await.unwrap();
        stalled.push(stream);
    }
    for _ in 0..3 {
        let started = Instant::now();
        assert_still_serves(&served).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    // The stalled client finishes its call and is answered.
    let mut stream = stalled.pop().unwrap();
    stream.write_all(&record[record.len() / 2..]).await.unwrap();
    let (xid, stat, _) = read_reply(&mut stream).await;
    assert_eq!(xid, 31);
    assert!(matches!(stat, accept_stat_data::SUCCESS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_idle_connections_do_not_hold_up_others() {
    let served = Served::start().await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(served.addr).await.unwrap());
    }
    let started = Instant::now();
    assert_still_serves(&served).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Each of them is still served too.
    let null = call_record(41, nfs3::PROGRAM, nfs3::VERSION, 0, &[]);
    for stream in idle.iter_mut().step_by(20) {
        stream.write_all(&null).await.unwrap();
        let (xid, stat, _) = read_reply(stream).await;
        assert_eq!(xid, 41);
        assert!(matches!(stat, accept_stat_data::SUCCESS));
    }
}

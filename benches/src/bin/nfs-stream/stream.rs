//! Pipelined READ and WRITE of a whole file: the file is cut into blocks, one contiguous
//! share of them per connection (each on its own thread), and each connection keeps up to
//! `depth` calls in flight, sending the next as soon as a reply comes back.

use std::collections::HashMap;
use std::io::Cursor;
use std::ops::Range;
use std::thread;

use anyhow::{Context, Result, ensure};
use nfs3_types::nfs3::{
    NFS_PROGRAM, READ3args, WRITE3args, WRITE3res, nfs_fh3, nfsstat3, post_op_attr, stable_how,
    writeverf3,
};
use nfs3_types::xdr_codec::{Opaque, Unpack};

use crate::nfs;
use crate::rpc::{Connection, Procedure};

const READ: Procedure = Procedure::Nfs(NFS_PROGRAM::NFSPROC3_READ);
const WRITE: Procedure = Procedure::Nfs(NFS_PROGRAM::NFSPROC3_WRITE);

/// What to stream: which file, how many bytes, in blocks of what size, how many in flight.
pub struct Plan<'a> {
    /// The file read or written.
    pub file: &'a nfs_fh3,
    /// Bytes from offset 0: the file's size for a read, what to write for a write.
    pub size: u64,
    /// Bytes per READ or WRITE call (the last one of a connection's share may be shorter).
    pub block: u32,
    /// Calls in flight per connection.
    pub depth: usize,
}

/// One call's part of the file.
#[derive(Clone, Copy, Debug)]
struct Block {
    offset: u64,
    len: u32,
}

/// READs all of `plan.file` over `conns`, checking every reply's status and byte count.
/// The data is dropped as it comes (each connection reuses one buffer).
pub fn read(conns: &mut [Connection], plan: &Plan<'_>) -> Result<()> {
    in_parallel(conns, plan, |conn, range| {
        pipeline(
            conn,
            range,
            plan,
            |conn, block| conn.send_call(READ, &read_args(plan.file, block)),
            check_read,
        )
    })?;
    Ok(())
}

/// WRITEs `plan.size` bytes UNSTABLE over `conns`, repeating `data` (one block of it per
/// call), checking every reply's status and byte count; returns the write verifier, which
/// every reply must agree on. The caller COMMITs.
pub fn write(conns: &mut [Connection], plan: &Plan<'_>, data: &[u8]) -> Result<Option<writeverf3>> {
    let verifiers = in_parallel(conns, plan, |conn, range| {
        let mut verifier = None;
        pipeline(
            conn,
            range,
            plan,
            |conn, block| conn.send_call(WRITE, &write_args(plan.file, block, data)),
            |block, body| same_verifier(&mut verifier, check_write(block, body)?),
        )?;
        Ok(verifier)
    })?;
    let mut verifier = None;
    for got in verifiers.into_iter().flatten() {
        same_verifier(&mut verifier, got)?;
    }
    Ok(verifier)
}

/// Fails if `got` differs from the verifier `seen` so far (the server restarted and lost
/// unstable writes); else remembers it.
pub fn same_verifier(seen: &mut Option<writeverf3>, got: writeverf3) -> Result<()> {
    let first = *seen.get_or_insert(got);
    ensure!(
        first == got,
        "the write verifier changed from {:02x?} to {:02x?}: the server lost unstable writes",
        first.0,
        got.0
    );
    Ok(())
}

/// Runs `stream` on each connection, on its own thread, over its share of the file.
fn in_parallel<T: Send>(
    conns: &mut [Connection],
    plan: &Plan<'_>,
    stream: impl Fn(&mut Connection, Range<u64>) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let shares = shares(plan.size, plan.block, conns.len());
    thread::scope(|scope| {
        let threads: Vec<_> = conns
            .iter_mut()
            .zip(shares)
            .map(|(conn, range)| scope.spawn(|| stream(conn, range)))
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Cuts `0..size` into `parts` contiguous ranges that start on a block boundary (the last
/// ones may be empty).
fn shares(size: u64, block: u32, parts: usize) -> Vec<Range<u64>> {
    let per_part = size.div_ceil(u64::from(block)).div_ceil(parts as u64) * u64::from(block);
    (0..parts as u64)
        .map(|i| (i * per_part).min(size)..((i + 1) * per_part).min(size))
        .collect()
}

/// Calls `send` for each block of `range`, keeping up to `plan.depth` calls in flight, and
/// hands each reply's result to `check` with its block.
fn pipeline(
    conn: &mut Connection,
    range: Range<u64>,
    plan: &Plan<'_>,
    mut send: impl FnMut(&mut Connection, Block) -> Result<u32>,
    mut check: impl FnMut(Block, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut blocks = blocks(range, plan.block);
    let mut pending = HashMap::with_capacity(plan.depth);
    loop {
        while pending.len() < plan.depth {
            let Some(block) = blocks.next() else { break };
            pending.insert(send(conn, block)?, block);
        }
        if pending.is_empty() {
            return Ok(());
        }
        let reply = conn.recv_reply()?;
        let block = pending
            .remove(&reply.xid)
            .context("a reply to a call of another stream")?;
        check(block, reply.body).with_context(|| {
            format!(
                "{} of {} bytes at offset {}",
                reply.procedure, block.len, block.offset
            )
        })?;
    }
}

/// The blocks of `block` bytes that cover `range` (the last one may be shorter).
fn blocks(range: Range<u64>, block: u32) -> impl Iterator<Item = Block> {
    let end = range.end;
    range.step_by(block as usize).map(move |offset| Block {
        offset,
        // At most `block`, so it fits.
        len: (end - offset).min(u64::from(block)) as u32,
    })
}

fn read_args(file: &nfs_fh3, block: Block) -> READ3args {
    READ3args {
        file: file.clone(),
        offset: block.offset,
        count: block.len,
    }
}

fn write_args<'a>(file: &nfs_fh3, block: Block, data: &'a [u8]) -> WRITE3args<'a> {
    WRITE3args {
        file: file.clone(),
        offset: block.offset,
        count: block.len,
        stable: stable_how::UNSTABLE,
        data: Opaque::borrowed(&data[..block.len as usize]),
    }
}

/// Checks a READ3res: NFS3_OK, and the whole block in it. Decodes only the fields before
/// the data, which stays in the connection's buffer.
fn check_read(block: Block, body: &[u8]) -> Result<()> {
    let mut reply = Cursor::new(body);
    let (status, _) = nfsstat3::unpack(&mut reply)?;
    ensure!(status == nfsstat3::NFS3_OK, "failed: {status}");
    post_op_attr::unpack(&mut reply)?;
    let (count, _) = u32::unpack(&mut reply)?;
    let (_eof, _) = bool::unpack(&mut reply)?;
    let (data_len, _) = u32::unpack(&mut reply)?;
    ensure!(
        count == block.len && data_len == count,
        "short read: count {count}, {data_len} bytes of data"
    );
    let data_end = reply.position() + u64::from(data_len);
    ensure!(
        body.len() as u64 >= data_end,
        "reply cut short: {} bytes, its data ends at {data_end}",
        body.len()
    );
    Ok(())
}

/// Checks a WRITE3res: NFS3_OK and the whole block written; returns its verifier.
fn check_write(block: Block, body: &[u8]) -> Result<writeverf3> {
    let (res, _) = WRITE3res::unpack(&mut Cursor::new(body))?;
    let ok = nfs::ok(WRITE, res)?;
    ensure!(
        ok.count == block.len,
        "short write: {} bytes written",
        ok.count
    );
    Ok(ok.verf)
}

#[cfg(test)]
mod tests {
    use nfs3_types::nfs3::{Nfs3Option, READ3res, READ3resfail, READ3resok};
    use nfs3_types::xdr_codec::Pack;

    use super::*;

    fn encode(res: &READ3res<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        res.pack(&mut out).expect("packing into a Vec");
        out
    }

    fn read_ok(count: u32, data: &[u8]) -> Vec<u8> {
        encode(&READ3res::Ok(READ3resok {
            file_attributes: Nfs3Option::None,
            count,
            eof: false,
            data: Opaque::borrowed(data),
        }))
    }

    #[test]
    fn shares_cover_the_file_from_block_boundaries() {
        assert_eq!(
            shares(10 * 4096 + 5, 4096, 3),
            [0..4 * 4096, 4 * 4096..8 * 4096, 8 * 4096..10 * 4096 + 5]
        );
        assert_eq!(shares(4096, 4096, 3), [0..4096, 4096..4096, 4096..4096]);
        assert_eq!(shares(0, 4096, 2), [0..0, 0..0]);
    }

    #[test]
    fn blocks_end_with_a_short_one() {
        let lens: Vec<_> = blocks(100..350, 100).map(|b| (b.offset, b.len)).collect();
        assert_eq!(lens, [(100, 100), (200, 100), (300, 50)]);
        assert_eq!(blocks(7..7, 100).count(), 0);
    }

    #[test]
    fn a_read_must_bring_the_whole_block() {
        let block = Block { offset: 0, len: 6 };
        check_read(block, &read_ok(6, b"abcdef")).expect("a full block");
        let short = check_read(block, &read_ok(5, b"abcde")).expect_err("a short read");
        assert!(short.to_string().contains("short read"), "{short}");
        let mut cut = read_ok(6, b"abcdef");
        cut.truncate(cut.len() - 4);
        check_read(block, &cut).expect_err("a reply cut short");
    }

    #[test]
    fn a_failed_read_names_its_status() {
        let failed = encode(&READ3res::Err((
            nfsstat3::NFS3ERR_IO,
            READ3resfail::default(),
        )));
        let err = check_read(Block { offset: 0, len: 6 }, &failed).expect_err("NFS3ERR_IO");
        assert!(err.to_string().contains("NFS3ERR_IO"), "{err}");
    }

    #[test]
    fn the_write_verifier_must_not_change() {
        let mut seen = None;
        same_verifier(&mut seen, writeverf3([1; 8])).expect("the first");
        same_verifier(&mut seen, writeverf3([1; 8])).expect("the same");
        same_verifier(&mut seen, writeverf3([2; 8])).expect_err("another");
    }
}

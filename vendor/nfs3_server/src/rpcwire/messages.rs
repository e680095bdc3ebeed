use std::io::Cursor;

use anyhow::bail;
use nfs3_types::rpc::{
    accept_stat_data, accepted_reply, auth_stat, call_body, fragment_header, msg_body, opaque_auth,
    rejected_reply, reply_body, rpc_msg,
};
use nfs3_types::xdr_codec::{Pack, Unpack, Void};
use tokio::io::{AsyncRead, AsyncReadExt};

#[derive(Debug)]
pub enum PackedRpcMessage {
    Incomplete(IncompleteRpcMessage),
    Complete(CompleteRpcMessage),
}

impl PackedRpcMessage {
    pub fn new() -> Self {
        Self::Incomplete(IncompleteRpcMessage::default())
    }
    pub async fn recv(&mut self, input: &mut (impl AsyncRead + Unpin)) -> anyhow::Result<bool> {
        match self {
            Self::Incomplete(incomplete) => {
                let eof = incomplete.recv(input).await?;
                if eof {
                    let data = std::mem::take(incomplete);
                    *self = Self::Complete(CompleteRpcMessage {
                        bytes: data.0,
                        tail: Vec::new(),
                    });
                }
                Ok(eof)
            }
            Self::Complete(_) => Ok(true),
        }
    }
}

/// The largest RPC record (all its fragments) a client may send: a WRITE of 4 MiB
/// with room for its header. A longer one closes the connection before anything of
/// it is allocated, so a record header alone cannot make the server reserve 2 GiB.
pub const MAX_RECORD_SIZE: usize = 4 * 1024 * 1024 + 64 * 1024;

/// Contains collected RPC message fragments without their headers.
#[derive(Default, Debug)]
pub struct IncompleteRpcMessage(Vec<u8>);

impl IncompleteRpcMessage {
    async fn recv(&mut self, input: &mut (impl AsyncRead + Unpin)) -> anyhow::Result<bool> {
        let mut header_buf = [0_u8; 4];
        input.read_exact(&mut header_buf).await?;
        let header: fragment_header = header_buf.into();
        let prev_length = self.0.len();
        let fragment_length = header.fragment_length() as usize;
        if prev_length + fragment_length > MAX_RECORD_SIZE {
            tracing::warn!("closing a connection that sent an RPC record over {MAX_RECORD_SIZE} bytes");
            bail!(
                "RPC record of more than {MAX_RECORD_SIZE} bytes (a fragment of \
                 {fragment_length} after {prev_length})"
            );
        }
        // Read into the vector's spare room: nothing is zeroed first.
        self.0.reserve_exact(fragment_length);
        let mut room = bytes::BufMut::limit(&mut self.0, fragment_length);
        while bytes::BufMut::has_remaining_mut(&room) {
            if input.read_buf(&mut room).await? == 0 {
                bail!("the connection closed inside an RPC record");
            }
        }

        Ok(header.eof())
    }
}

/// A whole RPC message: its bytes, and for a reply that carries bulk data (a READ's),
/// that data, sent after them as it is, followed by its XDR padding, so that it is
/// never copied into the packed bytes.
#[derive(Debug)]
pub struct CompleteRpcMessage {
    bytes: Vec<u8>,
    tail: Vec<u8>,
}

impl CompleteRpcMessage {
    /// The packed bytes and the tail.
    pub fn into_parts(self) -> (Vec<u8>, Vec<u8>) {
        (self.bytes, self.tail)
    }
}

pub struct IncomingRpcMessage {
    xid: u32,
    body: call_body<'static>,
    data: Option<Vec<u8>>,
    message_start: usize, // offset of the start of the message in the data buffer
}

impl TryFrom<CompleteRpcMessage> for IncomingRpcMessage {
    type Error = anyhow::Error;

    fn try_from(packed: CompleteRpcMessage) -> Result<Self, Self::Error> {
        let packed = packed.bytes;
        let (rpc, pos) = match rpc_msg::unpack(&mut Cursor::new(&packed)) {
            Ok(ok) => ok,
            Err(err) => {
                bail!("Failed to unpack RPC message: {err}");
            }
        };

        let xid = rpc.xid;
        let body = match rpc.body {
            msg_body::CALL(call) => call,
            msg_body::REPLY(_) => {
                bail!("Expected a CALL message, got REPLY. XID: {xid}");
            }
        };

        Ok(Self {
            xid,
            body,
            data: Some(packed),
            message_start: pos,
        })
    }
}

impl IncomingRpcMessage {
    pub const fn xid(&self) -> u32 {
        self.xid
    }
    pub const fn body(&self) -> &call_body<'static> {
        &self.body
    }

    pub const fn take_data(&mut self) -> Cursor<Vec<u8>> {
        let data = self.data.take().expect("Data already taken");
        let mut cursor = Cursor::new(data);
        cursor.set_position(self.message_start as u64);
        cursor
    }

    pub fn into_success_reply<T>(self, message: &T) -> anyhow::Result<HandleResult>
    where
        T: Pack + 'static,
    {
        let rpc = rpc_msg {
            xid: self.xid,
            body: msg_body::REPLY(reply_body::MSG_ACCEPTED(accepted_reply {
                verf: opaque_auth::default(),
                reply_data: accept_stat_data::SUCCESS,
            })),
        };

        pack(&rpc, message).map(HandleResult::Reply)
    }

    /// A success reply of `message` followed by `tail`, which `message` must end with
    /// the XDR length of (an opaque's bytes, sent without a copy; the writer pads them).
    pub fn into_success_reply_with_tail<T>(
        self,
        message: &T,
        tail: Vec<u8>,
    ) -> anyhow::Result<HandleResult>
    where
        T: Pack + 'static,
    {
        match self.into_success_reply(message)? {
            HandleResult::Reply(reply) => Ok(HandleResult::Reply(CompleteRpcMessage {
                bytes: reply.bytes,
                tail,
            })),
            HandleResult::NoReply => Ok(HandleResult::NoReply),
        }
    }

    pub fn into_rpc_mismatch(self) -> anyhow::Result<HandleResult> {
        use nfs3_types::rpc::RPC_VERSION_2;

        let reply =
            reply_body::MSG_DENIED(rejected_reply::rpc_mismatch(RPC_VERSION_2, RPC_VERSION_2));

        let rpc = rpc_msg {
            xid: self.xid,
            body: msg_body::REPLY(reply),
        };
        pack(&rpc, &Void).map(HandleResult::Reply)
    }

    pub fn into_auth_error(self, stat: auth_stat) -> anyhow::Result<HandleResult> {
        let rpc = rpc_msg {
            xid: self.xid,
            body: msg_body::REPLY(reply_body::MSG_DENIED(rejected_reply::auth_error(stat))),
        };
        pack(&rpc, &Void).map(HandleResult::Reply)
    }

    pub fn into_error_reply(self, err: accept_stat_data) -> anyhow::Result<HandleResult> {
        let rpc = rpc_msg {
            xid: self.xid,
            body: msg_body::REPLY(reply_body::MSG_ACCEPTED(accepted_reply {
                verf: opaque_auth::default(),
                reply_data: err,
            })),
        };
        pack(&rpc, &Void).map(HandleResult::Reply)
    }
}

pub enum HandleResult {
    Reply(CompleteRpcMessage),
    NoReply,
}

fn pack<T>(rpc: &rpc_msg, message: &T) -> anyhow::Result<CompleteRpcMessage>
where
    T: Pack + 'static,
{
    let size = rpc
        .packed_size()
        .checked_add(message.packed_size())
        .expect("Failed to calculate size");

    let mut cursor = Cursor::new(Vec::with_capacity(size));
    rpc.pack(&mut cursor)?;
    message.pack(&mut cursor)?;
    Ok(CompleteRpcMessage {
        bytes: cursor.into_inner(),
        tail: Vec::new(),
    })
}

//! Client port (2181) protocol: connect handshake, requests, replies and
//! watch notifications (protocol.md §2).

mod codes;
mod connect;
mod encode;
mod records;
mod reply;
mod request;

pub use codes::{
    four_letter_word, is_tls_client_hello, AddWatchMode, CreateMode, EphemeralOwner, ErrCode,
    EventType, Hex, KeeperState, OpCode, Perms, WatcherType,
};
pub use connect::{ConnectRequest, ConnectResponse, MAX_PLAUSIBLE_PASSWD};
pub use encode::{
    encode_connect_request, encode_connect_response, encode_reply_header, encode_request,
    encode_request_mapped, frame, EncodeError, PathMap, Writer,
};
pub use records::{
    Acl, Acls, ClientInfo, ClientInfos, Credential, Data, Element, Stat, Strings, Vector,
    VectorIter,
};
pub use reply::{
    decode_event, decode_event_prefix, decode_reply, MultiResult, MultiResults, MultiResultsIter,
    Reply, ReplyBody, ReplyHeader, WatchEvent,
};
pub use request::{
    decode_request, decode_request_prefix, MultiOp, MultiOps, MultiOpsIter, Request, RequestBody,
    RequestHeader, MAX_MULTI_OPS,
};

/// xid of watch notifications (server → client only).
pub const NOTIFICATION_XID: i32 = -1;
/// xid of pings (both directions).
pub const PING_XID: i32 = -2;
/// xid of auth packets and their replies.
pub const AUTH_XID: i32 = -4;
/// xid of setWatches/setWatches2 from the C client (Java uses normal xids).
pub const SET_WATCHES_XID: i32 = -8;

/// The opcode a special xid implies, for a reply whose request was not captured: −2 ping,
/// −4 auth, −8 setWatches (C client).
pub fn implied_opcode(xid: i32) -> Option<OpCode> {
    match xid {
        PING_XID => Some(OpCode::PING),
        AUTH_XID => Some(OpCode::AUTH),
        SET_WATCHES_XID => Some(OpCode::SET_WATCHES),
        _ => None,
    }
}

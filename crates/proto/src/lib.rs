/*!
Sans-I/O decoders for ZooKeeper's wire protocols: the client port (2181),
the quorum port (ZAB, 2888) and the leader-election port (FLE, 3888).

# Brief overview

The crate turns one **frame body** (the bytes after the 4-byte length
prefix) into typed, borrowed values. It does no I/O, keeps no state, never
panics, and never allocates while decoding: strings, data and vectors borrow
the input, and vectors (children, ACLs, watch lists, multi ops and results)
are validated once and then iterated lazily.

* [`jute`]: the binary encoding. [`jute::Reader`] is a bounds-checked cursor;
  [`jute::DecodeError`] says what failed (`Truncated`, `NegativeLength`,
  `Invalid`), in which field and at which byte.
* Handshake: the first frame of each direction has no header —
  [`ConnectRequest`] / [`ConnectResponse`]. Their `looks_like` (whole body)
  and `looks_like_prefix` (length + first bytes) functions tell a handshake
  from ordinary traffic when a capture starts mid-stream;
  [`four_letter_word`] and [`is_tls_client_hello`] classify the other
  possible first bytes of a connection.
* Requests: [`decode_request`] → [`Request`] = [`RequestHeader`] +
  [`RequestBody`] (one variant per record; unknown opcodes become
  [`RequestBody::Unknown`], never an error).
* Replies: a reply carries no opcode, so [`decode_reply`] takes the opcode of
  the matching request (or `None`). The body is decoded only when
  `err == 0`, as the Java client does. xid −1 frames are notifications
  ([`WatchEvent`], also via [`decode_event`]).
* Numeric fields are open newtypes ([`OpCode`], [`ErrCode`], [`EventType`],
  [`KeeperState`], [`CreateMode`], …): unknown values are kept and
  `name()` returns `None` for them.
* Every type implements `serde::Serialize` as a flat map of snake_case
  fields (request/reply bodies have no enum tag, so callers can merge them
  into their own objects via `serialize_fields`). Data and tokens serialise
  as their length; auth credentials are redacted.

The two server-to-server protocols live in their own modules (not
re-exported at the root):

* [`election`] (port 3888): [`election::decode_initial`] for the first bytes
  of a connection (3.4 sid, V1 or V2 initial message),
  [`election::decode_quorum_auth`] for the optional SASL packets,
  [`election::decode_notification`] for one vote body (28/36/40/44+N
  bytes), [`election::parse_config`] for the quorum config text it carries
  (also used by NEWLEADER and reconfig), and [`election::Zxid`].
* [`quorum`] (port 2888): [`quorum::decode_packet`] finds one unframed
  `QuorumPacket` on the stream, [`quorum::QuorumPacket::body`] decodes its
  data by type (forwarded requests via the client decoders, transactions
  incl. multi and digests, pings, learner info…),
  [`quorum::plausible_packet_start`] helps to resynchronise, and
  [`quorum::SnapshotSkipper`] walks over the raw snapshot after SNAP.

Their stream decoders return [`election::Status`]: `Partial` (need more
bytes), `Complete((consumed, message))` or `Invalid` (lengths are capped, so
garbage never makes a caller wait forever). Body decoders return `Result`
like the client ones.

A truncated input is always `Err` with [`jute::ErrorKind::Truncated`],
except where a shorter input is itself a complete record: a `ConnectRequest`
without its optional `readOnly` byte, bodies of unknown opcodes
(`Unknown{len}`), replies whose body is not decoded (err ≠ 0, header-only
ops, `request == None`), a standalone `check` reply without a `Stat`, and
raw-path `deleteContainer` requests.

# Example

```
use zkscope_proto::{decode_reply, decode_request, OpCode, ReplyBody, RequestBody};

// getData("/a", watch=true) with xid 7.
let req = [0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 2, b'/', b'a', 1];
let r = decode_request(&req)?;
assert_eq!(r.header.opcode, OpCode::GET_DATA);
assert_eq!(r.header.opcode.name(), Some("getData"));
assert!(matches!(r.body, RequestBody::PathWatch { watch: true, .. }));
assert_eq!(r.body.path().unwrap(), "/a");

// The error reply: xid 7, zxid 0x20, err -101 (NONODE); no body.
let mut rep = vec![0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0x20];
rep.extend_from_slice(&(-101i32).to_be_bytes());
let reply = decode_reply(&rep, Some(r.header.opcode))?;
assert_eq!(reply.header.err.name(), Some("NONODE"));
assert_eq!(reply.body, ReplyBody::None);

// Truncated input is an error, never a panic.
let err = decode_request(&req[..12]).unwrap_err();
assert_eq!(err.to_string(), "truncated at byte 8 reading `path`");
# Ok::<(), Box<dyn std::error::Error>>(())
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod client;
pub mod election;
pub mod jute;
pub mod quorum;

pub use client::*;
pub use jute::{DecodeError, ErrorKind, JStr};

//! Server → client frames: `ReplyHeader` + response record, and watch
//! notifications (xid −1).

use core::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::codes::{ErrCode, EventType, KeeperState, OpCode};
use super::records::{Acls, ClientInfos, Data, Stat, Strings};
use super::request::{read_multi_header, MAX_MULTI_OPS};
use super::{implied_opcode, NOTIFICATION_XID};
use crate::jute::{DecodeError, ErrorKind, JStr, Reader, Result};

/// `ReplyHeader` (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyHeader {
    /// Echoed request xid, or a special xid (−1 notification, …).
    pub xid: i32,
    /// Server's last processed zxid (−1 on 3.4–3.8 notifications).
    pub zxid: i64,
    /// Result code.
    pub err: ErrCode,
}

impl ReplyHeader {
    /// Encoded size.
    pub const LEN: usize = 16;

    /// The `zxid` of a header whose zxid the capture cut off ([`decode_event_prefix`]): no
    /// server sends it (zxids are non-negative, or −1 in some notifications).
    pub const ZXID_NOT_CAPTURED: i64 = i64::MIN;

    /// Whether the zxid was captured (see [`ReplyHeader::ZXID_NOT_CAPTURED`]).
    pub fn zxid_captured(&self) -> bool {
        self.zxid != Self::ZXID_NOT_CAPTURED
    }

    /// Decodes the first 16 bytes of `frame` (the rest is ignored).
    pub fn decode(frame: &[u8]) -> Result<Self> {
        Self::read(&mut Reader::new(frame))
    }

    /// Reads a header.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ReplyHeader {
            xid: r.i32("xid")?,
            zxid: r.i64("zxid")?,
            err: ErrCode(r.i32("err")?),
        })
    }

    /// Writes `xid`, `zxid`, `err`, `err_name` into an open map.
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
    ) -> core::result::Result<(), M::Error> {
        m.serialize_entry("xid", &self.xid)?;
        m.serialize_entry("zxid", &self.zxid_captured().then_some(self.zxid))?;
        m.serialize_entry("err", &self.err.0)?;
        m.serialize_entry("err_name", &self.err.name())
    }
}

/// `{"xid":…,"zxid":…,"err":0,"err_name":"OK"}`.
impl Serialize for ReplyHeader {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        self.serialize_fields(&mut m)?;
        m.end()
    }
}

/// A watch notification (`WatcherEvent`, sent with xid −1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchEvent<'a> {
    /// What happened.
    pub event_type: EventType,
    /// Session state (SyncConnected for node events).
    pub state: KeeperState,
    /// Znode path (`None` if null).
    pub path: Option<JStr<'a>>,
}

impl<'a> WatchEvent<'a> {
    /// Decodes the record after the `ReplyHeader` (trailing bytes ignored).
    pub fn decode(after_header: &'a [u8]) -> Result<Self> {
        Self::read(&mut Reader::new(after_header))
    }

    /// Reads a `WatcherEvent`.
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        Ok(WatchEvent {
            event_type: EventType(r.i32("type")?),
            state: KeeperState(r.i32("state")?),
            path: r.ustring("path")?,
        })
    }

    /// Writes the event fields into an open map.
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
    ) -> core::result::Result<(), M::Error> {
        m.serialize_entry("event_type", &self.event_type.name())?;
        m.serialize_entry("event_type_code", &self.event_type.0)?;
        m.serialize_entry("state", &self.state.name())?;
        m.serialize_entry("state_code", &self.state.0)?;
        m.serialize_entry("path", &self.path)
    }
}

/// `{"event_type":"NodeDataChanged","event_type_code":3,"state":"SyncConnected","state_code":3,"path":"/x"}`.
impl Serialize for WatchEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        self.serialize_fields(&mut m)?;
        m.end()
    }
}

/// Decodes a notification frame: header + `WatcherEvent`. Does not check
/// that the xid is −1 (see [`decode_reply`], which does).
pub fn decode_event(frame: &[u8]) -> Result<(ReplyHeader, WatchEvent<'_>)> {
    let mut r = Reader::new(frame);
    let header = ReplyHeader::read(&mut r)?;
    Ok((header, WatchEvent::read(&mut r)?))
}

/// What can be read of a notification frame of which only `head`, its
/// start, was captured (a snap length): the xid must be there; a zxid not
/// wholly captured reads as [`ReplyHeader::ZXID_NOT_CAPTURED`], other fields
/// as 0 (`path` as `None`). Not checked to be a notification.
pub fn decode_event_prefix(head: &[u8]) -> Result<(ReplyHeader, WatchEvent<'_>)> {
    if let Ok(whole) = decode_event(head) {
        return Ok(whole);
    }
    // Offsets, not a running reader: a field cut short must not shift the next.
    let int = |at: usize| head.get(at..at + 4).and_then(|b| b.try_into().ok());
    let xid = int(0).map(i32::from_be_bytes);
    let xid = xid.ok_or(DecodeError::new(ErrorKind::Truncated, "xid", 0))?;
    let zxid = head.get(4..12).and_then(|b| b.try_into().ok());
    let header = ReplyHeader {
        xid,
        zxid: zxid.map_or(ReplyHeader::ZXID_NOT_CAPTURED, i64::from_be_bytes),
        err: ErrCode(int(12).map_or(0, i32::from_be_bytes)),
    };
    let event = WatchEvent {
        event_type: EventType(int(16).map_or(0, i32::from_be_bytes)),
        state: KeeperState(int(20).map_or(0, i32::from_be_bytes)),
        path: head
            .get(24..)
            .and_then(|rest| Reader::new(rest).ustring("path").ok().flatten()),
    };
    Ok((header, event))
}

/// The record after a [`ReplyHeader`]; its type depends on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyBody<'a> {
    /// No record: err ≠ 0, or delete, ping, auth, setWatches(2),
    /// checkWatches, removeWatches, closeSession, (standalone check with an
    /// empty body), or an unknown request with an empty body.
    None,
    /// create (1): the created path.
    Create {
        /// Actual path (with sequence suffix).
        path: JStr<'a>,
    },
    /// create2 (15), createContainer (19), createTTL (21).
    Create2 {
        /// Actual path (with sequence suffix).
        path: JStr<'a>,
        /// Stat of the new node.
        stat: Stat,
    },
    /// exists (3), setData (5), setACL (7), standalone check (13).
    Stat {
        /// Node stat.
        stat: Stat,
    },
    /// getData (4) and reconfig (16, the new config).
    GetData {
        /// Node data.
        data: Data<'a>,
        /// Node stat.
        stat: Stat,
    },
    /// getACL (6).
    GetAcl {
        /// ACL list.
        acl: Acls<'a>,
        /// Node stat.
        stat: Stat,
    },
    /// getChildren (8).
    GetChildren {
        /// Child names.
        children: Strings<'a>,
    },
    /// getChildren2 (12).
    GetChildren2 {
        /// Child names.
        children: Strings<'a>,
        /// Parent stat.
        stat: Stat,
    },
    /// sync (9).
    Sync {
        /// Synced path.
        path: JStr<'a>,
    },
    /// multi (14), multiRead (22).
    Multi(MultiResults<'a>),
    /// sasl (102).
    Sasl {
        /// SASL token.
        token: Data<'a>,
    },
    /// getEphemerals (103).
    GetEphemerals {
        /// Ephemeral node paths.
        paths: Strings<'a>,
    },
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber {
        /// Number of descendants.
        total: i32,
    },
    /// addWatch (106): an `ErrorResponse` body (always 0 in practice).
    AddWatch {
        /// Result code in the body.
        err: ErrCode,
    },
    /// whoAmI (107).
    WhoAmI {
        /// Authenticated identities.
        clients: ClientInfos<'a>,
    },
    /// A notification (xid −1).
    Event(WatchEvent<'a>),
    /// A body that could not be typed: request opcode unknown or not given.
    Unknown {
        /// Body length in bytes.
        len: usize,
    },
}

impl<'a> ReplyBody<'a> {
    /// Reads the err == 0 record for request opcode `op`. Unknown opcodes
    /// give [`ReplyBody::Unknown`] (or `None` for an empty body).
    pub fn read(op: OpCode, r: &mut Reader<'a>) -> Result<Self> {
        Ok(match op {
            OpCode::CREATE => ReplyBody::Create {
                path: r.ustring_or_empty("path")?,
            },
            OpCode::CREATE2 | OpCode::CREATE_CONTAINER | OpCode::CREATE_TTL => ReplyBody::Create2 {
                path: r.ustring_or_empty("path")?,
                stat: Stat::read(r)?,
            },
            OpCode::EXISTS | OpCode::SET_DATA | OpCode::SET_ACL => ReplyBody::Stat {
                stat: Stat::read(r)?,
            },
            OpCode::CHECK if r.is_empty() => ReplyBody::None,
            OpCode::CHECK => ReplyBody::Stat {
                stat: Stat::read(r)?,
            },
            OpCode::GET_DATA | OpCode::RECONFIG => ReplyBody::GetData {
                data: Data(r.buffer("data")?),
                stat: Stat::read(r)?,
            },
            OpCode::GET_ACL => ReplyBody::GetAcl {
                acl: Acls::read(r, "acl")?,
                stat: Stat::read(r)?,
            },
            OpCode::GET_CHILDREN => ReplyBody::GetChildren {
                children: Strings::read(r, "children")?,
            },
            OpCode::GET_CHILDREN2 => ReplyBody::GetChildren2 {
                children: Strings::read(r, "children")?,
                stat: Stat::read(r)?,
            },
            OpCode::SYNC => ReplyBody::Sync {
                path: r.ustring_or_empty("path")?,
            },
            OpCode::MULTI | OpCode::MULTI_READ => ReplyBody::Multi(MultiResults::read(r)?),
            OpCode::SASL => ReplyBody::Sasl {
                token: Data(r.buffer("token")?),
            },
            OpCode::GET_EPHEMERALS => ReplyBody::GetEphemerals {
                paths: Strings::read(r, "ephemerals")?,
            },
            OpCode::GET_ALL_CHILDREN_NUMBER => ReplyBody::GetAllChildrenNumber {
                total: r.i32("totalNumber")?,
            },
            OpCode::ADD_WATCH => ReplyBody::AddWatch {
                err: ErrCode(r.i32("err")?),
            },
            OpCode::WHO_AM_I => ReplyBody::WhoAmI {
                clients: ClientInfos::read(r, "clientInfo")?,
            },
            OpCode::DELETE
            | OpCode::PING
            | OpCode::AUTH
            | OpCode::SET_WATCHES
            | OpCode::SET_WATCHES2
            | OpCode::CHECK_WATCHES
            | OpCode::REMOVE_WATCHES
            | OpCode::CLOSE_SESSION
            | OpCode::DELETE_CONTAINER => ReplyBody::None,
            _ => Self::opaque(r),
        })
    }

    fn opaque(r: &mut Reader<'a>) -> Self {
        match r.take_rest().len() {
            0 => ReplyBody::None,
            len => ReplyBody::Unknown { len },
        }
    }

    /// The `Stat` carried by this body, if any.
    pub fn stat(&self) -> Option<&Stat> {
        match self {
            ReplyBody::Create2 { stat, .. }
            | ReplyBody::Stat { stat }
            | ReplyBody::GetData { stat, .. }
            | ReplyBody::GetAcl { stat, .. }
            | ReplyBody::GetChildren2 { stat, .. } => Some(stat),
            _ => None,
        }
    }

    /// Writes this body's fields into an open map (the flat JSON shape).
    /// Paths returned by the server are `created_path` / `synced_path` so
    /// they do not clash with the request's `path`.
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
    ) -> core::result::Result<(), M::Error> {
        match self {
            ReplyBody::None => Ok(()),
            ReplyBody::Create { path } => m.serialize_entry("created_path", path),
            ReplyBody::Create2 { path, stat } => {
                m.serialize_entry("created_path", path)?;
                m.serialize_entry("stat", stat)
            }
            ReplyBody::Stat { stat } => m.serialize_entry("stat", stat),
            ReplyBody::GetData { data, stat } => {
                m.serialize_entry("data_len", data)?;
                m.serialize_entry("stat", stat)
            }
            ReplyBody::GetAcl { acl, stat } => {
                m.serialize_entry("acl", acl)?;
                m.serialize_entry("stat", stat)
            }
            ReplyBody::GetChildren { children } => m.serialize_entry("children", children),
            ReplyBody::GetChildren2 { children, stat } => {
                m.serialize_entry("children", children)?;
                m.serialize_entry("stat", stat)
            }
            ReplyBody::Sync { path } => m.serialize_entry("synced_path", path),
            ReplyBody::Multi(results) => m.serialize_entry("ops", results),
            ReplyBody::Sasl { token } => m.serialize_entry("token_len", token),
            ReplyBody::GetEphemerals { paths } => m.serialize_entry("paths", paths),
            ReplyBody::GetAllChildrenNumber { total } => m.serialize_entry("total", total),
            ReplyBody::AddWatch { err } => {
                m.serialize_entry("result_err", &err.0)?;
                m.serialize_entry("result_err_name", &err.name())
            }
            ReplyBody::WhoAmI { clients } => m.serialize_entry("clients", clients),
            ReplyBody::Event(ev) => ev.serialize_fields(m),
            ReplyBody::Unknown { len } => m.serialize_entry("body_len", len),
        }
    }
}

/// A flat map of the body's fields (see [`ReplyBody::serialize_fields`]).
impl Serialize for ReplyBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.serialize_fields(&mut m)?;
        m.end()
    }
}

/// A decoded reply frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// Header.
    pub header: ReplyHeader,
    /// Record.
    pub body: ReplyBody<'a>,
    /// Bytes left after the record (or after the header when the body was
    /// not decoded because err ≠ 0); ignored.
    pub trailing: usize,
}

/// Flat map: header fields, body fields, `trailing_bytes` when non-zero.
impl Serialize for Reply<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.header.serialize_fields(&mut m)?;
        self.body.serialize_fields(&mut m)?;
        if self.trailing > 0 {
            m.serialize_entry("trailing_bytes", &self.trailing)?;
        }
        m.end()
    }
}

/// Decodes a server → client frame (the bytes after the 4-byte length).
///
/// `request` is the opcode of the matching request (`None` if it was not
/// captured). Rules, in order:
/// * err ≠ 0 ⇒ [`ReplyBody::None`], body bytes ignored (client rule, §2.3);
/// * xid −1 ⇒ [`ReplyBody::Event`];
/// * `request` `None`: xid −2 / −4 / −8 imply ping / auth / setWatches;
///   otherwise an empty body is `None` and anything else `Unknown{len}`.
///
/// Not for the first frame of a connection (a `ConnectResponse`).
pub fn decode_reply(frame: &[u8], request: Option<OpCode>) -> Result<Reply<'_>> {
    let mut r = Reader::new(frame);
    let header = ReplyHeader::read(&mut r)?;
    let body = if !header.err.is_ok() {
        ReplyBody::None
    } else if header.xid == NOTIFICATION_XID {
        ReplyBody::Event(WatchEvent::read(&mut r)?)
    } else {
        match request.or(implied_opcode(header.xid)) {
            Some(op) => ReplyBody::read(op, &mut r)?,
            None => ReplyBody::opaque(&mut r),
        }
    };
    Ok(Reply {
        header,
        body,
        trailing: r.remaining(),
    })
}

/// Result record of a multi sub-operation.
fn read_sub_result<'a>(ty: OpCode, r: &mut Reader<'a>, at: usize) -> Result<ReplyBody<'a>> {
    match ty {
        OpCode::CREATE
        | OpCode::CREATE2
        | OpCode::SET_DATA
        | OpCode::GET_CHILDREN
        | OpCode::GET_DATA => ReplyBody::read(ty, r),
        OpCode::DELETE | OpCode::CHECK => Ok(ReplyBody::None),
        OpCode::ERROR => Ok(ReplyBody::None),
        _ => Err(DecodeError::new(ErrorKind::Invalid, "MultiHeader.type", at)),
    }
}

/// Reads one `(MultiHeader + record)`; `None` at the `done` header.
fn read_result<'a>(r: &mut Reader<'a>) -> Result<Option<MultiResult<'a>>> {
    let at = r.position();
    let (ty, done, hdr_err) = read_multi_header(r)?;
    if done {
        return Ok(None);
    }
    let op = OpCode(ty);
    let (err, body) = if op == OpCode::ERROR {
        (ErrCode(r.i32("ErrorResponse.err")?), ReplyBody::None)
    } else {
        (ErrCode(hdr_err), read_sub_result(op, r, at)?)
    };
    Ok(Some(MultiResult { op, err, body }))
}

/// The results of a multi/multiRead reply, validated at decode time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MultiResults<'a> {
    bytes: &'a [u8],
    count: usize,
}

/// One result of a multi reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiResult<'a> {
    /// Result type: the sub-op's opcode (create2 for createTTL and
    /// createContainer), or −1 ([`OpCode::ERROR`]) for an `ErrorResponse`.
    pub op: OpCode,
    /// 0, or for error results the `ErrorResponse` code (0 for ops before
    /// the failing one, −2 after it).
    pub err: ErrCode,
    /// The record ([`ReplyBody::None`] for delete, check and errors).
    pub body: ReplyBody<'a>,
}

/// `{"opcode":1,"op":"create","type":"CreateReply","err":0,"err_name":"OK", …}`;
/// error results have opcode −1, op `"error"`, type `"ErrorReply"`.
impl Serialize for MultiResult<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("opcode", &self.op.0)?;
        m.serialize_entry("op", &self.op.name())?;
        m.serialize_entry("type", self.op.reply_type())?;
        m.serialize_entry("err", &self.err.0)?;
        m.serialize_entry("err_name", &self.err.name())?;
        self.body.serialize_fields(&mut m)?;
        m.end()
    }
}

impl<'a> MultiResults<'a> {
    /// Reads results up to the `done` header. Result types outside
    /// create/create2/delete/setData/check/getChildren/getData/error, or more
    /// than [`MAX_MULTI_OPS`] results, are `Invalid`.
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let all = r.rest();
        let start = r.position();
        let mut count = 0usize;
        loop {
            let at = r.position();
            if read_result(r)?.is_none() {
                break;
            }
            if count >= MAX_MULTI_OPS {
                return Err(DecodeError::new(ErrorKind::Invalid, "ops", at));
            }
            count += 1;
        }
        let used = r.position().saturating_sub(start);
        Ok(MultiResults {
            bytes: all.get(..used).unwrap_or_default(),
            count,
        })
    }

    /// Number of results.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the results.
    pub fn iter(&self) -> MultiResultsIter<'a> {
        MultiResultsIter {
            r: Reader::new(self.bytes),
            left: self.count,
        }
    }

    /// The first non-zero error code among the results (the failing op of
    /// an aborted multi), if any. Skips −2 (RUNTIMEINCONSISTENCY) when a
    /// different error exists.
    pub fn first_error(&self) -> Option<ErrCode> {
        let mut fallback = None;
        for res in self.iter() {
            if res.err == ErrCode::RUNTIME_INCONSISTENCY {
                fallback = fallback.or(Some(res.err));
            } else if !res.err.is_ok() {
                return Some(res.err);
            }
        }
        fallback
    }
}

impl fmt::Debug for MultiResults<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for MultiResults<'a> {
    type Item = MultiResult<'a>;
    type IntoIter = MultiResultsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &MultiResults<'a> {
    type Item = MultiResult<'a>;
    type IntoIter = MultiResultsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for MultiResults<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.count))?;
        for res in self.iter() {
            seq.serialize_element(&res)?;
        }
        seq.end()
    }
}

/// Iterator over [`MultiResults`].
#[derive(Debug, Clone)]
pub struct MultiResultsIter<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for MultiResultsIter<'a> {
    type Item = MultiResult<'a>;
    fn next(&mut self) -> Option<MultiResult<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = read_result(&mut self.r).ok().flatten();
        if item.is_none() {
            self.left = 0;
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for MultiResultsIter<'_> {}

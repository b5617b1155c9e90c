//! Client → server frames: `RequestHeader` + request record.

use core::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::codes::{AddWatchMode, CreateMode, OpCode, WatcherType};
use super::records::{Acls, Credential, Data, Strings};
use crate::jute::{DecodeError, ErrorKind, JStr, Reader, Result};

/// Most sub-operations accepted in one multi/multiRead (requests and replies).
pub const MAX_MULTI_OPS: usize = 100_000;

/// `RequestHeader` (8 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestHeader {
    /// Request id (special values: [`PING_XID`](super::PING_XID), …).
    pub xid: i32,
    /// Request type.
    pub opcode: OpCode,
}

impl RequestHeader {
    /// Encoded size.
    pub const LEN: usize = 8;

    /// Decodes the first 8 bytes of `frame` (the rest is ignored).
    pub fn decode(frame: &[u8]) -> Result<Self> {
        Self::read(&mut Reader::new(frame))
    }

    /// Reads a header.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(RequestHeader {
            xid: r.i32("xid")?,
            opcode: OpCode(r.i32("type")?),
        })
    }
}

/// `{"xid":…,"opcode":4,"op":"getData"}` (`op` null when unknown).
impl Serialize for RequestHeader {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        self.serialize_fields(&mut m)?;
        m.end()
    }
}

impl RequestHeader {
    /// Writes `xid`, `opcode`, `op` into an open map.
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
    ) -> core::result::Result<(), M::Error> {
        m.serialize_entry("xid", &self.xid)?;
        m.serialize_entry("opcode", &self.opcode.0)?;
        m.serialize_entry("op", &self.opcode.name())
    }
}

/// The record after a [`RequestHeader`], chosen by opcode.
///
/// Null `path`-like strings read as empty; only `Reconfig` keeps nulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody<'a> {
    /// create (1), create2 (15), createContainer (19), createTTL (21, with `ttl`).
    Create {
        /// Requested path (the server may append a sequence suffix).
        path: JStr<'a>,
        /// Initial data.
        data: Data<'a>,
        /// ACL list.
        acl: Acls<'a>,
        /// Create flags.
        mode: CreateMode,
        /// TTL in ms (createTTL only).
        ttl: Option<i64>,
    },
    /// delete (2).
    Delete {
        /// Path.
        path: JStr<'a>,
        /// Expected version (−1 = any).
        version: i32,
    },
    /// exists (3), getData (4), getChildren (8), getChildren2 (12).
    PathWatch {
        /// Path.
        path: JStr<'a>,
        /// Leave a watch.
        watch: bool,
    },
    /// setData (5).
    SetData {
        /// Path.
        path: JStr<'a>,
        /// New data.
        data: Data<'a>,
        /// Expected version (−1 = any).
        version: i32,
    },
    /// getACL (6).
    GetAcl {
        /// Path.
        path: JStr<'a>,
    },
    /// setACL (7).
    SetAcl {
        /// Path.
        path: JStr<'a>,
        /// New ACL list.
        acl: Acls<'a>,
        /// Expected ACL version (−1 = any).
        version: i32,
    },
    /// sync (9).
    Sync {
        /// Path.
        path: JStr<'a>,
    },
    /// check (13, CheckVersionRequest).
    Check {
        /// Path.
        path: JStr<'a>,
        /// Expected version.
        version: i32,
    },
    /// multi (14) and multiRead (22).
    Multi(MultiOps<'a>),
    /// reconfig (16).
    Reconfig {
        /// Servers to add (incremental mode).
        joining: Option<JStr<'a>>,
        /// Server ids to remove (incremental mode).
        leaving: Option<JStr<'a>>,
        /// Full new membership (non-incremental mode).
        new_members: Option<JStr<'a>>,
        /// Expected config version (−1 = don't check).
        cur_config_id: i64,
    },
    /// checkWatches (17).
    CheckWatches {
        /// Path.
        path: JStr<'a>,
        /// Which watches.
        watcher_type: WatcherType,
    },
    /// removeWatches (18).
    RemoveWatches {
        /// Path.
        path: JStr<'a>,
        /// Which watches.
        watcher_type: WatcherType,
    },
    /// auth (100, AuthPacket).
    Auth {
        /// Always 0 in practice.
        auth_type: i32,
        /// Scheme (`digest`, `ip`, …).
        scheme: JStr<'a>,
        /// The secret (redacted when displayed).
        credential: Credential<'a>,
    },
    /// setWatches (101) and setWatches2 (105, with the persistent lists).
    SetWatches {
        /// Last zxid the client saw.
        relative_zxid: i64,
        /// Data watches to re-arm.
        data: Strings<'a>,
        /// Exist watches to re-arm.
        exist: Strings<'a>,
        /// Child watches to re-arm.
        child: Strings<'a>,
        /// Persistent watches (setWatches2 only).
        persistent: Option<Strings<'a>>,
        /// Persistent recursive watches (setWatches2 only).
        persistent_recursive: Option<Strings<'a>>,
    },
    /// sasl (102, GetSASLRequest).
    Sasl {
        /// SASL token.
        token: Data<'a>,
    },
    /// getEphemerals (103).
    GetEphemerals {
        /// Path prefix.
        prefix: JStr<'a>,
    },
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber {
        /// Path.
        path: JStr<'a>,
    },
    /// addWatch (106).
    AddWatch {
        /// Path.
        path: JStr<'a>,
        /// Persistent or persistent-recursive.
        mode: AddWatchMode,
    },
    /// deleteContainer (20, server-internal): jute `buffer` (3.9+) when its
    /// length prefix matches the body exactly, else raw path bytes (3.5–3.8).
    DeleteContainer {
        /// Path.
        path: JStr<'a>,
    },
    /// Requests without a record: ping (11), closeSession (−11), whoAmI (107).
    Empty,
    /// Opcode this crate does not know: the body is kept opaque.
    Unknown {
        /// Body length in bytes.
        len: usize,
    },
    /// Only the start of the frame was captured (snap length, lost segment): what could be
    /// read of it. See [`decode_request_prefix`].
    Partial {
        /// The path, when the record starts with one and it was captured whole.
        path: Option<JStr<'a>>,
        /// Body bytes captured (after the header).
        captured: usize,
    },
}

impl<'a> RequestBody<'a> {
    /// Reads the record for `op`. Never fails for unknown opcodes (the rest
    /// becomes [`RequestBody::Unknown`]).
    pub fn read(op: OpCode, r: &mut Reader<'a>) -> Result<Self> {
        Ok(match op {
            OpCode::CREATE | OpCode::CREATE2 | OpCode::CREATE_CONTAINER | OpCode::CREATE_TTL => {
                RequestBody::Create {
                    path: r.ustring_or_empty("path")?,
                    data: Data(r.buffer("data")?),
                    acl: Acls::read(r, "acl")?,
                    mode: CreateMode(r.i32("flags")?),
                    ttl: if op == OpCode::CREATE_TTL {
                        Some(r.i64("ttl")?)
                    } else {
                        None
                    },
                }
            }
            OpCode::DELETE => RequestBody::Delete {
                path: r.ustring_or_empty("path")?,
                version: r.i32("version")?,
            },
            OpCode::EXISTS | OpCode::GET_DATA | OpCode::GET_CHILDREN | OpCode::GET_CHILDREN2 => {
                RequestBody::PathWatch {
                    path: r.ustring_or_empty("path")?,
                    watch: r.bool("watch")?,
                }
            }
            OpCode::SET_DATA => RequestBody::SetData {
                path: r.ustring_or_empty("path")?,
                data: Data(r.buffer("data")?),
                version: r.i32("version")?,
            },
            OpCode::GET_ACL => RequestBody::GetAcl {
                path: r.ustring_or_empty("path")?,
            },
            OpCode::SET_ACL => RequestBody::SetAcl {
                path: r.ustring_or_empty("path")?,
                acl: Acls::read(r, "acl")?,
                version: r.i32("version")?,
            },
            OpCode::SYNC => RequestBody::Sync {
                path: r.ustring_or_empty("path")?,
            },
            OpCode::CHECK => RequestBody::Check {
                path: r.ustring_or_empty("path")?,
                version: r.i32("version")?,
            },
            OpCode::MULTI | OpCode::MULTI_READ => RequestBody::Multi(MultiOps::read(r)?),
            OpCode::RECONFIG => RequestBody::Reconfig {
                joining: r.ustring("joiningServers")?,
                leaving: r.ustring("leavingServers")?,
                new_members: r.ustring("newMembers")?,
                cur_config_id: r.i64("curConfigId")?,
            },
            OpCode::CHECK_WATCHES => RequestBody::CheckWatches {
                path: r.ustring_or_empty("path")?,
                watcher_type: WatcherType(r.i32("type")?),
            },
            OpCode::REMOVE_WATCHES => RequestBody::RemoveWatches {
                path: r.ustring_or_empty("path")?,
                watcher_type: WatcherType(r.i32("type")?),
            },
            OpCode::AUTH => {
                let auth_type = r.i32("type")?;
                let scheme = r.ustring_or_empty("scheme")?;
                let raw = r.buffer("auth")?.unwrap_or_default();
                RequestBody::Auth {
                    auth_type,
                    scheme,
                    credential: Credential::new(scheme.0, raw),
                }
            }
            OpCode::SET_WATCHES | OpCode::SET_WATCHES2 => {
                let relative_zxid = r.i64("relativeZxid")?;
                let data = Strings::read(r, "dataWatches")?;
                let exist = Strings::read(r, "existWatches")?;
                let child = Strings::read(r, "childWatches")?;
                let (persistent, persistent_recursive) = if op == OpCode::SET_WATCHES2 {
                    (
                        Some(Strings::read(r, "persistentWatches")?),
                        Some(Strings::read(r, "persistentRecursiveWatches")?),
                    )
                } else {
                    (None, None)
                };
                RequestBody::SetWatches {
                    relative_zxid,
                    data,
                    exist,
                    child,
                    persistent,
                    persistent_recursive,
                }
            }
            OpCode::SASL => RequestBody::Sasl {
                token: Data(r.buffer("token")?),
            },
            OpCode::GET_EPHEMERALS => RequestBody::GetEphemerals {
                prefix: r.ustring_or_empty("prefixPath")?,
            },
            OpCode::GET_ALL_CHILDREN_NUMBER => RequestBody::GetAllChildrenNumber {
                path: r.ustring_or_empty("path")?,
            },
            OpCode::ADD_WATCH => RequestBody::AddWatch {
                path: r.ustring_or_empty("path")?,
                mode: AddWatchMode(r.i32("mode")?),
            },
            OpCode::DELETE_CONTAINER => {
                let rest = r.rest();
                let framed = match rest {
                    [a, b, c, d, tail @ ..] => {
                        usize::try_from(i32::from_be_bytes([*a, *b, *c, *d])).ok()
                            == Some(tail.len())
                    }
                    _ => false,
                };
                let path = if framed {
                    r.ustring_or_empty("path")?
                } else {
                    JStr(r.take_rest())
                };
                RequestBody::DeleteContainer { path }
            }
            OpCode::PING | OpCode::CLOSE_SESSION | OpCode::WHO_AM_I => RequestBody::Empty,
            _ => RequestBody::Unknown {
                len: r.take_rest().len(),
            },
        })
    }

    /// The znode path (or prefix) the request is about, if it has one.
    pub fn path(&self) -> Option<JStr<'a>> {
        match *self {
            RequestBody::Create { path, .. }
            | RequestBody::Delete { path, .. }
            | RequestBody::PathWatch { path, .. }
            | RequestBody::SetData { path, .. }
            | RequestBody::GetAcl { path }
            | RequestBody::SetAcl { path, .. }
            | RequestBody::Sync { path }
            | RequestBody::Check { path, .. }
            | RequestBody::CheckWatches { path, .. }
            | RequestBody::RemoveWatches { path, .. }
            | RequestBody::GetAllChildrenNumber { path }
            | RequestBody::AddWatch { path, .. }
            | RequestBody::DeleteContainer { path } => Some(path),
            RequestBody::GetEphemerals { prefix } => Some(prefix),
            RequestBody::Partial { path, .. } => path,
            _ => None,
        }
    }

    /// The `watch` flag of exists/getData/getChildren/getChildren2.
    pub fn watch(&self) -> Option<bool> {
        match *self {
            RequestBody::PathWatch { watch, .. } => Some(watch),
            _ => None,
        }
    }

    /// Turns off credential redaction (auth packets only; a no-op otherwise).
    pub fn reveal_credentials(&mut self) {
        if let RequestBody::Auth { credential, .. } = self {
            credential.redact = false;
        }
    }

    /// Writes this body's fields into an open map (the flat JSON shape).
    pub fn serialize_fields<M: SerializeMap>(
        &self,
        m: &mut M,
    ) -> core::result::Result<(), M::Error> {
        match self {
            RequestBody::Create {
                path,
                data,
                acl,
                mode,
                ttl,
            } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("data_len", data)?;
                m.serialize_entry("acl", acl)?;
                m.serialize_entry("mode", &mode.name())?;
                m.serialize_entry("flags", &mode.0)?;
                m.serialize_entry("ttl", ttl)
            }
            RequestBody::Delete { path, version } | RequestBody::Check { path, version } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("version", version)
            }
            RequestBody::PathWatch { path, watch } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("watch", watch)
            }
            RequestBody::SetData {
                path,
                data,
                version,
            } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("data_len", data)?;
                m.serialize_entry("version", version)
            }
            RequestBody::SetAcl { path, acl, version } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("acl", acl)?;
                m.serialize_entry("version", version)
            }
            RequestBody::GetAcl { path }
            | RequestBody::Sync { path }
            | RequestBody::GetAllChildrenNumber { path }
            | RequestBody::DeleteContainer { path }
            | RequestBody::GetEphemerals { prefix: path } => m.serialize_entry("path", path),
            RequestBody::Multi(ops) => m.serialize_entry("ops", ops),
            RequestBody::Reconfig {
                joining,
                leaving,
                new_members,
                cur_config_id,
            } => {
                m.serialize_entry("joining", joining)?;
                m.serialize_entry("leaving", leaving)?;
                m.serialize_entry("new_members", new_members)?;
                m.serialize_entry("cur_config_id", cur_config_id)
            }
            RequestBody::CheckWatches { path, watcher_type }
            | RequestBody::RemoveWatches { path, watcher_type } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("watcher_type", &watcher_type.name())?;
                m.serialize_entry("watcher_type_code", &watcher_type.0)
            }
            RequestBody::Auth {
                auth_type,
                scheme,
                credential,
            } => {
                m.serialize_entry("auth_type", auth_type)?;
                m.serialize_entry("scheme", scheme)?;
                m.serialize_entry("credential", credential)
            }
            RequestBody::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
            } => {
                m.serialize_entry("relative_zxid", relative_zxid)?;
                m.serialize_entry("data_watches", data)?;
                m.serialize_entry("exist_watches", exist)?;
                m.serialize_entry("child_watches", child)?;
                // setWatches2 (105) only.
                if let Some(p) = persistent {
                    m.serialize_entry("persistent_watches", p)?;
                }
                if let Some(p) = persistent_recursive {
                    m.serialize_entry("persistent_recursive_watches", p)?;
                }
                Ok(())
            }
            RequestBody::Sasl { token } => m.serialize_entry("token_len", token),
            RequestBody::AddWatch { path, mode } => {
                m.serialize_entry("path", path)?;
                m.serialize_entry("mode", &mode.name())?;
                m.serialize_entry("mode_code", &mode.0)
            }
            RequestBody::Empty => Ok(()),
            RequestBody::Unknown { len } => m.serialize_entry("body_len", len),
            RequestBody::Partial { path, captured } => {
                if let Some(p) = path {
                    m.serialize_entry("path", p)?;
                }
                m.serialize_entry("captured_body_len", captured)
            }
        }
    }
}

/// A flat map of the body's fields (see [`RequestBody::serialize_fields`]).
impl Serialize for RequestBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.serialize_fields(&mut m)?;
        m.end()
    }
}

/// A decoded request frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// Header.
    pub header: RequestHeader,
    /// Record.
    pub body: RequestBody<'a>,
    /// Bytes left after a known record (ignored, as servers do).
    pub trailing: usize,
}

/// Flat map: header fields, `type` (e.g. `"GetDataRequest"`), body fields,
/// and `trailing_bytes` when non-zero.
impl Serialize for Request<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.header.serialize_fields(&mut m)?;
        m.serialize_entry("type", self.header.opcode.request_type())?;
        self.body.serialize_fields(&mut m)?;
        if self.trailing > 0 {
            m.serialize_entry("trailing_bytes", &self.trailing)?;
        }
        m.end()
    }
}

/// Decodes a client → server frame (the bytes after the 4-byte length).
///
/// Not for the first frame of a connection (a `ConnectRequest`, see
/// [`ConnectRequest`](super::ConnectRequest)). Unknown opcodes give
/// [`RequestBody::Unknown`]; bytes after a known record are counted in
/// [`Request::trailing`].
pub fn decode_request(frame: &[u8]) -> Result<Request<'_>> {
    let mut r = Reader::new(frame);
    let header = RequestHeader::read(&mut r)?;
    let body = RequestBody::read(header.opcode, &mut r)?;
    Ok(Request {
        header,
        body,
        trailing: r.remaining(),
    })
}

/// Decodes what can be read of a client → server frame of which only `head`, its start, was
/// captured: the header and, for records that start with a path, the path if it is whole.
pub fn decode_request_prefix(head: &[u8]) -> Result<Request<'_>> {
    let mut r = Reader::new(head);
    let header = RequestHeader::read(&mut r)?;
    let path_first = header.opcode.starts_with_path();
    let captured = r.remaining();
    let path = if path_first {
        r.ustring("path").ok().flatten()
    } else {
        None
    };
    Ok(Request {
        header,
        body: RequestBody::Partial { path, captured },
        trailing: 0,
    })
}

/// Reads a `MultiHeader`: `(type, done, err)`.
pub(crate) fn read_multi_header(r: &mut Reader<'_>) -> Result<(i32, bool, i32)> {
    Ok((
        r.i32("MultiHeader.type")?,
        r.bool("MultiHeader.done")?,
        r.i32("MultiHeader.err")?,
    ))
}

/// Sub-request of a multi: only the types `MultiOperationRecord` accepts.
fn read_sub_request<'a>(op: OpCode, r: &mut Reader<'a>, at: usize) -> Result<RequestBody<'a>> {
    match op {
        OpCode::CREATE
        | OpCode::CREATE2
        | OpCode::CREATE_CONTAINER
        | OpCode::CREATE_TTL
        | OpCode::DELETE
        | OpCode::SET_DATA
        | OpCode::CHECK
        | OpCode::GET_CHILDREN
        | OpCode::GET_DATA => RequestBody::read(op, r),
        _ => Err(DecodeError::new(ErrorKind::Invalid, "MultiHeader.type", at)),
    }
}

/// The operations of a multi/multiRead request, validated at decode time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MultiOps<'a> {
    bytes: &'a [u8],
    count: usize,
}

/// One operation of a multi request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiOp<'a> {
    /// Sub-operation type.
    pub op: OpCode,
    /// Its record.
    pub body: RequestBody<'a>,
}

/// `{"opcode":1,"op":"create","type":"CreateRequest", …body fields}`.
impl Serialize for MultiOp<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("opcode", &self.op.0)?;
        m.serialize_entry("op", &self.op.name())?;
        m.serialize_entry("type", self.op.request_type())?;
        self.body.serialize_fields(&mut m)?;
        m.end()
    }
}

impl<'a> MultiOps<'a> {
    /// Reads `(MultiHeader + record)*` up to the `done` header. Sub-op types
    /// outside create/create2/createContainer/createTTL/delete/setData/check/
    /// getChildren/getData, or more than [`MAX_MULTI_OPS`] ops, are `Invalid`.
    pub fn read(r: &mut Reader<'a>) -> Result<Self> {
        let all = r.rest();
        let start = r.position();
        let mut count = 0usize;
        loop {
            let at = r.position();
            let (ty, done, _err) = read_multi_header(r)?;
            if done {
                break;
            }
            if count >= MAX_MULTI_OPS {
                return Err(DecodeError::new(ErrorKind::Invalid, "ops", at));
            }
            read_sub_request(OpCode(ty), r, at)?;
            count += 1;
        }
        let used = r.position().saturating_sub(start);
        Ok(MultiOps {
            bytes: all.get(..used).unwrap_or_default(),
            count,
        })
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True for an empty multi.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the operations.
    pub fn iter(&self) -> MultiOpsIter<'a> {
        MultiOpsIter {
            r: Reader::new(self.bytes),
            left: self.count,
        }
    }
}

impl fmt::Debug for MultiOps<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for MultiOps<'a> {
    type Item = MultiOp<'a>;
    type IntoIter = MultiOpsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &MultiOps<'a> {
    type Item = MultiOp<'a>;
    type IntoIter = MultiOpsIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for MultiOps<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.count))?;
        for op in self.iter() {
            seq.serialize_element(&op)?;
        }
        seq.end()
    }
}

/// Iterator over [`MultiOps`].
#[derive(Debug, Clone)]
pub struct MultiOpsIter<'a> {
    r: Reader<'a>,
    left: usize,
}

impl<'a> Iterator for MultiOpsIter<'a> {
    type Item = MultiOp<'a>;
    fn next(&mut self) -> Option<MultiOp<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = (|| {
            let at = self.r.position();
            let (ty, _, _) = read_multi_header(&mut self.r).ok()?;
            let op = OpCode(ty);
            let body = read_sub_request(op, &mut self.r, at).ok()?;
            Some(MultiOp { op, body })
        })();
        if item.is_none() {
            self.left = 0;
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for MultiOpsIter<'_> {}

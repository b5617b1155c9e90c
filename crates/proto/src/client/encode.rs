//! The client protocol's encoder: the inverse of the decoders, for tools that speak to a
//! server (replay) or play one (tests).
//!
//! Sans-I/O like the rest of the crate: functions append one frame *body* (no length
//! prefix) to a `Vec<u8>`; [`frame`] adds the prefix. A decoded value re-encodes to the bytes
//! it was decoded from (`tests/roundtrip.rs` checks this for every opcode), except that a
//! null path reads as empty and so re-encodes as an empty string.
//!
//! Paths can be rewritten on the way out ([`encode_request_mapped`]): every znode path of the
//! record (including those inside a multi and the watch lists of setWatches) goes through the
//! caller's function, which is how a replay adds a chroot or maps sequential names.

use std::borrow::Cow;

use super::codes::OpCode;
use super::connect::{ConnectRequest, ConnectResponse};
use super::records::{Element, Vector};
use super::reply::ReplyHeader;
use super::request::{RequestBody, RequestHeader};
use crate::jute::JStr;

/// Why a request cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// Only part of the request was captured ([`RequestBody::Partial`]).
    Partial,
    /// The opcode is unknown: the body was not kept ([`RequestBody::Unknown`]); resend the
    /// captured bytes instead.
    Unknown,
    /// A length does not fit jute's `int`.
    TooLong,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            EncodeError::Partial => "only part of the request was captured",
            EncodeError::Unknown => "unknown opcode: the body was not decoded",
            EncodeError::TooLong => "a length does not fit a jute int",
        })
    }
}

impl std::error::Error for EncodeError {}

type Res = core::result::Result<(), EncodeError>;

/// A jute writer appending to a `Vec<u8>`.
#[derive(Debug)]
pub struct Writer<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> Writer<'o> {
    /// Appends to `out`.
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        Writer { out }
    }

    /// `int`.
    pub fn i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// `long`.
    pub fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    /// `boolean`.
    pub fn bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }

    /// A length or count.
    fn len(&mut self, n: usize) -> Res {
        self.i32(i32::try_from(n).map_err(|_| EncodeError::TooLong)?);
        Ok(())
    }

    /// `buffer` (`None` = null).
    pub fn buffer(&mut self, b: Option<&[u8]>) -> Res {
        match b {
            None => self.i32(-1),
            Some(b) => {
                self.len(b.len())?;
                self.out.extend_from_slice(b);
            }
        }
        Ok(())
    }

    /// `ustring` (`None` = null).
    pub fn ustring(&mut self, s: Option<&[u8]>) -> Res {
        self.buffer(s)
    }

    /// A vector decoded by this crate, as it was (count, or −1 for null, then its elements).
    pub fn raw_vector<'a, T: Element<'a>>(&mut self, v: &Vector<'a, T>) -> Res {
        if v.is_null() {
            self.i32(-1);
        } else {
            self.len(v.len())?;
            self.out.extend_from_slice(v.raw());
        }
        Ok(())
    }

    /// A `vector<ustring>` with each string mapped.
    fn strings(&mut self, v: &Vector<'_, JStr<'_>>, map: &mut PathMap<'_>) -> Res {
        if v.is_null() {
            self.i32(-1);
            return Ok(());
        }
        self.len(v.len())?;
        for s in v.iter() {
            self.ustring(Some(&map(s.as_bytes())))?;
        }
        Ok(())
    }
}

/// Rewrites a znode path on its way out.
pub type PathMap<'m> = dyn FnMut(&[u8]) -> Cow<'_, [u8]> + 'm;

/// Appends a request frame body (header + record) to `out`, paths unchanged.
pub fn encode_request(
    header: RequestHeader,
    body: &RequestBody<'_>,
    out: &mut Vec<u8>,
) -> core::result::Result<(), EncodeError> {
    encode_request_mapped(header, body, &mut |p| Cow::Borrowed(p), out)
}

/// Appends a request frame body to `out`, every znode path rewritten by `map`. On error `out`
/// is left as it was.
pub fn encode_request_mapped(
    header: RequestHeader,
    body: &RequestBody<'_>,
    map: &mut PathMap<'_>,
    out: &mut Vec<u8>,
) -> core::result::Result<(), EncodeError> {
    let start = out.len();
    let mut w = Writer::new(out);
    w.i32(header.xid);
    w.i32(header.opcode.0);
    let res = write_body(&mut w, header.opcode, body, map);
    if res.is_err() {
        out.truncate(start);
    }
    res
}

fn write_body(
    w: &mut Writer<'_>,
    op: OpCode,
    body: &RequestBody<'_>,
    map: &mut PathMap<'_>,
) -> Res {
    match *body {
        RequestBody::Create {
            path,
            data,
            acl,
            mode,
            ttl,
        } => {
            w.ustring(Some(&map(path.as_bytes())))?;
            w.buffer(data.bytes())?;
            w.raw_vector(&acl)?;
            w.i32(mode.0);
            if op == OpCode::CREATE_TTL {
                w.i64(ttl.unwrap_or(0));
            }
        }
        RequestBody::Delete { path, version } | RequestBody::Check { path, version } => {
            w.ustring(Some(&map(path.as_bytes())))?;
            w.i32(version);
        }
        RequestBody::PathWatch { path, watch } => {
            w.ustring(Some(&map(path.as_bytes())))?;
            w.bool(watch);
        }
        RequestBody::SetData {
            path,
            data,
            version,
        } => {
            w.ustring(Some(&map(path.as_bytes())))?;
            w.buffer(data.bytes())?;
            w.i32(version);
        }
        RequestBody::GetAcl { path }
        | RequestBody::Sync { path }
        | RequestBody::GetAllChildrenNumber { path }
        | RequestBody::GetEphemerals { prefix: path } => {
            w.ustring(Some(&map(path.as_bytes())))?;
        }
        RequestBody::SetAcl { path, acl, version } => {
            w.ustring(Some(&map(path.as_bytes())))?;
            w.raw_vector(&acl)?;
            w.i32(version);
        }
        RequestBody::Multi(ops) => {
            for op in ops.iter() {
                w.i32(op.op.0);
                w.bool(false);
                w.i32(-1);
                write_body(w, op.op, &op.body, map)?;
            }
            w.i32(-1);
            w.bool(true);
            w.i32(-1);
        }
        RequestBody::Reconfig {
            joining,
            leaving,
            new_members,
            cur_config_id,
        } => {
            w.ustring(joining.map(|s| s.as_bytes()))?;
            w.ustring(leaving.map(|s| s.as_bytes()))?;
            w.ustring(new_members.map(|s| s.as_bytes()))?;
            w.i64(cur_config_id);
        }
        RequestBody::CheckWatches { path, watcher_type }
        | RequestBody::RemoveWatches { path, watcher_type } => {
            w.ustring(Some(&map(path.as_bytes())))?;
            w.i32(watcher_type.0);
        }
        RequestBody::Auth {
            auth_type,
            scheme,
            credential,
        } => {
            w.i32(auth_type);
            w.ustring(Some(scheme.as_bytes()))?;
            w.buffer(Some(credential.raw))?;
        }
        RequestBody::SetWatches {
            relative_zxid,
            data,
            exist,
            child,
            persistent,
            persistent_recursive,
        } => {
            w.i64(relative_zxid);
            w.strings(&data, map)?;
            w.strings(&exist, map)?;
            w.strings(&child, map)?;
            if let (Some(p), Some(r)) = (persistent, persistent_recursive) {
                w.strings(&p, map)?;
                w.strings(&r, map)?;
            }
        }
        RequestBody::Sasl { token } => w.buffer(token.bytes())?,
        RequestBody::AddWatch { path, mode } => {
            w.ustring(Some(&map(path.as_bytes())))?;
            w.i32(mode.0);
        }
        RequestBody::DeleteContainer { path } => {
            // The 3.9+ form (a jute buffer); the server never takes it from a client anyway.
            w.ustring(Some(&map(path.as_bytes())))?;
        }
        RequestBody::Empty => {}
        RequestBody::Unknown { .. } => return Err(EncodeError::Unknown),
        RequestBody::Partial { .. } => return Err(EncodeError::Partial),
    }
    Ok(())
}

/// Appends a `ConnectRequest` body (the `readOnly` byte only when `Some`).
pub fn encode_connect_request(
    c: &ConnectRequest<'_>,
    out: &mut Vec<u8>,
) -> core::result::Result<(), EncodeError> {
    let mut w = Writer::new(out);
    w.i32(c.protocol_version);
    w.i64(c.last_zxid_seen);
    w.i32(c.timeout);
    w.i64(c.session_id);
    w.buffer(c.passwd)?;
    if let Some(ro) = c.read_only {
        w.bool(ro);
    }
    Ok(())
}

/// Appends a `ConnectResponse` body (the `readOnly` byte only when `Some`).
pub fn encode_connect_response(
    c: &ConnectResponse<'_>,
    out: &mut Vec<u8>,
) -> core::result::Result<(), EncodeError> {
    let mut w = Writer::new(out);
    w.i32(c.protocol_version);
    w.i32(c.timeout);
    w.i64(c.session_id);
    w.buffer(c.passwd)?;
    if let Some(ro) = c.read_only {
        w.bool(ro);
    }
    Ok(())
}

/// Appends a `ReplyHeader` (a reply's record, if any, follows).
pub fn encode_reply_header(h: &ReplyHeader, out: &mut Vec<u8>) {
    let mut w = Writer::new(out);
    w.i32(h.xid);
    w.i64(h.zxid);
    w.i32(h.err.0);
}

/// Prefixes `body` with its 4-byte length: the bytes to write on the socket.
pub fn frame(body: &[u8]) -> core::result::Result<Vec<u8>, EncodeError> {
    let n = i32::try_from(body.len()).map_err(|_| EncodeError::TooLong)?;
    let mut v = Vec::with_capacity(body.len() + 4);
    v.extend_from_slice(&n.to_be_bytes());
    v.extend_from_slice(body);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{decode_request, ErrCode};

    #[test]
    fn get_data_with_a_chroot() {
        let req = [0, 0, 0, 7, 0, 0, 0, 4, 0, 0, 0, 2, b'/', b'a', 1];
        let r = decode_request(&req).unwrap();
        let mut out = Vec::new();
        encode_request(r.header, &r.body, &mut out).unwrap();
        assert_eq!(out, req);
        out.clear();
        fn chroot(p: &[u8]) -> Cow<'_, [u8]> {
            let mut v = b"/r".to_vec();
            v.extend_from_slice(p);
            Cow::Owned(v)
        }
        encode_request_mapped(r.header, &r.body, &mut chroot, &mut out).unwrap();
        let back = decode_request(&out).unwrap();
        assert_eq!(back.body.path().unwrap(), "/r/a");
        assert_eq!(back.body.watch(), Some(true));
    }

    #[test]
    fn unknown_bodies_are_refused_and_leave_the_output_alone() {
        let req = [0, 0, 0, 7, 0, 0, 0, 99, 1, 2, 3];
        let r = decode_request(&req).unwrap();
        let mut out = vec![9];
        assert_eq!(
            encode_request(r.header, &r.body, &mut out),
            Err(EncodeError::Unknown)
        );
        assert_eq!(out, [9]);
    }

    #[test]
    fn reply_header_and_frame() {
        let mut out = Vec::new();
        encode_reply_header(
            &ReplyHeader {
                xid: 1,
                zxid: 2,
                err: ErrCode(-101),
            },
            &mut out,
        );
        let f = frame(&out).unwrap();
        assert_eq!(f.len(), 20);
        assert_eq!(f[..4], [0, 0, 0, 16]);
        let h = ReplyHeader::decode(&f[4..]).unwrap();
        assert_eq!((h.xid, h.zxid, h.err), (1, 2, ErrCode(-101)));
    }
}

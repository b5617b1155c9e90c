//! The connect handshake: first frame in each direction (protocol.md §2.2).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::codes::Hex;
use crate::jute::{DecodeError, ErrorKind, Reader, Result};

/// Longest `passwd` [`ConnectRequest::looks_like`] and
/// [`ConnectResponse::looks_like`] accept (real ones are 16 bytes).
pub const MAX_PLAUSIBLE_PASSWD: usize = 64;

/// Reads the optional trailing `readOnly` byte: present iff exactly one
/// byte is left; more is an error.
fn read_only(r: &mut Reader<'_>) -> Result<Option<bool>> {
    match r.remaining() {
        0 => Ok(None),
        1 => Ok(Some(r.bool("readOnly")?)),
        _ => Err(DecodeError::new(
            ErrorKind::Invalid,
            "readOnly",
            r.position(),
        )),
    }
}

fn int_at(head: &[u8], at: usize) -> Option<i32> {
    let b = head.get(at..at.checked_add(4)?)?;
    b.try_into().ok().map(i32::from_be_bytes)
}

fn long_at(head: &[u8], at: usize) -> Option<i64> {
    let b = head.get(at..at.checked_add(8)?)?;
    b.try_into().ok().map(i64::from_be_bytes)
}

/// Shared plausibility test for a handshake frame of body length `len`
/// whose first bytes are `head`. Fields beyond `head` are not checked.
/// `fixed` is the offset just after the `passwd` length; `non_negative`
/// lists `(offset, is_long)` fields that must be ≥ 0; the int at offset 0
/// (protocol version) must be 0.
fn plausible(len: usize, head: &[u8], fixed: usize, non_negative: &[(usize, bool)]) -> bool {
    let head = head.get(..len).unwrap_or(head);
    if len < fixed || len > fixed + MAX_PLAUSIBLE_PASSWD + 1 {
        return false;
    }
    if int_at(head, 0).is_some_and(|v| v != 0) {
        return false;
    }
    for &(at, long) in non_negative {
        let neg = if long {
            long_at(head, at).is_some_and(|v| v < 0)
        } else {
            int_at(head, at).is_some_and(|v| v < 0)
        };
        if neg {
            return false;
        }
    }
    let Some(plen) = int_at(head, fixed - 4) else {
        return true;
    };
    let Ok(plen) = usize::try_from(plen) else {
        return false;
    };
    if plen > MAX_PLAUSIBLE_PASSWD {
        return false;
    }
    if len == fixed + plen {
        true
    } else if len == fixed + plen + 1 {
        head.get(fixed + plen).is_none_or(|&b| b <= 1)
    } else {
        false
    }
}

/// `ConnectRequest` (client's first frame, no header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRequest<'a> {
    /// Always 0.
    pub protocol_version: i32,
    /// Last zxid the client saw (0 for a new client).
    pub last_zxid_seen: i64,
    /// Requested session timeout (ms).
    pub timeout: i32,
    /// Session to resume (0 = new session).
    pub session_id: i64,
    /// Session password (16 bytes; `None` if null).
    pub passwd: Option<&'a [u8]>,
    /// Trailing readOnly flag (absent from 3.4 C clients and ≤3.3).
    pub read_only: Option<bool>,
}

impl<'a> ConnectRequest<'a> {
    /// Bytes before `passwd`'s payload (4 version + 8 zxid + 4 timeout + 8
    /// session + 4 passwd length).
    pub const FIXED_LEN: usize = 28;

    /// Decodes a connect request body. `readOnly` is read iff exactly one
    /// byte remains after `passwd`; more trailing bytes are `Invalid`.
    pub fn decode(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        Ok(ConnectRequest {
            protocol_version: r.i32("protocolVersion")?,
            last_zxid_seen: r.i64("lastZxidSeen")?,
            timeout: r.i32("timeOut")?,
            session_id: r.i64("sessionId")?,
            passwd: r.buffer("passwd")?,
            read_only: read_only(&mut r)?,
        })
    }

    /// Strict test that `body` (a whole frame body) is a connect request:
    /// protocol version 0, `lastZxidSeen` ≥ 0, timeout ≥ 0, passwd length
    /// 0..=64 with the body exactly 28+len or 29+len bytes (the extra
    /// readOnly byte being 0 or 1). For captures that start mid-stream.
    pub fn looks_like(body: &[u8]) -> bool {
        Self::looks_like_prefix(body.len(), body)
    }

    /// [`looks_like`](Self::looks_like) for a frame of body length `len`
    /// of which only the first bytes, `head`, are available (e.g. while
    /// resynchronising); fields not in `head` are not checked.
    pub fn looks_like_prefix(len: usize, head: &[u8]) -> bool {
        plausible(len, head, Self::FIXED_LEN, &[(4, true), (12, false)])
    }

    /// What can be read of a connect request of which only `head`, its
    /// start, was captured (a snap length): fields not wholly in `head`
    /// read as 0 (`passwd` and `read_only` as `None` unless whole).
    pub fn decode_prefix(head: &'a [u8]) -> Self {
        ConnectRequest::decode(head).unwrap_or(ConnectRequest {
            protocol_version: int_at(head, 0).unwrap_or(0),
            last_zxid_seen: long_at(head, 4).unwrap_or(0),
            timeout: int_at(head, 12).unwrap_or(0),
            session_id: long_at(head, 16).unwrap_or(0),
            passwd: None,
            read_only: None,
        })
    }
}

/// `protocol_version, last_zxid_seen, timeout, session_id ("0x…"),
/// passwd_len, read_only` (null when absent).
impl Serialize for ConnectRequest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("protocol_version", &self.protocol_version)?;
        m.serialize_entry("last_zxid_seen", &self.last_zxid_seen)?;
        m.serialize_entry("timeout", &self.timeout)?;
        m.serialize_entry("session_id", &Hex(self.session_id))?;
        m.serialize_entry("passwd_len", &self.passwd.map(<[u8]>::len))?;
        m.serialize_entry("read_only", &self.read_only)?;
        m.end()
    }
}

/// `ConnectResponse` (server's first frame, no header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectResponse<'a> {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated session timeout (ms); 0 = session invalid/expired.
    pub timeout: i32,
    /// Session id (0 if invalid).
    pub session_id: i64,
    /// Session password (`None` if null).
    pub passwd: Option<&'a [u8]>,
    /// Server's read-only mode, if the byte was sent.
    pub read_only: Option<bool>,
}

impl<'a> ConnectResponse<'a> {
    /// Bytes before `passwd`'s payload (4 + 4 + 8 + 4).
    pub const FIXED_LEN: usize = 20;

    /// Decodes a connect response body (same `readOnly` rule as
    /// [`ConnectRequest::decode`]).
    pub fn decode(body: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        Ok(ConnectResponse {
            protocol_version: r.i32("protocolVersion")?,
            timeout: r.i32("timeOut")?,
            session_id: r.i64("sessionId")?,
            passwd: r.buffer("passwd")?,
            read_only: read_only(&mut r)?,
        })
    }

    /// Strict test that `body` is a connect response: protocol version 0,
    /// timeout ≥ 0, passwd length 0..=64 with the body exactly 20+len or
    /// 21+len bytes (readOnly byte 0 or 1).
    pub fn looks_like(body: &[u8]) -> bool {
        Self::looks_like_prefix(body.len(), body)
    }

    /// [`looks_like`](Self::looks_like) for a frame of body length `len`
    /// of which only `head` is available; fields not in `head` are not
    /// checked.
    pub fn looks_like_prefix(len: usize, head: &[u8]) -> bool {
        plausible(len, head, Self::FIXED_LEN, &[(4, false)])
    }

    /// What can be read of a connect response of which only `head` was
    /// captured; fields not wholly in `head` read as 0 / `None`.
    pub fn decode_prefix(head: &'a [u8]) -> Self {
        ConnectResponse::decode(head).unwrap_or(ConnectResponse {
            protocol_version: int_at(head, 0).unwrap_or(0),
            timeout: int_at(head, 4).unwrap_or(0),
            session_id: long_at(head, 8).unwrap_or(0),
            passwd: None,
            read_only: None,
        })
    }

    /// True when the server refused the session (timeout 0).
    pub fn is_expired(&self) -> bool {
        self.timeout == 0
    }
}

/// `protocol_version, timeout, session_id ("0x…"), passwd_len, read_only`.
impl Serialize for ConnectResponse<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("protocol_version", &self.protocol_version)?;
        m.serialize_entry("timeout", &self.timeout)?;
        m.serialize_entry("session_id", &Hex(self.session_id))?;
        m.serialize_entry("passwd_len", &self.passwd.map(<[u8]>::len))?;
        m.serialize_entry("read_only", &self.read_only)?;
        m.end()
    }
}

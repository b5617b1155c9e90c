//! Jute, ZooKeeper's binary record encoding (protocol.md §1).
//!
//! Everything is big-endian; `ustring`, `buffer` and `vector` are an `int`
//! length (−1 = null) followed by the payload. [`Reader`] is a bounds-checked
//! cursor over a borrowed slice: it never panics, never allocates and never
//! trusts a length field further than the bytes actually present.

use core::fmt;
use std::borrow::Cow;

use serde::{Serialize, Serializer};

/// Result of every decoder in this crate.
pub type Result<T> = core::result::Result<T, DecodeError>;

/// Why a decode failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The input ended before the field did (more bytes could make it valid).
    Truncated,
    /// A length or count below −1.
    NegativeLength,
    /// A value no valid encoder produces (bad tag, trailing bytes, too many items…).
    Invalid,
}

impl ErrorKind {
    /// Short lowercase description, as used by `Display`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Truncated => "truncated",
            ErrorKind::NegativeLength => "negative length",
            ErrorKind::Invalid => "invalid value",
        }
    }
}

/// A decode failure: what went wrong, in which field, at which byte offset
/// (from the start of the decoded slice, i.e. the frame body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DecodeError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Jute name of the field being read (e.g. `path`, `passwd`).
    pub field: &'static str,
    /// Offset of the start of that field.
    pub offset: usize,
}

impl DecodeError {
    /// Builds an error.
    pub fn new(kind: ErrorKind, field: &'static str, offset: usize) -> Self {
        DecodeError {
            kind,
            field,
            offset,
        }
    }

    /// True when more input could have made the decode succeed.
    pub fn is_truncated(&self) -> bool {
        self.kind == ErrorKind::Truncated
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at byte {} reading `{}`",
            self.kind.as_str(),
            self.offset,
            self.field
        )
    }
}

impl std::error::Error for DecodeError {}

/// Bytes of a jute `ustring`, borrowed from the input.
///
/// ZooKeeper writes modified UTF-8/CESU-8, so the bytes are kept raw and only
/// converted (lossily) for display and serialisation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct JStr<'a>(pub &'a [u8]);

impl<'a> JStr<'a> {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The text, with invalid UTF-8 replaced by U+FFFD (borrowed when valid).
    pub fn to_str_lossy(&self) -> Cow<'a, str> {
        // `from_utf8` checks ASCII a word at a time; the lossy scan goes chunk by chunk.
        match std::str::from_utf8(self.0) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(self.0),
        }
    }

    /// The text if it is valid UTF-8.
    pub fn to_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.0).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Writes `bytes` as lossy UTF-8 without allocating.
pub(crate) fn write_lossy(f: &mut dyn fmt::Write, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        f.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            f.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}

impl fmt::Display for JStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_lossy(f, self.0)
    }
}

impl fmt::Debug for JStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_str_lossy(), f)
    }
}

impl PartialEq<str> for JStr<'_> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for JStr<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl Serialize for JStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_str_lossy())
    }
}

/// Bounds-checked big-endian cursor over a borrowed slice.
///
/// Every read takes the jute field name, used in the [`DecodeError`] it may
/// return; the error offset is where that field starts. A failed read leaves
/// the position unchanged.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The unread bytes (does not consume them).
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// True when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn err(&self, kind: ErrorKind, field: &'static str) -> DecodeError {
        DecodeError::new(kind, field, self.pos)
    }

    /// Takes exactly `n` raw bytes.
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.err(ErrorKind::Truncated, field))?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err(ErrorKind::Truncated, field))?;
        self.pos = end;
        Ok(out)
    }

    /// Takes all remaining bytes.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let out = self.rest();
        self.pos = self.buf.len();
        out
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let b = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// A jute `boolean` (any non-zero byte is true, like Java's reader).
    pub fn bool(&mut self, field: &'static str) -> Result<bool> {
        Ok(self.u8(field)? != 0)
    }

    /// A jute `byte`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8> {
        let [b] = self.array::<1>(field)?;
        Ok(b)
    }

    /// A jute `int`.
    pub fn i32(&mut self, field: &'static str) -> Result<i32> {
        self.array(field).map(i32::from_be_bytes)
    }

    /// A jute `long`.
    pub fn i64(&mut self, field: &'static str) -> Result<i64> {
        self.array(field).map(i64::from_be_bytes)
    }

    /// A length prefix: −1 ⇒ `None`, other negatives ⇒ `NegativeLength`.
    /// The position is restored on error.
    fn length(&mut self, field: &'static str) -> Result<Option<usize>> {
        let start = self.pos;
        let n = self.i32(field)?;
        match n {
            -1 => Ok(None),
            n if n < 0 => {
                self.pos = start;
                Err(self.err(ErrorKind::NegativeLength, field))
            }
            n => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        }
    }

    /// A jute `buffer`: `None` for null (length −1). A length larger than
    /// what is left is `Truncated` (nothing is allocated).
    pub fn buffer(&mut self, field: &'static str) -> Result<Option<&'a [u8]>> {
        let start = self.pos;
        match self.length(field)? {
            None => Ok(None),
            Some(n) => match self.bytes(n, field) {
                Ok(b) => Ok(Some(b)),
                Err(_) => {
                    self.pos = start;
                    Err(self.err(ErrorKind::Truncated, field))
                }
            },
        }
    }

    /// A jute `ustring`: `None` for null (length −1).
    pub fn ustring(&mut self, field: &'static str) -> Result<Option<JStr<'a>>> {
        Ok(self.buffer(field)?.map(JStr))
    }

    /// A `ustring` where null is read as the empty string.
    pub fn ustring_or_empty(&mut self, field: &'static str) -> Result<JStr<'a>> {
        Ok(self.ustring(field)?.unwrap_or_default())
    }

    /// A `vector` count: `None` for null (−1). A count larger than the bytes
    /// left is `Truncated` (every jute element takes at least one byte).
    pub fn vec_len(&mut self, field: &'static str) -> Result<Option<usize>> {
        let start = self.pos;
        let n = self.length(field)?;
        if let Some(n) = n {
            if n > self.remaining() {
                self.pos = start;
                return Err(self.err(ErrorKind::Truncated, field));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        let b = [
            1, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 2,
        ];
        let mut r = Reader::new(&b);
        assert!(r.bool("b").unwrap());
        assert_eq!(r.i32("i").unwrap(), 7);
        assert_eq!(r.i64("l").unwrap(), -2);
        assert_eq!(r.position(), 13);
        assert_eq!(r.remaining(), 1);
        assert_eq!(r.rest(), &[2]);
        assert_eq!(r.u8("u").unwrap(), 2);
        assert!(r.is_empty());
        let e = r.i32("x").unwrap_err();
        assert_eq!(e, DecodeError::new(ErrorKind::Truncated, "x", 14));
        assert_eq!(e.to_string(), "truncated at byte 14 reading `x`");
    }

    #[test]
    fn lengths() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(r.ustring("s").unwrap(), None);
        assert_eq!(r.ustring("s").unwrap(), Some(JStr(b"hi")));

        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xfe]);
        let e = r.buffer("data").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NegativeLength);
        assert_eq!(r.position(), 0);
        assert_eq!(
            e.to_string(),
            "negative length at byte 0 reading `data`".to_string()
        );

        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(r.buffer("data").unwrap_err().kind, ErrorKind::Truncated);
        assert_eq!(r.vec_len("acl").unwrap_err().kind, ErrorKind::Truncated);
        assert_eq!(r.position(), 0);

        let mut r = Reader::new(&[0, 0, 0, 2, 1, 2]);
        assert_eq!(r.vec_len("v").unwrap(), Some(2));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.vec_len("v").unwrap(), None);
    }

    #[test]
    fn jstr_lossy() {
        let s = JStr(b"a\xffb");
        assert_eq!(s.to_string(), "a\u{fffd}b");
        assert_eq!(s.to_str_lossy(), "a\u{fffd}b");
        assert_eq!(s.to_str(), None);
        assert_eq!(JStr(b"/x"), "/x");
    }
}

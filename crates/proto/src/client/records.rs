//! Data records shared by requests and replies: `Stat`, ACLs, lazy vectors,
//! opaque data and credentials.

use core::fmt;
use core::marker::PhantomData;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use super::codes::{EphemeralOwner, Hex, Perms};
use crate::jute::{write_lossy, JStr, Reader, Result};

/// Znode metadata (`Stat`, 68 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Creation time (ms since the epoch).
    pub ctime: i64,
    /// Last modification time (ms since the epoch).
    pub mtime: i64,
    /// Data version.
    pub version: i32,
    /// Children version.
    pub cversion: i32,
    /// ACL version.
    pub aversion: i32,
    /// Owning session, or a container/TTL marker: see [`Stat::owner`].
    pub ephemeral_owner: i64,
    /// Data length in bytes.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last children change.
    pub pzxid: i64,
}

impl Stat {
    /// Encoded size.
    pub const LEN: usize = 68;

    /// Reads a `Stat`.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        // Check the whole record up front so a truncation names `stat`.
        r.clone().bytes(Self::LEN, "stat")?;
        Ok(Stat {
            czxid: r.i64("czxid")?,
            mzxid: r.i64("mzxid")?,
            ctime: r.i64("ctime")?,
            mtime: r.i64("mtime")?,
            version: r.i32("version")?,
            cversion: r.i32("cversion")?,
            aversion: r.i32("aversion")?,
            ephemeral_owner: r.i64("ephemeralOwner")?,
            data_length: r.i32("dataLength")?,
            num_children: r.i32("numChildren")?,
            pzxid: r.i64("pzxid")?,
        })
    }

    /// Classification of `ephemeral_owner`.
    pub fn owner(&self) -> EphemeralOwner {
        EphemeralOwner::from_raw(self.ephemeral_owner)
    }
}

/// Serialises every field; zxids also as `*_hex` strings, `ephemeral_owner` as `"0x…"`, plus
/// `ephemeral_type` (`persistent|container|ttl|extended|session`) and
/// `ttl_ms` for TTL nodes.
impl Serialize for Stat {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let owner = self.owner();
        let ttl = match owner {
            EphemeralOwner::Ttl(ms) => Some(ms),
            _ => None,
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("czxid", &self.czxid)?;
        m.serialize_entry("czxid_hex", &Hex(self.czxid))?;
        m.serialize_entry("mzxid", &self.mzxid)?;
        m.serialize_entry("mzxid_hex", &Hex(self.mzxid))?;
        m.serialize_entry("ctime", &self.ctime)?;
        m.serialize_entry("mtime", &self.mtime)?;
        m.serialize_entry("version", &self.version)?;
        m.serialize_entry("cversion", &self.cversion)?;
        m.serialize_entry("aversion", &self.aversion)?;
        m.serialize_entry("ephemeral_owner", &Hex(self.ephemeral_owner))?;
        m.serialize_entry("ephemeral_type", owner.kind())?;
        if let Some(ms) = ttl {
            m.serialize_entry("ttl_ms", &ms)?;
        }
        m.serialize_entry("data_length", &self.data_length)?;
        m.serialize_entry("num_children", &self.num_children)?;
        m.serialize_entry("pzxid", &self.pzxid)?;
        m.serialize_entry("pzxid_hex", &Hex(self.pzxid))?;
        m.end()
    }
}

/// One element type of a jute `vector` that [`Vector`] can hold.
pub trait Element<'a>: Sized {
    /// Reads one element.
    fn read(r: &mut Reader<'a>) -> Result<Self>;
}

/// `vector<ustring>` elements; a null element reads as the empty string.
impl<'a> Element<'a> for JStr<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        r.ustring_or_empty("item")
    }
}

/// A jute `vector<T>` validated at decode time and iterated lazily over the
/// borrowed bytes (iteration cannot fail and does not allocate).
pub struct Vector<'a, T> {
    bytes: &'a [u8],
    count: usize,
    null: bool,
    _t: PhantomData<fn() -> T>,
}

/// `vector<ustring>` (children, watch lists, ephemeral paths).
pub type Strings<'a> = Vector<'a, JStr<'a>>;
/// `vector<ACL>`.
pub type Acls<'a> = Vector<'a, Acl<'a>>;
/// `vector<ClientInfo>` (whoAmI).
pub type ClientInfos<'a> = Vector<'a, ClientInfo<'a>>;

impl<T> Clone for Vector<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Vector<'_, T> {}

impl<T> PartialEq for Vector<'_, T> {
    fn eq(&self, o: &Self) -> bool {
        self.bytes == o.bytes && self.count == o.count && self.null == o.null
    }
}
impl<T> Eq for Vector<'_, T> {}

impl<'a, T: Element<'a>> Vector<'a, T> {
    /// Reads and validates a vector; `field` names its count in errors.
    pub fn read(r: &mut Reader<'a>, field: &'static str) -> Result<Self> {
        let Some(count) = r.vec_len(field)? else {
            return Ok(Vector {
                bytes: &[],
                count: 0,
                null: true,
                _t: PhantomData,
            });
        };
        let all = r.rest();
        let start = r.position();
        for _ in 0..count {
            T::read(r)?;
        }
        let used = r.position().saturating_sub(start);
        Ok(Vector {
            bytes: all.get(..used).unwrap_or_default(),
            count,
            null: false,
            _t: PhantomData,
        })
    }

    /// Iterates the elements.
    pub fn iter(&self) -> VectorIter<'a, T> {
        VectorIter {
            r: Reader::new(self.bytes),
            left: self.count,
            _t: PhantomData,
        }
    }
}

impl<'a, T> Vector<'a, T> {
    /// An empty vector.
    pub fn empty() -> Self {
        Vector {
            bytes: &[],
            count: 0,
            null: false,
            _t: PhantomData,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no elements (or the vector is null).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True when the wire had a null vector (count −1).
    pub fn is_null(&self) -> bool {
        self.null
    }

    /// The encoded elements (without the count).
    pub fn raw(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<'a, T: Element<'a> + fmt::Debug> fmt::Debug for Vector<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.null {
            f.write_str("null")
        } else {
            f.debug_list().entries(self.iter()).finish()
        }
    }
}

impl<'a, T: Element<'a>> IntoIterator for Vector<'a, T> {
    type Item = T;
    type IntoIter = VectorIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T: Element<'a>> IntoIterator for &Vector<'a, T> {
    type Item = T;
    type IntoIter = VectorIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Serialises as an array, or `null` for a null vector.
impl<'a, T: Element<'a> + Serialize> Serialize for Vector<'a, T> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        if self.null {
            return s.serialize_none();
        }
        let mut seq = s.serialize_seq(Some(self.count))?;
        for e in self.iter() {
            seq.serialize_element(&e)?;
        }
        seq.end()
    }
}

/// Iterator over a [`Vector`].
pub struct VectorIter<'a, T> {
    r: Reader<'a>,
    left: usize,
    _t: PhantomData<fn() -> T>,
}

impl<'a, T: Element<'a>> Iterator for VectorIter<'a, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // Validated at decode time, so this cannot fail; stop if it does.
        match T::read(&mut self.r) {
            Ok(v) => Some(v),
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<'a, T: Element<'a>> ExactSizeIterator for VectorIter<'a, T> {}

/// One ACL entry (`perms` + `Id{scheme, id}`); null strings read as empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Acl<'a> {
    /// Permission bits.
    pub perms: Perms,
    /// Id scheme (`world`, `auth`, `digest`, `ip`, `x509`, `sasl`…).
    pub scheme: JStr<'a>,
    /// Id within the scheme (`anyone`, `user:hash`, an address…).
    pub id: JStr<'a>,
}

impl<'a> Element<'a> for Acl<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        Ok(Acl {
            perms: Perms(r.i32("perms")?),
            scheme: r.ustring_or_empty("scheme")?,
            id: r.ustring_or_empty("id")?,
        })
    }
}

/// `{"perms":31,"perms_str":"cdrwa","scheme":"world","id":"anyone"}`.
impl Serialize for Acl<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("perms", &self.perms.0)?;
        m.serialize_entry("perms_str", &DisplayStr(&self.perms))?;
        m.serialize_entry("scheme", &self.scheme)?;
        m.serialize_entry("id", &self.id)?;
        m.end()
    }
}

/// One `ClientInfo` of a whoAmI reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ClientInfo<'a> {
    /// Authentication scheme (`ip`, `digest`, `sasl`, `x509`…).
    pub auth_scheme: JStr<'a>,
    /// Authenticated user.
    pub user: JStr<'a>,
}

impl<'a> Element<'a> for ClientInfo<'a> {
    fn read(r: &mut Reader<'a>) -> Result<Self> {
        Ok(ClientInfo {
            auth_scheme: r.ustring_or_empty("authScheme")?,
            user: r.ustring_or_empty("user")?,
        })
    }
}

/// Serialises any `Display` via `collect_str`.
pub(crate) struct DisplayStr<'t, T: fmt::Display>(pub &'t T);

impl<T: fmt::Display> Serialize for DisplayStr<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// An opaque jute `buffer` (znode data, SASL token); `None` is null.
///
/// Serialises as its length (or `null`), never as the bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Data<'a>(pub Option<&'a [u8]>);

impl<'a> Data<'a> {
    /// The bytes (`None` for null).
    pub fn bytes(&self) -> Option<&'a [u8]> {
        self.0
    }

    /// Length (`None` for null).
    pub fn len(&self) -> Option<usize> {
        self.0.map(<[u8]>::len)
    }

    /// True for null or empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_none_or(<[u8]>::is_empty)
    }

    /// Printable text of the first `n` bytes: lossy UTF-8 with control
    /// characters escaped, `…` appended when cut, `"null"` for null.
    pub fn preview(&self, n: usize) -> String {
        let Some(b) = self.0 else {
            return "null".to_string();
        };
        let cut = b.get(..n).unwrap_or(b);
        let mut out = String::with_capacity(cut.len() + 4);
        for c in String::from_utf8_lossy(cut).chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        if cut.len() < b.len() {
            out.push('…');
        }
        out
    }
}

impl fmt::Debug for Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("Data(null)"),
            Some(b) => write!(f, "Data({} bytes)", b.len()),
        }
    }
}

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_none(),
            Some(b) => s.serialize_u64(b.len() as u64),
        }
    }
}

/// The `auth` bytes of an `AuthPacket`.
///
/// `Display`/`Serialize` redact when `redact` is set (the decoder sets it):
/// digest credentials become `user:***` (everything after the first `:`
/// hidden; `***` if there is no `:`), other schemes `***`. With
/// `redact = false` the lossy text is shown.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credential<'a> {
    /// The credential bytes (empty for a null buffer).
    pub raw: &'a [u8],
    /// Hide secrets when displaying.
    pub redact: bool,
    /// The scheme is `digest` (`user:password`).
    pub digest: bool,
}

impl<'a> Credential<'a> {
    /// A redacting credential for `scheme`.
    pub fn new(scheme: &[u8], raw: &'a [u8]) -> Self {
        Credential {
            raw,
            redact: true,
            digest: scheme == b"digest",
        }
    }
}

impl fmt::Display for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.redact {
            return write_lossy(f, self.raw);
        }
        let user = if self.digest {
            self.raw
                .iter()
                .position(|&b| b == b':')
                .and_then(|i| self.raw.get(..i))
        } else {
            None
        };
        if let Some(user) = user {
            write_lossy(f, user)?;
            f.write_str(":")?;
        }
        f.write_str("***")
    }
}

impl fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credential({:?})", DisplayDebug(self))
    }
}

struct DisplayDebug<'t, T: fmt::Display>(&'t T);

impl<T: fmt::Display> fmt::Debug for DisplayDebug<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

impl Serialize for Credential<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_redaction() {
        let c = Credential::new(b"digest", b"alice:s3cr:et");
        assert_eq!(c.to_string(), "alice:***");
        assert_eq!(format!("{c:?}"), "Credential(\"alice:***\")");
        assert_eq!(Credential::new(b"digest", b"nocolon").to_string(), "***");
        assert_eq!(Credential::new(b"ip", b"1.2.3.4").to_string(), "***");
        let open = Credential {
            redact: false,
            ..Credential::new(b"digest", b"alice:pw")
        };
        assert_eq!(open.to_string(), "alice:pw");
    }

    #[test]
    fn data_preview() {
        assert_eq!(Data(Some(b"hello\nworld")).preview(7), "hello\\nw…");
        assert_eq!(Data(Some(b"hi")).preview(10), "hi");
        assert_eq!(Data(None).preview(10), "null");
        assert_eq!(Data(Some(b"\xff")).preview(10), "\u{fffd}");
        assert_eq!(Data(Some(b"")).len(), Some(0));
        assert!(Data(None).is_empty());
    }

    #[test]
    fn vector_of_strings() {
        let b = [0, 0, 0, 2, 0, 0, 0, 1, b'a', 0xff, 0xff, 0xff, 0xff, 9];
        let mut r = Reader::new(&b);
        let v = Strings::read(&mut r, "children").unwrap();
        assert_eq!(r.remaining(), 1);
        assert_eq!(v.len(), 2);
        let items: Vec<_> = v.iter().collect();
        assert_eq!(items, [JStr(b"a"), JStr(b"")]);
        assert_eq!(v.iter().len(), 2);
        // A count that does not fit.
        let b = [0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        let e = Strings::read(&mut Reader::new(&b), "children").unwrap_err();
        assert!(e.is_truncated());
        assert_eq!(e.offset, 12);
    }
}

//! A minimal jute writer for building test messages.

#[derive(Default, Clone)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    pub fn new() -> Self {
        Enc(Vec::new())
    }
    pub fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bool(mut self, v: bool) -> Self {
        self.0.push(u8::from(v));
        self
    }
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// A `buffer`/`ustring` (`None` = null).
    pub fn buf(self, b: Option<&[u8]>) -> Self {
        match b {
            None => self.i32(-1),
            Some(b) => self.i32(b.len() as i32).raw(b),
        }
    }
    pub fn str(self, s: &str) -> Self {
        self.buf(Some(s.as_bytes()))
    }
    /// `vector<ACL>` of `(perms, scheme, id)`.
    pub fn acls(self, acls: &[(i32, &str, &str)]) -> Self {
        let mut e = self.i32(acls.len() as i32);
        for (p, s, i) in acls {
            e = e.i32(*p).str(s).str(i);
        }
        e
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// `(perms, scheme, id)` ACL entries.
pub type AclList<'a> = &'a [(i32, &'a str, &'a str)];

pub const WORLD: AclList<'static> = &[(31, "world", "anyone")];

/// A `QuorumPacket`; `auth` = `None` for a null authinfo vector.
pub fn packet(ty: i32, zxid: i64, data: Option<&[u8]>, auth: Option<&[(&str, &str)]>) -> Vec<u8> {
    let e = Enc::new().i32(ty).i64(zxid).buf(data);
    match auth {
        None => e.i32(-1).done(),
        Some(ids) => {
            let mut e = e.i32(ids.len() as i32);
            for (s, i) in ids {
                e = e.str(s).str(i);
            }
            e.done()
        }
    }
}

/// A `TxnHeader`.
pub fn txn_header(session: i64, cxid: i32, zxid: i64, time: i64, ty: i32) -> Enc {
    Enc::new()
        .i64(session)
        .i32(cxid)
        .i64(zxid)
        .i64(time)
        .i32(ty)
}

/// A raw snapshot as streamed after SNAP (protocol.md §3.5).
pub fn snapshot(
    sessions: &[(i64, i32)],
    acl_cache: &[(i64, AclList<'_>)],
    nodes: &[(&str, Option<&[u8]>)],
) -> Vec<u8> {
    let mut e = Enc::new().i32(sessions.len() as i32);
    for (id, to) in sessions {
        e = e.i64(*id).i32(*to);
    }
    e = e.i32(acl_cache.len() as i32);
    for (r, acls) in acl_cache {
        e = e.i64(*r).acls(acls);
    }
    for (path, data) in nodes {
        // path, DataNode{data, acl ref, StatPersisted (60 bytes)}
        e = e.str(path).buf(*data).i64(1).raw(&[0x11; 60]);
    }
    e.str("/").str("BenWasHere").done()
}

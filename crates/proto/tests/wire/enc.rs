//! A tiny jute encoder for building test frames (test-only).

/// Builder for jute-encoded bytes.
#[derive(Default, Clone)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    pub fn new() -> Self {
        Enc(Vec::new())
    }
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    pub fn u8(self, v: u8) -> Self {
        self.raw(&[v])
    }
    pub fn bool(self, v: bool) -> Self {
        self.u8(v as u8)
    }
    pub fn i32(self, v: i32) -> Self {
        self.raw(&v.to_be_bytes())
    }
    pub fn i64(self, v: i64) -> Self {
        self.raw(&v.to_be_bytes())
    }
    /// `buffer` (None = null).
    pub fn buf(self, b: Option<&[u8]>) -> Self {
        match b {
            None => self.i32(-1),
            Some(b) => self.i32(b.len() as i32).raw(b),
        }
    }
    /// `ustring`.
    pub fn s(self, s: &str) -> Self {
        self.buf(Some(s.as_bytes()))
    }
    /// null `ustring`.
    pub fn null(self) -> Self {
        self.i32(-1)
    }
    /// `vector<ustring>`.
    pub fn strings(self, v: &[&str]) -> Self {
        v.iter().fold(self.i32(v.len() as i32), |e, s| e.s(s))
    }
    /// `vector<ACL>`.
    pub fn acls(self, v: &[(i32, &str, &str)]) -> Self {
        v.iter().fold(self.i32(v.len() as i32), |e, (p, sc, id)| {
            e.i32(*p).s(sc).s(id)
        })
    }
    /// A `Stat` whose fields are derived from `seed` (field i = seed*100+i),
    /// with the given ephemeral owner.
    pub fn stat(self, seed: i64, owner: i64) -> Self {
        let b = seed * 100;
        self.i64(b + 1)
            .i64(b + 2)
            .i64(b + 3)
            .i64(b + 4)
            .i32((b + 5) as i32)
            .i32((b + 6) as i32)
            .i32((b + 7) as i32)
            .i64(owner)
            .i32((b + 9) as i32)
            .i32((b + 10) as i32)
            .i64(b + 11)
    }
    pub fn req(xid: i32, op: i32) -> Self {
        Enc::new().i32(xid).i32(op)
    }
    pub fn rep(xid: i32, zxid: i64, err: i32) -> Self {
        Enc::new().i32(xid).i64(zxid).i32(err)
    }
    /// `MultiHeader{type, done=false, err}`.
    pub fn mh(self, ty: i32, err: i32) -> Self {
        self.i32(ty).bool(false).i32(err)
    }
    /// Terminating `MultiHeader{-1, true, -1}`.
    pub fn done(self) -> Self {
        self.i32(-1).bool(true).i32(-1)
    }
    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

//! Structure-aware round trips: valid messages are built from generated values (requests of
//! every opcode, replies, watch events, handshakes, election notifications, quorum packets),
//! encoded with the small jute writer below, decoded, and compared field for field with the
//! values they were built from.

use proptest::prelude::*;
use zkscope_proto::election::{decode_notification, Status};
use zkscope_proto::quorum::decode_packet;
use zkscope_proto::*;

/// A jute writer.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(u8::from(v));
        self
    }
    fn buf(&mut self, b: &Option<Vec<u8>>) -> &mut Self {
        match b {
            None => self.i32(-1),
            Some(b) => {
                self.i32(b.len() as i32);
                self.0.extend_from_slice(b);
                self
            }
        }
    }
    fn s(&mut self, s: &str) -> &mut Self {
        self.buf(&Some(s.as_bytes().to_vec()))
    }
    fn strings(&mut self, v: &[String]) -> &mut Self {
        self.i32(v.len() as i32);
        for s in v {
            self.s(s);
        }
        self
    }
    fn acls(&mut self, v: &[(i32, String, String)]) -> &mut Self {
        self.i32(v.len() as i32);
        for (p, scheme, id) in v {
            self.i32(*p).s(scheme).s(id);
        }
        self
    }
    fn stat(&mut self, s: &[i64; 11]) -> &mut Self {
        for (i, &v) in s.iter().enumerate() {
            if matches!(i, 4 | 5 | 6 | 8 | 9) {
                self.i32(v as i32);
            } else {
                self.i64(v);
            }
        }
        self
    }
}

/// A request body, as values.
#[derive(Debug, Clone)]
enum Req {
    Create {
        op: i32,
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<(i32, String, String)>,
        flags: i32,
        ttl: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    PathWatch {
        op: i32,
        path: String,
        watch: bool,
    },
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    GetAcl {
        path: String,
    },
    SetAcl {
        path: String,
        acl: Vec<(i32, String, String)>,
        version: i32,
    },
    Sync {
        path: String,
    },
    Check {
        path: String,
        version: i32,
    },
    Multi {
        read: bool,
        ops: Vec<Req>,
    },
    Reconfig {
        joining: Option<String>,
        leaving: Option<String>,
        members: Option<String>,
        config_id: i64,
    },
    Watches {
        op: i32,
        path: String,
        kind: i32,
    },
    Auth {
        kind: i32,
        scheme: String,
        cred: Vec<u8>,
    },
    SetWatches {
        v2: bool,
        zxid: i64,
        lists: [Vec<String>; 5],
    },
    Sasl {
        token: Option<Vec<u8>>,
    },
    GetEphemerals {
        prefix: String,
    },
    AllChildren {
        path: String,
    },
    AddWatch {
        path: String,
        mode: i32,
    },
    Empty {
        op: i32,
    },
}

impl Req {
    fn opcode(&self) -> i32 {
        match self {
            Req::Create { op, .. }
            | Req::PathWatch { op, .. }
            | Req::Watches { op, .. }
            | Req::Empty { op } => *op,
            Req::Delete { .. } => 2,
            Req::SetData { .. } => 5,
            Req::GetAcl { .. } => 6,
            Req::SetAcl { .. } => 7,
            Req::Sync { .. } => 9,
            Req::Check { .. } => 13,
            Req::Multi { read, .. } => {
                if *read {
                    22
                } else {
                    14
                }
            }
            Req::Reconfig { .. } => 16,
            Req::Auth { .. } => 100,
            Req::SetWatches { v2, .. } => {
                if *v2 {
                    105
                } else {
                    101
                }
            }
            Req::Sasl { .. } => 102,
            Req::GetEphemerals { .. } => 103,
            Req::AllChildren { .. } => 104,
            Req::AddWatch { .. } => 106,
        }
    }

    fn encode(&self, w: &mut W) {
        match self {
            Req::Create {
                op,
                path,
                data,
                acl,
                flags,
                ttl,
            } => {
                w.s(path).buf(data).acls(acl).i32(*flags);
                if *op == 21 {
                    w.i64(*ttl);
                }
            }
            Req::Delete { path, version } | Req::Check { path, version } => {
                w.s(path).i32(*version);
            }
            Req::PathWatch { path, watch, .. } => {
                w.s(path).bool(*watch);
            }
            Req::SetData {
                path,
                data,
                version,
            } => {
                w.s(path).buf(data).i32(*version);
            }
            Req::GetAcl { path } | Req::Sync { path } | Req::AllChildren { path } => {
                w.s(path);
            }
            Req::GetEphemerals { prefix } => {
                w.s(prefix);
            }
            Req::SetAcl { path, acl, version } => {
                w.s(path).acls(acl).i32(*version);
            }
            Req::Multi { ops, .. } => {
                for op in ops {
                    w.i32(op.opcode()).bool(false).i32(-1);
                    op.encode(w);
                }
                w.i32(-1).bool(true).i32(-1);
            }
            Req::Reconfig {
                joining,
                leaving,
                members,
                config_id,
            } => {
                let b = |s: &Option<String>| s.as_ref().map(|s| s.as_bytes().to_vec());
                w.buf(&b(joining))
                    .buf(&b(leaving))
                    .buf(&b(members))
                    .i64(*config_id);
            }
            Req::Watches { path, kind, .. } => {
                w.s(path).i32(*kind);
            }
            Req::Auth { kind, scheme, cred } => {
                w.i32(*kind).s(scheme).buf(&Some(cred.clone()));
            }
            Req::SetWatches { v2, zxid, lists } => {
                w.i64(*zxid);
                for l in &lists[..if *v2 { 5 } else { 3 }] {
                    w.strings(l);
                }
            }
            Req::Sasl { token } => {
                w.buf(token);
            }
            Req::AddWatch { path, mode } => {
                w.s(path).i32(*mode);
            }
            Req::Empty { .. } => {}
        }
    }

    /// Panics unless `b` holds exactly these values.
    fn check(&self, b: &RequestBody<'_>) {
        let strs = |v: &Strings<'_>| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
        let acls = |v: &Acls<'_>| -> Vec<(i32, String, String)> {
            v.iter()
                .map(|a| (a.perms.0, a.scheme.to_string(), a.id.to_string()))
                .collect()
        };
        match (self, b) {
            (
                Req::Create {
                    op,
                    path: p,
                    data: d,
                    acl: a,
                    flags: f,
                    ttl: t,
                },
                RequestBody::Create {
                    path,
                    data,
                    acl,
                    mode,
                    ttl,
                },
            ) => {
                assert_eq!(
                    (
                        path.to_string(),
                        data.0.map(<[u8]>::to_vec),
                        acls(acl),
                        mode.0
                    ),
                    (p.clone(), d.clone(), a.clone(), *f)
                );
                assert_eq!(*ttl, (*op == 21).then_some(*t));
            }
            (
                Req::Delete {
                    path: p,
                    version: v,
                },
                RequestBody::Delete { path, version },
            )
            | (
                Req::Check {
                    path: p,
                    version: v,
                },
                RequestBody::Check { path, version },
            ) => {
                assert_eq!((path.to_string(), *version), (p.clone(), *v));
            }
            (
                Req::PathWatch {
                    path: p, watch: w, ..
                },
                RequestBody::PathWatch { path, watch },
            ) => {
                assert_eq!((path.to_string(), *watch), (p.clone(), *w));
            }
            (
                Req::SetData {
                    path: p,
                    data: d,
                    version: v,
                },
                RequestBody::SetData {
                    path,
                    data,
                    version,
                },
            ) => {
                assert_eq!(
                    (path.to_string(), data.0.map(<[u8]>::to_vec), *version),
                    (p.clone(), d.clone(), *v)
                );
            }
            (Req::GetAcl { path: p }, RequestBody::GetAcl { path })
            | (Req::Sync { path: p }, RequestBody::Sync { path })
            | (Req::AllChildren { path: p }, RequestBody::GetAllChildrenNumber { path })
            | (Req::GetEphemerals { prefix: p }, RequestBody::GetEphemerals { prefix: path }) => {
                assert_eq!(&path.to_string(), p);
            }
            (
                Req::SetAcl {
                    path: p,
                    acl: a,
                    version: v,
                },
                RequestBody::SetAcl { path, acl, version },
            ) => {
                assert_eq!(
                    (path.to_string(), acls(acl), *version),
                    (p.clone(), a.clone(), *v)
                );
            }
            (Req::Multi { ops: want, .. }, RequestBody::Multi(ops)) => {
                assert_eq!(ops.len(), want.len());
                let got: Vec<MultiOp<'_>> = ops.iter().collect();
                assert_eq!(got.len(), want.len());
                for (w, g) in want.iter().zip(got) {
                    assert_eq!(g.op.0, w.opcode());
                    w.check(&g.body);
                }
            }
            (
                Req::Reconfig {
                    joining: j,
                    leaving: l,
                    members: m,
                    config_id: c,
                },
                RequestBody::Reconfig {
                    joining,
                    leaving,
                    new_members,
                    cur_config_id,
                },
            ) => {
                let s = |v: &Option<JStr<'_>>| v.map(|s| s.to_string());
                assert_eq!(
                    (s(joining), s(leaving), s(new_members), *cur_config_id),
                    (j.clone(), l.clone(), m.clone(), *c)
                );
            }
            (
                Req::Watches {
                    op: 17,
                    path: p,
                    kind: k,
                },
                RequestBody::CheckWatches { path, watcher_type },
            )
            | (
                Req::Watches {
                    op: 18,
                    path: p,
                    kind: k,
                },
                RequestBody::RemoveWatches { path, watcher_type },
            ) => {
                assert_eq!((path.to_string(), watcher_type.0), (p.clone(), *k));
            }
            (
                Req::Auth {
                    kind: k,
                    scheme: s,
                    cred: c,
                },
                RequestBody::Auth {
                    auth_type,
                    scheme,
                    credential,
                },
            ) => {
                assert_eq!(
                    (*auth_type, scheme.to_string(), credential.raw.to_vec()),
                    (*k, s.clone(), c.clone())
                );
                assert!(credential.redact);
            }
            (
                Req::SetWatches { v2, zxid, lists },
                RequestBody::SetWatches {
                    relative_zxid,
                    data,
                    exist,
                    child,
                    persistent,
                    persistent_recursive,
                },
            ) => {
                assert_eq!(*relative_zxid, *zxid);
                assert_eq!(
                    [strs(data), strs(exist), strs(child)],
                    [lists[0].clone(), lists[1].clone(), lists[2].clone()]
                );
                if *v2 {
                    assert_eq!(persistent.as_ref().map(strs), Some(lists[3].clone()));
                    assert_eq!(
                        persistent_recursive.as_ref().map(strs),
                        Some(lists[4].clone())
                    );
                } else {
                    assert!(persistent.is_none() && persistent_recursive.is_none());
                }
            }
            (Req::Sasl { token: t }, RequestBody::Sasl { token }) => {
                assert_eq!(&token.0.map(<[u8]>::to_vec), t)
            }
            (Req::AddWatch { path: p, mode: m }, RequestBody::AddWatch { path, mode }) => {
                assert_eq!((path.to_string(), mode.0), (p.clone(), *m));
            }
            (Req::Empty { .. }, RequestBody::Empty) => {}
            (want, got) => panic!("{want:?} decoded as {got:?}"),
        }
    }
}

fn path() -> impl Strategy<Value = String> {
    "(/[a-z0-9_.-]{1,8}){1,4}"
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,24}"
}

fn bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))
}

fn acl() -> impl Strategy<Value = Vec<(i32, String, String)>> {
    proptest::collection::vec((0..32i32, "[a-z0-9]{1,8}", text()), 0..4)
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(path(), 0..4)
}

/// Operations allowed inside a multi.
fn multi_op() -> impl Strategy<Value = Req> {
    prop_oneof![
        (
            prop_oneof![Just(1), Just(15), Just(19), Just(21)],
            path(),
            bytes(),
            acl(),
            0..7i32,
            any::<i64>()
        )
            .prop_map(|(op, path, data, acl, flags, ttl)| Req::Create {
                op,
                path,
                data,
                acl,
                flags,
                ttl
            }),
        (path(), any::<i32>()).prop_map(|(path, version)| Req::Delete { path, version }),
        (path(), bytes(), any::<i32>()).prop_map(|(path, data, version)| Req::SetData {
            path,
            data,
            version
        }),
        (path(), any::<i32>()).prop_map(|(path, version)| Req::Check { path, version }),
    ]
}

fn read_op() -> impl Strategy<Value = Req> {
    (prop_oneof![Just(4), Just(8)], path()).prop_map(|(op, path)| Req::PathWatch {
        op,
        path,
        watch: false,
    })
}

fn request() -> impl Strategy<Value = Req> {
    prop_oneof![
        multi_op(),
        (
            prop_oneof![Just(3), Just(4), Just(8), Just(12)],
            path(),
            any::<bool>()
        )
            .prop_map(|(op, path, watch)| Req::PathWatch { op, path, watch }),
        path().prop_map(|path| Req::GetAcl { path }),
        (path(), acl(), any::<i32>()).prop_map(|(path, acl, version)| Req::SetAcl {
            path,
            acl,
            version
        }),
        path().prop_map(|path| Req::Sync { path }),
        proptest::collection::vec(multi_op(), 0..5).prop_map(|ops| Req::Multi { read: false, ops }),
        proptest::collection::vec(read_op(), 0..5).prop_map(|ops| Req::Multi { read: true, ops }),
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
            any::<i64>()
        )
            .prop_map(|(joining, leaving, members, config_id)| Req::Reconfig {
                joining,
                leaving,
                members,
                config_id
            }),
        (prop_oneof![Just(17), Just(18)], path(), 1..4i32)
            .prop_map(|(op, path, kind)| Req::Watches { op, path, kind }),
        (
            any::<i32>(),
            "[a-z]{1,8}",
            proptest::collection::vec(any::<u8>(), 0..30)
        )
            .prop_map(|(kind, scheme, cred)| Req::Auth { kind, scheme, cred }),
        (
            any::<bool>(),
            any::<i64>(),
            [strings(), strings(), strings(), strings(), strings()]
        )
            .prop_map(|(v2, zxid, lists)| Req::SetWatches { v2, zxid, lists }),
        bytes().prop_map(|token| Req::Sasl { token }),
        path().prop_map(|prefix| Req::GetEphemerals { prefix }),
        path().prop_map(|path| Req::AllChildren { path }),
        (path(), 0..2i32).prop_map(|(path, mode)| Req::AddWatch { path, mode }),
        prop_oneof![Just(11), Just(-11), Just(107)].prop_map(|op| Req::Empty { op }),
    ]
}

/// A successful reply body, as values, and the opcode of its request.
#[derive(Debug, Clone)]
enum Rep {
    Create {
        path: String,
    },
    Create2 {
        path: String,
        stat: [i64; 11],
    },
    Stat {
        op: i32,
        stat: [i64; 11],
    },
    GetData {
        data: Option<Vec<u8>>,
        stat: [i64; 11],
    },
    GetAcl {
        acl: Vec<(i32, String, String)>,
        stat: [i64; 11],
    },
    Children {
        children: Vec<String>,
    },
    Children2 {
        children: Vec<String>,
        stat: [i64; 11],
    },
    Count {
        total: i32,
    },
}

impl Rep {
    fn opcode(&self) -> i32 {
        match self {
            Rep::Create { .. } => 1,
            Rep::Create2 { .. } => 15,
            Rep::Stat { op, .. } => *op,
            Rep::GetData { .. } => 4,
            Rep::GetAcl { .. } => 6,
            Rep::Children { .. } => 8,
            Rep::Children2 { .. } => 12,
            Rep::Count { .. } => 104,
        }
    }

    fn encode(&self, w: &mut W) {
        match self {
            Rep::Create { path } => {
                w.s(path);
            }
            Rep::Create2 { path, stat } => {
                w.s(path).stat(stat);
            }
            Rep::Stat { stat, .. } => {
                w.stat(stat);
            }
            Rep::GetData { data, stat } => {
                w.buf(data).stat(stat);
            }
            Rep::GetAcl { acl, stat } => {
                w.acls(acl).stat(stat);
            }
            Rep::Children { children } => {
                w.strings(children);
            }
            Rep::Children2 { children, stat } => {
                w.strings(children).stat(stat);
            }
            Rep::Count { total } => {
                w.i32(*total);
            }
        }
    }

    fn check(&self, b: &ReplyBody<'_>) {
        let st = |s: &Stat| -> [i64; 11] {
            [
                s.czxid,
                s.mzxid,
                s.ctime,
                s.mtime,
                s.version.into(),
                s.cversion.into(),
                s.aversion.into(),
                s.ephemeral_owner,
                s.data_length.into(),
                s.num_children.into(),
                s.pzxid,
            ]
        };
        let strs = |v: &Strings<'_>| -> Vec<String> { v.iter().map(|s| s.to_string()).collect() };
        match (self, b) {
            (Rep::Create { path: p }, ReplyBody::Create { path }) => {
                assert_eq!(&path.to_string(), p)
            }
            (Rep::Create2 { path: p, stat: s }, ReplyBody::Create2 { path, stat }) => {
                assert_eq!((path.to_string(), st(stat)), (p.clone(), *s));
            }
            (Rep::Stat { stat: s, .. }, ReplyBody::Stat { stat }) => assert_eq!(st(stat), *s),
            (Rep::GetData { data: d, stat: s }, ReplyBody::GetData { data, stat }) => {
                assert_eq!((data.0.map(<[u8]>::to_vec), st(stat)), (d.clone(), *s));
            }
            (Rep::GetAcl { acl: a, stat: s }, ReplyBody::GetAcl { acl, stat }) => {
                let got: Vec<(i32, String, String)> = acl
                    .iter()
                    .map(|x| (x.perms.0, x.scheme.to_string(), x.id.to_string()))
                    .collect();
                assert_eq!((got, st(stat)), (a.clone(), *s));
            }
            (Rep::Children { children: c }, ReplyBody::GetChildren { children }) => {
                assert_eq!(&strs(children), c)
            }
            (
                Rep::Children2 {
                    children: c,
                    stat: s,
                },
                ReplyBody::GetChildren2 { children, stat },
            ) => {
                assert_eq!((strs(children), st(stat)), (c.clone(), *s));
            }
            (Rep::Count { total: t }, ReplyBody::GetAllChildrenNumber { total }) => {
                assert_eq!(total, t)
            }
            (want, got) => panic!("{want:?} decoded as {got:?}"),
        }
    }
}

fn stat() -> impl Strategy<Value = [i64; 11]> {
    (
        any::<[i64; 4]>(),
        any::<[i32; 3]>(),
        any::<i64>(),
        any::<[i32; 2]>(),
        any::<i64>(),
    )
        .prop_map(|(a, b, c, d, e)| {
            [
                a[0],
                a[1],
                a[2],
                a[3],
                b[0].into(),
                b[1].into(),
                b[2].into(),
                c,
                d[0].into(),
                d[1].into(),
                e,
            ]
        })
}

fn reply() -> impl Strategy<Value = Rep> {
    prop_oneof![
        path().prop_map(|path| Rep::Create { path }),
        (path(), stat()).prop_map(|(path, stat)| Rep::Create2 { path, stat }),
        (prop_oneof![Just(3), Just(5), Just(7)], stat())
            .prop_map(|(op, stat)| Rep::Stat { op, stat }),
        (bytes(), stat()).prop_map(|(data, stat)| Rep::GetData { data, stat }),
        (acl(), stat()).prop_map(|(acl, stat)| Rep::GetAcl { acl, stat }),
        strings().prop_map(|children| Rep::Children { children }),
        (strings(), stat()).prop_map(|(children, stat)| Rep::Children2 { children, stat }),
        any::<i32>().prop_map(|total| Rep::Count { total }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip(xid in any::<i32>(), req in request()) {
        let mut w = W::default();
        w.i32(xid).i32(req.opcode());
        req.encode(&mut w);
        let r = decode_request(&w.0).unwrap();
        prop_assert_eq!((r.header.xid, r.header.opcode.0, r.trailing), (xid, req.opcode(), 0));
        req.check(&r.body);
    }

    /// The crate's own encoder gives back the very bytes a request was decoded from.
    #[test]
    fn requests_reencode_byte_exact(xid in any::<i32>(), req in request()) {
        let mut w = W::default();
        w.i32(xid).i32(req.opcode());
        req.encode(&mut w);
        let r = decode_request(&w.0).unwrap();
        let mut out = Vec::new();
        encode_request(r.header, &r.body, &mut out).unwrap();
        prop_assert_eq!(&out, &w.0);
    }

    #[test]
    fn replies_round_trip(xid in 0..i32::MAX, zxid in any::<i64>(), rep in reply(), err in prop_oneof![Just(0), -130..-100i32]) {
        let mut w = W::default();
        w.i32(xid).i64(zxid).i32(err);
        if err == 0 {
            rep.encode(&mut w);
        }
        let r = decode_reply(&w.0, Some(OpCode(rep.opcode()))).unwrap();
        prop_assert_eq!((r.header.xid, r.header.zxid, r.header.err.0, r.trailing), (xid, zxid, err, 0));
        if err == 0 {
            rep.check(&r.body);
        } else {
            prop_assert_eq!(r.body, ReplyBody::None);
        }
    }

    #[test]
    fn watch_events_round_trip(zxid in any::<i64>(), ty in -1..8i32, state in -112..7i32, p in proptest::option::of(path())) {
        let mut w = W::default();
        w.i32(-1).i64(zxid).i32(0).i32(ty).i32(state);
        w.buf(&p.as_ref().map(|p| p.as_bytes().to_vec()));
        let (h, e) = decode_event(&w.0).unwrap();
        prop_assert_eq!((h.xid, h.zxid, e.event_type.0, e.state.0), (-1, zxid, ty, state));
        prop_assert_eq!(e.path.map(|p| p.to_string()), p);
    }

    #[test]
    fn handshakes_round_trip(
        zxid in 0..i64::MAX, timeout in 0..i32::MAX, session in any::<i64>(),
        passwd in proptest::collection::vec(any::<u8>(), 0..=64), read_only in proptest::option::of(any::<bool>()),
    ) {
        let mut w = W::default();
        w.i32(0).i64(zxid).i32(timeout).i64(session).buf(&Some(passwd.clone()));
        if let Some(ro) = read_only {
            w.bool(ro);
        }
        prop_assert!(ConnectRequest::looks_like(&w.0));
        let c = ConnectRequest::decode(&w.0).unwrap();
        prop_assert_eq!(
            (c.protocol_version, c.last_zxid_seen, c.timeout, c.session_id, c.passwd, c.read_only),
            (0, zxid, timeout, session, Some(&passwd[..]), read_only)
        );
        let mut again = Vec::new();
        encode_connect_request(&c, &mut again).unwrap();
        prop_assert_eq!(&again, &w.0);
        let mut w = W::default();
        w.i32(0).i32(timeout).i64(session).buf(&Some(passwd.clone()));
        if let Some(ro) = read_only {
            w.bool(ro);
        }
        prop_assert!(ConnectResponse::looks_like(&w.0));
        let c = ConnectResponse::decode(&w.0).unwrap();
        prop_assert_eq!(
            (c.protocol_version, c.timeout, c.session_id, c.passwd, c.read_only),
            (0, timeout, session, Some(&passwd[..]), read_only)
        );
        let mut again = Vec::new();
        encode_connect_response(&c, &mut again).unwrap();
        prop_assert_eq!(&again, &w.0);
    }

    #[test]
    fn election_notifications_round_trip(
        state in 0..4i32, leader in any::<i64>(), zxid in any::<i64>(), epoch in any::<i64>(),
        peer_epoch in any::<i64>(), config in proptest::option::of("(server\\.[1-9]=127\\.0\\.0\\.1:[0-9]{4}:[0-9]{4}:participant;[0-9]{4}\n){1,3}version=[0-9a-f]{1,9}"),
    ) {
        let mut w = W::default();
        w.i32(state).i64(leader).i64(zxid).i64(epoch).i64(peer_epoch);
        if let Some(c) = &config {
            w.i32(2).s(c);
        }
        let n = decode_notification(&w.0).unwrap();
        prop_assert_eq!(
            (n.state.0, n.leader, n.zxid.0, n.election_epoch, n.peer_epoch, n.peer_epoch_derived, n.trailing),
            (state, leader, zxid, epoch, peer_epoch, false, 0)
        );
        prop_assert_eq!(n.version, config.as_ref().map(|_| 2));
        prop_assert_eq!(n.config_str(), config.as_deref());
    }

    #[test]
    fn quorum_packets_round_trip(
        ty in -2..23i32, zxid in any::<i64>(), data in bytes(),
        auth in proptest::option::of(proptest::collection::vec(("[a-z]{1,6}", "[ -~]{0,12}"), 0..3)),
    ) {
        let mut w = W::default();
        w.i32(ty).i64(zxid).buf(&data);
        match &auth {
            None => {
                w.i32(-1);
            }
            Some(ids) => {
                w.i32(ids.len() as i32);
                for (s, i) in ids {
                    w.s(s).s(i);
                }
            }
        }
        let Status::Complete((n, p)) = decode_packet(&w.0) else {
            panic!("not a whole packet");
        };
        prop_assert_eq!(n, w.0.len());
        prop_assert_eq!((p.packet_type.0, p.zxid.0, p.data.0.map(<[u8]>::to_vec)), (ty, zxid, data));
        let ids: Vec<(String, String)> = p.authinfo.iter().map(|a| (a.scheme.to_string(), a.id.to_string())).collect();
        prop_assert_eq!(ids, auth.unwrap_or_default());
    }
}

//! The hand-built corpus shared by the prefix, allocation, fuzz and JSON
//! tests, and a walker that touches every lazily decoded part.

use std::hint::black_box;

use zkscope_proto::election::{
    decode_initial, decode_notification, decode_quorum_auth, ConfigLine, Status,
    PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2, QUORUM_AUTH_MAGIC,
};
use zkscope_proto::quorum::{decode_packet, ForwardedRecord, QuorumBody, TxnRecord};
use zkscope_proto::RequestBody;

use crate::enc::{packet, txn_header, Enc, WORLD};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A quorum packet (stream decoder) whose body is decoded with this direction.
    Packet { from_leader: Option<bool> },
    /// An election initial message (stream decoder).
    Initial,
    /// A quorum SASL packet (stream decoder).
    QuorumAuth,
    /// A notification body (body decoder).
    Notification,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub kind: Kind,
    pub bytes: Vec<u8>,
    /// Strict prefixes of the body (packet `data` or notification body)
    /// that are themselves complete, valid records (shorter wire forms).
    /// Every other strict prefix must be `Err(Truncated)`.
    pub ok_prefixes: Vec<usize>,
}

fn case(name: &'static str, kind: Kind, bytes: Vec<u8>, ok: &[usize]) -> Case {
    Case {
        name,
        kind,
        bytes,
        ok_prefixes: ok.to_vec(),
    }
}

const LEADER: Kind = Kind::Packet {
    from_leader: Some(true),
};
const LEARNER: Kind = Kind::Packet {
    from_leader: Some(false),
};
const ANY: Kind = Kind::Packet { from_leader: None };

pub const SESSION: i64 = 0x1001df405af0000;
pub const CONFIG: &str = "server.1=localhost:2780:2783:participant;0.0.0.0:2181\n\
server.2=localhost:2781:2784:participant;0.0.0.0:2182\n\
server.3=[::1]:2782:2785|10.0.0.3:2782:2785:observer;;[::1]:2281\n\
version=100000000";

/// A 3.6-style TxnDigest.
fn digest(e: Enc) -> Enc {
    e.i32(2).i64(0x0123_4567_89ab_cdef)
}

/// The packet's data for a forwarded request (sessionId, cxid, type, record).
fn request(cxid: i32, op: i32, record: Enc) -> Vec<u8> {
    Enc::new()
        .i64(SESSION)
        .i32(cxid)
        .i32(op)
        .raw(&record.done())
        .done()
}

fn notification(len: usize, version: i32, config: Option<&str>) -> Vec<u8> {
    let mut e = Enc::new().i32(1).i64(3).i64(0x1_0000_2000).i64(10);
    if len > 28 {
        e = e.i64(9);
    }
    if len > 36 {
        e = e.i32(version);
    }
    if let Some(c) = config {
        e = e.str(c);
    }
    e.done()
}

pub fn corpus() -> Vec<Case> {
    let mut v = Vec::new();

    // --- REQUEST (learner → leader) ---
    v.push(case(
        "request_create_session",
        LEARNER,
        packet(1, -1, Some(&request(0, -10, Enc::new().i32(10_000))), None),
        &[],
    ));
    let create = Enc::new().str("/foo").buf(Some(b"bar")).acls(WORLD).i32(0);
    v.push(case(
        "request_create",
        LEARNER,
        packet(
            1,
            -1,
            Some(&request(2, 1, create)),
            Some(&[("ip", "127.0.0.1"), ("digest", "u:h")]),
        ),
        &[],
    ));
    v.push(case(
        "request_close_session",
        LEARNER,
        packet(1, -1, Some(&request(5, -11, Enc::new())), Some(&[])),
        &[],
    ));
    v.push(case(
        "request_sync",
        LEARNER,
        packet(1, -1, Some(&request(3, 9, Enc::new().str("/"))), None),
        &[],
    ));
    let multi = Enc::new()
        .i32(2)
        .bool(false)
        .i32(-1)
        .str("/m")
        .i32(-1)
        .i32(-1)
        .bool(true)
        .i32(-1);
    v.push(case(
        "request_multi",
        LEARNER,
        packet(1, -1, Some(&request(6, 14, multi)), None),
        &[],
    ));
    v.push(case(
        "request_unknown_op",
        LEARNER,
        packet(1, -1, Some(&request(7, 999, Enc::new().raw(b"xyz"))), None),
        &[16, 17, 18],
    ));

    // --- PROPOSAL / INFORM ---
    let h = |ty| txn_header(SESSION, 1, 0x1_0000_0002, 1_436_558_589_776, ty);
    v.push(case(
        "proposal_create_session",
        LEADER,
        packet(2, 0x1_0000_0001, Some(&h(-10).i32(10_000).done()), None),
        &[],
    ));
    let create_v0 = h(1).str("/foo").buf(Some(b"x")).acls(WORLD).bool(false);
    let v0 = create_v0.0.len();
    v.push(case(
        "proposal_create_digest",
        LEADER,
        packet(
            2,
            0x1_0000_0002,
            Some(&digest(create_v0.i32(1)).done()),
            None,
        ),
        &[v0, v0 + 4],
    ));
    let paths = Enc::new().i32(2).str("/a/b/c/d/e").str("/x").done();
    v.push(case(
        "proposal_close_session_paths",
        LEADER,
        packet(
            2,
            0x1_0000_0003,
            Some(&digest(h(-11).raw(&paths)).done()),
            None,
        ),
        &[32, 44, 32 + paths.len()],
    ));
    v.push(case(
        "proposal_close_session_digest_only",
        LEADER,
        packet(2, 0x1_0000_0004, Some(&digest(h(-11)).done()), None),
        &[32],
    ));
    let sub = |ty: i32, rec: Enc| (ty, rec.done());
    let subs = [
        sub(
            1,
            Enc::new()
                .str("/m1")
                .buf(None)
                .acls(WORLD)
                .bool(true)
                .i32(3),
        ),
        sub(5, Enc::new().str("/m2").buf(Some(b"d")).i32(4)),
        sub(2, Enc::new().str("/m3")),
        sub(13, Enc::new().str("/m4").i32(7)),
        sub(-1, Enc::new().i32(-101)),
        sub(
            21,
            Enc::new()
                .str("/t")
                .buf(None)
                .acls(WORLD)
                .i32(1)
                .i64(60_000),
        ),
        sub(19, Enc::new().str("/c").buf(None).acls(WORLD).i32(2)),
    ];
    let mut m = h(14).i32(subs.len() as i32);
    for (ty, rec) in &subs {
        m = m.i32(*ty).buf(Some(rec));
    }
    let mlen = m.0.len();
    v.push(case(
        "proposal_multi_digest",
        LEADER,
        packet(2, 0x1_0000_0005, Some(&digest(m).done()), None),
        &[mlen],
    ));
    v.push(case(
        "proposal_create_ttl",
        LEADER,
        packet(
            2,
            6,
            Some(&h(21).str("/t").buf(None).acls(WORLD).i32(1).i64(5).done()),
            None,
        ),
        &[],
    ));
    v.push(case(
        "proposal_create_container",
        LEADER,
        packet(
            2,
            7,
            Some(&h(19).str("/c").buf(None).acls(&[]).i32(1).done()),
            None,
        ),
        &[],
    ));
    v.push(case(
        "proposal_delete",
        LEADER,
        packet(2, 8, Some(&h(2).str("/d").done()), None),
        &[],
    ));
    v.push(case(
        "proposal_set_acl",
        LEADER,
        packet(
            2,
            9,
            Some(&h(7).str("/a").acls(&[(1, "ip", "10.0.0.1")]).i32(2).done()),
            None,
        ),
        &[],
    ));
    v.push(case(
        "proposal_check",
        LEADER,
        packet(2, 10, Some(&h(13).str("/k").i32(4).done()), None),
        &[],
    ));
    v.push(case(
        "proposal_error",
        LEADER,
        packet(2, 11, Some(&h(-1).i32(-110).done()), None),
        &[],
    ));
    let reconfig = h(16)
        .str("/zookeeper/config")
        .buf(Some(CONFIG.as_bytes()))
        .i32(-1)
        .done();
    v.push(case(
        "inform_reconfig",
        LEADER,
        packet(8, 0x1_0000_0006, Some(&reconfig), None),
        &[],
    ));
    v.push(case(
        "proposal_unknown_txn",
        LEADER,
        packet(2, 12, Some(&h(77).raw(b"??").done()), None),
        &[32, 33],
    ));

    // --- other leader → learner packets ---
    v.push(case(
        "commitandactivate",
        LEADER,
        packet(9, 0x1_0000_000d, Some(&3i64.to_be_bytes()), None),
        &[],
    ));
    let mut ia = 3i64.to_be_bytes().to_vec();
    ia.extend_from_slice(&reconfig);
    v.push(case(
        "informandactivate",
        LEADER,
        packet(19, 0x1_0000_0006, Some(&ia), None),
        &[],
    ));
    let all: Vec<usize> = (0..CONFIG.len()).collect();
    v.push(case(
        "newleader_config",
        LEADER,
        packet(10, 0x1_0000_0000, Some(CONFIG.as_bytes()), None),
        &all,
    ));
    v.push(case(
        "newleader_null",
        LEADER,
        packet(10, 0x1_0000_0000, None, None),
        &[],
    ));
    v.push(case(
        "leaderinfo",
        LEADER,
        packet(17, 0x1_0000_0000, Some(&0x10000i32.to_be_bytes()), None),
        &[],
    ));
    v.push(case(
        "revalidate_reply",
        LEADER,
        packet(
            6,
            -1,
            Some(&Enc::new().i64(SESSION).bool(true).done()),
            None,
        ),
        &[],
    ));
    v.push(case(
        "ping_leader",
        LEADER,
        packet(5, 0x1_0000_0000, None, None),
        &[],
    ));
    for (name, ty) in [
        ("ack", 3),
        ("commit", 4),
        ("sync", 7),
        ("uptodate", 12),
        ("diff", 13),
        ("trunc", 14),
        ("snap", 15),
    ] {
        v.push(case(name, ANY, packet(ty, 0x1_0000_0001, None, None), &[]));
    }
    v.push(case(
        "unknown_type",
        ANY,
        packet(42, 1, Some(b"hello"), None),
        &[0, 1, 2, 3, 4],
    ));

    // --- learner → leader ---
    let li = Enc::new().i64(2).i32(0x10000).i64(0x1_0000_0000).done();
    v.push(case(
        "followerinfo_35",
        LEARNER,
        packet(11, 0, Some(&li), None),
        &[8, 12],
    ));
    v.push(case(
        "observerinfo_34",
        LEARNER,
        packet(16, 0x1_0000_0000, Some(&li[..12]), None),
        &[8],
    ));
    v.push(case(
        "ackepoch",
        LEARNER,
        packet(18, 0, Some(&(-1i32).to_be_bytes()), None),
        &[],
    ));
    let pings = Enc::new()
        .i64(SESSION)
        .i32(30_000)
        .i64(SESSION + 1)
        .i32(10_000)
        .done();
    v.push(case(
        "ping_learner",
        LEARNER,
        packet(5, 0x1_0000_0000, Some(&pings), None),
        &[0, 12],
    ));
    v.push(case(
        "ping_learner_empty",
        LEARNER,
        packet(5, 0x1_0000_0000, Some(b""), None),
        &[],
    ));
    let reval = Enc::new().i64(SESSION).i32(10_000).done();
    v.push(case(
        "revalidate_request",
        LEARNER,
        packet(6, -1, Some(&reval), None),
        &[],
    ));
    v.push(case(
        "revalidate_request_undirected",
        ANY,
        packet(6, -1, Some(&reval), None),
        &[9],
    ));

    // --- election port ---
    v.push(case(
        "initial_34",
        Kind::Initial,
        Enc::new().i64(3).done(),
        &[],
    ));
    v.push(case(
        "initial_v1",
        Kind::Initial,
        Enc::new()
            .i64(PROTOCOL_VERSION_V1)
            .i64(6)
            .str("127.0.0.1:3888")
            .done(),
        &[],
    ));
    v.push(case(
        "initial_v2",
        Kind::Initial,
        Enc::new()
            .i64(PROTOCOL_VERSION_V2)
            .i64(7)
            .str("10.0.0.1:3888|[::1]:3888")
            .done(),
        &[],
    ));
    v.push(case(
        "quorum_auth",
        Kind::QuorumAuth,
        Enc::new()
            .i64(QUORUM_AUTH_MAGIC)
            .i32(0)
            .buf(Some(b"token"))
            .done(),
        &[],
    ));
    v.push(case(
        "quorum_auth_null",
        Kind::QuorumAuth,
        Enc::new().i64(QUORUM_AUTH_MAGIC).i32(1).buf(None).done(),
        &[],
    ));
    v.push(case(
        "notification_28",
        Kind::Notification,
        notification(28, 0, None),
        &[],
    ));
    v.push(case(
        "notification_36",
        Kind::Notification,
        notification(36, 0, None),
        &[28],
    ));
    v.push(case(
        "notification_40",
        Kind::Notification,
        notification(40, 1, None),
        &[28, 36],
    ));
    v.push(case(
        "notification_v2_config",
        Kind::Notification,
        notification(44, 2, Some(CONFIG)),
        &[28, 36, 40],
    ));
    v
}

/// Touches every lazy part of a body (no formatting, so no allocation).
pub fn walk_body(b: &QuorumBody<'_>) {
    match b {
        QuorumBody::Request(r) => {
            if let ForwardedRecord::Client(body) = r.record {
                walk_request(&body);
            }
        }
        QuorumBody::Txn(t) | QuorumBody::InformAndActivate { txn: t, .. } => walk_txn(&t.record),
        QuorumBody::Ping(Some(s)) => assert_eq!(s.iter().map(black_box).count(), s.len()),
        QuorumBody::NewLeader { config: Some(c) } => {
            if let Some(t) = c.to_str() {
                walk_config(t);
            }
        }
        _ => {}
    }
}

fn walk_request(b: &RequestBody<'_>) {
    match b {
        RequestBody::Create { acl, .. } | RequestBody::SetAcl { acl, .. } => {
            assert_eq!(acl.iter().map(black_box).count(), acl.len())
        }
        RequestBody::Multi(ops) => assert_eq!(ops.iter().map(black_box).count(), ops.len()),
        _ => {}
    }
}

fn walk_txn(r: &TxnRecord<'_>) {
    match r {
        TxnRecord::Create { acl, .. }
        | TxnRecord::CreateTtl { acl, .. }
        | TxnRecord::CreateContainer { acl, .. }
        | TxnRecord::SetAcl { acl, .. } => {
            assert_eq!(acl.iter().map(black_box).count(), acl.len())
        }
        TxnRecord::CloseSession { paths: Some(p) } => {
            assert_eq!(p.iter().map(black_box).count(), p.len())
        }
        TxnRecord::Multi(m) => {
            let mut n = 0;
            for s in m.iter() {
                walk_txn(&s.record);
                n += 1;
            }
            assert_eq!(n, m.len());
        }
        _ => {}
    }
}

pub fn walk_config(text: &str) {
    for line in zkscope_proto::election::parse_config(text) {
        match line {
            ConfigLine::Server(s) => {
                assert_eq!(s.addrs.iter().map(black_box).count(), s.addrs.len())
            }
            l @ ConfigLine::Group { .. } => {
                black_box(l.group_members().count());
            }
            other => {
                black_box(other);
            }
        }
    }
}

/// Decodes a whole case (and its body) and walks it; `Err` describes the
/// first failure. Never allocates on success or failure.
pub fn decode_case(kind: Kind, bytes: &[u8]) -> Result<(), &'static str> {
    match kind {
        Kind::Packet { from_leader } => match decode_packet(bytes) {
            Status::Complete((n, p)) => {
                if n != bytes.len() {
                    return Err("trailing bytes");
                }
                black_box(p.authinfo.iter().count());
                let b = p.body(from_leader).map_err(|_| "body")?;
                walk_body(&b);
                Ok(())
            }
            Status::Partial => Err("partial"),
            Status::Invalid(_) => Err("invalid"),
        },
        Kind::Initial => match decode_initial(bytes) {
            Status::Complete((n, m)) if n == bytes.len() => {
                black_box(m.addresses().count());
                Ok(())
            }
            Status::Complete(_) => Err("trailing bytes"),
            Status::Partial => Err("partial"),
            Status::Invalid(_) => Err("invalid"),
        },
        Kind::QuorumAuth => match decode_quorum_auth(bytes) {
            Status::Complete((n, _)) if n == bytes.len() => Ok(()),
            Status::Complete(_) => Err("trailing bytes"),
            Status::Partial => Err("partial"),
            Status::Invalid(_) => Err("invalid"),
        },
        Kind::Notification => {
            let n = decode_notification(bytes).map_err(|_| "notification")?;
            if let Some(t) = n.config_str() {
                walk_config(t);
            }
            Ok(())
        }
    }
}

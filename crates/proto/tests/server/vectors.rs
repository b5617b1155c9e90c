//! zktraffic's hand-built vectors (test_zab.py, test_fle_messages.py,
//! test_parse_config.py) and field-level checks of every body type.

use zkscope_proto::election::{
    decode_initial, decode_notification, decode_quorum_auth, parse_config, AuthStatus, ClientAddr,
    ConfigLine, InitialFormat, QuorumAddr, Role, ServerState, Status, Zxid, PROTOCOL_VERSION_V1,
};
use zkscope_proto::quorum::{
    decode_body, decode_packet, decode_txn, peek_header, plausible_packet_start, ForwardedRecord,
    PacketType, QuorumBody, QuorumPacket, TxnRecord, MAX_DATA_LEN,
};
use zkscope_proto::{ErrCode, ErrorKind, OpCode, RequestBody};

use crate::enc::{packet, txn_header, Enc, WORLD};
use crate::frames::{corpus, CONFIG, SESSION};

fn case(name: &str) -> Vec<u8> {
    corpus()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}"))
        .bytes
}

fn pkt(bytes: &[u8]) -> QuorumPacket<'_> {
    match decode_packet(bytes) {
        Status::Complete((n, p)) => {
            assert_eq!(n, bytes.len());
            p
        }
        other => panic!("{other:?}"),
    }
}

fn body(bytes: &[u8], from_leader: Option<bool>) -> QuorumBody<'_> {
    pkt(bytes).body(from_leader).unwrap()
}

// ---------------------------------------------------------------------------
// test_zab.py
// ---------------------------------------------------------------------------

/// test_basic: type 2, zxid 2000, then the text `cchenwashere` as "data".
/// zktraffic reads type and zxid and ignores the rest. Decoded correctly,
/// the data length is "cche" = 0x63636865 (1.6 GB, over the 64 MiB cap), so
/// the packet is `Invalid`; `peek_header` still gives PROPOSAL / 2000.
#[test]
fn zktraffic_test_basic() {
    let payload = Enc::new().i32(2).i64(0x7d0).raw(b"cchenwashere").done();
    const { assert!(0x6363_6865 > MAX_DATA_LEN) };
    assert_eq!(
        peek_header(&payload),
        Some((PacketType::PROPOSAL, Zxid(2000)))
    );
    match decode_packet(&payload) {
        Status::Invalid(e) => {
            assert_eq!(
                (e.kind, e.field, e.offset),
                (ErrorKind::Invalid, "data", 12)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!plausible_packet_start(&payload));
    // The same header with a real (null) body decodes.
    let p = pkt(&packet(2, 2000, None, None)).packet_type;
    assert_eq!(p.display_name(), Some("Proposal"));
}

#[test]
fn packet_type_names() {
    let names = [
        "Request",
        "Proposal",
        "Ack",
        "Commit",
        "Ping",
        "Revalidate",
        "Sync",
        "Inform",
        "CommitAndActivate",
        "NewLeader",
        "FollowerInfo",
        "UpToDate",
        "Diff",
        "Trunc",
        "Snap",
        "ObserverInfo",
        "LeaderInfo",
        "AckEpoch",
        "InformAndActivate",
    ];
    for (i, n) in names.iter().enumerate() {
        let t = PacketType(i as i32 + 1);
        assert_eq!(t.display_name(), Some(*n));
        assert_eq!(t.name().unwrap(), n.to_uppercase());
        assert_eq!(t.to_string(), n.to_uppercase());
    }
    assert_eq!(PacketType::INFORMANDACTIVATE.0, 19);
    for t in [0, 20, -1, i32::MIN, i32::MAX] {
        assert_eq!(PacketType(t).name(), None);
        assert_eq!(PacketType(t).display_name(), None);
        assert_eq!(PacketType(t).to_string(), t.to_string());
    }
}

// ---------------------------------------------------------------------------
// test_fle_messages.py
// ---------------------------------------------------------------------------

fn zk_config() -> String {
    [
        "server.0=10.0.0.1:2889:3888:participant;0.0.0.0:2181",
        "server.0=10.0.0.2:2889:3888:participant;0.0.0.0:2181",
        "server.0=10.0.0.3:2889:3888:participant;0.0.0.0:2181",
        "version=deadbeef",
    ]
    .join("\n")
}

fn vote(len: usize) -> Enc {
    let e = Enc::new().i32(1).i64(3).i64(0x2000).i64(10);
    if len > 28 {
        e.i64(10)
    } else {
        e
    }
}

#[test]
fn zktraffic_initial_message() {
    let payload = Enc::new()
        .raw(b"\xff\xff\xff\xff\xff\xff\x00\x00")
        .i64(6)
        .i32(14)
        .raw(b"127.0.0.1:3888")
        .done();
    let Status::Complete((n, init)) = decode_initial(&payload) else {
        panic!()
    };
    assert_eq!(n, payload.len());
    assert_eq!(init.format, InitialFormat::V1);
    assert_eq!(init.format.protocol_version(), Some(PROTOCOL_VERSION_V1));
    assert_eq!(init.sid, 6);
    let addrs: Vec<_> = init.addresses().map(|a| a.to_string()).collect();
    assert_eq!(addrs, ["127.0.0.1:3888"]);
}

/// zktraffic reports peer_epoch −1 for a 28-byte vote; receivers derive it
/// from the zxid's epoch (0x2000 >> 32 = 0), which is what we report.
#[test]
fn zktraffic_notification_28() {
    let b = vote(28).done();
    let n = decode_notification(&b).unwrap();
    assert_eq!(n.state, ServerState::FOLLOWING);
    assert_eq!(n.state.name(), Some("FOLLOWING"));
    assert_eq!((n.leader, n.zxid, n.election_epoch), (3, Zxid(0x2000), 10));
    assert_eq!((n.peer_epoch, n.peer_epoch_derived), (0, true));
    assert_eq!(
        (n.version, n.effective_version(), n.config),
        (None, 0, None)
    );
    // With a non-zero epoch the derivation shows.
    let b = Enc::new().i32(0).i64(1).i64(0x5_0000_0001).i64(2).done();
    assert_eq!(decode_notification(&b).unwrap().peer_epoch, 5);
}

#[test]
fn zktraffic_notification_36() {
    let b = vote(36).done();
    let n = decode_notification(&b).unwrap();
    assert_eq!((n.peer_epoch, n.peer_epoch_derived), (10, false));
    assert_eq!(
        (n.version, n.effective_version(), n.config),
        (None, 0, None)
    );
}

/// "v1" vector: version 1 followed by config text *without* a length.
/// Version 1 carries no config, so the text is trailing bytes (zktraffic:
/// config ""). The body is 215 bytes, not 40, so receivers do read the version.
#[test]
fn zktraffic_notification_v1() {
    let config = zk_config();
    let b = vote(36).i32(1).raw(config.as_bytes()).done();
    let n = decode_notification(&b).unwrap();
    assert_eq!((n.version, n.version_ignored), (Some(1), false));
    assert_eq!((n.config, n.trailing), (None, config.len()));
    assert_eq!(n.effective_version(), 1);
    // Exactly 40 bytes: 3.5+ receivers ignore the version.
    let b = vote(36).i32(1).done();
    let n = decode_notification(&b).unwrap();
    assert_eq!((n.version, n.version_ignored), (Some(1), true));
    assert_eq!(n.effective_version(), 0);
}

#[test]
fn zktraffic_notification_v2_with_config() {
    let config = zk_config();
    assert_eq!(config.len(), 0xaf);
    let b = vote(36).i32(2).i32(0xaf).raw(config.as_bytes()).done();
    let n = decode_notification(&b).unwrap();
    assert_eq!((n.version, n.effective_version()), (Some(2), 2));
    assert_eq!(n.config_str(), Some(config.as_str()));
    assert_eq!(n.trailing, 0);
    let lines: Vec<_> = n.config_lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[3], ConfigLine::Version(Zxid(0xdead_beef)));
    let ConfigLine::Server(s) = lines[1] else {
        panic!()
    };
    assert_eq!(s.sid, 0);
    assert_eq!(s.addrs.iter().next().unwrap().host, "10.0.0.2");
}

/// zktraffic raises BadPacket for state 5; receivers drop it. We decode it
/// and keep the number (no name).
#[test]
fn zktraffic_invalid_state() {
    let b = Enc::new().i32(5).i64(3).i64(0x2000).i64(10).done();
    let n = decode_notification(&b).unwrap();
    assert_eq!(n.state, ServerState(5));
    assert_eq!(n.state.name(), None);
    assert_eq!(n.state.to_string(), "5");
    let j = serde_json::to_value(n).unwrap();
    assert_eq!(j["state"], serde_json::Value::Null);
    assert_eq!(j["state_code"], 5);
}

#[test]
fn notification_errors() {
    for len in 0..28 {
        let e = decode_notification(&vec![0; len]).unwrap_err();
        assert_eq!(
            (e.kind, e.field, e.offset),
            (ErrorKind::Truncated, "notification", 0)
        );
    }
    // Negative config length.
    let b = vote(36).i32(2).i32(-5).raw(&[0; 8]).done();
    let e = decode_notification(&b).unwrap_err();
    assert_eq!(
        (e.kind, e.field, e.offset),
        (ErrorKind::NegativeLength, "configLength", 40)
    );
    // Config length beyond the body (Java: > capacity ⇒ dropped).
    let b = vote(36).i32(2).i32(0x7fff_ffff).raw(&[0; 8]).done();
    let e = decode_notification(&b).unwrap_err();
    assert_eq!((e.kind, e.field), (ErrorKind::Truncated, "config"));
    // Version 2 with an empty config and trailing bytes.
    let b = vote(36).i32(2).i32(0).raw(b"xy").done();
    let n = decode_notification(&b).unwrap();
    assert_eq!((n.config.map(|c| c.len()), n.trailing), (Some(0), 2));
}

// ---------------------------------------------------------------------------
// Initial messages and quorum auth
// ---------------------------------------------------------------------------

#[test]
fn initial_forms() {
    // 3.4: the sid alone; whatever follows is not consumed.
    let b = Enc::new().i64(3).i32(40).done();
    let Status::Complete((8, m)) = decode_initial(&b) else {
        panic!()
    };
    assert_eq!(
        (m.format, m.sid, m.addresses().count()),
        (InitialFormat::Legacy, 3, 0)
    );
    assert_eq!(m.format.protocol_version(), None);
    // V2 with several addresses.
    let b = case("initial_v2");
    let Status::Complete((n, m)) = decode_initial(&b) else {
        panic!()
    };
    assert_eq!((n, m.format, m.sid), (b.len(), InitialFormat::V2, 7));
    let a: Vec<_> = m.addresses().map(|a| a.to_string()).collect();
    assert_eq!(a, ["10.0.0.1:3888", "[::1]:3888"]);
    let hp: Vec<_> = a
        .iter()
        .map(|s| zkscope_proto::election::parse_host_port(s).unwrap().1)
        .collect();
    assert_eq!(hp, [3888, 3888]);
    // Unknown negative version, bad lengths.
    let bad = |b: Vec<u8>, field: &str| match decode_initial(&b) {
        Status::Invalid(e) => assert_eq!(e.field, field),
        other => panic!("{other:?}"),
    };
    bad(Enc::new().i64(-2).done(), "protocolVersion");
    bad(Enc::new().i64(-65536).i64(1).i32(0).done(), "addressLength");
    bad(
        Enc::new().i64(-65535).i64(1).i32(2049).done(),
        "addressLength",
    );
    bad(
        Enc::new().i64(-65536).i64(1).i32(-1).done(),
        "addressLength",
    );
    // 2048 is allowed: Partial until it is all there.
    let b = Enc::new()
        .i64(-65536)
        .i64(1)
        .i32(2048)
        .raw(&[b'a'; 100])
        .done();
    assert!(decode_initial(&b).is_partial());
}

#[test]
fn quorum_auth() {
    let b = case("quorum_auth");
    let Status::Complete((n, q)) = decode_quorum_auth(&b) else {
        panic!()
    };
    assert_eq!(
        (n, q.status, q.token.len()),
        (b.len(), AuthStatus::IN_PROGRESS, Some(5))
    );
    let b = case("quorum_auth_null");
    let Status::Complete((_, q)) = decode_quorum_auth(&b) else {
        panic!()
    };
    assert_eq!((q.status.name(), q.token.bytes()), (Some("SUCCESS"), None));
    // The magic is checked on whatever is present: a frame length is not auth.
    assert!(decode_quorum_auth(&[0]).is_invalid());
    assert!(decode_quorum_auth(&[0x5f, 0x24]).is_partial());
    assert_eq!(
        zkscope_proto::election::QUORUM_AUTH_MAGIC,
        -0xa0db_cafe_cafe_1234_i128 as i64
    );
    let huge = Enc::new()
        .i64(zkscope_proto::election::QUORUM_AUTH_MAGIC)
        .i32(0)
        .i32(0x7fff_ffff)
        .done();
    assert!(decode_quorum_auth(&huge).is_invalid());
}

// ---------------------------------------------------------------------------
// test_parse_config.py
// ---------------------------------------------------------------------------

#[test]
fn zktraffic_parse_config() {
    let text = "server.1=localhost:2780:2783:participant;0.0.0.0:2181\n\
                server.2=localhost:2781:2784:participant;0.0.0.0:2182\n\
                server.3=localhost:2782:2785:participant;0.0.0.0:2183\n\
                version=0\n\
                \n\
                unsupported_key=unsupported_value\n";
    let l: Vec<_> = parse_config(text).collect();
    assert_eq!(l.len(), 5);
    let ConfigLine::Server(s) = l[0] else {
        panic!("{:?}", l[0])
    };
    assert_eq!(s.sid, 1);
    assert_eq!(
        s.addrs.iter().collect::<Vec<_>>(),
        [QuorumAddr {
            host: "localhost",
            quorum_port: 2780,
            election_port: 2783
        }]
    );
    assert_eq!(s.role, Role::Participant);
    assert_eq!(
        s.client,
        Some(ClientAddr {
            host: "0.0.0.0",
            port: 2181
        })
    );
    assert!(matches!(l[1], ConfigLine::Server(s) if s.sid == 2));
    assert!(matches!(l[2], ConfigLine::Server(s) if s.sid == 3 && s.client.unwrap().port == 2183));
    assert_eq!(l[3], ConfigLine::Version(Zxid(0)));
    assert_eq!(l[4], ConfigLine::Other("unsupported_key=unsupported_value"));
}

/// zktraffic rejects the whole config; we mark the bad line `Invalid` and
/// keep the others.
#[test]
fn zktraffic_parse_bad_config() {
    for bad in [
        "server.2=localhost:2781",
        "server.2=localhost:2781:2784:participant;0.0.0.0:2182:2192",
        "server.2=localhost:2781:2784:foobar;0.0.0.0:2182",
    ] {
        let text = format!(
            "server.1=localhost:2780:2783:participant;0.0.0.0:2181\n{bad}\n\
             server.3=localhost:2782:2785:participant;0.0.0.0:2183\nversion=0\n"
        );
        let l: Vec<_> = parse_config(&text).collect();
        assert_eq!(l.len(), 4, "{bad}");
        assert_eq!(l[1], ConfigLine::Invalid(bad));
        assert!(matches!(l[0], ConfigLine::Server(_)));
        assert!(matches!(l[2], ConfigLine::Server(_)));
    }
}

#[test]
fn config_forms() {
    let l: Vec<_> = parse_config(CONFIG).collect();
    let ConfigLine::Server(s) = l[2] else {
        panic!()
    };
    // Multi-address, IPv6, observer, secure-only client (`;;`).
    assert_eq!(s.addrs.len(), 2);
    let a: Vec<_> = s.addrs.iter().collect();
    assert_eq!((a[0].host, a[1].host), ("::1", "10.0.0.3"));
    assert_eq!((s.role, s.client), (Role::Observer, None));
    assert_eq!(
        s.secure_client.unwrap(),
        ClientAddr {
            host: "::1",
            port: 2281
        }
    );
    assert_eq!(l[3], ConfigLine::Version(Zxid(0x1_0000_0000)));

    let text = "server.1=h:1:2\r\nserver.2 = h:3:4:OBSERVER;7\nserver.3=h:5:6;[::1]:9;h2:10\n\
                group.1=1:2:3\nweight.1=2\n# comment\nversion=zz\nserver.x=h:1:2\n\
                group.2=1:x\nweight.3=\nnot a key value\nserver.4=[::1:2:3\nserver.5=h:2:2\n\
                server.6=h:1:2|h:3:4:observer";
    let l: Vec<_> = parse_config(text).collect();
    let ConfigLine::Server(s1) = l[0] else {
        panic!()
    };
    assert_eq!((s1.role, s1.client), (Role::Participant, None));
    let ConfigLine::Server(s2) = l[1] else {
        panic!()
    };
    assert_eq!((s2.role, s2.client.unwrap().port), (Role::Observer, 7));
    let ConfigLine::Server(s3) = l[2] else {
        panic!()
    };
    assert_eq!(
        s3.client.unwrap(),
        ClientAddr {
            host: "::1",
            port: 9
        }
    );
    assert_eq!(
        s3.secure_client.unwrap(),
        ClientAddr {
            host: "h2",
            port: 10
        }
    );
    assert_eq!(l[3].group_members().collect::<Vec<_>>(), [1, 2, 3]);
    assert!(matches!(l[3], ConfigLine::Group { gid: 1, .. }));
    assert_eq!(l[4], ConfigLine::Weight { sid: 1, weight: 2 });
    assert_eq!(l[5], ConfigLine::Invalid("version=zz"));
    assert_eq!(l[6], ConfigLine::Invalid("server.x=h:1:2"));
    assert_eq!(l[7], ConfigLine::Invalid("group.2=1:x"));
    assert_eq!(l[8], ConfigLine::Invalid("weight.3="));
    assert_eq!(l[9], ConfigLine::Other("not a key value"));
    assert_eq!(l[10], ConfigLine::Invalid("server.4=[::1:2:3"));
    // Quorum port == election port is rejected by ZooKeeper too.
    assert_eq!(l[11], ConfigLine::Invalid("server.5=h:2:2"));
    // The role may be on the last address only (QuorumServer.toString).
    let ConfigLine::Server(s6) = l[12] else {
        panic!()
    };
    assert_eq!((s6.addrs.len(), s6.role), (2, Role::Observer));
    assert_eq!(l.len(), 13);
}

// ---------------------------------------------------------------------------
// Quorum bodies
// ---------------------------------------------------------------------------

#[test]
fn forwarded_requests() {
    let b = case("request_create_session");
    let QuorumBody::Request(r) = body(&b, Some(false)) else {
        panic!()
    };
    assert_eq!(
        (r.session, r.cxid, r.op),
        (SESSION, 0, OpCode::CREATE_SESSION)
    );
    assert_eq!(r.record, ForwardedRecord::CreateSession { timeout: 10_000 });
    assert_eq!(r.body(), None);

    let b = case("request_create");
    let p = pkt(&b);
    let ids: Vec<_> = p
        .authinfo
        .iter()
        .map(|i| (i.scheme.to_string(), i.id.to_string()))
        .collect();
    assert_eq!(
        ids,
        [
            ("ip".into(), "127.0.0.1".into()),
            ("digest".into(), "u:h".into())
        ]
    );
    let QuorumBody::Request(r) = p.body(None).unwrap() else {
        panic!()
    };
    assert_eq!(r.op, OpCode::CREATE);
    let body = r.body().unwrap();
    assert_eq!(body.path().unwrap(), "/foo");
    let RequestBody::Create { data, acl, .. } = body else {
        panic!()
    };
    assert_eq!((data.bytes(), acl.len()), (Some(&b"bar"[..]), 1));

    let QuorumBody::Request(r) = body_of("request_close_session") else {
        panic!()
    };
    assert_eq!(
        (r.op, r.body()),
        (OpCode::CLOSE_SESSION, Some(RequestBody::Empty))
    );
    let QuorumBody::Request(r) = body_of("request_sync") else {
        panic!()
    };
    assert_eq!(r.body().unwrap().path().unwrap(), "/");
    let QuorumBody::Request(r) = body_of("request_multi") else {
        panic!()
    };
    let RequestBody::Multi(ops) = r.body().unwrap() else {
        panic!()
    };
    assert_eq!(ops.iter().next().unwrap().body.path().unwrap(), "/m");
    let QuorumBody::Request(r) = body_of("request_unknown_op") else {
        panic!()
    };
    assert_eq!(r.body(), Some(RequestBody::Unknown { len: 3 }));
}

fn body_of(name: &str) -> QuorumBody<'static> {
    let b: &'static [u8] = Box::leak(case(name).into_boxed_slice());
    let from_leader = match corpus().into_iter().find(|c| c.name == name).unwrap().kind {
        crate::frames::Kind::Packet { from_leader } => from_leader,
        _ => unreachable!(),
    };
    body(b, from_leader)
}

#[test]
fn transactions() {
    let QuorumBody::Txn(t) = body_of("proposal_create_session") else {
        panic!()
    };
    assert_eq!(t.header.op, OpCode::CREATE_SESSION);
    assert_eq!(t.header.zxid, Zxid(0x1_0000_0002));
    assert_eq!(t.record, TxnRecord::CreateSession { timeout: 10_000 });
    assert_eq!((t.digest, t.trailing), (None, 0));

    let QuorumBody::Txn(t) = body_of("proposal_create_digest") else {
        panic!()
    };
    let TxnRecord::Create {
        path,
        ephemeral,
        parent_cversion,
        ..
    } = t.record
    else {
        panic!()
    };
    assert_eq!(
        (path.to_string(), ephemeral, parent_cversion),
        ("/foo".into(), false, Some(1))
    );
    let d = t.digest.unwrap();
    assert_eq!((d.version, d.tree_digest), (2, 0x0123_4567_89ab_cdef));

    // closeSession: paths + digest, and digest only (§2.14).
    let QuorumBody::Txn(t) = body_of("proposal_close_session_paths") else {
        panic!()
    };
    let TxnRecord::CloseSession { paths: Some(p) } = t.record else {
        panic!()
    };
    assert_eq!(
        p.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ["/a/b/c/d/e", "/x"]
    );
    assert!(t.digest.is_some());
    let QuorumBody::Txn(t) = body_of("proposal_close_session_digest_only") else {
        panic!()
    };
    assert_eq!(t.record, TxnRecord::CloseSession { paths: None });
    assert!(t.digest.is_some());

    let QuorumBody::Txn(t) = body_of("proposal_multi_digest") else {
        panic!()
    };
    let TxnRecord::Multi(m) = t.record else {
        panic!()
    };
    let ops: Vec<_> = m.iter().map(|s| s.op.0).collect();
    assert_eq!(ops, [1, 5, 2, 13, -1, 21, 19]);
    let recs: Vec<_> = m.iter().map(|s| s.record).collect();
    assert!(matches!(
        recs[0],
        TxnRecord::Create {
            ephemeral: true,
            parent_cversion: Some(3),
            ..
        }
    ));
    assert!(matches!(recs[1], TxnRecord::SetData { version: 4, .. }));
    assert_eq!(recs[2].path().unwrap(), "/m3");
    assert!(matches!(recs[3], TxnRecord::Check { version: 7, .. }));
    assert_eq!(
        recs[4],
        TxnRecord::Error {
            err: ErrCode::NO_NODE
        }
    );
    assert!(matches!(recs[5], TxnRecord::CreateTtl { ttl: 60_000, .. }));
    assert!(matches!(
        recs[6],
        TxnRecord::CreateContainer {
            parent_cversion: 2,
            ..
        }
    ));
    assert!(t.digest.is_some());

    let QuorumBody::Txn(t) = body_of("proposal_create_ttl") else {
        panic!()
    };
    assert!(matches!(
        t.record,
        TxnRecord::CreateTtl {
            ttl: 5,
            parent_cversion: 1,
            ..
        }
    ));
    let QuorumBody::Txn(t) = body_of("proposal_create_container") else {
        panic!()
    };
    assert!(matches!(t.record, TxnRecord::CreateContainer { .. }));
    let QuorumBody::Txn(t) = body_of("proposal_delete") else {
        panic!()
    };
    assert_eq!(t.record.path().unwrap(), "/d");
    let QuorumBody::Txn(t) = body_of("proposal_set_acl") else {
        panic!()
    };
    let TxnRecord::SetAcl { acl, version, .. } = t.record else {
        panic!()
    };
    assert_eq!(
        (acl.iter().next().unwrap().id.to_string(), version),
        ("10.0.0.1".into(), 2)
    );
    let QuorumBody::Txn(t) = body_of("proposal_check") else {
        panic!()
    };
    assert!(matches!(t.record, TxnRecord::Check { version: 4, .. }));
    let QuorumBody::Txn(t) = body_of("proposal_error") else {
        panic!()
    };
    assert_eq!(
        t.record,
        TxnRecord::Error {
            err: ErrCode::NODE_EXISTS
        }
    );
    let QuorumBody::Txn(t) = body_of("inform_reconfig") else {
        panic!()
    };
    let TxnRecord::SetData { data, version, .. } = t.record else {
        panic!()
    };
    assert_eq!((data.bytes(), version), (Some(CONFIG.as_bytes()), -1));
    let QuorumBody::Txn(t) = body_of("proposal_unknown_txn") else {
        panic!()
    };
    assert_eq!(t.record, TxnRecord::Unknown { len: 2 });

    // CreateTxnV0 (no parentCVersion).
    let v0 = txn_header(1, 2, 3, 4, 1)
        .str("/v0")
        .buf(None)
        .acls(WORLD)
        .bool(true)
        .done();
    let t = decode_txn(&v0).unwrap();
    assert!(matches!(
        t.record,
        TxnRecord::Create {
            parent_cversion: None,
            ..
        }
    ));
    // Trailing bytes that are not a digest.
    let mut long = v0.clone();
    long.extend_from_slice(&[0; 4]);
    long.extend_from_slice(&[9; 13]);
    let t = decode_txn(&long).unwrap();
    assert_eq!((t.digest, t.trailing), (None, 13));
    // A nested multi is invalid.
    let sub = Enc::new().i32(0).done();
    let nested = txn_header(1, 2, 3, 4, 14)
        .i32(1)
        .i32(14)
        .buf(Some(&sub))
        .done();
    let e = decode_txn(&nested).unwrap_err();
    assert_eq!((e.kind, e.field), (ErrorKind::Invalid, "Txn.type"));
    // Errors inside a sub-txn point into the whole data.
    let bad = Enc::new().i32(-5).done();
    let t = txn_header(1, 2, 3, 4, 14)
        .i32(1)
        .i32(2)
        .buf(Some(&bad))
        .done();
    let e = decode_txn(&t).unwrap_err();
    assert_eq!(
        (e.kind, e.field, e.offset),
        (ErrorKind::NegativeLength, "path", 44)
    );
}

#[test]
fn other_bodies() {
    assert_eq!(
        body_of("commitandactivate"),
        QuorumBody::CommitAndActivate {
            designated_leader: 3
        }
    );
    let QuorumBody::InformAndActivate {
        designated_leader: 3,
        txn,
    } = body_of("informandactivate")
    else {
        panic!()
    };
    assert_eq!(txn.header.op, OpCode::RECONFIG);
    let QuorumBody::NewLeader { config: Some(c) } = body_of("newleader_config") else {
        panic!()
    };
    assert_eq!(c, CONFIG);
    assert_eq!(
        body_of("newleader_null"),
        QuorumBody::NewLeader { config: None }
    );
    assert_eq!(
        body_of("leaderinfo"),
        QuorumBody::LeaderInfo {
            protocol_version: 0x10000
        }
    );
    assert_eq!(body_of("ackepoch"), QuorumBody::AckEpoch { epoch: -1 });
    let QuorumBody::LearnerInfo(Some(li)) = body_of("followerinfo_35") else {
        panic!()
    };
    assert_eq!(
        (li.sid, li.protocol_version, li.config_version),
        (2, Some(0x10000), Some(1 << 32))
    );
    let QuorumBody::LearnerInfo(Some(li)) = body_of("observerinfo_34") else {
        panic!()
    };
    assert_eq!(
        (li.protocol_version, li.config_version),
        (Some(0x10000), None)
    );
    assert_eq!(
        decode_body(PacketType::FOLLOWERINFO, None, None).unwrap(),
        QuorumBody::LearnerInfo(None)
    );
    for name in ["ack", "commit", "sync", "uptodate", "diff", "trunc", "snap"] {
        assert_eq!(body_of(name), QuorumBody::Empty, "{name}");
    }
    assert_eq!(
        body_of("unknown_type"),
        QuorumBody::Unknown { len: Some(5) }
    );
}

#[test]
fn ping_and_revalidate_directions() {
    assert_eq!(body_of("ping_leader"), QuorumBody::Ping(None));
    let QuorumBody::Ping(Some(s)) = body_of("ping_learner") else {
        panic!()
    };
    let v: Vec<_> = s.iter().map(|e| (e.session, e.timeout)).collect();
    assert_eq!(v, [(SESSION, 30_000), (SESSION + 1, 10_000)]);
    let QuorumBody::Ping(Some(s)) = body_of("ping_learner_empty") else {
        panic!()
    };
    assert!(s.is_empty());
    // A session list cut in the middle of an entry.
    let e = decode_body(PacketType::PING, Some(&[0; 20]), None).unwrap_err();
    assert_eq!(
        (e.kind, e.field, e.offset),
        (ErrorKind::Truncated, "timeout", 20)
    );

    let req = case("revalidate_request");
    let rep = case("revalidate_reply");
    let want_req = QuorumBody::RevalidateRequest {
        session: SESSION,
        timeout: 10_000,
    };
    let want_rep = QuorumBody::RevalidateReply {
        session: SESSION,
        valid: true,
    };
    // By direction…
    assert_eq!(body(&req, Some(false)), want_req);
    assert_eq!(body(&rep, Some(true)), want_rep);
    // …or, unknown, by length (12 vs 9 bytes).
    assert_eq!(body(&req, None), want_req);
    assert_eq!(body(&rep, None), want_rep);
    // zktraffic misreads the reply as a request (timeout 33554431 = 0x01ffffff
    // from the bool and the next bytes); with the wrong direction we say Truncated.
    let e = pkt(&rep).body(Some(false)).unwrap_err();
    assert_eq!((e.kind, e.field), (ErrorKind::Truncated, "timeout"));
}

#[test]
fn packet_limits() {
    let bad = |b: Vec<u8>, kind: ErrorKind, field: &str| match decode_packet(&b) {
        Status::Invalid(e) => assert_eq!((e.kind, e.field), (kind, field)),
        other => panic!("{other:?}"),
    };
    let hdr = || Enc::new().i32(2).i64(1);
    bad(hdr().i32(-2).done(), ErrorKind::NegativeLength, "data");
    bad(
        hdr().i32(MAX_DATA_LEN as i32 + 1).done(),
        ErrorKind::Invalid,
        "data",
    );
    bad(
        hdr().i32(-1).i32(-2).done(),
        ErrorKind::NegativeLength,
        "authinfo",
    );
    bad(
        hdr().i32(-1).i32(1025).done(),
        ErrorKind::Invalid,
        "authinfo",
    );
    bad(
        hdr().i32(-1).i32(1).i32(0x10001).done(),
        ErrorKind::Invalid,
        "scheme",
    );
    bad(
        hdr().i32(-1).i32(1).i32(0).i32(-3).done(),
        ErrorKind::NegativeLength,
        "id",
    );
    // Declared but not yet received: Partial.
    assert!(decode_packet(&hdr().i32(MAX_DATA_LEN as i32).done()).is_partial());
    assert!(decode_packet(&hdr().i32(-1).i32(1024).done()).is_partial());
    // Two packets back to back: the first one's length is reported.
    let mut two = packet(3, 5, None, None);
    two.extend(packet(4, 5, None, None));
    let Status::Complete((20, p)) = decode_packet(&two) else {
        panic!()
    };
    assert_eq!(p.packet_type, PacketType::ACK);
    assert!(plausible_packet_start(&two[20..]));
    assert!(!plausible_packet_start(&two[1..]));
    assert!(!plausible_packet_start(&two[..15]));
    assert!(plausible_packet_start(&two[..16]));
    assert!(!plausible_packet_start(&packet(20, 5, None, None)));
    assert!(!plausible_packet_start(&packet(3, -2, None, None)));
    assert!(!plausible_packet_start(&hdr().i32(-1).i32(5000).done()));
}

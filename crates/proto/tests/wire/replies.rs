//! One test per reply type, plus notifications and the handshake.

use crate::enc::Enc;
use crate::frames::*;
use zkscope_proto::jute::ErrorKind;
use zkscope_proto::*;

fn rep(b: &[u8], op: i32) -> Reply<'_> {
    decode_reply(b, Some(OpCode(op))).unwrap_or_else(|e| panic!("{e}"))
}

fn stat(seed: i64, owner: i64) -> Stat {
    let b = seed * 100;
    Stat {
        czxid: b + 1,
        mzxid: b + 2,
        ctime: b + 3,
        mtime: b + 4,
        version: (b + 5) as i32,
        cversion: (b + 6) as i32,
        aversion: (b + 7) as i32,
        ephemeral_owner: owner,
        data_length: (b + 9) as i32,
        num_children: (b + 10) as i32,
        pzxid: b + 11,
    }
}

#[test]
fn create() {
    let b = create_rep();
    let r = rep(&b, 1);
    assert_eq!(
        r.header,
        ReplyHeader {
            xid: 1,
            zxid: 0x100,
            err: ErrCode::OK
        }
    );
    assert_eq!(
        r.body,
        ReplyBody::Create {
            path: JStr(b"/app")
        }
    );
    assert_eq!(r.trailing, 0);
}

#[test]
fn create2_container_ttl() {
    let b = create2_rep();
    assert_eq!(
        rep(&b, 15).body,
        ReplyBody::Create2 {
            path: JStr(b"/q/item-0000000007"),
            stat: stat(1, SESSION)
        }
    );
    let b = create_container_rep();
    let r = rep(&b, 19);
    let ReplyBody::Create2 { stat: s, .. } = r.body else {
        panic!()
    };
    assert_eq!(s.owner(), EphemeralOwner::Container);
    let b = create_ttl_rep();
    let ReplyBody::Create2 { stat: s, .. } = rep(&b, 21).body else {
        panic!()
    };
    assert_eq!(s.owner(), EphemeralOwner::Ttl(60_000));
    assert_eq!(s, stat(3, TTL_OWNER));
}

#[test]
fn header_only_replies() {
    for (b, op) in [
        (delete_rep(), 2),
        (ping_rep(), 11),
        (check_watches_rep(), 17),
        (auth_rep(), 100),
        (set_watches_rep(), 101),
        (set_watches2_rep(), 105),
        (close_session_rep(), -11),
    ] {
        let r = rep(&b, op);
        assert_eq!((r.body, r.trailing), (ReplyBody::None, 0), "op {op}");
    }
    // Special xids imply the opcode when the request was not captured.
    for b in [ping_rep(), auth_rep(), set_watches_rep()] {
        assert_eq!(decode_reply(&b, None).unwrap().body, ReplyBody::None);
    }
}

#[test]
fn stat_replies() {
    for (b, op, seed) in [
        (exists_rep(), 3, 4),
        (set_data_rep(), 5, 6),
        (set_acl_rep(), 7, 8),
        (check_rep(), 13, 0),
    ] {
        let r = rep(&b, op);
        assert_eq!(
            r.body,
            ReplyBody::Stat {
                stat: stat(seed, 0)
            }
        );
        assert_eq!(r.body.stat().unwrap().owner(), EphemeralOwner::Persistent);
    }
    // Standalone check with no Stat.
    assert_eq!(rep(&Enc::rep(14, 1, 0).build(), 13).body, ReplyBody::None);
}

#[test]
fn error_codes_by_name() {
    let b = exists_nonode_rep();
    let r = rep(&b, 3);
    assert_eq!(r.header.err, ErrCode::NO_NODE);
    assert_eq!(r.header.err.name(), Some("NONODE"));
    assert_eq!(r.body, ReplyBody::None);
    let r = rep(&remove_watches_nowatcher_rep(), 18).header.err;
    assert_eq!(r.name(), Some("NOWATCHER"));
    assert_eq!(
        rep(&auth_failed_rep(), 100).header.err.name(),
        Some("AUTHFAILED")
    );
    for (code, name) in [
        (0, "OK"),
        (-1, "SYSTEMERROR"),
        (-2, "RUNTIMEINCONSISTENCY"),
        (-6, "UNIMPLEMENTED"),
        (-103, "BADVERSION"),
        (-110, "NODEEXISTS"),
        (-112, "SESSIONEXPIRED"),
        (-118, "SESSIONMOVED"),
        (-124, "SESSIONCLOSEDREQUIRESASLAUTH"),
        (-127, "THROTTLEDOP"),
    ] {
        let b = Enc::rep(9, 1, code).build();
        assert_eq!(rep(&b, 2).header.err.name(), Some(name));
    }
    let b = Enc::rep(9, 1, -126).build();
    assert_eq!(rep(&b, 2).header.err, ErrCode(-126));
    assert_eq!(ErrCode(-126).name(), None);
}

#[test]
fn error_reply_body_is_ignored() {
    let b = sasl_failed_rep();
    let r = rep(&b, 102);
    assert_eq!(r.header.err, ErrCode::AUTH_FAILED);
    assert_eq!((r.body, r.trailing), (ReplyBody::None, 4));
}

#[test]
fn get_data_and_reconfig() {
    let b = get_data_rep();
    assert_eq!(
        rep(&b, 4).body,
        ReplyBody::GetData {
            data: Data(Some(b"hello")),
            stat: stat(5, 0)
        }
    );
    let b = reconfig_rep();
    let ReplyBody::GetData { data, .. } = rep(&b, 16).body else {
        panic!()
    };
    assert!(data
        .preview(100)
        .starts_with("server.1=h1:2888:3888;2181\\nversion=200"));
}

#[test]
fn get_acl() {
    let b = get_acl_rep();
    let ReplyBody::GetAcl { acl, stat: s } = rep(&b, 6).body else {
        panic!()
    };
    assert_eq!(s, stat(7, 0));
    let v: Vec<_> = acl
        .iter()
        .map(|a| (a.perms.0, a.scheme.to_string(), a.id.to_string()))
        .collect();
    assert_eq!(
        v,
        [
            (31, "world".into(), "anyone".into()),
            (3, "auth".into(), "".into())
        ]
    );
}

#[test]
fn children() {
    let b = get_children_rep();
    let ReplyBody::GetChildren { children } = rep(&b, 8).body else {
        panic!()
    };
    assert_eq!(children.len(), 2);
    assert_eq!(
        children.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        ["app", "zookeeper"]
    );
    let b = get_children2_rep();
    let ReplyBody::GetChildren2 { children, stat: s } = rep(&b, 12).body else {
        panic!()
    };
    assert_eq!((children.len(), s), (1, stat(9, 0)));
}

#[test]
fn sync() {
    assert_eq!(
        rep(&sync_rep(), 9).body,
        ReplyBody::Sync {
            path: JStr(b"/app")
        }
    );
}

#[test]
fn multi_success() {
    let b = multi_rep();
    let ReplyBody::Multi(results) = rep(&b, 14).body else {
        panic!()
    };
    let v: Vec<_> = results.iter().collect();
    assert_eq!(v.len(), 5);
    assert_eq!(
        v.iter().map(|r| r.op.0).collect::<Vec<_>>(),
        [1, 15, 5, 2, 13]
    );
    assert!(v.iter().all(|r| r.err.is_ok()));
    assert_eq!(
        v[0].body,
        ReplyBody::Create {
            path: JStr(b"/m/a")
        }
    );
    assert_eq!(
        v[1].body,
        ReplyBody::Create2 {
            path: JStr(b"/m/t0000000001"),
            stat: stat(10, TTL_OWNER)
        }
    );
    assert_eq!(v[2].body, ReplyBody::Stat { stat: stat(11, 0) });
    assert_eq!((v[3].body, v[4].body), (ReplyBody::None, ReplyBody::None));
    assert_eq!(results.first_error(), None);
}

#[test]
fn multi_failed() {
    let b = multi_failed_rep();
    let r = rep(&b, 14);
    assert_eq!(r.header.err, ErrCode::OK);
    let ReplyBody::Multi(results) = r.body else {
        panic!()
    };
    let errs: Vec<_> = results.iter().map(|r| (r.op, r.err)).collect();
    assert_eq!(
        errs,
        [
            (OpCode::ERROR, ErrCode::OK),
            (OpCode::ERROR, ErrCode::BAD_VERSION),
            (OpCode::ERROR, ErrCode::RUNTIME_INCONSISTENCY),
            (OpCode::ERROR, ErrCode::RUNTIME_INCONSISTENCY),
        ]
    );
    assert!(results.iter().all(|r| r.body == ReplyBody::None));
    assert_eq!(results.first_error(), Some(ErrCode::BAD_VERSION));
}

#[test]
fn multi_read_with_nonode() {
    let b = multi_read_rep();
    let ReplyBody::Multi(results) = rep(&b, 22).body else {
        panic!()
    };
    let v: Vec<_> = results.iter().collect();
    assert_eq!(v.len(), 3);
    assert!(matches!(v[0].body, ReplyBody::GetChildren { children } if children.len() == 2));
    assert_eq!((v[1].op, v[1].err), (OpCode::ERROR, ErrCode::NO_NODE));
    assert_eq!(
        v[2].body,
        ReplyBody::GetData {
            data: Data(Some(b"data")),
            stat: stat(12, 0)
        }
    );
    assert_eq!(v[2].op, OpCode::GET_DATA);
}

#[test]
fn multi_reply_rejects_unknown_result_type() {
    let b = Enc::rep(1, 1, 0).mh(107, 0).done().build();
    let e = decode_reply(&b, Some(OpCode::MULTI)).unwrap_err();
    assert_eq!(
        (e.kind, e.field, e.offset),
        (ErrorKind::Invalid, "MultiHeader.type", 16)
    );
}

#[test]
fn sasl_ephemerals_children_number() {
    assert_eq!(
        rep(&sasl_rep(), 102).body,
        ReplyBody::Sasl {
            token: Data(Some(&[5, 4, 3]))
        }
    );
    let b = get_ephemerals_rep();
    let ReplyBody::GetEphemerals { paths } = rep(&b, 103).body else {
        panic!()
    };
    assert_eq!(
        paths.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["/eph/a", "/eph/b/c"]
    );
    assert_eq!(
        rep(&get_all_children_number_rep(), 104).body,
        ReplyBody::GetAllChildrenNumber { total: 42 }
    );
}

#[test]
fn add_watch_has_four_byte_body() {
    let b = add_watch_rep();
    assert_eq!(b.len(), 20);
    let r = rep(&b, 106);
    assert_eq!(
        (r.body, r.trailing),
        (ReplyBody::AddWatch { err: ErrCode::OK }, 0)
    );
    // Missing body is truncated.
    assert!(decode_reply(&b[..16], Some(OpCode::ADD_WATCH))
        .unwrap_err()
        .is_truncated());
}

#[test]
fn who_am_i() {
    let b = who_am_i_rep();
    let ReplyBody::WhoAmI { clients } = rep(&b, 107).body else {
        panic!()
    };
    let v: Vec<_> = clients
        .iter()
        .map(|c| (c.auth_scheme.to_string(), c.user.to_string()))
        .collect();
    assert_eq!(
        v,
        [
            ("ip".into(), "127.0.0.1".into()),
            ("digest".into(), "alice".into())
        ]
    );
}

#[test]
fn unknown_and_uncaptured_requests() {
    let b = unknown_555_rep();
    assert_eq!(rep(&b, 555).body, ReplyBody::Unknown { len: 12 });
    assert_eq!(OpCode(555).reply_type(), "UnknownReply");
    let b = get_data_rep();
    let r = decode_reply(&b, None).unwrap();
    assert_eq!(
        (r.body, r.trailing),
        (ReplyBody::Unknown { len: b.len() - 16 }, 0)
    );
    let b = delete_rep();
    assert_eq!(decode_reply(&b, None).unwrap().body, ReplyBody::None);
}

#[test]
fn notifications() {
    let b = event_34_rep();
    let (h, ev) = decode_event(&b).unwrap();
    assert_eq!(
        h,
        ReplyHeader {
            xid: NOTIFICATION_XID,
            zxid: -1,
            err: ErrCode::OK
        }
    );
    assert_eq!(ev.event_type, EventType::NODE_DATA_CHANGED);
    assert_eq!(ev.state, KeeperState::SYNC_CONNECTED);
    assert_eq!(ev.path, Some(JStr(b"/app")));
    assert_eq!(WatchEvent::decode(&b[16..]).unwrap(), ev);

    // 3.9+: the header carries the event's zxid; decode_reply recognises
    // xid -1 whatever the request opcode.
    let b = event_39_rep();
    let r = decode_reply(&b, Some(OpCode::GET_DATA)).unwrap();
    assert_eq!(r.header.zxid, 0x3_0000_0010);
    let ReplyBody::Event(ev) = r.body else {
        panic!()
    };
    assert_eq!(ev.event_type.name(), Some("NodeChildrenChanged"));

    // Null path.
    let b = Enc::rep(-1, -1, 0).i32(-1).i32(-112).null().build();
    let (_, ev) = decode_event(&b).unwrap();
    assert_eq!((ev.state.name(), ev.path), (Some("Expired"), None));
}

#[test]
fn connect_request() {
    let b = connect_req(Some(false));
    assert_eq!(b.len(), 45);
    let c = ConnectRequest::decode(&b).unwrap();
    assert_eq!(
        c,
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0x1_0000_0004,
            timeout: 30_000,
            session_id: 0,
            passwd: Some(&[0; 16]),
            read_only: Some(false)
        }
    );
    assert!(ConnectRequest::looks_like(&b));
    let b = connect_req(None);
    assert_eq!(b.len(), 44);
    assert_eq!(ConnectRequest::decode(&b).unwrap().read_only, None);
    assert!(ConnectRequest::looks_like(&b));
    // Two trailing bytes: not a connect request.
    let mut long = connect_req(Some(true));
    long.push(0);
    let e = ConnectRequest::decode(&long).unwrap_err();
    assert_eq!(
        (e.kind, e.field, e.offset),
        (ErrorKind::Invalid, "readOnly", 44)
    );
    assert!(!ConnectRequest::looks_like(&long));
}

#[test]
fn connect_request_plausibility() {
    assert!(!ConnectRequest::looks_like(&[]));
    // Ordinary requests are not handshakes.
    for b in [
        get_data_req(),
        ping_req(),
        set_watches_req(),
        create_req(),
        multi_req(),
    ] {
        assert!(!ConnectRequest::looks_like(&b));
    }
    let mut b = connect_req(None);
    b[3] = 1; // protocol version 1
    assert!(!ConnectRequest::looks_like(&b));
    let mut b = connect_req(None);
    b[12..16].copy_from_slice(&(-5i32).to_be_bytes()); // negative timeout
    assert!(!ConnectRequest::looks_like(&b));
    let mut b = connect_req(Some(true));
    b[44] = 7; // readOnly byte not 0/1
    assert!(!ConnectRequest::looks_like(&b));
    // Passwd longer than 64.
    let b = Enc::new()
        .i32(0)
        .i64(0)
        .i32(1)
        .i64(0)
        .buf(Some(&[0; 65]))
        .build();
    assert!(ConnectRequest::decode(&b).is_ok());
    assert!(!ConnectRequest::looks_like(&b));
    // Responses are not requests.
    assert!(!ConnectRequest::looks_like(&connect_resp(Some(false))));
}

#[test]
fn connect_looks_like_prefix() {
    let req = connect_req(Some(true));
    let resp = connect_resp(None);
    for n in 0..=req.len() {
        assert!(
            ConnectRequest::looks_like_prefix(req.len(), &req[..n]),
            "{n}"
        );
    }
    for n in 0..=resp.len() {
        assert!(
            ConnectResponse::looks_like_prefix(resp.len(), &resp[..n]),
            "{n}"
        );
    }
    // Lengths that no 0..=64-byte passwd gives.
    assert!(!ConnectRequest::looks_like_prefix(27, &[]));
    assert!(!ConnectRequest::looks_like_prefix(28 + 66, &[]));
    assert!(!ConnectResponse::looks_like_prefix(19, &[]));
    // Length inconsistent with the passwd length field.
    assert!(!ConnectRequest::looks_like_prefix(46, &req));
    assert!(!ConnectResponse::looks_like_prefix(38, &resp));
    // A request header is rejected as soon as its xid is visible.
    let g = get_data_req();
    assert!(!ConnectRequest::looks_like_prefix(45, &g[..4]));
    // Negative timeout seen in the head.
    let mut bad = req.clone();
    bad[12] = 0x80;
    assert!(!ConnectRequest::looks_like_prefix(45, &bad[..16]));
}

#[test]
fn connect_response() {
    let b = connect_resp(Some(true));
    assert_eq!(b.len(), 37);
    let c = ConnectResponse::decode(&b).unwrap();
    assert_eq!(
        c,
        ConnectResponse {
            protocol_version: 0,
            timeout: 20_000,
            session_id: SESSION,
            passwd: Some(&[7; 16]),
            read_only: Some(true)
        }
    );
    assert!(!c.is_expired());
    assert!(ConnectResponse::looks_like(&b));
    let b = connect_resp(None);
    assert_eq!(b.len(), 36);
    assert_eq!(ConnectResponse::decode(&b).unwrap().read_only, None);
    assert!(ConnectResponse::looks_like(&b));
    for b in [
        get_data_rep(),
        ping_rep(),
        event_34_rep(),
        connect_req(Some(false)),
    ] {
        assert!(!ConnectResponse::looks_like(&b));
    }
    // Expired session: timeout 0, session 0, zero passwd.
    let b = Enc::new().i32(0).i32(0).i64(0).buf(Some(&[0; 16])).build();
    assert!(ConnectResponse::decode(&b).unwrap().is_expired());
    assert!(ConnectResponse::looks_like(&b));
}

#[test]
fn header_decoders() {
    let h = ReplyHeader::decode(&get_data_rep()).unwrap();
    assert_eq!(
        h,
        ReplyHeader {
            xid: 7,
            zxid: 0x104,
            err: ErrCode::OK
        }
    );
    let e = ReplyHeader::decode(&[0; 15]).unwrap_err();
    assert_eq!(
        (e.kind, e.field, e.offset),
        (ErrorKind::Truncated, "err", 12)
    );
}

#[test]
fn prefix_decoders_read_what_was_captured() {
    let req = connect_req(Some(true));
    let whole = ConnectRequest::decode(&req).unwrap();
    assert_eq!(ConnectRequest::decode_prefix(&req), whole);
    for n in 0..req.len() {
        let p = ConnectRequest::decode_prefix(&req[..n]);
        // A field is either whole and right, or 0.
        assert!(p.timeout == whole.timeout || p.timeout == 0, "{n}");
        assert!(p.session_id == whole.session_id || p.session_id == 0, "{n}");
        // Only the optional readOnly byte may be missing for passwd to be read.
        assert_eq!(p.passwd.is_some(), n >= 44, "{n}");
    }
    let resp = connect_resp(None);
    let whole = ConnectResponse::decode(&resp).unwrap();
    assert_eq!(ConnectResponse::decode_prefix(&resp), whole);
    for n in 0..resp.len() {
        let p = ConnectResponse::decode_prefix(&resp[..n]);
        assert!(p.session_id == whole.session_id || p.session_id == 0, "{n}");
    }
    let ev = event_34_rep();
    let (h, e) = decode_event(&ev).unwrap();
    assert_eq!(decode_event_prefix(&ev).unwrap(), (h, e));
    assert!(decode_event_prefix(&ev[..3]).is_err());
    for n in 4..ev.len() {
        let (ph, pe) = decode_event_prefix(&ev[..n]).unwrap();
        assert_eq!(ph.xid, -1);
        // the zxid is whole at 12 bytes, otherwise said not captured (never a made-up 0)
        if n >= 12 {
            assert_eq!(ph.zxid, h.zxid, "{n}");
        } else {
            assert_eq!(ph.zxid, ReplyHeader::ZXID_NOT_CAPTURED, "{n}");
            assert!(!ph.zxid_captured());
        }
        assert!(pe.event_type == e.event_type || pe.event_type.0 == 0, "{n}");
        assert!(pe.path.is_none(), "{n}");
    }
}

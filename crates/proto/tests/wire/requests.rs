//! One test per request opcode.

use crate::enc::Enc;
use crate::frames::*;
use zkscope_proto::jute::ErrorKind;
use zkscope_proto::*;

fn req(b: &[u8]) -> Request<'_> {
    decode_request(b).unwrap_or_else(|e| panic!("{e}"))
}

fn strs<'a>(v: &Strings<'a>) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn create() {
    let b = create_req();
    let r = req(&b);
    assert_eq!(
        r.header,
        RequestHeader {
            xid: 1,
            opcode: OpCode::CREATE
        }
    );
    assert_eq!(r.trailing, 0);
    let RequestBody::Create {
        path,
        data,
        acl,
        mode,
        ttl,
    } = r.body
    else {
        panic!("{r:?}")
    };
    assert_eq!(path, "/app");
    assert_eq!(data.bytes(), Some(&b"hello"[..]));
    assert_eq!(mode, CreateMode::PERSISTENT);
    assert_eq!(ttl, None);
    let acls: Vec<_> = acl.iter().collect();
    assert_eq!(acls.len(), 1);
    assert_eq!(acls[0].perms, Perms(31));
    assert_eq!(acls[0].perms.to_string(), "cdrwa");
    assert_eq!(acls[0].scheme, "world");
    assert_eq!(acls[0].id, "anyone");
    assert_eq!(r.body.path().unwrap(), "/app");
    assert_eq!(r.body.watch(), None);
}

#[test]
fn create_null_data_empty_acl() {
    let b = create_null_data_req();
    let RequestBody::Create {
        data, acl, mode, ..
    } = req(&b).body
    else {
        panic!()
    };
    assert_eq!(data, Data(None));
    assert!(acl.is_empty() && !acl.is_null());
    assert!(mode.is_ephemeral());
}

#[test]
fn create2_sequential() {
    let b = create2_req();
    let r = req(&b);
    assert_eq!(r.header.opcode.name(), Some("create2"));
    let RequestBody::Create { mode, data, .. } = r.body else {
        panic!()
    };
    assert_eq!(mode.name(), Some("EPHEMERAL_SEQUENTIAL"));
    assert!(mode.is_sequential() && mode.is_ephemeral());
    assert_eq!(data.len(), Some(0));
}

#[test]
fn create_container() {
    let b = create_container_req();
    let r = req(&b);
    assert_eq!(r.header.opcode, OpCode::CREATE_CONTAINER);
    let RequestBody::Create { mode, ttl, .. } = r.body else {
        panic!()
    };
    assert!(mode.is_container());
    assert_eq!(ttl, None);
}

#[test]
fn create_ttl() {
    let b = create_ttl_req();
    let r = req(&b);
    assert_eq!(r.header.opcode.name(), Some("createTTL"));
    let RequestBody::Create {
        path, mode, ttl, ..
    } = r.body
    else {
        panic!()
    };
    assert_eq!(path, "/t");
    assert_eq!(mode, CreateMode::PERSISTENT_WITH_TTL);
    assert_eq!(ttl, Some(60_000));
    // Without the ttl field the record is truncated.
    let e = decode_request(&b[..b.len() - 8]).unwrap_err();
    assert_eq!((e.kind, e.field), (ErrorKind::Truncated, "ttl"));
}

#[test]
fn delete() {
    let b = delete_req();
    assert_eq!(
        req(&b).body,
        RequestBody::Delete {
            path: JStr(b"/app"),
            version: -1
        }
    );
}

#[test]
fn exists_get_data_get_children() {
    for (b, op, watch) in [
        (exists_req(), OpCode::EXISTS, true),
        (get_data_req(), OpCode::GET_DATA, false),
        (get_children_req(), OpCode::GET_CHILDREN, true),
        (get_children2_req(), OpCode::GET_CHILDREN2, true),
    ] {
        let r = req(&b);
        assert_eq!(r.header.opcode, op);
        assert!(op.has_watch_flag());
        assert_eq!(r.body.watch(), Some(watch));
        assert!(matches!(r.body, RequestBody::PathWatch { .. }));
    }
}

#[test]
fn set_data() {
    let b = set_data_req();
    assert_eq!(
        req(&b).body,
        RequestBody::SetData {
            path: JStr(b"/app"),
            data: Data(Some(b"world!")),
            version: 3
        }
    );
}

#[test]
fn get_acl_sync_get_all_children_number() {
    assert_eq!(
        req(&get_acl_req()).body,
        RequestBody::GetAcl {
            path: JStr(b"/app")
        }
    );
    assert_eq!(
        req(&sync_req()).body,
        RequestBody::Sync {
            path: JStr(b"/app")
        }
    );
    assert_eq!(
        req(&get_all_children_number_req()).body,
        RequestBody::GetAllChildrenNumber {
            path: JStr(b"/app")
        }
    );
}

#[test]
fn set_acl() {
    let b = set_acl_req();
    let RequestBody::SetAcl { path, acl, version } = req(&b).body else {
        panic!()
    };
    assert_eq!((path, version), (JStr(b"/app"), 2));
    let v: Vec<_> = acl
        .iter()
        .map(|a| (a.perms.to_string(), a.scheme.to_string(), a.id.to_string()))
        .collect();
    assert_eq!(
        v,
        [
            ("r".into(), "digest".into(), "bob:abc=".into()),
            ("cr".into(), "ip".into(), "10.0.0.0/8".into())
        ]
    );
}

#[test]
fn ping_close_who_am_i_are_empty() {
    let b = ping_req();
    let r = req(&b);
    assert_eq!(r.header.xid, PING_XID);
    assert_eq!(r.body, RequestBody::Empty);
    assert_eq!(req(&close_session_req()).body, RequestBody::Empty);
    assert_eq!(
        req(&close_session_req()).header.opcode.request_type(),
        "CloseRequest"
    );
    assert_eq!(req(&who_am_i_req()).body, RequestBody::Empty);
}

#[test]
fn check() {
    assert_eq!(
        req(&check_req()).body,
        RequestBody::Check {
            path: JStr(b"/app"),
            version: 4
        }
    );
}

#[test]
fn multi() {
    let b = multi_req();
    let r = req(&b);
    assert_eq!(r.trailing, 0);
    let RequestBody::Multi(ops) = r.body else {
        panic!()
    };
    assert_eq!(ops.len(), 5);
    let v: Vec<_> = ops.iter().collect();
    assert_eq!(
        v.iter().map(|o| o.op.0).collect::<Vec<_>>(),
        [1, 21, 5, 2, 13]
    );
    assert!(matches!(v[0].body, RequestBody::Create { ttl: None, .. }));
    assert!(matches!(
        v[1].body,
        RequestBody::Create {
            ttl: Some(5_000),
            mode: CreateMode::PERSISTENT_SEQUENTIAL_WITH_TTL,
            data: Data(None),
            ..
        }
    ));
    assert_eq!(
        v[2].body,
        RequestBody::SetData {
            path: JStr(b"/m/b"),
            data: Data(Some(b"22")),
            version: -1
        }
    );
    assert_eq!(
        v[3].body,
        RequestBody::Delete {
            path: JStr(b"/m/c"),
            version: 7
        }
    );
    assert_eq!(
        v[4].body,
        RequestBody::Check {
            path: JStr(b"/m"),
            version: 0
        }
    );
    assert_eq!(r.body.path(), None);

    let b = multi_empty_req();
    let RequestBody::Multi(ops) = req(&b).body else {
        panic!()
    };
    assert!(ops.is_empty());
}

#[test]
fn multi_read() {
    let b = multi_read_req();
    let r = req(&b);
    assert_eq!(r.header.opcode.name(), Some("multiRead"));
    let RequestBody::Multi(ops) = r.body else {
        panic!()
    };
    let v: Vec<_> = ops
        .iter()
        .map(|o| (o.op, o.body.path().unwrap().to_string()))
        .collect();
    assert_eq!(
        v,
        [
            (OpCode::GET_CHILDREN, "/r".into()),
            (OpCode::GET_DATA, "/r/x".into())
        ]
    );
}

#[test]
fn multi_rejects_bad_sub_ops_and_missing_terminator() {
    // A ping inside a multi is not a MultiOperationRecord op.
    let b = Enc::req(1, 14).mh(11, -1).done().build();
    let e = decode_request(&b).unwrap_err();
    assert_eq!(
        (e.kind, e.field, e.offset),
        (ErrorKind::Invalid, "MultiHeader.type", 8)
    );
    // Nested multi likewise.
    let b = Enc::req(1, 14).mh(14, -1).done().done().build();
    assert_eq!(decode_request(&b).unwrap_err().kind, ErrorKind::Invalid);
    // No done header: truncated.
    let b = Enc::req(1, 14).mh(2, -1).s("/a").i32(1).build();
    assert_eq!(decode_request(&b).unwrap_err().kind, ErrorKind::Truncated);
}

#[test]
fn multi_op_cap() {
    let mut e = Enc::req(1, 14);
    for _ in 0..=MAX_MULTI_OPS {
        e = e.mh(2, -1).s("").i32(0);
    }
    let b = e.done().build();
    let e = decode_request(&b).unwrap_err();
    assert_eq!((e.kind, e.field), (ErrorKind::Invalid, "ops"));
    // Exactly the cap is fine.
    let b = [&b[..b.len() - 26], &Enc::new().done().build()[..]].concat();
    let RequestBody::Multi(ops) = req(&b).body else {
        panic!()
    };
    assert_eq!(ops.len(), MAX_MULTI_OPS);
}

#[test]
fn reconfig() {
    let b = reconfig_req();
    assert_eq!(
        req(&b).body,
        RequestBody::Reconfig {
            joining: Some(JStr(b"server.4=h4:2888:3888;2181")),
            leaving: None,
            new_members: None,
            cur_config_id: -1
        }
    );
}

#[test]
fn check_and_remove_watches() {
    let b = check_watches_req();
    let r = req(&b);
    assert_eq!(
        r.body,
        RequestBody::CheckWatches {
            path: JStr(b"/w"),
            watcher_type: WatcherType::DATA
        }
    );
    let b = remove_watches_req();
    let RequestBody::RemoveWatches { watcher_type, .. } = req(&b).body else {
        panic!()
    };
    assert_eq!(watcher_type.name(), Some("PersistentRecursive"));
}

#[test]
fn delete_container_both_forms() {
    for b in [delete_container_raw_req(), delete_container_buf_req()] {
        let r = req(&b);
        assert_eq!(r.body, RequestBody::DeleteContainer { path: JStr(b"/c") });
        assert_eq!(r.trailing, 0);
    }
}

#[test]
fn auth_is_redacted() {
    let b = auth_req();
    let r = req(&b);
    assert_eq!(r.header.xid, AUTH_XID);
    assert_eq!(r.header.opcode.request_type(), "SetAuthRequest");
    let RequestBody::Auth {
        auth_type,
        scheme,
        credential,
    } = r.body
    else {
        panic!()
    };
    assert_eq!((auth_type, scheme), (0, JStr(b"digest")));
    assert_eq!(credential.raw, b"alice:s3cret");
    assert!(credential.redact);
    assert_eq!(credential.to_string(), "alice:***");
    assert!(!format!("{r:?}").contains("s3cret"));
    let json = serde_json::to_string(&r).unwrap();
    assert!(!json.contains("s3cret"), "{json}");
    // Non-digest schemes hide everything.
    let b = Enc::req(-4, 100)
        .i32(0)
        .s("ip")
        .buf(Some(b"1.2.3.4"))
        .build();
    let RequestBody::Auth { credential, .. } = req(&b).body else {
        panic!()
    };
    assert_eq!(credential.to_string(), "***");
    // Opting out shows the text.
    let shown = Credential {
        redact: false,
        ..credential
    };
    assert_eq!(shown.to_string(), "1.2.3.4");
}

#[test]
fn set_watches() {
    let b = set_watches_req();
    let r = req(&b);
    assert_eq!(r.header.xid, SET_WATCHES_XID);
    let RequestBody::SetWatches {
        relative_zxid,
        data,
        exist,
        child,
        persistent,
        persistent_recursive,
    } = r.body
    else {
        panic!()
    };
    assert_eq!(relative_zxid, 0x1_0000_0005);
    assert_eq!(strs(&data), ["/d1", "/d2"]);
    assert_eq!(strs(&exist), ["/e"]);
    assert!(child.is_empty());
    assert_eq!((persistent, persistent_recursive), (None, None));
}

#[test]
fn set_watches2() {
    let b = set_watches2_req();
    let r = req(&b);
    assert_eq!(r.header.opcode.request_type(), "SetWatches2Request");
    let RequestBody::SetWatches {
        data,
        exist,
        child,
        persistent,
        persistent_recursive,
        ..
    } = r.body
    else {
        panic!()
    };
    assert_eq!(strs(&data), ["/d"]);
    assert!(exist.is_empty());
    assert_eq!(strs(&child), ["/c"]);
    assert_eq!(strs(&persistent.unwrap()), ["/p"]);
    assert_eq!(strs(&persistent_recursive.unwrap()), ["/pr1", "/pr2"]);
    // setWatches2 requires the two persistent lists.
    let short = &b[..b.len() - 4 - 8 - 8 - 4 - 6];
    assert!(decode_request(short).unwrap_err().is_truncated());
}

#[test]
fn sasl_get_ephemerals_add_watch() {
    assert_eq!(
        req(&sasl_req()).body,
        RequestBody::Sasl {
            token: Data(Some(&[0x60, 0x82, 1, 2, 3]))
        }
    );
    let b = get_ephemerals_req();
    let r = req(&b);
    assert_eq!(
        r.body,
        RequestBody::GetEphemerals {
            prefix: JStr(b"/eph")
        }
    );
    assert_eq!(r.body.path().unwrap(), "/eph");
    let b = add_watch_req();
    assert_eq!(
        req(&b).body,
        RequestBody::AddWatch {
            path: JStr(b"/tree"),
            mode: AddWatchMode::PERSISTENT_RECURSIVE
        }
    );
}

#[test]
fn unknown_opcode_is_kept() {
    let b = unknown_555_req();
    let r = req(&b);
    assert_eq!(r.header.opcode, OpCode(555));
    assert_eq!(r.header.opcode.name(), None);
    assert_eq!(r.header.opcode.request_type(), "UnknownRequest");
    assert_eq!(r.body, RequestBody::Unknown { len: b.len() - 8 });
    assert_eq!(r.trailing, 0);
    // Header-only unknown request.
    assert_eq!(
        req(&Enc::req(1, 555).build()).body,
        RequestBody::Unknown { len: 0 }
    );
}

#[test]
fn trailing_bytes_are_tolerated() {
    let mut b = get_data_req();
    b.extend_from_slice(b"junk");
    let r = req(&b);
    assert_eq!(r.trailing, 4);
    assert!(matches!(r.body, RequestBody::PathWatch { .. }));
    let mut b = ping_req();
    b.push(0);
    assert_eq!(req(&b).trailing, 1);
}

#[test]
fn bad_lengths() {
    // Negative path length other than -1.
    let b = Enc::req(1, 4).i32(-2).bool(false).build();
    let e = decode_request(&b).unwrap_err();
    assert_eq!(
        (e.kind, e.field, e.offset),
        (ErrorKind::NegativeLength, "path", 8)
    );
    // Null path reads as empty.
    let b = Enc::req(1, 4).null().bool(true).build();
    assert_eq!(req(&b).body.path(), Some(JStr(b"")));
    // Huge ACL count.
    let b = Enc::req(1, 1).s("/a").buf(None).i32(i32::MAX).build();
    let e = decode_request(&b).unwrap_err();
    assert_eq!((e.kind, e.field), (ErrorKind::Truncated, "acl"));
    assert_eq!(e.to_string(), "truncated at byte 18 reading `acl`");
}

#[test]
fn header_only_decoders() {
    let h = RequestHeader::decode(&get_data_req()).unwrap();
    assert_eq!(
        h,
        RequestHeader {
            xid: 7,
            opcode: OpCode::GET_DATA
        }
    );
    assert!(RequestHeader::decode(&[0; 7]).unwrap_err().is_truncated());
}

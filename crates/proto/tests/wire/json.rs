//! Pinned JSON shapes (the output layer relies on them).

use serde_json::{json, Value};

use crate::frames::*;
use zkscope_proto::*;

fn req_body(b: &[u8]) -> Value {
    serde_json::to_value(decode_request(b).unwrap().body).unwrap()
}

fn rep_body(b: &[u8], op: i32) -> Value {
    serde_json::to_value(decode_reply(b, Some(OpCode(op))).unwrap().body).unwrap()
}

#[test]
fn request_bodies() {
    assert_eq!(
        req_body(&exists_req()),
        json!({"path": "/app", "watch": true})
    );
    assert_eq!(
        req_body(&create_ttl_req()),
        json!({
            "path": "/t", "data_len": 3,
            "acl": [{"perms": 31, "perms_str": "cdrwa", "scheme": "world", "id": "anyone"}],
            "mode": "PERSISTENT_WITH_TTL", "flags": 5, "ttl": 60000
        })
    );
    assert_eq!(
        req_body(&create_null_data_req()),
        json!({"path": "/n", "data_len": null, "acl": [], "mode": "EPHEMERAL", "flags": 1, "ttl": null})
    );
    assert_eq!(
        req_body(&set_data_req()),
        json!({"path": "/app", "data_len": 6, "version": 3})
    );
    assert_eq!(
        req_body(&set_watches2_req()),
        json!({
            "relative_zxid": 0x1_0000_0009i64, "data_watches": ["/d"], "exist_watches": [],
            "child_watches": ["/c"], "persistent_watches": ["/p"],
            "persistent_recursive_watches": ["/pr1", "/pr2"]
        })
    );
    assert!(req_body(&set_watches_req())
        .get("persistent_watches")
        .is_none());
    assert_eq!(
        req_body(&auth_req()),
        json!({"auth_type": 0, "scheme": "digest", "credential": "alice:***"})
    );
    assert_eq!(
        req_body(&remove_watches_req()),
        json!({"path": "/w", "watcher_type": "PersistentRecursive", "watcher_type_code": 5})
    );
    assert_eq!(
        req_body(&add_watch_req()),
        json!({"path": "/tree", "mode": "PERSISTENT_RECURSIVE", "mode_code": 1})
    );
    assert_eq!(
        req_body(&reconfig_req()),
        json!({"joining": "server.4=h4:2888:3888;2181", "leaving": null, "new_members": null, "cur_config_id": -1})
    );
    assert_eq!(req_body(&ping_req()), json!({}));
    assert_eq!(req_body(&unknown_555_req()), json!({"body_len": 19}));
    assert_eq!(req_body(&sasl_req()), json!({"token_len": 5}));
}

#[test]
fn multi_request() {
    let v = req_body(&multi_read_req());
    assert_eq!(
        v,
        json!({"ops": [
            {"opcode": 8, "op": "getChildren", "type": "GetChildrenRequest", "path": "/r", "watch": false},
            {"opcode": 4, "op": "getData", "type": "GetDataRequest", "path": "/r/x", "watch": false}
        ]})
    );
    let v = req_body(&multi_req());
    assert_eq!(v["ops"][1]["type"], "CreateTTLRequest");
    assert_eq!(v["ops"][1]["ttl"], 5000);
    assert_eq!(
        v["ops"][4],
        json!({"opcode": 13, "op": "check", "type": "CheckRequest", "path": "/m", "version": 0})
    );
}

#[test]
fn whole_request_and_reply() {
    let v = serde_json::to_value(decode_request(&get_data_req()).unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"xid": 7, "opcode": 4, "op": "getData", "type": "GetDataRequest", "path": "/app", "watch": false})
    );
    let v = serde_json::to_value(decode_reply(&exists_nonode_rep(), Some(OpCode::EXISTS)).unwrap())
        .unwrap();
    assert_eq!(
        v,
        json!({"xid": 6, "zxid": 0x104, "err": -101, "err_name": "NONODE"})
    );
    let v = serde_json::to_value(decode_request(&unknown_555_req()).unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"xid": 28, "opcode": 555, "op": null, "type": "UnknownRequest", "body_len": 19})
    );
}

#[test]
fn reply_bodies() {
    assert_eq!(
        rep_body(&create_ttl_rep(), 21),
        json!({
            "created_path": "/t",
            "stat": {
                "czxid": 301, "czxid_hex": "0x12d", "mzxid": 302, "mzxid_hex": "0x12e",
                "ctime": 303, "mtime": 304, "version": 305,
                "cversion": 306, "aversion": 307, "ephemeral_owner": "0xff0000000000ea60",
                "ephemeral_type": "ttl", "ttl_ms": 60000, "data_length": 309,
                "num_children": 310, "pzxid": 311, "pzxid_hex": "0x137"
            }
        })
    );
    let v = rep_body(&create2_rep(), 15);
    assert_eq!(v["stat"]["ephemeral_owner"], "0x100000000000042");
    assert_eq!(v["stat"]["ephemeral_type"], "session");
    assert_eq!(rep_body(&create_rep(), 1), json!({"created_path": "/app"}));
    assert_eq!(rep_body(&get_data_rep(), 4)["data_len"], 5);
    assert_eq!(
        rep_body(&get_children_rep(), 8),
        json!({"children": ["app", "zookeeper"]})
    );
    assert_eq!(
        rep_body(&get_all_children_number_rep(), 104),
        json!({"total": 42})
    );
    assert_eq!(
        rep_body(&who_am_i_rep(), 107),
        json!({"clients": [{"auth_scheme": "ip", "user": "127.0.0.1"}, {"auth_scheme": "digest", "user": "alice"}]})
    );
    assert_eq!(
        rep_body(&add_watch_rep(), 106),
        json!({"result_err": 0, "result_err_name": "OK"})
    );
    assert_eq!(rep_body(&unknown_555_rep(), 555), json!({"body_len": 12}));
    assert_eq!(rep_body(&delete_rep(), 2), json!({}));
    assert_eq!(
        rep_body(&get_acl_rep(), 6)["acl"][1],
        json!({"perms": 3, "perms_str": "rw", "scheme": "auth", "id": ""})
    );
}

#[test]
fn multi_replies() {
    let v = rep_body(&multi_failed_rep(), 14);
    assert_eq!(
        v["ops"][1],
        json!({"opcode": -1, "op": "error", "type": "ErrorReply", "err": -103, "err_name": "BADVERSION"})
    );
    assert_eq!(v["ops"][3]["err_name"], "RUNTIMEINCONSISTENCY");
    let v = rep_body(&multi_rep(), 14);
    assert_eq!(
        v["ops"][0],
        json!({"opcode": 1, "op": "create", "type": "CreateReply", "err": 0, "err_name": "OK", "created_path": "/m/a"})
    );
    assert_eq!(v["ops"][1]["stat"]["ephemeral_type"], "ttl");
}

#[test]
fn events_and_handshake() {
    let b = event_34_rep();
    let (_, ev) = decode_event(&b).unwrap();
    assert_eq!(
        serde_json::to_value(ev).unwrap(),
        json!({"event_type": "NodeDataChanged", "event_type_code": 3, "state": "SyncConnected", "state_code": 3, "path": "/app"})
    );
    let b = event_39_rep();
    let r = decode_reply(&b, None).unwrap();
    let v = serde_json::to_value(r).unwrap();
    assert_eq!(v["zxid"], 0x3_0000_0010i64);
    assert_eq!(v["event_type"], "NodeChildrenChanged");

    let b = connect_req(None);
    assert_eq!(
        serde_json::to_value(ConnectRequest::decode(&b).unwrap()).unwrap(),
        json!({"protocol_version": 0, "last_zxid_seen": 0x1_0000_0004i64, "timeout": 30000, "session_id": "0x0", "passwd_len": 16, "read_only": null})
    );
    let b = connect_resp(Some(true));
    assert_eq!(
        serde_json::to_value(ConnectResponse::decode(&b).unwrap()).unwrap(),
        json!({"protocol_version": 0, "timeout": 20000, "session_id": "0x100000000000042", "passwd_len": 16, "read_only": true})
    );
}

#[test]
fn decode_error_json_and_display() {
    let e = decode_request(&get_data_req()[..10]).unwrap_err();
    assert_eq!(e.to_string(), "truncated at byte 8 reading `path`");
    assert_eq!(
        serde_json::to_value(e).unwrap(),
        json!({"kind": "truncated", "field": "path", "offset": 8})
    );
}

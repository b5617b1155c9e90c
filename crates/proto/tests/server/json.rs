//! JSON shape: flat maps with the documented keys, never a duplicate key.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Value};
use zkscope_proto::election::{decode_initial, decode_notification, parse_config, Status};
use zkscope_proto::quorum::decode_packet;

use crate::frames::{corpus, Kind, CONFIG};

/// Deserialises any JSON, failing on a map with a repeated key.
struct NoDup;

impl<'de> Deserialize<'de> for NoDup {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NoDup;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("json")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<NoDup, A::Error> {
                let mut seen = HashSet::new();
                while let Some(k) = m.next_key::<String>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom(format!("duplicate key {k}")));
                    }
                    m.next_value::<NoDup>()?;
                }
                Ok(NoDup)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<NoDup, A::Error> {
                while s.next_element::<NoDup>()?.is_some() {}
                Ok(NoDup)
            }
            fn visit_bool<E>(self, _: bool) -> Result<NoDup, E> {
                Ok(NoDup)
            }
            fn visit_i64<E>(self, _: i64) -> Result<NoDup, E> {
                Ok(NoDup)
            }
            fn visit_u64<E>(self, _: u64) -> Result<NoDup, E> {
                Ok(NoDup)
            }
            fn visit_f64<E>(self, _: f64) -> Result<NoDup, E> {
                Ok(NoDup)
            }
            fn visit_str<E>(self, _: &str) -> Result<NoDup, E> {
                Ok(NoDup)
            }
            fn visit_unit<E>(self) -> Result<NoDup, E> {
                Ok(NoDup)
            }
        }
        d.deserialize_any(V)
    }
}

fn to_json(c: &crate::frames::Case) -> String {
    match c.kind {
        Kind::Packet { from_leader } => {
            let Status::Complete((_, p)) = decode_packet(&c.bytes) else {
                panic!()
            };
            serde_json::to_string(&p.directed(from_leader)).unwrap()
        }
        Kind::Initial => {
            let Status::Complete((_, m)) = decode_initial(&c.bytes) else {
                panic!()
            };
            serde_json::to_string(&m).unwrap()
        }
        Kind::QuorumAuth => {
            let Status::Complete((_, m)) = zkscope_proto::election::decode_quorum_auth(&c.bytes)
            else {
                panic!()
            };
            serde_json::to_string(&m).unwrap()
        }
        Kind::Notification => {
            serde_json::to_string(&decode_notification(&c.bytes).unwrap()).unwrap()
        }
    }
}

fn get(name: &str) -> Value {
    let c = corpus().into_iter().find(|c| c.name == name).unwrap();
    serde_json::from_str(&to_json(&c)).unwrap()
}

#[test]
fn no_duplicate_keys() {
    for c in corpus() {
        let s = to_json(&c);
        if let Err(e) = serde_json::from_str::<NoDup>(&s) {
            panic!("{}: {e}: {s}", c.name);
        }
    }
}

fn has(v: &Value, keys: &[&str]) {
    for k in keys {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
}

#[test]
fn packet_fields() {
    let v = get("request_create");
    assert_eq!(v["type"], "Request");
    assert_eq!(v["type_code"], 1);
    assert_eq!(v["zxid"], -1);
    assert_eq!(v["zxid_hex"], "0xffffffffffffffff");
    assert_eq!(v["session"], "0x1001df405af0000");
    assert_eq!(v["op"], "create");
    assert_eq!(v["req_type"], 1);
    assert_eq!(v["path"], "/foo");
    assert_eq!(v["payload_len"], 62);
    assert_eq!(
        v["authinfo"],
        json!([{"scheme":"ip","id":"127.0.0.1"},{"scheme":"digest","id":"u:h"}])
    );

    let v = get("request_create_session");
    assert_eq!(
        (v["op"].clone(), v["timeout"].clone()),
        (json!("createSession"), json!(10000))
    );
    assert!(v.get("authinfo").is_none());

    let v = get("proposal_create_digest");
    has(
        &v,
        &[
            "session",
            "cxid",
            "txn_zxid",
            "txn_zxid_hex",
            "time",
            "txn_type",
            "txn_op",
            "path",
            "data_len",
            "acl",
            "ephemeral",
            "parent_cversion",
        ],
    );
    assert_eq!(v["type"], "Proposal");
    assert_eq!(v["zxid_hex"], "0x100000002");
    assert_eq!(v["zxid_epoch"], 1);
    assert_eq!(v["zxid_counter"], 2);
    assert_eq!(v["txn_op"], "create");
    assert_eq!(
        v["digest"],
        json!({"version": 2, "tree_digest": 0x0123_4567_89ab_cdefi64})
    );

    let v = get("proposal_multi_digest");
    let txns = v["txns"].as_array().unwrap();
    assert_eq!(txns.len(), 7);
    assert_eq!(
        txns[4],
        json!({"txn_type": -1, "txn_op": "error", "err": -101, "err_name": "NONODE"})
    );
    assert_eq!(txns[0]["path"], "/m1");

    let v = get("proposal_close_session_paths");
    assert_eq!(v["paths"], json!(["/a/b/c/d/e", "/x"]));
    assert_eq!(
        get("proposal_close_session_digest_only")["paths"],
        Value::Null
    );

    let v = get("inform_reconfig");
    assert_eq!(v["type"], "Inform");
    assert_eq!(v["config_version"], 0x1_0000_0000i64);
    assert_eq!(v["config_servers"].as_array().unwrap().len(), 3);

    let v = get("informandactivate");
    assert_eq!(v["designated_leader"], 3);
    assert_eq!(v["txn_op"], "reconfig");
    assert_eq!(get("commitandactivate")["designated_leader"], 3);

    let v = get("newleader_config");
    assert_eq!(v["config"], CONFIG);
    assert_eq!(
        v["config_servers"][2]["secure_client"],
        json!({"host": "::1", "port": 2281})
    );
    assert_eq!(v["config_servers"][2]["role"], "observer");
    assert_eq!(
        v["config_servers"][0]["addrs"],
        json!([{"host": "localhost", "quorum_port": 2780, "election_port": 2783}])
    );
    let v = get("newleader_null");
    assert_eq!(
        (v["config"].clone(), v["config_servers"].clone()),
        (Value::Null, Value::Null)
    );

    let v = get("followerinfo_35");
    assert_eq!(
        (
            v["sid"].clone(),
            v["protocol_version"].clone(),
            v["config_version"].clone()
        ),
        (json!(2), json!(65536), json!(1i64 << 32))
    );
    assert_eq!(get("observerinfo_34")["config_version"], Value::Null);
    assert_eq!(get("leaderinfo")["protocol_version"], 65536);
    assert_eq!(get("ackepoch")["epoch"], -1);
    assert_eq!(get("ping_leader")["sessions"], Value::Null);
    assert_eq!(
        get("ping_learner")["sessions"],
        json!([{"session": "0x1001df405af0000", "timeout": 30000}, {"session": "0x1001df405af0001", "timeout": 10000}])
    );
    assert_eq!(get("revalidate_reply")["valid"], true);
    assert_eq!(get("revalidate_request")["timeout"], 10000);
    assert_eq!(get("unknown_type")["type"], Value::Null);
    assert_eq!(get("unknown_type")["body_len"], 5);
    assert_eq!(get("uptodate")["type"], "UpToDate");
}

#[test]
fn body_error_is_reported() {
    let b = crate::enc::packet(2, 1, Some(&[0; 10]), None);
    let Status::Complete((_, p)) = decode_packet(&b) else {
        panic!()
    };
    let v = serde_json::to_value(p).unwrap();
    assert_eq!(v["body_error"], "truncated at byte 0 reading `TxnHeader`");
}

#[test]
fn election_fields() {
    let v = get("notification_v2_config");
    has(
        &v,
        &[
            "state",
            "state_code",
            "leader",
            "zxid",
            "zxid_hex",
            "zxid_epoch",
            "zxid_counter",
            "election_epoch",
            "peer_epoch",
            "version",
            "config",
            "config_servers",
            "config_version",
        ],
    );
    assert_eq!(v["state"], "FOLLOWING");
    assert_eq!(v["zxid"], 0x1_0000_2000i64);
    assert_eq!(v["zxid_hex"], "0x100002000");
    assert_eq!(v["config_version"], 0x1_0000_0000i64);
    assert_eq!(v["config"], CONFIG);
    let v = get("notification_28");
    assert_eq!(
        (
            v["version"].clone(),
            v["config"].clone(),
            v["peer_epoch_derived"].clone()
        ),
        (Value::Null, Value::Null, json!(true))
    );
    assert_eq!(get("notification_40")["version_ignored"], true);

    assert_eq!(
        get("initial_v1"),
        json!({"format": "v1", "protocol_version": -65536, "sid": 6, "addresses": ["127.0.0.1:3888"]})
    );
    assert_eq!(
        get("initial_34"),
        json!({"format": "3.4", "protocol_version": null, "sid": 3, "addresses": []})
    );
    assert_eq!(
        get("initial_v2")["addresses"],
        json!(["10.0.0.1:3888", "[::1]:3888"])
    );
    assert_eq!(
        get("quorum_auth"),
        json!({"status": "IN_PROGRESS", "status_code": 0, "token_len": 5})
    );

    let lines: Vec<Value> = parse_config("version=a\ngroup.1=1:2\nweight.2=3\nfoo\nserver.1=x")
        .map(|l| serde_json::to_value(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"kind": "version", "version": 10, "version_hex": "0xa"}),
            json!({"kind": "group", "gid": 1, "members": [1, 2]}),
            json!({"kind": "weight", "sid": 2, "weight": 3}),
            json!({"kind": "other", "line": "foo"}),
            json!({"kind": "invalid", "line": "server.1=x"}),
        ]
    );
}

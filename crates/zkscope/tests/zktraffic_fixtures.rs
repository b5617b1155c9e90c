//! zktraffic's own test captures (fixtures/zktraffic/), decoded as they really are.
//!
//! zktraffic is not the oracle: where its bugs bite (one message per segment, xid 0/1 read as a
//! ConnectRequest, 4lw ignored) the expectations here follow the bytes, as recorded in
//! fixtures/zktraffic/README.md and docs/zktraffic.md §7.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../fixtures/zktraffic/{name}.pcap"))
}

/// Runs `zkscope dump -r <fixture> --format json <extra>` and returns the messages and stderr.
fn dump(name: &str, extra: &[&str]) -> (Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(["dump", "-r"])
        .arg(fixture(name))
        .args(["--format", "json"])
        .args(extra)
        .output()
        .expect("run zkscope");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "zkscope failed on {name}:\n{stderr}");
    let msgs = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    (msgs, stderr)
}

fn s<'a>(m: &'a Value, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Counts messages by `type`.
fn by_type(msgs: &[Value]) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for m in msgs {
        *c.entry(s(m, "type").to_string()).or_default() += 1;
    }
    c
}

/// Counts requests by (type, path).
fn requests_by_path(msgs: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut c = BTreeMap::new();
    for m in msgs.iter().filter(|m| s(m, "dir") == "request") {
        *c.entry((s(m, "type").to_string(), s(m, "path").to_string()))
            .or_default() += 1;
    }
    c
}

fn of_type<'a>(msgs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    msgs.iter().filter(|m| s(m, "type") == ty).collect()
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Every reply paired with a request has the request's opcode and a latency.
fn assert_paired(msgs: &[Value]) {
    for m in msgs
        .iter()
        .filter(|m| s(m, "dir") == "reply" && s(m, "type") != "ConnectReply")
    {
        assert!(m["opcode"].is_i64(), "unpaired reply {m}");
        assert!(m["latency_us"].as_f64().is_some_and(|l| l >= 0.0), "{m}");
    }
}

fn summary_count(stderr: &str, label: &str) -> u64 {
    // e.g. "problems    0 undecodable frames, …": the number before `label`.
    let i = stderr
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {stderr}"));
    stderr[..i]
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count before {label:?}"))
}

fn assert_clean(stderr: &str) {
    assert_eq!(summary_count(stderr, "undecodable frames"), 0, "{stderr}");
    assert_eq!(summary_count(stderr, "bad length prefixes"), 0, "{stderr}");
    assert_eq!(summary_count(stderr, "bytes skipped"), 0, "{stderr}");
}

#[test]
fn dump_pcap() {
    let (msgs, err) = dump("dump", &[]);
    assert_clean(&err);
    assert_paired(&msgs);
    assert_eq!(
        by_type(&msgs),
        counts(&[
            ("PingRequest", 3),
            ("PingReply", 3),
            ("ExistsRequest", 5),
            ("ExistsReply", 5),
            ("CreateRequest", 1),
            ("CreateReply", 1),
            ("GetChildrenRequest", 2),
            ("GetChildrenReply", 2),
            ("GetDataRequest", 1),
            ("GetDataReply", 1),
            ("SetDataRequest", 1),
            ("SetDataReply", 1),
            ("WatchEvent", 1),
        ])
    );
    let nonode = of_type(&msgs, "ExistsReply")
        .iter()
        .filter(|m| s(m, "err_name") == "NONODE" && m["err"] == -101)
        .count();
    assert_eq!(nonode, 3);
    for r in of_type(&msgs, "GetChildrenReply") {
        assert_eq!(r["children"].as_array().map(Vec::len), Some(4), "{r}");
    }
    let get = of_type(&msgs, "GetDataRequest")[0];
    assert_eq!(
        (s(get, "path"), &get["watch"]),
        ("/dknightly", &Value::Bool(true))
    );
    let create = of_type(&msgs, "CreateRequest")[0];
    assert_eq!(
        (create["xid"].as_i64(), create["size"].as_i64()),
        (Some(7), Some(62))
    );
    let ev = of_type(&msgs, "WatchEvent")[0];
    assert_eq!(s(ev, "event_type"), "NodeDataChanged");
    assert_eq!(s(ev, "state"), "SyncConnected");
    assert_eq!(s(ev, "path"), "/dknightly");
    assert_eq!(s(ev, "client"), "127.0.0.1:60446");
    assert_eq!(s(ev, "server"), "127.0.0.1:2181");
    let ping = of_type(&msgs, "PingReply")[0];
    assert_eq!(ping["zxid"], 7305);
}

#[test]
fn dump_pcap_text_pairs_requests_with_replies() {
    let out = Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(["dump", "-r"])
        .arg(fixture("dump"))
        .args(["-p", "-q"])
        .output()
        .expect("run zkscope");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // 13 request/reply pairs and one event line.
    assert_eq!(lines.len(), 27, "{text}");
    assert!(lines[0].starts_with("22:31:14.316883 ") && lines[0].contains("PingRequest"));
    assert!(lines[1].starts_with("————► 22:31:14.317298 ") && lines[1].contains("PingReply"));
    assert!(lines[1].contains("latency=415us"), "{}", lines[1]);
    // The watch event is printed when it arrives, before the SetData pair it interrupts.
    let ev = lines
        .iter()
        .position(|l| l.contains("WatchEvent"))
        .unwrap_or(0);
    assert!(lines[ev + 1].contains("SetDataRequest"), "{text}");
    // Without -p, pings are hidden.
    let out = Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(["dump", "-q", "-r"])
        .arg(fixture("dump"))
        .output()
        .expect("run zkscope");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Ping"), "{text}");
    assert_eq!(text.lines().count(), 27 - 6);
}

#[test]
fn set_data_pcap() {
    let (msgs, err) = dump("set_data", &[]);
    assert_clean(&err);
    assert_paired(&msgs);
    let by_path = requests_by_path(&msgs);
    assert_eq!(by_path[&("ConnectRequest".into(), String::new())], 6);
    for i in 0..5 {
        let p = format!("/load-testing/{i}");
        assert_eq!(by_path[&("SetDataRequest".into(), p.clone())], 5, "{p}");
        assert_eq!(by_path[&("ExistsRequest".into(), p.clone())], 1, "{p}");
    }
    let writes = msgs
        .iter()
        .filter(|m| s(m, "dir") == "request" && s(m, "type") == "SetDataRequest")
        .count();
    assert_eq!(writes, 25);
    // The capture holds only the clients' side.
    assert_eq!(summary_count(&err, "requests without a reply"), 25 + 5);
    // No request is mistaken for a (re)connect: every xid-1 request keeps its real type.
    assert!(msgs
        .iter()
        .filter(|m| m["xid"] == 1)
        .all(|m| s(m, "type") != "ConnectRequest"));
}

#[test]
fn create_pcap() {
    let (msgs, err) = dump("create", &[]);
    assert_clean(&err);
    assert_paired(&msgs);
    let by_path = requests_by_path(&msgs);
    for i in 0..5 {
        let p = format!("/load-testing/{i}");
        assert_eq!(by_path[&("CreateRequest".into(), p.clone())], 5, "{p}");
        assert_eq!(by_path[&("DeleteRequest".into(), p.clone())], 5, "{p}");
        assert_eq!(by_path[&("ExistsRequest".into(), p.clone())], 1, "{p}");
    }
    let writes = msgs
        .iter()
        .filter(|m| s(m, "dir") == "request")
        .filter(|m| matches!(s(m, "op"), "create" | "delete" | "setData"))
        .count();
    assert_eq!(writes, 50);
}

#[test]
fn fire_watches_pcap_reports_coalesced_and_unpaired_replies() {
    let (msgs, err) = dump("fire_watches", &["-p"]);
    assert_clean(&err);
    let ev = of_type(&msgs, "WatchEvent");
    assert_eq!(ev.len(), 1);
    assert_eq!(s(ev[0], "event_type"), "NodeChildrenChanged");
    assert_eq!(s(ev[0], "path"), "/in/portland/they/eat/tacos");
    // Replies 27-29 and the CreateReply 30 that shares a segment with the event: their
    // requests were not captured, so they are reported unpaired (opcode null), not as errors.
    let xids: Vec<i64> = msgs
        .iter()
        .filter(|m| s(m, "dir") == "reply" && m["opcode"].is_null())
        .filter_map(|m| m["xid"].as_i64())
        .collect();
    assert_eq!(xids, vec![27, 28, 29, 30]);
    let r30 = msgs.iter().find(|m| m["xid"] == 30).expect("reply 30");
    assert_eq!(
        (r30["zxid"].as_i64(), s(r30, "err_name")),
        (Some(0x71c), "OK")
    );
    assert_eq!(r30["body_len"], 38);
    // Ping replies are recognised by their xid even without the request.
    assert_eq!(of_type(&msgs, "PingReply").len(), 2);
    assert_eq!(summary_count(&err, "replies without a captured request"), 6);
}

#[test]
fn create_pyzookeeper_pcap_frames_split_length_prefixes() {
    let (msgs, err) = dump("create-pyzookeeper", &[]);
    assert_clean(&err);
    assert_eq!(of_type(&msgs, "ConnectRequest").len(), 1);
    let c = of_type(&msgs, "CreateRequest");
    assert_eq!(c.len(), 1);
    assert_eq!(s(c[0], "path"), "/git/twitter-config_sha");
    assert_eq!(c[0]["xid"], 1374558329);
    assert_eq!(c[0]["data_len"], 60);
    assert_eq!(s(c[0], "mode"), "PERSISTENT");
}

#[test]
fn four_letter_words_are_recognised() {
    let (msgs, err) = dump("get_children_with_four_letter", &["-p"]);
    assert_clean(&err);
    let words: Vec<(&str, i64)> = of_type(&msgs, "FourLetterWord")
        .iter()
        .map(|m| (s(m, "command"), m["reply_len"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(words, vec![("stat", 241), ("conf", 467)]);
    for m in of_type(&msgs, "FourLetterWord") {
        assert_eq!(s(m, "dir"), "4lw");
    }
    assert!(s(of_type(&msgs, "FourLetterWord")[1], "reply").starts_with("clientPort=2181"));
    let gc = of_type(&msgs, "GetChildrenReply");
    assert_eq!(gc.len(), 1);
    assert_eq!(gc[0]["zxid"], 4294967297_i64);
    assert_eq!(gc[0]["children"].as_array().map(Vec::len), Some(1));
    assert_eq!(of_type(&msgs, "PingRequest").len(), 2);
    assert_eq!(of_type(&msgs, "PingReply").len(), 2);
    assert_eq!(of_type(&msgs, "GetChildrenRequest")[0]["xid"], 1);
}

#[test]
fn connects_and_closes() {
    let (msgs, err) = dump("connects", &[]);
    assert_clean(&err);
    let c = of_type(&msgs, "ConnectRequest");
    assert_eq!(c.len(), 3);
    assert!(c
        .iter()
        .all(|m| m["read_only"] == true && m["timeout"] == 10000));
    assert_eq!(of_type(&msgs, "CloseRequest").len(), 3);
    let (msgs, err) = dump("connect_replies", &[]);
    assert_clean(&err);
    let sessions: Vec<&str> = of_type(&msgs, "ConnectReply")
        .iter()
        .map(|m| s(m, "session"))
        .collect();
    assert_eq!(
        sessions,
        vec![
            "0x1001113200f0001",
            "0x1001113200f0002",
            "0x1001113200f0003"
        ]
    );
}

#[test]
fn auth_is_redacted_unless_asked() {
    let (msgs, err) = dump("auth", &[]);
    assert_clean(&err);
    assert_paired(&msgs);
    let a = of_type(&msgs, "SetAuthRequest");
    assert_eq!(a.len(), 1);
    assert_eq!(
        (s(a[0], "scheme"), s(a[0], "credential")),
        ("digest", "tacos:***")
    );
    assert_eq!(a[0]["xid"], -4);
    let r = of_type(&msgs, "SetAuthReply");
    assert_eq!((r.len(), s(r[0], "err_name")), (1, "OK"));
    let (msgs, _) = dump("auth", &["--show-credentials"]);
    assert_eq!(
        s(of_type(&msgs, "SetAuthRequest")[0], "credential"),
        "tacos:tacos"
    );
}

#[test]
fn multi_lists_its_ops_and_results() {
    let (msgs, err) = dump("multi", &[]);
    assert_clean(&err);
    assert_paired(&msgs);
    let req = of_type(&msgs, "MultiRequest")[0];
    let ops = req["ops"].as_array().expect("ops");
    assert!(!ops.is_empty());
    assert_eq!((s(&ops[0], "op"), s(&ops[0], "path")), ("create", "/foo"));
    let rep = of_type(&msgs, "MultiReply")[0];
    let results = rep["ops"].as_array().expect("ops");
    assert_eq!(results.len(), ops.len());
    assert!(results.iter().all(|r| s(r, "err_name") == "OK"), "{rep}");
    assert_eq!(s(&results[0], "created_path"), "/foo");
}

#[test]
fn reconfig_request_and_refusal() {
    let (msgs, err) = dump("reconfig", &[]);
    assert_clean(&err);
    let r = of_type(&msgs, "ReconfigRequest")[0];
    assert_eq!(
        s(r, "joining"),
        "server.100=0.0.0.0:56954:37866:observer;0.0.0.0:42969"
    );
    assert_eq!(r["cur_config_id"], -1);
    let rep = of_type(&msgs, "ReconfigReply")[0];
    assert_eq!(
        (rep["err"].as_i64(), s(rep, "err_name")),
        (Some(-6), "UNIMPLEMENTED")
    );
}

#[test]
fn setwatches_after_reconnect() {
    let (msgs, err) = dump("setwatches", &["-p"]);
    assert_clean(&err);
    let c = of_type(&msgs, "ConnectRequest")[0];
    assert_eq!(
        (c["last_zxid_seen"].as_i64(), s(c, "session_id")),
        (Some(1840), "0x10009b61d370014")
    );
    let w = of_type(&msgs, "SetWatchesRequest")[0];
    assert_eq!(w["xid"], 13);
    assert_eq!(w["relative_zxid"], 1840);
    assert_eq!(
        w["child_watches"],
        serde_json::json!(["/foo", "/in", "/zookeeper", "/in/portland", "/"])
    );
    assert_eq!(s(w, "session"), "0x10009b61d370014");
    assert_eq!(of_type(&msgs, "SetWatchesReply").len(), 1);
}

#[test]
fn getdata_watches_flags() {
    let (msgs, err) = dump("getdata_watches", &[]);
    assert_clean(&err);
    let flags: Vec<(&str, bool)> = msgs
        .iter()
        .filter(|m| matches!(s(m, "type"), "GetDataRequest" | "GetChildrenRequest"))
        .map(|m| (s(m, "type"), m["watch"].as_bool().unwrap_or(false)))
        .collect();
    assert_eq!(
        flags,
        vec![
            ("GetChildrenRequest", false),
            ("GetChildrenRequest", true),
            ("GetDataRequest", false),
            ("GetDataRequest", true)
        ]
    );
    // The capture ends before the replies: reported as unanswered, not lost silently.
    assert_eq!(summary_count(&err, "requests without a reply"), 4);
}

#[test]
fn omni_client_traffic() {
    let (msgs, err) = dump(
        "omni",
        &["--port", "2181", "--port", "2182", "--port", "2183"],
    );
    assert_clean(&err);
    assert_paired(&msgs);
    let types: Vec<&str> = msgs.iter().map(|m| s(m, "type")).collect();
    assert_eq!(
        types,
        vec![
            "ConnectRequest",
            "ConnectReply",
            "GetChildrenRequest",
            "GetChildrenReply",
            "CreateRequest",
            "CreateReply",
            "SyncRequest",
            "SyncReply"
        ]
    );
}

//! Checks decoded messages (`zkscope dump --format json` lines, or
//! scripts/zkpcap.py's) against workload manifests.
//!
//! Every check returns a list of human-readable problems instead of
//! panicking, so one test run reports everything that is wrong.

use serde_json::Value;
use std::collections::HashSet;

/// ALL the JSON field names and values of `zkscope dump --format json` that
/// the checks rely on. If the decoder's contract changes, adapt here.
pub mod fields {
    /// "request" | "reply" | "event" | "4lw"
    pub const DIR: &str = "dir";
    pub const DIR_REQUEST: &str = "request";
    pub const DIR_REPLY: &str = "reply";
    pub const DIR_EVENT: &str = "event";
    pub const DIR_4LW: &str = "4lw";
    /// "CreateRequest", "ConnectRequest", "SetWatchesRequest", …
    pub const TYPE: &str = "type";
    /// canonical opcode name: "create", "getData", "multi", …
    pub const OP: &str = "op";
    pub const OPCODE: &str = "opcode";
    pub const XID: &str = "xid";
    pub const ERR_NAME: &str = "err_name";
    pub const PATH: &str = "path";
    pub const WATCH: &str = "watch";
    /// "0x…" lowercase hex, no leading zeros, once known
    pub const SESSION: &str = "session";
    /// "ip:port" / "[v6]:port"
    pub const CLIENT: &str = "client";
    pub const SERVER: &str = "server";
    pub const TS: &str = "ts";
    pub const LATENCY_US: &str = "latency_us";
    /// multi/multiRead sub-ops array; each element has OP, PATH (requests),
    /// ERR_NAME (replies) and TYPE ("ErrorResponse"/… for failed sub-ops)
    pub const OPS: &str = "ops";
    /// WatchEvent: "NodeDataChanged", …
    pub const EVENT_TYPE: &str = "event_type";
    pub const STATE: &str = "state";
    /// 4lw: "ruok", …
    pub const COMMAND: &str = "command";
    pub const REPLY_LEN: &str = "reply_len";
    /// GetDataReply payload length (ASSUMED name, not in the contract)
    pub const DATA_LEN: &str = "data_len";
    /// ConnectRequest: the session id the client asks to resume,
    /// "0x…" string or integer (ASSUMED name, not in the contract)
    pub const CONNECT_SESSION_ID: &str = "session_id";
    pub const CONNECT_REQUEST: &str = "ConnectRequest";
    pub const SET_WATCHES_TYPES: [&str; 2] = ["SetWatchesRequest", "SetWatches2Request"];
    /// SetWatches(2) path lists: ASSUMED to be arrays of strings in fields
    /// whose names contain "watch" (e.g. data_watches, exist_watches,
    /// child_watches, persistent_watches, persistent_recursive_watches);
    /// the check collects all of them.
    pub const SET_WATCHES_LIST_MARKER: &str = "watch";
    pub const CREATE_TTL_TYPE: &str = "CreateTTLRequest";
    pub const CREATE_CONTAINER_TYPE: &str = "CreateContainerRequest";
}

use fields as f;

fn s<'a>(m: &'a Value, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

pub fn is_dir(m: &Value, d: &str) -> bool {
    s(m, f::DIR) == Some(d)
}

/// Session ids compared numerically ("0x00ab" == "0xab" == 171).
pub fn session_eq(v: Option<&Value>, want: &str) -> bool {
    let want = parse_session(want);
    match v {
        Some(Value::String(x)) => parse_session(x) == want,
        Some(Value::Number(n)) => n.as_u64() == want || n.as_i64().map(|i| i as u64) == want,
        _ => false,
    }
}

pub fn parse_session(x: &str) -> Option<u64> {
    let x = x.trim();
    let hex = x.strip_prefix("0x").or_else(|| x.strip_prefix("0X"))?;
    u64::from_str_radix(hex, 16).ok()
}

fn in_session(m: &Value, session: &str) -> bool {
    session_eq(m.get(f::SESSION), session)
}

fn short(m: &Value) -> String {
    let mut t = m.to_string();
    if t.len() > 300 {
        t.truncate(300);
        t.push('…');
    }
    t
}

/// Sessions of a manifest: its "sessions" array, or the top-level
/// {"session","ops"} pair.
pub fn manifest_sessions(manifest: &Value) -> Vec<Value> {
    if let Some(arr) = manifest.get("sessions").and_then(Value::as_array) {
        if !arr.is_empty() {
            return arr.clone();
        }
    }
    if manifest.get("session").is_some() {
        return vec![manifest.clone()];
    }
    Vec::new()
}

/// Checks one manifest: every op in order within its session with a paired
/// reply carrying `expect_err`, watch flags, multi sub-ops, data_len,
/// events, and (for sessions with host ::1) IPv6 client endpoints.
pub fn check_manifest(msgs: &[Value], manifest: &Value) -> Vec<String> {
    let wl = s(manifest, "workload").unwrap_or("?").to_string();
    let mut problems = Vec::new();
    for sess in manifest_sessions(manifest) {
        let sid = s(&sess, "session").unwrap_or_default().to_string();
        let label = format!("{wl}/{}({sid})", s(&sess, "label").unwrap_or("main"));
        let ops = sess["ops"].as_array().cloned().unwrap_or_default();
        problems.extend(check_session_ops(msgs, &label, &sid, &ops));
        if let Some(evs) = sess.get("events").and_then(Value::as_array) {
            problems.extend(check_events(msgs, &label, &sid, evs));
        }
        if s(&sess, "host").is_some_and(|h| h.contains("::1")) {
            problems.extend(check_ipv6_session(msgs, &label, &sid));
        }
    }
    if let Some(n) = manifest.get("pipelined").and_then(Value::as_u64) {
        problems.extend(check_pipelined(msgs, manifest, n as usize));
    }
    if let Some(fl) = manifest.get("fourlw").and_then(Value::as_array) {
        problems.extend(check_fourlw(msgs, fl));
    }
    if let Some(n) = manifest.get("min_pings").and_then(Value::as_u64) {
        let sid = s(manifest, "session").unwrap_or_default();
        let pings = msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| is_dir(m, f::DIR_REQUEST) && in_session(m, sid))
            .filter(|(_, m)| s(m, f::OP) == Some("ping"))
            .filter(|(i, m)| paired_reply(msgs, *i, m).is_some())
            .count() as u64;
        if pings < n {
            problems.push(format!(
                "{wl}: {pings} ping request/reply pairs, want ≥ {n}"
            ));
        }
    }
    if let Some(rc) = manifest.get("reconnect") {
        problems.extend(check_reconnect(msgs, rc));
    }
    problems
}

/// Requests of `sid` in output order, ping/connect excluded.
fn session_requests<'a>(msgs: &'a [Value], sid: &str) -> Vec<(usize, &'a Value)> {
    msgs.iter()
        .enumerate()
        .filter(|(_, m)| is_dir(m, f::DIR_REQUEST) && in_session(m, sid))
        .filter(|(_, m)| s(m, f::OP) != Some("ping"))
        .collect()
}

/// The reply paired with request `req` (same session or client, same xid,
/// after it).
pub fn paired_reply<'a>(msgs: &'a [Value], idx: usize, req: &Value) -> Option<&'a Value> {
    let xid = req.get(f::XID)?;
    let client = req.get(f::CLIENT);
    msgs[idx + 1..].iter().find(|m| {
        is_dir(m, f::DIR_REPLY)
            && m.get(f::XID) == Some(xid)
            && (m.get(f::CLIENT) == client
                || s(req, f::SESSION).is_some_and(|sid| in_session(m, sid)))
    })
}

pub fn check_session_ops(msgs: &[Value], label: &str, sid: &str, ops: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let reqs = session_requests(msgs, sid);
    if reqs.is_empty() && !ops.is_empty() {
        problems.push(format!("{label}: no requests decoded for session {sid}"));
        return problems;
    }
    let mut pos = 0usize;
    for (k, op) in ops.iter().enumerate() {
        let want_op = s(op, "op").unwrap_or_default();
        let want_path = op.get("path").and_then(Value::as_str);
        let found = reqs[pos..].iter().position(|(_, m)| {
            s(m, f::OP) == Some(want_op) && (want_path.is_none() || s(m, f::PATH) == want_path)
        });
        let Some(off) = found else {
            let next: Vec<String> = reqs[pos..]
                .iter()
                .take(3)
                .map(|(_, m)| {
                    format!(
                        "{}:{}",
                        s(m, f::OP).unwrap_or("?"),
                        s(m, f::PATH).unwrap_or("")
                    )
                })
                .collect();
            problems.push(format!(
                "{label}: op #{k} {want_op} {want_path:?} not found in order (next decoded: {next:?})"
            ));
            continue;
        };
        let (idx, req) = reqs[pos + off];
        pos += off + 1;
        let what = format!("{label}: op #{k} {want_op} {}", want_path.unwrap_or(""));
        if let Some(w) = op.get("watch").and_then(Value::as_bool) {
            if req.get(f::WATCH).and_then(Value::as_bool) != Some(w) {
                problems.push(format!(
                    "{what}: watch flag {:?}, want {w}",
                    req.get(f::WATCH)
                ));
            }
        }
        if let Some(subs) = op.get("sub_ops").and_then(Value::as_array) {
            problems.extend(check_multi_request(&what, req, subs));
        }
        match want_op {
            "createTTL" if s(req, f::TYPE) != Some(f::CREATE_TTL_TYPE) => {
                problems.push(format!("{what}: type {:?}", req.get(f::TYPE)))
            }
            "createContainer" if s(req, f::TYPE) != Some(f::CREATE_CONTAINER_TYPE) => {
                problems.push(format!("{what}: type {:?}", req.get(f::TYPE)))
            }
            _ => {}
        }
        let Some(reply) = paired_reply(msgs, idx, req) else {
            problems.push(format!("{what}: no paired reply for {}", short(req)));
            continue;
        };
        let want_err = s(op, "expect_err").unwrap_or("OK");
        if s(reply, f::ERR_NAME) != Some(want_err) {
            problems.push(format!(
                "{what}: reply err_name {:?}, want {want_err}",
                reply.get(f::ERR_NAME)
            ));
        }
        if s(reply, f::OP) != Some(want_op) {
            problems.push(format!("{what}: reply op {:?}", reply.get(f::OP)));
        }
        if want_path.is_some() && s(reply, f::PATH) != want_path {
            problems.push(format!("{what}: reply path {:?}", reply.get(f::PATH)));
        }
        if reply.get(f::LATENCY_US).and_then(Value::as_f64).is_none() {
            problems.push(format!(
                "{what}: paired reply has no numeric {}",
                f::LATENCY_US
            ));
        }
        if want_op == "getData" && want_err == "OK" {
            if let Some(n) = op.get("data_len").and_then(Value::as_u64) {
                let got = reply.get(f::DATA_LEN).and_then(Value::as_u64);
                if got.is_none_or(|g| g.abs_diff(n) > n / 100) {
                    problems.push(format!("{what}: reply {} {got:?}, want ≈{n}", f::DATA_LEN));
                }
            }
        }
        if let Some(subs) = op.get("sub_ops").and_then(Value::as_array) {
            problems.extend(check_multi_reply(&what, reply, subs));
        }
    }
    problems
}

fn check_multi_request(what: &str, req: &Value, subs: &[Value]) -> Vec<String> {
    let Some(got) = req.get(f::OPS).and_then(Value::as_array) else {
        return vec![format!("{what}: request has no {} array", f::OPS)];
    };
    if got.len() != subs.len() {
        return vec![format!(
            "{what}: request lists {} ops, want {}",
            got.len(),
            subs.len()
        )];
    }
    let mut p = Vec::new();
    for (i, (g, w)) in got.iter().zip(subs).enumerate() {
        if s(g, f::OP) != s(w, "op") || s(g, f::PATH) != s(w, "path") {
            p.push(format!(
                "{what}: sub-op {i} is {}, want {}",
                short(g),
                short(w)
            ));
        }
    }
    p
}

fn check_multi_reply(what: &str, reply: &Value, subs: &[Value]) -> Vec<String> {
    let Some(got) = reply.get(f::OPS).and_then(Value::as_array) else {
        return vec![format!("{what}: reply has no {} array", f::OPS)];
    };
    if got.len() != subs.len() {
        return vec![format!(
            "{what}: reply lists {} results, want {}",
            got.len(),
            subs.len()
        )];
    }
    let mut p = Vec::new();
    for (i, (g, w)) in got.iter().zip(subs).enumerate() {
        let want = s(w, "expect_err").unwrap_or("OK");
        if s(g, f::ERR_NAME) != Some(want) {
            p.push(format!(
                "{what}: sub-result {i} err_name {:?}, want {want}",
                g.get(f::ERR_NAME)
            ));
        }
    }
    p
}

pub fn check_events(msgs: &[Value], label: &str, sid: &str, evs: &[Value]) -> Vec<String> {
    let mut p = Vec::new();
    for e in evs {
        let path = s(e, "path");
        let et = s(e, "event_type");
        let found = msgs.iter().any(|m| {
            is_dir(m, f::DIR_EVENT)
                && in_session(m, sid)
                && s(m, f::PATH) == path
                && s(m, f::EVENT_TYPE) == et
        });
        if !found {
            p.push(format!(
                "{label}: no WatchEvent {et:?} on {path:?} in session {sid}"
            ));
        }
    }
    p
}

fn check_ipv6_session(msgs: &[Value], label: &str, sid: &str) -> Vec<String> {
    let mine: Vec<&Value> = msgs.iter().filter(|m| in_session(m, sid)).collect();
    if mine.is_empty() {
        return vec![format!("{label}: no messages for IPv6 session")];
    }
    mine.iter()
        .filter(|m| !s(m, f::CLIENT).is_some_and(|c| c.starts_with("[::1]:")))
        .take(1)
        .map(|m| {
            format!(
                "{label}: client of IPv6 session not [::1]:port: {}",
                short(m)
            )
        })
        .collect()
}

/// All requests flagged "pipelined" got a reply, and they really were in
/// flight together (≥ 10 sent before the first of their replies).
fn check_pipelined(msgs: &[Value], manifest: &Value, n: usize) -> Vec<String> {
    let sid = s(manifest, "session").unwrap_or_default();
    let piped: Vec<&Value> = manifest["ops"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|o| o.get("pipelined") == Some(&Value::Bool(true)))
                .collect()
        })
        .unwrap_or_default();
    let mut p = Vec::new();
    if piped.len() != n {
        p.push(format!(
            "pipeline: manifest has {} pipelined ops, says {n}",
            piped.len()
        ));
    }
    let paths: HashSet<&str> = piped.iter().filter_map(|o| s(o, "path")).collect();
    let reqs: Vec<(usize, &Value)> = session_requests(msgs, sid)
        .into_iter()
        .filter(|(_, m)| s(m, f::PATH).is_some_and(|x| paths.contains(x)))
        .filter(|(_, m)| matches!(s(m, f::OP), Some("create") | Some("getData")))
        .collect();
    if reqs.len() < n {
        p.push(format!(
            "pipeline: decoded {} of {n} pipelined requests",
            reqs.len()
        ));
    }
    let mut replies = Vec::new();
    for (idx, r) in &reqs {
        match paired_reply(msgs, *idx, r) {
            Some(rep) => replies.push(rep),
            None => p.push(format!("pipeline: no reply for {}", short(r))),
        }
    }
    let first_reply_ts = replies
        .iter()
        .filter_map(|r| r.get(f::TS).and_then(Value::as_f64))
        .fold(f64::INFINITY, f64::min);
    let before = reqs
        .iter()
        .filter(|(_, r)| {
            r.get(f::TS)
                .and_then(Value::as_f64)
                .is_some_and(|t| t <= first_reply_ts)
        })
        .count();
    if before < 10 {
        p.push(format!(
            "pipeline: only {before} requests were sent before the first reply (not pipelined?)"
        ));
    }
    p
}

fn check_fourlw(msgs: &[Value], fl: &[Value]) -> Vec<String> {
    let mut p = Vec::new();
    for e in fl {
        let cmd = s(e, "command");
        let client = s(e, "client");
        let found = msgs.iter().find(|m| {
            is_dir(m, f::DIR_4LW)
                && s(m, f::COMMAND) == cmd
                && (client.is_none() || s(m, f::CLIENT) == client)
        });
        match found {
            None => p.push(format!("4lw {cmd:?} from {client:?} not decoded")),
            Some(m) => {
                let want = e.get("reply_len").and_then(Value::as_u64);
                let got = m.get(f::REPLY_LEN).and_then(Value::as_u64);
                if want.is_some() && got != want {
                    p.push(format!("4lw {cmd:?}: reply_len {got:?}, want {want:?}"));
                }
            }
        }
    }
    p
}

/// A ConnectRequest resuming the session (non-zero session id) and, on the
/// same connection, a SetWatches(2)Request listing the watched paths.
fn check_reconnect(msgs: &[Value], rc: &Value) -> Vec<String> {
    let sid = s(rc, "session").unwrap_or_default();
    let connects: Vec<&Value> = msgs
        .iter()
        .filter(|m| s(m, f::TYPE) == Some(f::CONNECT_REQUEST))
        .filter(|m| session_eq(m.get(f::CONNECT_SESSION_ID), sid))
        .collect();
    if connects.is_empty() {
        return vec![format!(
            "reconnect: no ConnectRequest with {} {sid}",
            f::CONNECT_SESSION_ID
        )];
    }
    let clients: HashSet<&str> = connects.iter().filter_map(|m| s(m, f::CLIENT)).collect();
    let set_watches: Vec<&Value> = msgs
        .iter()
        .filter(|m| s(m, f::TYPE).is_some_and(|t| f::SET_WATCHES_TYPES.contains(&t)))
        .filter(|m| s(m, f::CLIENT).is_some_and(|c| clients.contains(c)) || in_session(m, sid))
        .collect();
    if set_watches.is_empty() {
        return vec![format!(
            "reconnect: no SetWatches(2)Request for session {sid}"
        )];
    }
    let mut listed: HashSet<String> = HashSet::new();
    for m in &set_watches {
        if let Some(o) = m.as_object() {
            for (k, v) in o {
                if k.contains(f::SET_WATCHES_LIST_MARKER) {
                    for x in v.as_array().into_iter().flatten() {
                        if let Some(x) = x.as_str() {
                            listed.insert(x.to_string());
                        }
                    }
                }
            }
        }
    }
    let mut p = Vec::new();
    if let Some(sw) = rc.get("set_watches").and_then(Value::as_object) {
        for (kind, paths) in sw {
            for path in paths
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !listed.contains(path) {
                    p.push(format!(
                        "reconnect: {kind} watch {path} not listed in SetWatches ({listed:?})"
                    ));
                }
            }
        }
    }
    p
}

/// Generic sanity of a decoded stream: JSON objects with the mandatory
/// fields; replies of captured requests carry opcode and latency.
pub fn check_basic_shape(msgs: &[Value]) -> Vec<String> {
    let mut p = Vec::new();
    for m in msgs.iter() {
        for k in [f::TS, f::DIR, f::CLIENT, f::SERVER] {
            if m.get(k).is_none() {
                p.push(format!("message without {k}: {}", short(m)));
                break;
            }
        }
        if let Some(sess) = s(m, f::SESSION) {
            let ok = sess.starts_with("0x")
                && sess.len() > 2
                && sess[2..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                && (sess == "0x0" || !sess.starts_with("0x0"));
            if !ok {
                p.push(format!(
                    "session not lowercase 0x-hex without leading zeros: {sess}"
                ));
            }
        }
        if p.len() > 20 {
            break;
        }
    }
    p
}

/// Panics listing all problems (if any).
pub fn assert_no_problems(what: &str, problems: &[String]) {
    if !problems.is_empty() {
        let shown: Vec<&String> = problems.iter().take(60).collect();
        panic!(
            "{what}: {} problem(s):\n  {}",
            problems.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

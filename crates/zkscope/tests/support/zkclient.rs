//! Workloads with the Rust `zookeeper-client` crate (0.11): the requests
//! kazoo 2.11 cannot make (createTTL, createContainer, addWatch, multiRead)
//! and a session that reconnects after a server restart and re-arms its
//! watches with setWatches. Each returns a manifest in the same format as
//! the kazoo workloads (see tests/workloads/README.md).
//!
//! Notes on what this crate sends (checked against captures):
//! * `create` → create2 (opcode 15) for servers ≥ 3.5, TTL → createTTL,
//!   Container → createContainer.
//! * `list_children` → getChildren (8), `get_children` → getChildren2 (12),
//!   `check_stat` → exists.
//! * On reconnect it sends setWatches (101) with data/exist/child paths; it
//!   does not re-send persistent watches (0.11 quirk), so the reconnect
//!   workload uses one-shot watches only.
//! * Dropping the last `Client` clone closes the session (closeSession); the
//!   session task then ends once the reply is read ([`close`] waits for that).

use super::{wait_for, ZkServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use zookeeper_client as zk;

/// Session timeout of the workloads' sessions.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// Session timeout of the session that must survive a server restart in
/// [`rust_reconnect_workload`]. While the server is down the client retries with exponential
/// backoff (100 ms doubling, capped only by what is left of its session), so it reconnects up
/// to about as long after the server is back as the server was down; and it gives the session
/// up 1.4 × this timeout after the last reply. A restart on a loaded machine can take tens of
/// seconds (stop ≤ 10 s + JVM start ≤ 60 s): the session needs a few minutes, so the server must
/// allow it (`maxSessionTimeout`, see [`RECONNECT_MAX_SESSION_TIMEOUT_CFG`]).
pub const RECONNECT_SESSION_TIMEOUT: Duration = Duration::from_secs(150);

/// The zoo.cfg line a server given to [`rust_reconnect_workload`] needs (ZooKeeper's default
/// maximum is 20 ticks: 40 s).
pub const RECONNECT_MAX_SESSION_TIMEOUT_CFG: &str = "maxSessionTimeout=300000";

/// Budget for waits on the server (watch events, closeSession); costs nothing when all goes
/// well.
const WAIT: Duration = Duration::from_secs(60);

/// Error name (as in `err_name`) of a zookeeper-client result.
pub fn err_name<T>(r: &Result<T, zk::Error>) -> &'static str {
    match r {
        Ok(_) => "OK",
        Err(e) => error_name(e),
    }
}

pub fn error_name(e: &zk::Error) -> &'static str {
    use zk::Error::*;
    match e {
        NoNode => "NONODE",
        NodeExists => "NODEEXISTS",
        BadVersion => "BADVERSION",
        NotEmpty => "NOTEMPTY",
        NoAuth => "NOAUTH",
        NoChildrenForEphemerals => "NOCHILDRENFOREPHEMERALS",
        InvalidAcl => "INVALIDACL",
        AuthFailed => "AUTHFAILED",
        SessionExpired => "SESSIONEXPIRED",
        RuntimeInconsistent => "RUNTIMEINCONSISTENCY",
        Unimplemented => "UNIMPLEMENTED",
        _ => "OTHER",
    }
}

fn sid(c: &zk::Client) -> String {
    format!("0x{:x}", c.session_id().0 as u64)
}

/// Records requests and their expected/observed results.
pub struct Recorder {
    pub ops: Vec<Value>,
    pub mismatches: Vec<String>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            ops: Vec::new(),
            mismatches: Vec::new(),
        }
    }
    pub fn rec<T>(&mut self, op: &str, path: &str, expect: &str, r: &Result<T, zk::Error>) {
        self.rec_extra(op, path, expect, err_name(r), json!({}))
    }
    pub fn rec_extra(&mut self, op: &str, path: &str, expect: &str, got: &str, extra: Value) {
        let mut v = json!({"op": op, "path": path, "expect_err": expect, "observed_err": got});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        if got != expect {
            self.mismatches
                .push(format!("{op} {path}: expected {expect}, got {got}"));
        }
        self.ops.push(v);
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn connect(server: &str) -> zk::Client {
    connect_with(server, SESSION_TIMEOUT).await
}

async fn connect_with(server: &str, session_timeout: Duration) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(session_timeout)
        .connect(server)
        .await
        .unwrap_or_else(|e| panic!("zookeeper-client connect {server}: {e}"))
}

/// Closes the session: drops `c` (which must be the last clone: the session task sends
/// closeSession when the last one goes) and waits until the session task has ended. A fixed
/// pause instead would let the runtime, and the closeSession with it, be dropped on a slow
/// machine.
///
/// The task normally ends in state `Closed` once it has read the reply. But when the reply
/// takes longer than the client's ping interval (a few seconds: ZooKeeper fsyncs the
/// closeSession first), the client pings after its closeSession; the server answers the
/// closeSession and closes the connection, the ping is left unanswered, and the client
/// reconnects to a session that is gone: it ends `Expired` (seen with the server frozen for
/// 6 s). Either way the closeSession and its reply are on the wire.
pub async fn close(c: zk::Client) {
    let session = sid(&c);
    let mut sw = c.state_watcher();
    drop(c);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !sw.peek_state().is_terminated() {
        // changed() never returns after a terminal state: checked before waiting
        if tokio::time::timeout_at(deadline, sw.changed())
            .await
            .is_err()
        {
            panic!(
                "session {session} not closed after {WAIT:?}: state {:?}",
                sw.peek_state()
            );
        }
    }
}

/// The manifest entry of the closeSession that [`close`] makes.
fn close_op() -> Value {
    json!({"op": "closeSession", "path": null, "expect_err": "OK", "observed_err": "OK"})
}

/// CRUD with errors, TTL + container nodes, a persistent recursive watch
/// that fires, a failing multi and a multiRead. Needs a server with
/// `extendedTypesEnabled=true`. Panics if any result differs from the
/// expectation (so the manifest is truthful).
pub fn rust_client_workload(server: &str, prefix: &str) -> Value {
    rt().block_on(async {
        let p = prefix.to_string();
        let c = connect(server).await;
        let session = sid(&c);
        let mut r = Recorder::new();
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let ttl = zk::CreateMode::Persistent
            .with_acls(zk::Acls::anyone_all())
            .with_ttl(Duration::from_secs(300));
        let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());

        let res = c.create(&p, b"rust", &open).await;
        r.rec("create2", &p, "OK", &res);
        let res = c.create(&p, b"rust", &open).await;
        r.rec("create2", &p, "NODEEXISTS", &res);

        // persistent recursive watch on the prefix (addWatch mode 1)
        let watch = c.watch(&p, zk::AddWatchMode::PersistentRecursive).await;
        r.rec("addWatch", &p, "OK", &watch);
        let mut watcher = watch.expect("addWatch");

        let res = c.get_data(&p).await;
        r.rec_extra("getData", &p, "OK", err_name(&res), json!({"watch": false}));
        let missing = format!("{p}/missing");
        let res = c.get_data(&missing).await;
        r.rec_extra("getData", &missing, "NONODE", err_name(&res), json!({"watch": false}));
        let res = c.set_data(&p, b"v1", Some(42)).await;
        r.rec("setData", &p, "BADVERSION", &res);

        let ttl_path = format!("{p}/ttl");
        let res = c.create(&ttl_path, b"t", &ttl).await;
        r.rec_extra("createTTL", &ttl_path, "OK", err_name(&res), json!({"ttl": 300000}));
        let cont_path = format!("{p}/container");
        let res = c.create(&cont_path, b"c", &container).await;
        r.rec("createContainer", &cont_path, "OK", &res);
        let kid = format!("{cont_path}/kid");
        let res = c.create(&kid, b"k", &open).await;
        r.rec("create2", &kid, "OK", &res);

        // fires the persistent recursive watch (NodeCreated above and
        // NodeDataChanged here, both delivered to this session)
        let res = c.set_data(&kid, b"k2", None).await;
        r.rec("setData", &kid, "OK", &res);
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        for _ in 0..10 {
            let ev = tokio::time::timeout_at(deadline, watcher.changed()).await;
            let Ok(ev) = ev else { break };
            events.push(ev);
            if events
                .iter()
                .any(|e| e.event_type == zk::EventType::NodeDataChanged && e.path == kid)
            {
                break;
            }
        }
        if !events
            .iter()
            .any(|e| e.event_type == zk::EventType::NodeDataChanged && e.path == kid)
        {
            r.mismatches
                .push(format!("persistent watch: no NodeDataChanged on {kid}: {events:?}"));
        }

        let res = c.list_children(&p).await;
        r.rec_extra("getChildren", &p, "OK", err_name(&res), json!({"watch": false}));
        let res = c.get_children(&p).await;
        r.rec_extra("getChildren2", &p, "OK", err_name(&res), json!({"watch": false}));
        let res = c.check_stat(&missing).await;
        let got = match &res {
            Ok(None) => "NONODE", // the wire reply of exists carries NONODE
            Ok(Some(_)) => "OK",
            Err(e) => error_name(e),
        };
        r.rec_extra("exists", &missing, "NONODE", got, json!({"watch": false}));

        // failing multi: create ok (rolled back), setData bad version fails
        let mpath = format!("{p}/m1");
        let mut w = c.new_multi_writer();
        w.add_create(&mpath, b"m", &open).unwrap();
        w.add_set_data(&p, b"x", Some(99)).unwrap();
        let res = w.commit().await;
        let (got, idx) = match &res {
            Ok(_) => ("OK", None),
            Err(zk::MultiWriteError::OperationFailed { index, source }) => {
                (error_name(source), Some(*index))
            }
            Err(zk::MultiWriteError::RequestFailed { source }) => (error_name(source), None),
        };
        if got != "BADVERSION" || idx != Some(1) {
            r.mismatches
                .push(format!("multi: expected BADVERSION at 1, got {got} at {idx:?}"));
        }
        r.rec_extra(
            "multi",
            "",
            "OK",
            "OK",
            json!({"path": null, "sub_ops": [
                {"op": "create2", "path": mpath, "expect_err": "OK", "expect_type": "error", "rolled_back": true},
                {"op": "setData", "path": p, "expect_err": "BADVERSION", "expect_type": "error"},
            ]}),
        );

        // multiRead: getData + getChildren
        let mut mr = c.new_multi_reader();
        mr.add_get_data(&p).unwrap();
        mr.add_get_children(&p).unwrap();
        let res = mr.commit().await;
        r.rec_extra(
            "multiRead",
            "",
            if res.is_ok() { "OK" } else { "ERR" },
            "OK",
            json!({"path": null, "sub_ops": [
                {"op": "getData", "path": p, "expect_err": "OK"},
                {"op": "getChildren", "path": p, "expect_err": "OK"},
            ]}),
        );

        let res = c.delete(&p, None).await;
        r.rec("delete", &p, "NOTEMPTY", &res);
        for path in [&kid, &cont_path, &ttl_path] {
            let res = c.delete(path, None).await;
            r.rec("delete", path, "OK", &res);
        }
        let res = c.delete(&p, Some(7)).await;
        r.rec("delete", &p, "BADVERSION", &res);
        let res = c.delete(&p, None).await;
        r.rec("delete", &p, "OK", &res);
        drop(watcher);
        close(c).await;

        // Fix up ops whose "path" must be null (multi/multiRead)
        for op in r.ops.iter_mut() {
            if op["path"] == "" {
                op["path"] = Value::Null;
            }
        }
        r.ops.push(close_op());
        assert!(
            r.mismatches.is_empty(),
            "rust workload mismatches: {:#?}",
            r.mismatches
        );
        let events = json!([
            {"path": kid, "event_type": "NodeCreated"},
            {"path": kid, "event_type": "NodeDataChanged"},
        ]);
        let sess = json!({"label": "rust", "session": session, "host": server,
                          "ops": r.ops, "events": events});
        json!({"workload": "rust-client", "session": session, "ops": sess["ops"].clone(),
               "sessions": [sess]})
    })
}

/// A session with data/exist/child watches survives a server restart: the
/// client reconnects with its session id (ConnectRequest.sessionId != 0)
/// and re-arms the watches with setWatches; a second session then fires
/// them. Manifest extras: "reconnect": {"session", "set_watches":
/// {"data": [...], "exist": [...], "child": [...]}}.
///
/// The server must allow [`RECONNECT_SESSION_TIMEOUT`]: start it with
/// [`RECONNECT_MAX_SESSION_TIMEOUT_CFG`] in its zoo.cfg.
pub fn rust_reconnect_workload(zk_server: &mut ZkServer, prefix: &str) -> Value {
    let server = zk_server.addr();
    let rt = rt();
    let p = prefix.to_string();
    let data = format!("{p}/data");
    let later = format!("{p}/later");
    let (c, session, mut r, w_data, w_exist, w_child, mut sw) = rt.block_on(async {
        let c = connect_with(&server, RECONNECT_SESSION_TIMEOUT).await;
        assert!(
            c.session_timeout() >= RECONNECT_SESSION_TIMEOUT,
            "negotiated session timeout {:?} < {RECONNECT_SESSION_TIMEOUT:?}: start the server \
             with {RECONNECT_MAX_SESSION_TIMEOUT_CFG}",
            c.session_timeout()
        );
        let session = sid(&c);
        let mut r = Recorder::new();
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let res = c.create(&p, b"", &open).await;
        r.rec("create2", &p, "OK", &res);
        let res = c.create(&data, b"v0", &open).await;
        r.rec("create2", &data, "OK", &res);
        let res = c.get_and_watch_data(&data).await;
        r.rec_extra(
            "getData",
            &data,
            "OK",
            err_name(&res),
            json!({"watch": true}),
        );
        let (_, _, w_data) = res.unwrap();
        let res = c.check_and_watch_stat(&later).await;
        let got = match &res {
            Ok((None, _)) => "NONODE",
            Ok((Some(_), _)) => "OK",
            Err(e) => error_name(e),
        };
        r.rec_extra("exists", &later, "NONODE", got, json!({"watch": true}));
        let (_, w_exist) = res.unwrap();
        let res = c.list_and_watch_children(&p).await;
        r.rec_extra(
            "getChildren",
            &p,
            "OK",
            err_name(&res),
            json!({"watch": true}),
        );
        let (_, w_child) = res.unwrap();
        // Watch the session state from before the restart, so the disconnect is not missed.
        let sw = c.state_watcher();
        (c, session, r, w_data, w_exist, w_child, sw)
    });

    // restart the server under the client's feet, same ports and data; the runtime keeps
    // running meanwhile (a frozen client would expire its own session on a slow restart)
    let restart_started = Instant::now();
    std::thread::scope(|scope| {
        let restart = scope.spawn(|| zk_server.restart());
        rt.block_on(async {
            while !restart.is_finished() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        if let Err(e) = restart.join() {
            std::panic::resume_unwind(e);
        }
    });
    let restart_took = restart_started.elapsed();

    rt.block_on(async {
        // wait until the client has lost the connection and is connected again with the
        // same session. The state watcher is a watch channel: it keeps only the latest
        // state, so a disconnect and reconnect that both happened during the restart show
        // as one change to SyncConnected. Any change since before the restart is the
        // disconnect; then wait for SyncConnected. The client's backoff can put its next
        // attempt up to about as long after the restart as the server was down: budget that
        // plus a minute.
        let budget = restart_took + WAIT;
        let deadline = tokio::time::Instant::now() + budget;
        let mut changed = false;
        while !(changed && sw.peek_state() == zk::SessionState::SyncConnected) {
            if tokio::time::timeout_at(deadline, sw.changed())
                .await
                .is_err()
            {
                panic!(
                    "client did not reconnect within {budget:?} of a {restart_took:?} restart: \
                     state {:?} (changed since restart: {changed})",
                    sw.peek_state()
                );
            }
            changed = true;
        }
        assert_eq!(sid(&c), session, "session changed across reconnect");
        // a request on the reconnected session
        let res = c.get_data(&data).await;
        r.rec_extra(
            "getData",
            &data,
            "OK",
            err_name(&res),
            json!({"watch": false}),
        );

        // a second session fires the re-armed watches
        let f = connect(&server).await;
        let f_session = sid(&f);
        let mut fr = Recorder::new();
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let res = f.set_data(&data, b"v1", None).await;
        fr.rec("setData", &data, "OK", &res);
        let res = f.create(&later, b"", &open).await;
        fr.rec("create2", &later, "OK", &res);
        let deadline = tokio::time::Instant::now() + WAIT;
        let e1 = tokio::time::timeout_at(deadline, w_data.changed()).await;
        let e2 = tokio::time::timeout_at(deadline, w_exist.changed()).await;
        let e3 = tokio::time::timeout_at(deadline, w_child.changed()).await;
        for (what, e) in [("data", &e1), ("exist", &e2), ("child", &e3)] {
            if e.is_err() {
                r.mismatches
                    .push(format!("re-armed {what} watch did not fire"));
            }
        }
        for path in [&later, &data, &p] {
            let res = f.delete(path, None).await;
            fr.rec("delete", path, "OK", &res);
        }
        close(f).await;
        fr.ops.push(close_op());
        close(c).await;
        r.ops.push(close_op());
        let mut mism = r.mismatches.clone();
        mism.extend(fr.mismatches.clone());
        assert!(mism.is_empty(), "reconnect workload mismatches: {mism:#?}");
        let main = json!({"label": "reconnecting", "session": session, "host": server,
        "ops": r.ops, "events": [
            {"path": data, "event_type": "NodeDataChanged"},
            {"path": later, "event_type": "NodeCreated"},
            {"path": p, "event_type": "NodeChildrenChanged"},
        ]});
        let firer = json!({"label": "firer", "session": f_session, "host": server,
                           "ops": fr.ops, "events": []});
        json!({
            "workload": "rust-reconnect",
            "session": session,
            "ops": main["ops"].clone(),
            "sessions": [main, firer],
            "reconnect": {
                "session": session,
                "set_watches": {"data": [data], "exist": [later], "child": [p]},
            },
        })
    })
}

/// Waits until `server` lists `n` watches for any session via `wchs`.
pub fn wait_watch_count(server: &ZkServer, n: usize, timeout: Duration) -> bool {
    wait_for(timeout, || {
        let r = server.four_letter("wchs").ok()?;
        // "... connections watching N paths\nTotal watches:M"
        let total: usize = r
            .lines()
            .find_map(|l| l.strip_prefix("Total watches:"))
            .and_then(|v| v.trim().parse().ok())?;
        (total >= n).then_some(())
    })
    .is_some()
}

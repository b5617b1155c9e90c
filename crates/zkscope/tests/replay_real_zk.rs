//! `zkscope replay` against real ZooKeeper 3.8 servers: a kazoo workload captured on A is
//! replayed into fresh servers, whose trees, error codes and notifications must match; a
//! server lacking a subtree gives exactly its NONODE differences; `--compare` finds exactly
//! the one node whose data differs; the captured server itself is refused.
//!
//! Needs root (capture on lo) and scripts/install-test-deps.sh (ZooKeeper, tcpdump, kazoo).

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

const SCRIPT: &str = r#"
import json, sys, threading
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError, BadVersionError, NotEmptyError

def client(hp):
    # long sessions: a loaded machine must not expire them (NOTES.md)
    zk = KazooClient(hosts=hp, timeout=30)
    zk.start(timeout=60)
    return zk

def walk(zk, p, out):
    data, st = zk.get(p)
    out[p] = {"data": (data or b"").decode("latin-1"), "version": st.version,
              "cversion": st.cversion, "aversion": st.aversion,
              "num_children": st.numChildren, "ephemeral": st.ephemeralOwner != 0}
    for c in sorted(zk.get_children(p)):
        walk(zk, p.rstrip("/") + "/" + c, out)

cmd, hp = sys.argv[1], sys.argv[2]
zk = client(hp)
if cmd == "tree":
    out = {}
    for root in sys.argv[3:]:
        if zk.exists(root):
            walk(zk, root, out)
    print(json.dumps(out))
elif cmd == "build":
    for p, d in sorted(json.loads(sys.argv[3]).items()):
        zk.create(p, d.encode(), makepath=True)
    print("{}")
elif cmd == "churn":
    # the parent's counter moves on: the target will choose other sequential names
    zk.ensure_path("/locks")
    for _ in range(int(sys.argv[3])):
        zk.delete(zk.create("/locks/churn-", b"", sequence=True))
    print("{}")
elif cmd == "workload":
    a, b = zk, client(hp)
    got = {k: threading.Event() for k in ("data", "child", "created")}
    a.create("/rp", b"")
    a.create("/rp/cfg", b"v0")
    a.create("/rp/app", b"")
    for i in range(4):
        a.create("/rp/app/n%d" % i, b"d%d" % i)
    s = [a.create("/locks/n-", b"s%d" % i, sequence=True) for i in range(3)]
    a.delete(s[1])
    a.set(s[2], b"seq-updated")
    b.create("/rp/eph", b"e", ephemeral=True)
    e = b.create("/locks/e-", b"", ephemeral=True, sequence=True)
    b.get(e)
    a.get("/rp/cfg", watch=lambda ev: got["data"].set())
    a.get_children("/rp/app", watch=lambda ev: got["child"].set())
    a.exists("/rp/later", watch=lambda ev: got["created"].set())
    b.set("/rp/cfg", b"v1")
    b.create("/rp/app/n9", b"")
    b.create("/rp/later", b"L")
    for k, ev in got.items():
        assert ev.wait(60), k
    errs = 0
    for f in (lambda: a.create("/rp/cfg", b""), lambda: a.get("/rp/missing"),
              lambda: a.set("/rp/cfg", b"x", version=99), lambda: a.delete("/rp/app")):
        try:
            f()
        except (NodeExistsError, NoNodeError, BadVersionError, NotEmptyError):
            errs += 1
    assert errs == 4
    a.set("/rp/app/n1", b"u1")
    a.set("/rp/app/n1", b"u2")
    a.delete("/rp/app/n0")
    t = a.transaction()
    t.create("/rp/tx", b"t")
    t.set_data("/rp/app/n2", b"t2")
    t.create("/locks/m-", b"m", sequence=True)
    res = t.commit()
    a.set(res[2], b"multi-updated")
    b.stop(); b.close()
    print(json.dumps({"seq": s, "eph": e, "multi": res[2]}))
elif cmd == "reads":
    for p in ("/rr/a/alpha", "/rr/b/beta", "/rr/b/gamma"):
        zk.get(p)
    zk.get_children("/rr/a")
    zk.get_children("/rr/b")
    zk.exists("/rr/a/alpha")
    zk.set("/rr/w", b"changed")
    print("{}")
zk.stop(); zk.close()
"#;

fn py(dir: &TempDir, args: &[&str]) -> Value {
    let script = dir.join("replay_wl.py");
    if !script.exists() {
        std::fs::write(&script, SCRIPT).expect("write script");
    }
    let mut cmd = Command::new(venv_python());
    cmd.arg(&script)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run_with_timeout(cmd, None, Duration::from_secs(180));
    assert!(
        out.status.success(),
        "python {args:?} failed:\n{}",
        tail(&String::from_utf8_lossy(&out.stderr), 30)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Runs zkscope replay; returns (exit code, stdout JSON if any, stderr).
fn replay(args: &[&str]) -> (i32, Option<Value>, String) {
    let mut cmd = Command::new(zkscope_bin());
    cmd.arg("replay").args(args);
    let out = run_with_timeout(cmd, None, Duration::from_secs(300));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).ok(),
        stderr,
    )
}

fn capture(zk: &ZkServer, dir: &TempDir, name: &str, args: &[&str]) -> String {
    let pcap = dir.join(name);
    let dump = Tcpdump::start("lo", &format!("tcp port {}", zk.client_port()), &pcap);
    let addr = zk.addr();
    let mut all = vec![args[0], addr.as_str()];
    all.extend_from_slice(&args[1..]);
    let manifest = py(dir, &all);
    let pcap = dump.stop();
    let _ = manifest;
    pcap.to_str().expect("UTF-8 path").to_string()
}

/// (class op, class path) → row.
fn classes(v: &Value) -> BTreeMap<(String, String), Value> {
    v["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| {
            (
                (
                    c["op"].as_str().unwrap().to_string(),
                    c["path"].as_str().unwrap().to_string(),
                ),
                c.clone(),
            )
        })
        .collect()
}

fn err_diffs(v: &Value) -> Vec<(String, String, String, String, u64)> {
    v["error_differences"]
        .as_array()
        .expect("error_differences")
        .iter()
        .map(|d| {
            (
                d["op"].as_str().unwrap().to_string(),
                d["path"].as_str().unwrap().to_string(),
                d["captured"].as_str().unwrap().to_string(),
                d["replayed"].as_str().unwrap().to_string(),
                d["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn replay_with_writes_rebuilds_the_same_tree() {
    let dir = TempDir::new("replay");
    let a = ZkServer::standalone(ZkOpts::new());
    // A's /locks has moved its counter before the capture; the targets' have not: every
    // sequential name differs, so later requests only hit the right nodes if names are mapped.
    py(&dir, &["churn", &a.addr(), "7"]);
    let pcap = capture(&a, &dir, "workload.pcap", &["workload"]);
    // As fast as the order allows, and at the captured pace (twice as fast).
    for pace in [&["--max-speed"][..], &["--speed", "2"]] {
        let b = ZkServer::standalone(ZkOpts::new());
        py(&dir, &["churn", &b.addr(), "0"]);
        replay_and_check(&dir, &a, &pcap, &b.addr(), &b.addr(), pace, &|| ());
    }
    // Into a three-server ensemble, sessions spread over its members.
    let ens = ZkEnsemble::start(3, ZkOpts::new().standalone_enabled(false));
    let members: Vec<String> = (1..=3).map(|id| ens.server(id).addr()).collect();
    py(&dir, &["churn", &members[0], "0"]);
    let synced = || {
        for id in 1..=3 {
            ens.wait_synced(id, Duration::from_secs(60));
        }
    };
    replay_and_check(
        &dir,
        &a,
        &pcap,
        &members.join(","),
        &members[2],
        &["--max-speed"],
        &synced,
    );
}

/// Replays the write workload into `to` and checks the report and the tree read from
/// `tree_from` (after `settle`).
fn replay_and_check(
    dir: &TempDir,
    a: &ZkServer,
    pcap: &str,
    to: &str,
    tree_from: &str,
    pace: &[&str],
    settle: &dyn Fn(),
) {
    let port = format!("--port={}", a.client_port());
    let mut args = vec![
        "-r",
        pcap,
        &port,
        "--to",
        to,
        "--allow-writes",
        "--format",
        "json",
        "-q",
        // every notification is expected: a loaded machine may deliver one late
        "--notification-wait",
        "60s",
    ];
    args.extend_from_slice(pace);
    let (code, report, stderr) = replay(&args);
    assert_eq!(code, 0, "{stderr}");
    let v = report.expect("JSON report");
    assert_eq!(v["sessions_captured"], 2, "{v:#}");
    assert_eq!(v["sessions_replayed"], 2);
    assert_eq!(v["sessions_failed"], 0);
    assert_eq!(err_diffs(&v), vec![], "{v:#}");
    assert_eq!(v["skipped"], json!({}), "{v:#}");
    assert_eq!(v["requests_no_reply"], 0);
    let cl = classes(&v);
    for ((op, path), row) in &cl {
        assert_eq!(
            row["captured_calls"], row["replayed_calls"],
            "{op} {path}: {row}"
        );
        assert_eq!(row["differing"], 0, "{op} {path}: {row}");
    }
    // The workload's expected errors were hit on both sides.
    for (op, err) in [
        ("create", "NODEEXISTS"),
        ("getData", "NONODE"),
        ("setData", "BADVERSION"),
        ("delete", "NOTEMPTY"),
    ] {
        let n: u64 = cl
            .iter()
            .filter(|((o, _), _)| o == op)
            .map(|(_, r)| r["replayed_errors"][err].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(n, 1, "{op} {err}: {v:#}");
    }
    assert!(cl.keys().any(|(op, _)| op == "multi"), "{v:#}");
    // Latency of both sides, per class, with the ratio.
    let set = &cl[&("setData".to_string(), "/rp/app/n{n}".to_string())];
    for k in [
        "captured_p50_ms",
        "captured_p99_ms",
        "replayed_p50_ms",
        "replayed_p99_ms",
    ] {
        assert!(set[k].as_f64().unwrap() > 0.0, "{k}: {set}");
    }
    assert!(set["p99_ratio"].as_f64().is_some(), "{set}");
    // Both captured sessions were mapped to sessions of B.
    let sessions = v["session_map"].as_object().expect("session_map");
    assert_eq!(sessions.len(), 2, "{v:#}");
    assert!(sessions.iter().all(|(c, r)| Some(c.as_str()) != r.as_str()));
    // Notifications: three fired in the capture, the same three in the replay.
    let captured: u64 = v["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["captured"].as_u64().unwrap())
        .sum();
    assert_eq!(captured, 3, "{v:#}");
    assert_eq!(v["notifications_missing"], 0, "{v:#}");
    assert_eq!(v["notifications_extra"], 0, "{v:#}");

    // Every sequential name was mapped (3 + ephemeral + the multi's).
    let names = v["sequential_names"].as_object().expect("names");
    assert_eq!(names.len(), 5, "{v:#}");
    let map_path = |p: &str| -> String {
        names
            .get(p)
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| p.to_string())
    };
    settle();
    let tree_a = py(dir, &["tree", &a.addr(), "/rp", "/locks"]);
    let tree_b = py(dir, &["tree", tree_from, "/rp", "/locks"]);
    let mut want: BTreeMap<String, Value> = tree_a
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, n)| (map_path(p), n.clone()))
        .collect();
    let mut got: BTreeMap<String, Value> = tree_b
        .as_object()
        .unwrap()
        .iter()
        .map(|(p, n)| (p.clone(), n.clone()))
        .collect();
    // /locks' child counter is history from before the capture.
    for t in [&mut want, &mut got] {
        if let Some(l) = t.get_mut("/locks") {
            l["cversion"] = Value::Null;
        }
    }
    assert!(want.len() >= 10, "{want:#?}");
    assert_eq!(got, want);
}

#[test]
fn missing_subtree_compare_and_refusal() {
    let dir = TempDir::new("replay-reads");
    let a = ZkServer::standalone(ZkOpts::new());
    let b = ZkServer::standalone(ZkOpts::new());
    let c = ZkServer::standalone(ZkOpts::new());
    let full = json!({"/rr/a/alpha": "one", "/rr/b/beta": "b", "/rr/b/gamma": "g", "/rr/w": ""});
    py(&dir, &["build", &a.addr(), &full.to_string()]);
    let mut lacking = full.clone();
    lacking
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !k.starts_with("/rr/b"));
    py(&dir, &["build", &b.addr(), &lacking.to_string()]);
    let mut other = full.clone();
    other["/rr/a/alpha"] = json!("two");
    py(&dir, &["build", &c.addr(), &other.to_string()]);
    let pcap = capture(&a, &dir, "reads.pcap", &["reads"]);
    let port = format!("--port={}", a.client_port());

    // Reads only by default: B lacks /rr/b, so exactly those reads differ. The first server
    // of the list is down: sessions go to the next.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let to = format!("{dead},{}", b.addr());
    let (code, report, stderr) =
        replay(&["-r", &pcap, &port, "--to", &to, "--format", "json", "-q"]);
    assert_eq!(code, 0, "{stderr}");
    let v = report.expect("JSON report");
    assert_eq!(v["sessions_replayed"], 1, "{v:#}");
    assert_eq!(v["sessions_failed"], 0, "{v:#}");
    let mut diffs = err_diffs(&v);
    diffs.sort();
    let s = |x: &str| x.to_string();
    assert_eq!(
        diffs,
        vec![
            (s("getChildren"), s("/rr/b"), s("OK"), s("NONODE"), 1),
            (s("getData"), s("/rr/b/beta"), s("OK"), s("NONODE"), 1),
            (s("getData"), s("/rr/b/gamma"), s("OK"), s("NONODE"), 1),
        ],
        "{v:#}"
    );
    // The same as text.
    let mut cmd = Command::new(zkscope_bin());
    cmd.args(["replay", "-r", &pcap, &port, "--to", &b.addr(), "-q"]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(300));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for line in [
        "# Error codes that differ (captured → replayed)",
        "  getData /rr/b/beta: OK → NONODE ×1",
        "  getChildren /rr/b: OK → NONODE ×1",
        "#   not sent (write (no --allow-writes)): 1",
        "# Notifications: 0 missing, 0 extra",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in\n{text}");
    }
    // The captured write was not sent.
    assert_eq!(
        v["skipped"],
        json!({"write (no --allow-writes)": 1}),
        "{v:#}"
    );
    let tree_b = py(&dir, &["tree", &b.addr(), "/rr"]);
    assert_eq!(tree_b["/rr/w"]["version"], 0, "{tree_b:#}");

    // The captured server is refused: by its address, and through another address by the
    // nodes it holds (same creation zxid and time).
    let (code, report, stderr) = replay(&["-r", &pcap, &port, "--to", &a.addr()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(report.is_none());
    assert!(
        stderr.contains("refusing") && stderr.contains("a server of the capture"),
        "{stderr}"
    );
    let other_addr = format!("127.0.0.2:{}", a.client_port());
    let (code, _, stderr) = replay(&["-r", &pcap, &port, "--to", &other_addr]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("refusing") && stderr.contains("created at the captured zxid"),
        "{stderr}"
    );

    // --compare A (forced) with C, where one node's data differs: exactly that difference.
    let (code, report, stderr) = replay(&[
        "-r",
        &pcap,
        &port,
        "--to",
        &a.addr(),
        "--force",
        "--compare",
        &c.addr(),
        "--format",
        "json",
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v = report.expect("JSON report");
    assert_eq!(
        v["answer_differences"],
        json!([{"op": "getData", "path": "/rr/a/alpha", "field": "data",
                "target": "\"one\"", "compare": "\"two\""}]),
        "{v:#}"
    );
    assert_eq!(err_diffs(&v), vec![], "{v:#}");
}

/// A real 3.8 session capture (crud, watches, multi, auth, TTL and container nodes, a
/// reconnect) replayed at 4× into a fresh server under a chroot, with the captured digest
/// user's credentials given on the command line.
#[test]
fn fixture_replay_paced_under_a_chroot_with_auth() {
    let dir = TempDir::new("replay-fixture");
    let z = ZkServer::standalone(ZkOpts::new());
    let pcap = support::repo_root().join("fixtures/real/zk38-session.pcap");
    let pcap = pcap.to_str().unwrap();
    let base = [
        "-r",
        pcap,
        "--port",
        "2181",
        "--allow-writes",
        "--chroot",
        "/replay",
        "--speed",
        "4",
        "--format",
        "json",
        "-q",
    ];
    let addr = z.addr();
    let mut args = base.to_vec();
    args.extend(["--to", &addr, "--auth", "digest:user:pass"]);
    let (code, report, stderr) = replay(&args);
    assert_eq!(code, 0, "{stderr}");
    let v = report.expect("JSON report");
    let mut diffs = err_diffs(&v);
    diffs.sort();
    let s = |x: &str| x.to_string();
    // TTL nodes need extendedTypesEnabled, which the fresh server lacks: the only differences.
    assert_eq!(
        diffs,
        vec![
            (
                s("createTTL"),
                s("/cli/ttl"),
                s("OK"),
                s("UNIMPLEMENTED"),
                1
            ),
            (
                s("createTTL"),
                s("/rust/ttl"),
                s("OK"),
                s("UNIMPLEMENTED"),
                1
            ),
            (s("delete"), s("/cli/ttl"), s("OK"), s("NONODE"), 1),
            (s("delete"), s("/rust/ttl"), s("OK"), s("NONODE"), 1),
        ],
        "{v:#}"
    );
    let unserved: Vec<&str> = v["unserved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["path"].as_str().unwrap())
        .collect();
    assert_eq!(unserved, ["/cli/ttl", "/rust/ttl"], "{v:#}");
    // Without TTL nodes their notifications are missing, and only those.
    let mut missing: Vec<(String, String)> = v["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["missing"] != 0)
        .map(|r| {
            (
                r["event"].as_str().unwrap().into(),
                r["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    missing.sort();
    assert_eq!(
        missing,
        [
            (s("NodeCreated"), s("/rust/ttl")),
            (s("NodeDeleted"), s("/cli/ttl")),
            (s("NodeDeleted"), s("/rust/ttl")),
        ],
        "{v:#}"
    );
    assert_eq!(v["notifications_extra"], 0, "{v:#}");
    // The captured auth was replaced by --auth: the digest-protected reads succeed as captured,
    // and the anonymous session still gets NOAUTH.
    let cl = classes(&v);
    let auth = &cl[&(s("auth"), s(""))];
    assert_eq!(auth["replayed_errors"], json!({"OK": 1}), "{v:#}");
    assert_eq!(
        cl[&(s("getData"), s("/auth"))]["replayed_errors"],
        cl[&(s("getData"), s("/auth"))]["captured_errors"]
    );
    // Pacing: requests cannot go out faster than a quarter of the captured span.
    let captured = v["captured_secs"].as_f64().unwrap();
    let replayed = v["replay_secs"].as_f64().unwrap();
    assert!(captured > 1.0, "{v:#}");
    assert!(replayed >= captured / 4.0 * 0.99, "{captured} {replayed}");
    assert!(v["lag"]["count"].as_u64().unwrap() > 100, "{v:#}");
    // Everything written went under the chroot.
    let tree = py(&dir, &["tree", &addr, "/"]);
    let outside: Vec<&String> = tree
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| *p != "/" && !p.starts_with("/replay") && !p.starts_with("/zookeeper"))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    assert!(tree.get("/replay").is_some(), "{tree:#}");

    // Without --auth, the captured auth is not re-sent: the digest-protected reads now differ.
    let z2 = ZkServer::standalone(ZkOpts::new());
    let addr2 = z2.addr();
    let mut args = base.to_vec();
    args.extend(["--to", &addr2]);
    let (code, report, stderr) = replay(&args);
    assert_eq!(code, 0, "{stderr}");
    let v = report.expect("JSON report");
    assert_eq!(v["skipped"]["captured credentials"], 1, "{v:#}");
    assert!(
        err_diffs(&v)
            .iter()
            .any(|d| d.1 == "/auth" && d.2 == "OK" && d.3 == "NOAUTH"),
        "{v:#}"
    );
}

//! `zkscope digest` on a known workload against a real ZooKeeper 3.8: 500 getData on one
//! path, 50 setData on another, 30 getData answered NONODE on a third. The digest must count
//! and rank them exactly.
//!
//! Needs root (capture on lo) and scripts/install-test-deps.sh (ZooKeeper, tcpdump, kazoo).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::*;

const WORKLOAD: &str = r#"
import sys
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

host, port = sys.argv[1], sys.argv[2]
# kazoo drops a connection whose ping is not answered within about a third of the session
# timeout (10 s by default), and a loaded machine can hold replies behind a slow fsync: the
# reconnection would make a second connect and fail the request in flight.
zk = KazooClient(hosts="%s:%s" % (host, port), timeout=30)
zk.start(timeout=60)
zk.create("/dg", b"")
zk.create("/dg/read", b"r" * 100)
zk.create("/dg/write", b"")
for _ in range(500):
    zk.get("/dg/read")
for i in range(50):
    zk.set("/dg/write", b"w" * i)
missing = 0
for _ in range(30):
    try:
        zk.get("/dg/missing")
    except NoNodeError:
        missing += 1
assert missing == 30
zk.stop()
zk.close()
print('{"ok": true}')
"#;

fn digest(pcap: &str, port: u16, extra: &[&str]) -> Value {
    let port = format!("--port={port}");
    let mut args = vec!["digest", "-r", pcap, &port, "--format", "json", "-q"];
    args.extend_from_slice(extra);
    let out = std::process::Command::new(zkscope_bin())
        .args(&args)
        .output()
        .expect("run zkscope digest");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn items(v: &Value) -> Vec<(String, u64, u64)> {
    v["profile"]
        .as_array()
        .expect("profile")
        .iter()
        .map(|r| {
            (
                r["item"].as_str().unwrap().to_string(),
                r["calls"].as_u64().unwrap(),
                r["errors"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn known_workload_is_ranked_and_counted_exactly() {
    let zk = ZkServer::standalone(ZkOpts::new());
    let port = zk.client_port();
    let dir = TempDir::new("digest");
    let script = dir.join("digest_workload.py");
    std::fs::write(&script, WORKLOAD).expect("write workload");
    let pcap = dir.join("digest.pcap");
    let dump = Tcpdump::start("lo", &format!("tcp port {port}"), &pcap);
    let p = port.to_string();
    let live = ZkscopeLive::start(&[
        "digest",
        "-i",
        "lo",
        "--port",
        &p,
        "--format",
        "json",
        "--order-by",
        "calls",
    ]);
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(&script)
        .args(["127.0.0.1", &port.to_string()])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run_with_timeout(cmd, None, Duration::from_secs(180));
    assert!(
        out.status.success(),
        "workload failed:\n{}",
        tail(&String::from_utf8_lossy(&out.stderr), 30)
    );
    let live = live.stop();
    let pcap = dump.stop();
    let pcap = pcap.to_str().expect("UTF-8 path");

    let v = digest(pcap, port, &["--order-by", "calls"]);
    let got = items(&v);
    assert_eq!(
        got.get(..3).expect("three classes at least"),
        [
            ("getData /dg/read".to_string(), 500, 0),
            ("setData /dg/write".to_string(), 50, 0),
            ("getData /dg/missing".to_string(), 30, 30),
        ]
    );
    let classes: BTreeMap<String, &Value> = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                format!(
                    "{} {}",
                    c["op"].as_str().unwrap(),
                    c["path"].as_str().unwrap()
                ),
                c,
            )
        })
        .collect();
    let missing = classes["getData /dg/missing"];
    assert_eq!(missing["error_codes"]["NONODE"], 30);
    let read = classes["getData /dg/read"];
    assert_eq!(read["latency_us"]["count"], 500);
    assert_eq!(read["error_codes"]["OK"], 500);
    let hist: u64 = read["histogram"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(hist, 500);
    assert_eq!(classes["create /dg/read"]["calls"], 1);
    // Every classified call is one of the workload's: 3 creates + 500 + 50 + 30 + close.
    assert_eq!(v["header"]["calls"], 3 + 500 + 50 + 30 + 1);
    assert_eq!(v["header"]["errors"], 30);
    assert_eq!(v["sessions"]["connects"], 1);
    assert_eq!(v["sessions"]["closes"], 1);

    // Live until Ctrl-C: the same report.
    assert!(live.saw_ready_line, "{}", live.stderr);
    assert_eq!(live.messages.len(), 1, "{live:?}");
    let lv = &live.messages[0];
    assert_eq!(items(lv).get(..3), items(&v).get(..3));
    assert_eq!(lv["header"]["calls"], v["header"]["calls"]);

    // Ranked by errors, the NONODE class comes first.
    let by_errors = items(&digest(
        pcap,
        port,
        &["--order-by", "errors", "--limit", "1"],
    ));
    assert_eq!(by_errors, [("getData /dg/missing".to_string(), 30, 30)]);

    // Ranked by total response time, the 500 reads outweigh 30 misses.
    let by_time = items(&digest(pcap, port, &[]));
    let pos = |item: &str| by_time.iter().position(|r| r.0 == item).unwrap();
    assert!(pos("getData /dg/read") < pos("getData /dg/missing"));
}

//! Records the real-capture fixtures in fixtures/real/ (ignored by default;
//! run `scripts/record-fixture.sh`, which also writes the pcapng copy and
//! the summaries). Needs root, a free port 2181 and
//! scripts/install-test-deps.sh.
//!
//! Output dir: $ZKSCOPE_RECORD_DIR (default: <repo>/fixtures/real).
//! For each capture X.pcap it writes X.manifest.json: the JSON array of
//! workload manifests (see tests/workloads/README.md) that
//! tests/fixtures_real.rs checks zkscope's output against.

mod support;

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use support::*;

const PORT: u16 = 2181;

fn out_dir() -> PathBuf {
    std::env::var_os("ZKSCOPE_RECORD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("fixtures/real"))
}

fn record(dir: &Path, name: &str, iface: &str, extra: &[&str], work: impl FnOnce() -> Vec<Value>) {
    let pcap = dir.join(format!("{name}.pcap"));
    let _ = fs::remove_file(&pcap);
    let dump = Tcpdump::start_with(iface, &format!("tcp port {PORT}"), &pcap, extra);
    let manifests = work();
    let (pcap, stats) = dump.stop_with_stats();
    assert_eq!(stats.dropped, Some(0), "{}", stats.stderr);
    // tcpdump -Z root keeps root as owner; make the files readable
    let manifest = dir.join(format!("{name}.manifest.json"));
    fs::write(
        &manifest,
        serde_json::to_string_pretty(&Value::Array(manifests)).unwrap() + "\n",
    )
    .unwrap();
    eprintln!(
        "[record] {} ({} bytes, {:?} packets)",
        pcap.display(),
        file_len(&pcap),
        stats.captured
    );
}

#[test]
#[ignore = "records fixtures; run scripts/record-fixture.sh"]
fn record_real_fixtures() {
    let dir = out_dir();
    fs::create_dir_all(&dir).unwrap();
    let zk = ZkServer::standalone(ZkOpts::new().extended_types().client_port(PORT));
    let p = PORT.to_string();
    let v4 = "127.0.0.1";
    let addr = zk.addr();

    // 1. A varied session on lo (Ethernet link type), workloads one after
    //    the other.
    record(&dir, "zk38-session", "lo", &[], || {
        vec![
            kazoo("fourlw.py", &[v4, &p, "--commands", "ruok,srvr"]),
            kazoo("crud.py", &[v4, &p]),
            kazoo("watches.py", &[v4, &p]),
            kazoo("multi.py", &[v4, &p]),
            kazoo("auth.py", &[v4, &p]),
            kazoo("ping.py", &[v4, &p, "--seconds", "5"]),
            kazoo("pipeline.py", &[v4, &p, "--count", "40"]),
            java_cli_workload(&addr, "/cli"),
            zkclient::rust_client_workload(&addr, "/rust"),
        ]
    });

    // 2. A short session captured with -i any: Linux cooked capture v2.
    record(&dir, "zk38-any-sll2", "any", &["-y", "LINUX_SLL2"], || {
        vec![kazoo("crud.py", &[v4, &p, "--prefix", "/any"])]
    });

    // 3. IPv6 on ::1.
    record(&dir, "zk38-ipv6", "lo", &[], || {
        vec![
            kazoo("crud.py", &["::1", &p, "--prefix", "/v6"]),
            kazoo("fourlw.py", &["::1", &p, "--commands", "ruok,srvr"]),
        ]
    });
}

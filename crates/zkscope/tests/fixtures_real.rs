//! zkscope on the real captures shipped in fixtures/real/ (recorded by
//! scripts/record-fixture.sh from Debian's ZooKeeper 3.8 on port 2181),
//! checked against the manifests recorded alongside them.
//!
//! `zkscope dump -r FILE --format json` is run WITHOUT --port: the captures
//! use ZooKeeper's default client port 2181.
//! ZKSCOPE_TEST_DECODER=oracle checks the .pcap files with scripts/zkpcap.py
//! instead (pcapng is then skipped: the oracle reads classic pcap only).

mod support;

use serde_json::Value;
use std::path::PathBuf;
use support::check::{assert_no_problems, check_basic_shape, check_manifest};
use support::*;

fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures/real").join(name)
}

fn manifests(name: &str) -> Vec<Value> {
    let p = fixture(&format!("{name}.manifest.json"));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

fn check_fixture(file: &str, manifest_name: &str, extra: impl Fn(&[Value]) -> Vec<String>) {
    let path = fixture(file);
    assert!(path.exists(), "missing fixture {}", path.display());
    let decoded = if use_oracle() {
        if file.ends_with(".pcapng") {
            return;
        }
        oracle_dump_file(&path, &[2181])
    } else {
        zkscope_dump_file(&path, &[])
    };
    let mut problems = Vec::new();
    if !decoded.success {
        problems.push(format!("zkscope failed:\n{}", tail(&decoded.stderr, 20)));
    }
    problems.extend(
        decoded
            .bad_lines
            .iter()
            .take(5)
            .map(|l| format!("non-JSON line: {l}")),
    );
    problems.extend(check_basic_shape(&decoded.messages));
    for m in manifests(manifest_name) {
        problems.extend(check_manifest(&decoded.messages, &m));
    }
    problems.extend(extra(&decoded.messages));
    assert_no_problems(file, &problems);
}

fn all_clients_start_with(msgs: &[Value], prefix: &str) -> Vec<String> {
    msgs.iter()
        .filter(|m| !m["client"].as_str().is_some_and(|c| c.starts_with(prefix)))
        .take(3)
        .map(|m| format!("client not {prefix}…: {m}"))
        .collect()
}

#[test]
fn session_pcap() {
    check_fixture("zk38-session.pcap", "zk38-session", |_| vec![]);
}

#[test]
fn session_pcapng() {
    check_fixture("zk38-session.pcapng", "zk38-session", |_| vec![]);
}

#[test]
fn any_interface_sll2() {
    check_fixture("zk38-any-sll2.pcap", "zk38-any-sll2", |m| {
        all_clients_start_with(m, "127.0.0.1:")
    });
}

#[test]
fn ipv6_session() {
    check_fixture("zk38-ipv6.pcap", "zk38-ipv6", |m| {
        all_clients_start_with(m, "[::1]:")
    });
}

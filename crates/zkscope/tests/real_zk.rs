//! End-to-end tests against a real ZooKeeper 3.8 (Debian package).
//!
//! Each test starts a server on free ports, captures its client port on `lo`
//! twice — tcpdump into a pcap file and `zkscope dump -i lo` live — runs
//! workloads that print manifests of the requests they made, then checks
//! `zkscope dump -r FILE --format json` and the live output against those
//! manifests (see support::check; field names in support::check::fields).
//!
//! The pcap is also decoded by scripts/zkpcap.py, an independent decoder:
//! if *that* disagrees with a manifest the harness itself is broken, and the
//! test says so. `ZKSCOPE_TEST_DECODER` = `both` (default) | `zkscope` (skip
//! the oracle) | `oracle` (skip zkscope: exercises the harness without the
//! binary).
//!
//! Needs root (capture on lo) and scripts/install-test-deps.sh.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;
use support::check::{assert_no_problems, check_basic_shape, check_manifest};
use support::*;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Both,
    ZkscopeOnly,
    OracleOnly,
}

fn mode() -> Mode {
    match std::env::var("ZKSCOPE_TEST_DECODER").as_deref() {
        Ok("oracle") => Mode::OracleOnly,
        Ok("zkscope") => Mode::ZkscopeOnly,
        _ => Mode::Both,
    }
}

struct Captured {
    pcap: PathBuf,
    stats: CaptureStats,
    live: Option<LiveOutput>,
}

/// Starts tcpdump and zkscope live on `lo` for `port`, runs `work`, stops
/// both captures.
fn capture<T>(port: u16, dir: &TempDir, name: &str, work: impl FnOnce() -> T) -> (T, Captured) {
    let pcap = dir.join(format!("{name}.pcap"));
    let dump = Tcpdump::start("lo", &format!("tcp port {port}"), &pcap);
    let live = (mode() != Mode::OracleOnly).then(|| ZkscopeLive::on_port(port, &[]));
    let out = work();
    let live = live.map(ZkscopeLive::stop);
    let (pcap, stats) = dump.stop_with_stats();
    (out, Captured { pcap, stats, live })
}

/// Checks all manifests against the decoders selected by `mode()`.
fn verify(what: &str, manifests: &[Value], cap: &Captured, ports: &[u16]) {
    assert!(
        file_len(&cap.pcap) > 24,
        "{what}: empty capture {}",
        cap.pcap.display()
    );
    assert_eq!(
        cap.stats.dropped,
        Some(0),
        "{what}: tcpdump dropped packets (harness problem):\n{}",
        cap.stats.stderr
    );
    if mode() != Mode::ZkscopeOnly {
        let oracle = oracle_dump_file(&cap.pcap, ports);
        assert!(oracle.success, "zkpcap.py failed:\n{}", oracle.stderr);
        let problems: Vec<String> = manifests
            .iter()
            .flat_map(|m| check_manifest(&oracle.messages, m))
            .collect();
        assert_no_problems(
            &format!(
                "{what}: HARNESS problem — the reference decoder scripts/zkpcap.py \
                 disagrees with the workload manifests ({})",
                cap.pcap.display()
            ),
            &problems,
        );
    }
    if mode() == Mode::OracleOnly {
        return;
    }
    let mut problems = Vec::new();
    let port_args: Vec<String> = ports.iter().map(|p| format!("--port={p}")).collect();
    let port_args: Vec<&str> = port_args.iter().map(String::as_str).collect();
    let file = zkscope_dump_file(&cap.pcap, &port_args);
    if !file.success {
        problems.push(format!(
            "file: zkscope dump -r failed:\n{}",
            tail(&file.stderr, 20)
        ));
    }
    problems.extend(
        file.bad_lines
            .iter()
            .take(5)
            .map(|l| format!("file: non-JSON stdout line: {l}")),
    );
    problems.extend(
        check_basic_shape(&file.messages)
            .into_iter()
            .map(|p| format!("file: {p}")),
    );
    for m in manifests {
        problems.extend(
            check_manifest(&file.messages, m)
                .into_iter()
                .map(|p| format!("file: {p}")),
        );
    }
    if let Some(live) = &cap.live {
        if !live.saw_ready_line {
            problems.push("live: no 'listening on' readiness line on stderr".into());
        }
        problems.extend(
            live.bad_lines
                .iter()
                .take(5)
                .map(|l| format!("live: non-JSON stdout line: {l}")),
        );
        for m in manifests {
            problems.extend(
                check_manifest(&live.messages, m)
                    .into_iter()
                    .map(|p| format!("live: {p}")),
            );
        }
        if !problems.is_empty() {
            problems.push(format!("live stderr tail:\n{}", tail(&live.stderr, 15)));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("(capture kept at {})", cap.pcap.display()));
    }
    assert_no_problems(&format!("{what}: zkscope output"), &problems);
}

/// All the kazoo workloads, the Java CLI and the Rust client against one
/// standalone server, concurrently (distinct prefixes).
#[test]
fn standalone_workloads() {
    let zk = ZkServer::standalone(ZkOpts::new().extended_types());
    let port = zk.client_port();
    let p = port.to_string();
    let dir = TempDir::new("real-zk");
    let v4 = "127.0.0.1";
    let (manifests, cap) = capture(port, &dir, "standalone", || {
        thread::scope(|s| {
            let kz = |script: &'static str, host: &'static str, extra: Vec<&'static str>| {
                let p = p.clone();
                s.spawn(move || {
                    let mut args = vec![host, p.as_str()];
                    args.extend(extra);
                    kazoo(script, &args)
                })
            };
            let handles = vec![
                kz("crud.py", v4, vec![]),
                kz("crud.py", "::1", vec!["--prefix", "/crud6"]),
                kz("watches.py", v4, vec![]),
                kz("multi.py", v4, vec![]),
                kz("auth.py", v4, vec![]),
                kz("big.py", v4, vec![]),
                kz("pipeline.py", v4, vec![]),
                kz("fourlw.py", v4, vec![]),
                kz("ping.py", v4, vec![]),
                s.spawn(|| java_cli_workload(&zk.addr(), "/cli")),
                s.spawn(|| zkclient::rust_client_workload(&zk.addr(), "/rust")),
            ];
            handles
                .into_iter()
                .map(|h| h.join().expect("workload panicked"))
                .collect::<Vec<Value>>()
        })
    });
    verify("standalone_workloads", &manifests, &cap, &[port]);
}

/// A session with watches survives a server restart: ConnectRequest with
/// the old session id, then SetWatches listing the watched paths.
#[test]
fn reconnect_rearms_watches() {
    // the session must outlive a restart on a loaded machine (see RECONNECT_SESSION_TIMEOUT)
    let mut zk =
        ZkServer::standalone(ZkOpts::new().cfg(zkclient::RECONNECT_MAX_SESSION_TIMEOUT_CFG));
    let port = zk.client_port();
    let dir = TempDir::new("real-zk-reconnect");
    let (manifest, cap) = capture(port, &dir, "reconnect", || {
        zkclient::rust_reconnect_workload(&mut zk, "/rc")
    });
    verify("reconnect_rearms_watches", &[manifest], &cap, &[port]);
}

/// A TLS client on the plaintext client port (what a client configured for `secureClientPort`
/// does when pointed at the wrong port): zkscope reports the connection as encrypted instead of
/// decoding its bytes as garbage, and the ZooKeeper traffic around it still decodes.
#[test]
fn tls_handshake_marks_connection_encrypted() {
    if mode() == Mode::OracleOnly {
        return;
    }
    let zk = ZkServer::standalone(ZkOpts::new());
    let port = zk.client_port();
    let dir = TempDir::new("real-zk-tls");
    let script = format!(
        "import socket, ssl\n\
         ctx = ssl.create_default_context()\n\
         ctx.check_hostname = False\n\
         ctx.verify_mode = ssl.CERT_NONE\n\
         s = socket.create_connection(('127.0.0.1', {port}), timeout=5)\n\
         try:\n    ctx.wrap_socket(s)\nexcept (OSError, ssl.SSLError):\n    pass\n"
    );
    let ((), cap) = capture(port, &dir, "tls", || {
        let mut py = std::process::Command::new("python3");
        py.args(["-c", &script]);
        let out = run_with_timeout(py, None, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // four_letter gives the reply 5 s: on a loaded machine, ask again rather than fail
        wait_for(Duration::from_secs(60), || {
            zk.four_letter("ruok").ok().filter(|r| r == "imok")
        })
        .expect("ruok");
    });
    let port_arg = format!("--port={port}");
    let file = zkscope_dump_file(&cap.pcap, &[&port_arg]);
    let live = cap.live.expect("live output");
    for (what, msgs, stderr) in [
        ("file", &file.messages, &file.stderr),
        ("live", &live.messages, &live.stderr),
    ] {
        let tls: Vec<&Value> = msgs
            .iter()
            .filter(|m| m["type"] == "TlsConnection")
            .collect();
        assert_eq!(tls.len(), 1, "{what}: {msgs:?}\n{stderr}");
        assert_eq!(tls[0]["encrypted"], true);
        assert!(
            msgs.iter()
                .any(|m| m["type"] == "FourLetterWord" && m["command"] == "ruok"),
            "{what}: {msgs:?}"
        );
        assert!(
            !msgs.iter().any(|m| m["type"] == "Undecodable"),
            "{what}: garbage decoded: {msgs:?}"
        );
        assert!(stderr.contains("1 TLS connections"), "{what}: {stderr}");
    }
}

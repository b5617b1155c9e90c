//! Command-line options of `zkscope dump` on the shipped captures.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(p)
}

fn zkscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("run zkscope")
}

fn run_ok(args: &[&str]) -> String {
    let out = zkscope(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// JSON lines of `zkscope dump -r <file> --format json <extra>`.
fn json(file: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let f = repo(file);
    let mut args = vec!["dump", "-q", "--format", "json", "-r", f.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = zkscope(&args);
    let msgs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    // nothing decoded is exit status 3, with a note
    let code = if msgs.is_empty() { 3 } else { 0 };
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    msgs
}

const DUMP: &str = "fixtures/zktraffic/dump.pcap";

#[test]
fn bpf_filter_applies_to_files() {
    assert_eq!(json(DUMP, &[]).len(), 27);
    assert_eq!(json(DUMP, &["-f", "tcp port 60446"]).len(), 27);
    assert_eq!(json(DUMP, &["-f", "tcp port 1"]).len(), 0);
    let out = zkscope(&[
        "dump",
        "-r",
        repo(DUMP).to_str().unwrap(),
        "-f",
        "not a filter (((",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("zkscope: error"));
}

#[test]
fn client_port_and_host_selection() {
    assert_eq!(json(DUMP, &["--client-port", "60446"]).len(), 27);
    assert_eq!(json(DUMP, &["--client-port", "60447"]).len(), 0);
    assert_eq!(json(DUMP, &["--include-host", "127.0.0.1"]).len(), 27);
    assert_eq!(json(DUMP, &["--include-host", "localhost"]).len(), 27);
    assert_eq!(json(DUMP, &["--include-host", "10.1.2.3"]).len(), 0);
    assert_eq!(json(DUMP, &["--exclude-host", "localhost"]).len(), 0);
    assert_eq!(json(DUMP, &["--exclude-host", "10.1.2.3"]).len(), 27);
    let out = zkscope(&[
        "dump",
        "-r",
        repo(DUMP).to_str().unwrap(),
        "--include-host",
        "a",
        "--exclude-host",
        "b",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("can't be mixed"));
}

#[test]
fn servers_and_ports_select_conversations() {
    assert_eq!(json(DUMP, &["--server", "127.0.0.1:2181"]).len(), 27);
    assert_eq!(json(DUMP, &["--server", "localhost:2181"]).len(), 27);
    assert_eq!(json(DUMP, &["--server", "127.0.0.2:2181"]).len(), 0);
    assert_eq!(json(DUMP, &["--port", "2182"]).len(), 0);
    let v6 = json("fixtures/real/zk38-ipv6.pcap", &["--server", "[::1]:2181"]);
    assert!(!v6.is_empty());
    assert!(v6.iter().all(
        |m| m["server"] == "[::1]:2181" && m["client"].as_str().unwrap().starts_with("[::1]:")
    ));
}

#[test]
fn timestamps_utc_local_and_date() {
    let f = repo(DUMP);
    let f = f.to_str().unwrap();
    let utc = run_ok(&["dump", "-q", "-p", "-r", f]);
    assert!(utc.starts_with("22:31:14.316883 "), "{utc}");
    let dated = run_ok(&["dump", "-q", "-p", "--date", "-r", f]);
    assert!(dated.starts_with("2015-06-25 22:31:14.316883 "), "{dated}");
    let out = Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(["dump", "-q", "-p", "--local-time", "--date", "-r", f])
        .env("TZ", "Asia/Kolkata")
        .output()
        .expect("run");
    let local = String::from_utf8_lossy(&out.stdout);
    assert!(local.starts_with("2015-06-26 04:01:14.316883 "), "{local}");
    // JSON carries seconds since the epoch with microseconds.
    let first = &json(DUMP, &[])[0];
    assert_eq!(first["ts"].as_f64(), Some(1435271474.316883));
}

#[test]
fn colors_are_stable_per_connection() {
    let f = repo("fixtures/real/zk38-session.pcap");
    let args = [
        "dump",
        "-q",
        "--conn-colors",
        "--color",
        "always",
        "-r",
        f.to_str().unwrap(),
    ];
    let text = run_ok(&args);
    let mut colour_of = std::collections::HashMap::new();
    // (replies may be highlighted instead: errors red, slow ones yellow)
    for line in text.lines().filter(|l| !l.contains("————►")) {
        assert!(
            line.starts_with("\x1b[3") && line.ends_with("\x1b[0m"),
            "{line:?}"
        );
        let colour = &line[..5];
        let client = line
            .split_whitespace()
            .find(|w| w.starts_with("127.0.0.1:") || w.starts_with("[::1]:"))
            .expect("client address")
            .to_string();
        assert_eq!(
            colour_of.entry(client).or_insert(colour.to_string()),
            colour
        );
    }
    assert!(colour_of.len() > 3);
    assert_eq!(text, run_ok(&args));
}

#[test]
fn show_prints_every_field() {
    let f = repo("fixtures/real/zk38-session.pcap");
    let text = run_ok(&["dump", "-q", "--show", "-r", f.to_str().unwrap()]);
    for needle in [
        "    stat:\n",
        "      czxid: ",
        "      ephemeral_owner: ",
        "    acl:\n      - perms: 31",
        "    children:\n      - ",
        "    ops:\n      - opcode: ",
        "    timeout: ",
        "    event_type: ",
    ] {
        assert!(text.contains(needle), "--show lacks {needle:?}");
    }
}

#[test]
fn help_is_there() {
    for args in [&["--help"][..], &["dump", "--help"]] {
        let out = run_ok(args);
        assert!(out.contains("Usage:"), "{out}");
    }
    let out = run_ok(&["dump", "--help"]);
    for flag in [
        "--read", "--iface", "--port", "--server", "--filter", "--show", "--format",
    ] {
        assert!(out.contains(flag), "dump --help lacks {flag}");
    }
}

#[test]
fn slow_request_log() {
    let f = "fixtures/real/zk38-session.pcap";
    let all = json(f, &[]);
    let expected: Vec<(i64, i64)> = all
        .iter()
        .filter(|m| m["latency_us"].as_f64().is_some_and(|l| l > 5000.0))
        .filter(|m| m["dir"] == "reply")
        // (the slow log is of request/reply pairs: handshakes, with their own latency, are not)
        .filter(|m| m["type"] != "ConnectReply")
        .map(|m| (m["conn"].as_i64().unwrap(), m["xid"].as_i64().unwrap()))
        .collect();
    assert!(expected.len() > 5 && expected.len() < all.len() / 4);
    let slow = json(f, &["--slow", "5ms"]);
    let got: Vec<(i64, i64)> = slow
        .iter()
        .map(|m| (m["conn"].as_i64().unwrap(), m["xid"].as_i64().unwrap()))
        .collect();
    assert_eq!(got, expected);
    // Text: each slow request with its reply, nothing else.
    let text = run_ok(&[
        "dump",
        "-q",
        "-p",
        "--slow",
        "5ms",
        "-r",
        repo(f).to_str().unwrap(),
    ]);
    assert_eq!(text.lines().count(), 2 * expected.len());
    assert!(text
        .lines()
        .skip(1)
        .step_by(2)
        .all(|l| l.starts_with("————► ")));
}

//! zk-dump's `--count-requests` / `--measure-latency` on `zkscope dump`, pinned to
//! zktraffic's own expectations on its `dump.pcap` (test_printers.py: test_count_printer,
//! test_count_printer_group_by_client, test_latency_printer).

use std::path::PathBuf;
use std::process::{Command, Output};

fn dump_pcap() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/zktraffic/dump.pcap")
        .to_str()
        .expect("UTF-8 path")
        .to_string()
}

fn zkscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("run zkscope")
}

fn dump(extra: &[&str]) -> String {
    let f = dump_pcap();
    let mut args = vec!["dump", "-q", "-r", f.as_str()];
    args.extend_from_slice(extra);
    let out = zkscope(&args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn count_printer_by_type() {
    // count=14 requests + events, pings included: zktraffic asserts each of these lines.
    let out = dump(&["--count-requests", "14", "--group-by", "type", "-p"]);
    for line in [
        "ExistsRequest 5",
        "PingRequest 3",
        "GetChildrenRequest 2",
        "GetDataRequest 1",
        "CreateRequest 1",
        "NodeDataChanged 1",
        "SetDataRequest 1",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} in\n{out}");
    }
    // The whole output: by count, ties in first-seen order, nothing else.
    assert_eq!(
        out,
        "ExistsRequest 5\nPingRequest 3\nGetChildrenRequest 2\nCreateRequest 1\n\
         GetDataRequest 1\nSetDataRequest 1\nNodeDataChanged 1\n"
    );
}

#[test]
fn count_printer_by_client() {
    let out = dump(&["--count-requests", "14", "--group-by", "client", "-p"]);
    assert_eq!(out, "127.0.0.1:60446 14\n");
}

#[test]
fn count_printer_by_path_and_depth() {
    // Pings are left out without -p (the capture then has 10 requests and 1 event).
    let out = dump(&["--count-requests", "14"]);
    assert_eq!(out, "/dknightly 7\n/ 2\n/dkni 1\n/dknigh 1\n");
    // With pings, which have no path (zk-dump prints " 3").
    let out = dump(&["--count-requests", "5", "--aggregation-depth", "1", "-p"]);
    assert_eq!(out, " 3\n/dknightly 2\n");
    let out = dump(&["--count-requests", "100", "--group-by", "type"]);
    assert!(!out.contains("PingRequest"), "{out}");
}

#[test]
fn latency_printer_by_type() {
    // count=10 pairs, pings excluded: 5 exists, 1 getData, 1 create, 2 getChildren, 1 setData.
    let out = dump(&[
        "--measure-latency",
        "10",
        "--group-by",
        "type",
        "--sort-by",
        "avg",
    ]);
    for t in [
        "GetDataRequest",
        "CreateRequest",
        "ExistsRequest",
        "GetChildrenRequest",
        "SetDataRequest",
    ] {
        assert!(out.contains(t), "{t} in\n{out}");
    }
    assert!(!out.contains("PingRequest"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 7, "{out}");
    let head: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(head, ["type", "avg", "p95", "p99"]);
    assert!(lines[1]
        .split_whitespace()
        .all(|d| d.chars().all(|c| c == '-')));
    // Seconds, sorted by avg descending; the capture's own latencies: setData 7237µs,
    // getData 956µs, create 783µs, exists (531+361+777+490+923)/5, getChildren (358+351)/2.
    let rows: Vec<(String, f64, f64, f64)> = lines[2..]
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "SetDataRequest",
            "GetDataRequest",
            "CreateRequest",
            "ExistsRequest",
            "GetChildrenRequest"
        ]
    );
    assert_eq!(rows[0].1, 0.007237);
    assert_eq!(rows[3].1, 0.0006164);
    assert_eq!(rows[3].2, 0.000923);
    assert_eq!(rows[4].1, 0.0003545);
    assert_eq!(rows[4].3, 0.000358);
    assert_eq!(
        lines[2],
        "SetDataRequest      0.007237   0.007237  0.007237"
    );
}

#[test]
fn latency_printer_sort_and_group() {
    let out = dump(&[
        "--measure-latency",
        "10",
        "--group-by",
        "path",
        "--sort-by",
        "p99",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("path"));
    assert!(lines[2].starts_with("/dknightly"), "{out}");
    let out = dump(&["--measure-latency", "3", "--group-by", "client", "-p"]);
    // Three pairs: two pings and an exists.
    assert!(out.contains("127.0.0.1:60446"), "{out}");
    assert_eq!(out.lines().count(), 3);
}

#[test]
fn count_and_latency_cannot_be_mixed() {
    let f = dump_pcap();
    let out = zkscope(&[
        "dump",
        "-r",
        &f,
        "--count-requests",
        "5",
        "--measure-latency",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("The flags --count-requests and --measure-latency can't be mixed."),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    for bad in [
        ["--group-by", "session"],
        ["--sort-by", "max"],
        ["--aggregation-depth", "-1"],
    ] {
        let mut args = vec!["dump", "-r", f.as_str(), "--count-requests", "5"];
        args.extend(bad);
        assert_eq!(zkscope(&args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn plain_dump_is_unchanged() {
    // The flags only matter with a count: plain dump still prints pairs.
    let out = dump(&["--group-by", "type"]);
    assert!(out.contains("ExistsRequest"));
    assert!(out.contains("————►"));
}

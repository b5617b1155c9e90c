//! `zkscope count` and `zkscope latency` against ground truth.
//!
//! A synthetic capture is generated at test time with `bench/gen_pcap.py` (20 000 requests
//! of 100 sessions, segments coalesced and split): its counts must equal the generator's
//! truth file exactly, and its latencies what the capture's own timestamps give, computed
//! here from the per-pair latencies of `zkscope dump --format json` with HDR's percentile
//! definition (the value at rank ceil(q·n)). Grouping options run on the same capture and on
//! zktraffic's `dump.pcap`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

#[path = "common/generated.rs"]
mod generated;
use generated::Gen;

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(p)
}

const DUMP: &str = "fixtures/zktraffic/dump.pcap";

fn zkscope_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zkscope"));
    c.args(args).env("TZ", "UTC").env_remove("COLUMNS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run zkscope")
}

fn run_ok(args: &[&str]) -> String {
    let out = zkscope_env(args, &[]);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The rows of a `--format json` run.
/// Rows of a count/latency run as JSON; pings are counted (`-p`, they are in the truth file)
/// unless the test leaves them out.
fn rows(args: &[&str]) -> Vec<serde_json::Map<String, Value>> {
    let mut a = args.to_vec();
    a.extend(["--format", "json", "-q"]);
    if !args.contains(&"--no-pings") {
        a.push("-p");
    }
    let v: Value = serde_json::from_str(&run_ok(&a)).expect("a JSON document");
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| r.as_object().expect("row objects").clone())
        .collect()
}

fn u(r: &serde_json::Map<String, Value>, k: &str) -> u64 {
    r.get(k)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{k} in {r:?}"))
}

fn s<'a>(r: &'a serde_json::Map<String, Value>, k: &str) -> &'a str {
    r.get(k).and_then(Value::as_str).unwrap_or("")
}

const GEN_ARGS: [&str; 6] = ["-n", "20000", "--coalesce", "--split", "--seed", "5"];

/// The generated capture, made once.
fn gen() -> &'static Gen {
    static G: OnceLock<Gen> = OnceLock::new();
    G.get_or_init(|| generated::generate("stats", &GEN_ARGS))
}

fn gen_pcap() -> &'static str {
    gen().pcap.to_str().expect("UTF-8 path")
}

/// Request counts by op in the truth file (createEphemeral is a subset of create).
fn truth_by_op() -> BTreeMap<String, u64> {
    gen().truth["requests_by_type"]
        .as_object()
        .expect("requests_by_type")
        .iter()
        .filter(|(k, _)| k.as_str() != "createEphemeral")
        .map(|(k, v)| (k.clone(), v.as_u64().expect("count")))
        .collect()
}

/// Requests per (path, op) in the truth file (connect, ping and closeSession have no path).
fn truth_per_path() -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for (path, ops) in gen().truth["per_path"].as_object().expect("per_path") {
        for (op, n) in ops.as_object().expect("ops") {
            if op != "createEphemeral" {
                m.insert((path.clone(), op.clone()), n.as_u64().expect("count"));
            }
        }
    }
    m
}

#[test]
fn counts_by_op_equal_the_truth_file() {
    let got: BTreeMap<String, u64> = rows(&["count", "-r", gen_pcap(), "--group-by", "op"])
        .iter()
        .map(|r| (s(r, "op").to_string(), u(r, "count")))
        .collect();
    assert_eq!(got, truth_by_op());
    assert_eq!(
        got.values().sum::<u64>(),
        gen().truth["requests_total"].as_u64().unwrap()
    );
}

#[test]
fn errors_by_op_equal_the_truth_file() {
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (op, errs) in gen().truth["replies_by_type"].as_object().unwrap() {
        for (e, n) in errs.as_object().unwrap() {
            let e = if e == "ok" { "OK" } else { e.as_str() };
            want.insert((op.clone(), e.to_string()), n.as_u64().unwrap());
        }
    }
    let rs = rows(&["count", "-r", gen_pcap(), "-g", "op,error"]);
    let got: BTreeMap<(String, String), u64> = rs
        .iter()
        .map(|r| ((s(r, "op").into(), s(r, "error").into()), u(r, "count")))
        .collect();
    assert_eq!(got, want);
    for r in &rs {
        let errors = if s(r, "error") == "OK" {
            0
        } else {
            u(r, "count")
        };
        assert_eq!(u(r, "errors"), errors, "{r:?}");
        assert_eq!(u(r, "no_reply"), 0);
    }
}

#[test]
fn counts_by_path_and_op_equal_the_truth_file() {
    let rs = rows(&["count", "-r", gen_pcap(), "-g", "path,op", "--fold", "none"]);
    let mut got = BTreeMap::new();
    for r in &rs {
        match r.get("path") {
            Some(Value::Null) => {
                // Only requests without a path.
                assert!(
                    ["connect", "ping", "closeSession"].contains(&s(r, "op")),
                    "{r:?}"
                );
            }
            _ => {
                got.insert(
                    (s(r, "path").to_string(), s(r, "op").to_string()),
                    u(r, "count"),
                );
            }
        }
    }
    assert_eq!(got, truth_per_path());
}

/// zktraffic's parent path: `'/'.join(path.split('/')[0:depth+1])`.
fn parent(path: &str, depth: usize) -> String {
    path.split('/')
        .take(depth + 1)
        .collect::<Vec<_>>()
        .join("/")
}

/// `name0000000012` → `nameN` in each component (exactly ten trailing digits).
fn fold(path: &str) -> String {
    path.split('/')
        .map(|c| {
            let b = c.as_bytes();
            let n = b.len();
            if n >= 10
                && b[n - 10..].iter().all(u8::is_ascii_digit)
                && (n == 10 || !b[n - 11].is_ascii_digit())
            {
                format!("{}{{seq}}", &c[..n - 10])
            } else {
                c.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn aggregation_depth_and_sequential_folding() {
    for (depth, folding) in [(1usize, false), (2, false), (0, true), (3, true)] {
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        for ((path, _), n) in truth_per_path() {
            let mut p = if depth > 0 {
                parent(&path, depth)
            } else {
                path
            };
            if folding {
                p = fold(&p);
            }
            *want.entry(p).or_default() += n;
        }
        let d = depth.to_string();
        let mut args = vec![
            "count",
            "-r",
            gen_pcap(),
            "-g",
            "path",
            "--aggregation-depth",
            &d,
        ];
        // sequential folding is the default (--fold-sequential still accepted)
        args.push(if folding {
            "--fold-sequential"
        } else {
            "--fold=none"
        });
        let got: BTreeMap<String, u64> = rows(&args)
            .iter()
            .filter(|r| r.get("path") != Some(&Value::Null))
            .map(|r| (s(r, "path").to_string(), u(r, "count")))
            .collect();
        assert_eq!(got, want, "depth {depth}, folding {folding}");
        if folding {
            assert!(got.keys().any(|p| p.contains("member_{seq}")));
            assert!(!got.keys().any(|p| p.contains("member_0")));
        }
    }
}

/// Per-op latencies (µs) of every answered call, from `zkscope dump --format json`: paired
/// replies carry `latency_us`; handshakes are paired here from their timestamps.
fn pair_latencies() -> &'static HashMap<String, Vec<f64>> {
    static L: OnceLock<HashMap<String, Vec<f64>>> = OnceLock::new();
    L.get_or_init(|| {
        let out = run_ok(&["dump", "-q", "--format", "json", "-r", gen_pcap()]);
        let mut by_op: HashMap<String, Vec<f64>> = HashMap::new();
        let mut connects: HashMap<u64, f64> = HashMap::new();
        for line in out.lines() {
            let m: Value = serde_json::from_str(line).expect("JSON line");
            let conn = m["conn"].as_u64().unwrap();
            let ts = m["ts"].as_f64().unwrap();
            match (m["dir"].as_str().unwrap(), m["type"].as_str().unwrap()) {
                ("request", "ConnectRequest") => {
                    connects.insert(conn, ts);
                }
                ("reply", "ConnectReply") => {
                    let t0 = connects.remove(&conn).expect("handshake request");
                    by_op
                        .entry("connect".into())
                        .or_default()
                        .push(((ts - t0) * 1e6).round());
                }
                ("reply", _) => {
                    let op = m["op"].as_str().expect("paired reply").to_string();
                    let l = m["latency_us"].as_f64().expect("latency_us");
                    by_op.entry(op).or_default().push(l);
                }
                _ => {}
            }
        }
        by_op
    })
}

/// HDR's quantile: the value at rank ceil(q·n) (at least 1) of the sorted samples.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

#[test]
fn latencies_by_op_match_the_capture_timestamps() {
    let rs = rows(&["latency", "-r", gen_pcap(), "-g", "op", "--slow", "10ms"]);
    let lat = pair_latencies();
    assert_eq!(rs.len(), lat.len());
    assert_eq!(rs.len(), truth_by_op().len());
    for r in &rs {
        let op = s(r, "op");
        let mut v = lat.get(op).unwrap_or_else(|| panic!("{op}")).clone();
        v.sort_by(f64::total_cmp);
        let n = v.len() as u64;
        assert_eq!(u(r, "count"), n, "{op}");
        assert_eq!(n, truth_by_op()[op], "{op}");
        let avg = v.iter().sum::<f64>() / n as f64;
        let got_avg = r["avg_us"].as_f64().unwrap();
        assert!((got_avg - avg).abs() < 1.0, "{op}: avg {got_avg} vs {avg}");
        for (field, q) in [
            ("p50_us", 0.5),
            ("p95_us", 0.95),
            ("p99_us", 0.99),
            ("p999_us", 0.999),
            ("max_us", 1.0),
        ] {
            let want = quantile(&v, q);
            let got = u(r, field) as f64;
            let tol = want * 0.001 + 1.0;
            assert!(
                (got - want).abs() <= tol,
                "{op} {field}: got {got}, exact {want}"
            );
        }
        assert_eq!(
            u(r, "max_us") as f64,
            *v.last().unwrap(),
            "{op}: max is exact"
        );
        let slow = v.iter().filter(|&&l| l > 10_000.0).count() as u64;
        assert_eq!(u(r, "slow"), slow, "{op}");
    }
}

#[test]
fn latency_csv_and_sorting() {
    let out = run_ok(&[
        "latency",
        "-q",
        "-r",
        gen_pcap(),
        "-g",
        "type",
        "--format",
        "csv",
        "--sort-by",
        "max",
        "-p",
    ]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("type,count,avg_us,p50_us,p95_us,p99_us,p999_us,max_us")
    );
    let maxes: Vec<u64> = lines
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(maxes.len(), 9);
    assert!(maxes.windows(2).all(|w| w[0] >= w[1]), "{maxes:?}");
    // Sorting by a key is ascending.
    let rs = rows(&["latency", "-r", gen_pcap(), "-g", "op", "--sort-by", "op"]);
    let ops: Vec<&str> = rs.iter().map(|r| s(r, "op")).collect();
    let mut sorted = ops.clone();
    sorted.sort();
    assert_eq!(ops, sorted);
}

#[test]
fn several_keys_top_and_csv_header() {
    let out = run_ok(&[
        "count",
        "-q",
        "-r",
        repo(DUMP).to_str().unwrap(),
        "-g",
        "type,path",
        "--top",
        "3",
        "--format",
        "csv",
        "-p",
    ]);
    assert_eq!(
        out,
        "type,path,count,errors,no_reply\n\
         PingRequest,,3,0,0\n\
         ExistsRequest,/dknightly,3,1,0\n\
         GetChildrenRequest,/,2,0,0\n"
    );
    let rs = rows(&[
        "count",
        "-r",
        repo(DUMP).to_str().unwrap(),
        "-g",
        "client,session,auth,server,client_ip",
    ]);
    assert_eq!(rs.len(), 1);
    let r = &rs[0];
    assert_eq!(s(r, "client"), "127.0.0.1:60446");
    assert_eq!(r.get("session"), Some(&Value::Null));
    assert_eq!(s(r, "auth"), "noauth");
    assert_eq!(s(r, "server"), "127.0.0.1:2181");
    assert_eq!(s(r, "client_ip"), "127.0.0.1");
    assert_eq!(u(r, "count"), 13);
    // Watch events only with --events; without pings.
    let rs = rows(&[
        "count",
        "-r",
        repo(DUMP).to_str().unwrap(),
        "-g",
        "type",
        "--events",
        "--no-pings",
    ]);
    let got: Vec<(&str, u64)> = rs.iter().map(|r| (s(r, "type"), u(r, "count"))).collect();
    assert_eq!(
        got,
        [
            ("ExistsRequest", 5),
            ("GetChildrenRequest", 2),
            ("CreateRequest", 1),
            ("GetDataRequest", 1),
            ("NodeDataChanged", 1),
            ("SetDataRequest", 1)
        ]
    );
}

#[test]
fn group_cap_folds_later_groups_into_other() {
    let rs = rows(&[
        "count",
        "-r",
        gen_pcap(),
        "-g",
        "path",
        "--max-groups",
        "50",
    ]);
    assert_eq!(rs.len(), 51);
    let other = rs.last().unwrap();
    assert_eq!(s(other, "path"), "(other)");
    let total: u64 = rs.iter().map(|r| u(r, "count")).sum();
    assert_eq!(total, gen().truth["requests_total"].as_u64().unwrap());
    // The note says so.
    let out = zkscope_env(
        &[
            "count",
            "-r",
            gen_pcap(),
            "-g",
            "path",
            "--max-groups",
            "50",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(other)"), "{err}");
}

#[test]
fn call_limit_and_duration() {
    let rs = rows(&["count", "-r", gen_pcap(), "-g", "op", "--count", "1000"]);
    assert_eq!(rs.iter().map(|r| u(r, "count")).sum::<u64>(), 1000);
    // --duration: the calls that completed within 50 ms of the first message.
    let out = run_ok(&["dump", "-q", "--format", "json", "-r", gen_pcap()]);
    let msgs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let t0 = msgs[0]["ts"].as_f64().unwrap();
    let want = msgs
        .iter()
        .filter(|m| m["dir"] == "reply" && m["ts"].as_f64().unwrap() - t0 < 0.05)
        .count() as u64;
    assert!(want > 100 && want < 20_000, "{want}");
    let rs = rows(&["count", "-r", gen_pcap(), "-g", "op", "--duration", "50ms"]);
    assert_eq!(rs.iter().map(|r| u(r, "count")).sum::<u64>(), want);
}

#[test]
fn text_table_fits_the_width() {
    let args = [
        "count",
        "-q",
        "-r",
        gen_pcap(),
        "-g",
        "path,type",
        "--top",
        "20",
    ];
    for width in [60usize, 100, 200] {
        let w = width.to_string();
        let out = zkscope_env(&args, &[("COLUMNS", &w)]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 21);
        assert!(lines[0].starts_with("path"));
        assert!(lines[0].contains("type") && lines[0].contains("count"));
        for l in &lines {
            assert!(l.chars().count() <= width, "{width}: {l:?}");
        }
        if width == 60 {
            assert!(text.contains('…'), "long paths are cut:\n{text}");
        }
    }
    // Not a terminal and no COLUMNS: 100 columns.
    let out = zkscope_env(&args, &[]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().all(|l| l.chars().count() <= 100));
}

#[test]
fn auth_identity_is_the_user_never_the_password() {
    let rs = rows(&[
        "count",
        "-r",
        repo("fixtures/zktraffic/auth.pcap").to_str().unwrap(),
        "-g",
        "auth,type",
    ]);
    assert_eq!(rs.len(), 1);
    assert_eq!(s(&rs[0], "auth"), "tacos");
    assert_eq!(s(&rs[0], "type"), "SetAuthRequest");
}

#[test]
fn bad_options_exit_2() {
    let f = repo(DUMP);
    let f = f.to_str().unwrap();
    for args in [
        vec!["count", "-r", f, "--group-by", "colour"],
        vec!["count", "-r", f, "--sort-by", "path"],
        vec!["count", "-r", f, "--sort-by", "p99"],
        vec!["latency", "-r", f, "--sort-by", "slow"],
        vec!["latency", "-r", f, "--duration", "soon"],
    ] {
        let out = zkscope_env(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

/// `--threads N` deals connections to N decoding threads and merges their tables: whatever N,
/// stdout, stderr and the exit status are those of one thread, on clean, damaged (lost,
/// reordered, duplicated segments: holes wait and expire on the packet clock) and real
/// captures, with the `(other)` row of `--max-groups` too.
#[test]
fn threads_change_nothing_in_the_output() {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let lossy = tmp.join(format!("stats-threads-lossy-{}.pcap", std::process::id()));
    let out = Command::new("python3")
        .arg(repo("scripts/mangle_pcap.py"))
        .arg(gen_pcap())
        .arg(&lossy)
        .args(["--seed", "3", "--drop-share", "0.02", "--reorder", "0.05"])
        .args(["--duplicate", "0.02", "--ack-first", "0.05"])
        .output()
        .expect("run mangle_pcap.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = [
        PathBuf::from(gen_pcap()),
        lossy.clone(),
        repo(DUMP),
        repo("fixtures/real/zk38-any-sll2.pcap"),
        repo("fixtures/real/zk38-session.pcapng"),
        repo("fixtures/real/zk38-ipv6.pcap"),
    ];
    let runs: [&[&str]; 5] = [
        &["count", "-g", "path"],
        &["count", "-g", "type,path", "--format", "json"],
        &[
            "count",
            "-g",
            "path",
            "--max-groups",
            "7",
            "--format",
            "json",
        ],
        &["latency", "-g", "client,op,error", "--format", "json"],
        &["count", "-g", "session,server,auth", "-p", "--events"],
    ];
    for f in &files {
        let f = f.to_str().expect("UTF-8 path");
        for run in runs {
            let mut args = run.to_vec();
            args.extend(["-r", f, "--threads"]);
            let one = zkscope_env(&[&args[..], &["1"]].concat(), &[]);
            assert!(one.status.success(), "{args:?}");
            for n in ["2", "3"] {
                let many = zkscope_env(&[&args[..], &[n]].concat(), &[]);
                assert_eq!(
                    String::from_utf8_lossy(&many.stdout),
                    String::from_utf8_lossy(&one.stdout),
                    "{args:?} {n}"
                );
                assert_eq!(
                    String::from_utf8_lossy(&many.stderr),
                    String::from_utf8_lossy(&one.stderr),
                    "{args:?} {n}"
                );
                assert_eq!(many.status.code(), one.status.code());
            }
        }
    }
    let _ = std::fs::remove_file(&lossy);
}

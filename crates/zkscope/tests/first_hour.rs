//! A new user's first hour: tcpdump habits, honest diagnostics, closed pipes, live
//! `--duration`, and the installed-tool chores (version, completions, man page).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{free_port, run_with_timeout, TempDir};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/real")
        .join(name)
}

fn zkscope(args: &[&str]) -> Output {
    let mut cmd = Command::new(support::zkscope_bin());
    cmd.args(args).env("NO_COLOR", "1");
    run_with_timeout(cmd, None, Duration::from_secs(120))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn session() -> String {
    fixture("zk38-session.pcap").to_string_lossy().into_owned()
}

/// tcpdump habits: -n is accepted, a trailing expression filters, -D lists the interfaces.
#[test]
fn tcpdump_habits() {
    let f = session();
    let direct = zkscope(&["dump", "-q", "-r", &f, "--format", "json"]);
    let out = zkscope(&["dump", "-q", "-n", "-r", &f, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, direct.stdout);
    // trailing expression: one client port only
    let all = zkscope(&["count", "-q", "-r", &f, "-g", "client", "--format", "json"]);
    let rows: Vec<Value> = serde_json::from_slice(&all.stdout).unwrap();
    let client = rows[0]["client"].as_str().unwrap().to_string();
    let port = client.rsplit(':').next().unwrap();
    let one = zkscope(&[
        "count",
        "-q",
        "-r",
        &f,
        "-g",
        "client",
        "--format",
        "json",
        "port",
        port,
        "and",
        "host",
        "127.0.0.1",
    ]);
    let rows: Vec<Value> = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["client"], client.as_str());
    // -D
    let out = zkscope(&["dump", "-D"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains(".lo [Loopback"),
        "{}",
        text(&out.stdout)
    );
}

/// Closed stdout or stderr: the usual exit status, never a panic (101).
#[test]
fn closed_pipes_do_not_panic() {
    let f = session();
    for (args, code) in [
        (vec!["dump", "-r", "/nonexistent"], 2),
        (vec!["dump", "-r", f.as_str()], 0),
        (vec!["count", "-r", f.as_str()], 0),
        (vec!["digest", "-r", f.as_str()], 0),
        (vec!["completions", "bash"], 0),
        (vec!["--version"], 0),
        (vec!["dump", "--slow", "15", "-r", f.as_str()], 2),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let status = Command::new(support::zkscope_bin())
            .args(&args)
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code), "{args:?}");
    }
}

/// A bare `--slow 15` asks for a unit.
#[test]
fn bare_durations_ask_for_a_unit() {
    let out = zkscope(&["dump", "-r", &session(), "--slow", "15"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("needs a unit: 15ms, 15s"),
        "{}",
        text(&out.stderr)
    );
}

/// `--version` names the commit and libpcap; completions and the man page are generated.
#[test]
fn version_completions_and_man_page() {
    let v = text(&zkscope(&["--version"]).stdout);
    assert!(v.starts_with("zkscope 0."), "{v}");
    assert!(v.contains("(commit "), "{v}");
    assert!(v.contains("libpcap version "), "{v}");
    for shell in ["bash", "zsh", "fish"] {
        let out = zkscope(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let s = text(&out.stdout);
        assert!(
            s.contains("zkscope") && s.contains("include-pings"),
            "{shell}"
        );
    }
    let man = text(&zkscope(&["man"]).stdout);
    assert!(man.contains(".TH zkscope 1"), "{man}");
    let dir = TempDir::new("man");
    let out = zkscope(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    assert!(dir.join("zkscope-dump.1").exists());
}

/// A live `--duration` ends on the wall clock on a quiet interface (it used to wait for a
/// packet that never came). Needs root (capture on lo).
#[test]
fn live_duration_ends_without_packets() {
    let port = free_port().to_string();
    for cmd in ["count", "digest"] {
        let out = zkscope(&[cmd, "-i", "lo", "--port", &port, "--duration", "1s"]);
        let err = text(&out.stderr);
        // nothing on that port: the run ends after the duration all the same
        assert_eq!(out.status.code(), Some(0), "{cmd}: {err}");
    }
}

/// `digest --order-by p99`, as `latency --sort-by p99`.
#[test]
fn digest_orders_by_p99() {
    let out = zkscope(&[
        "digest",
        "-q",
        "-r",
        &session(),
        "--order-by",
        "p99",
        "--format",
        "json",
        "--limit",
        "1000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["header"]["order_by"], "99th percentile latency");
    let p99: Vec<f64> = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["latency_us"]["p99"].as_f64().unwrap_or(-1.0))
        .collect();
    assert!(
        p99.len() > 3 && p99.windows(2).all(|w| w[0] >= w[1]),
        "{p99:?}"
    );
}

/// Path classes: the digest folds /pipe/n001…n019 into one class and says by which rule;
/// count folds sequential suffixes by default, everything with --fold all, and applies
/// --normalize rules first.
#[test]
fn path_classes_and_user_rules() {
    let f = session();
    let out = zkscope(&["digest", "-q", "-r", &f]);
    let t = text(&out.stdout);
    assert!(t.contains(" getData /pipe/n{n}"), "{t}");
    assert!(!t.contains("/pipe/n019"), "{t}");
    assert!(t.contains("# Folded by: number"), "{t}");
    let out = zkscope(&[
        "digest", "-q", "-r", &f, "--format", "json", "--limit", "1000",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pipe = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "/pipe/n{n}" && c["op"] == "getData")
        .expect("the /pipe class");
    assert_eq!(pipe["calls"], 20);
    assert_eq!(pipe["folded_by"], serde_json::json!(["number"]));
    let paths = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "count",
            "-q",
            "-r",
            f.as_str(),
            "-g",
            "path",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let rows: Vec<Value> = serde_json::from_slice(&zkscope(&args).stdout).unwrap();
        rows.iter()
            .filter_map(|r| r["path"].as_str().map(String::from))
            .collect()
    };
    let default = paths(&[]);
    assert!(default.iter().any(|p| p == "/pipe/n019"), "{default:?}");
    let all = paths(&["--fold", "all"]);
    assert!(all.iter().any(|p| p == "/pipe/n{n}"), "{all:?}");
    let user = paths(&["--normalize", "^/pipe/.*=/pipe/*"]);
    assert!(user.iter().any(|p| p == "/pipe/*"), "{user:?}");
    assert!(!user.iter().any(|p| p.starts_with("/pipe/n")), "{user:?}");
    let bad = zkscope(&["count", "-r", &f, "--normalize", "([=x"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("--normalize"),
        "{}",
        text(&bad.stderr)
    );
}

/// `--since/--until` work on count and latency as on digest: the two halves add up.
#[test]
fn count_and_latency_take_a_time_window() {
    let f = session();
    for cmd in ["count", "latency"] {
        let total = |extra: &[&str]| -> u64 {
            let mut args = vec![cmd, "-q", "-r", f.as_str(), "-g", "op", "--format", "json"];
            args.extend_from_slice(extra);
            let out = zkscope(&args);
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
            let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
            rows.iter().map(|r| r["count"].as_u64().unwrap()).sum()
        };
        let all = total(&[]);
        let a = total(&["--until", "2s"]);
        let b = total(&["--since", "2s"]);
        assert!(a > 0 && b > 0, "{cmd}");
        assert_eq!(a + b, all, "{cmd}");
    }
}

/// `dump -c N` stops after N lines like tcpdump; `--color` highlights error replies (red)
/// and is off when the output is not a terminal unless asked; zxids read `0x6 (0:6)`.
#[test]
fn dump_count_colour_and_zxids() {
    let f = session();
    for (args, n) in [
        (vec!["dump", "-q", "-r", f.as_str(), "-c", "5"], 5),
        (
            vec![
                "dump",
                "-q",
                "-r",
                f.as_str(),
                "-c",
                "3",
                "--format",
                "json",
            ],
            3,
        ),
    ] {
        let out = zkscope(&args);
        assert!(out.status.success(), "{args:?}");
        assert_eq!(text(&out.stdout).lines().count(), n, "{args:?}");
    }
    let plain = text(&zkscope(&["dump", "-q", "-r", &f]).stdout);
    assert!(!plain.contains('\x1b'));
    assert!(plain.contains(" zxid=0x2 (0:2) err=OK"), "{plain}");
    let colour = text(&zkscope(&["dump", "-q", "-r", &f, "--color", "always"]).stdout);
    let red: Vec<&str> = colour
        .lines()
        .filter(|l| l.starts_with("\x1b[31m"))
        .collect();
    assert!(!red.is_empty());
    assert!(red.iter().all(|l| !l.contains("err=OK")), "{red:?}");
    assert!(colour
        .lines()
        .any(|l| l.contains("err=NODEEXISTS") && l.starts_with("\x1b[31m")));
}

/// SetAuth shows its scheme and redacted identity in the default paired text; the
/// ConnectReply carries the handshake's latency, in text and JSON.
#[test]
fn setauth_and_connect_latency_are_visible() {
    let auth = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/zktraffic/auth.pcap");
    let t = text(&zkscope(&["dump", "-q", "-r", auth.to_str().unwrap()]).stdout);
    let line = t
        .lines()
        .find(|l| l.contains("SetAuthRequest"))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(
        line.contains("scheme=digest credential=tacos:***"),
        "{line}"
    );
    let f = session();
    let t = text(&zkscope(&["dump", "-q", "-r", &f]).stdout);
    assert!(
        t.lines()
            .filter(|l| l.contains("ConnectReply"))
            .all(|l| l.contains(" latency=")),
        "{t}"
    );
    let j = text(&zkscope(&["dump", "-q", "-r", &f, "--format", "json"]).stdout);
    let replies: Vec<Value> = j
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "ConnectReply")
        .collect();
    assert_eq!(replies.len(), 11);
    assert!(replies
        .iter()
        .all(|v| v["latency_us"].as_f64().unwrap() > 0.0));
}

/// `--show` prints znode data: text (quoted, escaped) when it is text, else hex; capped by
/// `--max-data`.
#[test]
fn show_prints_znode_data() {
    let f = session();
    let t = text(&zkscope(&["dump", "-q", "-r", &f, "--show"]).stdout);
    assert!(t.contains("\n    data: \"root\"\n"), "{t}");
    let t = text(&zkscope(&["dump", "-q", "-r", &f, "--show", "--max-data", "2"]).stdout);
    assert!(
        t.contains("\n    data: \"ro\" … (4 bytes, --max-data 2)"),
        "{t}"
    );
}

/// One way to write a zxid: `0x5 (0:5)` in text (--show Stat fields included), an integer
/// and a `*_hex` string in JSON; ctime/mtime as ISO-8601 in text.
#[test]
fn zxids_and_times_are_written_one_way() {
    let f = session();
    let show = text(&zkscope(&["dump", "-q", "-r", &f, "--show"]).stdout);
    assert!(show.contains("\n      czxid: 0x5 (0:5)\n"), "{show}");
    assert!(
        show.contains("\n      ctime: 2026-11-22T16:00:18.702Z\n"),
        "{show}"
    );
    assert!(!show.contains("_hex"), "{show}");
    let json = text(&zkscope(&["dump", "-q", "-r", &f, "--format", "json"]).stdout);
    let v: Value = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["stat"].is_object())
        .unwrap();
    assert_eq!(v["zxid_hex"], format!("{:#x}", v["zxid"].as_i64().unwrap()));
    assert_eq!(
        v["stat"]["czxid_hex"],
        format!("{:#x}", v["stat"]["czxid"].as_i64().unwrap())
    );
}

/// One unit style: `272.8ms`, `+2.5ms` (no space), zxids `0x0 (0:0)`, in elections as in dump.
#[test]
fn elections_use_the_same_units_and_zxids() {
    let omni = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/zktraffic/omni.pcap");
    let t = text(&zkscope(&["elections", "-q", "-r", omni.to_str().unwrap()]).stdout);
    assert!(t.contains("(272.8ms) leader 2"), "{t}");
    assert!(
        t.contains(" +2.5ms server 1 LOOKING votes 2 (zxid 0x0 (0:0),"),
        "{t}"
    );
    assert!(!t.contains(" ms"), "{t}");
}

/// A path too long for the table is shortened in the middle: both ends stay.
#[test]
fn long_paths_are_shortened_in_the_middle() {
    let mut cmd = Command::new(support::zkscope_bin());
    cmd.args(["count", "-q", "-r", &session(), "-g", "path", "--normalize"])
        .arg("^/crud$=/a/very/long/path/prefix/that/goes/on/and/on/leaf")
        .env("COLUMNS", "50");
    let out = run_with_timeout(cmd, None, Duration::from_secs(60));
    let t = text(&out.stdout);
    let line = t
        .lines()
        .find(|l| l.contains('…'))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(line.starts_with("/a/") && line.contains("/leaf "), "{line}");
}

/// Pings: left out of count and digest unless -p, on every command.
#[test]
fn pings_only_with_p_everywhere() {
    let f = session();
    let ops = |extra: &[&str]| -> Vec<(String, u64)> {
        let mut args = vec![
            "count",
            "-q",
            "-r",
            f.as_str(),
            "-g",
            "op",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let rows: Vec<Value> = serde_json::from_slice(&zkscope(&args).stdout).unwrap();
        rows.iter()
            .map(|r| {
                (
                    r["op"].as_str().unwrap().to_string(),
                    r["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert!(!ops(&[]).iter().any(|(op, _)| op == "ping"));
    assert!(ops(&["-p"]).contains(&("ping".to_string(), 3)));
    let digest = |extra: &[&str]| -> Value {
        let mut args = vec!["digest", "-q", "-r", f.as_str(), "--format", "json"];
        args.extend_from_slice(extra);
        serde_json::from_slice(&zkscope(&args).stdout).unwrap()
    };
    assert_eq!(digest(&[])["header"]["pings"], 3);
    assert_eq!(digest(&["-p"])["header"]["calls"], 166);
    for cmd in ["dump", "count", "latency", "digest"] {
        assert!(
            zkscope(&[cmd, "-p", "-q", "-r", &f]).status.success(),
            "{cmd}"
        );
    }
}

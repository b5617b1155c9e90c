//! A new user's first hour: tcpdump habits, honest diagnostics, closed pipes, live
//! `--duration`, and the installed-tool chores (version, completions, man page).

#[path = "common/generated.rs"]
mod generated;
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
        // nothing on that port: the run ends after the duration all the same, and says it
        // saw nothing
        assert_eq!(out.status.code(), Some(3), "{cmd}: {err}");
        assert!(
            err.contains("no packets were read (nothing matched the capture filter"),
            "{cmd}: {err}"
        );
    }
}

/// SIGTERM (`timeout`, `kill`, a service manager) and SIGHUP (a closed terminal) end a live
/// capture as Ctrl-C does: the summary and the exit status, not death by the signal. Needs
/// root (capture on lo).
#[test]
fn termination_signals_end_a_capture_with_its_summary() {
    use std::io::{BufRead, BufReader};
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        let port = free_port().to_string();
        let mut child = Command::new(support::zkscope_bin())
            .args(["count", "-i", "lo", "--port", &port])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start zkscope");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut err = String::new();
        while !err.contains("listening on lo") {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("not listening: {err}"));
            err.push_str(&line);
            err.push('\n');
        }
        // SAFETY: kill has no memory preconditions; the pid is the child this test started.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
        let status = child.wait().expect("wait");
        reader.join().expect("stderr reader");
        err.extend(rx.try_iter().map(|l| l + "\n"));
        // nothing on that port: exit status 3, after the summary
        assert_eq!(status.code(), Some(3), "signal {sig}: {status:?}\n{err}");
        assert!(
            err.contains("--- zkscope summary ---"),
            "signal {sig}: {err}"
        );
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

/// The last line of stderr as the JSON summary.
fn json_summary(out: &Output) -> Value {
    let err = text(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: not a JSON summary:\n{err}"))
}

/// A run that decodes nothing says how much TCP there was, where, and the fix, with exit
/// status 3 (documented in --help); a run that decodes something exits 0.
#[test]
fn no_zookeeper_traffic_is_said_with_its_exit_status() {
    let f = session();
    for cmd in ["dump", "count", "latency", "digest"] {
        let out = zkscope(&[cmd, "-r", &f, "--port", "9999"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{cmd}: {err}");
        for want in [
            "no ZooKeeper traffic decoded",
            "444 TCP packets, none of them on the selected ports (--port 9999)",
            "busiest TCP ports: 2181 (444 packets)",
            "--port 2181",
            "--protocol auto",
        ] {
            assert!(err.contains(want), "{cmd}: no {want:?} in\n{err}");
        }
        // the note ends stderr, after the summary
        assert!(
            err.trim_end().ends_with("--protocol auto`.")
                || err.trim_end().ends_with("--protocol auto."),
            "{cmd}: {err}"
        );
        // -q keeps the note
        let out = zkscope(&[cmd, "-q", "-r", &f, "--port", "9999"]);
        assert_eq!(out.status.code(), Some(3), "{cmd}");
        assert!(text(&out.stderr).contains("busiest TCP ports"), "{cmd}");
        assert_eq!(
            zkscope(&[cmd, "-q", "-r", &f]).status.code(),
            Some(0),
            "{cmd}"
        );
        let help = text(&zkscope(&[cmd, "--help"]).stdout);
        assert!(
            help.contains("3 no ZooKeeper traffic"),
            "{cmd} --help:\n{help}"
        );
    }
    // the ensemble decoders: none on the election port; elections: client traffic only
    let out = zkscope(&["dump", "-r", &f, "--protocol", "fle"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("none of them on the selected ports (--protocol fle: port 3888)"),
        "{err}"
    );
    let out = zkscope(&["elections", "-r", &f]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("no election or quorum traffic decoded"),
        "{err}"
    );
    assert!(err.contains("client traffic only (166 requests)"), "{err}");
    assert!(text(&zkscope(&["elections", "--help"]).stdout).contains("3 no ZooKeeper traffic"));
    let omni = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/zktraffic/omni.pcap");
    let out = zkscope(&["elections", "-q", "-r", omni.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // traffic on the selected port that is not ZooKeeper's
    let redis = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/other");
    let redis = std::fs::read_dir(&redis)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.to_string_lossy().contains("redis") && p.extension().is_some_and(|e| e == "pcap")
        })
        .expect("a Redis capture in fixtures/other");
    let out = zkscope(&["count", "-r", redis.to_str().unwrap(), "--port", "6379"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("on the selected ports (--port 6379), but none decoded as ZooKeeper"),
        "{err}"
    );
}

/// A capture cut by its snap length says so before anything else, with the snap length, the
/// cost and the fix.
#[test]
fn snap_length_is_said_first() {
    let dir = TempDir::new("first-hour-snap");
    let cut = dir.join("s96.pcap");
    std::fs::write(
        &cut,
        snap_cut(&std::fs::read(fixture("zk38-session.pcap")).unwrap(), 96),
    )
    .unwrap();
    let cut = cut.to_str().unwrap();
    for cmd in ["dump", "count", "digest"] {
        let out = zkscope(&[cmd, "-r", cut]);
        let err = text(&out.stderr);
        let first = err.lines().next().unwrap_or_default();
        for want in [
            "WARNING",
            "cut at 96 bytes",
            "replies lose",
            "paths are cut",
            "tcpdump -s 0",
        ] {
            assert!(
                first.contains(want),
                "{cmd}: no {want:?} on the first line of\n{err}"
            );
        }
        assert!(
            err.contains("snap length 96 bytes: 147 packets cut"),
            "{cmd}: {err}"
        );
        let whole = zkscope(&[cmd, "-r", &session()]);
        assert!(!text(&whole.stderr).contains("WARNING"), "{cmd}");
    }
}

/// The records of a classic little-endian pcap cut to `snap` bytes, as `tcpdump -s` does.
fn snap_cut(data: &[u8], snap: usize) -> Vec<u8> {
    let mut out = data[..24].to_vec();
    out[16..20].copy_from_slice(&(snap as u32).to_le_bytes());
    let mut i = 24;
    while i + 16 <= data.len() {
        let incl = u32::from_le_bytes(data[i + 8..i + 12].try_into().unwrap()) as usize;
        let keep = incl.min(snap);
        out.extend_from_slice(&data[i..i + 8]);
        out.extend_from_slice(&(keep as u32).to_le_bytes());
        out.extend_from_slice(&data[i + 12..i + 16]);
        out.extend_from_slice(&data[i + 16..i + 16 + keep]);
        i += 16 + incl;
    }
    out
}

/// `--summary-format json`: one object, the last line of stderr, the same fields in every
/// command.
#[test]
fn summary_as_json() {
    let f = session();
    let mut keys = None;
    for cmd in ["dump", "count", "latency", "digest", "elections"] {
        let out = zkscope(&[cmd, "-r", &f, "--summary-format", "json"]);
        let v = json_summary(&out);
        assert_eq!(v["command"], cmd);
        assert_eq!(v["packets"]["packets"], 444, "{cmd}");
        assert_eq!(v["tcp"]["flows_opened"], 13, "{cmd}");
        assert_eq!(v["requests"]["counted"], 163, "{cmd}");
        assert_eq!(v["requests"]["pings"], 3, "{cmd}");
        assert_eq!(v["requests"]["connects"], 11, "{cmd}");
        assert_eq!(v["client"]["replies"], 166, "{cmd}");
        let found = cmd != "elections";
        assert_eq!(v["zookeeper_traffic"], found, "{cmd}");
        assert_eq!(v["exit_status"], if found { 0 } else { 3 }, "{cmd}");
        assert_eq!(out.status.code(), Some(if found { 0 } else { 3 }), "{cmd}");
        let k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.get_or_insert_with(|| k.clone()), &k, "{cmd}");
        // no text summary
        assert!(!text(&out.stderr).contains("--- zkscope summary"), "{cmd}");
    }
    let v = json_summary(&zkscope(&[
        "count",
        "-p",
        "-r",
        &f,
        "--summary-format",
        "json",
    ]));
    assert_eq!(v["requests"]["counted"], 166);
    let v = json_summary(&zkscope(&[
        "count",
        "-r",
        &f,
        "--port",
        "9999",
        "--summary-format",
        "json",
    ]));
    assert_eq!(v["zookeeper_traffic"], false);
    assert_eq!(v["unselected_ports"][0]["port"], 2181);
    assert!(v["no_traffic_note"]
        .as_str()
        .unwrap()
        .contains("busiest TCP ports"));
}

/// `-w FILE` keeps the packets read: decoding the copy gives the same output, from a file and
/// from a live capture. The live part needs root (capture on lo).
#[test]
fn write_keeps_the_packets() {
    let dir = TempDir::new("first-hour-write");
    let f = session();
    let copy = dir.join("copy.pcap");
    let c = copy.to_str().unwrap();
    let direct = zkscope(&["dump", "-q", "-r", &f, "--format", "json", "-w", c]);
    assert!(direct.status.success(), "{}", text(&direct.stderr));
    let again = zkscope(&["dump", "-q", "-r", c, "--format", "json"]);
    assert!(!direct.stdout.is_empty());
    assert_eq!(text(&again.stdout), text(&direct.stdout));
    let out = zkscope(&["count", "-r", &f, "-w", c]);
    assert!(
        text(&out.stderr).contains(&format!("written     444 packets to {c}")),
        "{}",
        text(&out.stderr)
    );
    // a path that cannot be written fails before reading
    let out = zkscope(&["count", "-r", &f, "-w", "/nonexistent/x.pcap"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/x.pcap"),
        "{}",
        text(&out.stderr)
    );

    // live: a four-letter word on a port of our own
    let port = free_port();
    let live_copy = dir.join("live.pcap");
    let live = support::ZkscopeLive::on_port(port, &["-w", live_copy.to_str().unwrap()]);
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut cmd = [0u8; 4];
        s.read_exact(&mut cmd).unwrap();
        s.write_all(b"imok").unwrap();
    });
    {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"ruok").unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "imok");
    }
    server.join().unwrap();
    let out = live.stop();
    assert!(
        out.messages.iter().any(|m| m["command"] == "ruok"),
        "{:?}\n{}",
        out.messages,
        out.stderr
    );
    let p = port.to_string();
    let again = zkscope(&[
        "dump",
        "-q",
        "-r",
        live_copy.to_str().unwrap(),
        "--port",
        &p,
        "--format",
        "json",
    ]);
    let back: Vec<Value> = text(&again.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, out.messages);
}

/// One definition of "requests" (pings and connects left out unless -p): the summary, count
/// and digest agree, on a generated capture and a real one.
#[test]
fn the_same_request_totals_everywhere() {
    let g = generated::generate("first-hour", &["-n", "3000", "--seed", "3"]);
    assert!(g.truth.is_object());
    let gen = g.pcap.to_string_lossy().into_owned();
    for f in [gen.as_str(), session().as_str()] {
        for pings in [false, true] {
            let p: &[&str] = if pings { &["-p"] } else { &[] };
            let run = |cmd: &str, extra: &[&str]| {
                let mut args = vec![cmd, "-r", f, "--summary-format", "json"];
                args.extend_from_slice(p);
                args.extend_from_slice(extra);
                zkscope(&args)
            };
            let count = run("count", &["-g", "op", "--format", "json"]);
            let summary = json_summary(&count)["requests"]["counted"]
                .as_u64()
                .unwrap();
            let rows: Vec<Value> = serde_json::from_slice(&count.stdout).unwrap();
            let kinds = json_summary(&count)["note"].as_str().unwrap().to_string();
            let counted: u64 = rows
                .iter()
                .filter(|r| r["op"] != "connect" && !is_4lw(r["op"].as_str().unwrap()))
                .map(|r| r["count"].as_u64().unwrap())
                .sum();
            let digest: Value =
                serde_json::from_slice(&run("digest", &["--format", "json"]).stdout).unwrap();
            let dcalls = digest["header"]["calls"].as_u64().unwrap();
            assert_eq!(
                (counted, dcalls),
                (summary, summary),
                "{f} -p={pings}: {kinds}"
            );
            assert!(kinds.contains(&format!(": {summary} requests")), "{kinds}");
            // what is left out is said the same way
            let connects = &json_summary(&count)["requests"]["connects"];
            assert_eq!(&digest["header"]["connects"], connects, "{f}");
            assert!(kinds.contains(&format!(", {connects} connects")), "{kinds}");
            let dump = run("dump", &[]);
            assert_eq!(json_summary(&dump)["requests"]["counted"], summary);
        }
    }
}

fn is_4lw(op: &str) -> bool {
    op.len() == 4
        && op.chars().all(|c| c.is_ascii_lowercase())
        && !["sync", "auth", "ping", "multi"].contains(&op)
}

/// `--help` as (heading, long option or short flag) pairs, in order.
fn help_headings(cmd: &str) -> Vec<(String, String)> {
    let out = zkscope(&[cmd, "--help"]);
    let mut heading = String::new();
    let mut v = Vec::new();
    for line in text(&out.stdout).lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            heading = line.trim_end_matches(':').to_string();
        } else if let Some(rest) = line.strip_prefix("  ").map(str::trim_start) {
            // "-r, --read <FILE>", "--port <PORT>", "-n": the long name, else the short one
            let first = line.len() - rest.len() <= 6 && rest.starts_with('-');
            if first {
                let name = rest
                    .split([',', ' '])
                    .map(str::trim)
                    .find(|w| w.starts_with("--"))
                    .or_else(|| rest.split([',', ' ']).next())
                    .unwrap_or_default();
                v.push((heading.clone(), name.to_string()));
            }
        }
    }
    v
}

/// `--help` groups options under headings that fit them, the same in every command: dump's
/// output options are not under "Ensemble protocols", and an option shared by several commands
/// sits under one heading everywhere (except the few whose meaning differs by command).
#[test]
fn help_headings_fit_and_agree() {
    let commands = ["dump", "count", "latency", "digest", "elections"];
    let all: Vec<(&str, Vec<(String, String)>)> =
        commands.iter().map(|c| (*c, help_headings(c))).collect();
    let heading_of = |cmd: &str, opt: &str| -> String {
        let h = &all.iter().find(|(c, _)| *c == cmd).unwrap().1;
        h.iter()
            .find(|(_, o)| o == opt)
            .map(|(h, _)| h.clone())
            .unwrap_or_else(|| panic!("{cmd} --help has no {opt}: {h:?}"))
    };
    for opt in [
        "--unpaired",
        "--slow",
        "--show",
        "--format",
        "--color",
        "--date",
    ] {
        assert_eq!(heading_of("dump", opt), "Output", "dump {opt}");
    }
    assert_eq!(heading_of("dump", "--protocol"), "Ensemble protocols");
    assert_eq!(heading_of("elections", "--fle-port"), "Ensemble protocols");
    for cmd in ["count", "latency", "digest"] {
        for opt in ["--since", "--until", "--duration"] {
            assert_eq!(heading_of(cmd, opt), "Time window", "{cmd} {opt}");
        }
    }
    for cmd in commands {
        assert_eq!(heading_of(cmd, "--read"), "Input", "{cmd}");
        assert_eq!(heading_of(cmd, "--port"), "Selection", "{cmd}");
        assert_eq!(heading_of(cmd, "--summary-format"), "Summary", "{cmd}");
        assert_eq!(heading_of(cmd, "--write"), "Input", "{cmd}");
    }
    // one heading per shared option
    let differs = [
        "--count",
        "--slow",
        "--group-by",
        "--sort-by",
        "--aggregation-depth",
    ];
    let mut seen: std::collections::BTreeMap<String, (String, &str)> = Default::default();
    for (cmd, h) in &all {
        for (heading, opt) in h {
            if differs.contains(&opt.as_str()) || heading == "Options" {
                continue;
            }
            let (first, by) = seen.entry(opt.clone()).or_insert((heading.clone(), cmd));
            assert_eq!(
                heading, first,
                "{opt}: under {heading:?} in {cmd}, {first:?} in {by}"
            );
        }
    }
    assert!(seen.contains_key("--include-pings") && seen.contains_key("--max-frame"));
}

/// `--since/--until/--duration` are one option group: the same help text in every command.
#[test]
fn time_window_options_are_one_group() {
    let block = |cmd: &str| -> String {
        let help = text(&zkscope(&[cmd, "--help"]).stdout);
        let start = help
            .find("Time window:\n")
            .unwrap_or_else(|| panic!("{cmd}: {help}"));
        let mut entries: Vec<Vec<&str>> = Vec::new();
        for line in help[start..].lines().skip(1) {
            if !line.is_empty() && !line.starts_with(' ') {
                break;
            }
            if line.starts_with("      --") || line.starts_with("  -") {
                entries.push(Vec::new());
            }
            if let Some(e) = entries.last_mut() {
                e.push(line);
            }
        }
        entries
            .into_iter()
            .filter(|e| {
                ["--since", "--until", "--duration"]
                    .iter()
                    .any(|o| e[0].trim_start().starts_with(o))
            })
            .map(|e| e.join("\n"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let count = block("count");
    for o in ["--since", "--until", "--duration", "wall clock"] {
        assert!(count.contains(o), "{o}: {count}");
    }
    assert_eq!(block("latency"), count);
    assert_eq!(block("digest"), count);
}

/// A reply (or handshake answer) cut inside its header by the snap length has no error code:
/// `err=?` in text, `err` null and `err_name` "unknown" in JSON, neither OK nor an error in
/// count and digest (nor a session expiration).
#[test]
fn cut_replies_have_no_error_code() {
    let dir = TempDir::new("first-hour-cut-err");
    let cut = dir.join("s80.pcap");
    std::fs::write(
        &cut,
        snap_cut(&std::fs::read(fixture("zk38-session.pcap")).unwrap(), 80),
    )
    .unwrap();
    let cut = cut.to_str().unwrap();
    let json = text(&zkscope(&["dump", "-q", "-r", cut, "--format", "json"]).stdout);
    let replies: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["dir"] == "reply" && m["type"] != "ConnectReply")
        .collect();
    let unknown: Vec<&Value> = replies.iter().filter(|m| m["err"].is_null()).collect();
    assert!(unknown.len() > 50, "{} of {}", unknown.len(), replies.len());
    for m in &unknown {
        assert_eq!(m["err_name"], "unknown", "{m}");
        assert_eq!(m["cut"], true, "{m}");
        // 80 bytes leave 6 of the zxid's 8: not a made-up zxid either
        assert!(m["zxid"].is_null(), "{m}");
        assert!(m.get("zxid_hex").is_none(), "{m}");
    }
    // whole headers keep their code
    assert!(replies
        .iter()
        .all(|m| m["err"].is_null() || m["err_name"] != "unknown"));
    let txt = text(&zkscope(&["dump", "-q", "-p", "-r", cut]).stdout);
    assert_eq!(txt.matches(" err=? ").count(), unknown.len(), "{txt}");
    assert_eq!(
        txt.matches(" zxid=? err=? ").count(),
        unknown.len(),
        "{txt}"
    );
    assert!(!txt.contains("zxid=0x0 "), "{txt}");
    assert!(!txt.contains("err=OK latency") || txt.matches("err=OK").count() < 5);
    // count: an "unknown" row, not in the errors column
    let rows: Vec<Value> = serde_json::from_slice(
        &zkscope(&["count", "-q", "-r", cut, "-g", "error", "--format", "json"]).stdout,
    )
    .unwrap();
    let row = |e: &str| rows.iter().find(|r| r["error"] == e).cloned();
    let u = row("unknown").expect("an unknown row");
    assert_eq!(u["errors"], 0);
    assert!(u["count"].as_u64().unwrap() as usize >= unknown.len());
    assert!(row("SESSIONEXPIRED").is_none(), "{rows:?}");
    let ok = row("OK").map_or(0, |r| r["count"].as_u64().unwrap());
    assert!(ok < 5, "{rows:?}");
    // digest: no errors, no expirations
    let d: Value =
        serde_json::from_slice(&zkscope(&["digest", "-q", "-r", cut, "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(d["header"]["errors"], 0, "{}", d["header"]);
    assert_eq!(d["sessions"]["expirations"], 0, "{}", d["sessions"]);
}

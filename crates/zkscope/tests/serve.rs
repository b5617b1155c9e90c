//! `zkscope serve` end to end: a replayed zktraffic capture through the HTTP endpoints, a
//! live kazoo workload on a real ZooKeeper captured on `lo`, the privilege drop, bad input,
//! bursts of HTTP requests while capturing (wrk, and exactly 10,000 from an in-test client),
//! and a flood of distinct paths and connections against the memory bound.
//!
//! The live tests need root (capture on lo) and scripts/install-test-deps.sh.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

struct Resp {
    status: u16,
    body: String,
}

fn get(port: u16, path: &str) -> Option<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Resp {
        status,
        body: body.to_string(),
    })
}

fn get_json(port: u16, path: &str) -> Option<Value> {
    let r = get(port, path)?;
    if r.status != 200 {
        return None;
    }
    serde_json::from_str(&r.body).ok()
}

/// The value of one sample line of the text exposition.
fn metric(port: u16, series: &str) -> Option<f64> {
    let r = get(port, "/metrics")?;
    r.body.lines().find_map(|l| {
        let (name, v) = l.rsplit_once(' ')?;
        (name == series).then(|| v.parse().ok()).flatten()
    })
}

struct Daemon {
    child: Child,
    port: u16,
    stderr: std::path::PathBuf,
    _dir: TempDir,
}

impl Daemon {
    fn start(args: &[&str]) -> Daemon {
        Daemon::start_with_stdin(args, Stdio::null())
    }

    fn start_with_stdin(args: &[&str], stdin: Stdio) -> Daemon {
        Daemon::launch(Command::new(zkscope_bin()), args, stdin)
    }

    /// `program` is zkscope, or a wrapper whose arguments end with zkscope's path.
    fn launch(mut cmd: Command, args: &[&str], stdin: Stdio) -> Daemon {
        let dir = TempDir::new("serve");
        let port = free_port();
        let stderr = dir.join("stderr.log");
        cmd.arg("serve")
            .args(args)
            .arg(format!("--http-port={port}"))
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("log file"));
        let child = spawn(cmd).expect("spawn zkscope serve");
        let mut d = Daemon {
            child,
            port,
            stderr,
            _dir: dir,
        };
        let up = wait_for(Duration::from_secs(60), || {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("zkscope serve exited ({st}): {}", d.log());
            }
            get(d.port, "/health").filter(|r| r.status == 200)
        });
        assert!(up.is_some(), "zkscope serve not healthy: {}", d.log());
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        terminate(&mut self.child, libc::SIGTERM, Duration::from_secs(30))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = terminate(&mut self.child, libc::SIGKILL, Duration::from_secs(5));
    }
}

fn fixture(name: &str) -> String {
    repo_root()
        .join("fixtures/zktraffic")
        .join(name)
        .display()
        .to_string()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn replayed_capture_through_the_endpoints() {
    let f = fixture("set_data.pcap");
    // zktraffic's own flag spellings.
    let mut d = Daemon::start(&[
        "-r",
        &f,
        "--zookeeper-port=2181",
        "--aggregation-depth=1",
        "--max-results=10",
    ]);
    let info = wait_for(Duration::from_secs(30), || {
        get_json(d.port, "/json/info").filter(|v| v["state"] == "finished")
    })
    .expect("the replay finishes");
    assert_eq!(info["windows_completed"], 1);
    let paths = get_json(d.port, "/json/paths").expect("/json/paths");
    for (k, v) in [
        ("ConnectRequest/", 6),
        ("ConnectRequestBytes/", 270),
        ("ExistsRequest/load-testing", 5),
        ("SetDataRequest/load-testing", 25),
        ("SetDataRequestBytes/load-testing", 13747),
        ("reads/", 6),
        ("total/reads", 11),
        ("total/readBytes", 410),
        ("total/writes", 25),
        ("total/writeBytes", 13747),
    ] {
        assert_eq!(paths[k], v, "{k}: {paths}");
    }
    let ips = get_json(d.port, "/json/ips").expect("/json/ips");
    assert_eq!(ips["per_ip/ConnectRequest:127.0.0.1"], 6);
    let auths = get_json(d.port, "/json/auths").expect("/json/auths");
    assert_eq!(auths["per_auth/ConnectRequest:noauth"], 6);
    let dump = get_json(d.port, "/json/auths-dump").expect("dump");
    assert_eq!(dump.as_object().map(|o| o.len()), Some(6));
    assert_eq!(
        metric(
            d.port,
            r#"zkscope_requests_total{op="setData",result="noreply"}"#
        ),
        Some(25.0)
    );
    assert_eq!(get(d.port, "/nope").map(|r| r.status), Some(404));
    assert_eq!(
        get(d.port, "/json/paths?top=x").map(|r| r.status),
        Some(400)
    );
    // Still serving after the end of the file, until SIGTERM.
    assert!(d.child.try_wait().ok().flatten().is_none());
    let st = d.stop().expect("exits");
    assert!(st.success(), "{st}: {}", d.log());
}

#[test]
fn auth_capture_redacts_unless_asked() {
    let f = fixture("auth.pcap");
    let d = Daemon::start(&["-r", &f]);
    let paths = wait_for(Duration::from_secs(30), || {
        get_json(d.port, "/json/paths").filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    })
    .expect("paths");
    assert_eq!(paths["SetAuthRequest/tacos:***"], 1, "{paths}");
    let all = format!(
        "{paths}{}{}",
        get(d.port, "/json/auths-dump")
            .map(|r| r.body)
            .unwrap_or_default(),
        get(d.port, "/metrics").map(|r| r.body).unwrap_or_default()
    );
    assert!(!all.contains("tacos:tacos"));
    let d = Daemon::start(&["-r", &f, "--show-credentials"]);
    let paths = wait_for(Duration::from_secs(30), || {
        get_json(d.port, "/json/paths").filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    })
    .expect("paths");
    assert_eq!(paths["SetAuthRequest/tacos:tacos"], 1, "{paths}");
}

const WORKLOAD: &str = r#"
import json, sys, time
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

host, port, window = sys.argv[1], sys.argv[2], float(sys.argv[3])
zk = KazooClient(hosts="%s:%s" % (host, port), timeout=30)
zk.start(timeout=60)
# Start right after a window boundary so that the operations fall in one window.
now = time.time()
boundary = (int(now / window) + 1) * window
time.sleep(boundary - now + 0.2)
t0 = time.time()
zk.create("/sv", b"")
for i in range(10):
    zk.set("/sv", b"x" * i)
for _ in range(5):
    zk.get("/sv")
missing = 0
for _ in range(3):
    try:
        zk.get("/sv/missing")
    except NoNodeError:
        missing += 1
assert missing == 3
zk.delete("/sv")
t1 = time.time()
zk.stop()
zk.close()
print(json.dumps({"boundary": boundary, "t0": t0, "t1": t1}))
"#;

#[test]
fn live_kazoo_workload_on_real_zookeeper() {
    if !is_root() {
        eprintln!("skipped: needs root (capture on lo)");
        return;
    }
    let zk = ZkServer::standalone(ZkOpts::new());
    let zk_port = zk.client_port();
    // Long enough for the few operations of the workload on a loaded machine.
    let window = 15;
    let d = Daemon::start(&[
        "-i",
        "lo",
        &format!("--port={zk_port}"),
        &format!("--window={window}s"),
    ]);
    let mut cmd = Command::new(venv_python());
    cmd.args([
        "-c",
        WORKLOAD,
        "127.0.0.1",
        &zk_port.to_string(),
        &window.to_string(),
    ]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(180));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let times: Value = serde_json::from_slice(&out.stdout).expect("times");
    let boundary = times["boundary"].as_f64().expect("boundary");
    let t1 = times["t1"].as_f64().expect("t1");
    assert!(
        t1 < boundary + f64::from(window),
        "the workload took longer than a window: {times}"
    );
    // The metrics count everything as soon as the replies are captured.
    for (series, n) in [
        (r#"zkscope_requests_total{op="setData",result="ok"}"#, 10.0),
        (r#"zkscope_requests_total{op="getData",result="ok"}"#, 5.0),
        (
            r#"zkscope_requests_total{op="getData",result="NONODE"}"#,
            3.0,
        ),
        (r#"zkscope_requests_total{op="create",result="ok"}"#, 1.0),
        (r#"zkscope_requests_total{op="delete",result="ok"}"#, 1.0),
        (
            r#"zkscope_request_duration_seconds_count{op="setData"}"#,
            10.0,
        ),
        (
            r#"zkscope_namespace_requests_total{namespace="/sv",kind="write"}"#,
            12.0,
        ),
    ] {
        let got = wait_for(Duration::from_secs(60), || {
            metric(d.port, series).filter(|v| *v >= n)
        });
        assert_eq!(got, Some(n), "{series}: {}", d.log());
    }
    // The JSON stats once the workload's window has closed (the daemon closes it on the
    // wall clock even when no packet follows).
    let start = boundary;
    let in_window = |v: &Value| {
        v["window_start"]
            .as_f64()
            .is_some_and(|s| (s - start).abs() < 0.5)
    };
    // Read the paths between two looks at /json/info that both show the workload's window
    // (the next window may close at any moment).
    let paths = wait_for(Duration::from_secs(60), || {
        let before = get_json(d.port, "/json/info").filter(in_window)?;
        assert_eq!(before["capturing"], true);
        let paths = get_json(d.port, "/json/paths")?;
        get_json(d.port, "/json/info").filter(in_window)?;
        Some(paths)
    })
    .unwrap_or_else(|| panic!("no window starting at {start}: {}", d.log()));
    for (k, v) in [
        ("SetDataRequest/sv", 10),
        ("GetDataRequest/sv", 5),
        ("GetDataRequest/sv/missing", 3),
        ("FailedGetDataReply/sv/missing", 3),
        ("CreateRequest/sv", 1),
        ("DeleteRequest/sv", 1),
        ("writes/sv", 12),
        ("errors/sv/missing", 3),
        ("latency/SetDataRequest/count", 10),
    ] {
        assert_eq!(paths[k], v, "{k}: {paths}");
    }
}

#[test]
fn privileges_dropped_and_still_capturing() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let zk_port = fake_four_letter_server();
    let d = Daemon::start(&[
        "-i",
        "lo",
        &format!("--port={zk_port}"),
        "--user=nobody",
        "--log-format=json",
    ]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).expect("status");
    for l in status.lines() {
        if let Some(v) = l
            .strip_prefix("CapEff:")
            .or_else(|| l.strip_prefix("CapPrm:"))
            .or_else(|| l.strip_prefix("CapAmb:"))
        {
            assert_eq!(u64::from_str_radix(v.trim(), 16), Ok(0), "{l}");
        }
        if let Some(v) = l.strip_prefix("Uid:") {
            assert!(v.split_whitespace().all(|u| u == "65534"), "{l}");
        }
    }
    let log = d.log();
    let first: Value = serde_json::from_str(log.lines().next().unwrap_or("")).expect("JSON log");
    assert_eq!(first["level"], "info", "{log}");
    assert!(
        ruok_is_counted(&d, zk_port),
        "no four-letter word seen: {}",
        d.log()
    );
    let packets = wait_for(Duration::from_secs(30), || {
        metric(d.port, "zkscope_capture_packets_total").filter(|n| *n > 0.0)
    });
    assert!(packets.is_some(), "{}", d.log());
}

/// A fake ZooKeeper answering one four-letter word per connection; its port.
fn fake_four_letter_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let mut s = s;
            let mut b = [0u8; 4];
            if s.read_exact(&mut b).is_ok() {
                let _ = s.write_all(b"imok");
            }
        }
    });
    port
}

/// Sends `ruok` until the daemon has counted one.
fn ruok_is_counted(d: &Daemon, zk_port: u16) -> bool {
    wait_for(Duration::from_secs(60), || {
        let mut s = TcpStream::connect(("127.0.0.1", zk_port)).ok()?;
        s.write_all(b"ruok").ok()?;
        let mut r = String::new();
        let _ = s.read_to_string(&mut r);
        metric(d.port, r#"zkscope_four_letter_words_total{command="ruok"}"#).filter(|n| *n >= 1.0)
    })
    .is_some()
}

#[test]
fn setcap_binary_captures_as_an_unprivileged_user() {
    // The README's way to capture without root: file capabilities on a copy of the binary,
    // run by `nobody` (setpriv drops root's uid and capabilities before the exec).
    if !is_root() || !std::path::Path::new("/usr/sbin/setcap").exists() {
        eprintln!("skipped: needs root and setcap (libcap2-bin)");
        return;
    }
    let dir = TempDir::new("setcap");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin = dir.join("zkscope");
    std::fs::copy(zkscope_bin(), &bin).expect("copy the binary");
    let out = Command::new("/usr/sbin/setcap")
        .arg("cap_net_raw,cap_net_admin+eip")
        .arg(&bin)
        .output()
        .expect("setcap");
    if !out.status.success() {
        // A file system without extended attributes cannot hold file capabilities.
        eprintln!(
            "skipped: setcap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let zk_port = fake_four_letter_server();
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin);
    let d = Daemon::launch(
        cmd,
        &["-i", "lo", &format!("--port={zk_port}")],
        Stdio::null(),
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    assert!(
        field("Uid:").split_whitespace().all(|u| u == "65534"),
        "{status}"
    );
    // The file's capabilities opened the capture; the daemon then dropped them.
    assert_eq!(field("CapEff:"), "0000000000000000", "{status}");
    assert!(
        ruok_is_counted(&d, zk_port),
        "no four-letter word seen: {}",
        d.log()
    );
    // Without them, the same user cannot capture, and is told how to fix it.
    let plain = dir.join("zkscope-plain");
    std::fs::copy(zkscope_bin(), &plain).expect("copy the binary");
    let mut cmd = Command::new("/usr/bin/setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&plain)
        .args(["count", "-i", "lo", "--port", &zk_port.to_string()]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(60));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("setcap cap_net_raw,cap_net_admin=eip"),
        "{err}"
    );
}

#[test]
fn bad_input_fails_clearly() {
    // A missing interface (needs root to get past permissions to the real error).
    if is_root() {
        let mut cmd = Command::new(zkscope_bin());
        cmd.args([
            "serve",
            "-i",
            "nosuchif0",
            &format!("--http-port={}", free_port()),
        ]);
        let out = run_with_timeout(cmd, None, Duration::from_secs(60));
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("nosuchif0"), "{err}");
    }
    // A port in use.
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy
        .local_addr()
        .map(|a: SocketAddr| a.port())
        .expect("port");
    let mut cmd = Command::new(zkscope_bin());
    cmd.args([
        "serve",
        "-r",
        &fixture("dump.pcap"),
        &format!("--http-port={port}"),
    ]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(60));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on 127.0.0.1:"), "{err}");
    // zktraffic's --sampling check.
    let mut cmd = Command::new(zkscope_bin());
    cmd.args(["serve", "-r", &fixture("dump.pcap"), "--sampling=2"]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(60));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sampling takes values within [0, 1]"));
}

#[test]
fn a_burst_of_http_requests_gets_no_error() {
    if !std::path::Path::new("/usr/bin/wrk").exists() {
        eprintln!("skipped: wrk not installed");
        return;
    }
    // Live on lo when possible (the capture must keep up while HTTP is hammered), else a
    // replayed file.
    let zk = is_root().then(|| ZkServer::standalone(ZkOpts::new()));
    let d = match &zk {
        Some(zk) => Daemon::start(&["-i", "lo", &format!("--port={}", zk.client_port())]),
        None => Daemon::start(&["-r", &fixture("dump.pcap")]),
    };
    let workload = zk.as_ref().map(|zk| {
        let mut cmd = Command::new(venv_python());
        cmd.args(["-c", BUSY, "127.0.0.1", &zk.client_port().to_string()]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        spawn(cmd).expect("workload")
    });
    for path in ["/metrics", "/json/paths"] {
        let mut cmd = Command::new("/usr/bin/wrk");
        cmd.args([
            "-t2",
            "-c8",
            "-d3s",
            &format!("http://127.0.0.1:{}{path}", d.port),
        ]);
        let out = run_with_timeout(cmd, None, Duration::from_secs(60));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(!text.contains("Non-2xx"), "{text}");
        assert!(!text.contains("Socket errors"), "{text}");
        let requests: u64 = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .split_once(" requests in ")
                    .map(|(n, _)| n.trim().parse().ok())
            })
            .flatten()
            .unwrap_or(0);
        assert!(requests >= 1_000, "{text}");
    }
    // And a bounded burst: exactly 10,000 requests from 8 keep-alive clients over the
    // scraped and the JSON endpoints.
    let endpoints = ["/metrics", "/json/paths", "/json/info", "/health"];
    let clients: Vec<_> = (0..8)
        .map(|i| {
            let (port, path) = (d.port, endpoints[i % endpoints.len()]);
            std::thread::spawn(move || keep_alive_gets(port, path, 1_250))
        })
        .collect();
    let statuses: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    assert_eq!(statuses.len(), 10_000, "{}", d.log());
    let mut bad: Vec<u16> = statuses.into_iter().filter(|s| *s != 200).collect();
    bad.dedup();
    assert!(bad.is_empty(), "statuses other than 200: {bad:?}");
    assert_eq!(get(d.port, "/health").map(|r| r.status), Some(200));
    if let Some(mut w) = workload {
        let st = wait_timeout(&mut w, Duration::from_secs(120)).expect("workload ends");
        assert!(st.success());
        // Every getData of the workload was captured, none dropped by the kernel.
        let got = wait_for(Duration::from_secs(60), || {
            metric(
                d.port,
                r#"zkscope_requests_total{op="getData",result="ok"}"#,
            )
            .filter(|n| *n >= 2000.0)
        });
        assert_eq!(got, Some(2000.0), "{}", d.log());
        assert_eq!(
            metric(d.port, "zkscope_capture_packets_dropped_total"),
            Some(0.0)
        );
    }
}

const BUSY: &str = r#"
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts="%s:%s" % (sys.argv[1], sys.argv[2]), timeout=30)
zk.start(timeout=60)
zk.create("/busy", b"x" * 100)
for _ in range(2000):
    zk.get("/busy")
zk.delete("/busy")
zk.stop()
zk.close()
"#;

#[test]
fn quorum_metrics_from_ensemble_captures() {
    // omni.pcap: a three-server ensemble forming (two election rounds, server 2 leads) and
    // two client writes (PROPOSAL then COMMIT to each follower: two zxids).
    let d = Daemon::start(&["-r", &fixture("omni.pcap"), "--protocol=auto"]);
    let elections = wait_for(Duration::from_secs(30), || {
        get_json(d.port, "/json/info")
            .filter(|v| v["state"] == "finished")
            .and_then(|_| {
                Some(
                    metric(d.port, r#"zkscope_elections_total{kind="election"}"#)?
                        + metric(d.port, r#"zkscope_elections_total{kind="rejoin"}"#)?,
                )
            })
    });
    let out = Command::new(zkscope_bin())
        .args(["elections", "-r", &fixture("omni.pcap"), "--format", "json"])
        .output()
        .expect("zkscope elections");
    let rounds: Value = serde_json::from_slice(&out.stdout).expect("rounds");
    let n = rounds.as_array().map_or(0, Vec::len);
    assert_eq!(elections, Some(n as f64));
    assert_eq!(n, 2);
    assert_eq!(
        metric(d.port, r#"zkscope_elections_total{kind="rejoin"}"#),
        Some(1.0)
    );
    assert_eq!(metric(d.port, "zkscope_quorum_leader"), Some(2.0));
    assert_eq!(metric(d.port, "zkscope_quorum_proposals_total"), Some(2.0));
    assert_eq!(metric(d.port, "zkscope_quorum_commits_total"), Some(2.0));
    assert_eq!(
        metric(d.port, "zkscope_quorum_proposal_commit_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        metric(d.port, "zkscope_election_duration_seconds_count"),
        Some(2.0)
    );
}

#[test]
fn a_vanishing_interface_is_reported_and_ends_the_daemon() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let name = format!("zks{}", std::process::id() % 100_000);
    let ip = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ip(&[
        "link",
        "add",
        &name,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{name}p"),
    ]) {
        eprintln!("skipped: cannot create a veth pair here");
        return;
    }
    ip(&["link", "set", &name, "up"]);
    let mut d = Daemon::start(&["-i", &name, "--failure-grace=10s"]);
    assert!(ip(&["link", "del", &name]));
    let health = wait_for(Duration::from_secs(60), || {
        get(d.port, "/health").filter(|r| r.status == 503)
    })
    .unwrap_or_else(|| panic!("no 503: {}", d.log()));
    assert!(health.body.contains("disappeared"), "{}", health.body);
    assert_eq!(metric(d.port, "zkscope_capture_up"), Some(0.0));
    let st = wait_timeout(&mut d.child, Duration::from_secs(90)).expect("exits");
    assert_eq!(st.code(), Some(1));
    assert!(d.log().contains("ERROR"), "{}", d.log());
}

/// Peak resident memory of a process (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn a_flood_of_paths_and_connections_stays_under_128_mb() {
    // 100,000 short-lived connections asking for 1,000,000 distinct paths
    // (bench/serve_flood.py), streamed through a pipe: no capture file on disk.
    let mut py = Command::new("python3");
    py.arg(repo_root().join("bench/serve_flood.py"))
        .args(["-", "100000", "10"])
        .stdout(Stdio::piped());
    let mut gen = spawn(py).expect("bench/serve_flood.py");
    let pipe = gen.stdout.take().expect("generator's stdout");
    let mut d = Daemon::start_with_stdin(&["-r", "-"], Stdio::from(pipe));
    let info = wait_for(Duration::from_secs(600), || {
        get_json(d.port, "/json/info").filter(|i| i["state"] == "finished")
    })
    .unwrap_or_else(|| panic!("the flood was not read: {}", d.log()));
    assert!(wait_timeout(&mut gen, Duration::from_secs(60)).is_some_and(|s| s.success()));
    assert_eq!(info["packets"], 2_600_000, "{info}");
    let peak = peak_rss(d.child.id()).expect("VmHWM");
    assert!(
        peak < 128 << 20,
        "peak RSS {} MB over the 128 MB bound",
        peak >> 20
    );
    // Totals stay exact past the key caps.
    assert_eq!(
        metric(
            d.port,
            r#"zkscope_requests_total{op="getData",result="NONODE"}"#
        ),
        Some(1_000_000.0),
        "{}",
        d.log()
    );
    let paths = get_json(d.port, "/json/paths").expect("/json/paths");
    assert_eq!(paths["total/reads"], 1_100_000, "{paths}");
    eprintln!("flood: peak RSS {} MB", peak >> 20);
    assert!(d.stop().is_some_and(|s| s.success()));
}

/// One HTTP/1.1 keep-alive connection: `n` GETs of `path`, each read whole; the statuses.
fn keep_alive_gets(port: u16, path: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return statuses;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    for _ in 0..n {
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return statuses;
        }
        // Read the head, then exactly Content-Length bytes of body.
        let (status, body_len, head_len) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let status: u16 = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .expect("responses carry a Content-Length");
                break (status, len, end + 4);
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return statuses,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        };
        while buf.len() < head_len + body_len {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return statuses,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        buf.drain(..head_len + body_len);
        statuses.push(status);
    }
    statuses
}

//! Election and quorum decoding through the binary (issue 3): zktraffic's `zab_*` captures
//! on their quorum port, `omni.pcap` (a 3-server ensemble) with no port at all, the
//! elections story of omni, and garbage/mid-snapshot/truncated input.
//!
//! The expected ZAB counts are zktraffic's (docs/zktraffic.md §7.4) plus the NEWLEADERs it
//! loses (coalesced with DIFF in one segment); they are the counts the stream decoders pin in
//! crates/proto/tests/server/captures.rs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../fixtures/zktraffic/{name}.pcap"))
}

/// `zkscope ARGS…`: stdout, stderr; panics unless it succeeds.
fn zkscope(args: &[&str], file: &Path) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(args)
        .arg("-r")
        .arg(file)
        .output()
        .expect("run zkscope");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "zkscope {args:?} {} failed:\n{stderr}",
        file.display()
    );
    (stdout, stderr)
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

fn dump(file: &Path, extra: &[&str]) -> (Vec<Value>, String) {
    let mut args = vec!["dump", "--format", "json"];
    args.extend_from_slice(extra);
    let (out, err) = zkscope(&args, file);
    (json_lines(&out), err)
}

fn s<'a>(m: &'a Value, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

fn counts(msgs: &[Value], proto: &str) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for m in msgs.iter().filter(|m| s(m, "proto") == proto) {
        *c.entry(s(m, "type").to_string()).or_insert(0) += 1;
    }
    c
}

fn expect(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The number before `label` in the summary line starting with `line`.
fn summary(stderr: &str, line: &str, label: &str) -> u64 {
    let l = stderr
        .lines()
        .find(|l| l.starts_with(line))
        .unwrap_or_else(|| panic!("no {line:?} line in:\n{stderr}"));
    let at = l
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {l:?}"));
    l[..at]
        .split_whitespace()
        .last()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before {label:?} in {l:?}"))
}

fn zab_counts(name: &str) -> (BTreeMap<String, usize>, Vec<Value>, String) {
    let (msgs, err) = dump(&fixture(name), &["--protocol", "zab", "--port", "20022"]);
    assert!(
        msgs.iter()
            .all(|m| matches!(s(m, "proto"), "zab" | "zkscope")),
        "only quorum messages (and discoveries) in zab mode"
    );
    (counts(&msgs, "zab"), msgs, err)
}

#[test]
fn zab_captures_on_their_port() {
    let cases: [(&str, &[(&str, usize)]); 5] = [
        (
            "zab_request",
            &[
                ("Ping", 57),
                ("Request", 3),
                ("Proposal", 6),
                ("Ack", 6),
                ("Commit", 6),
            ],
        ),
        ("zab_revalidate", &[("Ping", 36), ("Revalidate", 2)]),
        (
            "zab_commitandactivate",
            &[
                ("Ping", 40),
                ("Request", 2),
                ("Proposal", 4),
                ("Ack", 4),
                ("CommitAndActivate", 4),
            ],
        ),
        (
            "zab_followerinfo",
            &[
                ("FollowerInfo", 2),
                ("LeaderInfo", 2),
                ("AckEpoch", 2),
                ("Diff", 2),
                ("NewLeader", 2), // zktraffic: 0 (coalesced with the DIFF)
                ("Ack", 4),
                ("UpToDate", 2),
                ("Ping", 10),
            ],
        ),
        (
            "zab_informandactivate",
            &[
                ("Ping", 23),
                ("Proposal", 2),
                ("Ack", 2),
                ("CommitAndActivate", 2),
                ("InformAndActivate", 2),
            ],
        ),
    ];
    for (name, want) in cases {
        let (got, msgs, err) = zab_counts(name);
        assert_eq!(got, expect(want), "{name}");
        for m in msgs.iter().filter(|m| s(m, "proto") == "zab") {
            assert!(m.get("zxid").is_some_and(Value::is_i64), "{name}: {m}");
            assert!(s(m, "zxid_hex").starts_with("0x"), "{name}: {m}");
            assert!(m.get("body_error").is_none(), "{name}: {m}");
            assert!(m["src"].is_string() && m["dst"].is_string() && m["ts"].is_f64());
        }
        assert_eq!(summary(&err, "quorum", "undecodable"), 0, "{name}");
    }
}

#[test]
fn zab_bodies_are_decoded() {
    let (_, msgs, _) = zab_counts("zab_request");
    let req = msgs
        .iter()
        .find(|m| s(m, "type") == "Request" && s(m, "op") == "create")
        .expect("a forwarded create");
    assert_eq!(s(req, "session"), "0x1001df405af0000");
    assert_eq!(s(req, "path"), "/foo");
    assert_eq!(s(req, "sender"), "learner");
    let prop = msgs
        .iter()
        .find(|m| s(m, "type") == "Proposal")
        .expect("a proposal");
    assert_eq!(s(prop, "zxid_hex"), "0x100000001");
    assert_eq!(prop["zxid"], 0x1_0000_0001i64);
    assert_eq!(s(prop, "txn_op"), "createSession");
    assert_eq!(s(prop, "sender"), "leader");
    let (_, msgs, _) = zab_counts("zab_revalidate");
    let valid: Vec<_> = msgs
        .iter()
        .filter(|m| s(m, "type") == "Revalidate")
        .map(|m| {
            (
                s(m, "sender").to_string(),
                m.get("timeout").cloned(),
                m.get("valid").cloned(),
            )
        })
        .collect();
    assert!(
        valid.contains(&("learner".into(), Some(10000.into()), None)),
        "{valid:?}"
    );
    assert!(
        valid.contains(&("leader".into(), None, Some(true.into()))),
        "{valid:?}"
    );
    let (_, msgs, _) = zab_counts("zab_followerinfo");
    let nl = msgs
        .iter()
        .find(|m| s(m, "type") == "NewLeader")
        .expect("NEWLEADER");
    assert_eq!(nl["config_servers"].as_array().map(Vec::len), Some(3));
}

#[test]
fn omni_without_any_port() {
    let (msgs, err) = dump(&fixture("omni"), &["--protocol", "auto"]);
    assert_eq!(
        counts(&msgs, "zab"),
        expect(&[
            ("FollowerInfo", 2),
            ("LeaderInfo", 2),
            ("AckEpoch", 2),
            ("Diff", 1),
            ("Ack", 8),
            ("UpToDate", 2),
            ("Snap", 1),
            ("Snapshot", 1),  // the 553-byte snapshot after SNAP, skipped over
            ("NewLeader", 2), // zktraffic: 1
            ("Ping", 120),
            ("Request", 3),
            ("Proposal", 4),
            ("Commit", 4),
            ("Sync", 1),
        ])
    );
    // Every FLE message decodes (zktraffic rejects the 1-byte length segments).
    assert_eq!(
        counts(&msgs, "fle"),
        expect(&[("Initial", 3), ("Notification", 9)])
    );
    for m in msgs.iter().filter(|m| s(m, "proto") == "fle") {
        assert!(m["from_sid"].is_i64(), "sender known: {m}");
        if s(m, "type") == "Notification" {
            assert!(m["state"].is_string() && m["zxid"].is_i64(), "{m}");
            assert_eq!(m["config_servers"].as_array().map(Vec::len), Some(3));
        }
    }
    // Client traffic on 2181 prints through the client printer.
    let client = counts(&msgs, "client");
    for t in [
        "ConnectRequest",
        "ConnectReply",
        "GetChildrenRequest",
        "CreateReply",
        "SyncReply",
    ] {
        assert_eq!(client.get(t), Some(&1), "{t}: {client:?}");
    }
    // Every port of the ensemble was discovered from the traffic.
    let found: Vec<(String, u64)> = msgs
        .iter()
        .filter(|m| s(m, "type") == "Discovered" && s(m, "endpoint").starts_with("127.0.0.1:"))
        .map(|m| {
            let port = s(m, "endpoint")
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok());
            (s(m, "role").to_string(), port.unwrap_or(0))
        })
        .collect();
    for (role, ports) in [
        ("fle", [2783, 2784, 2785]),
        ("zab", [2780, 2781, 2782]),
        ("client", [2181, 2182, 2183]),
    ] {
        for p in ports {
            assert!(
                found.contains(&(role.to_string(), p)),
                "{role} {p}: {found:?}"
            );
        }
    }
    assert_eq!(summary(&err, "quorum", "undecodable"), 0);
    assert_eq!(summary(&err, "election", "undecodable"), 0);
    assert_eq!(summary(&err, "election", "notifications"), 9);
}

#[test]
fn omni_text_output() {
    let (out, _) = zkscope(&["dump", "--protocol", "auto"], &fixture("omni"));
    assert!(!out.contains(" zab Ping "), "pings hidden by default");
    let line = out
        .lines()
        .find(|l| l.contains(" fle Notification ") && l.contains("state=FOLLOWING"))
        .expect("a FOLLOWING vote");
    assert!(line.contains("zxid=0x0 (0:0)"), "{line}");
    assert!(
        line.contains("servers=[1=localhost:2780:2783:participant;0.0.0.0:2181"),
        "{line}"
    );
    assert!(out.contains(" zab Snapshot bytes=553 sessions=0 nodes=4"));
    assert!(out.contains(" zab Proposal from=2 to=1 zxid=0x100000002 (1:2)"));
    let (out, _) = zkscope(&["dump", "--protocol", "auto", "-p"], &fixture("omni"));
    assert_eq!(
        out.lines().filter(|l| l.contains(" zab Ping ")).count(),
        120
    );
}

#[test]
fn fle_mode_on_the_election_ports() {
    let (msgs, _) = dump(
        &fixture("omni"),
        &["--protocol", "fle", "--port", "2783", "--port", "2784"],
    );
    assert_eq!(
        counts(&msgs, "fle"),
        expect(&[("Initial", 3), ("Notification", 9)])
    );
    assert!(counts(&msgs, "zab").is_empty() && counts(&msgs, "client").is_empty());
}

#[test]
fn omni_elections() {
    let (out, _) = zkscope(&["elections", "--format", "json"], &fixture("omni"));
    let rounds: Value = serde_json::from_str(&out).expect("a JSON array");
    let rounds = rounds.as_array().expect("array");
    let leaders: Vec<_> = rounds.iter().map(|r| r["leader"].as_i64()).collect();
    // 1 and 2 elect 2; 3 starts later and finds leader 2 (a round of its own).
    assert_eq!(leaders, [Some(2), Some(2)]);
    assert_eq!(rounds[0]["participants"], serde_json::json!([1, 2]));
    assert_eq!(rounds[1]["kind"], "rejoin");
    assert_eq!(rounds[1]["looking"], serde_json::json!([3]));
    for r in rounds {
        assert!(r["start_ts"].as_f64() <= r["end_ts"].as_f64());
        assert!(r["epoch"].is_i64() && r["votes"].is_array());
        // The new leader's UPTODATE reached the follower(s) after the round started.
        let up = r["uptodate"].as_array().expect("uptodate");
        assert_eq!(up.len(), 1, "{r}");
        assert!(up[0]["since_start_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    }
    let (text, _) = zkscope(&["elections"], &fixture("omni"));
    assert!(
        text.contains("round 1 (election)") && text.contains("leader 2"),
        "{text}"
    );
    assert!(text.contains("quorum agreed on 2"), "{text}");
}

// ---------------------------------------------------------------- bad input

/// A classic pcap (Ethernet, IPv4) writer for synthetic TCP streams.
struct Pcap(Vec<u8>);

impl Pcap {
    fn new() -> Self {
        let mut v = Vec::new();
        v.extend(0xa1b2c3d4u32.to_le_bytes());
        v.extend(2u16.to_le_bytes());
        v.extend(4u16.to_le_bytes());
        v.extend([0u8; 8]);
        v.extend(65535u32.to_le_bytes());
        v.extend(1u32.to_le_bytes());
        Pcap(v)
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(&mut self, t: u32, sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) {
        let mut f = Vec::new();
        f.extend([0u8; 12]);
        f.extend(0x0800u16.to_be_bytes());
        let total = (20 + 20 + payload.len()) as u16;
        f.extend([0x45, 0]);
        f.extend(total.to_be_bytes());
        f.extend([0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend([127, 0, 0, 1, 127, 0, 0, 1]);
        f.extend(sport.to_be_bytes());
        f.extend(dport.to_be_bytes());
        f.extend(seq.to_be_bytes());
        f.extend(0u32.to_be_bytes());
        f.extend([0x50, flags]);
        f.extend([0xff, 0xff, 0, 0, 0, 0]);
        f.extend(payload);
        self.0.extend(t.to_le_bytes());
        self.0.extend(0u32.to_le_bytes());
        self.0.extend((f.len() as u32).to_le_bytes());
        self.0.extend((f.len() as u32).to_le_bytes());
        self.0.extend(f);
    }

    /// A whole one-way conversation: SYN, then `chunks` as segments, then FIN.
    fn stream(&mut self, t: u32, sport: u16, dport: u16, chunks: &[&[u8]]) {
        let mut seq = 1000u32;
        self.tcp(t, sport, dport, seq, 0x02, &[]);
        seq += 1;
        for c in chunks {
            self.tcp(t, sport, dport, seq, 0x18, c);
            seq += c.len() as u32;
        }
    }

    fn save(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, &self.0).expect("write pcap");
        p
    }
}

fn packet(ty: i32, zxid: i64, data: Option<&[u8]>) -> Vec<u8> {
    let mut v = ty.to_be_bytes().to_vec();
    v.extend(zxid.to_be_bytes());
    match data {
        None => v.extend((-1i32).to_be_bytes()),
        Some(d) => {
            v.extend((d.len() as i32).to_be_bytes());
            v.extend(d);
        }
    }
    v.extend((-1i32).to_be_bytes());
    v
}

fn tmpdir(label: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zkscope-ens-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

#[test]
fn garbage_and_mid_snapshot_are_counted_not_fatal() {
    let dir = tmpdir("garbage");
    let mut p = Pcap::new();
    let junk: Vec<u8> = (0..3000u32).map(|i| (i * 7919 % 251) as u8).collect();
    // Garbage on the election and quorum ports.
    p.stream(1, 40001, 3888, &[&junk[..1000], &junk[1000..]]);
    p.stream(2, 40002, 2888, &[&junk]);
    // A quorum stream caught mid-snapshot (no SYN): snapshot bytes, then real packets.
    let mut mid = vec![0u8; 300];
    mid.extend(b"BenWasHere");
    mid.extend(packet(5, 0x1_0000_0003, None));
    mid.extend(packet(4, 0x1_0000_0003, None));
    p.tcp(3, 2888, 40003, 5000, 0x18, &mid);
    // A FOLLOWERINFO whose stream is cut by the end of the capture.
    let fi = packet(11, 0, Some(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0]));
    p.stream(4, 40004, 2888, &[&fi[..10]]);
    let file = p.save(&dir, "garbage.pcap");
    let (msgs, err) = dump(&file, &["--protocol", "auto"]);
    let zab = counts(&msgs, "zab");
    assert_eq!(zab.get("Commit"), Some(&1), "{zab:?}\n{err}");
    assert_eq!(zab.get("Ping"), Some(&1), "{zab:?}");
    // Everything that is not a message is counted: the garbage on both ports, the snapshot
    // tail before the first packet, the cut FOLLOWERINFO.
    assert!(summary(&err, "election", "bytes skipped") > 0, "{err}");
    assert!(summary(&err, "quorum", "bytes skipped") >= 3000, "{err}");
    assert!(
        summary(&err, "quorum", "partial packets dropped") >= 1,
        "{err}"
    );
    // Truncated file: decoded up to the cut, then a clear error.
    let bytes = std::fs::read(fixture("omni")).expect("omni");
    let cut = dir.join("omni-cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(["dump", "--protocol", "auto", "--format", "json", "-r"])
        .arg(&cut)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let msgs = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert!(counts(&msgs, "fle").contains_key("Notification"));
    let _ = std::fs::remove_dir_all(&dir);
}

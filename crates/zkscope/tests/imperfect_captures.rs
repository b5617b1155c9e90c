//! Imperfect captures lose only what the capture lost.
//!
//! Real ZooKeeper 3.8 captures (`fixtures/real/`, made by the real-ZK harness: 11 sessions
//! with pipelined requests, watches, multi, auth, pings, plus an `-i any` capture and an IPv6
//! one) are damaged with `scripts/mangle_pcap.py` the way captures under load are, and each
//! decode is compared with the clean decode:
//!
//! * every request/reply pair whose bytes all survived is paired exactly as in the clean
//!   decode (client, xid, op, error);
//! * no pair and no request is invented;
//! * the summary's gaps equal the runs of dropped segments, and its unanswered requests and
//!   unpaired replies are the clean ones plus the pairs that lost exactly one side.
//!
//! A message is "touched" when a dropped segment of its connection and direction has its
//! capture time (each of these small frames travels in one segment).
//!
//! Shares of untouched pairs kept, measured on the three captures (447 clean pairs; rerun
//! with `-- --nocapture`; `ZKSCOPE_IMPERFECT_BIN=old/zkscope ZKSCOPE_IMPERFECT_MEASURE=1`
//! measures another build):
//!
//! | variant | kept now | kept before this work |
//! | --- | --- | --- |
//! | one reply of a pipelined batch dropped | 165/165 (100%) | 129/165 (78.2%): 36 more lost |
//! | 2% of data segments dropped (10 seeds each) | 2071/2071 (100%) | 2030/2071 (98.0%) |
//! | 5% of segments captured after the peer's ACK (10 seeds each, 220 moved) | 2160/2160 (100%) | 1867/2160 (86.4%), 24 false gaps |
//! | ConnectRequests dropped | 216/216, 15/15 ConnectResponses and sessions | 216/216, 0/15: 15 bogus replies |
//! | snap length 80 | every connect reported, events cut | no connect, no event, no reply |

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{parse_json_lines, repo_root, run_with_timeout, s, zkscope, TempDir};

const CAPTURES: [&str; 3] = ["zk38-session.pcap", "zk38-any-sll2.pcap", "zk38-ipv6.pcap"];

/// (client, xid, op, err_name) of a paired reply.
type Pair = (String, i64, String, String);

#[derive(Debug, Default)]
struct Decode {
    /// Paired replies, with the capture times (µs) of request and reply.
    pairs: Vec<(Pair, i64, i64)>,
    /// (client, xid, op) of every request.
    requests: BTreeSet<(String, i64, String)>,
    connects: usize,
    connect_replies: usize,
    sessions: BTreeSet<String>,
    events: Vec<Value>,
    gaps: u64,
    unanswered: u64,
    unpaired: u64,
    stderr: String,
}

fn ts_us(m: &Value) -> i64 {
    (m["ts"].as_f64().unwrap_or(0.0) * 1e6).round() as i64
}

/// The number before the first `what` in the summary (e.g. "3 gaps (").
fn summary_count(stderr: &str, what: &str) -> u64 {
    let at = stderr
        .find(&format!(" {what}"))
        .unwrap_or_else(|| panic!("no '{what}' in the summary:\n{stderr}"));
    stderr[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count before '{what}' in the summary:\n{stderr}"))
}

fn decode(pcap: &Path) -> Decode {
    let args = ["dump", "-r", pcap.to_str().unwrap(), "--format", "json"];
    // ZKSCOPE_IMPERFECT_BIN measures another build (e.g. before a change) with the same
    // captures; ZKSCOPE_IMPERFECT_MEASURE=1 then reports instead of failing.
    let out = match std::env::var_os("ZKSCOPE_IMPERFECT_BIN") {
        Some(bin) => {
            let mut cmd = Command::new(bin);
            cmd.args(args);
            run_with_timeout(cmd, None, Duration::from_secs(120))
        }
        None => zkscope(&args),
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "zkscope failed on {pcap:?}:\n{stderr}"
    );
    let (msgs, bad) = parse_json_lines(&String::from_utf8_lossy(&out.stdout));
    assert!(bad.is_empty(), "non-JSON lines: {bad:?}");
    let mut d = Decode {
        gaps: summary_count(&stderr, "gaps ("),
        unanswered: summary_count(&stderr, "requests without a reply"),
        unpaired: summary_count(&stderr, "replies without a captured request"),
        stderr,
        ..Decode::default()
    };
    for m in msgs {
        let client = s(&m, "client").to_string();
        let xid = m["xid"].as_i64().unwrap_or(0);
        match (s(&m, "dir"), s(&m, "type")) {
            (_, "ConnectRequest") => d.connects += 1,
            (_, "ConnectReply" | "ConnectResponse") => {
                d.connect_replies += 1;
                d.sessions.insert(s(&m, "session_id").to_string());
            }
            ("event", _) => d.events.push(m),
            ("request", _) => {
                d.requests.insert((client, xid, s(&m, "op").to_string()));
            }
            ("reply", _) if !m["opcode"].is_null() => {
                let pair = (
                    client,
                    xid,
                    s(&m, "op").to_string(),
                    s(&m, "err_name").to_string(),
                );
                let t = ts_us(&m);
                let lat = m["latency_us"].as_f64().unwrap_or(0.0).round() as i64;
                d.pairs.push((pair, t - lat, t));
            }
            _ => {}
        }
    }
    d
}

/// `mangle_pcap.py IN OUT ARGS…`; its counters.
fn mangle(input: &Path, output: &Path, args: &[&str]) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(repo_root().join("scripts/mangle_pcap.py"))
        .arg(input)
        .arg(output)
        .args(args);
    let out = run_with_timeout(cmd, None, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mangle_pcap.py failed:\n{stderr}");
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("mangle_pcap: "))
        .unwrap_or_else(|| panic!("no counters from mangle_pcap.py:\n{stderr}"));
    serde_json::from_str(line).expect("mangle_pcap counters")
}

fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures/real").join(name)
}

/// Kept and untouched pairs of one damaged capture, after checking everything else.
fn compare(clean: &Decode, pcap: &Path, counters: &Value, label: &str) -> (usize, usize) {
    let got = decode(pcap);
    let dropped: BTreeSet<(i64, String, String)> = counters["dropped_segments"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| {
                    (
                        d[0].as_i64().unwrap_or(0),
                        d[1].as_str().unwrap_or("").to_string(),
                        d[2].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let lost_request =
        |client: &str, t: i64| dropped.iter().any(|(dt, src, _)| *dt == t && src == client);
    let lost_reply =
        |client: &str, t: i64| dropped.iter().any(|(dt, _, dst)| *dt == t && dst == client);
    let got_pairs: BTreeSet<&Pair> = got.pairs.iter().map(|(p, _, _)| p).collect();
    let clean_pairs: BTreeSet<&Pair> = clean.pairs.iter().map(|(p, _, _)| p).collect();
    let invented: Vec<_> = got_pairs.difference(&clean_pairs).collect();
    check(invented.is_empty(), || {
        format!("{label}: invented pairs {invented:?}")
    });
    let invented: Vec<_> = got.requests.difference(&clean.requests).collect();
    check(invented.is_empty(), || {
        format!("{label}: invented requests {invented:?}")
    });
    let (mut untouched, mut kept, mut no_reply, mut no_request) = (0, 0, 0, 0);
    let mut missing = Vec::new();
    for (pair, req_t, rep_t) in &clean.pairs {
        let (q, r) = (lost_request(&pair.0, *req_t), lost_reply(&pair.0, *rep_t));
        match (q, r) {
            (false, false) => {
                untouched += 1;
                if got_pairs.contains(pair) {
                    kept += 1;
                } else {
                    missing.push(pair);
                }
            }
            (false, true) => no_reply += 1,
            (true, false) => no_request += 1,
            (true, true) => {}
        }
    }
    check(missing.is_empty(), || {
        format!(
            "{label}: {} untouched pairs lost: {missing:?}",
            missing.len()
        )
    });
    let runs = counters["dropped_runs"].as_u64().unwrap_or(0);
    check(got.gaps == clean.gaps + runs, || {
        format!("{label}: {} gaps, {runs} expected", got.gaps - clean.gaps)
    });
    check(got.unanswered == clean.unanswered + no_reply, || {
        format!(
            "{label}: {} requests without a reply, {no_reply} expected",
            got.unanswered - clean.unanswered
        )
    });
    check(got.unpaired == clean.unpaired + no_request, || {
        format!(
            "{label}: {} replies without their request, {no_request} expected",
            got.unpaired.saturating_sub(clean.unpaired)
        )
    });
    (kept, untouched)
}

/// Fails the test, or only reports when measuring another build.
#[track_caller]
fn check(ok: bool, what: impl FnOnce() -> String) {
    if ok {
        return;
    }
    if std::env::var_os("ZKSCOPE_IMPERFECT_MEASURE").is_some() {
        eprintln!("MISMATCH {}", what());
    } else {
        panic!("{}", what());
    }
}

fn share(kept: usize, of: usize) -> f64 {
    100.0 * kept as f64 / of.max(1) as f64
}

#[test]
fn one_dropped_reply_costs_one_pair() {
    let dir = TempDir::new("imperfect-reply");
    let input = fixture("zk38-session.pcap");
    let clean = decode(&input);
    let out = dir.path().join("m.pcap");
    // The middle reply of the pipelined batch (pipeline.py).
    let counters = mangle(&input, &out, &["--seed", "1", "--drop-burst-from", "2181"]);
    assert_eq!(counters["dropped"], 1);
    let (kept, of) = compare(&clean, &out, &counters, "one reply dropped");
    eprintln!(
        "one reply dropped: kept {kept}/{of} ({:.2}%)",
        share(kept, of)
    );
    let got = decode(&out);
    check(got.pairs.len() + 1 == clean.pairs.len(), || {
        format!("{} pairs lost", clean.pairs.len() - got.pairs.len())
    });
}

#[test]
fn two_percent_drop_loses_only_the_dropped_messages() {
    let dir = TempDir::new("imperfect-drop");
    let (mut kept, mut of) = (0, 0);
    for name in CAPTURES {
        let input = fixture(name);
        let clean = decode(&input);
        for seed in 1..=10 {
            let out = dir.path().join(format!("{name}-{seed}.pcap"));
            let seed = seed.to_string();
            let counters = mangle(&input, &out, &["--seed", &seed, "--drop-share", "0.02"]);
            let (k, o) = compare(&clean, &out, &counters, &format!("{name} 2% seed {seed}"));
            kept += k;
            of += o;
        }
    }
    eprintln!("2% drop: kept {kept}/{of} ({:.2}%)", share(kept, of));
    check(kept == of, || "2% drop".into());
}

#[test]
fn segments_captured_after_their_ack_are_all_kept() {
    let dir = TempDir::new("imperfect-ack-first");
    let (mut kept, mut of, mut moved) = (0, 0, 0);
    for name in CAPTURES {
        let input = fixture(name);
        let clean = decode(&input);
        for seed in 1..=10 {
            let out = dir.path().join(format!("{name}-{seed}.pcap"));
            let seed = seed.to_string();
            let counters = mangle(&input, &out, &["--seed", &seed, "--ack-first", "0.05"]);
            moved += counters["acked_first"].as_u64().unwrap_or(0);
            let (k, o) = compare(&clean, &out, &counters, &format!("{name} ack-first {seed}"));
            check(o == clean.pairs.len(), || "nothing was dropped".into());
            kept += k;
            of += o;
        }
    }
    eprintln!(
        "5% after their ACK ({moved} moved): kept {kept}/{of} ({:.2}%)",
        share(kept, of)
    );
    assert!(moved > 50, "only {moved} segments moved");
    check(kept == of, || "after their ACK".into());
}

#[test]
fn dropped_handshakes_still_give_the_sessions() {
    let dir = TempDir::new("imperfect-handshake");
    for name in CAPTURES {
        let input = fixture(name);
        let clean = decode(&input);
        let out = dir.path().join(name);
        let counters = mangle(&input, &out, &["--seed", "1", "--drop-connect"]);
        let (kept, of) = compare(&clean, &out, &counters, &format!("{name} no handshake"));
        eprintln!(
            "{name} without handshakes: kept {kept}/{of} ({:.2}%)",
            share(kept, of)
        );
        check(kept == of, || format!("{name} without handshakes"));
        let got = decode(&out);
        assert_eq!(got.connects, 0, "{name}");
        check(got.connect_replies == clean.connect_replies, || {
            format!(
                "{name}: {} of {} ConnectResponses",
                got.connect_replies, clean.connect_replies
            )
        });
        check(got.sessions == clean.sessions, || {
            format!("{name}: sessions")
        });
    }
}

/// A copy of a classic pcap with every record cut to `snap` bytes (what `tcpdump -s` does).
fn snap(input: &Path, output: &Path, snap: u32) {
    let raw = std::fs::read(input).expect("read pcap");
    let le = raw.get(..4) == Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]);
    let u32_at = |b: &[u8], at: usize| {
        let w: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        }
    };
    let put = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    let mut out = raw[..24].to_vec();
    out[16..20].copy_from_slice(&put(snap));
    let mut at = 24;
    while at + 16 <= raw.len() {
        let incl = u32_at(&raw, at + 8) as usize;
        let keep = incl.min(snap as usize);
        out.extend_from_slice(&raw[at..at + 8]);
        out.extend_from_slice(&put(keep as u32));
        out.extend_from_slice(&raw[at + 12..at + 16]);
        out.extend_from_slice(&raw[at + 16..at + 16 + keep]);
        at += 16 + incl;
    }
    std::fs::write(output, out).expect("write pcap");
}

#[test]
fn snap_length_cuts_are_reported_alike() {
    let dir = TempDir::new("imperfect-snap");
    let input = fixture("zk38-session.pcap");
    let clean = decode(&input);
    let out = dir.path().join("s80.pcap");
    snap(&input, &out, 80);
    let got = decode(&out);
    // Every handshake frame starts a segment: all are reported, cut.
    assert_eq!(got.connects, clean.connects);
    assert_eq!(got.connect_replies, clean.connect_replies);
    // Watch events that start a segment are reported (cut) with their header.
    assert!(!got.events.is_empty());
    for e in &got.events {
        assert_eq!(e["cut"], true, "{e}");
        assert_eq!(e["xid"], -1, "{e}");
    }
    let got_pairs: BTreeSet<&Pair> = got.pairs.iter().map(|(p, _, _)| p).collect();
    let clean_keys: BTreeSet<(&str, i64)> = clean
        .pairs
        .iter()
        .map(|(p, _, _)| (p.0.as_str(), p.1))
        .collect();
    for p in &got_pairs {
        assert!(clean_keys.contains(&(p.0.as_str(), p.1)), "invented {p:?}");
    }
    assert!(got_pairs.len() * 2 > clean.pairs.len(), "{}", got.stderr);
}

//! TCP reassembly end to end, against ground truth.
//!
//! `bench/gen_pcap.py` writes a synthetic capture (100 sessions, 20 000
//! requests, messages coalesced into and split across segments) together
//! with the exact per-type / per-path request counts and per-type reply
//! counts by error. `scripts/mangle_pcap.py` then damages the capture the way
//! real captures are damaged (out-of-order segments, duplicates,
//! overlapping retransmissions, sequence numbers wrapping past 2^32, lost
//! segments), and zkscope's JSON output is counted and compared with the
//! truth: exactly when no byte was lost, approximately when some were.
//!
//! The mapping from zkscope's JSON to the truth's keys is the one of the
//! benchmark's comparison script (request type names -> gen_pcap op names,
//! EPHEMERAL creates also counted as `createEphemeral`, replies by `op` and
//! error name with OK as `ok`).

mod support;

use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{repo_root, run_with_timeout, tail, zkscope, TempDir};
use zkscope_capture::{parse_tcp, PacketSource};

type Counter = BTreeMap<String, u64>;

/// Counts in the truth file's shape.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    requests_by_type: Counter,
    per_path: BTreeMap<String, Counter>,
    replies_by_type: BTreeMap<String, Counter>,
}

/// The fields of a `zkscope dump --format json` line that the counts use
/// (typed parsing: much cheaper than `serde_json::Value` in the debug profile).
#[derive(serde::Deserialize)]
struct Line<'a> {
    dir: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    #[serde(borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow)]
    path: Option<Cow<'a, str>>,
    #[serde(borrow)]
    err_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    mode: Option<Cow<'a, str>>,
}

/// The key of replies whose request was not captured (no `op`).
const NO_OP: &str = "<no op>";

fn gen_name(request_type: &str) -> &str {
    match request_type {
        "CreateRequest" | "Create2Request" => "create",
        "DeleteRequest" => "delete",
        "ExistsRequest" => "exists",
        "GetDataRequest" => "getData",
        "SetDataRequest" => "setData",
        "GetChildren2Request" => "getChildren2",
        "PingRequest" => "ping",
        "CloseRequest" => "closeSession",
        "ConnectRequest" => "connect",
        other => other,
    }
}

impl Counts {
    /// Counts zkscope's JSON lines (every non-empty line must parse).
    fn from_json_lines(stdout: &str) -> Counts {
        let mut c = Counts::default();
        for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
            let m: Line<'_> = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON message line ({e}): {line}"));
            match m.dir {
                "request" => {
                    let t = gen_name(m.ty).to_string();
                    let ephemeral = t == "create"
                        && m.mode
                            .as_deref()
                            .is_some_and(|s| s.starts_with("EPHEMERAL"));
                    *c.requests_by_type.entry(t.clone()).or_default() += 1;
                    if ephemeral {
                        *c.requests_by_type
                            .entry("createEphemeral".into())
                            .or_default() += 1;
                    }
                    if let Some(path) = m.path {
                        if !matches!(t.as_str(), "ping" | "closeSession" | "connect") {
                            let per = c.per_path.entry(path.into_owned()).or_default();
                            *per.entry(t).or_default() += 1;
                            if ephemeral {
                                *per.entry("createEphemeral".into()).or_default() += 1;
                            }
                        }
                    }
                }
                "reply" => {
                    let t = if m.ty == "ConnectReply" {
                        "connect"
                    } else {
                        m.op.as_deref().unwrap_or(NO_OP)
                    };
                    let e = match m.err_name.as_deref().unwrap_or("OK") {
                        "OK" => "ok",
                        e => e,
                    };
                    *c.replies_by_type
                        .entry(t.to_string())
                        .or_default()
                        .entry(e.to_string())
                        .or_default() += 1;
                }
                _ => {}
            }
        }
        c
    }

    fn from_truth(path: &Path) -> Counts {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let t: Value = serde_json::from_str(&text).expect("truth JSON");
        let counter = |v: &Value| -> Counter {
            v.as_object()
                .expect("object")
                .iter()
                .map(|(k, n)| (k.clone(), n.as_u64().expect("count")))
                .collect()
        };
        let nested = |v: &Value| -> BTreeMap<String, Counter> {
            v.as_object()
                .expect("object")
                .iter()
                .map(|(k, c)| (k.clone(), counter(c)))
                .collect()
        };
        let c = Counts {
            requests_by_type: counter(&t["requests_by_type"]),
            per_path: nested(&t["per_path"]),
            replies_by_type: nested(&t["replies_by_type"]),
        };
        assert!(
            c.requests_by_type.values().sum::<u64>() > 10_000,
            "truth looks empty"
        );
        c
    }

    fn replies_of(&self, op: &str) -> u64 {
        self.replies_by_type.get(op).map_or(0, |c| c.values().sum())
    }
}

/// Up to 8 differing keys of two maps, for failure messages.
fn diff<V: PartialEq + std::fmt::Debug>(
    a: &BTreeMap<String, V>,
    b: &BTreeMap<String, V>,
) -> String {
    let mut out = Vec::new();
    for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        if a.get(k) != b.get(k) {
            out.push(format!(
                "  {k}: decoded {:?}, truth {:?}",
                a.get(k),
                b.get(k)
            ));
        }
    }
    let n = out.len();
    out.truncate(8);
    format!("{n} keys differ:\n{}", out.join("\n"))
}

fn assert_exact(decoded: &Counts, truth: &Counts, what: &str) {
    assert!(
        decoded.requests_by_type == truth.requests_by_type,
        "{what}: requests by type: {}",
        diff(&decoded.requests_by_type, &truth.requests_by_type)
    );
    assert!(
        decoded.replies_by_type == truth.replies_by_type,
        "{what}: replies by type and error: {}",
        diff(&decoded.replies_by_type, &truth.replies_by_type)
    );
    assert!(
        decoded.per_path == truth.per_path,
        "{what}: per-path counts: {}",
        diff(&decoded.per_path, &truth.per_path)
    );
}

// ------------------------------------------------------------ running things

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn run_python(args: &[&str]) -> String {
    let mut cmd = Command::new(python());
    cmd.args(args);
    let out = run_with_timeout(cmd, None, Duration::from_secs(300));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "python3 {args:?} failed ({:?}):\n{}",
        out.status,
        tail(&stderr, 30)
    );
    stderr
}

/// `gen_pcap.py -n 20000 --coalesce --split --seed 11` into `dir`: (pcap, truth).
fn generate(dir: &TempDir) -> (PathBuf, Counts) {
    generate_n(dir, 20_000)
}

/// gen_pcap.py with `n` requests, `--coalesce --split`, seed 11.
fn generate_n(dir: &TempDir, n: u32) -> (PathBuf, Counts) {
    let n = n.to_string();
    let pcap = dir.join("gen.pcap");
    let truth = dir.join("gen.truth.json");
    let script = repo_root().join("bench/gen_pcap.py");
    run_python(&[
        script.to_str().unwrap(),
        "--out",
        pcap.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "-n",
        &n,
        "--coalesce",
        "--split",
        "--seed",
        "11",
    ]);
    (pcap, Counts::from_truth(&truth))
}

/// `mangle_pcap.py IN OUT ARGS…`; returns its counters (the JSON on stderr).
fn mangle(input: &Path, output: &Path, args: &[&str]) -> Value {
    let script = repo_root().join("scripts/mangle_pcap.py");
    let mut all = vec![
        script.to_str().unwrap(),
        input.to_str().unwrap(),
        output.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let stderr = run_python(&all);
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("mangle_pcap: "))
        .unwrap_or_else(|| panic!("no counters from mangle_pcap.py:\n{stderr}"));
    serde_json::from_str(line).expect("mangle_pcap counters")
}

fn stat(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("mangle_pcap counter {key} missing in {v}"))
}

/// What zkscope decoded from a capture: counts and the summary (stderr).
struct Decoded {
    counts: Counts,
    stderr: String,
}

/// `zkscope dump -r PCAP --format json`, checked for a clean run, counted.
fn decode(pcap: &Path, what: &str) -> Decoded {
    let out = zkscope(&["dump", "-r", pcap.to_str().unwrap(), "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "{what}: zkscope panicked:\n{}",
        tail(&stderr, 30)
    );
    assert!(
        out.status.success(),
        "{what}: zkscope failed ({:?}):\n{}",
        out.status,
        tail(&stderr, 30)
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    Decoded {
        counts: Counts::from_json_lines(&stdout),
        stderr,
    }
}

/// A counter of the end-of-run summary: the number just before `label` (as in
/// "3 gaps" or "(120 bytes lost)"), at its first occurrence preceded by one.
fn summary_count(stderr: &str, label: &str) -> u64 {
    for (i, _) in stderr.match_indices(label) {
        let token = stderr[..i]
            .trim_end()
            .rsplit(char::is_whitespace)
            .next()
            .unwrap_or("")
            .trim_start_matches('(');
        if let Ok(n) = token.parse() {
            return n;
        }
    }
    panic!("no counter {label:?} in the summary:\n{stderr}");
}

const GAPS: &str = "gaps (";
const BYTES_LOST: &str = "bytes lost)";
const DUPLICATES: &str = "retransmitted/duplicate segments";
const OUT_OF_ORDER: &str = "out of order";
const UNDECODABLE: &str = "undecodable frames";
const BAD_LENGTHS: &str = "bad length prefixes";
const SKIPPED: &str = "bytes skipped to resynchronise";
const UNPAIRED: &str = "replies without a captured request";
const UNANSWERED: &str = "requests without a reply";

/// Nothing lost, nothing undecodable, everything paired.
fn assert_clean_summary(err: &str, what: &str) {
    for label in [
        GAPS,
        BYTES_LOST,
        UNDECODABLE,
        BAD_LENGTHS,
        SKIPPED,
        UNPAIRED,
        UNANSWERED,
    ] {
        assert_eq!(summary_count(err, label), 0, "{what}: {label}\n{err}");
    }
}

// ------------------------------------------------------------------- tests

#[test]
fn synthetic_capture_decodes_exactly() {
    // The issue's acceptance input: 100,000 requests with coalesced and split segments.
    let dir = TempDir::new("robust-clean");
    let (pcap, truth) = generate_n(&dir, 100_000);
    let d = decode(&pcap, "clean");
    assert_exact(&d.counts, &truth, "clean");
    assert_clean_summary(&d.stderr, "clean");
    assert_eq!(
        summary_count(&d.stderr, DUPLICATES),
        0,
        "clean:\n{}",
        d.stderr
    );
    assert_eq!(
        summary_count(&d.stderr, OUT_OF_ORDER),
        0,
        "clean:\n{}",
        d.stderr
    );
}

#[test]
fn reordered_duplicated_overlapping_segments_decode_exactly() {
    let dir = TempDir::new("robust-mangled");
    let (pcap, truth) = generate(&dir);
    let mangled = dir.join("mangled.pcap");
    let s = mangle(
        &pcap,
        &mangled,
        &[
            "--seed",
            "5",
            "--reorder",
            "0.3",
            "--duplicate",
            "0.2",
            "--retransmit-overlap",
            "0.2",
        ],
    );
    for k in ["reordered", "duplicated", "overlaps", "overlaps_before"] {
        assert!(stat(&s, k) > 100, "mangle_pcap did too little: {s}");
    }
    assert_eq!(stat(&s, "dropped"), 0);
    let what = "reordered + duplicated + overlapping";
    let d = decode(&mangled, what);
    assert_exact(&d.counts, &truth, what);
    assert_clean_summary(&d.stderr, what);
    assert!(
        summary_count(&d.stderr, DUPLICATES) > 0,
        "{what}:\n{}",
        d.stderr
    );
    assert!(
        summary_count(&d.stderr, OUT_OF_ORDER) > 0,
        "{what}:\n{}",
        d.stderr
    );
}

#[test]
fn sequence_numbers_wrapping_past_2_32_decode_exactly() {
    let dir = TempDir::new("robust-wrap");
    let (pcap, truth) = generate(&dir);

    // Every direction starts 296..20296 bytes before 2^32, so the streams
    // (about 40 kB each) wrap at different offsets, mostly mid-message.
    let wrapped = dir.join("wrapped.pcap");
    let s = mangle(
        &pcap,
        &wrapped,
        &[
            "--seed",
            "13",
            "--isn",
            "4294967000",
            "--isn-jitter",
            "20000",
        ],
    );
    assert_eq!(stat(&s, "directions"), 200, "{s}");
    assert!(
        stat(&s, "wrapped_directions") >= 150,
        "too few streams wrap: {s}"
    );
    let d = decode(&wrapped, "wrapped");
    assert_exact(&d.counts, &truth, "wrapped");
    assert_clean_summary(&d.stderr, "wrapped");

    // The same, with reordering, duplicates and overlaps around the wrap.
    let both = dir.join("wrapped-mangled.pcap");
    let s = mangle(
        &pcap,
        &both,
        &[
            "--seed",
            "17",
            "--isn",
            "4294967000",
            "--isn-jitter",
            "20000",
            "--reorder",
            "0.5",
            "--duplicate",
            "0.3",
            "--retransmit-overlap",
            "0.3",
        ],
    );
    assert!(
        stat(&s, "wrapped_directions") >= 150,
        "too few streams wrap: {s}"
    );
    let what = "wrapped + reordered + duplicated + overlapping";
    let d = decode(&both, what);
    assert_exact(&d.counts, &truth, what);
    assert_clean_summary(&d.stderr, what);
    assert!(
        summary_count(&d.stderr, OUT_OF_ORDER) > 0,
        "{what}:\n{}",
        d.stderr
    );
}

/// Drops `drop` random data segments (mangle seed `seed`) and lists what
/// went wrong beyond the unavoidable loss. A dropped segment holds at most 4
/// messages and the resynchronisation after it may lose a split message, so
/// no more than [`LOSS_PER_DROP`] replies (or requests) may go missing per
/// dropped segment, and nothing may be invented.
fn lossy_problems(dir: &TempDir, pcap: &Path, truth: &Counts, seed: u64, drop: u64) -> Vec<String> {
    let lossy = dir.join(format!("lossy-{seed}.pcap"));
    let (seed_s, drop_s) = (seed.to_string(), drop.to_string());
    let s = mangle(pcap, &lossy, &["--seed", &seed_s, "--drop", &drop_s]);
    assert_eq!(stat(&s, "dropped"), drop, "{s}");
    let dropped_bytes = stat(&s, "dropped_bytes");
    assert!(dropped_bytes > 0);

    let what = format!("{drop} data segments dropped (mangle seed {seed})");
    let d = decode(&lossy, &what);
    let err = &d.stderr;
    let mut problems = Vec::new();
    let gaps = summary_count(err, GAPS);
    if !(1..=drop).contains(&gaps) {
        problems.push(format!("{gaps} gaps"));
    }
    // Every drop is followed by an ACK or FIN revealing it: all of it is counted.
    let lost = summary_count(err, BYTES_LOST);
    if lost != dropped_bytes {
        problems.push(format!(
            "{lost} bytes lost reported, {dropped_bytes} dropped"
        ));
    }
    for label in [UNANSWERED, UNPAIRED] {
        let n = summary_count(err, label);
        if n > LOSS_PER_DROP * drop {
            problems.push(format!("{n} {label}"));
        }
    }
    // Frames that do not decode after a gap are a resynchronisation gone wrong.
    let undecodable = summary_count(err, UNDECODABLE);
    if undecodable > 0 {
        problems.push(format!("{undecodable} undecodable frames"));
    }

    let got = &d.counts;
    for (t, &n) in &truth.requests_by_type {
        let g = got.requests_by_type.get(t).copied().unwrap_or(0);
        if g * 100 < n * 95 || g > n {
            problems.push(format!("{g} {t} requests decoded, truth {n}"));
        }
    }
    for t in truth.replies_by_type.keys() {
        let (g, n) = (got.replies_of(t), truth.replies_of(t));
        if g * 100 < n * 95 || g > n {
            problems.push(format!("{g} {t} replies decoded, truth {n}"));
        }
    }
    let unknown: Vec<&String> = got
        .requests_by_type
        .keys()
        .chain(got.replies_by_type.keys())
        .filter(|k| !truth.requests_by_type.contains_key(*k) && k.as_str() != NO_OP)
        .collect();
    if !unknown.is_empty() {
        problems.push(format!("message types not in the capture: {unknown:?}"));
    }
    let total = |c: &Counts| -> u64 { c.replies_by_type.values().flat_map(|v| v.values()).sum() };
    if total(got) > total(truth) {
        problems.push("more replies than sent".into());
    }
    if !problems.is_empty() {
        problems.insert(0, format!("{what}:"));
        problems.push(tail(err, 6));
    }
    problems
}

const LOSS_PER_DROP: u64 = 6;

#[test]
fn dropped_segments_lose_little_and_are_reported() {
    let dir = TempDir::new("robust-drop");
    let (pcap, truth) = generate(&dir);
    let problems = lossy_problems(&dir, &pcap, &truth, 7, 20);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// After a gap the resynchronising scan must not lock onto false frame starts. Seed 12 has
/// "\0\0\x05world\0\0\0\x06" inside a create's ACL (a 1399-byte "getACL" with xid
/// 0x6f726c64 = "orld"); seeds 23 and 26 have reply "headers" inside Stat/data bytes (xid
/// 498160128 or 0, lengths of 22 kB to 101 kB), and a 418 kB "request" inside setData data.
/// Candidates are now judged whole (and the frame after them), replies must answer a pending
/// request, and frames over 64 KiB are never resynchronisation points.
#[test]
fn dropped_segments_never_derail_the_stream() {
    let dir = TempDir::new("robust-drop-derail");
    let (pcap, truth) = generate(&dir);
    let mut problems = Vec::new();
    for seed in [12, 23, 26] {
        problems.extend(lossy_problems(&dir, &pcap, &truth, seed, 20));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------------------- per-message accounting of loss

/// One direction of a TCP connection: (sender, receiver).
type Half = (SocketAddr, SocketAddr);

/// The byte stream of one direction of the clean capture and where its data segments lie.
#[derive(Default)]
struct CleanStream {
    /// Sequence number of the first payload byte.
    base: Option<u32>,
    next: u32,
    bytes: Vec<u8>,
}

/// Reads every TCP segment of `pcap`: `(direction, seq, payload length)` of the data
/// segments, and, when `streams` is given, the (in-order, loss-free) stream of each direction.
fn segments(
    pcap: &Path,
    mut streams: Option<&mut HashMap<Half, CleanStream>>,
) -> Vec<(Half, u32, u32)> {
    let mut src = PacketSource::open_file(pcap).expect("open capture");
    let mut out = Vec::new();
    while let Some(pkt) = src.next_packet().expect("read capture") {
        let Ok(seg) = parse_tcp(&pkt) else { continue };
        let half = (seg.src, seg.dst);
        if let Some(streams) = streams.as_deref_mut() {
            let s = streams.entry(half).or_default();
            if seg.flags.syn {
                s.base = Some(seg.seq.wrapping_add(1));
                s.next = seg.seq.wrapping_add(1);
            }
            if !seg.payload.is_empty() {
                if s.base.is_none() {
                    s.base = Some(seg.seq);
                    s.next = seg.seq;
                }
                assert_eq!(seg.seq, s.next, "the generated capture is not in order");
                s.bytes.extend_from_slice(seg.payload);
                s.next = s.next.wrapping_add(seg.payload.len() as u32);
            }
        }
        if !seg.payload.is_empty() {
            out.push((half, seg.seq, seg.payload.len() as u32));
        }
    }
    out
}

/// What a message is, as both the truth and zkscope's JSON can say it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum MsgKey {
    Connect,
    ConnectReply,
    Request(i32),
    Reply(i32),
    Event,
}

/// A message of the clean capture.
#[derive(Debug)]
struct TrueMsg {
    /// Opcode (requests) or the opcode of the request it answers (replies).
    opcode: Option<i32>,
    err: Option<i32>,
    path: Option<String>,
    /// A dropped segment took bytes of this message (or, for a reply, of its request).
    touched: bool,
}

/// A message line of `zkscope dump --format json`.
#[derive(serde::Deserialize)]
struct OutLine<'a> {
    dir: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    client: &'a str,
    xid: Option<i32>,
    opcode: Option<i32>,
    err: Option<i32>,
    #[serde(borrow)]
    path: Option<Cow<'a, str>>,
    /// Reported from its captured start: a reply cut inside its header has no error code
    /// (`err` null, `err_name` "unknown"), never a wrong one.
    #[serde(default)]
    cut: bool,
}

/// Frames of a clean length-prefixed stream: `(start offset, end offset, body)`.
fn frames_of(bytes: &[u8]) -> Vec<(u64, u64, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while let Some(p) = bytes.get(at..at + 4) {
        let len = u32::from_be_bytes(p.try_into().unwrap()) as usize;
        let body = bytes
            .get(at + 4..at + 4 + len)
            .expect("the clean stream ends inside a frame");
        out.push((at as u64, (at + 4 + len) as u64, body));
        at += 4 + len;
    }
    assert_eq!(at, bytes.len(), "trailing bytes in a clean stream");
    out
}

/// The messages of the clean capture by (client, message key), each marked touched when a
/// dropped segment (`dropped`: direction → stream byte ranges) overlaps it.
fn true_messages(
    streams: &HashMap<Half, CleanStream>,
    dropped: &HashMap<Half, Vec<(u64, u64)>>,
) -> BTreeMap<(String, MsgKey), Vec<TrueMsg>> {
    let hit = |half: &Half, start: u64, end: u64| {
        dropped
            .get(half)
            .is_some_and(|r| r.iter().any(|&(a, b)| a < end && start < b))
    };
    let mut msgs: BTreeMap<(String, MsgKey), Vec<TrueMsg>> = BTreeMap::new();
    // Requests first: replies take their opcode and touched flag.
    let mut requests: HashMap<(String, i32), (i32, bool)> = HashMap::new();
    for to_server in [true, false] {
        for (half, s) in streams {
            if (half.1.port() == 2181) != to_server {
                continue;
            }
            let client = if to_server { half.0 } else { half.1 }.to_string();
            for (i, (start, end, body)) in frames_of(&s.bytes).into_iter().enumerate() {
                let touched = hit(half, start, end);
                let head = |at: usize| i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
                let (key, m) = match (to_server, i) {
                    (true, 0) => (
                        MsgKey::Connect,
                        TrueMsg {
                            opcode: None,
                            err: None,
                            path: None,
                            touched,
                        },
                    ),
                    (false, 0) => (
                        MsgKey::ConnectReply,
                        TrueMsg {
                            opcode: None,
                            err: None,
                            path: None,
                            touched,
                        },
                    ),
                    (true, _) => {
                        let r = zkscope_proto::decode_request(body).expect("clean request");
                        let (xid, op) = (r.header.xid, r.header.opcode.0);
                        requests.insert((client.clone(), xid), (op, touched));
                        let path = r.body.path().map(|p| p.to_string());
                        (
                            MsgKey::Request(xid),
                            TrueMsg {
                                opcode: Some(op),
                                err: None,
                                path,
                                touched,
                            },
                        )
                    }
                    (false, _) if head(0) == -1 => (
                        MsgKey::Event,
                        TrueMsg {
                            opcode: None,
                            err: None,
                            path: None,
                            touched,
                        },
                    ),
                    (false, _) => {
                        let xid = head(0);
                        let err = i32::from_be_bytes(body[12..16].try_into().unwrap());
                        let (op, req_touched) = requests
                            .get(&(client.clone(), xid))
                            .copied()
                            .expect("a reply without its request in the clean capture");
                        let touched = touched || (xid >= 0 && req_touched);
                        (
                            MsgKey::Reply(xid),
                            TrueMsg {
                                opcode: Some(op),
                                err: Some(err),
                                path: None,
                                touched,
                            },
                        )
                    }
                };
                msgs.entry((client.clone(), key)).or_default().push(m);
            }
        }
    }
    msgs
}

/// Outcome of one lossy run.
struct LossReport {
    untouched: u64,
    correct: u64,
    /// The first untouched messages that were not decoded and paired correctly.
    missed: Vec<String>,
    invented: Vec<String>,
    gaps: u64,
    bytes_lost: u64,
    dropped_bytes: u64,
    drops: u64,
    stderr: String,
}

/// Generates a capture, drops 2% of its data segments (plus `extra` mangling), decodes it,
/// and compares every message with the clean capture's.
fn loss_report(dir: &TempDir, seed: u64, extra: &[&str]) -> LossReport {
    let (pcap, _) = generate_n(dir, 10_000);
    let mut streams = HashMap::new();
    let clean = segments(&pcap, Some(&mut streams));
    let drops = (clean.len() as u64).div_ceil(50);
    let lossy = dir.join(format!("loss-{seed}.pcap"));
    let (seed_s, drop_s) = (seed.to_string(), drops.to_string());
    let mut args = vec!["--seed", &seed_s, "--drop", &drop_s];
    args.extend_from_slice(extra);
    let s = mangle(&pcap, &lossy, &args);
    assert_eq!(stat(&s, "dropped"), drops, "{s}");

    // The dropped segments: clean data segments absent from the lossy capture.
    let kept: HashSet<(Half, u32, u32)> = segments(&lossy, None).into_iter().collect();
    let mut dropped: HashMap<Half, Vec<(u64, u64)>> = HashMap::new();
    let mut dropped_bytes = 0;
    for seg @ (half, seq, len) in &clean {
        if !kept.contains(seg) {
            let base = streams[half].base.expect("stream start");
            let off = u64::from(seq.wrapping_sub(base));
            dropped
                .entry(*half)
                .or_default()
                .push((off, off + u64::from(*len)));
            dropped_bytes += u64::from(*len);
        }
    }
    assert_eq!(dropped_bytes, stat(&s, "dropped_bytes"), "{s}");
    let truth = true_messages(&streams, &dropped);

    let out = zkscope(&["dump", "-r", lossy.to_str().unwrap(), "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{}",
        tail(&stderr, 30)
    );
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let mut decoded: BTreeMap<(String, MsgKey), Vec<OutLine<'_>>> = BTreeMap::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let m: OutLine<'_> = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let key = match (m.dir, m.ty) {
            ("request", "ConnectRequest") => MsgKey::Connect,
            ("reply", "ConnectReply") => MsgKey::ConnectReply,
            ("request", _) => MsgKey::Request(m.xid.expect("request xid")),
            ("reply", _) => MsgKey::Reply(m.xid.expect("reply xid")),
            ("event", _) => MsgKey::Event,
            _ => panic!("unexpected message: {line}"),
        };
        decoded
            .entry((m.client.to_string(), key))
            .or_default()
            .push(m);
    }

    // A decoded message matches a true one when every field it has agrees (a frame cut by a
    // gap may lack its path, never have another one; a reply must be paired with its own
    // request's opcode or be unpaired, never paired with another).
    let agrees = |t: &TrueMsg, o: &OutLine<'_>, strict: bool| -> bool {
        let op_ok = match (o.dir, o.opcode) {
            ("request", op) => op.is_none() || op == t.opcode,
            (_, None) => !strict || t.opcode.is_none(),
            (_, op) => op == t.opcode,
        };
        let path_ok = match (&o.path, &t.path) {
            (Some(p), Some(q)) => p == q,
            (Some(_), None) => o.dir != "request",
            (None, q) => !strict || q.is_none(),
        };
        let err_ok = t.err.is_none() || o.err == t.err || (o.cut && o.err.is_none());
        op_ok && path_ok && err_ok
    };
    let (mut untouched, mut correct) = (0, 0);
    let (mut invented, mut missed) = (Vec::new(), Vec::new());
    for (key, outs) in &decoded {
        let Some(ts) = truth.get(key) else {
            invented.push(format!("{key:?}: {} decoded, none sent", outs.len()));
            continue;
        };
        if outs.len() > ts.len() {
            invented.push(format!(
                "{key:?}: {} decoded, {} sent",
                outs.len(),
                ts.len()
            ));
        }
        for o in outs {
            if !ts.iter().any(|t| agrees(t, o, false)) {
                invented.push(format!(
                    "{key:?}: decoded opcode {:?} err {:?} path {:?}, sent {ts:?}",
                    o.opcode, o.err, o.path
                ));
            }
        }
    }
    for (key, ts) in &truth {
        let mut outs: Vec<&OutLine<'_>> = decoded
            .get(key)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        for t in ts.iter().filter(|t| !t.touched) {
            untouched += 1;
            if let Some(i) = outs.iter().position(|o| agrees(t, o, true)) {
                outs.swap_remove(i);
                correct += 1;
            } else if missed.len() < 12 {
                let got: Vec<String> = decoded
                    .get(key)
                    .into_iter()
                    .flatten()
                    .map(|o| format!("opcode {:?} err {:?} path {:?}", o.opcode, o.err, o.path))
                    .collect();
                missed.push(format!("{key:?}: sent {t:?}, decoded {got:?}"));
            }
        }
    }
    LossReport {
        untouched,
        correct,
        missed,
        invented,
        gaps: summary_count(&stderr, GAPS),
        bytes_lost: summary_count(&stderr, BYTES_LOST),
        dropped_bytes,
        drops,
        stderr,
    }
}

/// ≥ 99% of the messages no drop touched decode and pair correctly, nothing is invented,
/// and every lost byte is counted.
fn assert_loss_report(r: &LossReport, what: &str) {
    let ratio = r.correct as f64 / r.untouched as f64;
    eprintln!(
        "{what}: {} of {} untouched messages decoded and paired ({:.3}%), {} drops, {} gaps, {} bytes lost",
        r.correct,
        r.untouched,
        100.0 * ratio,
        r.drops,
        r.gaps,
        r.bytes_lost
    );
    assert!(
        r.untouched > 15_000,
        "{what}: too few messages ({})",
        r.untouched
    );
    assert!(
        r.invented.is_empty(),
        "{what}: {} decoded messages were never sent:\n{}\n{}",
        r.invented.len(),
        r.invented
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        tail(&r.stderr, 8)
    );
    assert!(
        ratio >= 0.99,
        "{what}: only {} of {} untouched messages decoded and paired; first misses:\n{}\n{}",
        r.correct,
        r.untouched,
        r.missed.join("\n"),
        tail(&r.stderr, 8)
    );
    assert!(
        (1..=r.drops).contains(&r.gaps),
        "{what}: {} gaps for {} drops",
        r.gaps,
        r.drops
    );
    assert_eq!(
        r.bytes_lost,
        r.dropped_bytes,
        "{what}: bytes lost\n{}",
        tail(&r.stderr, 8)
    );
}

#[test]
fn two_percent_loss_with_duplicates_loses_only_what_was_dropped() {
    let dir = TempDir::new("robust-loss-dup");
    let r = loss_report(
        &dir,
        31,
        &["--duplicate", "0.05", "--retransmit-overlap", "0.05"],
    );
    assert_loss_report(&r, "2% dropped + duplicates + overlaps");
}

#[test]
fn two_percent_loss_with_reordering_loses_only_what_was_dropped() {
    let dir = TempDir::new("robust-loss-reorder");
    let r = loss_report(&dir, 37, &["--duplicate", "0.05", "--reorder", "0.05"]);
    assert_loss_report(&r, "2% dropped + duplicates + reordering");
}

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
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{repo_root, run_with_timeout, tail, zkscope, TempDir};

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

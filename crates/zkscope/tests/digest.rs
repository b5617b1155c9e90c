//! `zkscope digest`: insta snapshots of the text report on real captures (timestamps
//! redacted), and ground truth on a `bench/gen_pcap.py` capture: the calls of every class
//! (operation + path with sequential suffixes folded) equal the generator's truth file.

use std::collections::BTreeMap;
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

fn zkscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(args)
        .env("TZ", "UTC")
        .env_remove("COLUMNS")
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
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn digest_json(args: &[&str]) -> Value {
    let mut a = vec!["digest"];
    a.extend_from_slice(args);
    a.extend(["--format", "json", "-q"]);
    serde_json::from_str(&run_ok(&a)).expect("one JSON object")
}

/// The text report with timestamps and the capture's absolute path redacted.
fn snapshot_text(file: &str) -> String {
    let path = repo(file);
    let path = path.to_str().expect("UTF-8 path");
    run_ok(&["digest", "-r", path, "-q"]).replace(path, file)
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", "[TS]");
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn snapshot_zk38_session() {
    let text = snapshot_text("fixtures/real/zk38-session.pcap");
    settings().bind(|| insta::assert_snapshot!("digest_zk38_session", text));
}

#[test]
fn snapshot_zktraffic_dump() {
    let text = snapshot_text("fixtures/zktraffic/dump.pcap");
    settings().bind(|| insta::assert_snapshot!("digest_zktraffic_dump", text));
}

#[test]
fn json_has_the_sections_of_the_text_report() {
    let v = digest_json(&[
        "-r",
        repo("fixtures/real/zk38-session.pcap").to_str().unwrap(),
    ]);
    for k in [
        "header",
        "profile",
        "classes",
        "sessions",
        "watches",
        "four_letter_words",
    ] {
        assert!(v.get(k).is_some(), "{k} missing in {v}");
    }
    let h = &v["header"];
    assert_eq!(h["calls"], 163);
    assert_eq!(h["pings"], 3);
    assert_eq!(v["profile"].as_array().unwrap().len(), 10);
    assert_eq!(v["classes"].as_array().unwrap().len(), 10);
    assert_eq!(v["sessions"]["connects"], 11);
    assert_eq!(v["sessions"]["closes"], 11);
    assert_eq!(v["watches"]["add_watch"], 2);
    assert_eq!(v["four_letter_words"]["ruok"]["calls"], 1);
    // Ranked by total response time, shares add up with MISC.
    let profile = v["profile"].as_array().unwrap();
    let times: Vec<f64> = profile
        .iter()
        .map(|r| r["response_time_us"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let total: f64 = times.iter().sum::<f64>() + v["misc"]["response_time_us"].as_f64().unwrap();
    let want = h["latency_us"]["total"].as_f64().unwrap();
    assert!((total - want).abs() < 0.01 * want, "{total} vs {want}");
    let calls: u64 = profile
        .iter()
        .map(|r| r["calls"].as_u64().unwrap())
        .sum::<u64>()
        + v["misc"]["calls"].as_u64().unwrap();
    assert_eq!(calls, 163);
}

const GEN_ARGS: [&str; 4] = ["-n", "20000", "--seed", "5"];

/// The generated capture, made once.
fn gen() -> &'static Gen {
    static G: OnceLock<Gen> = OnceLock::new();
    G.get_or_init(|| generated::generate("digest", &GEN_ARGS))
}

/// ZooKeeper's sequential counter (exactly ten digits not preceded by a digit) → `{seq}`.
fn fold(path: &str) -> String {
    path.split('/')
        .map(|c| {
            let b = c.as_bytes();
            if b.len() >= 10 {
                let (pre, digits) = b.split_at(b.len() - 10);
                if digits.iter().all(u8::is_ascii_digit)
                    && !pre.last().is_some_and(u8::is_ascii_digit)
                {
                    return format!("{}{{seq}}", String::from_utf8_lossy(pre));
                }
            }
            c.to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn classes(v: &Value) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for c in v["classes"].as_array().expect("classes") {
        let key = (
            c["op"].as_str().unwrap().to_string(),
            c["path"].as_str().unwrap().to_string(),
        );
        assert!(m.insert(key, c["calls"].as_u64().unwrap()).is_none());
    }
    m
}

#[test]
fn class_calls_equal_the_truth_file() {
    let g = gen();
    // (sequential folding only: the truth file counts per path)
    let v = digest_json(&[
        "-r",
        g.pcap.to_str().unwrap(),
        "--limit",
        "1000000",
        "--fold",
        "sequential",
    ]);
    assert!(v["other_class"].is_null(), "no class folded");
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (path, ops) in g.truth["per_path"].as_object().unwrap() {
        for (op, n) in ops.as_object().unwrap() {
            if op != "createEphemeral" {
                *want.entry((op.clone(), fold(path))).or_default() += n.as_u64().unwrap();
            }
        }
    }
    let by_type = &g.truth["requests_by_type"];
    want.insert(
        ("closeSession".into(), String::new()),
        by_type["closeSession"].as_u64().unwrap(),
    );
    let got = classes(&v);
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    let h = &v["header"];
    assert_eq!(h["pings"], by_type["ping"]);
    assert_eq!(v["sessions"]["connects"], by_type["connect"]);
    assert_eq!(v["sessions"]["closes"], by_type["closeSession"]);
    let total = g.truth["requests_total"].as_u64().unwrap();
    let connect = by_type["connect"].as_u64().unwrap();
    let ping = by_type["ping"].as_u64().unwrap();
    assert_eq!(h["calls"].as_u64().unwrap(), total - connect - ping);
    // Errors per class add up to the truth's error replies.
    let mut errors = 0;
    for (op, errs) in g.truth["replies_by_type"].as_object().unwrap() {
        if op == "ping" || op == "connect" {
            continue;
        }
        for (e, n) in errs.as_object().unwrap() {
            if e != "ok" {
                errors += n.as_u64().unwrap();
            }
        }
    }
    assert_eq!(h["errors"].as_u64().unwrap(), errors);
    // Watches set by requests.
    let watches: u64 = g.truth["watches_per_path"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(v["watches"]["set"].as_u64().unwrap(), watches);
}

#[test]
fn order_by_calls_and_aggregation_depth() {
    let g = gen();
    let v = digest_json(&[
        "-r",
        g.pcap.to_str().unwrap(),
        "--order-by",
        "calls",
        "--aggregation-depth",
        "1",
        "--limit",
        "1000",
    ]);
    let profile = v["profile"].as_array().unwrap();
    let calls: Vec<u64> = profile
        .iter()
        .map(|r| r["calls"].as_u64().unwrap())
        .collect();
    assert!(calls.windows(2).all(|w| w[0] >= w[1]), "{calls:?}");
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (path, ops) in g.truth["per_path"].as_object().unwrap() {
        let top = format!("/{}", path.split('/').nth(1).unwrap_or(""));
        for (op, n) in ops.as_object().unwrap() {
            if op != "createEphemeral" {
                *want.entry((op.clone(), top.clone())).or_default() += n.as_u64().unwrap();
            }
        }
    }
    want.insert(
        ("closeSession".into(), String::new()),
        g.truth["requests_by_type"]["closeSession"]
            .as_u64()
            .unwrap(),
    );
    assert_eq!(classes(&v), want);
}

#[test]
fn since_and_until_cut_the_window() {
    let g = gen();
    let all = digest_json(&["-r", g.pcap.to_str().unwrap()]);
    let span = all["header"]["span_s"].as_f64().unwrap();
    let half = format!("{:.3}s", span / 2.0);
    let a = digest_json(&["-r", g.pcap.to_str().unwrap(), "--until", &half]);
    let b = digest_json(&["-r", g.pcap.to_str().unwrap(), "--since", &half]);
    let n = |v: &Value| v["header"]["calls"].as_u64().unwrap();
    assert!(n(&a) > 0 && n(&b) > 0);
    assert_eq!(n(&a) + n(&b), n(&all));
    assert!(a["header"]["outside_window"].as_u64().unwrap() > 0);
}

#[test]
fn bad_time_is_an_error() {
    let out = zkscope(&[
        "digest",
        "-r",
        repo("fixtures/zktraffic/dump.pcap").to_str().unwrap(),
        "--since",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad time"));
}

#[test]
fn classes_beyond_the_cap_fold_into_other() {
    let g = gen();
    let v = digest_json(&["-r", g.pcap.to_str().unwrap(), "--max-classes", "5"]);
    assert_eq!(v["classes"].as_array().unwrap().len(), 5);
    let other = v["other_class"]["calls"].as_u64().unwrap();
    assert_eq!(other, v["folded"]["class_calls"].as_u64().unwrap());
    let shown: u64 = v["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(shown + other, v["header"]["calls"].as_u64().unwrap());
    let text = run_ok(&[
        "digest",
        "-r",
        g.pcap.to_str().unwrap(),
        "--max-classes",
        "5",
        "-q",
    ]);
    assert!(text.contains("are in the (other) class"), "{text}");
}

#[test]
fn duration_stops_on_the_capture_clock() {
    let g = gen();
    let all = digest_json(&["-r", g.pcap.to_str().unwrap()]);
    let span = all["header"]["span_s"].as_f64().unwrap();
    let d = format!("{:.3}s", span / 4.0);
    let part = digest_json(&["-r", g.pcap.to_str().unwrap(), "--duration", &d]);
    let n = |v: &Value| v["header"]["calls"].as_u64().unwrap();
    assert!(
        n(&part) > 0 && n(&part) < n(&all),
        "{} of {}",
        n(&part),
        n(&all)
    );
    assert!(part["header"]["span_s"].as_f64().unwrap() <= span / 4.0 + 0.001);
}

fn fixture(name: &str) -> Value {
    let p = repo(&format!("fixtures/zktraffic/{name}.pcap"));
    digest_json(&["-r", p.to_str().unwrap()])
}

#[test]
fn sessions_watches_and_four_letter_words_sections() {
    let v = fixture("setwatches");
    assert_eq!(v["sessions"]["reconnects"], 1);
    assert_eq!(v["sessions"]["connects"], 0);
    assert_eq!(v["sessions"]["negotiated_timeouts_ms"]["30000"], 1);
    assert_eq!(v["watches"]["set_watches"], 1);
    let v = fixture("connect_replies");
    assert_eq!(v["sessions"]["connects"], 3);
    assert_eq!(v["sessions"]["negotiated_timeouts_ms"]["10000"], 3);
    assert_eq!(v["sessions"]["connect_latency_us"]["count"], 3);
    let v = fixture("connects");
    assert_eq!(v["sessions"]["unanswered"], 3);
    assert_eq!(v["sessions"]["closes"], 3);
    let v = fixture("fire_watches");
    assert_eq!(v["watches"]["fired"], 1);
    let v = fixture("get_children_with_four_letter");
    assert_eq!(v["four_letter_words"]["conf"]["calls"], 1);
    assert_eq!(v["four_letter_words"]["stat"]["calls"], 1);
    let v = fixture("getdata_watches");
    assert!(
        v["watches"]["set"].as_u64().unwrap() > 0,
        "{}",
        v["watches"]
    );
}

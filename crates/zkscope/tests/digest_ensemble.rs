//! `zkscope digest --protocol auto`: the elections and quorum sections on zktraffic's
//! `omni.pcap` (a 3-server ensemble, leader 2 on quorum port 2781). The expected ZAB counts
//! are those of `tests/ensemble_fixtures.rs` (zktraffic.md §7.4 plus the NEWLEADERs zktraffic
//! loses), the rounds those of `zkscope elections`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const OMNI: &str = "fixtures/zktraffic/omni.pcap";

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(p)
}

fn run_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_zkscope"))
        .args(args)
        .env("TZ", "UTC")
        .env_remove("COLUMNS")
        .output()
        .expect("run zkscope");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn omni_path() -> String {
    repo(OMNI).to_str().expect("UTF-8 path").to_string()
}

fn digest_json(extra: &[&str]) -> Value {
    let path = omni_path();
    let mut a = vec!["digest", "-r", &path, "--format", "json", "-q"];
    a.extend_from_slice(extra);
    serde_json::from_str(&run_ok(&a)).expect("one JSON object")
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .expect("an object of counts")
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().expect("a count")))
        .collect()
}

#[test]
fn omni_elections_and_quorum() {
    let v = digest_json(&["--protocol", "auto"]);

    // Elections: 1 and 2 elect 2; 3 starts later and finds leader 2.
    let rounds = v["elections"]["rounds"].as_array().expect("rounds");
    let leaders: Vec<_> = rounds.iter().map(|r| r["leader"].as_i64()).collect();
    assert_eq!(leaders, [Some(2), Some(2)]);
    let kinds: Vec<_> = rounds.iter().map(|r| r["kind"].as_str()).collect();
    assert_eq!(kinds, [Some("election"), Some("rejoin")]);
    assert_eq!(rounds[0]["participants"], serde_json::json!([1, 2]));
    assert_eq!(rounds[1]["looking"], serde_json::json!([3]));
    for r in rounds {
        assert!(r["epoch"].is_i64(), "{r}");
        assert!(r["start_ts"].as_f64() <= r["end_ts"].as_f64(), "{r}");
        assert!(r["duration_ms"].as_f64().is_some_and(|d| d > 0.0), "{r}");
    }
    assert_eq!(
        v["elections"]["messages"], 12,
        "3 initial messages, 9 notifications"
    );

    // Quorum: every packet on leader 2's port 2781, counts as the stream decoders pin them.
    let q = &v["quorum"];
    let mut by_type = counts(&q["from_leader"]);
    for (k, n) in counts(&q["from_learner"]) {
        *by_type.entry(k).or_default() += n;
    }
    let expected: BTreeMap<String, u64> = [
        ("FollowerInfo", 2),
        ("LeaderInfo", 2),
        ("AckEpoch", 2),
        ("Diff", 1),
        ("Ack", 8),
        ("UpToDate", 2),
        ("Snap", 1),
        ("Snapshot", 1),
        ("NewLeader", 2),
        ("Request", 3),
        ("Proposal", 4),
        ("Commit", 4),
        ("Sync", 1),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(by_type, expected, "pings are not in the counts");
    assert_eq!(q["pings"], 120);
    assert_eq!(
        q["packets"], 152,
        "120 pings + 32 other packets (the snapshot is none)"
    );
    assert_eq!(q["proposals"], 4);
    assert_eq!(q["commits"], 4);
    assert_eq!(q["snapshots"], 1);
    assert_eq!(q["snapshot_bytes"], 553);
    assert_eq!(q["diffs"], 1);
    assert_eq!(q["truncs"], 0);
    // Two zxids, each proposed to and committed on both followers: timed once per zxid.
    let lat = &q["commit_latency"];
    assert_eq!(lat["matched"], 2);
    let (p50, p95, max) = (
        lat["p50_us"].as_f64().expect("p50"),
        lat["p95_us"].as_f64().expect("p95"),
        lat["max_us"].as_f64().expect("max"),
    );
    assert!(0.0 < p50 && p50 <= p95 && p95 <= max, "{lat}");

    let learners = q["learners"].as_array().expect("learners");
    let sids: Vec<_> = learners.iter().map(|l| l["sid"].as_i64()).collect();
    assert_eq!(sids, [Some(1), Some(3)]);
    for l in learners {
        assert_eq!(l["leader_sid"], 2, "{l}");
        assert_eq!(l["observer"], false, "{l}");
        assert!(
            l["leader"].as_str().is_some_and(|a| a.ends_with(":2781")),
            "{l}"
        );
    }
    let conns = q["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 4, "two learners, both directions");
    let mut pings = 0;
    for c in conns {
        let leader = if c["from_leader"] == true {
            &c["src"]
        } else {
            &c["dst"]
        };
        assert!(leader.as_str().is_some_and(|a| a.ends_with(":2781")), "{c}");
        pings += c["pings"].as_u64().expect("pings");
    }
    assert_eq!(pings, 120);
}

#[test]
fn client_part_unchanged_by_protocol_auto() {
    let plain = digest_json(&[]);
    let auto = digest_json(&["--protocol", "auto"]);
    assert!(plain.get("elections").is_none() && plain.get("quorum").is_none());
    for k in ["profile", "classes", "sessions", "watches"] {
        assert_eq!(plain[k], auto[k], "{k}");
    }
    assert_eq!(plain["header"]["calls"], auto["header"]["calls"]);
    let text = run_ok(&["digest", "-r", &omni_path(), "-q"]);
    assert!(!text.contains("# Elections") && !text.contains("# Quorum"));
}

#[test]
fn snapshot_omni_auto() {
    let path = omni_path();
    let text = run_ok(&["digest", "-r", &path, "-q", "--protocol", "auto"]).replace(&path, OMNI);
    let mut s = insta::Settings::clone_current();
    s.add_filter(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", "[TS]");
    s.set_prepend_module_to_snapshot(false);
    s.bind(|| insta::assert_snapshot!("digest_omni_auto", text));
}

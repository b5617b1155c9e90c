//! The aggregation over zktraffic's captures (fixtures/zktraffic), fed through the real
//! capture pipeline.

use std::path::PathBuf;

use zkscope_analysis::compat::{latency_config, ArrivalCounter, CompatGroup};
use zkscope_analysis::{
    sort_rows, Aggregator, Column, Config, Filter, GroupKey, PathNorm, Row, NO_REPLY, OTHER,
};
use zkscope_capture::client::{ClientConfig, ClientHandler, ServerSpec};
use zkscope_capture::pipeline::{Consumer, Feed};
use zkscope_capture::{parse_tcp, PacketSource, TcpConfig, TcpTracker, Timestamp};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/zktraffic")
        .join(name)
}

/// Runs a capture through the decoder into `sink`, stopping early when `done` says so.
fn replay<S: Consumer>(name: &str, sink: S, done: impl Fn(&S) -> bool) -> S {
    let mut src = PacketSource::open_file(&fixture(name)).expect("open fixture");
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    let mut h = ClientHandler::new(spec, ClientConfig::default(), Feed(sink));
    let mut tr = TcpTracker::new(TcpConfig::default());
    let mut last = Timestamp::ZERO;
    while let Some(p) = src.next_packet().expect("read") {
        last = p.ts;
        if let Ok(seg) = parse_tcp(&p) {
            tr.segment(&mut h, p.ts, &seg);
        }
        if done(&h.sink.0) {
            break;
        }
    }
    tr.finish(&mut h, last);
    h.sink.0
}

fn aggregate(name: &str, cfg: Config) -> Aggregator {
    let mut a = replay(name, Aggregator::new(&cfg), Aggregator::done);
    a.finish();
    a
}

fn by<'a>(rows: &'a [Row<'a>], values: &[&str]) -> &'a Row<'a> {
    rows.iter()
        .find(|r| r.values == values)
        .unwrap_or_else(|| panic!("no row {values:?}"))
}

#[test]
fn count_printer_by_type_matches_zktraffic() {
    // test_count_printer: count=14 (requests + events), group by type, pings included.
    let c = replay(
        "dump.pcap",
        ArrivalCounter::new(CompatGroup::Type, 0, true, 14, 1000),
        ArrivalCounter::done,
    );
    assert_eq!(
        c.lines(),
        vec![
            ("ExistsRequest", 5),
            ("PingRequest", 3),
            ("GetChildrenRequest", 2),
            ("CreateRequest", 1),
            ("GetDataRequest", 1),
            ("SetDataRequest", 1),
            ("NodeDataChanged", 1),
        ]
    );
}

#[test]
fn count_printer_by_client_and_path() {
    let c = replay(
        "dump.pcap",
        ArrivalCounter::new(CompatGroup::Client, 0, true, 14, 1000),
        ArrivalCounter::done,
    );
    assert_eq!(c.lines(), vec![("127.0.0.1:60446", 14)]);
    // Without pings the capture has 10 requests and 1 event: fewer than asked.
    let c = replay(
        "dump.pcap",
        ArrivalCounter::new(CompatGroup::Path, 0, false, 14, 1000),
        ArrivalCounter::done,
    );
    assert_eq!(c.seen(), 11);
    assert!(!c.done());
    assert_eq!(
        c.lines(),
        vec![("/dknightly", 7), ("/", 2), ("/dkni", 1), ("/dknigh", 1)]
    );
    // A small limit stops early; depth 1 folds the paths.
    let c = replay(
        "dump.pcap",
        ArrivalCounter::new(CompatGroup::Path, 1, true, 3, 1000),
        ArrivalCounter::done,
    );
    assert_eq!(c.lines(), vec![("", 2), ("/dknightly", 1)]);
    // The group cap folds later keys.
    let c = replay(
        "dump.pcap",
        ArrivalCounter::new(CompatGroup::Type, 0, true, 14, 2),
        ArrivalCounter::done,
    );
    assert_eq!(
        c.lines(),
        vec![("ExistsRequest", 5), ("PingRequest", 3), (OTHER, 6)]
    );
}

#[test]
fn calls_by_type_on_dump() {
    let a = aggregate("dump.pcap", Config::default());
    let rows = a.table().rows();
    assert_eq!(a.recorded(), 13);
    let exists = by(&rows, &["ExistsRequest"]);
    assert_eq!(exists.summary.count, 5);
    assert_eq!(exists.summary.errors, 3);
    assert_eq!(exists.summary.samples, 5);
    // 531, 361, 777, 490, 923 µs
    assert_eq!(exists.summary.p50_us, Some(531));
    assert_eq!(exists.summary.max_us, Some(923));
    assert_eq!(
        exists.summary.avg_us,
        Some((531.0 + 361.0 + 777.0 + 490.0 + 923.0) / 5.0)
    );
    let set = by(&rows, &["SetDataRequest"]);
    assert_eq!(set.summary.p99_us, Some(7237));
    assert_eq!(by(&rows, &["PingRequest"]).summary.count, 3);
    // Events only when asked.
    assert!(rows.iter().all(|r| r.values != ["NodeDataChanged"]));
    let a = aggregate(
        "dump.pcap",
        Config {
            filter: Filter {
                events: true,
                pings: false,
                ..Filter::default()
            },
            keys: vec![GroupKey::Op, GroupKey::Path],
            ..Config::default()
        },
    );
    let rows = a.table().rows();
    assert_eq!(a.recorded(), 11);
    let ev = by(&rows, &["notification", "/dknightly"]);
    assert_eq!(ev.summary.count, 1);
    assert_eq!(ev.summary.samples, 0);
    assert_eq!(by(&rows, &["exists", "/dknightly"]).summary.count, 3);
    assert_eq!(by(&rows, &["getChildren", "/"]).summary.count, 2);
}

#[test]
fn sorting_and_slow_threshold() {
    let a = aggregate(
        "dump.pcap",
        Config {
            keys: vec![GroupKey::Type],
            slow_ns: Some(700_000),
            ..Config::default()
        },
    );
    let mut rows = a.table().rows();
    sort_rows(&mut rows, Column::Count);
    let names: Vec<&str> = rows.iter().map(|r| r.values[0]).collect();
    // Ties keep first-seen order (of completed calls).
    assert_eq!(
        names,
        [
            "ExistsRequest",
            "PingRequest",
            "GetChildrenRequest",
            "CreateRequest",
            "GetDataRequest",
            "SetDataRequest"
        ]
    );
    sort_rows(&mut rows, Column::Max);
    assert_eq!(rows[0].values, ["SetDataRequest"]);
    sort_rows(&mut rows, Column::Key(0));
    assert_eq!(rows[0].values, ["CreateRequest"]);
    sort_rows(&mut rows, Column::Slow);
    // > 700µs: exists 777 and 923, create 783, getData 956, setData 7237.
    assert_eq!(rows[0].values, ["ExistsRequest"]);
    assert_eq!(rows[0].summary.slow, 2);
    assert_eq!(a.table().total().slow, 5);
    assert_eq!(Column::parse("p99_us", &[GroupKey::Type]), Ok(Column::P99));
    assert_eq!(Column::parse("type", &[GroupKey::Type]), Ok(Column::Key(0)));
    assert!(Column::parse("path", &[GroupKey::Type]).is_err());
}

#[test]
fn group_cap_folds_into_other() {
    let a = aggregate(
        "dump.pcap",
        Config {
            keys: vec![GroupKey::Type, GroupKey::Path],
            max_groups: 3,
            ..Config::default()
        },
    );
    assert_eq!(a.table().len(), 3);
    let other = a.table().other_row().expect("(other) row");
    assert_eq!(other.values, [OTHER, OTHER]);
    let kept: u64 = a.table().rows().iter().map(|r| r.summary.count).sum();
    assert_eq!(kept + other.summary.count, 13);
    assert_eq!(a.table().folded, other.summary.count);
}

#[test]
fn call_limit_and_duration() {
    let a = aggregate(
        "dump.pcap",
        Config {
            limit: Some(4),
            ..Config::default()
        },
    );
    assert!(a.done());
    assert_eq!(a.recorded(), 4);
    // The first message is at 22:31:14.316883; 5 s later only the first four calls
    // (two pings, exists, create) have completed.
    let a = aggregate(
        "dump.pcap",
        Config {
            duration_ns: Some(5_000_000_000),
            ..Config::default()
        },
    );
    assert!(a.done());
    assert_eq!(a.recorded(), 4);
}

#[test]
fn path_depth_and_sessions() {
    let a = aggregate(
        "get_children_with_four_letter.pcap",
        Config {
            keys: vec![GroupKey::Op, GroupKey::Session],
            paths: PathNorm {
                depth: 1,
                fold_sequential: true,
            },
            ..Config::default()
        },
    );
    let rows = a.table().rows();
    let connect = by(&rows, &["connect", "0x100157f63eb0000"]);
    assert_eq!(connect.summary.samples, 1);
    assert_eq!(connect.summary.max_us, Some(91906));
    assert_eq!(by(&rows, &["ping", "0x100157f63eb0000"]).summary.count, 2);
    assert_eq!(by(&rows, &["stat", ""]).summary.count, 1);
    assert_eq!(by(&rows, &["conf", ""]).summary.count, 1);
}

#[test]
fn auth_identity_without_the_password() {
    let a = aggregate(
        "auth.pcap",
        Config {
            keys: vec![GroupKey::Auth, GroupKey::Type, GroupKey::Error],
            ..Config::default()
        },
    );
    let rows = a.table().rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].values, ["tacos", "SetAuthRequest", "OK"]);
    let a = aggregate(
        "dump.pcap",
        Config {
            keys: vec![GroupKey::Auth],
            ..Config::default()
        },
    );
    assert_eq!(a.table().rows()[0].values, ["noauth"]);
}

#[test]
fn unanswered_handshakes_and_closes() {
    let a = aggregate(
        "connects.pcap",
        Config {
            keys: vec![GroupKey::Type, GroupKey::Error],
            ..Config::default()
        },
    );
    let rows = a.table().rows();
    assert_eq!(by(&rows, &["ConnectRequest", NO_REPLY]).summary.no_reply, 3);
    assert_eq!(by(&rows, &["CloseRequest", NO_REPLY]).summary.count, 3);
    let a = aggregate(
        "connect_replies.pcap",
        Config {
            keys: vec![GroupKey::Type, GroupKey::Error, GroupKey::ClientIp],
            ..Config::default()
        },
    );
    let rows = a.table().rows();
    let c = by(&rows, &["ConnectRequest", "OK", "127.0.0.1"]);
    assert_eq!((c.summary.count, c.summary.samples), (3, 3));
    // 3134, 3235, 2902 µs
    assert_eq!(c.summary.max_us, Some(3235));
}

#[test]
fn latency_printer_pairs() {
    // test_latency_printer: 10 pairs without pings, grouped by type.
    let a = aggregate(
        "dump.pcap",
        latency_config(CompatGroup::Type, 0, false, 10, 1000),
    );
    assert_eq!(a.recorded(), 10);
    let rows = a.table().rows();
    let names: Vec<&str> = rows.iter().map(|r| r.values[0]).collect();
    assert_eq!(
        names,
        [
            "ExistsRequest",
            "CreateRequest",
            "GetChildrenRequest",
            "GetDataRequest",
            "SetDataRequest"
        ]
    );
}

#[test]
fn a_table_by_path_alone_counts_as_a_table_by_path_and_op() {
    // A table keyed by path alone remembers each raw path's group (one lookup a call); its
    // counts must be those of the general table summed over operations, with or without a cap.
    for (name, cap) in [
        ("dump.pcap", 100_000),
        ("dump.pcap", 2),
        ("omni.pcap", 100_000),
        ("omni.pcap", 1),
    ] {
        let cfg = |keys| Config {
            keys,
            max_groups: cap,
            filter: Filter {
                pings: true,
                ..Filter::default()
            },
            ..Config::default()
        };
        let one = aggregate(name, cfg(vec![GroupKey::Path]));
        let two = aggregate(name, cfg(vec![GroupKey::Path, GroupKey::Op]));
        let mut per_path = std::collections::BTreeMap::<&str, u64>::new();
        for r in two.table().rows() {
            *per_path.entry(r.values[0]).or_default() += r.summary.count;
        }
        let rows = one.table().rows();
        assert!(!rows.is_empty(), "{name}");
        let total: u64 = rows.iter().map(|r| r.summary.count).sum::<u64>()
            + one.table().other_row().map_or(0, |o| o.summary.count);
        assert_eq!(total, one.recorded(), "{name} cap {cap}");
        assert_eq!(
            one.table().folded,
            one.table().other_row().map_or(0, |o| o.summary.count)
        );
        if cap == 100_000 {
            assert!(one.table().folded == 0);
            for r in &rows {
                assert_eq!(Some(&r.summary.count), per_path.get(r.values[0]), "{name}");
            }
            assert_eq!(rows.len(), per_path.len(), "{name}");
        } else {
            assert_eq!(rows.len(), cap, "{name}");
            assert!(one.table().folded > 0, "{name}");
        }
    }
}

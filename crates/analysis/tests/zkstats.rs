//! zktraffic's stats-daemon keys over its own captures (fixtures/zktraffic), fed through the
//! real capture pipeline; the values are the correct-decode ones of the fixtures' README and
//! docs/zktraffic.md §4.6 / §7.3.

use std::collections::BTreeMap;
use std::path::PathBuf;

use zkscope_analysis::zkstats::{StatsConfig, StatsSink, WindowedStats, ZkStats};
use zkscope_capture::client::{ClientConfig, ClientHandler, ClientSink, ServerSpec};
use zkscope_capture::{parse_tcp, PacketSource, TcpConfig, TcpTracker, Timestamp};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/zktraffic")
        .join(name)
}

fn replay<S: ClientSink>(name: &str, sink: S) -> (S, Timestamp) {
    let mut src = PacketSource::open_file(&fixture(name)).expect("open fixture");
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    let mut h = ClientHandler::new(spec, ClientConfig::default(), sink);
    let mut tr = TcpTracker::new(TcpConfig::default());
    let mut last = Timestamp::ZERO;
    while let Some(p) = src.next_packet().expect("read") {
        last = p.ts;
        if let Ok(seg) = parse_tcp(&p) {
            tr.segment(&mut h, p.ts, &seg);
        }
    }
    tr.finish(&mut h, last);
    (h.sink, last)
}

fn stats(name: &str, cfg: StatsConfig) -> ZkStats {
    let (mut s, last) = replay(name, StatsSink::new(&cfg));
    s.finish(last);
    s.stats
}

fn check(map: &BTreeMap<String, u64>, expected: &[(&str, u64)]) {
    for (k, v) in expected {
        assert_eq!(map.get(*k), Some(v), "{k} in {map:#?}");
    }
}

#[test]
fn set_data_depth_1() {
    let s = stats(
        "set_data.pcap",
        StatsConfig {
            aggregation_depth: 1,
            ..StatsConfig::default()
        },
    );
    let paths = s.paths();
    check(
        &paths,
        &[
            ("ConnectRequest/", 6),
            ("ConnectRequestBytes/", 270),
            ("ExistsRequest/load-testing", 5),
            ("ExistsRequestBytes/load-testing", 140),
            ("SetDataRequest/load-testing", 25),
            ("SetDataRequestBytes/load-testing", 13747),
            ("reads/", 6),
            ("reads/load-testing", 5),
            ("readsBytes/", 270),
            ("readsBytes/load-testing", 140),
            ("total/readBytes", 410),
            ("total/reads", 11),
            ("total/writeBytes", 13747),
            ("total/writes", 25),
            ("writes/", 0),
            ("writes/load-testing", 25),
            ("writesBytes/", 0),
            ("writesBytes/load-testing", 13747),
        ],
    );
    // zktraffic's bug: requests with xid 0/1 read as reconnects.
    assert!(
        paths.keys().all(|k| !k.starts_with("ReConnectRequest")),
        "{paths:#?}"
    );
    let ips = s.ips();
    check(
        &ips,
        &[
            ("per_ip/total/writes", 25),
            ("per_ip/ConnectRequest:127.0.0.1", 6),
            ("per_ip/SetDataRequest/load-testing:127.0.0.1", 25),
            ("per_ip/reads/", 0),
        ],
    );
    let auths = s.auths();
    check(
        &auths,
        &[
            ("per_auth/ConnectRequest:noauth", 6),
            ("per_auth/total/reads", 11),
        ],
    );
    let dump = s.auths_dump();
    let clients: Vec<&str> = dump.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        clients,
        [
            "127.0.0.1:59813",
            "127.0.0.1:59814",
            "127.0.0.1:59815",
            "127.0.0.1:59816",
            "127.0.0.1:59817",
            "127.0.0.1:59819"
        ]
    );
    assert!(dump.values().all(|v| v == "noauth"));
    // New keys: the capture has no server side, so no request got a reply.
    check(&paths, &[("total/unanswered", 36)]);
    assert!(!paths.contains_key("total/replies"));
}

#[test]
fn set_data_whole_paths_and_top_n() {
    let s = stats("set_data.pcap", StatsConfig::default());
    let paths = s.paths();
    // Depth 0: the five znodes are set five times each.
    for i in 0..5 {
        assert_eq!(
            paths.get(&format!("SetDataRequest/load-testing/{i}")),
            Some(&5)
        );
    }
    // Top-1 cuts every family to one key but never the totals.
    let s = stats(
        "set_data.pcap",
        StatsConfig {
            max_results: 1,
            ..StatsConfig::default()
        },
    );
    let paths = s.paths();
    let set: Vec<_> = paths
        .keys()
        .filter(|k| k.starts_with("SetDataRequest/"))
        .collect();
    assert_eq!(set.len(), 1);
    check(
        &paths,
        &[
            ("total/writes", 25),
            ("total/reads", 11),
            ("total/writeBytes", 13747),
            ("total/readBytes", 410),
        ],
    );
    // Without bytes.
    let s = stats(
        "set_data.pcap",
        StatsConfig {
            exclude_bytes: true,
            ..StatsConfig::default()
        },
    );
    let paths = s.paths();
    assert!(paths.keys().all(|k| !k.contains("Bytes")), "{paths:#?}");
    check(&paths, &[("total/writes", 25), ("total/reads", 11)]);
}

#[test]
fn getdata_watches() {
    let s = stats("getdata_watches.pcap", StatsConfig::default());
    let paths = s.paths();
    check(
        &paths,
        &[
            ("watches/test", 2),
            ("reads/test", 4),
            ("GetDataRequestBytes/test", 36),
            ("total/readBytes", 117),
        ],
    );
}

#[test]
fn multi() {
    let s = stats("multi.pcap", StatsConfig::default());
    let paths = s.paths();
    check(
        &paths,
        &[
            ("MultiRequest/foo", 1),
            ("MultiRequestBytes/foo", 96),
            ("writes/foo", 1),
            // A multi has no path of its own: its reply key is bare, as zktraffic's are.
            ("MultiReply", 1),
        ],
    );
}

#[test]
fn auth_credentials_redacted_unless_asked() {
    let s = stats("auth.pcap", StatsConfig::default());
    let paths = s.paths();
    check(
        &paths,
        &[
            ("SetAuthRequest/tacos:***", 1),
            ("SetAuthRequestBytes/tacos:***", 37),
            ("reads/tacos:***", 1),
        ],
    );
    let all = format!("{paths:?}{:?}{:?}{:?}", s.ips(), s.auths(), s.auths_dump());
    assert!(!all.contains("tacos:tacos"), "{all}");
    check(&s.auths(), &[("per_auth/SetAuthRequest/tacos:***:", 1)]);
    check(
        &s.ips(),
        &[("per_ip/SetAuthRequest/tacos:***:127.0.0.1", 1)],
    );
    assert!(s.auths_dump().values().all(|v| v == "tacos:***"));

    let s = stats(
        "auth.pcap",
        StatsConfig {
            show_credentials: true,
            ..StatsConfig::default()
        },
    );
    check(
        &s.paths(),
        &[
            ("SetAuthRequest/tacos:tacos", 1),
            ("SetAuthRequestBytes/tacos:tacos", 37),
            ("reads/tacos:tacos", 1),
        ],
    );
    check(&s.auths(), &[("per_auth/SetAuthRequest/tacos:tacos:", 1)]);
}

#[test]
fn fire_watches_coalesced_event_and_reply() {
    let s = stats("fire_watches.pcap", StatsConfig::default());
    let paths = s.paths();
    check(
        &paths,
        &[("NodeChildrenChanged/in/portland/they/eat/tacos", 1)],
    );
    // The CreateReply sharing the event's segment (zktraffic lost it) and the replies to
    // xids 27-29, whose requests were not captured, are replies without a request.
    check(&paths, &[("total/unpairedReplies", 4)]);
}

#[test]
fn windows_follow_the_capture_clock() {
    // set_data spans less than a second: a 1 ms window rotates within it, and the end of
    // the input closes the open window.
    let cfg = StatsConfig::default();
    let (mut w, last) = replay("set_data.pcap", WindowedStats::new(&cfg, 1_000_000));
    let before = w.completed();
    assert!(before > 0);
    w.finish(last);
    assert_eq!(w.completed(), before + 1);
    // The whole capture in one long window equals the one-shot sink.
    let (mut w, last) = replay("set_data.pcap", WindowedStats::new(&cfg, 3_600_000_000_000));
    assert!(w.last().is_none());
    w.finish(last);
    let one = stats("set_data.pcap", cfg.clone());
    assert_eq!(w.last().map(|s| s.paths()), Some(one.paths()));
    // Merging windows adds up.
    let mut m = ZkStats::new(&cfg);
    m.merge(&one);
    m.merge(&one);
    assert_eq!(m.path_value("total/writes"), 50);
    let dump = stats("dump.pcap", cfg.clone());
    m.merge(&dump);
    check(
        &m.paths(),
        &[
            ("latency/ExistsRequest/count", 5),
            ("latency/ExistsRequest/p50Us", 531),
            ("latency/ExistsRequest/maxUs", 923),
            ("errorCodes/NONODE", 3),
            ("total/errors", 3),
            ("total/writes", 52),
        ],
    );
    m.clear();
    assert_eq!(m.path_value("total/writes"), 0);
    assert_eq!(m.paths().get("writes/"), Some(&0));
}

#[test]
fn sampling_zero_counts_nothing() {
    let s = stats(
        "set_data.pcap",
        StatsConfig {
            sampling: 0.0,
            ..StatsConfig::default()
        },
    );
    assert_eq!(s.requests, 0);
    assert_eq!(s.path_value("total/writes"), 0);
    assert!(s.sampled_out > 0);
}

#[test]
fn dump_replies_errors_and_latency() {
    let s = stats("dump.pcap", StatsConfig::default());
    let paths = s.paths();
    check(
        &paths,
        &[
            ("ExistsRequest/dknightly", 3),
            ("ExistsReply/dknightly", 2),
            ("FailedExistsReply/dknightly", 1),
            ("FailedExistsReply/dkni", 1),
            ("errors/dknightly", 1),
            ("errorCodes/NONODE", 3),
            ("total/replies", 10),
            ("total/errors", 3),
            ("NodeDataChanged/dknightly", 1),
            ("watches/dknightly", 1),
            ("latency/SetDataRequest/p99Us", 7237),
        ],
    );
    // Pings only when asked.
    assert!(paths.keys().all(|k| !k.starts_with("Ping")));
    let s = stats(
        "dump.pcap",
        StatsConfig {
            include_pings: true,
            ..StatsConfig::default()
        },
    );
    check(
        &s.paths(),
        &[("PingRequest/", 3), ("PingReply", 3), ("total/replies", 13)],
    );
    check(&s.ips(), &[("per_ip/errors/dknightly:127.0.0.1", 1)]);
    check(&s.auths(), &[("per_auth/errors/dknightly:noauth", 1)]);
}

/// A flood of distinct paths from many short-lived connections: keys stay bounded, totals
/// stay exact, the metrics' namespace label stays capped.
#[test]
fn path_and_connection_floods_stay_bounded() {
    use zkscope_analysis::metrics::{self, MetricsConfig};
    use zkscope_capture::client::{ConnInfo, Kind, Msg};
    use zkscope_proto::client::{OpCode, Request, RequestBody, RequestHeader};
    use zkscope_proto::JStr;

    let cfg = StatsConfig {
        max_keys: 5_000,
        max_clients: 1_000,
        max_conns: 1_000,
        ..StatsConfig::default()
    };
    let mut sink = StatsSink::new(&cfg);
    let (m, mut rec) = metrics::new(&MetricsConfig::default());
    const N: u64 = 100_000;
    let mut path = String::new();
    for i in 0..N {
        // A new connection for every request (100,000 connections).
        let conn = ConnInfo {
            id: i,
            client: format!(
                "10.{}.{}.{}:{}",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255,
                1024 + (i % 60_000)
            )
            .parse()
            .expect("addr"),
            server: "10.0.0.1:2181".parse().expect("addr"),
            session: None,
        };
        path.clear();
        path.push_str(&format!("/ns{i}/node{i}"));
        let msg = Msg {
            ts: Timestamp(i as i64 * 1_000),
            conn: &conn,
            size: 40,
            kind: Kind::Request(Request {
                header: RequestHeader {
                    xid: 1,
                    opcode: OpCode::GET_DATA,
                },
                body: RequestBody::PathWatch {
                    path: JStr(path.as_bytes()),
                    watch: false,
                },
                trailing: 0,
            }),
            error: None,
            frame: &[],
            cut: false,
        };
        sink.message(&msg);
        rec.message(&msg);
    }
    let s = &sink.stats;
    assert!(s.keys() <= 3 * 5_001 + 64, "{} keys", s.keys());
    assert!(s.keys_folded() > 0);
    assert_eq!(s.path_value("total/reads"), N);
    assert_eq!(s.path_value("total/readBytes"), 40 * N);
    assert_eq!(s.requests, N);
    assert!(s.auths_dump().len() <= 1_000);
    assert!(s.clients_dropped > 0);
    let om = m.encode();
    let namespaces = om
        .lines()
        .filter(|l| l.starts_with("zkscope_namespace_requests_total{"))
        .count();
    // 20 namespaces and `other`, read and write each.
    assert_eq!(namespaces, 2 * 21, "{om}");
    assert!(
        om.contains("zkscope_namespace_requests_total{namespace=\"other\",kind=\"read\"} 99980\n")
    );
}

#[path = "../../capture/tests/common/traffic.rs"]
mod traffic;

#[test]
fn auths_dump_lists_idle_clients_that_only_ping() {
    use traffic::{connect_request, connect_response, frame, get_data, Conn, Wire};
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    let cfg = StatsConfig::default();
    let h = ClientHandler::new(
        spec,
        ClientConfig::default(),
        WindowedStats::new(&cfg, 1_000_000),
    );
    let mut w = Wire::new(TcpTracker::new(TcpConfig::default()), h);
    let (mut idle, mut busy) = (Conn::new(1), Conn::new(2));
    for (i, c) in [&mut idle, &mut busy].into_iter().enumerate() {
        w.handshake(c);
        w.send(c, true, &connect_request());
        w.send(c, false, &connect_response(0x100 + i as i64));
        w.send(c, true, &get_data(1, "/a"));
    }
    // The next window: the idle client only pings.
    w.ts = Timestamp(w.ts.0 + 10_000_000);
    let ping = frame(&[(-2i32).to_be_bytes(), 11i32.to_be_bytes()].concat());
    w.send(&mut idle, true, &ping);
    w.send(&mut busy, true, &get_data(2, "/a"));
    w.finish();
    let end = w.ts;
    w.h.sink.finish(end);
    let dump = w.h.sink.last().expect("a closed window").auths_dump();
    let clients: Vec<&str> = dump.keys().map(|k| k.as_str()).collect();
    let mut expected = [idle.client.to_string(), busy.client.to_string()];
    expected.sort();
    assert_eq!(clients, expected, "{dump:?}");
    assert!(dump.values().all(|v| v == "noauth"), "{dump:?}");
}

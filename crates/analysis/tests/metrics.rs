//! Prometheus metrics over zktraffic's captures, fed through the real capture pipeline.

use std::path::PathBuf;

use zkscope_analysis::daemon::DaemonSink;
use zkscope_analysis::metrics::{self, Metrics, MetricsConfig};
use zkscope_analysis::zkstats::{StatsConfig, WindowedStats};
use zkscope_capture::client::{ClientConfig, ClientHandler, ServerSpec};
use zkscope_capture::{parse_tcp, PacketSource, TcpConfig, TcpTracker, Timestamp};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/zktraffic")
        .join(name)
}

fn replay(name: &str, cfg: &MetricsConfig) -> Metrics {
    let (m, rec) = metrics::new(cfg);
    let stats = WindowedStats::new(&StatsConfig::default(), 60_000_000_000);
    let mut src = PacketSource::open_file(&fixture(name)).expect("open fixture");
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    let mut h = ClientHandler::new(spec, ClientConfig::default(), DaemonSink::new(stats, rec));
    let mut tr = TcpTracker::new(TcpConfig::default());
    let mut last = Timestamp::ZERO;
    while let Some(p) = src.next_packet().expect("read") {
        last = p.ts;
        if let Ok(seg) = parse_tcp(&p) {
            tr.segment(&mut h, p.ts, &seg);
        }
    }
    tr.finish(&mut h, last);
    h.sink.finish(last);
    m
}

fn has(text: &str, lines: &[&str]) {
    for l in lines {
        assert!(text.lines().any(|x| x == *l), "missing {l:?} in\n{text}");
    }
}

#[test]
fn dump_requests_errors_latency_watches() {
    let m = replay("dump.pcap", &MetricsConfig::default());
    let t = m.encode();
    has(
        &t,
        &[
            r#"zkscope_requests_total{op="exists",result="NONODE"} 3"#,
            r#"zkscope_requests_total{op="exists",result="ok"} 2"#,
            r#"zkscope_requests_total{op="ping",result="ok"} 3"#,
            r#"zkscope_replies_total{op="exists",result="NONODE"} 3"#,
            r#"zkscope_request_duration_seconds_count{op="exists"} 5"#,
            // 361, 490, 531, 777 and 923 µs: all within 1 ms, two within 500 µs.
            r#"zkscope_request_duration_seconds_bucket{le="0.0005",op="exists"} 2"#,
            r#"zkscope_request_duration_seconds_bucket{le="0.001",op="exists"} 5"#,
            r#"zkscope_request_duration_seconds_bucket{le="0.01",op="setData"} 1"#,
            r#"zkscope_request_duration_seconds_bucket{le="0.005",op="setData"} 0"#,
            r#"zkscope_watches_set_total{type="data"} 1"#,
            r#"zkscope_watches_fired_total{type="NodeDataChanged"} 1"#,
            r#"zkscope_namespace_requests_total{namespace="/dknightly",kind="write"} 2"#,
        ],
    );
    assert!(t.ends_with("# EOF\n"));
    // No path, no client address, no credential in label values.
    assert!(!t.contains("127.0.0.1"));
}

#[test]
fn set_data_unanswered_and_namespaces() {
    let m = replay(
        "set_data.pcap",
        &MetricsConfig {
            per_client: true,
            ..MetricsConfig::default()
        },
    );
    let t = m.encode();
    has(
        &t,
        &[
            r#"zkscope_requests_total{op="setData",result="noreply"} 25"#,
            r#"zkscope_requests_total{op="connect",result="noreply"} 6"#,
            r#"zkscope_requests_total{op="exists",result="noreply"} 5"#,
            r#"zkscope_request_bytes_total{op="setData"} 13747"#,
            r#"zkscope_namespace_requests_total{namespace="/load-testing",kind="write"} 25"#,
            r#"zkscope_namespace_requests_total{namespace="/load-testing",kind="read"} 5"#,
            r#"zkscope_namespace_request_bytes_total{namespace="/load-testing",kind="write"} 13747"#,
            r#"zkscope_client_requests_total{client="127.0.0.1"} 36"#,
        ],
    );
    // A namespace cap of zero puts everything in `other`.
    let m = replay(
        "set_data.pcap",
        &MetricsConfig {
            max_namespaces: 0,
            ..MetricsConfig::default()
        },
    );
    has(
        &m.encode(),
        &[r#"zkscope_namespace_requests_total{namespace="other",kind="write"} 25"#],
    );
}

#[test]
fn auth_multi_getdata_watches_fire_watches() {
    let t = replay("auth.pcap", &MetricsConfig::default()).encode();
    has(
        &t,
        &[r#"zkscope_auth_attempts_total{scheme="digest",result="ok"} 1"#],
    );
    assert!(!t.contains("tacos"));
    let t = replay("multi.pcap", &MetricsConfig::default()).encode();
    has(
        &t,
        &[
            r#"zkscope_requests_total{op="multi",result="ok"} 1"#,
            r#"zkscope_request_bytes_total{op="multi"} 96"#,
            r#"zkscope_namespace_requests_total{namespace="/foo",kind="write"} 1"#,
        ],
    );
    let t = replay("getdata_watches.pcap", &MetricsConfig::default()).encode();
    has(
        &t,
        &[
            r#"zkscope_watches_set_total{type="data"} 1"#,
            r#"zkscope_watches_set_total{type="child"} 1"#,
        ],
    );
    let t = replay("fire_watches.pcap", &MetricsConfig::default()).encode();
    has(
        &t,
        &[
            r#"zkscope_watches_fired_total{type="NodeChildrenChanged"} 1"#,
            // xids 27-29 and 30 (coalesced with the event): requests not captured.
            r#"zkscope_replies_total{op="unknown",result="ok"} 3"#,
            r#"zkscope_replies_total{op="unknown",result="NONODE"} 1"#,
            r#"zkscope_replies_total{op="ping",result="ok"} 2"#,
        ],
    );
}

#[test]
fn server_label_when_asked() {
    let t = replay(
        "dump.pcap",
        &MetricsConfig {
            server_label: true,
            ..MetricsConfig::default()
        },
    )
    .encode();
    has(
        &t,
        &[r#"zkscope_requests_total{op="exists",result="ok",server="127.0.0.1:2181"} 2"#],
    );
}

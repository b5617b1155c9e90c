//! The HTTP endpoints over a real socket, serving zktraffic's set_data capture replayed
//! through the real capture pipeline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use zkscope_analysis::daemon::DaemonSink;
use zkscope_analysis::metrics::{self, MetricsConfig};
use zkscope_analysis::zkstats::{StatsConfig, WindowedStats};
use zkscope_capture::client::{ClientConfig, ClientHandler, ServerSpec};
use zkscope_capture::{parse_tcp, PacketSource, TcpConfig, TcpTracker, Timestamp};
use zkscope_serve::{About, Health, Shared, Window};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/zktraffic")
        .join(name)
}

/// Replays a capture into fresh shared state and publishes its (only) window.
fn replayed(name: &str, cfg: &StatsConfig) -> Arc<Shared> {
    let (m, rec) = metrics::new(&MetricsConfig::default());
    let shared = Shared::new(
        m,
        About {
            source: format!("file:{name}"),
            window_secs: 60.0,
            filter: None,
        },
    );
    let stats = WindowedStats::new(cfg, 3_600_000_000_000);
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
    let w = h.sink.stats.last().expect("a window").clone();
    shared.publish(Window {
        stats: w,
        index: h.sink.stats.completed(),
    });
    shared.set_health(Health::Finished);
    shared
}

/// Starts the server on a free loopback port (in a thread with its own runtime).
fn start(shared: Arc<Shared>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = zkscope_serve::serve(l, shared, std::future::pending()).await;
        });
    });
    addr
}

struct Resp {
    status: u16,
    content_type: String,
    body: String,
}

fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{accept}Connection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    Resp {
        status,
        content_type,
        body: body.to_string(),
    }
}

fn json(r: &Resp) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type.starts_with("application/json"));
    serde_json::from_str(&r.body).expect("JSON")
}

#[test]
fn zktraffic_endpoints_over_http() {
    let shared = replayed(
        "set_data.pcap",
        &StatsConfig {
            aggregation_depth: 1,
            ..StatsConfig::default()
        },
    );
    let addr = start(shared.clone());
    let paths = json(&get(addr, "/json/paths", None));
    for (k, v) in [
        ("ConnectRequest/", 6),
        ("ExistsRequest/load-testing", 5),
        ("SetDataRequest/load-testing", 25),
        ("SetDataRequestBytes/load-testing", 13747),
        ("total/reads", 11),
        ("total/writes", 25),
        ("total/readBytes", 410),
        ("writes/", 0),
    ] {
        assert_eq!(paths[k], v, "{k}: {paths}");
    }
    let ips = json(&get(addr, "/json/ips", None));
    assert_eq!(ips["per_ip/ConnectRequest:127.0.0.1"], 6);
    assert_eq!(ips["per_ip/total/writes"], 25);
    let auths = json(&get(addr, "/json/auths", None));
    assert_eq!(auths["per_auth/ConnectRequest:noauth"], 6);
    let dump = json(&get(addr, "/json/auths-dump", None));
    assert_eq!(dump.as_object().map(|o| o.len()), Some(6));
    assert_eq!(dump["127.0.0.1:59813"], "noauth");
    // ?top=1 keeps one key per family, and the totals.
    let top = json(&get(addr, "/json/paths?top=1", None));
    let reads: Vec<_> = top
        .as_object()
        .map(|o| o.keys().filter(|k| k.starts_with("reads/")).collect())
        .unwrap_or_default();
    assert_eq!(reads.len(), 1);
    assert_eq!(top["total/writes"], 25);
    let info = json(&get(addr, "/json/info", None));
    assert_eq!(info["interface"], "file:set_data.pcap");
    assert_eq!(info["windows_completed"], 1);
    assert!(info["threads"].as_u64().is_some_and(|n| n >= 1));
    assert!(info["memory_rss_bytes"].as_u64().is_some_and(|n| n > 0));
}

#[test]
fn metrics_negotiation_health_and_errors() {
    let shared = replayed("dump.pcap", &StatsConfig::default());
    let addr = start(shared.clone());
    let om = get(
        addr,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
    );
    assert_eq!(om.status, 200);
    assert!(om.content_type.starts_with("application/openmetrics-text"));
    assert!(om.body.ends_with("# EOF\n"));
    assert!(om
        .body
        .contains("zkscope_requests_total{op=\"exists\",result=\"NONODE\"} 3\n"));
    let text = get(addr, "/metrics", None);
    assert!(text.content_type.starts_with("text/plain; version=0.0.4"));
    assert!(text
        .body
        .contains("# TYPE zkscope_requests_total counter\n"));
    assert!(!text.body.contains("# EOF"));

    let h = get(addr, "/health", None);
    assert_eq!(h.status, 200, "{}", h.body);
    shared.set_health(Health::Failed("interface eth9 went away".into()));
    let h = get(addr, "/health", None);
    assert_eq!(h.status, 503);
    assert!(h.body.contains("interface eth9 went away"), "{}", h.body);

    let r = get(addr, "/nope", None);
    assert_eq!(r.status, 404);
    assert!(r.body.contains("/nope"));
    assert_eq!(get(addr, "/json/paths?top=many", None).status, 400);
    assert_eq!(get(addr, "/json/paths?bogus=1", None).status, 400);
    assert_eq!(get(addr, "/json/info?x=1", None).status, 400);
    let idx = get(addr, "/", None);
    assert_eq!(idx.status, 200);
    assert!(idx.content_type.starts_with("text/html"));
    assert!(idx.body.contains("/json/paths"));
}

#[test]
fn empty_before_the_first_window() {
    let (m, _rec) = metrics::new(&MetricsConfig::default());
    let shared = Shared::new(m, About::default());
    let addr = start(shared);
    for p in [
        "/json/paths",
        "/json/ips",
        "/json/auths",
        "/json/auths-dump",
    ] {
        assert_eq!(json(&get(addr, p, None)), serde_json::json!({}), "{p}");
    }
    assert_eq!(get(addr, "/health", None).status, 503);
}

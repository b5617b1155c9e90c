//! Test helpers: replay captures into shared state, serve it, talk HTTP.
#![allow(dead_code)]

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

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/zktraffic")
        .join(name)
}

/// Replays a capture into fresh shared state and publishes its (only) window.
pub fn replayed(name: &str, cfg: &StatsConfig) -> Arc<Shared> {
    replayed_all(&[name], cfg)
}

/// Replays several captures, one after the other, into one window.
pub fn replayed_all(names: &[&str], cfg: &StatsConfig) -> Arc<Shared> {
    let name = names.join(",");
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
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    let mut h = ClientHandler::new(spec, ClientConfig::default(), DaemonSink::new(stats, rec));
    let mut last = Timestamp::ZERO;
    for name in names {
        let mut src = PacketSource::open_file(&fixture(name)).expect("open fixture");
        let mut tr = TcpTracker::new(TcpConfig::default());
        while let Some(p) = src.next_packet().expect("read") {
            last = last.max(p.ts);
            if let Ok(seg) = parse_tcp(&p) {
                tr.segment(&mut h, p.ts, &seg);
            }
        }
        tr.finish(&mut h, last);
    }
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
pub fn start(shared: Arc<Shared>) -> SocketAddr {
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

pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

pub fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Resp {
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

pub fn json(r: &Resp) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.content_type.starts_with("application/json"));
    serde_json::from_str(&r.body).expect("JSON")
}

/// A port below the kernel's ephemeral range that nothing listens on now.
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (lo, hi) = (low.saturating_sub(12_000).max(1_024), low);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = (std::process::id().wrapping_mul(2_654_435_761) ^ nanos) | 1;
    for _ in 0..1_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let port = (lo + x % (hi - lo)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Percent-encodes a query parameter value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Polls `f` until it gives a value, for at most `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Sends a GET and returns the response, or None when nothing answers.
pub fn try_get(addr: SocketAddr, path: &str) -> Option<Resp> {
    let mut s = TcpStream::connect(addr).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    // Prometheus answers with chunked encoding: keep only the JSON object.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if b >= a => body.get(a..=b).unwrap_or(body).to_string(),
        _ => body.to_string(),
    };
    Some(Resp {
        status,
        content_type: String::new(),
        body,
    })
}

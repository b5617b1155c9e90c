//! The HTTP endpoints over a real socket, serving zktraffic's set_data capture replayed
//! through the real capture pipeline.

mod common;

use common::{get, json, replayed, start};
use zkscope_analysis::metrics::{self, MetricsConfig};
use zkscope_analysis::zkstats::StatsConfig;
use zkscope_serve::{About, Health, Shared};

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

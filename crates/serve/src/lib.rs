//! The HTTP side of `zkscope serve`: zktraffic's `zk-stats-daemon` endpoints over the last
//! complete window, Prometheus metrics, health and process information.
//!
//! | route | content |
//! |---|---|
//! | `/json/paths`, `/json/ips`, `/json/auths` | zktraffic's keys (see `zkscope_analysis::zkstats`); `?top=N` overrides `--max-results` |
//! | `/json/auths-dump` | `{"ip:port": credential or "noauth"}` (redacted unless `--show-credentials`) |
//! | `/json/info` | uptime, version, interface, packets, drops, decode errors, gaps, connections, memory, threads, windows |
//! | `/metrics` | OpenMetrics text when the client accepts it (Prometheus does), else the classic text format 0.0.4 |
//! | `/health` | 200 while capturing (or after a file replay ended), 503 with the reason once the capture failed |
//! | `/` | an HTML index |
//!
//! Unknown routes get 404, unknown or malformed query parameters 400, both as JSON
//! `{"error": …}`. The capture thread publishes each completed window with
//! [`Shared::publish`], its counters in [`Shared::counters`] and its state with
//! [`Shared::set_health`]; handlers never block it (they clone an `Arc`).

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod log;
pub mod privs;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use zkscope_analysis::metrics::{Metrics, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
use zkscope_analysis::zkstats::ZkStats;

/// Counters the capture thread keeps up to date (relaxed atomics: each is read on its own).
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets read.
    pub packets: AtomicU64,
    /// Packets dropped by the kernel (64-bit, unwrapped).
    pub kernel_dropped: AtomicU64,
    /// Packets dropped by the interface.
    pub interface_dropped: AtomicU64,
    /// Undecodable frames, bad lengths, partial frames.
    pub decode_errors: AtomicU64,
    /// TCP gaps.
    pub tcp_gaps: AtomicU64,
    /// Client connections tracked now.
    pub connections: AtomicU64,
    /// Decoded client messages.
    pub messages: AtomicU64,
}

/// The capture's state for `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Opening the capture.
    Starting,
    /// Capturing.
    Capturing,
    /// A file was replayed to its end (the last window is served until stopped).
    Finished,
    /// The capture failed; the reason.
    Failed(String),
}

/// Static facts shown by `/json/info` and `/`.
#[derive(Debug, Clone, Default)]
pub struct About {
    /// The interface, or `file:PATH`.
    pub source: String,
    /// The window length in seconds.
    pub window_secs: f64,
    /// The live capture's BPF filter, when live.
    pub filter: Option<String>,
}

/// The last complete window, as served.
#[derive(Debug)]
pub struct Window {
    /// Its stats.
    pub stats: ZkStats,
    /// Windows completed so far (this one included).
    pub index: u64,
}

/// State shared by the capture thread and the HTTP handlers.
#[derive(Debug)]
pub struct Shared {
    /// The metrics registry.
    pub metrics: Metrics,
    /// Live counters.
    pub counters: Counters,
    about: About,
    window: Mutex<Option<Arc<Window>>>,
    health: Mutex<Health>,
    started: Instant,
}

impl Shared {
    /// Shared state around a metrics registry.
    pub fn new(metrics: Metrics, about: About) -> Arc<Self> {
        Arc::new(Shared {
            metrics,
            counters: Counters::default(),
            about,
            window: Mutex::new(None),
            health: Mutex::new(Health::Starting),
            started: Instant::now(),
        })
    }

    /// Publishes a completed window.
    pub fn publish(&self, w: Window) {
        let w = Arc::new(w);
        if let Ok(mut g) = self.window.lock() {
            *g = Some(w);
        }
    }

    /// The last complete window.
    pub fn window(&self) -> Option<Arc<Window>> {
        self.window.lock().ok().and_then(|g| g.clone())
    }

    /// Sets the capture's state.
    pub fn set_health(&self, h: Health) {
        if let Ok(mut g) = self.health.lock() {
            *g = h;
        }
    }

    /// The capture's state.
    pub fn health(&self) -> Health {
        self.health
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|_| Health::Failed("state lock poisoned".into()))
    }

    fn info(&self) -> serde_json::Value {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let w = self.window();
        let (threads, names) = threads();
        let health = self.health();
        serde_json::json!({
            "uptime": self.started.elapsed().as_secs(),
            "version": env!("CARGO_PKG_VERSION"),
            "interface": self.about.source,
            "filter": self.about.filter,
            "capturing": health == Health::Capturing,
            "state": health_name(&health),
            "packets": get(&c.packets),
            "kernel_dropped": get(&c.kernel_dropped),
            "interface_dropped": get(&c.interface_dropped),
            "decode_errors": get(&c.decode_errors),
            "tcp_gaps": get(&c.tcp_gaps),
            "connections": get(&c.connections),
            "messages": get(&c.messages),
            "memory_rss_bytes": rss_bytes(),
            "threads": threads,
            "thread_names": names,
            "window_seconds": self.about.window_secs,
            "windows_completed": w.as_ref().map_or(0, |w| w.index),
            "window_start": w.as_ref().and_then(|w| w.stats.span).map(|s| s.0 .0 as f64 / 1e9),
            "window_end": w.as_ref().and_then(|w| w.stats.span).map(|s| s.1 .0 as f64 / 1e9),
            "time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
        })
    }
}

fn health_name(h: &Health) -> &'static str {
    match h {
        Health::Starting => "starting",
        Health::Capturing => "capturing",
        Health::Finished => "finished",
        Health::Failed(_) => "failed",
    }
}

/// Resident memory from `/proc/self/statm` (Linux), in bytes.
fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Thread count and names from `/proc/self/task` (what zktraffic's `/threads` listed).
fn threads() -> (usize, Vec<String>) {
    let mut names = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            names.push(comm.trim().to_string());
        }
    }
    names.sort();
    (names.len(), names)
}

/// The router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/json/paths", get(paths))
        .route("/json/ips", get(ips))
        .route("/json/auths", get(auths))
        .route("/json/auths-dump", get(auths_dump))
        .route("/json/info", get(info))
        .route("/threads", get(info))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(shared)
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(shutdown)
        .await
}

fn json(code: StatusCode, body: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn error(code: StatusCode, msg: &str) -> Response {
    json(code, serde_json::json!({ "error": msg }).to_string())
}

async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        &format!("no such endpoint: {} (see /)", uri.path()),
    )
}

/// Query parameters of the stats endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopParams {
    /// Keys per family (0 = all); default `--max-results`.
    top: Option<usize>,
}

/// No parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

fn bad_query(e: QueryRejection) -> Response {
    error(StatusCode::BAD_REQUEST, &e.body_text())
}

fn stats_endpoint(
    s: &Shared,
    q: Result<Query<TopParams>, QueryRejection>,
    render: impl Fn(&ZkStats, usize) -> BTreeMap<String, u64>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => return bad_query(e),
    };
    // Before the first window closes there is nothing to serve: zktraffic answered `{}`.
    let body = s.window().map_or_else(
        || "{}".to_string(),
        |w| {
            let top = q.top.unwrap_or(w.stats.config().max_results);
            serde_json::to_string(&render(&w.stats, top)).unwrap_or_else(|_| "{}".into())
        },
    );
    json(StatusCode::OK, body)
}

async fn paths(
    State(s): State<Arc<Shared>>,
    q: Result<Query<TopParams>, QueryRejection>,
) -> Response {
    stats_endpoint(&s, q, ZkStats::paths_top)
}

async fn ips(
    State(s): State<Arc<Shared>>,
    q: Result<Query<TopParams>, QueryRejection>,
) -> Response {
    stats_endpoint(&s, q, ZkStats::ips_top)
}

async fn auths(
    State(s): State<Arc<Shared>>,
    q: Result<Query<TopParams>, QueryRejection>,
) -> Response {
    stats_endpoint(&s, q, ZkStats::auths_top)
}

async fn auths_dump(
    State(s): State<Arc<Shared>>,
    q: Result<Query<NoParams>, QueryRejection>,
) -> Response {
    if let Err(e) = q {
        return bad_query(e);
    }
    let body = s.window().map_or_else(
        || "{}".to_string(),
        |w| serde_json::to_string(&w.stats.auths_dump()).unwrap_or_else(|_| "{}".into()),
    );
    json(StatusCode::OK, body)
}

async fn info(
    State(s): State<Arc<Shared>>,
    q: Result<Query<NoParams>, QueryRejection>,
) -> Response {
    if let Err(e) = q {
        return bad_query(e);
    }
    json(StatusCode::OK, s.info().to_string())
}

/// True when the `Accept` header asks for OpenMetrics (Prometheus' default) with a weight
/// at least that of the classic text format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let mut om: Option<f32> = None;
    let mut text: Option<f32> = None;
    for part in accept.split(',') {
        let mut it = part.split(';').map(str::trim);
        let mime = it.next().unwrap_or("").to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|v| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        let slot = match mime.as_str() {
            "application/openmetrics-text" => &mut om,
            "text/plain" => &mut text,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |o| o.max(q)));
    }
    match (om, text) {
        (Some(o), Some(t)) => o > 0.0 && o >= t,
        (Some(o), None) => o > 0.0,
        _ => false,
    }
}

async fn metrics(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (ct, body) = if wants_openmetrics(accept) {
        (OPENMETRICS_CONTENT_TYPE, s.metrics.encode())
    } else {
        (TEXT_CONTENT_TYPE, s.metrics.encode_text())
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response()
}

async fn health(State(s): State<Arc<Shared>>) -> Response {
    let h = s.health();
    let (code, reason) = match &h {
        Health::Capturing | Health::Finished => (StatusCode::OK, None),
        Health::Starting => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("the capture is not open yet".to_string()),
        ),
        Health::Failed(r) => (StatusCode::SERVICE_UNAVAILABLE, Some(r.clone())),
    };
    let body = serde_json::json!({
        "status": if code == StatusCode::OK { "ok" } else { "unhealthy" },
        "state": health_name(&h),
        "reason": reason,
    });
    json(code, body.to_string())
}

async fn index(State(s): State<Arc<Shared>>) -> Response {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>zkscope serve</title></head><body>\n",
    );
    html.push_str(&format!(
        "<h1>zkscope serve {}</h1>\n<p>Capturing from <code>{}</code>; windows of {} s.</p>\n<ul>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&s.about.source),
        s.about.window_secs
    ));
    for (path, what) in [
        (
            "/json/paths",
            "per-path stats of the last complete window (zktraffic keys)",
        ),
        ("/json/ips", "per-client-IP stats"),
        ("/json/auths", "per-auth stats"),
        (
            "/json/auths-dump",
            "clients and their auth (redacted unless --show-credentials)",
        ),
        (
            "/json/info",
            "uptime, version, capture counters, memory, threads",
        ),
        ("/metrics", "Prometheus metrics (OpenMetrics or text 0.0.4)"),
        (
            "/health",
            "200 while capturing, 503 with the reason otherwise",
        ),
    ] {
        html.push_str(&format!(
            "<li><a href=\"{path}\"><code>{path}</code></a> — {what}</li>\n"
        ));
    }
    html.push_str("</ul>\n</body></html>\n");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        // What Prometheus 2.x sends.
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text;q=0.2,text/plain;q=0.9"
        )));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
    }
}

//! `zkscope serve`: the stats daemon. zktraffic's `zk-stats-daemon` endpoints (its flags as
//! aliases) and Prometheus metrics, over a live capture or a replayed file.
//!
//! Threads: the packet pipeline (capture, decoding, the stats and metrics consumer), a
//! ticker (capture counters into the metrics; closes windows of an idle live capture), and
//! the HTTP server (tokio). Privileges are dropped on the main thread once the capture is
//! open and before any other thread starts.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use zkscope_analysis::daemon::DaemonSink;
use zkscope_analysis::elections::Tracker;
use zkscope_analysis::metrics::{self, CaptureTotals, MetricsConfig};
use zkscope_analysis::zkstats::{StatsConfig, WindowedStats};
use zkscope_capture::ensemble::ZabKind;
use zkscope_capture::pipeline::{Consumer, Counters, Event, LiveCounters, Pipeline, StopHandle};
use zkscope_capture::source::{LiveOptions, PacketSource};
use zkscope_capture::Timestamp;
use zkscope_proto::quorum::PacketType;
use zkscope_serve::log::Logger;
use zkscope_serve::privs;
use zkscope_serve::{About, Health, Shared, Window};

use crate::args::{decoder_for, InputArgs, ProtocolArgs};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `ts LEVEL zkscope: message key=value …`
    Text,
    /// One JSON object per line.
    Json,
}

/// `zkscope serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub protocols: ProtocolArgs,

    /// HTTP port.
    #[arg(long = "http-port", default_value_t = 7070, value_name = "PORT")]
    pub http_port: u16,

    /// HTTP listen address (zktraffic listened on the host name; this defaults to loopback:
    /// use 0.0.0.0 or a specific address for a remote Prometheus).
    #[arg(
        long = "http-address",
        default_value = "127.0.0.1",
        value_name = "ADDR"
    )]
    pub http_address: IpAddr,

    /// Window of the JSON stats (capture clock): 60s, 10s, 500ms, 2m.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub window: Duration,

    /// Keep this many path components in the JSON keys (0 = whole paths).
    #[arg(long = "aggregation-depth", default_value_t = 0, value_name = "N")]
    pub aggregation_depth: usize,

    /// Keys kept per family in the JSON endpoints (0 = all; totals are always kept).
    #[arg(long = "max-results", default_value_t = 10, value_name = "N")]
    pub max_results: usize,

    /// Fraction of requests (with their replies) counted in the JSON stats, in [0, 1].
    /// The metrics always count everything.
    #[arg(long, default_value_t = 1.0, value_name = "FRACTION")]
    pub sampling: f64,

    /// No byte counts in the JSON stats.
    #[arg(long = "exclude-bytes")]
    pub exclude_bytes: bool,

    /// Count pings in the JSON stats (zktraffic never did; the metrics always do).
    #[arg(long = "include-pings")]
    pub include_pings: bool,

    /// Path components of the metrics' `namespace` label (1 = ZooKeeper's top-level namespace).
    #[arg(long = "metrics-path-depth", default_value_t = 1, value_name = "N")]
    pub metrics_path_depth: usize,

    /// Namespaces with their own metrics series; later ones are `other`.
    #[arg(
        long = "metrics-max-namespaces",
        default_value_t = 20,
        value_name = "N"
    )]
    pub metrics_max_namespaces: usize,

    /// Per-client-IP request counters in the metrics (`zkscope_client_requests_total`).
    #[arg(long = "metrics-per-client")]
    pub metrics_per_client: bool,

    /// Clients with their own series with --metrics-per-client; later ones are `other`.
    #[arg(long = "metrics-max-clients", default_value_t = 100, value_name = "N")]
    pub metrics_max_clients: usize,

    /// Distinct keys per JSON accumulator and window before the lowest counts are dropped.
    #[arg(long = "max-keys", default_value_t = 20_000, value_name = "N")]
    pub max_keys: usize,

    /// After opening the capture, switch to this user (and its groups) and drop every
    /// capability (tcpdump's -Z). Needs root at start.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,

    /// Log format on stderr.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Live capture: read timeout (the kernel hands packets over in blocks; this bounds how
    /// long one waits).
    #[arg(long = "capture-timeout", default_value = "250ms", value_name = "DURATION", value_parser = parse_duration)]
    pub capture_timeout: Duration,

    /// Live capture: deliver every packet at once (TPACKET_V2) instead of in blocks
    /// (TPACKET_V3, the daemon's default: less CPU, fewer drops).
    #[arg(long)]
    pub immediate: bool,

    /// When a live capture fails, keep answering (/health 503) this long before exiting.
    #[arg(long = "failure-grace", default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub failure_grace: Duration,
}

/// `60s`, `500ms`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?} (e.g. 60s, 500ms, 2m)"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("bad duration {s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// The pipeline's consumer: stats and metrics, elections for the metrics.
struct ServeConsumer {
    sink: Arc<Mutex<DaemonSink>>,
    shared: Arc<Shared>,
    published: u64,
    elections: Tracker,
    counted_rounds: usize,
}

impl ServeConsumer {
    fn publish_if_closed(&mut self, sink: &DaemonSink) {
        let done = sink.stats.completed();
        if done != self.published {
            self.published = done;
            if let Some(w) = sink.stats.last() {
                self.shared.publish(Window {
                    stats: w.clone(),
                    index: done,
                });
            }
        }
    }

    /// Elections that settled since the last look.
    fn elections(&mut self, sink: &mut DaemonSink) {
        let rounds = self.elections.rounds();
        while let Some(r) = rounds.get(self.counted_rounds) {
            if !(r.all_settled() || r.closed) {
                break;
            }
            let dur = r.end().0.saturating_sub(r.start.0);
            sink.metrics.election(r.kind(), dur, r.leader());
            self.counted_rounds += 1;
        }
    }
}

impl Consumer for ServeConsumer {
    fn event(&mut self, ev: &Event<'_, '_>) {
        let sink = self.sink.clone();
        let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
        match ev {
            Event::Client(m) => {
                zkscope_capture::client::ClientSink::message(&mut *s, m);
                self.shared
                    .counters
                    .messages
                    .fetch_add(1, Ordering::Relaxed);
                self.publish_if_closed(&s);
            }
            Event::Quorum(z) => {
                if let ZabKind::Packet(p) = &z.kind {
                    let zxid = p.zxid.0;
                    match p.packet_type {
                        PacketType::PROPOSAL => s.metrics.proposal(zxid, z.ts.0),
                        PacketType::COMMIT | PacketType::COMMITANDACTIVATE => {
                            s.metrics.commit(zxid, z.ts.0)
                        }
                        PacketType::INFORM | PacketType::INFORMANDACTIVATE => {
                            s.metrics.proposal(zxid, z.ts.0);
                            s.metrics.commit(zxid, z.ts.0);
                        }
                        _ => {}
                    }
                }
                self.elections.event(ev);
                self.elections(&mut s);
            }
            Event::Election(_) | Event::Note(_) => {
                self.elections.event(ev);
                self.elections(&mut s);
            }
        }
    }
}

/// Copies the pipeline's counters into the metrics and `/json/info`.
fn update_counters(c: &Counters, sink: &Mutex<DaemonSink>, shared: &Shared) {
    let live = c.live.unwrap_or_default();
    let totals = CaptureTotals {
        packets: c.packets.packets,
        kernel_dropped_raw: u32::try_from(live.dropped).unwrap_or(u32::MAX),
        interface_dropped_raw: u32::try_from(live.if_dropped).unwrap_or(u32::MAX),
        decode_errors: c.client.undecodable_frames
            + c.client.bad_lengths
            + c.client.partial_frames_dropped,
        tcp_gaps: c.tcp.gaps,
        tcp_bytes_lost: c.tcp.bytes_lost,
        resync_skipped_bytes: c.client.resync_skipped_bytes,
    };
    let conns = c
        .tcp
        .flows_opened
        .saturating_sub(c.tcp.flows_closed)
        .saturating_sub(c.tcp.flows_evicted);
    let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
    s.metrics.capture(&totals);
    s.metrics.set_connections(conns);
    let k = &shared.counters;
    k.packets.store(c.packets.packets, Ordering::Relaxed);
    k.kernel_dropped
        .store(s.metrics.kernel_dropped(), Ordering::Relaxed);
    k.interface_dropped
        .store(live.if_dropped, Ordering::Relaxed);
    k.decode_errors
        .store(totals.decode_errors, Ordering::Relaxed);
    k.tcp_gaps.store(c.tcp.gaps, Ordering::Relaxed);
    k.connections.store(conns, Ordering::Relaxed);
}

fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Runs the daemon until SIGTERM/SIGINT (or a live capture failure).
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let log = Logger {
        json: args.log_format == LogFormat::Json,
    };
    if !(0.0..=1.0).contains(&args.sampling) {
        bail!("--sampling takes values within [0, 1]");
    }
    let input = &args.input;
    let (decoder, bpf) = decoder_for(input, &args.protocols)?;
    let user = args
        .user
        .as_deref()
        .map(privs::lookup_user)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let stop = StopHandle::new();
    let (source, about) = match (&input.read, &input.iface) {
        (Some(path), None) => (
            PacketSource::open_file_filtered(path, input.filter.as_deref())?,
            About {
                source: format!("file:{}", path.display()),
                window_secs: args.window.as_secs_f64(),
                filter: input.filter.clone(),
            },
        ),
        (None, Some(iface)) => {
            let opts = LiveOptions {
                snaplen: input.snaplen,
                promisc: !input.no_promisc,
                buffer_size: input.buffer_size.saturating_mul(1 << 20),
                filter: Some(bpf.clone()),
                immediate: args.immediate,
                timeout_ms: i32::try_from(args.capture_timeout.as_millis())
                    .unwrap_or(i32::MAX)
                    .max(1),
            };
            let src = PacketSource::open_live(iface, opts, stop.flag())
                .with_context(|| format!("cannot capture on {iface}"))?;
            (
                src,
                About {
                    source: iface.clone(),
                    window_secs: args.window.as_secs_f64(),
                    filter: Some(bpf.clone()),
                },
            )
        }
        _ => bail!("give a capture file (-r FILE) or an interface (-i IFACE)"),
    };
    let live = source.is_live();
    // Before any thread exists: capabilities are per thread.
    if user.is_some() || live {
        privs::drop_privileges(user.as_ref())
            .map_err(|e| anyhow::anyhow!("cannot drop privileges: {e}"))?;
        if let Some(u) = &user {
            log.info(
                "dropped privileges",
                &[("user", u.name.clone()), ("uid", u.uid.to_string())],
            );
        }
    }
    let stats_cfg = StatsConfig {
        aggregation_depth: args.aggregation_depth,
        max_results: args.max_results,
        exclude_bytes: args.exclude_bytes,
        show_credentials: input.show_credentials,
        include_pings: args.include_pings,
        sampling: args.sampling,
        max_keys: args.max_keys,
        ..StatsConfig::default()
    };
    let servers = input.servers.len() + input.ports.len();
    let metrics_cfg = MetricsConfig {
        namespace_depth: args.metrics_path_depth.max(1),
        max_namespaces: args.metrics_max_namespaces,
        per_client: args.metrics_per_client,
        max_clients: args.metrics_max_clients,
        server_label: servers > 1,
        ..MetricsConfig::default()
    };
    let (registry, recorder) = metrics::new(&metrics_cfg);
    let window_ns = i64::try_from(args.window.as_nanos()).unwrap_or(i64::MAX);
    let sink = Arc::new(Mutex::new(DaemonSink::new(
        WindowedStats::new(&stats_cfg, window_ns),
        recorder,
    )));
    let shared = Shared::new(registry, about.clone());

    // HTTP first, so that a port in use fails before the capture starts.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("zkscope-http")
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    let addr = SocketAddr::new(args.http_address, args.http_port);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    log.info(
        "serving",
        &[
            ("http", format!("http://{bound}/")),
            ("source", about.source.clone()),
            ("window", format!("{}s", args.window.as_secs_f64())),
        ],
    );

    let mut pipeline = Pipeline::new(source, decoder, stop.clone());
    if let Some(path) = &input.write {
        // -w: the daemon's packets kept too (flushed every second of a live capture)
        pipeline.write_to(zkscope_capture::writer::PacketWriter::create(path)?);
    }
    let counters = pipeline.live_counters();
    {
        let s = sink.lock().unwrap_or_else(PoisonError::into_inner);
        s.metrics.set_capture_up(true);
    }
    shared.set_health(Health::Capturing);
    let consumer = ServeConsumer {
        sink: sink.clone(),
        shared: shared.clone(),
        published: 0,
        elections: Tracker::default(),
        counted_rounds: 0,
    };
    let capture = std::thread::Builder::new()
        .name("zkscope-capture".into())
        .spawn(move || pipeline.run(consumer))
        .context("cannot start the capture thread")?;

    let ticker = {
        let sink = sink.clone();
        let shared = shared.clone();
        let counters: Arc<LiveCounters> = counters.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("zkscope-ticker".into())
            .spawn(move || {
                let mut drops = 0;
                while !stop.is_stopped() {
                    std::thread::sleep(Duration::from_secs(1));
                    let mut c = counters.snapshot();
                    // The packet count is fresher than the last full snapshot.
                    c.packets.packets = c.packets.packets.max(counters.packets());
                    update_counters(&c, &sink, &shared);
                    let k = shared.counters.kernel_dropped.load(Ordering::Relaxed);
                    if k > drops {
                        log.warn(
                            "the kernel dropped packets",
                            &[("dropped", k.to_string()), ("new", (k - drops).to_string())],
                        );
                        drops = k;
                    }
                    if live {
                        // Close the windows of an idle capture (packets still in the kernel's
                        // block are at most a timeout old: leave a second of slack).
                        let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
                        if s.stats.advance(Timestamp(wall_ns() - 1_000_000_000)) {
                            if let Some(w) = s.stats.last() {
                                shared.publish(Window {
                                    stats: w.clone(),
                                    index: s.stats.completed(),
                                });
                            }
                        }
                    }
                }
            })
            .context("cannot start the ticker thread")?
    };

    let shared_http = shared.clone();
    let stop_sig = stop.clone();
    let (end_tx, end_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(async move {
        let shutdown = async move {
            let _ = end_rx.await;
        };
        zkscope_serve::serve(listener, shared_http, shutdown).await
    });
    // Signals: SIGTERM/SIGINT stop the capture, then the server.
    let signals = rt.spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term_fut = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term_fut => {}
        }
        stop_sig.stop();
    });

    // The capture ends at EOF (file), on a signal, or when it fails.
    let finished = capture
        .join()
        .map_err(|_| anyhow::anyhow!("the capture thread panicked"))?;
    let end = finished
        .counters
        .packets
        .last_ts
        .unwrap_or(Timestamp(wall_ns()));
    {
        let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
        s.finish(end);
        s.metrics.set_capture_up(false);
        if let Some(w) = s.stats.last() {
            shared.publish(Window {
                stats: w.clone(),
                index: s.stats.completed(),
            });
        }
    }
    update_counters(&finished.counters, &sink, &shared);
    let mut code = ExitCode::SUCCESS;
    if let Some(e) = &finished.read_error {
        let reason = format!("capture failed: {e}");
        log.error(&reason, &[("source", about.source.clone())]);
        shared.set_health(Health::Failed(reason));
        code = ExitCode::from(1);
        if live {
            std::thread::sleep(args.failure_grace);
        }
    } else if stop.is_stopped() {
        log.info("stopping", &[]);
    } else {
        // A file replayed to its end: keep serving the last window until stopped.
        shared.set_health(Health::Finished);
        log.info(
            "capture file read; serving its last window until stopped",
            &[("packets", finished.counters.packets.packets.to_string())],
        );
        rt.block_on(async {
            let _ = signals.await;
        });
    }
    stop.stop();
    let _ = end_tx.send(());
    let served = rt.block_on(server);
    let _ = ticker.join();
    match served {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            log.error("HTTP server failed", &[("error", e.to_string())]);
            code = ExitCode::from(1);
        }
        Err(e) => {
            log.error("HTTP server panicked", &[("error", e.to_string())]);
            code = ExitCode::from(1);
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}

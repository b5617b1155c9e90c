//! Where packets come from and which conversations are kept: the options every command that
//! reads traffic shares, the packet loop, and the end-of-run summary.

use std::io::{self, IsTerminal, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use zkscope_capture::client::{ClientConfig, ClientHandler, ClientSink, ClientStats, ServerSpec};
use zkscope_capture::packet::{parse_tcp, Skip, Timestamp};
use zkscope_capture::source::{CaptureError, CaptureStats, LiveOptions, PacketSource};
use zkscope_capture::tcp::{StreamHandler, TcpConfig, TcpStats, TcpTracker};

/// Input and selection options (shared by every command that reads traffic).
#[derive(Debug, Args)]
#[command(next_help_heading = "Input and selection")]
pub struct InputArgs {
    /// Read packets from a pcap or pcapng file ("-" reads standard input).
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "iface"
    )]
    pub read: Option<PathBuf>,

    /// Capture live on an interface (lo, any, eth0, …); needs root or CAP_NET_RAW.
    #[arg(
        short = 'i',
        long = "iface",
        visible_alias = "interface",
        value_name = "IFACE"
    )]
    pub iface: Option<String>,

    /// ZooKeeper client port (repeatable; default 2181 unless --server is given).
    #[arg(long = "port", visible_alias = "zookeeper-port", value_name = "PORT")]
    pub ports: Vec<u16>,

    /// A ZooKeeper server as HOST:PORT (repeatable).
    #[arg(long = "server", visible_alias = "servers", value_name = "HOST:PORT")]
    pub servers: Vec<String>,

    /// An extra BPF filter expression, ANDed with the port selection.
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,

    /// Only conversations whose client uses this port.
    #[arg(long = "client-port", value_name = "PORT")]
    pub client_port: Option<u16>,

    /// Only traffic to or from this host (repeatable; all its IPv4 and IPv6 addresses).
    #[arg(long = "include-host", value_name = "HOST")]
    pub include_hosts: Vec<String>,

    /// No traffic to or from this host (repeatable; all its IPv4 and IPv6 addresses).
    #[arg(long = "exclude-host", value_name = "HOST")]
    pub exclude_hosts: Vec<String>,

    /// Show auth credentials instead of redacting them (digest:user:***).
    #[arg(long = "show-credentials")]
    pub show_credentials: bool,

    /// Pending requests kept per connection before the oldest is dropped.
    #[arg(
        long = "max-queued-requests",
        default_value_t = 10_000,
        value_name = "N"
    )]
    pub max_queued_requests: usize,

    /// Largest frame accepted, in bytes; longer length prefixes are treated as garbage.
    #[arg(long = "max-frame", default_value_t = 16 << 20, value_name = "BYTES")]
    pub max_frame: usize,

    /// Live capture: bytes captured per packet.
    #[arg(long, default_value_t = 262_144, value_name = "BYTES")]
    pub snaplen: i32,

    /// Live capture: kernel buffer size in MiB.
    #[arg(long = "buffer-size", default_value_t = 32, value_name = "MIB")]
    pub buffer_size: i32,

    /// Live capture: do not put the interface into promiscuous mode.
    #[arg(long = "no-promisc")]
    pub no_promisc: bool,

    /// Do not print the end-of-run summary on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Resolves a host name or address to all of its IPv4 and IPv6 addresses.
pub(crate) fn resolve_host(host: &str) -> Result<Vec<IpAddr>> {
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok(vec![ip]);
    }
    let mut ips: Vec<IpAddr> = (host, 0)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve host {host:?}"))?
        .map(|a| a.ip())
        .collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() {
        bail!("host {host:?} has no addresses");
    }
    Ok(ips)
}

/// Resolves `HOST:PORT` (IPv6 as `[addr]:port`) to every matching socket address.
pub(crate) fn resolve_server(s: &str) -> Result<Vec<SocketAddr>> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--server {s:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("--server {s:?}: bad port {port:?}"))?;
    Ok(resolve_host(host)?
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

impl InputArgs {
    fn server_spec(&self) -> Result<ServerSpec> {
        if !self.include_hosts.is_empty() && !self.exclude_hosts.is_empty() {
            bail!("the flags --include-host and --exclude-host can't be mixed");
        }
        let mut spec = ServerSpec {
            ports: self.ports.clone(),
            client_port: self.client_port,
            ..ServerSpec::default()
        };
        for s in &self.servers {
            spec.servers.extend(resolve_server(s)?);
        }
        if spec.ports.is_empty() && spec.servers.is_empty() {
            spec.ports.push(2181);
        }
        for h in &self.include_hosts {
            spec.include_hosts.extend(resolve_host(h)?);
        }
        for h in &self.exclude_hosts {
            spec.exclude_hosts.extend(resolve_host(h)?);
        }
        Ok(spec)
    }

    /// The BPF filter for live capture: the selected ports/servers, hosts and the user's filter.
    fn bpf(&self, spec: &ServerSpec) -> String {
        let mut sel: Vec<String> = spec.ports.iter().map(|p| format!("port {p}")).collect();
        sel.extend(
            spec.servers
                .iter()
                .map(|s| format!("(host {} and port {})", s.ip(), s.port())),
        );
        let mut f = format!("tcp and ({})", sel.join(" or "));
        if !spec.include_hosts.is_empty() {
            let hosts: Vec<String> = spec
                .include_hosts
                .iter()
                .map(|h| format!("host {h}"))
                .collect();
            f.push_str(&format!(" and ({})", hosts.join(" or ")));
        }
        for h in &spec.exclude_hosts {
            f.push_str(&format!(" and not host {h}"));
        }
        if let Some(user) = &self.filter {
            f.push_str(&format!(" and ({user})"));
        }
        f
    }
}

/// A progress bar for reading a file (bytes, rate, ETA) on stderr; a spinner when the size is
/// unknown (standard input).
fn progress_bar(position: Option<(u64, Option<u64>)>) -> ProgressBar {
    match position.and_then(|(_, size)| size) {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    }
}

/// Counters of the packet loop itself.
#[derive(Debug, Default)]
pub struct LoopStats {
    pub packets: u64,
    pub bytes: u64,
    pub not_tcp: u64,
    pub fragments: u64,
    pub malformed: u64,
    pub truncated_headers: u64,
    pub unsupported_link: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

/// A consumer of decoded messages that can ask the loop to stop (output closed, enough
/// messages collected) and wants a chance to flush on live captures.
pub trait Consumer: ClientSink {
    /// True once the run should end.
    fn done(&self) -> bool {
        false
    }
    /// Called after each packet of a live capture.
    fn flush(&mut self) {}
}

/// What a run produced.
pub struct Outcome<S> {
    pub sink: S,
    pub loop_stats: LoopStats,
    pub tcp: TcpStats,
    pub client: ClientStats,
    pub live: Option<CaptureStats>,
    /// The input ended with an error (a truncated file) after the packets before it.
    pub read_error: Option<CaptureError>,
}

/// A stream handler the packet loop can drive (issue 3: the client handler and the
/// multi-protocol ensemble handler share one loop).
pub trait Driven: StreamHandler {
    /// True once the run should end.
    fn done(&self) -> bool;
    /// Called after each packet of a live capture.
    fn flush(&mut self);
}

impl<S: Consumer> Driven for ClientHandler<S> {
    fn done(&self) -> bool {
        self.sink.done()
    }
    fn flush(&mut self) {
        self.sink.flush();
    }
}

/// What the packet loop produced, whatever the handler.
pub struct Drove<H> {
    pub handler: H,
    pub loop_stats: LoopStats,
    pub tcp: TcpStats,
    pub live: Option<CaptureStats>,
    pub read_error: Option<CaptureError>,
}

impl InputArgs {
    /// Reads packets until the input ends, Ctrl-C, or the consumer is done, feeding decoded
    /// client messages to `sink`.
    pub fn run<S: Consumer>(&self, sink: S) -> Result<Outcome<S>> {
        let spec = self.server_spec()?;
        let bpf = self.bpf(&spec);
        let handler = ClientHandler::new(spec, self.client_config(), sink);
        let d = self.drive(handler, bpf)?;
        Ok(Outcome {
            sink: d.handler.sink,
            loop_stats: d.loop_stats,
            tcp: d.tcp,
            client: d.handler.stats,
            live: d.live,
            read_error: d.read_error,
        })
    }

    /// The client decoder's settings from the options.
    pub(crate) fn client_config(&self) -> ClientConfig {
        ClientConfig {
            max_frame: self.max_frame,
            max_pending_per_conn: self.max_queued_requests.max(1),
            show_credentials: self.show_credentials,
            ..ClientConfig::default()
        }
    }

    /// The packet loop: opens the input (`bpf` is the live capture filter), feeds every TCP
    /// segment to `handler` until the input ends, Ctrl-C, or the handler is done.
    pub fn drive<H: Driven>(&self, mut handler: H, bpf: String) -> Result<Drove<H>> {
        let stop = Arc::new(AtomicBool::new(false));
        {
            let stop = stop.clone();
            // A second Ctrl-C while the summary is pending exits at once.
            ctrlc::set_handler(move || {
                if stop.swap(true, Ordering::SeqCst) {
                    std::process::exit(130);
                }
            })
            .context("cannot install the Ctrl-C handler")?;
        }
        let mut source = match (&self.read, &self.iface) {
            (Some(path), None) => PacketSource::open_file_filtered(path, self.filter.as_deref())?,
            (None, Some(iface)) => {
                let opts = LiveOptions {
                    snaplen: self.snaplen,
                    promisc: !self.no_promisc,
                    buffer_size: self.buffer_size.saturating_mul(1 << 20),
                    filter: Some(bpf.clone()),
                    immediate: true,
                    ..LiveOptions::default()
                };
                let src = PacketSource::open_live(iface, opts, stop.clone())?;
                eprintln!("zkscope: listening on {iface} ({bpf})");
                src
            }
            _ => bail!("give a capture file (-r FILE) or an interface (-i IFACE)"),
        };
        let live = self.iface.is_some();
        let mut tracker = TcpTracker::new(TcpConfig::default());
        let mut stats = LoopStats::default();
        let mut read_error = None;
        let progress = (!live && !self.quiet && io::stderr().is_terminal())
            .then(|| progress_bar(source.position()));
        loop {
            if stop.load(Ordering::Relaxed) && !live {
                break;
            }
            let pkt = match source.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            };
            stats.packets += 1;
            stats.bytes += pkt.data.len() as u64;
            stats.first_ts.get_or_insert(pkt.ts);
            stats.last_ts = Some(pkt.ts);
            match parse_tcp(&pkt) {
                Ok(seg) => tracker.segment(&mut handler, pkt.ts, &seg),
                Err(Skip::NotIp | Skip::NotTcp) => stats.not_tcp += 1,
                Err(Skip::Fragment) => stats.fragments += 1,
                Err(Skip::Truncated) => stats.truncated_headers += 1,
                Err(Skip::UnsupportedLinktype(_)) => stats.unsupported_link += 1,
                Err(Skip::Malformed) => stats.malformed += 1,
            }
            if live {
                handler.flush();
            }
            if handler.done() {
                break;
            }
            if let Some(bar) = &progress {
                if stats.packets % 4096 == 0 {
                    if let Some((read, _)) = source.position() {
                        bar.set_position(read);
                    }
                }
            }
        }
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        let end = stats.last_ts.unwrap_or(Timestamp(0));
        tracker.finish(&mut handler, end);
        let live_stats = source.stats();
        Ok(Drove {
            handler,
            loop_stats: stats,
            tcp: tracker.stats().clone(),
            live: live_stats,
            read_error,
        })
    }
}

impl<S> Outcome<S> {
    /// Prints the end-of-run summary on stderr (unless `--quiet`).
    pub fn print_summary(&self, args: &InputArgs) {
        if !args.quiet {
            print_summary(&self.loop_stats, &self.tcp, &self.client, self.live);
        }
    }
}

pub fn print_summary(
    s: &LoopStats,
    tcp: &TcpStats,
    c: &ClientStats,
    live: Option<zkscope_capture::source::CaptureStats>,
) {
    let mut e = io::stderr().lock();
    let span = match (s.first_ts, s.last_ts) {
        (Some(a), Some(b)) => (b.0 - a.0) as f64 / 1e9,
        _ => 0.0,
    };
    let _ = writeln!(e, "--- zkscope summary ---");
    let _ = writeln!(
        e,
        "packets     {} ({} bytes) over {:.3}s; not TCP {}, IP fragments {}, malformed {}, headers truncated {}, unsupported link type {}",
        s.packets, s.bytes, span, s.not_tcp, s.fragments, s.malformed, s.truncated_headers, s.unsupported_link
    );
    if let Some(l) = live {
        let _ = writeln!(
            e,
            "capture     received {}, dropped by kernel {}, dropped by interface {}",
            l.received, l.dropped, l.if_dropped
        );
    }
    let _ = writeln!(
        e,
        "tcp         {} connections ({} closed, {} evicted); {} retransmitted/duplicate segments, {} out of order; {} gaps ({} bytes lost); {} truncated packets",
        tcp.flows_opened,
        tcp.flows_closed,
        tcp.flows_evicted,
        tcp.duplicate_segments,
        tcp.out_of_order_segments,
        tcp.gaps,
        tcp.bytes_lost,
        tcp.truncated_packets
    );
    let _ = writeln!(
        e,
        "messages    {} requests, {} replies, {} watch events, {} connects, {} connect replies, {} four-letter words, {} TLS connections",
        c.requests, c.replies, c.events, c.connects, c.connect_replies, c.four_letter_words, c.tls_connections
    );
    let _ = writeln!(
        e,
        "pairing     {} replies without a captured request, {} requests without a reply, {} pending requests evicted",
        c.unpaired_replies, c.unanswered_requests, c.pending_evicted
    );
    let _ = writeln!(
        e,
        "problems    {} undecodable frames, {} bad length prefixes, {} bytes skipped to resynchronise, {} partial frames dropped at gaps, {} frames cut by gaps (reported from their start), {} misread frames (impossible error code)",
        c.undecodable_frames, c.bad_lengths, c.resync_skipped_bytes, c.partial_frames_dropped, c.cut_frames, c.misread_frames
    );
}

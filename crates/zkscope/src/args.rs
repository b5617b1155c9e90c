//! Options shared by several commands, each defined once as a `clap` group: where packets come
//! from and which conversations are kept ([`InputArgs`]), which protocols are decoded
//! ([`ProtocolArgs`]), how timestamps print ([`TimeArgs`]); and their translation into the
//! capture crate's selections.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use zkscope_capture::client::{ClientConfig, ServerSpec};
use zkscope_capture::ensemble::{EnsembleSpec, Mode, Proto};
use zkscope_capture::pipeline::Decoder;

use crate::output::end::{End, Expect, SummaryFormat};
use crate::output::time::TimeFormat;

/// Input and selection options (shared by every command that reads traffic).
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Read packets from a pcap or pcapng file ("-" reads standard input).
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "iface",
        help_heading = "Input"
    )]
    pub read: Option<PathBuf>,

    /// Capture live on an interface (lo, any, eth0, …); needs root or CAP_NET_RAW.
    #[arg(
        short = 'i',
        long = "iface",
        visible_alias = "interface",
        value_name = "IFACE",
        help_heading = "Input"
    )]
    pub iface: Option<String>,

    /// ZooKeeper client port (repeatable; default 2181 unless --server is given).
    #[arg(
        long = "port",
        visible_alias = "zookeeper-port",
        value_name = "PORT",
        help_heading = "Selection"
    )]
    pub ports: Vec<u16>,

    /// A ZooKeeper server as HOST:PORT (repeatable).
    #[arg(
        long = "server",
        visible_alias = "servers",
        value_name = "HOST:PORT",
        help_heading = "Selection"
    )]
    pub servers: Vec<String>,

    /// An extra BPF filter expression, ANDed with the port selection.
    #[arg(
        short = 'f',
        long = "filter",
        value_name = "BPF",
        help_heading = "Selection"
    )]
    pub filter: Option<String>,

    /// Only conversations whose client uses this port.
    #[arg(long = "client-port", value_name = "PORT", help_heading = "Selection")]
    pub client_port: Option<u16>,

    /// Only traffic to or from this host (repeatable; all its IPv4 and IPv6 addresses).
    #[arg(long = "include-host", value_name = "HOST", help_heading = "Selection")]
    pub include_hosts: Vec<String>,

    /// No traffic to or from this host (repeatable; all its IPv4 and IPv6 addresses).
    #[arg(long = "exclude-host", value_name = "HOST", help_heading = "Selection")]
    pub exclude_hosts: Vec<String>,

    /// Show auth credentials instead of redacting them (digest:user:***).
    #[arg(long = "show-credentials", help_heading = "Decoding")]
    pub show_credentials: bool,

    /// Pending requests kept per connection before the oldest is dropped.
    #[arg(
        long = "max-queued-requests",
        default_value_t = 10_000,
        value_name = "N",
        help_heading = "Decoding"
    )]
    pub max_queued_requests: usize,

    /// Largest frame accepted, in bytes; longer length prefixes are treated as garbage.
    #[arg(long = "max-frame", default_value_t = 16 << 20, value_name = "BYTES", help_heading = "Decoding")]
    pub max_frame: usize,

    /// Live capture: bytes captured per packet.
    #[arg(
        long,
        default_value_t = 262_144,
        value_name = "BYTES",
        help_heading = "Live capture"
    )]
    pub snaplen: i32,

    /// Live capture: kernel buffer size in MiB.
    #[arg(
        long = "buffer-size",
        default_value_t = 32,
        value_name = "MIB",
        help_heading = "Live capture"
    )]
    pub buffer_size: i32,

    /// Live capture: do not put the interface into promiscuous mode.
    #[arg(long = "no-promisc", help_heading = "Live capture")]
    pub no_promisc: bool,

    /// Do not print the end-of-run summary on stderr.
    #[arg(short = 'q', long, help_heading = "Summary")]
    pub quiet: bool,

    /// The end-of-run summary as text, or as one JSON object on the last line of stderr (for
    /// scripts; fields in the README).
    #[arg(
        long = "summary-format",
        value_enum,
        default_value = "text",
        value_name = "FORMAT",
        help_heading = "Summary"
    )]
    pub summary_format: SummaryFormat,

    /// Also write the packets read to a pcap file, as tcpdump -w does (a live session kept to
    /// decode again later with -r).
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE",
        help_heading = "Input"
    )]
    pub write: Option<PathBuf>,

    /// List the interfaces live capture can use (tcpdump -D) and exit.
    #[arg(short = 'D', long = "list-interfaces", help_heading = "Input")]
    pub list_interfaces: bool,

    /// Accepted for tcpdump habits; zkscope never resolves addresses to names anyway.
    #[arg(short = 'n', hide_short_help = true, help_heading = "Input")]
    pub numeric: bool,

    /// A BPF expression after the options, as with tcpdump (`… port 2181 and host zk1`);
    /// ANDed with -f.
    #[arg(
        value_name = "EXPRESSION",
        trailing_var_arg = true,
        help_heading = "Selection"
    )]
    pub expression: Vec<String>,

    /// Wall-clock limit of a live capture (set by commands with --duration).
    #[arg(skip)]
    pub live_duration: Option<std::time::Duration>,
}

impl InputArgs {
    /// How `command` ends its run (see [`crate::output::end::finish`]).
    pub fn end(&self, command: &'static str, expect: Expect, include_pings: bool) -> End<'_> {
        End {
            command,
            expect,
            include_pings,
            note: None,
            quiet: self.quiet,
            format: self.summary_format,
            written: self.write.clone(),
        }
    }

    /// What the client decoder looks for, as options (`--port 2181`).
    pub fn expect_client(&self, has_protocol: bool) -> Expect {
        let mut sel: Vec<String> = self.ports.iter().map(|p| format!("--port {p}")).collect();
        sel.extend(self.servers.iter().map(|s| format!("--server {s}")));
        if sel.is_empty() {
            sel.push("--port 2181, the default".into());
        }
        let mut ports = self.ports.clone();
        ports.extend(
            self.servers
                .iter()
                .filter_map(|s| s.rsplit_once(':')?.1.parse::<u16>().ok()),
        );
        if ports.is_empty() {
            ports.push(2181);
        }
        Expect::Client {
            selection: sel.join(" "),
            ports,
            has_protocol,
        }
    }

    /// What the decoders of `protocols` look for.
    pub fn expect(&self, protocols: &ProtocolArgs, has_protocol: bool) -> Expect {
        let (mode, default, extra) = match protocols.protocol {
            Protocol::Client => return self.expect_client(has_protocol),
            Protocol::Auto => {
                return Expect::Ensemble {
                    mode: Mode::Auto,
                    selection: "any port, --protocol auto".into(),
                    ports: Vec::new(),
                }
            }
            Protocol::Fle => (Mode::Fle, 3888, &protocols.fle_ports),
            Protocol::Zab => (Mode::Zab, 2888, &protocols.zab_ports),
        };
        let mut sel: Vec<String> = self
            .ports
            .iter()
            .chain(extra)
            .map(|p| format!("port {p}"))
            .collect();
        sel.extend(self.servers.iter().cloned());
        if sel.is_empty() {
            sel.push(format!("port {default}"));
        }
        let mut ports: Vec<u16> = self.ports.iter().chain(extra).copied().collect();
        ports.extend(
            self.servers
                .iter()
                .filter_map(|s| s.rsplit_once(':')?.1.parse::<u16>().ok()),
        );
        if ports.is_empty() {
            ports.push(default);
        }
        Expect::Ensemble {
            mode,
            selection: format!("--protocol {}: {}", mode_name(mode), sel.join(", ")),
            ports,
        }
    }

    /// A command's `--duration` (nanoseconds): a live capture stops on the wall clock after it.
    pub fn set_duration(&mut self, ns: Option<i64>) {
        self.live_duration = ns
            .filter(|&d| d > 0)
            .map(|d| std::time::Duration::from_nanos(d.unsigned_abs()));
    }
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
    /// The client decoder's selection from the options.
    pub fn server_spec(&self) -> Result<ServerSpec> {
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
    pub fn bpf(&self, spec: &ServerSpec) -> String {
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
        if let Some(user) = self.user_filter() {
            f.push_str(&format!(" and ({user})"));
        }
        f
    }

    /// `-f` and the trailing expression, ANDed.
    pub(crate) fn user_filter(&self) -> Option<String> {
        let trailing = self.expression.join(" ");
        match (self.filter.as_deref(), trailing.trim()) {
            (None, "") => None,
            (Some(f), "") => Some(f.to_string()),
            (None, t) => Some(t.to_string()),
            (Some(f), t) => Some(format!("({f}) and ({t})")),
        }
    }

    /// The client decoder's settings from the options.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            max_frame: self.max_frame,
            max_pending_per_conn: self.max_queued_requests.max(1),
            show_credentials: self.show_credentials,
            ..ClientConfig::default()
        }
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Fle => "fle",
        Mode::Zab => "zab",
        Mode::Auto => "auto",
    }
}

/// Which protocol `zkscope dump` decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// Client traffic (default port 2181).
    Client,
    /// Leader election (default port 3888).
    Fle,
    /// Quorum / atomic broadcast between leader and learners (default port 2888).
    Zab,
    /// All three; ports discovered from the traffic, unknown ports recognised from their bytes.
    Auto,
}

/// Protocol selection options (shared by `dump` and `elections`).
#[derive(Debug, Args, Clone)]
pub struct ProtocolArgs {
    /// Protocol to decode. With fle or zab, --port gives that protocol's ports (defaults 3888,
    /// 2888). With auto, --port gives client ports, every TCP connection is looked at, and the
    /// ports are discovered from the ensemble configuration in the traffic.
    #[arg(
        long,
        value_enum,
        default_value = "client",
        help_heading = "Ensemble protocols"
    )]
    pub protocol: Protocol,

    /// An election (FLE) port (repeatable; with --protocol auto or fle).
    #[arg(
        long = "fle-port",
        value_name = "PORT",
        help_heading = "Ensemble protocols"
    )]
    pub fle_ports: Vec<u16>,

    /// A quorum (ZAB) port (repeatable; with --protocol auto or zab).
    #[arg(
        long = "zab-port",
        value_name = "PORT",
        help_heading = "Ensemble protocols"
    )]
    pub zab_ports: Vec<u16>,
}

/// The decoder `--protocol` selects (client ports, or election/quorum/auto with its mode) and
/// the live capture filter that goes with it, for commands that take either.
pub fn decoder_for(input: &InputArgs, protocols: &ProtocolArgs) -> Result<(Decoder, String)> {
    let mode = match protocols.protocol {
        Protocol::Client => return client_decoder(input),
        Protocol::Fle => Mode::Fle,
        Protocol::Zab => Mode::Zab,
        _ => Mode::Auto,
    };
    ensemble_decoder(input, protocols, mode)
}

/// The client decoder on the selected endpoints, and its live capture filter.
pub fn client_decoder(input: &InputArgs) -> Result<(Decoder, String)> {
    let spec = input.server_spec()?;
    let bpf = input.bpf(&spec);
    let config = input.client_config();
    Ok((Decoder::Client { spec, config }, bpf))
}

/// The ensemble decoder of `mode` (election, quorum, or all three), and its live capture
/// filter.
pub fn ensemble_decoder(
    input: &InputArgs,
    protocols: &ProtocolArgs,
    mode: Mode,
) -> Result<(Decoder, String)> {
    let spec = ensemble_spec(input, protocols, mode)?;
    let bpf = ensemble_bpf(input, &spec);
    let decoder = Decoder::Ensemble {
        spec,
        config: input.client_config(),
        resolver: Some(Box::new(dns)),
    };
    Ok((decoder, bpf))
}

/// The ensemble handler's selection from the options.
pub fn ensemble_spec(input: &InputArgs, p: &ProtocolArgs, mode: Mode) -> Result<EnsembleSpec> {
    if !input.include_hosts.is_empty() && !input.exclude_hosts.is_empty() {
        bail!("the flags --include-host and --exclude-host can't be mixed");
    }
    let mut spec = EnsembleSpec::new(mode);
    let mut servers = Vec::new();
    for s in &input.servers {
        servers.extend(resolve_server(s)?);
    }
    match mode {
        Mode::Fle => {
            spec.fle_ports = input.ports.iter().chain(&p.fle_ports).copied().collect();
            spec.fle_servers = servers;
        }
        Mode::Zab => {
            spec.zab_ports = input.ports.iter().chain(&p.zab_ports).copied().collect();
            spec.zab_servers = servers;
        }
        Mode::Auto => {
            spec.client_ports = input.ports.clone();
            spec.client_servers = servers;
            spec.fle_ports = p.fle_ports.clone();
            spec.zab_ports = p.zab_ports.clone();
        }
    }
    spec.client_port = input.client_port;
    for h in &input.include_hosts {
        spec.include_hosts.extend(resolve_host(h)?);
    }
    for h in &input.exclude_hosts {
        spec.exclude_hosts.extend(resolve_host(h)?);
    }
    Ok(spec)
}

/// The live capture filter of an ensemble run: the mode's ports (all TCP in auto mode), hosts, the user's filter.
pub fn ensemble_bpf(input: &InputArgs, spec: &EnsembleSpec) -> String {
    let mut f = String::from("tcp");
    let proto = match spec.mode {
        Mode::Fle => Some((Proto::Fle, &spec.fle_servers)),
        Mode::Zab => Some((Proto::Zab, &spec.zab_servers)),
        Mode::Auto => None,
    };
    if let Some((proto, servers)) = proto {
        let mut sel: Vec<String> = spec
            .ports_of(proto)
            .iter()
            .map(|p| format!("port {p}"))
            .collect();
        sel.extend(
            servers
                .iter()
                .map(|s| format!("(host {} and port {})", s.ip(), s.port())),
        );
        f.push_str(&format!(" and ({})", sel.join(" or ")));
    }
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
    if let Some(user) = input.user_filter() {
        f.push_str(&format!(" and ({user})"));
    }
    f
}

/// Host names in configurations resolve through the system resolver (cached per name).
pub fn dns(host: &str) -> Vec<std::net::IpAddr> {
    let mut ips: Vec<_> = (host, 0)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    ips.sort();
    ips.dedup();
    ips
}

/// The time window of the commands that report over a period (count, latency, digest).
#[derive(Debug, Args, Clone)]
pub struct WindowArgs {
    /// Only calls from this time: a timestamp (2026-11-22 16:05:00[.123], RFC 3339, epoch
    /// seconds; UTC) or a duration after the first message (30s, 2m).
    #[arg(long, value_name = "TIME", help_heading = "Time window")]
    pub since: Option<String>,

    /// Only calls before this time (same forms as --since).
    #[arg(long, value_name = "TIME", help_heading = "Time window")]
    pub until: Option<String>,

    /// Stop after this long (e.g. 30s, 5m): on the capture clock from the first message for a
    /// file, on the wall clock from the start for a live capture (packets or not).
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = zkscope_analysis::fmt::parse_duration,
        help_heading = "Time window"
    )]
    pub duration: Option<i64>,
}

/// How timestamps print (shared by the commands that print messages).
#[derive(Debug, Args, Clone, Copy)]
pub struct TimeArgs {
    /// Print timestamps in the local time zone instead of UTC.
    #[arg(long = "local-time", help_heading = "Output")]
    pub local_time: bool,

    /// Print the date with each timestamp.
    #[arg(long, help_heading = "Output")]
    pub date: bool,
}

impl TimeArgs {
    /// The printers' time format.
    pub fn format(&self) -> TimeFormat {
        TimeFormat {
            local: self.local_time,
            date: self.date,
        }
    }
}

//! `--protocol fle|zab|auto`: election and quorum traffic, alone or with client traffic, on
//! the shared packet loop (issue 3). Options, the ensemble handler's selection, the live
//! capture filter, the run of `zkscope dump` in these modes and the extra summary lines.

use std::io::{self, Write};
use std::net::ToSocketAddrs;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use zkscope_capture::client::{ClientHandler, ServerSpec};
use zkscope_capture::ensemble::{
    Discovery, EnsembleHandler, EnsembleSpec, EnsembleStats, Mode, Proto, ServerSink,
};

use crate::dump::DumpArgs;
use crate::input::{print_summary, resolve_host, resolve_server, Consumer, Driven, InputArgs};
use crate::print::{PrintOptions, Printer};
use crate::print_server::{ServerPrintOptions, ServerPrinter, SharedOut};
use crate::timefmt::TimeFormat;

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
#[command(next_help_heading = "Ensemble protocols")]
pub struct ProtocolArgs {
    /// Protocol to decode. With fle or zab, --port gives that protocol's ports (defaults 3888,
    /// 2888). With auto, --port gives client ports, every TCP connection is looked at, and the
    /// ports are discovered from the ensemble configuration in the traffic.
    #[arg(long, value_enum, default_value = "client")]
    pub protocol: Protocol,

    /// An election (FLE) port (repeatable; with --protocol auto or fle).
    #[arg(long = "fle-port", value_name = "PORT")]
    pub fle_ports: Vec<u16>,

    /// A quorum (ZAB) port (repeatable; with --protocol auto or zab).
    #[arg(long = "zab-port", value_name = "PORT")]
    pub zab_ports: Vec<u16>,
}

/// Implemented by election/quorum sinks so the packet loop can stop and flush.
pub trait ServerConsumer: ServerSink {
    /// True once the run should end.
    fn done(&self) -> bool {
        false
    }
    /// Called after each packet of a live capture.
    fn flush(&mut self) {}
}

impl<C: Consumer, S: ServerConsumer> Driven for EnsembleHandler<C, S> {
    fn done(&self) -> bool {
        self.client.sink.done() || self.sink.done()
    }
    fn flush(&mut self) {
        self.client.sink.flush();
        ServerConsumer::flush(&mut self.sink);
    }
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

/// The live capture filter: the mode's ports (all TCP in auto mode), hosts, the user's filter.
pub fn bpf(input: &InputArgs, spec: &EnsembleSpec) -> String {
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
    if let Some(user) = &input.filter {
        f.push_str(&format!(" and ({user})"));
    }
    f
}

/// Host names in configurations resolve through the system resolver (cached per name).
fn dns(host: &str) -> Vec<std::net::IpAddr> {
    let mut ips: Vec<_> = (host, 0)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default();
    ips.sort();
    ips.dedup();
    ips
}

/// Builds the ensemble handler for `mode` around a client sink and a server sink.
pub fn handler<C: Consumer, S: ServerConsumer>(
    input: &InputArgs,
    p: &ProtocolArgs,
    mode: Mode,
    client_sink: C,
    sink: S,
) -> Result<(EnsembleHandler<C, S>, String)> {
    let spec = ensemble_spec(input, p, mode)?;
    let filter = bpf(input, &spec);
    let client = ClientHandler::new(ServerSpec::default(), input.client_config(), client_sink);
    let mut h = EnsembleHandler::new(spec, client, sink);
    h.set_resolver(Box::new(dns));
    Ok((h, filter))
}

/// `zkscope dump --protocol fle|zab|auto`.
pub fn dump(args: DumpArgs) -> Result<ExitCode> {
    let mode = match args.protocols.protocol {
        Protocol::Fle => Mode::Fle,
        Protocol::Zab => Mode::Zab,
        Protocol::Auto => Mode::Auto,
        Protocol::Client => bail!("internal: client protocol goes through the client printer"),
    };
    let out = SharedOut::stdout();
    let time = TimeFormat {
        local: args.local_time,
        date: args.date,
    };
    let client = Printer::new(
        out.clone(),
        PrintOptions {
            format: args.format,
            unpaired: args.unpaired,
            slow: args.slow,
            show: args.show,
            include_pings: args.include_pings,
            colors: args.colors,
            dump_bad: args.dump_bad_packet,
            time,
        },
    );
    let server = ServerPrinter::new(
        out,
        ServerPrintOptions {
            format: args.format,
            include_pings: args.include_pings,
            show: args.show,
            dump_bad: args.dump_bad_packet,
            discoveries: true,
            time,
        },
    );
    let (h, filter) = handler(&args.input, &args.protocols, mode, client, server)?;
    let mut d = args.input.drive(h, filter)?;
    d.handler.client.sink.flush();
    ServerConsumer::flush(&mut d.handler.sink);
    let error = d
        .handler
        .client
        .sink
        .error
        .take()
        .or_else(|| d.handler.sink.error.take());
    let broken_pipe = matches!(&error, Some(e) if e.kind() == io::ErrorKind::BrokenPipe);
    if !broken_pipe && !args.input.quiet {
        print_summary(&d.loop_stats, &d.tcp, &d.handler.client.stats, d.live);
        print_ensemble_summary(&d.handler.stats, d.handler.discovered());
    }
    if let Some(e) = error {
        if !broken_pipe {
            return Err(e).context("cannot write output");
        }
    }
    if let Some(e) = d.read_error {
        return Err(e.into());
    }
    Ok(ExitCode::SUCCESS)
}

/// The election/quorum lines of the end-of-run summary (stderr).
pub fn print_ensemble_summary(s: &EnsembleStats, discovered: &[Discovery]) {
    let mut e = io::stderr().lock();
    let _ = writeln!(
        e,
        "election    {} connections, {} initial messages, {} notifications, {} auth packets; lost: {} undecodable, {} cut by gaps, {} bad length prefixes, {} bytes skipped, {} partial messages dropped",
        s.fle_connections, s.fle_initials, s.fle_notifications, s.fle_auth_packets,
        s.fle_undecodable, s.fle_cut_frames, s.fle_bad_lengths, s.fle_skipped_bytes, s.fle_partial_dropped
    );
    let _ = writeln!(
        e,
        "quorum      {} connections, {} packets ({} pings), {} auth packets, {} snapshots skipped over ({} bytes); lost: {} undecodable, {} cut by gaps, {} bytes skipped, {} partial packets dropped ({} bytes), {} snapshots not followed",
        s.zab_connections, s.zab_packets, s.zab_pings, s.zab_auth_packets, s.zab_snapshots, s.zab_snapshot_bytes,
        s.zab_undecodable, s.zab_cut_packets, s.zab_skipped_bytes, s.zab_partial_dropped, s.zab_partial_dropped_bytes, s.zab_snapshots_lost
    );
    let _ = writeln!(
        e,
        "recognition {} connections recognised from their bytes, {} not recognised as ZooKeeper ({} bytes; {} of them TLS on ports never identified), {} without data, {} TLS election/quorum connections, {} endpoint conflicts; {} gaps in election/quorum connections ({} bytes lost)",
        s.recognised, s.unrecognised_connections, s.unrecognised_bytes, s.unrecognised_tls, s.empty_connections, s.tls_connections, s.endpoint_conflicts,
        s.tcp_gaps, s.tcp_bytes_lost
    );
    if !discovered.is_empty() {
        let list: Vec<String> = discovered
            .iter()
            .map(|d| {
                let sid = d
                    .endpoint
                    .sid
                    .map(|s| format!(" sid={s}"))
                    .unwrap_or_default();
                format!(
                    "{} {}{sid} ({})",
                    d.endpoint.proto.as_str(),
                    d.addr,
                    d.endpoint.source.as_str()
                )
            })
            .collect();
        let _ = writeln!(e, "discovered  {}", list.join(", "));
    }
}

//! `zkscope dump`: decoded messages as text or JSON lines.

use std::io::{self, BufWriter};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use zkscope_capture::ensemble::Mode;
use zkscope_capture::pipeline::Consumer;

use crate::args::{InputArgs, Protocol, ProtocolArgs, TimeArgs};
use crate::commands::stats::{dump_compat, CompatArgs};
use crate::input::{run_client, run_ensemble};
use crate::output::client::{PrintOptions, Printer};
use crate::output::end::finish;
use crate::output::ensemble::{ServerPrintOptions, ServerPrinter, SharedOut};
use crate::output::Format;

/// Options of `zkscope dump`.
#[derive(Debug, Args)]
#[command(
    after_help = concat!(
        "Examples:\n  zkscope dump -r capture.pcap\n  zkscope dump -i any --port 2181 --format json | jq .\n  tcpdump -i eth0 -w - port 2181 | zkscope dump -r -\n  zkscope dump -i any -w session.pcap port 2181   # keep the packets too\n\n",
        exit_status_help!()
    )
)]
pub struct DumpArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub protocols: ProtocolArgs,

    /// Print messages in arrival order instead of each request with its reply.
    #[arg(long, help_heading = "Output")]
    pub unpaired: bool,

    /// A slow-request log: print only requests whose reply took longer than this (e.g. 50ms),
    /// each with its reply.
    #[arg(long, value_name = "DURATION", value_parser = zkscope_analysis::fmt::parse_duration, help_heading = "Output")]
    pub slow: Option<i64>,

    /// Show pings (text output hides them; JSON always has every message).
    #[arg(short = 'p', long = "include-pings", help_heading = "Selection")]
    pub include_pings: bool,

    /// Stop after N lines (JSON: objects), like tcpdump's -c.
    #[arg(short = 'c', long = "count", value_name = "N", help_heading = "Output")]
    pub count: Option<u64>,

    /// Colours in text output: error replies red, slow ones (--slow, else 100ms) yellow.
    /// auto: when standard output is a terminal and NO_COLOR is not set.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        value_name = "WHEN",
        help_heading = "Output"
    )]
    pub color: ColorWhen,

    /// Also give each connection a stable colour (when colours are on).
    #[arg(long = "conn-colors", alias = "colors", help_heading = "Output")]
    pub conn_colors: bool,

    /// Hex-dump frames that could not be decoded.
    #[arg(long = "dump-bad-packet", help_heading = "Output")]
    pub dump_bad_packet: bool,

    /// Every decoded field of each message, one per line (Stat, ACLs, children, multi ops,
    /// znode data…).
    #[arg(long, help_heading = "Output")]
    pub show: bool,

    /// --show: znode data bytes shown at most (text when it is text, else hex).
    #[arg(
        long = "max-data",
        value_name = "BYTES",
        default_value_t = 256,
        help_heading = "Output"
    )]
    pub max_data: usize,

    /// Output format.
    #[arg(long, value_enum, default_value = "text", help_heading = "Output")]
    pub format: Format,

    #[command(flatten)]
    pub time: TimeArgs,

    #[command(flatten)]
    pub compat: CompatArgs,
}

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether to colour standard output.
    pub fn on(self) -> bool {
        use std::io::IsTerminal;
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

impl DumpArgs {
    fn print_options(&self) -> PrintOptions {
        PrintOptions {
            format: self.format,
            unpaired: self.unpaired,
            slow: self.slow,
            show: self.show,
            include_pings: self.include_pings,
            colors: self.conn_colors,
            highlight: self.format == Format::Text && self.color.on(),
            limit: self.count.filter(|&n| n > 0),
            max_data: self.max_data,
            dump_bad: self.dump_bad_packet,
            time: self.time.format(),
        }
    }
}

/// Runs `zkscope dump`.
pub fn run(args: DumpArgs) -> Result<ExitCode> {
    let mode = match args.protocols.protocol {
        Protocol::Client => None,
        Protocol::Fle => Some(Mode::Fle),
        Protocol::Zab => Some(Mode::Zab),
        Protocol::Auto => Some(Mode::Auto),
    };
    if let Some(mode) = mode {
        return dump_ensemble(args, mode);
    }
    if args.compat.active() {
        return dump_compat(&args.input, &args.compat, args.include_pings);
    }
    let stdout = io::stdout();
    let printer = Printer::new(
        BufWriter::with_capacity(1 << 16, stdout.lock()),
        args.print_options(),
    );
    let mut run = run_client(&args.input, printer)?;
    run.consumer.flush();
    let broken_pipe =
        matches!(&run.consumer.error, Some(e) if e.kind() == io::ErrorKind::BrokenPipe);
    let end = args
        .input
        .end("dump", args.input.expect_client(true), args.include_pings);
    let code = finish(&mut run, &end, broken_pipe)?;
    if let Some(e) = run.consumer.error.take() {
        if !broken_pipe {
            return Err(e).context("cannot write output");
        }
    }
    Ok(code)
}

/// `zkscope dump --protocol fle|zab|auto`: client messages and election/quorum messages go to
/// two printers sharing one output buffer, in arrival order.
fn dump_ensemble(args: DumpArgs, mode: Mode) -> Result<ExitCode> {
    let out = SharedOut::stdout();
    let client = Printer::new(out.clone(), args.print_options());
    let server = ServerPrinter::new(
        out,
        ServerPrintOptions {
            format: args.format,
            include_pings: args.include_pings,
            show: args.show,
            dump_bad: args.dump_bad_packet,
            discoveries: true,
            time: args.time.format(),
        },
    );
    let mut run = run_ensemble(&args.input, &args.protocols, mode, (client, server))?;
    let (client, server) = &mut run.consumer;
    client.flush();
    Consumer::flush(server);
    let error = client.error.take().or_else(|| server.error.take());
    let broken_pipe = matches!(&error, Some(e) if e.kind() == io::ErrorKind::BrokenPipe);
    let end = args.input.end(
        "dump",
        args.input.expect(&args.protocols, true),
        args.include_pings,
    );
    let code = finish(&mut run, &end, broken_pipe)?;
    if let Some(e) = error {
        if !broken_pipe {
            return Err(e).context("cannot write output");
        }
    }
    Ok(code)
}

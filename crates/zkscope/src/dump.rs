//! `zkscope dump`: decoded messages as text or JSON lines.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crate::input::{Consumer, InputArgs};
use crate::print::{Format, PrintOptions, Printer};
use crate::timefmt::TimeFormat;

/// Options of `zkscope dump`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  zkscope dump -r capture.pcap\n  zkscope dump -i any --port 2181 --format json | jq .\n  tcpdump -i eth0 -w - port 2181 | zkscope dump -r -"
)]
#[command(next_help_heading = "Output")]
pub struct DumpArgs {
    #[command(flatten)]
    pub input: InputArgs,

    // Issue 3: --protocol client|fle|zab|auto, --fle-port, --zab-port.
    #[command(flatten)]
    pub protocols: crate::server::ProtocolArgs,

    /// Print messages in arrival order instead of each request with its reply.
    #[arg(long)]
    pub unpaired: bool,

    /// A slow-request log: print only requests whose reply took longer than this (e.g. 50ms),
    /// each with its reply.
    #[arg(long, value_name = "DURATION", value_parser = zkscope_analysis::fmt::parse_duration)]
    pub slow: Option<i64>,

    /// Show pings (text output hides them; JSON always has every message).
    #[arg(short = 'p', long = "include-pings")]
    pub include_pings: bool,

    /// Give each connection a stable colour.
    #[arg(short = 'c', long)]
    pub colors: bool,

    /// Hex-dump frames that could not be decoded.
    #[arg(long = "dump-bad-packet")]
    pub dump_bad_packet: bool,

    /// Every decoded field of each message, one per line (Stat, ACLs, children, multi ops…).
    #[arg(long)]
    pub show: bool,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// Print timestamps in the local time zone instead of UTC.
    #[arg(long = "local-time")]
    pub local_time: bool,

    /// Print the date with each timestamp.
    #[arg(long)]
    pub date: bool,

    #[command(flatten)]
    pub compat: crate::stats::CompatArgs,
}

impl<W: Write> Consumer for Printer<W> {
    fn done(&self) -> bool {
        self.error.is_some()
    }
    fn flush(&mut self) {
        Printer::flush(self);
    }
}

pub fn run(args: DumpArgs) -> Result<ExitCode> {
    // Issue 3: election/quorum/auto decoding has its own handler and printers.
    if args.protocols.protocol != crate::server::Protocol::Client {
        return crate::server::dump(args);
    }
    if args.compat.active() {
        return crate::stats::dump_compat(&args.input, &args.compat, args.include_pings);
    }
    let stdout = io::stdout();
    let opts = PrintOptions {
        format: args.format,
        unpaired: args.unpaired,
        slow: args.slow,
        show: args.show,
        include_pings: args.include_pings,
        colors: args.colors,
        dump_bad: args.dump_bad_packet,
        time: TimeFormat {
            local: args.local_time,
            date: args.date,
        },
    };
    let printer = Printer::new(BufWriter::with_capacity(1 << 16, stdout.lock()), opts);
    let mut outcome = args.input.run(printer)?;
    outcome.sink.flush();
    let broken_pipe =
        matches!(&outcome.sink.error, Some(e) if e.kind() == io::ErrorKind::BrokenPipe);
    if !broken_pipe {
        outcome.print_summary(&args.input);
    }
    if let Some(e) = outcome.sink.error.take() {
        if !broken_pipe {
            return Err(e).context("cannot write output");
        }
    }
    if let Some(e) = outcome.read_error {
        return Err(e.into());
    }
    Ok(ExitCode::SUCCESS)
}

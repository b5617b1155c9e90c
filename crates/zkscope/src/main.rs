//! `zkscope`: see what happens inside Apache ZooKeeper from the outside.
//!
//! The binary is the command line and the printers. Packets become messages in
//! `zkscope-capture` (its `pipeline` runs the loop), messages become reports in
//! `zkscope-analysis`; here:
//!
//! - `args`: option groups shared by several commands (input/selection, protocols, time);
//! - `input`: runs the pipeline for a command (Ctrl-C, the source, the progress bar);
//! - `commands`: one module per subcommand, composing consumers and printing their results;
//! - `output`: printers (text, JSON lines, `--show` fields, time, reports, the summary);
//! - `replay`: `zkscope replay`'s plan, replayer (raw jute over tokio) and report.

/// `eprintln!` that tolerates a closed stderr (`… 2>&1 | true` must not end in a panic).
macro_rules! note {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// The exit statuses of the commands that read traffic, for their `--help` (a literal, for
/// `concat!`; `output::end::NO_TRAFFIC` is the 3).
macro_rules! exit_status_help {
    () => {
        "Exit status: 0 done; 2 an error (options, input, output); 3 no ZooKeeper traffic \
decoded (stderr says how many TCP packets there were, the busiest TCP ports, and which option \
selects them); 130 a second Ctrl-C."
    };
}

mod args;
mod commands;
mod extras;
mod input;
mod output;
mod replay;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use commands::{digest, dump, elections, monitor, replay as replay_cmd, serve, stats, top};

/// See what happens inside Apache ZooKeeper from the outside.
///
/// zkscope decodes ZooKeeper's client, leader-election and quorum protocols from live traffic
/// (libpcap) or from pcap/pcapng files: who asks what, how fast the ensemble answers, how it
/// elects and replicates; and it watches znodes against a spec.
#[derive(Debug, Parser)]
#[command(
    name = "zkscope",
    version = extras::VERSION,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode ZooKeeper client traffic: one line per request with its reply and latency.
    Dump(dump::DumpArgs),
    /// Count calls (requests with their outcome) grouped by path, type, client, session, …
    Count(stats::StatsArgs),
    /// Latency percentiles of calls (HDR histograms) grouped by path, type, client, …
    Latency(stats::StatsArgs),
    /// A pt-query-digest-style report: request classes ranked by response time, with their
    /// metrics, clients, errors and latency histograms; sessions, watches, four-letter words.
    Digest(digest::DigestArgs),
    /// Leader elections told as a story: rounds, votes, the leader, how long it took.
    Elections(elections::ElectionsArgs),
    /// Watch znodes against a YAML spec and alert (zk_monitor's replacement): clustered
    /// agents, one alerts; HTTP /status, /metrics, /health.
    Monitor(monitor::MonitorArgs),
    /// The stats daemon: zktraffic's per-path/IP/auth JSON endpoints and Prometheus metrics
    /// over HTTP, from a live capture or a replayed file.
    Serve(serve::ServeArgs),
    /// A live top-like screen: who calls what, rates over 2/10/40 s, errors, latencies,
    /// sessions, watches, the ensemble's roles; `--batch` prints plain blocks.
    Top(top::TopArgs),
    /// Re-issue captured client traffic against another ensemble and report what answers
    /// differently or slower (errors, latency, notifications; --compare two ensembles).
    Replay(replay_cmd::ReplayArgs),
    /// Shell completions: `zkscope completions bash|zsh|fish|elvish|powershell`.
    Completions(extras::CompletionsArgs),
    /// The man page (roff) on stdout, or every page into a directory.
    Man(extras::ManArgs),
}

fn main() -> ExitCode {
    // `--version` also names the libpcap this binary runs with (known only at run time)
    let long_version: &'static str = Box::leak(extras::long_version().into_boxed_str());
    let matches = Cli::command().long_version(long_version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let lists = match &cli.command {
        Command::Dump(a) => a.input.list_interfaces,
        Command::Count(a) | Command::Latency(a) => a.input.list_interfaces,
        Command::Digest(a) => a.input.list_interfaces,
        Command::Elections(a) => a.input.list_interfaces,
        Command::Top(a) => a.input.list_interfaces,
        _ => false,
    };
    if lists {
        return finish(extras::list_interfaces());
    }
    let result = match cli.command {
        Command::Dump(args) => dump::run(args),
        Command::Count(args) => stats::run(args, stats::Mode::Count),
        Command::Latency(args) => stats::run(args, stats::Mode::Latency),
        Command::Digest(args) => digest::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Elections(args) => elections::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Top(args) => top::run(args),
        Command::Replay(args) => replay_cmd::run(args),
        Command::Completions(args) => extras::completions::<Cli>(args),
        Command::Man(args) => extras::man::<Cli>(args),
    };
    finish(result)
}

fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            note!("zkscope: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

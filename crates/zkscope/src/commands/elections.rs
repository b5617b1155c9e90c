//! `zkscope elections`: the story of each leader election, from the election (FLE) and
//! quorum (ZAB) traffic. The rounds are built by `zkscope_analysis::elections::Tracker`; this
//! module prints them (as they close on a live capture, or at the end).

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use zkscope_analysis::elections::{ms, round_json, Round, RoundJson, Tracker};
use zkscope_capture::ensemble::Mode;
use zkscope_capture::packet::Timestamp;
use zkscope_capture::pipeline::{Consumer, Event};

use crate::args::{InputArgs, Protocol, ProtocolArgs, TimeArgs};
use crate::input::run_ensemble;
use crate::output::end::{finish, Expect};
use crate::output::time::TimeFormat;
use crate::output::Format;

/// Options of `zkscope elections`.
#[derive(Debug, Args)]
#[command(
    after_help = concat!(
        "Examples:\n  zkscope elections -r ensemble.pcap\n  zkscope elections -i lo --format json | jq '.[] | {leader, start_ts, end_ts}'\n\n",
        exit_status_help!()
    )
)]
pub struct ElectionsArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// An election (FLE) port (repeatable; discovered from the traffic otherwise).
    #[arg(
        long = "fle-port",
        value_name = "PORT",
        help_heading = "Ensemble protocols"
    )]
    pub fle_ports: Vec<u16>,

    /// A quorum (ZAB) port (repeatable; discovered from the traffic otherwise).
    #[arg(
        long = "zab-port",
        value_name = "PORT",
        help_heading = "Ensemble protocols"
    )]
    pub zab_ports: Vec<u16>,

    /// Output format: text, or a JSON array of rounds.
    #[arg(long, value_enum, default_value = "text", help_heading = "Output")]
    pub format: Format,

    #[command(flatten)]
    pub time: TimeArgs,
}

/// The tracker, printing each round as soon as it closes (live text output).
struct Elections {
    tracker: Tracker,
    /// Rounds already printed.
    printed: usize,
    live_text: Option<(TimeFormat, BufWriter<io::Stdout>)>,
}

impl Elections {
    fn print_closed(&mut self) {
        let Some((time, out)) = self.live_text.as_mut() else {
            return;
        };
        while let Some(r) = self.tracker.rounds().get(self.printed) {
            if !r.closed {
                break;
            }
            let mut s = String::new();
            round_text(&mut s, self.printed + 1, r, *time);
            let _ = out.write_all(s.as_bytes());
            let _ = out.flush();
            self.printed += 1;
        }
    }
}

impl Consumer for Elections {
    fn event(&mut self, ev: &Event<'_, '_>) {
        self.tracker.event(ev);
        if self.live_text.is_some() {
            self.print_closed();
        }
    }
}

/// Round `n` (from 1) as text.
fn round_text(out: &mut String, n: usize, r: &Round, time: TimeFormat) {
    let ts = |out: &mut String, t: Timestamp| time.write(out, t);
    let end = r.end();
    let _ = write!(out, "round {n} ({}): ", r.kind());
    ts(out, r.start);
    out.push_str(" -> ");
    ts(out, end);
    let _ = write!(out, " ({:.1}ms)", ms(r.start, end));
    match r.leader() {
        Some(l) => {
            let _ = write!(out, " leader {l}");
        }
        None => out.push_str(" no leader"),
    }
    if let Some(e) = r.epoch() {
        let _ = write!(out, ", election epoch {e}");
    }
    if let Some(e) = r.zab_epoch {
        let _ = write!(out, ", new epoch {e}");
    }
    out.push('\n');
    let list =
        |s: &mut dyn Iterator<Item = i64>| s.map(|v| v.to_string()).collect::<Vec<_>>().join(",");
    let observers = if r.observers.is_empty() {
        String::new()
    } else {
        format!(", observers {}", list(&mut r.observers.iter().copied()))
    };
    let _ = writeln!(
        out,
        "  participants {}{observers} (looking {}); quorum {} of {}",
        list(&mut r.participants()),
        list(&mut r.looking.iter().copied()),
        r.quorum(),
        r.voters.map_or_else(|| "?".into(), |v| v.to_string())
    );
    for (t, sid, v) in &r.history {
        out.push_str("  ");
        ts(out, *t);
        if v.leader == i64::MIN {
            // A non-voting member's initial vote: no candidate, zxid and epoch Long.MIN_VALUE.
            let _ = writeln!(
                out,
                " +{:.1}ms server {sid} {} votes for no one (a non-voting member), election epoch {}",
                ms(r.start, *t),
                v.state,
                v.election_epoch
            );
            continue;
        }
        let _ = writeln!(
            out,
            " +{:.1}ms server {sid} {} votes {} (zxid {} ({}), peer epoch {}, election epoch {})",
            ms(r.start, *t),
            v.state,
            v.leader,
            v.zxid,
            v.zxid.epoch_counter(),
            v.peer_epoch,
            v.election_epoch
        );
    }
    if let Some((t, l)) = r.agreed {
        out.push_str("  quorum agreed on ");
        let _ = write!(out, "{l} at ");
        ts(out, t);
        let _ = writeln!(out, " (+{:.1}ms)", ms(r.start, t));
    }
    for (sid, (t, how)) in &r.settled {
        let _ = write!(out, "  server {sid} settled ({how}) at ");
        ts(out, *t);
        let _ = writeln!(out, " (+{:.1}ms)", ms(r.start, *t));
    }
    let finals: Vec<String> = r
        .votes
        .iter()
        .map(|(s, v)| format!("{s}->{}", v.leader))
        .collect();
    let _ = writeln!(out, "  final votes {}", finals.join(" "));
    for (sid, t) in &r.uptodate {
        let _ = write!(out, "  server {sid} up to date at ");
        ts(out, *t);
        let _ = writeln!(out, " ({:.1}ms after the start)", ms(r.start, *t));
    }
    if !r.all_settled() {
        out.push_str("  (not every LOOKING server was seen settling)\n");
    }
}

/// `zkscope elections`.
pub fn run(args: ElectionsArgs) -> Result<ExitCode> {
    let time = args.time.format();
    let mut elections = Elections {
        tracker: Tracker::default(),
        printed: 0,
        live_text: None,
    };
    if args.input.iface.is_some() && args.format == Format::Text {
        elections.live_text = Some((time, BufWriter::new(io::stdout())));
    }
    let p = ProtocolArgs {
        protocol: Protocol::Auto,
        fle_ports: args.fle_ports.clone(),
        zab_ports: args.zab_ports.clone(),
    };
    let mut run = run_ensemble(&args.input, &p, Mode::Auto, elections)?;
    let elections = &mut run.consumer;
    elections.tracker.finish();
    elections.print_closed();
    let tracker = &elections.tracker;
    let mut out = io::stdout().lock();
    let r = match args.format {
        Format::Json => {
            let rounds: Vec<RoundJson> = tracker
                .rounds()
                .iter()
                .enumerate()
                .map(|(i, r)| round_json(i + 1, r))
                .collect();
            serde_json::to_writer(&mut out, &rounds)
                .map_err(io::Error::from)
                .and_then(|_| out.write_all(b"\n"))
        }
        Format::Text => {
            let mut s = String::new();
            for (i, r) in tracker.rounds().iter().enumerate().skip(elections.printed) {
                round_text(&mut s, i + 1, r, time);
            }
            if tracker.rounds().is_empty() {
                s.push_str("no election seen\n");
            }
            out.write_all(s.as_bytes())
        }
    };
    let r = r.and_then(|_| out.flush());
    if let Err(e) = r {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e).context("cannot write output");
        }
    }
    let unknown = (tracker.unknown_senders > 0).then(|| {
        format!(
            "elections   {} notifications from servers whose id is unknown were left out",
            tracker.unknown_senders
        )
    });
    let mut end = args.input.end("elections", Expect::Elections, false);
    end.note = unknown.as_deref();
    finish(&mut run, &end, false)
}

//! How a run ends, the same way in every command that reads traffic: the "no ZooKeeper traffic"
//! note and its exit status, the end-of-run summary (text or JSON), the `-w` file, errors.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use zkscope_capture::ensemble::Mode;
use zkscope_capture::pipeline::{Counters, Finished};
use zkscope_capture::ports::PortTally;

use super::summary::{print_ensemble_summary, print_summary, requests};

/// Exit status of a run that decoded none of the traffic it looked for.
pub const NO_TRAFFIC: u8 = 3;

/// Busiest ports named in the note.
const TOP_PORTS: usize = 5;

/// `--summary-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SummaryFormat {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON object, the last line of stderr.
    Json,
}

/// What a command looks for, to say so when it found none of it.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The client protocol on the selected endpoints (`selection`: `--port 2181`).
    Client {
        /// The selection, as options.
        selection: String,
        /// The selected ports.
        ports: Vec<u16>,
        /// The command has `--protocol` (else `zkscope dump --protocol auto` is suggested).
        has_protocol: bool,
    },
    /// `--protocol fle|zab|auto`.
    Ensemble {
        /// The mode.
        mode: Mode,
        /// The selection, as options.
        selection: String,
        /// The selected ports (none in auto mode).
        ports: Vec<u16>,
    },
    /// Election or quorum traffic (`zkscope elections`).
    Elections,
}

/// How a command ends its run.
#[derive(Debug)]
pub struct End<'a> {
    /// The command's name, in the JSON summary.
    pub command: &'static str,
    /// What it looked for.
    pub expect: Expect,
    /// `-p`: pings are requests.
    pub include_pings: bool,
    /// The command's own note (what a table left out), before the summary.
    pub note: Option<&'a str>,
    /// `-q`: no summary (the no-traffic note is still written).
    pub quiet: bool,
    /// `--summary-format`.
    pub format: SummaryFormat,
    /// `-w FILE`.
    pub written: Option<PathBuf>,
}

/// Whether the run decoded what it looked for.
pub fn found(expect: &Expect, c: &Counters) -> bool {
    let m = &c.client;
    // TLS on a ZooKeeper port is ZooKeeper traffic, shown as such though not readable
    let client = m.requests
        + m.replies
        + m.events
        + m.connects
        + m.connect_replies
        + m.four_letter_words
        + m.tls_connections
        > 0;
    let ensemble = c
        .ensemble
        .as_ref()
        // TLS election/quorum connections (quorum TLS) are the ensemble's, though not readable
        .is_some_and(|e| {
            e.fle_initials + e.fle_notifications + e.zab_packets + e.tls_connections > 0
        });
    match expect {
        Expect::Client { .. } => client,
        Expect::Ensemble { .. } => client || ensemble,
        Expect::Elections => ensemble,
    }
}

/// The note of a run that decoded nothing: what was read, where the TCP traffic was, the fix.
pub fn no_traffic_note(expect: &Expect, c: &Counters, ports: &PortTally) -> String {
    let tcp = c.tcp.packets;
    let what = match expect {
        Expect::Elections => "no election or quorum traffic decoded",
        _ => "no ZooKeeper traffic decoded",
    };
    let mut n = format!("zkscope: {what} (exit status {NO_TRAFFIC}): ");
    if c.packets.packets == 0 {
        n.push_str("no packets were read");
        if c.live.is_some() {
            n.push_str(" (nothing matched the capture filter on this interface)");
        }
        n.push('.');
        return n;
    }
    if tcp == 0 {
        let _ = write!(n, "{} packets, none of them TCP.", c.packets.packets);
        return n;
    }
    // segments of the selected ports are tallied too when the tracker ignored them (a pure
    // ACK of a connection it has not seen start): they are not "elsewhere"
    let chosen: &[u16] = match expect {
        Expect::Client { ports, .. } | Expect::Ensemble { ports, .. } => ports,
        Expect::Elections => &[],
    };
    let on_chosen: u64 = chosen.iter().map(|p| ports.get(*p)).sum();
    let selected = tcp.saturating_sub(ports.total().saturating_sub(on_chosen));
    // TLS on ports never identified: maybe an encrypted ensemble (sslQuorum)
    let tls = c.ensemble.as_ref().map_or(0, |e| e.unrecognised_tls);
    let tls_hint = (tls > 0).then(|| {
        format!(
            "\nzkscope: {tls} connections carry TLS on ports never identified: an encrypted \
             ensemble (sslQuorum) cannot be decoded; --fle-port/--zab-port name its \
             connections as such."
        )
    });
    match expect {
        Expect::Client { selection, .. } | Expect::Ensemble { selection, .. } if selected == 0 => {
            let _ = write!(
                n,
                "{tcp} TCP packets, none of them on the selected ports ({selection})."
            );
        }
        Expect::Client { selection, .. } | Expect::Ensemble { selection, .. } => {
            let _ = write!(
                n,
                "{tcp} TCP packets, {selected} of them on the selected ports ({selection}), but \
                 none decoded as ZooKeeper"
            );
            if c.client.tls_connections > 0 {
                let _ = write!(n, " ({} connections carry TLS)", c.client.tls_connections);
            }
            n.push('.');
        }
        Expect::Elections
            if found(
                &Expect::Client {
                    selection: String::new(),
                    ports: Vec::new(),
                    has_protocol: false,
                },
                c,
            ) =>
        {
            let _ = write!(
                n,
                "{tcp} TCP packets, client traffic only ({} requests): elections and the \
                 quorum talk between the servers, on their own ports (3888 and 2888 by \
                 default); capture where the servers are.",
                c.client.requests
            );
            // the busiest ports are the client ports already decoded: no port to suggest
            n.push_str(tls_hint.as_deref().unwrap_or_default());
            return n;
        }
        Expect::Elections => {
            let _ = write!(
                n,
                "{tcp} TCP packets, none recognised as leader election or quorum traffic."
            );
        }
    }
    if let Some(h) = &tls_hint {
        n.push_str(h);
    }
    let mut top = ports.top(TOP_PORTS + chosen.len());
    top.retain(|(p, _)| !chosen.contains(p));
    top.truncate(TOP_PORTS);
    if !top.is_empty() {
        let list: Vec<String> = top
            .iter()
            .map(|(p, k)| format!("{p} ({k} packets)"))
            .collect();
        let _ = write!(n, "\nzkscope: busiest TCP ports: {}.", list.join(", "));
    }
    let port = top
        .first()
        .map_or_else(|| "P".to_string(), |p| p.0.to_string());
    let auto = match expect {
        Expect::Client {
            has_protocol: false,
            ..
        } => "`zkscope dump --protocol auto`",
        _ => "--protocol auto",
    };
    if top.is_empty() && !matches!(expect, Expect::Elections) {
        // only the selected ports carried TCP: they are not ZooKeeper's (or not decodable)
        let _ = write!(
            n,
            "\nzkscope: no other TCP port was seen; is ZooKeeper elsewhere? {auto} finds it on \
             any port."
        );
        return n;
    }
    let fix = match expect {
        Expect::Client {
            has_protocol: true, ..
        } => format!(
            "select the ZooKeeper client port with --port {port}, or find ZooKeeper on any \
             port with --protocol auto"
        ),
        Expect::Client { .. } => format!(
            "select the ZooKeeper client port with --port {port}, or find ZooKeeper on any \
             port with `zkscope dump --protocol auto`"
        ),
        Expect::Ensemble {
            mode: Mode::Auto, ..
        }
        | Expect::Elections => format!(
            "if a port is ZooKeeper's, name it: --fle-port {port} (election), --zab-port \
             {port} (quorum), --port {port} (client)"
        ),
        Expect::Ensemble { mode, .. } => format!(
            "select the {} port with --port {port}, or find ZooKeeper on any port with \
             --protocol auto",
            if *mode == Mode::Fle {
                "election"
            } else {
                "quorum"
            }
        ),
    };
    let _ = write!(n, "\nzkscope: {fix}.");
    n
}

/// Ends a run: the no-traffic note, the command's note and the summary on stderr (unless the
/// output pipe was closed: `output_closed`), then the errors of `-w` and of the input. Returns
/// [`NO_TRAFFIC`] when nothing was decoded.
pub fn finish<C>(run: &mut Finished<C>, end: &End<'_>, output_closed: bool) -> Result<ExitCode> {
    let found = found(&end.expect, &run.counters);
    if !output_closed {
        let mut e = io::stderr().lock();
        let note = (!found).then(|| no_traffic_note(&end.expect, &run.counters, &run.ports));
        // the note ends the text (the last thing read); JSON is the last line for scripts
        if let (Some(n), SummaryFormat::Json) = (&note, end.format) {
            let _ = writeln!(e, "{n}");
        }
        match end.format {
            SummaryFormat::Text => {
                if let Some(n) = end.note.filter(|_| !end.quiet) {
                    let _ = writeln!(e, "{n}");
                }
                drop(e);
                if !end.quiet {
                    print_summary(&run.counters, end.include_pings);
                    if let Some(ens) = &run.counters.ensemble {
                        print_ensemble_summary(ens, &run.discovered);
                    }
                    if let (Some(path), Some((w, _))) = (&end.written, &run.writer) {
                        note!(
                            "written     {} packets to {}{}",
                            w.written(),
                            path.display(),
                            if w.skipped() > 0 {
                                format!(" ({} of another link type left out)", w.skipped())
                            } else {
                                String::new()
                            }
                        );
                    }
                }
                if let Some(n) = &note {
                    note!("{n}");
                }
            }
            SummaryFormat::Json if !end.quiet => {
                let v = summary_json(run, end, found, note.as_deref());
                let _ = writeln!(e, "{v}");
            }
            SummaryFormat::Json => {}
        }
    }
    if let Some((_, Some(err))) = run.writer.take() {
        return Err(err).context("cannot write the packets (-w)");
    }
    if let Some(e) = run.read_error.take() {
        return Err(e.into());
    }
    Ok(if found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NO_TRAFFIC)
    })
}

/// The summary as one JSON object: the counters (`packets`, `tcp`, `client`, `ensemble`,
/// `live`) as they are, and what the text says in words.
fn summary_json<C>(run: &Finished<C>, end: &End<'_>, found: bool, note: Option<&str>) -> Value {
    let c = &run.counters;
    let mut v = serde_json::to_value(c).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("command".into(), json!(end.command));
        m.insert(
            "requests".into(),
            json!({
                "counted": requests(&c.client, end.include_pings),
                "pings": c.client.pings,
                "pings_counted": end.include_pings,
                "connects": c.client.connects,
                "four_letter_words": c.client.four_letter_words,
            }),
        );
        m.insert("zookeeper_traffic".into(), json!(found));
        m.insert(
            "exit_status".into(),
            json!(if found { 0 } else { NO_TRAFFIC }),
        );
        let top: Vec<Value> = run
            .ports
            .top(TOP_PORTS)
            .iter()
            .map(|(p, n)| json!({"port": p, "packets": n}))
            .collect();
        m.insert("unselected_ports".into(), json!(top));
        m.insert("no_traffic_note".into(), json!(note));
        m.insert("note".into(), json!(end.note));
        m.insert("discovered".into(), json!(run.discovered));
        let written = match (&end.written, &run.writer) {
            (Some(p), Some((w, _))) => json!({
                "file": p.display().to_string(),
                "packets": w.written(),
                "skipped": w.skipped(),
            }),
            _ => Value::Null,
        };
        m.insert("written".into(), written);
    }
    v
}

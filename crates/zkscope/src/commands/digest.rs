//! `zkscope digest`: the report zookeeper-digest meant to be, in the form of pt-query-digest.
//!
//! An overall header, a profile of request classes (operation + normalised path) ranked by
//! total response time, a block per class, then sessions, watches and four-letter words. The
//! aggregation lives in [`zkscope_analysis::digest`] (and [`zkscope_analysis::quorum`] for the
//! ensemble); this module parses the options, runs them and prints `crate::output::digest`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use clap::Args;
use zkscope_analysis::digest::{Digest, DigestConfig, TimeBound};
use zkscope_analysis::fmt::parse_duration;
use zkscope_analysis::quorum::EnsembleDigest;
use zkscope_analysis::PathNorm;
use zkscope_capture::ensemble::Mode;
use zkscope_capture::packet::Timestamp;
use zkscope_capture::pipeline::Finished;

use crate::args::{InputArgs, Protocol, ProtocolArgs, WindowArgs};
use crate::input::{run_client, run_ensemble};
use crate::output::digest::{OrderBy, Report};
use crate::output::emit;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DigestFormat {
    /// pt-query-digest-style text.
    Text,
    /// One JSON object with the same sections.
    Json,
}

/// Options of `zkscope digest`.
#[derive(Debug, Args)]
#[command(
    after_help = concat!("A class is an operation and a normalised path: sequential suffixes \
fold to -N (lock-0000000012 → lock-N) and --aggregation-depth cuts paths. Pings are counted, \
not classified. V/M is the variance-to-mean ratio of the latency in milliseconds. \
With --protocol auto the report adds election rounds and quorum traffic (whole capture, \
--since/--until do not apply to them).\n\n\
Examples:\n  zkscope digest -r capture.pcap\n  \
zkscope digest -r ensemble.pcap --protocol auto\n  \
zkscope digest -r capture.pcap --order-by calls --limit 20 --aggregation-depth 2\n  \
zkscope digest -i any --duration 60s --format json\n  \
zkscope digest -r capture.pcap --since 10s --until '2026-11-22 16:05:00'\n\n",
    exit_status_help!()
))]
pub struct DigestArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub protocols: ProtocolArgs,

    /// Group paths by their first D components (0 = whole path).
    #[arg(
        long = "aggregation-depth",
        visible_alias = "depth",
        value_name = "D",
        default_value_t = 0,
        help_heading = "Grouping"
    )]
    pub aggregation_depth: usize,

    /// How paths fold into classes: all (numbers, sequential suffixes, UUIDs, hex ids, hosts
    /// and ports, HBase server names, Kafka topics, Solr collections… like pt-query-digest's
    /// fingerprints; each class says which rules folded it), sequential, or none.
    #[arg(long, value_enum, default_value = "all", help_heading = "Grouping")]
    pub fold: crate::commands::stats::FoldArg,

    /// Pings are a class too (otherwise only counted, in the header).
    #[arg(short = 'p', long = "include-pings", help_heading = "Selection")]
    pub include_pings: bool,

    /// Paths as they are (same as --fold none).
    #[arg(long = "no-fold-sequential", help_heading = "Grouping")]
    pub no_fold_sequential: bool,

    /// Your own folding rule, REGEX=REPLACEMENT (repeatable, applied first, in order; $1
    /// refers to a group): --normalize 'tenant-[^/]+=tenant-{t}'.
    #[arg(long, value_name = "REGEX=REPLACEMENT", value_parser = zkscope_analysis::UserRule::parse, help_heading = "Grouping")]
    pub normalize: Vec<zkscope_analysis::UserRule>,

    /// Classes with a detailed block (the profile lists the same; the rest is one MISC row).
    #[arg(long, value_name = "N", default_value_t = 10, help_heading = "Output")]
    pub limit: usize,

    /// Rank classes by this.
    #[arg(
        long = "order-by",
        value_enum,
        default_value = "total",
        help_heading = "Output"
    )]
    pub order_by: OrderBy,

    /// Distinct classes kept; later ones are folded into "(other)".
    #[arg(
        long = "max-classes",
        value_name = "N",
        default_value_t = 10_000,
        help_heading = "Grouping"
    )]
    pub max_classes: usize,

    /// Distinct clients, sessions and paths kept per counter; later ones are "(other)".
    #[arg(
        long = "max-values",
        value_name = "N",
        default_value_t = 1_000,
        help_heading = "Grouping"
    )]
    pub max_values: usize,

    #[command(flatten)]
    pub window: WindowArgs,

    /// Output format.
    #[arg(long, value_enum, default_value = "text", help_heading = "Output")]
    pub format: DigestFormat,
}

/// Parses a `--since/--until` value.
pub fn parse_time(s: &str) -> Result<TimeBound> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(TimeBound::At(Timestamp(
            d.timestamp_nanos_opt().unwrap_or(i64::MAX),
        )));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(TimeBound::At(Timestamp(
                d.and_utc().timestamp_nanos_opt().unwrap_or(i64::MAX),
            )));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let ns = d
            .and_hms_opt(0, 0, 0)
            .and_then(|d| d.and_utc().timestamp_nanos_opt())
            .unwrap_or(i64::MAX);
        return Ok(TimeBound::At(Timestamp(ns)));
    }
    // A bare number of 9 or more digits before the point: epoch seconds.
    if t.split('.').next().is_some_and(|i| i.len() >= 9) {
        if let Ok(secs) = t.parse::<f64>() {
            return Ok(TimeBound::At(Timestamp((secs * 1e9).round() as i64)));
        }
    }
    match parse_duration(t.trim_start_matches('+')) {
        Ok(ns) => Ok(TimeBound::After(ns)),
        Err(_) => bail!(
            "bad time {s:?} (a timestamp like 2026-11-22 16:05:00, epoch seconds, or a \
             duration after the start like 30s)"
        ),
    }
}

/// Runs `zkscope digest`.
pub fn run(mut args: DigestArgs) -> Result<ExitCode> {
    args.input.set_duration(args.window.duration);
    let cfg = DigestConfig {
        paths: PathNorm {
            depth: args.aggregation_depth,
            fold_sequential: false,
        },
        classes: crate::commands::stats::class_options(
            if args.no_fold_sequential {
                crate::commands::stats::FoldArg::None
            } else {
                args.fold
            },
            &args.normalize,
            args.aggregation_depth,
        ),
        max_classes: args.max_classes.max(1),
        max_values: args.max_values.max(1),
        since: args.window.since.as_deref().map(parse_time).transpose()?,
        until: args.window.until.as_deref().map(parse_time).transpose()?,
        duration_ns: args.window.duration.filter(|&d| d > 0),
        include_pings: args.include_pings,
        ..DigestConfig::default()
    };
    let mode = match args.protocols.protocol {
        Protocol::Client => None,
        Protocol::Fle => Some(Mode::Fle),
        Protocol::Zab => Some(Mode::Zab),
        Protocol::Auto => Some(Mode::Auto),
    };
    let (mut run, ensemble) = match mode {
        None => {
            let run = run_client(&args.input, Digest::new(cfg))?;
            (run, None)
        }
        Some(mode) => {
            let pair = (Digest::new(cfg), EnsembleDigest::default());
            let run = run_ensemble(&args.input, &args.protocols, mode, pair)?;
            let (digest, mut ensemble) = run.consumer;
            ensemble.tracker.finish();
            let run = Finished {
                consumer: digest,
                counters: run.counters,
                discovered: run.discovered,
                read_error: run.read_error,
                ports: run.ports,
                writer: run.writer,
            };
            (run, Some(ensemble))
        }
    };
    run.consumer.finish();
    let source = match (&args.input.read, &args.input.iface) {
        (Some(p), _) => format!("file {}", p.display()),
        (None, Some(i)) => format!("interface {i}"),
        _ => String::new(),
    };
    let mut report = Report::new(
        &run.consumer,
        args.order_by,
        args.limit,
        args.aggregation_depth,
        source,
    );
    report.ensemble = ensemble.as_ref();
    let text = match args.format {
        DigestFormat::Text => report.text(),
        DigestFormat::Json => {
            let mut s = serde_json::to_string(&report.json())?;
            s.push('\n');
            s
        }
    };
    let end = args.input.end(
        "digest",
        args.input.expect(&args.protocols, true),
        args.include_pings,
    );
    emit(&mut run, &end, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("30s").unwrap(), TimeBound::After(30_000_000_000));
        assert_eq!(
            parse_time("+2m").unwrap(),
            TimeBound::After(120_000_000_000)
        );
        assert_eq!(
            parse_time("1970-01-01 00:00:01").unwrap(),
            TimeBound::At(Timestamp(1_000_000_000))
        );
        assert_eq!(
            parse_time("1970-01-01T00:00:02Z").unwrap(),
            TimeBound::At(Timestamp(2_000_000_000))
        );
        assert_eq!(
            parse_time("1700000000.5").unwrap(),
            TimeBound::At(Timestamp(1_700_000_000_500_000_000))
        );
        assert!(parse_time("yesterday").is_err());
    }
}

//! `zkscope count` and `zkscope latency`: calls grouped by keys, with counts and latency
//! percentiles, printed as a table sized to the terminal, a JSON array or CSV. Also zk-dump's
//! `--count-requests` / `--measure-latency` for `zkscope dump` ([`dump_compat`]).
//!
//! A *call* is a request together with its outcome: its reply (error code, latency) or none.
//! Calls are counted when the outcome is known, so every row can be split by error. Connect
//! handshakes (op `connect`, answered by the ConnectResponse), pings, closes and four-letter
//! words (op = the command) are calls; watch notifications are added with `--events`.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use zkscope_analysis::compat::{latency_config, latency_table, ArrivalCounter, CompatGroup};
use zkscope_analysis::fmt::{fit_widths, human_us, parse_duration, truncate, truncate_middle};
use zkscope_analysis::{
    sort_rows, Aggregator, ClassOptions, Column, Config, Filter, Fold, GroupKey, Kinds, PathNorm,
    Row, Summary, UserRule,
};

use crate::args::{InputArgs, WindowArgs};
use crate::input::{run_client, run_client_sharded};
use crate::output::emit;

/// Distinct groups kept by the zk-dump compatible modes.
const COMPAT_MAX_GROUPS: usize = 100_000;

/// Most decoding threads chosen automatically.
const MAX_THREADS: usize = 8;

/// Table width when standard output is not a terminal (and `COLUMNS` is not set).
const DEFAULT_WIDTH: usize = 100;

/// Which table a run prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `zkscope count`.
    Count,
    /// `zkscope latency`.
    Latency,
}

/// Output format of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableFormat {
    /// An aligned table sized to the terminal.
    Text,
    /// A JSON array with one object per row.
    Json,
    /// CSV with a header line.
    Csv,
}

/// Options of `zkscope count` and `zkscope latency`.
#[derive(Debug, Args)]
#[command(
    after_help = concat!("Group keys: path, type, op, client, client_ip, session, auth, server, error.\n\
Sort columns: count, errors, no_reply, slow, avg, p50, p95, p99, p999, max, or a group key.\n\n\
Examples:\n  zkscope count -r capture.pcap --group-by type,path --top 20\n  \
zkscope latency -i any --duration 30s --group-by op --slow 50ms\n  \
zkscope latency -r capture.pcap --group-by client_ip --sort-by p99 --format json\n\n",
    exit_status_help!()
))]
pub struct StatsArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Group by these keys (comma-separated).
    #[arg(
        short = 'g',
        long = "group-by",
        value_name = "KEYS",
        value_delimiter = ',',
        default_value = "type",
        help_heading = "Grouping"
    )]
    pub group_by: Vec<GroupKey>,

    /// Group paths by their first D components (0 = whole path), like zktraffic.
    #[arg(
        long = "aggregation-depth",
        visible_alias = "depth",
        value_name = "D",
        default_value_t = 0,
        help_heading = "Grouping"
    )]
    pub aggregation_depth: usize,

    /// How paths fold into classes: none, sequential (lock-0000000012 → lock-{seq}), or all
    /// (numbers, UUIDs, hex ids, hosts and ports, Kafka topics…, like pt-query-digest).
    #[arg(
        long,
        value_enum,
        default_value = "sequential",
        help_heading = "Grouping"
    )]
    pub fold: FoldArg,

    /// Sequential folding is the default now; accepted for older command lines.
    #[arg(long = "fold-sequential", hide = true, help_heading = "Grouping")]
    pub fold_sequential: bool,

    /// Your own folding rule, REGEX=REPLACEMENT (repeatable, applied first, in order; $1
    /// refers to a group): --normalize 'tenant-[^/]+=tenant-{t}'.
    #[arg(long, value_name = "REGEX=REPLACEMENT", value_parser = UserRule::parse, help_heading = "Grouping")]
    pub normalize: Vec<UserRule>,

    /// Count watch notifications too (as op `notification`, type = the event type).
    #[arg(long, help_heading = "Grouping")]
    pub events: bool,

    /// Count pings too (left out by default, as in dump and digest).
    #[arg(short = 'p', long = "include-pings", help_heading = "Selection")]
    pub include_pings: bool,

    /// Pings are left out by default now; accepted for older command lines.
    #[arg(long = "no-pings", hide = true, conflicts_with = "include_pings")]
    pub no_pings: bool,

    /// Distinct groups kept; calls of later groups are counted in one "(other)" row.
    #[arg(
        long = "max-groups",
        value_name = "N",
        default_value_t = 100_000,
        help_heading = "Grouping"
    )]
    pub max_groups: usize,

    /// Count the calls slower than this in each row (e.g. 50ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Grouping")]
    pub slow: Option<i64>,

    #[command(flatten)]
    pub window: WindowArgs,

    /// Stop after N calls.
    #[arg(long, value_name = "N", help_heading = "Time window")]
    pub count: Option<u64>,

    /// Sort by this column [default: count for `count`, p99 for `latency`].
    #[arg(long = "sort-by", value_name = "COLUMN", help_heading = "Output")]
    pub sort_by: Option<String>,

    /// Only the first N rows.
    #[arg(long, value_name = "N", help_heading = "Output")]
    pub top: Option<usize>,

    /// Output format.
    #[arg(long, value_enum, default_value = "text", help_heading = "Output")]
    pub format: TableFormat,

    /// Decoding threads for a capture file, each owning some of its connections (0: one per
    /// core). The output is the same whatever the number; --count, --duration, --since and
    /// --until run on one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

/// A column of the printed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Key(usize, GroupKey),
    Count,
    Errors,
    NoReply,
    Avg,
    P50,
    P95,
    P99,
    P999,
    Max,
    Slow,
}

/// A cell's value.
enum Val<'a> {
    /// A key value; empty means the call had none (no path, no session yet).
    Str(&'a str),
    Int(u64),
    /// A latency in microseconds.
    Us(f64),
    None,
}

impl Col {
    fn name(self) -> &'static str {
        match self {
            Col::Key(_, k) => k.name(),
            Col::Count => "count",
            Col::Errors => "errors",
            Col::NoReply => "no_reply",
            Col::Avg => "avg_us",
            Col::P50 => "p50_us",
            Col::P95 => "p95_us",
            Col::P99 => "p99_us",
            Col::P999 => "p999_us",
            Col::Max => "max_us",
            Col::Slow => "slow",
        }
    }

    /// The text table's header.
    fn title(self) -> &'static str {
        let n = self.name();
        n.strip_suffix("_us").unwrap_or(n)
    }

    fn is_key(self) -> bool {
        matches!(self, Col::Key(..))
    }

    fn value<'a>(self, r: &Row<'a>) -> Val<'a> {
        let s: &Summary = &r.summary;
        let us = |v: Option<u64>| v.map_or(Val::None, |v| Val::Us(v as f64));
        match self {
            Col::Key(i, _) => Val::Str(r.values.get(i).copied().unwrap_or("")),
            Col::Count => Val::Int(s.count),
            Col::Errors => Val::Int(s.errors),
            Col::NoReply => Val::Int(s.no_reply),
            Col::Slow => Val::Int(s.slow),
            Col::Avg => s.avg_us.map_or(Val::None, Val::Us),
            Col::P50 => us(s.p50_us),
            Col::P95 => us(s.p95_us),
            Col::P99 => us(s.p99_us),
            Col::P999 => us(s.p999_us),
            Col::Max => us(s.max_us),
        }
    }
}

fn columns(mode: Mode, keys: &[GroupKey], slow: bool) -> Vec<Col> {
    let mut cols: Vec<Col> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| Col::Key(i, k))
        .collect();
    match mode {
        Mode::Count => cols.extend([Col::Count, Col::Errors, Col::NoReply]),
        Mode::Latency => cols.extend([
            Col::Count,
            Col::Avg,
            Col::P50,
            Col::P95,
            Col::P99,
            Col::P999,
            Col::Max,
        ]),
    }
    if slow {
        cols.push(Col::Slow);
    }
    cols
}

/// `--fold`: which built-in path folding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FoldArg {
    /// Paths as they are.
    None,
    /// ZooKeeper's sequential suffixes.
    Sequential,
    /// Every built-in rule (see `zkscope digest --help`).
    All,
}

impl FoldArg {
    pub(crate) fn fold(self) -> Fold {
        match self {
            FoldArg::None => Fold::None,
            FoldArg::Sequential => Fold::Sequential,
            FoldArg::All => Fold::All,
        }
    }
}

/// Path classes from the folding options (`None`: paths as they are).
pub(crate) fn class_options(
    fold: FoldArg,
    user: &[UserRule],
    depth: usize,
) -> Option<ClassOptions> {
    (fold != FoldArg::None || !user.is_empty()).then(|| ClassOptions {
        depth,
        fold: fold.fold(),
        user: user.to_vec(),
    })
}

/// Runs `zkscope count` or `zkscope latency`.
pub fn run(mut args: StatsArgs, mode: Mode) -> Result<ExitCode> {
    args.input.set_duration(args.window.duration);
    let mut keys: Vec<GroupKey> = Vec::new();
    for k in &args.group_by {
        if !keys.contains(k) {
            keys.push(*k);
        }
    }
    let sort = match &args.sort_by {
        Some(s) => Column::parse(s, &keys).map_err(|e| anyhow::anyhow!("--sort-by: {e}"))?,
        None => match mode {
            Mode::Count => Column::Count,
            Mode::Latency => Column::P99,
        },
    };
    let latency_col = matches!(
        sort,
        Column::Avg | Column::P50 | Column::P95 | Column::P99 | Column::P999 | Column::Max
    );
    if mode == Mode::Count && latency_col {
        bail!(
            "--sort-by {:?}: latency columns are in `zkscope latency`",
            args.sort_by.as_deref().unwrap_or("")
        );
    }
    if sort == Column::Slow && args.slow.is_none() {
        bail!("--sort-by slow needs --slow DURATION");
    }
    let cfg = Config {
        keys: keys.clone(),
        paths: PathNorm {
            depth: args.aggregation_depth,
            fold_sequential: false,
        },
        classes: class_options(args.fold, &args.normalize, args.aggregation_depth),
        max_groups: args.max_groups.max(1),
        latency: mode == Mode::Latency,
        slow_ns: args.slow,
        filter: Filter {
            pings: args.include_pings,
            events: args.events,
            ..Filter::default()
        },
        limit: args.count.filter(|&n| n > 0),
        duration_ns: args.window.duration.filter(|&d| d > 0),
        since: args
            .window
            .since
            .as_deref()
            .map(crate::digest::parse_time)
            .transpose()?,
        until: args
            .window
            .until
            .as_deref()
            .map(crate::digest::parse_time)
            .transpose()?,
        ..Config::default()
    };
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS)),
        n => n,
    };
    let whole_capture = cfg.limit.is_some()
        || cfg.duration_ns.is_some()
        || cfg.since.is_some()
        || cfg.until.is_some();
    let threads = if whole_capture { 1 } else { threads };
    let mut run = run_client_sharded(&args.input, threads, || Aggregator::new(&cfg))?;
    run.consumer.finish();
    let agg = &run.consumer;
    let table = agg.table();
    let mut rows = table.rows();
    sort_rows(&mut rows, sort);
    if let Some(n) = args.top {
        rows.truncate(n);
    }
    rows.extend(table.other_row());
    let cols = columns(mode, &keys, args.slow.is_some());
    let mut text = Vec::new();
    match args.format {
        TableFormat::Text => write_text(&mut text, &cols, &rows, term_width()),
        TableFormat::Json => write_json(&mut text, &cols, &rows),
        TableFormat::Csv => write_csv(&mut text, &cols, &rows),
    }?;
    let mut note = format!(
        "zkscope: {} calls in {} groups: {}",
        agg.recorded(),
        table.len(),
        kinds_text(&agg.kinds(), args.include_pings)
    );
    if agg.outside_window() > 0 {
        note.push_str(&format!(
            "; {} calls outside --since/--until left out",
            agg.outside_window()
        ));
    }
    if table.folded > 0 {
        note.push_str(&format!(
            "; {} calls of groups beyond --max-groups {} are in the (other) row",
            table.folded, cfg.max_groups
        ));
    }
    let command = match mode {
        Mode::Count => "count",
        Mode::Latency => "latency",
    };
    let mut end = args
        .input
        .end(command, args.input.expect_client(false), args.include_pings);
    end.note = Some(&note);
    emit(&mut run, &end, &text)
}

/// The calls by kind and what was left out, as the summary states its requests.
fn kinds_text(k: &Kinds, include_pings: bool) -> String {
    let mut s = format!("{} requests", k.requests);
    if include_pings {
        s.push_str(&format!(" ({} pings included)", k.pings));
    }
    s.push_str(&format!(
        ", {} connects, {} four-letter words",
        k.connects, k.four_letter_words
    ));
    if k.events > 0 {
        s.push_str(&format!(", {} watch events", k.events));
    }
    if !include_pings {
        s.push_str(&format!(
            " (+{} pings not counted: -p counts them)",
            k.pings_left_out
        ));
    }
    s
}

/// Width of the text table: `COLUMNS`, else the terminal's, else 100.
fn term_width() -> usize {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&w| w > 0)
    {
        return w;
    }
    if io::stdout().is_terminal() {
        if let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size() {
            return usize::from(w).max(20);
        }
    }
    DEFAULT_WIDTH
}

fn text_cell(v: &Val<'_>) -> String {
    match v {
        Val::Str("") | Val::None => "-".to_string(),
        Val::Str(s) => s.to_string(),
        Val::Int(n) => n.to_string(),
        Val::Us(us) => human_us(*us),
    }
}

fn write_text(
    out: &mut impl Write,
    cols: &[Col],
    rows: &[Row<'_>],
    width: usize,
) -> io::Result<()> {
    const SEP: usize = 2;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| text_cell(&c.value(r))).collect())
        .collect();
    let natural: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(c.title().len())
        })
        .collect();
    let min: Vec<usize> = cols.iter().map(|c| c.title().len().max(8)).collect();
    let shrinkable: Vec<bool> = cols.iter().map(|c| c.is_key()).collect();
    let widths = fit_widths(&natural, &min, &shrinkable, SEP, width);
    let line = |vals: Vec<String>| -> String {
        let mut l = String::new();
        for (i, (v, c)) in vals.iter().zip(cols).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let w = widths[i];
            // paths keep both ends (the leaf says the most); other keys their start
            let v = if matches!(c, Col::Key(_, GroupKey::Path)) {
                truncate_middle(v, w)
            } else {
                truncate(v, w)
            };
            let pad = " ".repeat(w.saturating_sub(v.chars().count()));
            if c.is_key() {
                l.push_str(&v);
                l.push_str(&pad);
            } else {
                l.push_str(&pad);
                l.push_str(&v);
            }
        }
        l.trim_end().to_string()
    };
    writeln!(
        out,
        "{}",
        line(cols.iter().map(|c| c.title().to_string()).collect())
    )?;
    for row in cells {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

/// Microseconds with at most 3 decimals (nanosecond precision), without trailing zeros.
fn number(us: f64) -> String {
    let s = format!("{us:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn write_json_value(out: &mut impl Write, v: &Val<'_>) -> io::Result<()> {
    match v {
        Val::Str("") | Val::None => out.write_all(b"null"),
        Val::Str(s) => serde_json::to_writer(&mut *out, s).map_err(io::Error::from),
        Val::Int(n) => write!(out, "{n}"),
        Val::Us(us) => out.write_all(number(*us).as_bytes()),
    }
}

/// A JSON array, one object per row and line, fields in column order. Written field by
/// field: a table may have as many rows as `--max-groups`.
fn write_json(out: &mut impl Write, cols: &[Col], rows: &[Row<'_>]) -> io::Result<()> {
    writeln!(out, "[")?;
    for (n, r) in rows.iter().enumerate() {
        out.write_all(b"{")?;
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write!(out, "\"{}\":", c.name())?;
            write_json_value(out, &c.value(r))?;
        }
        out.write_all(if n + 1 < rows.len() { b"},\n" } else { b"}\n" })?;
    }
    writeln!(out, "]")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(out: &mut impl Write, cols: &[Col], rows: &[Row<'_>]) -> io::Result<()> {
    let header: Vec<&str> = cols.iter().map(|c| c.name()).collect();
    writeln!(out, "{}", header.join(","))?;
    for r in rows {
        let fields: Vec<String> = cols
            .iter()
            .map(|c| match c.value(r) {
                Val::Str(s) => csv_field(s),
                Val::Int(n) => n.to_string(),
                Val::Us(us) => number(us),
                Val::None => String::new(),
            })
            .collect();
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}

// ------------------------------------------------------------------ zk-dump compatibility

/// zk-dump's `--group-by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompatGroupArg {
    Path,
    Type,
    Client,
}

/// zk-dump's `--sort-by` (latency mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompatSort {
    Avg,
    P95,
    P99,
}

/// zk-dump's counting and latency flags, for `zkscope dump`.
#[derive(Debug, Args)]
#[command(next_help_heading = "zk-dump compatibility")]
pub struct CompatArgs {
    /// Count N requests and watch events, then print "KEY COUNT" lines by count (pings only
    /// with -p).
    #[arg(long = "count-requests", value_name = "N", default_value_t = 0)]
    pub count_requests: u64,

    /// Collect N request/reply pairs, then print avg/p95/p99 latency in seconds per group.
    #[arg(long = "measure-latency", value_name = "N", default_value_t = 0)]
    pub measure_latency: u64,

    /// Group --count-requests / --measure-latency by path, type or client.
    #[arg(long = "group-by", value_enum, default_value = "path")]
    pub group_by: CompatGroupArg,

    /// Sort --measure-latency by avg, p95 or p99 (descending).
    #[arg(long = "sort-by", value_enum, default_value = "avg")]
    pub sort_by: CompatSort,

    /// Group paths by their first D components (0 = whole path).
    #[arg(long = "aggregation-depth", value_name = "D", default_value_t = 0)]
    pub aggregation_depth: usize,
}

impl CompatArgs {
    /// True when a zk-dump counting or latency mode was asked for.
    pub fn active(&self) -> bool {
        self.count_requests > 0 || self.measure_latency > 0
    }
}

/// `zkscope dump --count-requests N` / `--measure-latency N`: zk-dump's CountPrinter and
/// LatencyPrinter. The run ends after N messages (or pairs), at the end of the input, or on
/// Ctrl-C, and prints what was collected.
pub fn dump_compat(
    input: &InputArgs,
    compat: &CompatArgs,
    include_pings: bool,
) -> Result<ExitCode> {
    if compat.count_requests > 0 && compat.measure_latency > 0 {
        bail!("The flags --count-requests and --measure-latency can't be mixed.");
    }
    let group = match compat.group_by {
        CompatGroupArg::Path => CompatGroup::Path,
        CompatGroupArg::Type => CompatGroup::Type,
        CompatGroupArg::Client => CompatGroup::Client,
    };
    let depth = compat.aggregation_depth;
    if compat.count_requests > 0 {
        let counter = ArrivalCounter::new(
            group,
            depth,
            include_pings,
            compat.count_requests,
            COMPAT_MAX_GROUPS,
        );
        let mut run = run_client(input, counter)?;
        let mut text = String::new();
        for (key, n) in run.consumer.lines() {
            text.push_str(&format!("{key} {n}\n"));
        }
        let end = input.end("dump", input.expect_client(true), include_pings);
        return emit(&mut run, &end, text.as_bytes());
    }
    let cfg = latency_config(
        group,
        depth,
        include_pings,
        compat.measure_latency,
        COMPAT_MAX_GROUPS,
    );
    let mut run = run_client(input, Aggregator::new(&cfg))?;
    run.consumer.finish();
    let table = run.consumer.table();
    let mut rows = table.rows();
    rows.extend(table.other_row());
    sort_rows(
        &mut rows,
        match compat.sort_by {
            CompatSort::Avg => Column::Avg,
            CompatSort::P95 => Column::P95,
            CompatSort::P99 => Column::P99,
        },
    );
    let secs = |us: Option<u64>| us.map_or(0.0, |v| v as f64 / 1e6);
    let data: Vec<(String, f64, f64, f64)> = rows
        .iter()
        .map(|r| {
            let s = &r.summary;
            (
                r.values.first().copied().unwrap_or("").to_string(),
                s.avg_us.map_or(0.0, |v| v / 1e6),
                secs(s.p95_us),
                secs(s.p99_us),
            )
        })
        .collect();
    let text = latency_table(group.name(), &data);
    let end = input.end("dump", input.expect_client(true), include_pings);
    emit(&mut run, &end, text.as_bytes())
}

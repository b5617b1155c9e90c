//! `zkscope replay`: re-issue captured client traffic against another ensemble and report what
//! answers differently or slower. The plan, the replayer and the report live in
//! `crate::replay`; this module parses the options and runs them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use zkscope_analysis::fmt::parse_duration;

use crate::args::InputArgs;
use crate::input::run_client;
use crate::replay::engine::{self, Options};
use crate::replay::plan::Planner;
use crate::replay::report::Report;

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    /// Text.
    Text,
    /// One JSON object.
    Json,
}

/// Options of `zkscope replay`.
#[derive(Debug, Args)]
#[command(
    after_help = "One connection per captured session, requests in captured order at \
the captured pace; a request also waits for the replies other sessions had received before it \
in the capture, so cross-session order (a watch set before the write that fires it) holds at \
any speed. Sequential names the target chooses replace the captured ones in later requests. \
Reads only unless --allow-writes. A target that answers as a captured server (same address \
and port, or it holds a node created at the same zxid and time as in the capture) is refused \
unless --force. Captured credentials are never re-sent: give --auth.\n\n\
Examples:\n  zkscope replay -r prod.pcap --to staging1:2181,staging2:2181\n  \
zkscope replay -r prod.pcap --to staging:2181 --allow-writes --chroot /replay --max-speed\n  \
zkscope replay -r prod.pcap --to old:2181 --compare new:2181 --format json"
)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// The ensemble to replay into (HOST:PORT, comma-separated or repeated).
    #[arg(
        long,
        value_name = "HOST:PORT[,…]",
        value_delimiter = ',',
        required = true,
        help_heading = "Replay"
    )]
    pub to: Vec<String>,

    /// Also send every read to this ensemble and report where the answers differ (data,
    /// children, Stat versions). Writes are not sent.
    #[arg(
        long,
        value_name = "HOST:PORT[,…]",
        value_delimiter = ',',
        conflicts_with = "allow_writes",
        help_heading = "Replay"
    )]
    pub compare: Vec<String>,

    /// Pace: 2 replays twice as fast as captured, 0.5 half as fast.
    #[arg(long, value_name = "N", default_value_t = 1.0, help_heading = "Replay")]
    pub speed: f64,

    /// No pacing: each request as soon as the order allows.
    #[arg(long = "max-speed", conflicts_with = "speed", help_heading = "Replay")]
    pub max_speed: bool,

    /// Re-send writes (create, delete, setData, setACL, multi, reconfig…).
    #[arg(long = "allow-writes", help_heading = "Replay")]
    pub allow_writes: bool,

    /// Replay into a target that answers as one of the captured servers.
    #[arg(long, help_heading = "Replay")]
    pub force: bool,

    /// Put every path under this node (created with --allow-writes when missing).
    #[arg(long, value_name = "PATH", help_heading = "Replay")]
    pub chroot: Option<String>,

    /// Digest credentials, digest:USER:PASSWORD (repeatable): replace the captured digest auth
    /// packets of USER. Captured secrets are never re-sent; auth without a replacement is not.
    #[arg(long, value_name = "digest:USER:PASSWORD", help_heading = "Replay")]
    pub auth: Vec<String>,

    /// Budget for a connection and its handshake.
    #[arg(long = "connect-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration, help_heading = "Replay")]
    pub connect_timeout: i64,

    /// Longest wait for a reply, another session's progress or a sequential name.
    #[arg(long = "wait-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_duration, help_heading = "Replay")]
    pub wait_timeout: i64,

    /// Longest wait for a notification the capture had before the session's next request (a
    /// missing one is waited for once).
    #[arg(long = "notification-wait", value_name = "DURATION", default_value = "1s", value_parser = parse_duration, help_heading = "Replay")]
    pub notification_wait: i64,

    /// Report format.
    #[arg(long, value_enum, default_value = "text", help_heading = "Output")]
    pub format: ReplayFormat,
}

fn duration(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

fn chroot(c: &str) -> Result<Vec<u8>> {
    if !c.starts_with('/') || c.len() < 2 || c.ends_with('/') || c.contains("//") {
        bail!("--chroot {c:?}: give an absolute path such as /replay (not / and no trailing /)");
    }
    Ok(c.as_bytes().to_vec())
}

fn credential(a: &str) -> Result<Vec<u8>> {
    match a.strip_prefix("digest:") {
        Some(cred) if cred.contains(':') => Ok(cred.as_bytes().to_vec()),
        _ => bail!("--auth {a:?}: only digest:USER:PASSWORD is supported"),
    }
}

/// Runs `zkscope replay`.
pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    let Some(file) = args.input.read.clone() else {
        bail!("replay reads a capture file: give -r FILE");
    };
    if !(args.speed > 0.0 && args.speed.is_finite()) {
        bail!("--speed must be a positive number");
    }
    let opts = Options {
        targets: args.to.clone(),
        compare: (!args.compare.is_empty()).then(|| args.compare.clone()),
        speed: (!args.max_speed).then_some(args.speed),
        allow_writes: args.allow_writes,
        chroot: args.chroot.as_deref().map(chroot).transpose()?,
        auth: args
            .auth
            .iter()
            .map(|a| credential(a))
            .collect::<Result<_>>()?,
        connect_timeout: duration(args.connect_timeout),
        wait_timeout: duration(args.wait_timeout),
        event_wait: duration(args.notification_wait),
    };
    let run = run_client(&args.input, Planner::default())?;
    if let Some(e) = run.read_error {
        return Err(e).context("cannot read the capture");
    }
    let plan = run.consumer.finish();
    let source = file.display().to_string();
    let requests = plan
        .sessions
        .iter()
        .flat_map(|s| &s.reqs)
        .filter(|r| r.opcode != zkscope_proto::client::OpCode::PING)
        .count();
    if requests == 0 {
        bail!(
            "no client requests in {source} (ports {}): nothing to replay",
            if args.input.ports.is_empty() && args.input.servers.is_empty() {
                "2181; use --port or --server for others".to_string()
            } else {
                "given".to_string()
            }
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the replay runtime")?;
    let plan = Arc::new(plan);
    if !args.force {
        let all = opts.targets.iter().chain(opts.compare.iter().flatten());
        for t in all {
            if let Some(why) =
                rt.block_on(engine::answers_as_captured(&plan, t, opts.connect_timeout))
            {
                bail!("refusing to replay: {why} (--force replays anyway)");
            }
        }
    }
    if let (Some(root), true) = (&opts.chroot, opts.allow_writes) {
        rt.block_on(engine::ensure_chroot(
            &opts.targets,
            root,
            opts.connect_timeout,
        ))
        .map_err(|e| anyhow::anyhow!("cannot prepare --chroot: {e}"))?;
    }
    let started = Instant::now();
    let (results, names) = rt.block_on(engine::replay(plan.clone(), opts.clone()));
    let wall = started.elapsed();
    rt.shutdown_timeout(Duration::from_secs(1));
    let report = Report::new(&plan, &results, &names, &opts, source);
    let text = match args.format {
        ReplayFormat::Text => report.text(),
        ReplayFormat::Json => {
            let mut s = serde_json::to_string(&report)?;
            s.push('\n');
            s
        }
    };
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let written = out.write_all(text.as_bytes()).and_then(|_| out.flush());
        if let Err(e) = written {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e).context("cannot write the report");
            }
        }
    }
    if !args.input.quiet {
        note!(
            "zkscope: replayed {} of {} sessions in {:.1}s",
            report.sessions_replayed,
            report.sessions_captured,
            wall.as_secs_f64()
        );
    }
    if report.incomplete() {
        let first = report
            .session_errors
            .first()
            .map(|e| e.error.as_str())
            .unwrap_or("unknown");
        note!(
            "zkscope: replay incomplete: {} of {} sessions had errors (first: {first}); the \
             report is partial",
            report.sessions_failed,
            report.sessions_captured
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

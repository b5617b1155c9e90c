//! `zkscope top`: the live screen (iftop/top-like) of ZooKeeper traffic, or `--batch` blocks.
//!
//! Threads: the packet pipeline (capture, decoding, the windows of [`model::TopState`]; a
//! replay is paced there), a ticker closing the windows of an idle live capture, and the main
//! thread drawing the screen (or printing the batch blocks). The screen reads what the capture
//! thread publishes (`Arc` swaps): a slow terminal never holds capture up.
//!
//! - `model`: the aggregate, the capture-side state and what it publishes; the replay pacer;
//! - `app`: the screen's state and keys, the rows it shows;
//! - `ui`: drawing; `batch`: the plain blocks.

mod app;
mod batch;
mod model;
#[cfg(test)]
mod tests;
mod ui;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use zkscope_analysis::fmt::parse_duration;
use zkscope_analysis::{Filter, UserRule};
use zkscope_capture::pipeline::{Decoder, LiveCounters, Pipeline, StopHandle};
use zkscope_capture::source::{LiveOptions, PacketSource};
use zkscope_capture::Timestamp;

use crate::args::{decoder_for, InputArgs, Protocol, ProtocolArgs};
use crate::commands::stats::{class_options, FoldArg};
use app::{App, Data, Key};
use model::{Feed, Handles, Pacer, Settings, TopState, View, WINDOW_NS};

/// `zkscope top` options.
#[derive(Debug, Args)]
#[command(
    after_help = "Keys: o p c s e w views, < > sort, i invert, / filter, Enter detail, \
Space pause, + - refresh, t since start / last 10s, ? help, q quit.\n\n\
Examples:\n  zkscope top -i any\n  zkscope top -r capture.pcap --speed 4\n  \
zkscope top -i eth0 --batch --interval 10s --view paths > top.log"
)]
pub struct TopArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Protocols decoded: auto (client traffic, and the election and quorum traffic that
    /// shows the servers' roles) or client (the client port only: less work on a busy host).
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        help_heading = "Ensemble protocols"
    )]
    pub protocol: Protocol,

    /// An election (FLE) port (repeatable).
    #[arg(
        long = "fle-port",
        value_name = "PORT",
        help_heading = "Ensemble protocols"
    )]
    pub fle_ports: Vec<u16>,

    /// A quorum (ZAB) port (repeatable).
    #[arg(
        long = "zab-port",
        value_name = "PORT",
        help_heading = "Ensemble protocols"
    )]
    pub zab_ports: Vec<u16>,

    /// The table shown first (or printed by --batch).
    #[arg(long, value_enum, default_value = "ops", help_heading = "Screen")]
    pub view: View,

    /// Print plain blocks, one per interval, instead of the screen (the default when
    /// standard output is not a terminal).
    #[arg(short = 'b', long, help_heading = "Screen")]
    pub batch: bool,

    /// Screen refresh (keys + and - change it), and the --batch interval (rounded to the 2 s
    /// windows).
    #[arg(short = 'd', long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration, help_heading = "Screen")]
    pub interval: i64,

    /// --batch: stop after N blocks.
    #[arg(long, value_name = "N", help_heading = "Screen")]
    pub iterations: Option<u64>,

    /// --batch: rows per block (0 = every row with calls in the interval).
    #[arg(long, value_name = "N", default_value_t = 20, help_heading = "Screen")]
    pub rows: usize,

    /// No colours (reverse video and bold only); also when NO_COLOR is set.
    #[arg(long = "no-color", help_heading = "Screen")]
    pub no_color: bool,

    /// Replay a file this many times faster than it was captured.
    #[arg(long, value_name = "N", default_value_t = 1.0, help_heading = "Replay")]
    pub speed: f64,

    /// Replay a file as fast as it can be read.
    #[arg(long = "max-speed", conflicts_with = "speed", help_heading = "Replay")]
    pub max_speed: bool,

    /// Paths view: keep the first D components (0 = whole paths).
    #[arg(
        long = "aggregation-depth",
        visible_alias = "depth",
        value_name = "D",
        default_value_t = 0,
        help_heading = "Grouping"
    )]
    pub aggregation_depth: usize,

    /// How paths fold into classes (as in digest): none, sequential or all.
    #[arg(long, value_enum, default_value = "all", help_heading = "Grouping")]
    pub fold: FoldArg,

    /// Your own folding rule, REGEX=REPLACEMENT (repeatable).
    #[arg(long, value_name = "REGEX=REPLACEMENT", value_parser = UserRule::parse, help_heading = "Grouping")]
    pub normalize: Vec<UserRule>,

    /// Count pings too (left out by default, as in count).
    #[arg(short = 'p', long = "include-pings", help_heading = "Grouping")]
    pub include_pings: bool,

    /// Rows kept per table and 2 s window, and sessions remembered; later keys are counted in
    /// one "(other)" row.
    #[arg(
        long = "max-keys",
        value_name = "N",
        default_value_t = 5_000,
        help_heading = "Grouping"
    )]
    pub max_keys: usize,
}

/// Runs `zkscope top`.
pub fn run(args: TopArgs) -> Result<ExitCode> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed takes a positive number");
    }
    let input = &args.input;
    let batch = args.batch || !io::stdout().is_terminal();
    let (decoder, bpf) = decoder(&args)?;
    let stop = StopHandle::new();
    let (source, label) = match (&input.read, &input.iface) {
        (Some(path), None) => (
            PacketSource::open_file_filtered(path, input.user_filter().as_deref())?,
            path.display().to_string(),
        ),
        (None, Some(iface)) => {
            let opts = LiveOptions {
                snaplen: input.snaplen,
                promisc: !input.no_promisc,
                buffer_size: input.buffer_size.saturating_mul(1 << 20),
                filter: Some(bpf.clone()),
                immediate: false,
                timeout_ms: 250,
            };
            let src = PacketSource::open_live(iface, opts, stop.flag())
                .with_context(|| format!("cannot capture on {iface}"))?;
            if batch {
                note!("zkscope: listening on {iface} ({bpf})");
            }
            (src, format!("live {iface}"))
        }
        _ => bail!("give a capture file (-r FILE) or an interface (-i IFACE)"),
    };
    let live = source.is_live();
    let interval_windows = (args.interval.max(1) + WINDOW_NS - 1) / WINDOW_NS;
    let settings = Settings {
        max_keys: args.max_keys.max(1),
        depth: args.aggregation_depth,
        classes: class_options(args.fold, &args.normalize, args.aggregation_depth),
        filter: Filter {
            pings: args.include_pings,
            ..Filter::default()
        },
        batch_windows: Some(u32::try_from(interval_windows).unwrap_or(u32::MAX).max(1)),
    };
    let (tx, rx) = if batch {
        let (tx, rx) = std::sync::mpsc::sync_channel::<model::Block>(16);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let state = TopState::new(settings, tx, args.view, args.rows);
    let handles = state.handles();
    let state = Arc::new(Mutex::new(state));
    let hold = Arc::new(AtomicBool::new(false));
    let pacer = (!live).then(|| {
        let speed = (!args.max_speed).then_some(args.speed);
        Pacer::new(speed, hold.clone(), stop.clone())
    });

    {
        let stop = stop.clone();
        // In batch mode Ctrl-C stops the capture (the screen reads it as a key); a second
        // one exits at once.
        ctrlc::set_handler(move || {
            if stop.stop() {
                std::process::exit(130);
            }
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let pipeline = Pipeline::new(source, decoder, stop.clone());
    let counters = pipeline.live_counters();
    let capture = {
        let state = state.clone();
        std::thread::Builder::new()
            .name("zkscope-capture".into())
            .spawn(move || {
                let fin = pipeline.run(Feed {
                    pacer,
                    state: state.clone(),
                });
                let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
                s.finish();
                s.close_batch();
                fin.read_error
            })
            .context("cannot start the capture thread")?
    };
    if live {
        let state = state.clone();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("zkscope-ticker".into())
            .spawn(move || {
                while !stop.is_stopped() {
                    std::thread::sleep(Duration::from_millis(500));
                    // Packets still in the kernel's block are at most a timeout old.
                    let now = Timestamp(wall_ns() - 1_000_000_000);
                    state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .tick(now);
                }
            })
            .context("cannot start the ticker thread")?;
    }

    let shown = match rx {
        Some(rx) => print_blocks(rx, args.iterations, &stop, &counters),
        None => {
            let color = !args.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let mut app = App::new(label, args.view, color, !live);
            app.hold = hold.clone();
            app.interval = app::INTERVALS_MS
                .iter()
                .position(|ms| i64::try_from(*ms).unwrap_or(0) * 1_000_000 >= args.interval)
                .unwrap_or(app::INTERVALS_MS.len() - 1);
            screen(&mut app, &handles, &counters, &stop)
        }
    };
    stop.stop();
    // A held replay must not wait for a resume that will not come.
    hold.store(false, std::sync::atomic::Ordering::Relaxed);
    let read_error = capture
        .join()
        .map_err(|_| anyhow::anyhow!("the capture thread panicked"))?;
    shown?;
    if let Some(e) = read_error {
        note!("zkscope: capture failed: {e}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The decoder and the live capture filter.
fn decoder(args: &TopArgs) -> Result<(Decoder, String)> {
    let protocols = ProtocolArgs {
        protocol: args.protocol,
        fle_ports: args.fle_ports.clone(),
        zab_ports: args.zab_ports.clone(),
    };
    decoder_for(&args.input, &protocols)
}

fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Prints the batch blocks until the capture ends (or `iterations` blocks).
fn print_blocks(
    rx: std::sync::mpsc::Receiver<model::Block>,
    iterations: Option<u64>,
    stop: &StopHandle,
    counters: &LiveCounters,
) -> Result<()> {
    let mut out = io::stdout().lock();
    for (n, block) in (1u64..).zip(rx) {
        // The capture's health as of now, at the end of the block's first line.
        let c = counters.snapshot();
        let live = c.live.unwrap_or_default();
        let health = format!(
            "  packets {}  kernel drops {}  decode errors {}  tcp gaps {}",
            c.packets.packets.max(counters.packets()),
            live.dropped + live.if_dropped,
            c.client.undecodable_frames + c.client.bad_lengths + c.client.partial_frames_dropped,
            c.tcp.gaps
        );
        let (head, rest) = block.split_once('\n').unwrap_or((&block, ""));
        if writeln!(out, "{head}{health}\n{rest}")
            .and_then(|_| out.flush())
            .is_err()
        {
            // stdout closed: stop quietly.
            stop.stop();
            break;
        }
        if iterations.is_some_and(|max| n >= max) {
            stop.stop();
            break;
        }
    }
    Ok(())
}

/// What the capture thread has published.
fn gather(handles: &Handles, counters: &LiveCounters) -> Data {
    let mut c = counters.snapshot();
    // The packet count is fresher than the last full snapshot.
    c.packets.packets = c.packets.packets.max(counters.packets());
    Data {
        windows: handles.windows.read(),
        published: handles.published(),
        counters: c,
    }
}

fn key_of(k: event::KeyEvent) -> Option<Key> {
    if k.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(k.code, KeyCode::Char('c') | KeyCode::Char('d')).then_some(Key::Interrupt);
    }
    Some(match k.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        _ => return None,
    })
}

/// SIGTERM or SIGHUP arrived while the screen was up.
static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// SIGTERM and SIGHUP end the screen's loop (which restores the terminal) instead of the
/// process, whose terminal would stay in raw mode.
fn catch_termination() {
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores into a static atomic, which is async-signal-safe;
        // `signal` has no other precondition, and the previous handler (the default) is not
        // needed back.
        unsafe {
            libc::signal(
                sig,
                on_terminate as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}

/// The screen's loop: refresh every interval, keys in between.
fn screen(
    app: &mut App,
    handles: &Handles,
    counters: &LiveCounters,
    stop: &StopHandle,
) -> Result<()> {
    catch_termination();
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let result = (|| -> Result<()> {
        let mut next = Instant::now();
        loop {
            if Instant::now() >= next {
                app.update(gather(handles, counters));
                next = Instant::now() + Duration::from_millis(app.interval_ms());
            }
            terminal.draw(|f| ui::draw(f, app))?;
            // A signal is noticed within 250 ms whatever the refresh interval.
            let wait = next
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(250));
            if event::poll(wait)? {
                // Every pending event before the next draw.
                loop {
                    match event::read()? {
                        TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                            if let Some(key) = key_of(k) {
                                let before = app.interval;
                                app.key(key);
                                if app.interval != before {
                                    next = Instant::now();
                                }
                            }
                        }
                        _ => {}
                    }
                    if app.quit || !event::poll(Duration::ZERO)? {
                        break;
                    }
                }
            }
            // q, or SIGINT/SIGTERM from elsewhere (in raw mode Ctrl-C is a key).
            if app.quit
                || stop.is_stopped()
                || TERMINATED.load(std::sync::atomic::Ordering::Relaxed)
            {
                return Ok(());
            }
        }
    })();
    ratatui::restore();
    result
}

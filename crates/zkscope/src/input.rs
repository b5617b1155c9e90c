//! Running the pipeline for a command: the Ctrl-C handler, opening the source the options name,
//! the progress bar. The loop itself is `zkscope_capture::pipeline`.

use std::io::{self, IsTerminal};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use zkscope_capture::ensemble::Mode;
use zkscope_capture::pipeline::{Consumer, Decoder, Finished, Pipeline, Shard, StopHandle};
use zkscope_capture::source::{LiveOptions, PacketSource};
use zkscope_capture::writer::PacketWriter;

use crate::args::{client_decoder, ensemble_decoder, InputArgs, ProtocolArgs};

/// Decodes the client protocol on the selected endpoints into `consumer`, until the input
/// ends, Ctrl-C, or the consumer is done.
pub fn run_client<C: Consumer>(input: &InputArgs, consumer: C) -> Result<Finished<C>> {
    let (decoder, bpf) = client_decoder(input)?;
    run(input, decoder, bpf, consumer)
}

/// [`run_client`] on `threads` cores for a file (see `zkscope_capture::pipeline::Shard`): one
/// consumer per worker, made by `make`, merged at the end. One thread, or a live capture,
/// runs [`run_client`] on one consumer; so does a file whose shards cannot be merged exactly
/// (read a second time then).
pub fn run_client_sharded<C: Shard>(
    input: &InputArgs,
    threads: usize,
    make: impl Fn() -> C,
) -> Result<Finished<C>> {
    // Standard input cannot be read a second time (see below), and a second reading would
    // write the -w file twice.
    let file = input.read.as_ref().is_some_and(|p| p.as_os_str() != "-");
    if threads < 2 || !file || input.write.is_some() {
        return run_client(input, make());
    }
    let (decoder, bpf) = client_decoder(input)?;
    let sharded = run_with(input, decoder, bpf, |p| {
        p.run_sharded(threads, &make).ok_or(())
    })?;
    match sharded {
        Ok(finished) => Ok(finished),
        Err(()) => run_client(input, make()),
    }
}

/// Decodes the protocols of `mode` (election, quorum, or all three) into `consumer`.
pub fn run_ensemble<C: Consumer>(
    input: &InputArgs,
    protocols: &ProtocolArgs,
    mode: Mode,
    consumer: C,
) -> Result<Finished<C>> {
    let (decoder, bpf) = ensemble_decoder(input, protocols, mode)?;
    run(input, decoder, bpf, consumer)
}

/// Opens the input (`bpf` is the live capture filter) and runs the pipeline on this thread.
fn run<C: Consumer>(
    input: &InputArgs,
    decoder: Decoder,
    bpf: String,
    consumer: C,
) -> Result<Finished<C>> {
    run_with(input, decoder, bpf, |p| p.run(consumer))
}

/// The stop handle Ctrl-C (and SIGTERM, SIGHUP) sets, its handler installed on first use (a
/// file read a second time keeps it).
fn ctrl_c() -> Result<StopHandle> {
    static STOP: OnceLock<StopHandle> = OnceLock::new();
    if let Some(s) = STOP.get() {
        return Ok(s.clone());
    }
    let stop = StopHandle::new();
    {
        let stop = stop.clone();
        // A second Ctrl-C while the summary is pending exits at once.
        ctrlc::set_handler(move || {
            if stop.stop() {
                std::process::exit(130);
            }
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    Ok(STOP.get_or_init(|| stop).clone())
}

/// Opens the input (`bpf` is the live capture filter) and runs the pipeline with `go`.
fn run_with<T>(
    input: &InputArgs,
    decoder: Decoder,
    bpf: String,
    go: impl FnOnce(Pipeline) -> T,
) -> Result<T> {
    let stop = ctrl_c()?;
    let source = match (&input.read, &input.iface) {
        (Some(path), None) => {
            PacketSource::open_file_filtered(path, input.user_filter().as_deref())?
        }
        (None, Some(iface)) => {
            let opts = LiveOptions {
                snaplen: input.snaplen,
                promisc: !input.no_promisc,
                buffer_size: input.buffer_size.saturating_mul(1 << 20),
                filter: Some(bpf.clone()),
                // Packets in blocks (TPACKET_V3): far fewer drops at high rates than one
                // frame per packet; a block is handed over within the 100 ms read timeout.
                immediate: false,
                ..LiveOptions::default()
            };
            let src = PacketSource::open_live(iface, opts, stop.flag())?;
            note!("zkscope: listening on {iface} ({bpf})");
            src
        }
        _ => bail!("give a capture file (-r FILE) or an interface (-i IFACE)"),
    };
    let live = input.iface.is_some();
    if let (true, Some(d)) = (live, input.live_duration) {
        // live --duration ends on the wall clock, packets or not: the same stop as Ctrl-C
        // (what the kernel already captured is still read)
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("zkscope-duration".into())
            .spawn(move || {
                std::thread::sleep(d);
                stop.stop();
            })
            .context("cannot start the --duration timer")?;
    }
    let mut pipeline = Pipeline::new(source, decoder, stop);
    if let Some(path) = &input.write {
        pipeline.write_to(PacketWriter::create(path)?);
    }
    // Before anything of the first cut packet is printed: a cut capture loses replies.
    pipeline.on_cut(Box::new(|snap| note!("{}", snap_warning(snap))));
    let progress = (!live && !input.quiet && io::stderr().is_terminal())
        .then(|| progress_bar(pipeline.position()));
    if let Some(bar) = &progress {
        let bar = bar.clone();
        pipeline.on_progress(Box::new(move |read| bar.set_position(read)));
    }
    let finished = go(pipeline);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    Ok(finished)
}

/// The warning about a capture cut at `snap` bytes a packet.
pub fn snap_warning(snap: u32) -> String {
    format!(
        "zkscope: WARNING: this capture is cut at {snap} bytes a packet (its snap length): \
         messages longer than that lose their ends: replies lose their bodies or cannot be \
         paired, paths are cut, big messages are lost. Capture whole packets: tcpdump -s 0 \
         (or zkscope's default --snaplen)."
    )
}

/// A progress bar for reading a file (bytes, rate, ETA) on stderr; a spinner when the size is
/// unknown (standard input).
fn progress_bar(position: Option<(u64, Option<u64>)>) -> ProgressBar {
    match position.and_then(|(_, size)| size) {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    }
}

//! Everything that prints: message printers (client, ensemble), JSON lines, `--show` fields,
//! time formatting, the end-of-run summary. Analyses do not print; commands pick printers.

pub mod client;
pub mod digest;
pub mod ensemble;
pub mod fields;
pub mod jsonline;
pub mod summary;
pub mod time;

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use zkscope_capture::pipeline::Finished;

/// Output format of the message printers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object per message and line.
    Json,
}

/// Writes a report command's output, then (unless the output pipe was closed) the note and the
/// end-of-run summary on stderr (unless `quiet`); a truncated input is an error after its
/// packets were used.
pub fn emit<C>(
    run: &mut Finished<C>,
    quiet: bool,
    text: &[u8],
    note: Option<&str>,
) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = out.write_all(text).and_then(|_| out.flush());
    let broken_pipe = matches!(&written, Err(e) if e.kind() == io::ErrorKind::BrokenPipe);
    if !broken_pipe {
        if let Some(note) = note.filter(|_| !quiet) {
            note!("{note}");
        }
        if !quiet {
            summary::print_summary(&run.counters);
        }
        written.context("cannot write output")?;
    }
    if let Some(e) = run.read_error.take() {
        return Err(e.into());
    }
    Ok(ExitCode::SUCCESS)
}

//! Everything that prints: message printers (client, ensemble), JSON lines, `--show` fields,
//! time formatting, the end-of-run summary. Analyses do not print; commands pick printers.

pub mod client;
pub mod digest;
pub mod end;
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

/// Writes a report command's output, then ends the run ([`end::finish`]: notes, summary,
/// errors); a truncated input is an error after its packets were used.
pub fn emit<C>(run: &mut Finished<C>, end: &end::End<'_>, text: &[u8]) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = out.write_all(text).and_then(|_| out.flush());
    drop(out);
    let broken_pipe = matches!(&written, Err(e) if e.kind() == io::ErrorKind::BrokenPipe);
    let code = end::finish(run, end, broken_pipe)?;
    if !broken_pipe {
        written.context("cannot write output")?;
    }
    Ok(code)
}

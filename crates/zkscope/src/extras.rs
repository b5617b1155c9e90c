//! Installed-tool chores: shell completions, the man page, the version, the interface list.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};

/// `zkscope --version`: the release, the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("ZKSCOPE_GIT_COMMIT"),
    ")"
);

/// `--version` with the libpcap it runs with (known only at run time).
pub fn long_version() -> String {
    format!("{VERSION}\n{}", zkscope_capture::source::libpcap_version())
}

/// Options of `zkscope completions`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
zkscope completions bash > /etc/bash_completion.d/zkscope\n  \
zkscope completions zsh > \"${fpath[1]}/_zkscope\"\n  \
zkscope completions fish > ~/.config/fish/completions/zkscope.fish")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Options of `zkscope man`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  zkscope man | man -l -\n  \
zkscope man --dir /usr/local/share/man/man1   # zkscope.1, zkscope-dump.1, …")]
pub struct ManArgs {
    /// Write zkscope.1 and a page per command (zkscope-dump.1, …) into this directory
    /// instead of printing zkscope.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completions<C: CommandFactory>(args: CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = C::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "zkscope", &mut out);
    write_stdout(&out)
}

pub fn man<C: CommandFactory>(args: ManArgs) -> Result<ExitCode> {
    let cmd = C::command().version(VERSION);
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        clap_mangen::generate_to(cmd, &dir)
            .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("cannot render the man page")?;
    write_stdout(&out)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    let mut o = std::io::stdout().lock();
    match o.write_all(bytes).and_then(|()| o.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write output")
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// `-D/--list-interfaces`: the interfaces libpcap can capture on, like `tcpdump -D`.
pub fn list_interfaces() -> Result<ExitCode> {
    let list = zkscope_capture::source::list_interfaces()?;
    let mut o = std::io::stdout().lock();
    for (i, d) in list.iter().enumerate() {
        let desc = d
            .description
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let _ = writeln!(o, "{}.{}{desc} [{}]", i + 1, d.name, d.flags.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

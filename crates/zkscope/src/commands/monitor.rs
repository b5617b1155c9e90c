//! `zkscope monitor`: thin wrapper over the `zkscope-monitor` crate.

use std::process::ExitCode;

pub use zkscope_monitor::MonitorArgs;

pub fn run(args: MonitorArgs) -> anyhow::Result<ExitCode> {
    Ok(zkscope_monitor::run(args))
}

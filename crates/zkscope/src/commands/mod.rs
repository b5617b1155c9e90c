//! One module per subcommand: each parses its options into a pipeline run, composes the
//! consumers it needs (analyses from `zkscope-analysis`, printers from `crate::output`) and
//! prints the result. A new view is a new module here.

pub mod digest;
pub mod dump;
pub mod elections;
pub mod monitor;
pub mod replay;
pub mod serve;
pub mod stats;
pub mod top;

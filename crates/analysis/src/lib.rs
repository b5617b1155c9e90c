//! Aggregation of decoded ZooKeeper client traffic: who asks what, how often, how fast.
//!
//! Sans-I/O and clocked by capture timestamps, like the decoders it sits on:
//!
//! - [`CallBuilder`] turns the messages of [`zkscope_capture::client`] into [`Call`]s: a
//!   request with its outcome (reply and latency, or none), a connect handshake, a
//!   four-letter word, or a watch event. It keeps the per-connection auth identity.
//! - [`GroupTable`] groups calls by one or several [`GroupKey`]s (path with aggregation depth
//!   and sequential-suffix folding, type, op, client, client IP, session, auth identity,
//!   server, error) with counts and a latency distribution ([`LatencyStats`], HDR histograms
//!   in microseconds with 3 significant digits) per group. The number of groups is capped:
//!   later groups fold into one `(other)` row.
//! - [`Aggregator`] is both, as a [`zkscope_capture::client::ClientSink`], with a call limit
//!   and a duration.
//! - [`compat`] reproduces zktraffic's `--count-requests` and `--measure-latency`.
//!
//! ```
//! use zkscope_analysis::{Aggregator, Config, GroupKey};
//!
//! let agg = Aggregator::new(&Config {
//!     keys: vec![GroupKey::Type, GroupKey::Path],
//!     ..Config::default()
//! });
//! // Feed it to a ClientHandler, then:
//! for row in agg.table().rows() {
//!     println!("{:?} {}", row.values, row.summary.count);
//! }
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod agg;
mod call;
pub mod compat;
pub mod digest;
pub mod fmt;
mod hash;
mod key;
mod latency;

pub use agg::{
    sort_rows, write_value, Aggregator, Column, Config, Filter, Group, GroupTable, Row, Summary,
    NO_REPLY, OTHER,
};
pub use call::{identity, Call, CallBuilder, CallKind, NOAUTH};
pub use key::{GroupKey, PathNorm, UnknownKey};
pub use latency::{ns_to_us, LatencyStats, SIGFIG};

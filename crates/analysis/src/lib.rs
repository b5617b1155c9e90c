//! Every analysis of decoded ZooKeeper traffic: who asks what, how often, how fast; how the
//! ensemble elects and replicates. Nothing here prints: the binary (or a daemon, a screen)
//! renders what these types hold.
//!
//! Sans-I/O and clocked by capture timestamps, like the decoders it sits on. Each analysis is a
//! [`zkscope_capture::pipeline::Consumer`]: a pipeline feeds it decoded events (client, election
//! and quorum messages, connection notes), and it is read when the run ends, or, through a
//! [`window`] snapshot, while the capture continues. Data flow: events → calls
//! ([`CallBuilder`]) → groups, digest classes, windows; election and quorum events → rounds
//! ([`elections`]) and quorum statistics ([`quorum`]).
//!
//! - [`CallBuilder`] turns the messages of [`zkscope_capture::client`] into [`Call`]s: a
//!   request with its outcome (reply and latency, or none), a connect handshake, a
//!   four-letter word, or a watch event. It keeps the per-connection auth identity.
//! - [`GroupTable`] groups calls by one or several [`GroupKey`]s (path with aggregation depth
//!   and sequential-suffix folding, type, op, client, client IP, session, auth identity,
//!   server, error) with counts and a latency distribution ([`LatencyStats`], HDR histograms
//!   in microseconds with 3 significant digits) per group. The number of groups is capped:
//!   later groups fold into one `(other)` row.
//! - [`Aggregator`] is both, as a consumer, with a call limit and a duration (`count`,
//!   `latency`).
//! - [`digest`]: request classes, sessions, watches, four-letter words (`digest`).
//! - [`elections`]: election rounds from FLE and ZAB traffic (`elections`, `digest
//!   --protocol auto`); [`quorum`]: quorum packet statistics and the ensemble part of the
//!   digest.
//! - [`window`]: tumbling windows on the capture clock over any [`window::Aggregate`], with a
//!   snapshot readable from another thread (`serve`, `top`); [`window::CallWindows`] windows
//!   any aggregate of calls.
//! - [`compat`] reproduces zktraffic's `--count-requests` and `--measure-latency`.
//! - [`zkstats`] is zktraffic's `zk-stats-daemon` (per-path, per-IP and per-auth counters
//!   over tumbling windows on the capture clock) with correct values, error and latency
//!   keys; [`metrics`] the Prometheus metrics of `zkscope serve`; [`daemon`] feeds both.
//! - [`classes`] folds paths into classes like pt-query-digest's fingerprints (numbers,
//!   sequential suffixes, UUIDs, hex ids, hosts and ports, Kafka/Solr/HBase names, user
//!   `REGEX=REPLACEMENT` rules), cached per distinct path, each class with the rules that made it.
//!
//! A new view usually needs a new consumer here (or a new [`window::Aggregate`]), and a
//! printer and a command in the binary.
//!
//! ```
//! use zkscope_analysis::{Aggregator, Config, GroupKey};
//! use zkscope_analysis::elections::Tracker;
//!
//! let agg = Aggregator::new(&Config {
//!     keys: vec![GroupKey::Type, GroupKey::Path],
//!     ..Config::default()
//! });
//! // Both analyses in one run: `pipeline.run((agg, Tracker::default()))`. Then:
//! let (agg, tracker) = (agg, Tracker::default());
//! for row in agg.table().rows() {
//!     println!("{:?} {}", row.values, row.summary.count);
//! }
//! assert!(tracker.summaries().is_empty());
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

mod agg;
mod call;
pub mod classes;
pub mod compat;
pub mod daemon;
pub mod digest;
pub mod elections;
pub mod fmt;
pub mod hash;
mod key;
mod latency;
pub mod metrics;
pub mod quorum;
pub mod window;
pub mod zkstats;

pub use agg::{
    sort_rows, write_value, Aggregator, Column, Config, Filter, Group, GroupTable, Kinds, Row,
    Summary, NO_REPLY, OTHER,
};
pub use call::{identity, Call, CallBuilder, CallKind, NOAUTH};
pub use classes::{Class, ClassOptions, Fold, PathClasses, RuleSet, UserRule};
pub use key::{GroupKey, PathNorm, UnknownKey};
pub use latency::{ns_to_us, LatencyStats, SIGFIG};

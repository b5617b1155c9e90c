//! What `zkscope serve` feeds with client messages: zktraffic's windowed stats and the
//! Prometheus metrics, from one call builder.

use zkscope_capture::client::{ClientSink, Msg};
use zkscope_capture::packet::Timestamp;

use crate::metrics::Recorder;
use crate::zkstats::WindowedStats;

/// Windowed stats and metrics together.
#[derive(Debug)]
pub struct DaemonSink {
    /// zktraffic's stats over tumbling windows.
    pub stats: WindowedStats,
    /// The metrics.
    pub metrics: Recorder,
}

impl DaemonSink {
    /// Both, fed together.
    pub fn new(stats: WindowedStats, metrics: Recorder) -> Self {
        DaemonSink { stats, metrics }
    }

    /// End of input: the open window closes, pending handshakes are counted.
    pub fn finish(&mut self, end: Timestamp) {
        let DaemonSink { stats, metrics } = self;
        stats.finish_with(end, &mut |c| metrics.call(c));
    }
}

impl ClientSink for DaemonSink {
    fn message(&mut self, m: &Msg<'_>) {
        let DaemonSink { stats, metrics } = self;
        metrics.message(m);
        stats.message_with(m, &mut |c| metrics.call(c));
    }
}

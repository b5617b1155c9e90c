//! Replays the committed cargo-fuzz corpora of the segment-stream and capture-file targets
//! (`fuzz/corpus/*`) through the same harnesses as the fuzzers (`fuzz/harness/*.rs`).

#[path = "../../../fuzz/harness/pcap.rs"]
mod pcap;
#[path = "../../../fuzz/harness/stream.rs"]
mod stream;

include!("../../../fuzz/replay.rs");

#[test]
fn stream_corpus() {
    replay("stream", stream::run);
}

#[test]
fn pcap_corpus() {
    replay("pcap", pcap::run);
}

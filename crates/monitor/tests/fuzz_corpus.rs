//! Replays the committed cargo-fuzz corpus of the YAML config target
//! (`fuzz/corpus/monitor_config`) through the same harness as the fuzzer.

#[path = "../../../fuzz/harness/monitor_config.rs"]
mod monitor_config;

include!("../../../fuzz/replay.rs");

#[test]
fn monitor_config_corpus() {
    replay("monitor_config", monitor_config::run);
}

//! Replays the committed cargo-fuzz corpora of the client, election and quorum targets
//! (`fuzz/corpus/*`) through the same harnesses as the fuzzers (`fuzz/harness/*.rs`).

#[path = "../../../fuzz/harness/client.rs"]
mod client;
#[path = "../../../fuzz/harness/election.rs"]
mod election;
#[path = "../../../fuzz/harness/quorum.rs"]
mod quorum;

include!("../../../fuzz/replay.rs");

#[test]
fn client_corpus() {
    replay("client", client::run);
}

#[test]
fn election_corpus() {
    replay("election", election::run);
}

#[test]
fn quorum_corpus() {
    replay("quorum", quorum::run);
}

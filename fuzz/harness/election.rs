//! Election-port (FLE) decoders: the initial message, quorum SASL packets, vote
//! notifications (the body alone and length-prefixed) and the configuration text they carry.
//! Stream decoders must be prefix-consistent: a strict prefix of a complete message is
//! `Partial`, never `Invalid` nor another message.
//!
//! Shared by `fuzz/fuzz_targets/election.rs` and the corpus replay in `crates/proto/tests`.

use zkscope_proto::election::{
    config_version, decode_initial, decode_notification, decode_quorum_auth, parse_config,
    parse_host_port, ConfigLine, Status,
};

/// A complete stream message must need all the bytes it consumed.
fn prefix_consistent(data: &[u8], decode: impl Fn(&[u8]) -> Status<usize>) {
    if let Status::Complete(n) = decode(data) {
        assert!(n <= data.len(), "consumed more than given");
        assert!(n > 0, "complete message of zero bytes");
        for cut in [n - 1, n / 2] {
            if cut < n {
                if let Some(p) = data.get(..cut) {
                    assert!(
                        decode(p).is_partial(),
                        "prefix of {cut}/{n} bytes not partial"
                    );
                }
            }
        }
    }
}

fn config(text: &str) {
    for line in parse_config(text) {
        serde_json::to_string(&line).unwrap();
        match line {
            ConfigLine::Server(s) => {
                assert_eq!(s.addrs.iter().count(), s.addrs.len());
            }
            l @ ConfigLine::Group { .. } => {
                let _ = l.group_members().count();
            }
            _ => {}
        }
    }
    let _ = config_version(text);
    let _ = parse_host_port(text);
}

/// Runs every election decoder over `data`; panics on an inconsistency.
pub fn run(data: &[u8]) {
    prefix_consistent(data, |b| decode_initial(b).map(|(n, _)| n));
    prefix_consistent(data, |b| decode_quorum_auth(b).map(|(n, _)| n));
    if let Status::Complete((_, m)) = decode_initial(data) {
        let _ = m.addresses().count();
        serde_json::to_string(&m).unwrap();
    }
    if let Status::Complete((_, p)) = decode_quorum_auth(data) {
        let _ = format!("{p:?}");
    }
    // A notification body, and one behind its 4-byte length prefix as on the wire.
    for body in [Some(data), data.get(4..)] {
        if let Ok(n) = decode_notification(body.unwrap_or_default()) {
            serde_json::to_string(&n).unwrap();
            let _ = n.effective_version();
            if let Some(text) = n.config_str() {
                config(text);
            }
            let _ = n.config_lines().count();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        config(text);
    }
}

//! Client-port decoders on one frame body: requests, replies (for every opcode the reply
//! decoder distinguishes, and none), watch events and handshakes. Whatever decodes must
//! serialise, and the decoders must agree with their own `looks_like` predicates.
//!
//! Shared by `fuzz/fuzz_targets/client.rs` and the corpus replay in `crates/proto/tests`.

use zkscope_proto::{
    decode_event, decode_reply, decode_request, four_letter_word, is_tls_client_hello,
    ConnectRequest, ConnectResponse, OpCode, ReplyHeader, RequestHeader, WatchEvent,
};

/// Opcodes whose replies decode differently, plus unknown and extreme ones.
const REPLY_OPS: &[i32] = &[
    -12,
    -11,
    -10,
    -9,
    -8,
    -7,
    -6,
    -5,
    -4,
    -3,
    -2,
    -1,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
    23,
    100,
    101,
    102,
    103,
    104,
    105,
    106,
    107,
    108,
    555,
    i32::MIN,
    i32::MAX,
];

/// Runs every client decoder over `data`; panics on an inconsistency.
pub fn run(data: &[u8]) {
    if let Ok(r) = decode_request(data) {
        assert!(r.trailing <= data.len());
        serde_json::to_string(&r).unwrap();
        let _ = format!("{r:?}");
        if let Some(p) = r.body.path() {
            let _ = p.to_string();
        }
    }
    for op in REPLY_OPS
        .iter()
        .map(|&o| Some(OpCode(o)))
        .chain(std::iter::once(None))
    {
        if let Ok(r) = decode_reply(data, op) {
            assert!(r.trailing <= data.len());
            serde_json::to_string(&r).unwrap();
            let _ = format!("{r:?}");
        }
    }
    if let Ok((h, e)) = decode_event(data) {
        serde_json::to_string(&(h, &e)).unwrap();
    }
    if let Ok(e) = WatchEvent::decode(data) {
        serde_json::to_string(&e).unwrap();
    }
    if let Ok(c) = ConnectRequest::decode(data) {
        serde_json::to_string(&c).unwrap();
    }
    if let Ok(c) = ConnectResponse::decode(data) {
        serde_json::to_string(&c).unwrap();
    }
    if ConnectRequest::looks_like(data) {
        assert!(
            ConnectRequest::decode(data).is_ok(),
            "looks_like but does not decode"
        );
    }
    if ConnectResponse::looks_like(data) {
        assert!(
            ConnectResponse::decode(data).is_ok(),
            "looks_like but does not decode"
        );
    }
    let head = data.get(..16).unwrap_or(data);
    let _ = ConnectRequest::looks_like_prefix(data.len(), head);
    let _ = ConnectResponse::looks_like_prefix(data.len(), head);
    let _ = RequestHeader::decode(data);
    let _ = ReplyHeader::decode(data);
    let _ = is_tls_client_hello(data);
    if let Some(&[a, b, c, d]) = data.get(..4) {
        let _ = four_letter_word([a, b, c, d]);
    }
}

//! Integration tests for zkscope-proto: one test binary (see `autotests`).
//!
//! The jute encoder in `enc.rs` builds frames; `frames.rs` is the corpus
//! shared by the per-opcode, prefix, allocation, fuzz and JSON tests.

mod alloc;
mod enc;
mod frames;
mod fuzz;
mod json;
mod prefixes;
mod replies;
mod requests;

use std::hint::black_box;

use frames::Kind;
use zkscope_proto::{
    decode_event, decode_reply, decode_request, ConnectRequest, ConnectResponse, DecodeError,
    OpCode, Reply, ReplyBody, Request, RequestBody,
};

/// Touches every lazily decoded element (without formatting, so without
/// allocating) and checks that iterators yield `len()` items.
pub fn walk_request_body(b: &RequestBody<'_>) {
    match b {
        RequestBody::Create { acl, .. } | RequestBody::SetAcl { acl, .. } => {
            assert_eq!(acl.iter().map(black_box).count(), acl.len());
        }
        RequestBody::SetWatches {
            data,
            exist,
            child,
            persistent,
            persistent_recursive,
            ..
        } => {
            for v in [
                Some(data),
                Some(exist),
                Some(child),
                persistent.as_ref(),
                persistent_recursive.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                assert_eq!(v.iter().map(black_box).count(), v.len());
            }
        }
        RequestBody::Multi(ops) => {
            let mut n = 0;
            for op in ops {
                walk_request_body(&op.body);
                n += 1;
            }
            assert_eq!(n, ops.len());
        }
        other => {
            black_box(other);
        }
    }
}

/// Same as [`walk_request_body`] for replies.
pub fn walk_reply_body(b: &ReplyBody<'_>) {
    match b {
        ReplyBody::GetAcl { acl, .. } => assert_eq!(acl.iter().map(black_box).count(), acl.len()),
        ReplyBody::GetChildren { children } | ReplyBody::GetChildren2 { children, .. } => {
            assert_eq!(children.iter().map(black_box).count(), children.len())
        }
        ReplyBody::GetEphemerals { paths } => {
            assert_eq!(paths.iter().map(black_box).count(), paths.len())
        }
        ReplyBody::WhoAmI { clients } => {
            assert_eq!(clients.iter().map(black_box).count(), clients.len())
        }
        ReplyBody::Multi(results) => {
            let mut n = 0;
            for r in results {
                walk_reply_body(&r.body);
                n += 1;
            }
            assert_eq!(n, results.len());
        }
        other => {
            black_box(other);
        }
    }
}

/// Decodes `bytes` with the decoder for `kind` and walks the result.
pub fn decode_case(kind: Kind, bytes: &[u8]) -> Result<(), DecodeError> {
    match kind {
        Kind::Request => decode_request(bytes).map(|r: Request<'_>| {
            assert!(r.trailing <= bytes.len());
            walk_request_body(&r.body)
        }),
        Kind::Reply(op) => decode_reply(bytes, op.map(OpCode)).map(|r: Reply<'_>| {
            assert!(r.trailing <= bytes.len());
            walk_reply_body(&r.body)
        }),
        Kind::Event => decode_event(bytes).map(|e| {
            black_box(e);
        }),
        Kind::ConnReq => ConnectRequest::decode(bytes).map(|c| {
            black_box(c);
        }),
        Kind::ConnResp => ConnectResponse::decode(bytes).map(|c| {
            black_box(c);
        }),
    }
}

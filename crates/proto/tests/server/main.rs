//! Integration tests for the server-to-server decoders (`election`, `quorum`):
//! zktraffic's byte vectors, the zktraffic captures decoded as streams,
//! prefixes, fuzzing, allocation and JSON shape.

mod alloc;
mod captures;
mod enc;
mod frames;
mod fuzz;
mod json;
mod pcap;
mod prefixes;
mod snapshot;
mod streams;
mod vectors;

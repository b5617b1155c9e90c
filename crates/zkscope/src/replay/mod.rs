//! `zkscope replay`'s machinery: [`plan`] turns a capture into sessions of requests to
//! re-send (and what each must wait for), [`engine`] re-sends them over raw jute connections,
//! [`report`] compares the outcome with the capture.

pub mod engine;
pub mod plan;
pub mod report;

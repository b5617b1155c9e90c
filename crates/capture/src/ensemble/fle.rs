//! One direction of a leader-election (FLE) connection (protocol.md §4): the initiator's
//! initial message, an optional quorum SASL exchange, then `int length + body` frames in both
//! directions. Framing (and resynchronisation after gaps) is the shared [`Framer`]'s.

use zkscope_proto::election::{
    decode_initial, decode_notification, decode_quorum_auth, InitialMessage, QuorumAuthPacket,
    Status, MAX_INITIAL_ADDR_LEN, MAX_MESSAGE_LEN,
};
use zkscope_proto::jute::DecodeError;

use crate::framer::{FrameEvent, Framer};

/// Smallest notification body receivers act on.
pub(crate) const MIN_NOTIFICATION: usize = 28;

/// What one direction of an election connection yields.
#[derive(Debug)]
pub(crate) enum FleEvent<'a> {
    /// The initiator's first message.
    Initial(InitialMessage<'a>),
    /// The first bytes were not an initial message.
    BadInitial { error: DecodeError, head: &'a [u8] },
    /// A quorum SASL packet.
    Auth(QuorumAuthPacket<'a>),
    /// A frame body (a notification, normally).
    Frame(&'a [u8]),
    /// A frame that lost bytes in a gap: its captured start and full length.
    Holed { head: &'a [u8], len: usize },
    /// An impossible length prefix.
    BadLength,
    /// Bytes skipped to find the next frame.
    Skipped(u64),
    /// An incomplete message dropped at a gap or at the end.
    PartialDropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initial,
    Auth,
    Frames,
}

/// One direction of an election connection.
#[derive(Debug)]
pub(crate) struct FleStream {
    phase: Phase,
    /// An incomplete initial message or auth packet.
    acc: Vec<u8>,
    framer: Framer,
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Bytes the initial message at the start of `b` needs (exact once the length is known).
fn initial_need(b: &[u8]) -> usize {
    match b.get(..8) {
        None => 8,
        Some(first) if first[0] & 0x80 == 0 => 8,
        Some(_) => match i32_at(b, 16) {
            None => 20,
            Some(n) => 20 + usize::try_from(n).unwrap_or(0).min(MAX_INITIAL_ADDR_LEN),
        },
    }
}

fn auth_need(b: &[u8]) -> usize {
    match i32_at(b, 12) {
        None => 16,
        Some(n) => 16usize.saturating_add(usize::try_from(n).unwrap_or(0)),
    }
}

/// Whether a frame found while resynchronising can be a notification: `body` is the whole
/// frame when `body.len() == len`, else its start.
pub(crate) fn plausible_notification(len: usize, body: &[u8]) -> bool {
    if len < MIN_NOTIFICATION || !i32_at(body, 0).is_some_and(|s| (0..=3).contains(&s)) {
        return false;
    }
    if body.len() < len {
        return true;
    }
    match decode_notification(body) {
        Ok(n) => {
            n.trailing == 0
                && n.leader >= 0
                && n.election_epoch >= 0
                && (matches!(len, 28 | 36 | 40) || n.config.is_some())
        }
        Err(_) => false,
    }
}

enum Step {
    /// Go on with the rest of the input.
    More,
    /// All input used.
    Done,
}

impl FleStream {
    /// `initiator`: this direction starts with the initial message. `synced`: the stream
    /// start was captured.
    pub(crate) fn new(initiator: bool, synced: bool) -> Self {
        let phase = match (synced, initiator) {
            (false, _) => Phase::Frames,
            (true, true) => Phase::Initial,
            (true, false) => Phase::Auth,
        };
        FleStream {
            phase,
            acc: Vec::new(),
            framer: Framer::new(1, MAX_MESSAGE_LEN, synced),
        }
    }

    /// Feeds the next bytes of this direction.
    pub(crate) fn push(&mut self, mut data: &[u8], out: &mut dyn FnMut(FleEvent<'_>)) {
        loop {
            let step = match self.phase {
                Phase::Initial => self.initial(&mut data, out),
                Phase::Auth => self.auth(&mut data, out),
                Phase::Frames => {
                    let framer = &mut self.framer;
                    framer.push(data, &mut |e| on_frame(e, out));
                    Step::Done
                }
            };
            if matches!(step, Step::Done) {
                return;
            }
        }
    }

    fn initial(&mut self, data: &mut &[u8], out: &mut dyn FnMut(FleEvent<'_>)) -> Step {
        if self.acc.is_empty() {
            if data.is_empty() {
                return Step::Done;
            }
            match decode_initial(data) {
                Status::Complete((n, m)) => {
                    out(FleEvent::Initial(m));
                    *data = &data[n..];
                    self.phase = Phase::Auth;
                }
                Status::Partial => {
                    self.acc.extend_from_slice(data);
                    *data = &[];
                    return Step::Done;
                }
                Status::Invalid(error) => {
                    out(FleEvent::BadInitial {
                        error,
                        head: &data[..data.len().min(64)],
                    });
                    self.lose_sync();
                }
            }
            return Step::More;
        }
        loop {
            match decode_initial(&self.acc) {
                Status::Complete((_, m)) => {
                    out(FleEvent::Initial(m));
                    self.acc.clear();
                    self.phase = Phase::Auth;
                    return Step::More;
                }
                Status::Invalid(error) => {
                    out(FleEvent::BadInitial {
                        error,
                        head: &self.acc[..self.acc.len().min(64)],
                    });
                    self.acc.clear();
                    self.lose_sync();
                    return Step::More;
                }
                Status::Partial => {
                    let want = initial_need(&self.acc).saturating_sub(self.acc.len());
                    let take = want.max(1).min(data.len());
                    if take == 0 {
                        return Step::Done;
                    }
                    self.acc.extend_from_slice(&data[..take]);
                    *data = &data[take..];
                }
            }
        }
    }

    fn auth(&mut self, data: &mut &[u8], out: &mut dyn FnMut(FleEvent<'_>)) -> Step {
        if self.acc.is_empty() {
            if data.is_empty() {
                return Step::Done;
            }
            match decode_quorum_auth(data) {
                Status::Complete((n, p)) => {
                    out(FleEvent::Auth(p));
                    *data = &data[n..];
                }
                Status::Partial => {
                    self.acc.extend_from_slice(data);
                    *data = &[];
                    return Step::Done;
                }
                Status::Invalid(_) => self.phase = Phase::Frames,
            }
            return Step::More;
        }
        loop {
            match decode_quorum_auth(&self.acc) {
                Status::Complete((_, p)) => {
                    out(FleEvent::Auth(p));
                    self.acc.clear();
                    return Step::More;
                }
                Status::Invalid(_) => {
                    // Not auth after all: these bytes start the frames.
                    self.phase = Phase::Frames;
                    let acc = std::mem::take(&mut self.acc);
                    self.framer.push(&acc, &mut |e| on_frame(e, out));
                    self.acc = acc;
                    self.acc.clear();
                    return Step::More;
                }
                Status::Partial => {
                    let want = auth_need(&self.acc).saturating_sub(self.acc.len());
                    let take = want.max(1).min(data.len());
                    if take == 0 {
                        return Step::Done;
                    }
                    self.acc.extend_from_slice(&data[..take]);
                    *data = &data[take..];
                }
            }
        }
    }

    fn lose_sync(&mut self) {
        self.phase = Phase::Frames;
        self.framer = Framer::new(1, MAX_MESSAGE_LEN, false);
    }

    /// `lost` bytes of this direction are missing.
    pub(crate) fn gap(&mut self, lost: u64, out: &mut dyn FnMut(FleEvent<'_>)) {
        if self.phase != Phase::Frames {
            if !self.acc.is_empty() {
                out(FleEvent::PartialDropped);
            }
            self.acc.clear();
            self.lose_sync();
            return;
        }
        if self.framer.gap(lost, &mut |e| on_frame(e, out)) {
            out(FleEvent::PartialDropped);
        }
    }

    /// End of the stream.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(FleEvent<'_>)) {
        if !self.acc.is_empty() || self.framer.buffered() > 0 {
            out(FleEvent::PartialDropped);
        }
        self.acc.clear();
    }
}

fn on_frame(e: FrameEvent<'_>, out: &mut dyn FnMut(FleEvent<'_>)) -> bool {
    match e {
        FrameEvent::Frame { body } => out(FleEvent::Frame(body)),
        FrameEvent::Holed { head, len } => out(FleEvent::Holed { head, len }),
        FrameEvent::Candidate { len, body } => return plausible_notification(len, body),
        FrameEvent::BadLength { .. } => out(FleEvent::BadLength),
        FrameEvent::Skipped { bytes } => out(FleEvent::Skipped(bytes)),
    }
    false
}

/// True when `buf` (the first bytes seen of one direction, mid-stream) starts with whole
/// frames that are all plausible notifications (at least one).
pub(crate) fn looks_like_fle_frames(buf: &[u8]) -> bool {
    let mut b = buf;
    let mut whole = 0;
    while let Some(len) = i32_at(b, 0) {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        let Some(body) = b.get(4..4 + len) else {
            // An incomplete last frame must look right as far as it goes.
            let head = b.get(4..).unwrap_or_default();
            return whole > 0 && (head.len() < 4 || plausible_notification(len, head));
        };
        if !plausible_notification(len, body) {
            return false;
        }
        whole += 1;
        b = &b[4 + len..];
    }
    whole > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn initial_v1(sid: i64, addr: &str) -> Vec<u8> {
        let mut v = (-65536i64).to_be_bytes().to_vec();
        v.extend(sid.to_be_bytes());
        v.extend((addr.len() as i32).to_be_bytes());
        v.extend(addr.as_bytes());
        v
    }

    fn notification(state: i32, leader: i64, config: &str) -> Vec<u8> {
        let mut b = state.to_be_bytes().to_vec();
        b.extend(leader.to_be_bytes());
        b.extend(0x1_0000_0000i64.to_be_bytes());
        b.extend(1i64.to_be_bytes());
        b.extend(1i64.to_be_bytes());
        b.extend(2i32.to_be_bytes());
        b.extend((config.len() as i32).to_be_bytes());
        b.extend(config.as_bytes());
        let mut f = (b.len() as i32).to_be_bytes().to_vec();
        f.extend(b);
        f
    }

    #[derive(Default, Debug, PartialEq)]
    struct Got {
        initial: Vec<i64>,
        frames: Vec<usize>,
        other: usize,
    }

    fn run(s: &mut FleStream, chunks: &[&[u8]]) -> Got {
        let mut got = Got::default();
        for c in chunks {
            s.push(c, &mut |e| match e {
                FleEvent::Initial(m) => got.initial.push(m.sid),
                FleEvent::Frame(b) => got.frames.push(b.len()),
                _ => got.other += 1,
            });
        }
        got
    }

    #[test]
    fn initial_then_frames_at_every_split() {
        let cfg = "server.1=127.0.0.1:2888:3888:participant;2181\nversion=0";
        let mut data = initial_v1(3, "127.0.0.1:3890");
        data.extend(notification(0, 3, cfg));
        data.extend(notification(0, 3, cfg));
        for i in 0..=data.len() {
            for j in (i..=data.len()).step_by(5) {
                let mut s = FleStream::new(true, true);
                let got = run(&mut s, &[&data[..i], &data[i..j], &data[j..]]);
                assert_eq!(got.initial, [3], "{i},{j}");
                assert_eq!(got.frames.len(), 2, "{i},{j}");
                assert_eq!(got.other, 0);
            }
        }
        // Byte by byte, like omni.pcap's one-byte length segments.
        let mut s = FleStream::new(true, true);
        let chunks: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(run(&mut s, &chunks).frames.len(), 2);
    }

    #[test]
    fn legacy_initial_and_mid_stream() {
        let mut data = 2i64.to_be_bytes().to_vec();
        data.extend(notification(1, 3, "version=0"));
        let mut s = FleStream::new(true, true);
        let got = run(&mut s, &[&data]);
        assert_eq!((got.initial, got.frames.len()), (vec![2], 1));
        // Mid-stream: the framer finds the notification after junk.
        let mut junk = vec![0xee; 7];
        junk.extend(notification(1, 3, "version=0"));
        junk.extend(notification(1, 3, "version=0"));
        let mut s = FleStream::new(true, false);
        let got = run(&mut s, &[&junk]);
        assert_eq!(got.frames.len(), 2);
        assert!(looks_like_fle_frames(&notification(0, 1, "version=0")));
        assert!(!looks_like_fle_frames(b"\x00\x00\x00\x05hello"));
    }
}

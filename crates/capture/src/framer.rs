//! Length-prefixed framing (client port 2181, election port 3888).
//!
//! A [`Framer`] turns one direction of a reassembled TCP stream into frames: a 4-byte big-endian
//! length followed by that many bytes. Frames that lie wholly inside one pushed slice are handed
//! out as borrowed slices (zero copy); only a frame that straddles pushes is copied, into a buffer
//! that is reused and grows with the bytes that actually arrive, never with the announced length,
//! so a bogus 2 GB prefix costs nothing.
//!
//! Gaps: when bytes are missing inside a frame whose length is known (a lost segment, or a
//! packet cut by the capture's snap length), the framer skips exactly the missing bytes, reports
//! the frame as [`FrameEvent::Holed`] with what it has of its start, and stays in sync. When the
//! missing bytes may contain a frame boundary, or when a capture starts mid-stream, the framer is
//! *unsynchronised*: it scans for the next offset where a plausible frame starts, as judged by
//! the caller (who knows the protocol, see [`FrameEvent::Candidate`]), and counts the bytes it
//! skipped.

/// What the framer tells its caller.
#[derive(Debug)]
pub enum FrameEvent<'a> {
    /// A complete frame.
    Frame {
        /// The bytes after the length prefix.
        body: &'a [u8],
    },
    /// A frame with bytes missing in a gap: `head` is what was captured before the gap (the
    /// frame's first bytes), `len` its full length.
    Holed {
        /// The captured start of the frame.
        head: &'a [u8],
        /// The frame's length prefix.
        len: usize,
    },
    /// While resynchronising: could a frame of `len` bytes (at most [`FULL_JUDGE`]) start here?
    /// `body` is the whole frame when `body.len() == len`, else its first bytes (at least 16, at
    /// most [`HEAD`]): a candidate is asked about its start first and, if that looks right,
    /// again once it is whole. The callback answers with its return value; for every other
    /// event the return value is ignored.
    Candidate {
        /// The candidate's length prefix.
        len: usize,
        /// The candidate's bytes.
        body: &'a [u8],
    },
    /// A length prefix that is impossible (negative, below the minimum or above the maximum):
    /// the stream is lost until the next plausible frame.
    BadLength {
        /// The prefix as read.
        len: i32,
    },
    /// Bytes skipped while searching for the next frame start.
    Skipped {
        /// How many.
        bytes: u64,
    },
}

/// Bytes of a candidate needed before its start is judged (a reply header is 16 bytes).
const JUDGE: usize = 16;
/// Longest frame accepted when resynchronising (it is judged whole).
pub const FULL_JUDGE: usize = 64 << 10;
/// Bytes of a longer candidate shown to the judge.
pub const HEAD: usize = 64;
/// How many unjudged bytes the resynchronising scan may hold before giving up on a candidate.
const SCAN_LIMIT: usize = FULL_JUDGE + (64 << 10);
/// Largest frame accepted as a resynchronisation point. A frame is only trusted once it has
/// been judged whole (and the one after it, when present), so longer ones are skipped: losing
/// one large frame after a gap costs far less than locking onto a false length and swallowing
/// megabytes of good frames.
const RESYNC_MAX_LEN: usize = FULL_JUDGE;

/// Buffer capacity kept once a straddling frame is complete; a larger one is freed.
const KEEP_CAPACITY: usize = 64 << 10;

/// Splits one direction of a stream into length-prefixed frames.
#[derive(Debug)]
pub struct Framer {
    /// Bytes of an incomplete frame (prefix included) or, when unsynchronised, unscanned bytes.
    buf: Vec<u8>,
    synced: bool,
    /// Bytes of the current frame still to be skipped (it lost bytes in a gap), the missing
    /// ones included.
    hole: Option<usize>,
    min_len: usize,
    max_len: usize,
}

/// The event callback: receives events, answers [`FrameEvent::Candidate`]s.
pub type Callback<'c> = dyn FnMut(FrameEvent<'_>) -> bool + 'c;

impl Framer {
    /// A framer accepting bodies of `min_len..=max_len` bytes. `synced` says whether the
    /// stream is known to start at a frame boundary (the connection's SYN was seen).
    pub fn new(min_len: usize, max_len: usize, synced: bool) -> Self {
        Framer {
            buf: Vec::new(),
            synced,
            hole: None,
            min_len,
            max_len,
        }
    }

    /// Whether the framer currently knows where frames start.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Bytes held back, waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Memory held by the buffer (its capacity), for a global budget over connections.
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives up the buffered bytes to free their memory. A partial frame of known length is
    /// reported [`FrameEvent::Holed`] from what it has and its rest is skipped, so the framer
    /// stays in sync (the same as bytes lost in a gap); unscanned bytes of an unsynchronised
    /// stream are reported [`FrameEvent::Skipped`]. Returns whether anything was given up.
    pub fn shed(&mut self, out: &mut Callback<'_>) -> bool {
        if self.buf.is_empty() {
            self.buf = Vec::new();
            return false;
        }
        if self.synced && self.buf.len() >= 4 {
            let len = prefix(&self.buf) as usize;
            let have = self.buf.len() - 4;
            out(FrameEvent::Holed {
                head: &self.buf[4..],
                len,
            });
            if len > have {
                self.hole = Some(len - have);
            }
        } else {
            // Unscanned bytes, or less than a length prefix: the frame boundary goes with them.
            self.synced = false;
            out(FrameEvent::Skipped {
                bytes: self.buf.len() as u64,
            });
        }
        self.buf = Vec::new();
        true
    }

    /// `lost` bytes are missing from the stream at this point. If they fall inside the current
    /// frame (its length is known and it extends past them) the frame is reported
    /// [`FrameEvent::Holed`] now and the framer stays in sync; otherwise any partial frame is
    /// dropped and the framer resynchronises. Returns whether a partial frame was dropped.
    pub fn gap(&mut self, lost: u64, out: &mut Callback<'_>) -> bool {
        if self.synced {
            if let Some(remaining) = &mut self.hole {
                if (*remaining as u64) > lost {
                    *remaining -= lost as usize;
                    return false;
                }
                let past = lost - *remaining as u64;
                self.hole = None;
                if past == 0 {
                    return false; // the frame ended exactly at the end of the gap
                }
            } else if self.buf.len() >= 4 {
                let len = prefix(&self.buf) as usize;
                let have = self.buf.len() - 4;
                let remaining = len - have;
                if (remaining as u64) > lost {
                    out(FrameEvent::Holed {
                        head: &self.buf[4..],
                        len,
                    });
                    self.buf.clear();
                    self.hole = Some(remaining - lost as usize);
                    return false;
                }
                if remaining as u64 == lost {
                    out(FrameEvent::Holed {
                        head: &self.buf[4..],
                        len,
                    });
                    self.buf.clear();
                    return false;
                }
            }
        }
        let dropped = !self.buf.is_empty() || self.hole.is_some();
        self.buf.clear();
        self.hole = None;
        self.synced = false;
        dropped
    }

    /// Feeds the next bytes of the stream; `out` receives every event in order.
    pub fn push(&mut self, mut data: &[u8], out: &mut Callback<'_>) {
        while self.synced && !data.is_empty() {
            if let Some(remaining) = &mut self.hole {
                // Skip the rest of a frame that lost bytes.
                let take = (*remaining).min(data.len());
                *remaining -= take;
                data = &data[take..];
                if *remaining == 0 {
                    self.hole = None;
                }
                continue;
            }
            if self.buf.is_empty() {
                let consumed = self.frames_in_place(data, out);
                data = &data[consumed..];
                if self.synced {
                    // Keep the incomplete tail: the only copy on the synchronised path.
                    self.buf.extend_from_slice(data);
                    return;
                }
            } else {
                let used = self.fill_buffered(data, out);
                data = &data[used..];
            }
        }
        if self.synced {
            return;
        }
        self.buf.extend_from_slice(data);
        self.drain_unsynced(out);
    }

    /// Resynchronises on the buffered bytes and emits the frames found there, iteratively.
    fn drain_unsynced(&mut self, out: &mut Callback<'_>) {
        loop {
            self.resync(out);
            if !self.synced {
                return;
            }
            let buf = std::mem::take(&mut self.buf);
            let consumed = self.frames_in_place(&buf, out);
            self.buf = buf;
            self.buf.drain(..consumed);
            if self.synced {
                return;
            }
        }
    }

    /// Emits the complete frames at the start of `data`; returns the bytes consumed.
    fn frames_in_place(&mut self, data: &[u8], out: &mut Callback<'_>) -> usize {
        let mut pos = 0;
        while let Some(p) = data.get(pos..pos + 4) {
            let len = prefix(p);
            if !self.len_ok(len) {
                self.synced = false;
                out(FrameEvent::BadLength { len });
                return pos;
            }
            let end = pos + 4 + len as usize;
            match data.get(pos + 4..end) {
                Some(body) => {
                    out(FrameEvent::Frame { body });
                    pos = end;
                }
                None => break,
            }
        }
        pos
    }

    /// Adds bytes to the buffered partial frame; emits it when complete. Returns bytes used.
    fn fill_buffered(&mut self, data: &[u8], out: &mut Callback<'_>) -> usize {
        let mut used = 0;
        if self.buf.len() < 4 {
            let take = (4 - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            used = take;
            if self.buf.len() < 4 {
                return used;
            }
        }
        let len = prefix(&self.buf);
        if !self.len_ok(len) {
            // The prefix itself is bad: the rest of `data` goes to the resync scan.
            out(FrameEvent::BadLength { len });
            self.synced = false;
            // Keep the bytes after the prefix's first byte so the scan can retry them.
            self.buf.drain(..1);
            out(FrameEvent::Skipped { bytes: 1 });
            return used;
        }
        let total = 4 + len as usize;
        let take = (total - self.buf.len()).min(data.len() - used);
        self.buf.extend_from_slice(&data[used..used + take]);
        used += take;
        if self.buf.len() == total {
            out(FrameEvent::Frame {
                body: &self.buf[4..],
            });
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                // A large frame's buffer is not kept for the life of the connection.
                self.buf = Vec::new();
            }
        }
        used
    }

    fn len_ok(&self, len: i32) -> bool {
        len >= 0 && (len as usize) >= self.min_len && (len as usize) <= self.max_len
    }

    /// Asks the caller about a candidate frame of `len` at the start of `b` (prefix included).
    /// `None`: its start looks right but not enough bytes are here yet to judge it whole.
    fn judge(&self, b: &[u8], len: usize, out: &mut Callback<'_>) -> Option<bool> {
        let avail = b.len() - 4;
        if avail >= len {
            return Some(out(FrameEvent::Candidate {
                len,
                body: &b[4..4 + len],
            }));
        }
        if avail < len.min(JUDGE) {
            return None;
        }
        // Rule out a bad start at once rather than waiting for the whole frame.
        if !out(FrameEvent::Candidate {
            len,
            body: &b[4..4 + avail.min(HEAD)],
        }) {
            return Some(false);
        }
        None
    }

    /// Scans `buf` for a plausible frame start. On success `buf` starts there and `synced` is
    /// set; otherwise the scanned bytes that can no longer start a frame are dropped.
    fn resync(&mut self, out: &mut Callback<'_>) {
        let mut start = 0;
        let mut decided = None;
        while start + 4 <= self.buf.len() {
            let b = &self.buf[start..];
            let len = prefix(b);
            if self.len_ok(len) && (len as usize) <= RESYNC_MAX_LEN {
                let len = len as usize;
                match self.judge(b, len, out) {
                    None if self.buf.len() - start <= SCAN_LIMIT => break, // wait for more
                    Some(true) if self.next_ok(b, len, out) => {
                        decided = Some(start);
                        break;
                    }
                    _ => {}
                }
            }
            start += 1;
        }
        let skip = decided.unwrap_or(start.min(self.buf.len()));
        if skip > 0 {
            self.buf.drain(..skip);
            out(FrameEvent::Skipped { bytes: skip as u64 });
        }
        if decided.is_some() {
            self.synced = true;
        }
    }

    /// When the frame after a candidate is present, it must be plausible too.
    fn next_ok(&self, b: &[u8], len: usize, out: &mut Callback<'_>) -> bool {
        let Some(next) = b.get(4 + len..) else {
            return true;
        };
        if next.len() < 4 {
            return true;
        }
        let nlen = prefix(next);
        if !self.len_ok(nlen) {
            return false;
        }
        // Judged only if it is all there; a partial next frame is not evidence either way.
        self.judge(next, nlen as usize, out).unwrap_or(true)
    }
}

/// The big-endian length prefix at the start of `b` (at least 4 bytes).
fn prefix(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// Collects frames and counters.
    #[derive(Default, Debug, PartialEq)]
    struct Got {
        frames: Vec<Vec<u8>>,
        holed: Vec<(Vec<u8>, usize)>,
        bad: usize,
        skipped: u64,
    }

    impl Got {
        /// Bodies starting with 0xAB are "plausible".
        fn on(&mut self, e: FrameEvent<'_>) -> bool {
            match e {
                FrameEvent::Frame { body } => self.frames.push(body.to_vec()),
                FrameEvent::Holed { head, len } => self.holed.push((head.to_vec(), len)),
                FrameEvent::BadLength { .. } => self.bad += 1,
                FrameEvent::Skipped { bytes } => self.skipped += bytes,
                FrameEvent::Candidate { body, .. } => return body.first() == Some(&0xAB),
            }
            false
        }
    }

    fn run(f: &mut Framer, chunks: &[&[u8]]) -> Got {
        let mut got = Got::default();
        for c in chunks {
            f.push(c, &mut |e| got.on(e));
        }
        got
    }

    #[test]
    fn many_frames_in_one_push() {
        let mut data = frame(&[0xAB, 1]);
        data.extend(frame(&[0xAB, 2, 3]));
        data.extend(frame(&[0xAB]));
        let mut f = Framer::new(1, 100, true);
        let got = run(&mut f, &[&data]);
        assert_eq!(
            got.frames,
            vec![vec![0xAB, 1], vec![0xAB, 2, 3], vec![0xAB]]
        );
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let mut data = frame(&[0xAB, 1, 2, 3, 4]);
        data.extend(frame(&[0xAB, 9]));
        data.extend(frame(&[0xAB; 17]));
        for i in 0..=data.len() {
            for j in i..=data.len() {
                let mut f = Framer::new(1, 100, true);
                let got = run(&mut f, &[&data[..i], &data[i..j], &data[j..]]);
                assert_eq!(got.frames.len(), 3, "split at {i},{j}");
                assert_eq!(got.frames[2], vec![0xAB; 17]);
                assert_eq!(got.bad, 0);
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut data = frame(&[0xAB, 1, 2]);
        data.extend(frame(&[0xAB, 3]));
        let chunks: Vec<&[u8]> = data.chunks(1).collect();
        let mut f = Framer::new(1, 100, true);
        let got = run(&mut f, &chunks);
        assert_eq!(got.frames, vec![vec![0xAB, 1, 2], vec![0xAB, 3]]);
    }

    #[test]
    fn huge_prefix_is_bad_and_allocates_nothing() {
        let mut data = 0x7fff_fff0_i32.to_be_bytes().to_vec();
        data.extend(frame(&[0xAB, 5]));
        let mut f = Framer::new(1, 1 << 20, true);
        let got = run(&mut f, &[&data]);
        assert_eq!(got.bad, 1);
        assert_eq!(got.frames, vec![vec![0xAB, 5]]);
        assert_eq!(got.skipped, 4);
        assert!(f.buf.capacity() < 1024);
    }

    #[test]
    fn huge_prefix_split_across_pushes() {
        let mut data = 0x7fff_fff0_i32.to_be_bytes().to_vec();
        data.extend(frame(&[0xAB, 5]));
        let mut f = Framer::new(1, 1 << 20, true);
        let got = run(&mut f, &[&data[..2], &data[2..]]);
        assert_eq!(got.bad, 1);
        assert_eq!(got.frames, vec![vec![0xAB, 5]]);
    }

    #[test]
    fn gap_inside_a_frame_keeps_sync() {
        let big = frame(&[0xAB, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let mut f = Framer::new(1, 100, true);
        let mut got = run(&mut f, &[&big[..6]]);
        // Bytes 6..9 are lost: the frame is reported with its head, the rest is skipped.
        assert!(!f.gap(3, &mut |e| got.on(e)));
        assert_eq!(got.holed, vec![(vec![0xAB, 1], 10)]);
        let mut rest = big[9..].to_vec();
        rest.extend(frame(&[0xAB, 42]));
        let more = run(&mut f, &[&rest]);
        assert_eq!(more.frames, vec![vec![0xAB, 42]]);
        assert_eq!(more.skipped, 0);
        assert!(f.is_synced());
    }

    #[test]
    fn gap_ending_exactly_at_frame_end_keeps_sync() {
        let big = frame(&[0xAB, 1, 2, 3]);
        let mut f = Framer::new(1, 100, true);
        let mut got = run(&mut f, &[&big[..5]]);
        assert!(!f.gap(3, &mut |e| got.on(e)));
        assert_eq!(got.holed.len(), 1);
        let more = run(&mut f, &[&frame(&[0xAB, 9])]);
        assert_eq!(more.frames, vec![vec![0xAB, 9]]);
    }

    #[test]
    fn two_gaps_in_one_frame() {
        let big = frame(&[0xAB; 20]);
        let mut f = Framer::new(1, 100, true);
        let mut got = run(&mut f, &[&big[..8]]);
        f.gap(4, &mut |e| got.on(e));
        f.push(&big[12..14], &mut |e| got.on(e));
        f.gap(5, &mut |e| got.on(e));
        f.push(&big[19..], &mut |e| got.on(e));
        f.push(&frame(&[0xAB, 3]), &mut |e| got.on(e));
        assert_eq!(got.holed.len(), 1);
        assert_eq!(got.frames, vec![vec![0xAB, 3]]);
    }

    #[test]
    fn gap_past_the_frame_end_resynchronises() {
        let tail = frame(&[0xAB, 7, 7]);
        let mut f = Framer::new(1, 100, true);
        let first = frame(&[0xAB, 1, 2, 3, 4, 5]);
        let mut got = run(&mut f, &[&first[..5]]);
        // The last 5 bytes of this frame and 2 of the next one are lost.
        assert!(f.gap(7, &mut |e| got.on(e)));
        assert!(!f.is_synced());
        let mut after = vec![0, 9, 9];
        after.extend(&tail);
        after.extend(frame(&[0xAB, 8]));
        let got = run(&mut f, &[&after]);
        assert_eq!(got.frames, vec![vec![0xAB, 7, 7], vec![0xAB, 8]]);
        assert_eq!(got.skipped, 3);
        assert!(f.is_synced());
    }

    #[test]
    fn gap_at_a_frame_boundary_resynchronises() {
        let mut f = Framer::new(1, 100, true);
        let mut got = run(&mut f, &[&frame(&[0xAB, 1])]);
        assert!(!f.gap(6, &mut |e| got.on(e)));
        assert!(!f.is_synced());
        let got = run(&mut f, &[&frame(&[0xAB, 2])]);
        assert_eq!(got.frames, vec![vec![0xAB, 2]]);
    }

    #[test]
    fn unsynced_start_at_boundary_skips_nothing() {
        let mut data = frame(&[0xAB, 1]);
        data.extend(frame(&[0xAB, 2]));
        let mut f = Framer::new(1, 100, false);
        let got = run(&mut f, &[&data]);
        assert_eq!(got.frames.len(), 2);
        assert_eq!(got.skipped, 0);
    }

    #[test]
    fn unsynced_waits_for_the_whole_candidate() {
        let data = frame(&[0xAB, 1, 2]);
        let mut f = Framer::new(1, 100, false);
        let got = run(&mut f, &[&data[..5], &data[5..]]);
        assert_eq!(got.frames, vec![vec![0xAB, 1, 2]]);
    }

    #[test]
    fn resync_rejects_candidate_followed_by_garbage() {
        // A fake candidate (prefix 2, body AB 00) followed by an impossible length.
        let mut data = vec![0, 0, 0, 2, 0xAB, 0, 0x7f, 0xff, 0xff, 0xff];
        data.extend(frame(&[0xAB, 4]));
        let mut f = Framer::new(1, 100, false);
        let got = run(&mut f, &[&data]);
        assert_eq!(got.frames, vec![vec![0xAB, 4]]);
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let mut seed = 0x1234_5678_u64;
        for _ in 0..2000 {
            let mut f = Framer::new(8, 4096, seed.is_multiple_of(2));
            let n = (seed % 300) as usize;
            let mut data = Vec::with_capacity(n);
            for _ in 0..n {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                data.push((seed >> 56) as u8);
            }
            let cut = (seed % (n as u64 + 1)) as usize;
            let mut on = |e: FrameEvent<'_>| match e {
                FrameEvent::Candidate { body, .. } => body.first().is_some_and(|b| b % 3 == 0),
                _ => false,
            };
            f.push(&data[..cut], &mut on);
            if seed.is_multiple_of(5) {
                f.gap(seed % 40, &mut on);
            }
            f.push(&data[cut..], &mut on);
        }
    }
}

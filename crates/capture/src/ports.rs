//! TCP traffic per server port, to say where the traffic was when none of it was ZooKeeper's.
//!
//! A run that decodes nothing should tell the user which ports carried TCP: the fix is then
//! `--port P`. Each segment counts for its connection's server end: the destination of a SYN
//! (without ACK), the source of a SYN-ACK, otherwise the lower of the two ports (servers listen
//! on low ports, clients use ephemeral ones). Fixed memory (one counter per port, allocated on
//! first use), no allocation per packet.

use crate::packet::TcpSegment;

/// Segments per server port.
#[derive(Debug, Default, Clone)]
pub struct PortTally {
    counts: Vec<u64>,
    total: u64,
}

impl PortTally {
    /// An empty tally (nothing allocated yet).
    pub fn new() -> PortTally {
        PortTally::default()
    }

    /// Counts one segment.
    pub fn add(&mut self, seg: &TcpSegment<'_>) {
        let (s, d) = (seg.src.port(), seg.dst.port());
        let port = match (seg.flags.syn, seg.flags.ack) {
            (true, false) => d,
            (true, true) => s,
            _ => s.min(d),
        };
        if self.counts.is_empty() {
            self.counts = vec![0; 1 << 16];
        }
        if let Some(c) = self.counts.get_mut(usize::from(port)) {
            *c += 1;
        }
        self.total += 1;
    }

    /// Adds the counts of another tally (of other connections of the same capture).
    pub fn merge(&mut self, o: &PortTally) {
        if o.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; 1 << 16];
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
    }

    /// Segments counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Segments of one port.
    pub fn get(&self, port: u16) -> u64 {
        self.counts.get(usize::from(port)).copied().unwrap_or(0)
    }

    /// The `n` busiest ports, busiest first (ties: lower port first).
    pub fn top(&self, n: usize) -> Vec<(u16, u64)> {
        let mut v: Vec<(u16, u64)> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .filter_map(|(p, &c)| u16::try_from(p).ok().map(|p| (p, c)))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TcpFlags;

    fn seg(src: &str, dst: &str, syn: bool, ack: bool) -> TcpSegment<'static> {
        TcpSegment {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq: 0,
            ack: 0,
            flags: TcpFlags {
                syn,
                ack,
                ..TcpFlags::default()
            },
            payload: &[],
            missing: 0,
        }
    }

    #[test]
    fn counts_the_server_end() {
        let mut t = PortTally::new();
        assert!(t.top(3).is_empty());
        // a server on a high port, seen from its handshake
        t.add(&seg("10.0.0.1:40000", "10.0.0.2:50001", true, false));
        t.add(&seg("10.0.0.2:50001", "10.0.0.1:40000", true, true));
        // mid-stream: the lower port
        for _ in 0..3 {
            t.add(&seg("10.0.0.1:51234", "10.0.0.2:9999", false, true));
            t.add(&seg("10.0.0.2:9999", "10.0.0.1:51234", false, true));
        }
        t.add(&seg("10.0.0.1:51234", "10.0.0.2:22", false, true));
        assert_eq!(t.total(), 9);
        assert_eq!(t.top(2), vec![(9999, 6), (50001, 2)]);
        assert_eq!(t.get(22), 1);
        assert_eq!(t.top(10).len(), 3);
    }
}

//! Captured frames and the link/IP/TCP header parser.
//!
//! [`parse_tcp`] is a small zero-copy hand parser: it allocates nothing, never
//! panics, and reports why a frame is not a usable TCP segment with [`Skip`].

use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Packet time: nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The epoch.
    pub const ZERO: Timestamp = Timestamp(0);

    /// `secs` seconds plus `nanos` nanoseconds (saturating).
    pub fn from_parts(secs: i64, nanos: i64) -> Self {
        Timestamp(secs.saturating_mul(NANOS_PER_SEC).saturating_add(nanos))
    }

    /// Whole seconds (rounded towards negative infinity).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub fn subsec_nanos(self) -> u32 {
        // rem_euclid of a positive modulus is in 0..1e9, which fits in u32.
        self.0.rem_euclid(NANOS_PER_SEC) as u32
    }

    /// Seconds as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// Microseconds since the epoch (rounded towards negative infinity).
    pub fn micros(self) -> i64 {
        self.0.div_euclid(1_000)
    }

    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn saturating_sub(self, earlier: Timestamp) -> Duration {
        let d = i128::from(self.0) - i128::from(earlier.0);
        Duration::from_nanos(u64::try_from(d.max(0)).unwrap_or(u64::MAX))
    }

    /// `self + d` (saturating).
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        let n = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(n))
    }
}

impl fmt::Display for Timestamp {
    /// `seconds.nanoseconds` since the epoch.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.secs(), self.subsec_nanos())
    }
}

/// A libpcap `LINKTYPE_*` value (the upper FCS/flag bits already masked off).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Linktype(pub i32);

impl Linktype {
    /// BSD loopback, 4-byte address family in host byte order.
    pub const NULL: Linktype = Linktype(0);
    /// Ethernet (with optional 802.1Q/802.1ad tags).
    pub const ETHERNET: Linktype = Linktype(1);
    /// Raw IP (some BSDs).
    pub const RAW_12: Linktype = Linktype(12);
    /// Raw IP (OpenBSD).
    pub const RAW_14: Linktype = Linktype(14);
    /// Raw IPv4 or IPv6.
    pub const RAW: Linktype = Linktype(101);
    /// OpenBSD loopback, 4-byte address family in network byte order.
    pub const LOOP: Linktype = Linktype(108);
    /// Linux cooked capture v1 (`-i any`).
    pub const LINUX_SLL: Linktype = Linktype(113);
    /// Raw IPv4.
    pub const IPV4: Linktype = Linktype(228);
    /// Raw IPv6.
    pub const IPV6: Linktype = Linktype(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: Linktype = Linktype(276);

    /// Whether [`parse_tcp`] understands this link type.
    pub fn is_supported(self) -> bool {
        matches!(self.0, 0 | 1 | 12 | 14 | 101 | 108 | 113 | 228 | 229 | 276)
    }

    /// The libpcap name, for messages.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NULL",
            1 => "EN10MB",
            12 | 14 | 101 => "RAW",
            108 => "LOOP",
            113 => "LINUX_SLL",
            228 => "IPV4",
            229 => "IPV6",
            276 => "LINUX_SLL2",
            _ => return None,
        })
    }
}

impl fmt::Display for Linktype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({})", self.0),
            None => write!(f, "linktype {}", self.0),
        }
    }
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// Link-layer header type of `data`.
    pub linktype: Linktype,
    /// The captured bytes (`caplen` of them).
    pub data: &'a [u8],
    /// Length of the frame on the wire (`>= data.len()` unless the file lies).
    pub orig_len: u32,
}

/// The TCP flags this crate cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    /// SYN: connection start.
    pub syn: bool,
    /// ACK: `ack` is valid.
    pub ack: bool,
    /// FIN: sender is done.
    pub fin: bool,
    /// RST: connection aborted.
    pub rst: bool,
    /// PSH.
    pub psh: bool,
}

impl TcpFlags {
    /// Decode the flags byte (offset 13 of the TCP header).
    pub fn from_bits(b: u8) -> Self {
        TcpFlags {
            fin: b & 0x01 != 0,
            syn: b & 0x02 != 0,
            rst: b & 0x04 != 0,
            psh: b & 0x08 != 0,
            ack: b & 0x10 != 0,
        }
    }
}

/// A TCP segment whose payload borrows the captured frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (of the SYN if set).
    pub seq: u32,
    /// Acknowledgement number (valid if `flags.ack`).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// The captured payload.
    pub payload: &'a [u8],
    /// Payload bytes announced by the IP header but cut off by the snap length.
    pub missing: u32,
}

/// Why a frame yields no TCP segment. Expected in normal traffic: count, don't fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Skip {
    /// Not IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// IP, but not TCP (or the TCP header is behind ESP).
    NotTcp,
    /// An IP fragment (not reassembled).
    Fragment,
    /// The capture ends inside the link, IP or TCP header.
    Truncated,
    /// A link type [`parse_tcp`] does not decode.
    UnsupportedLinktype(i32),
    /// Inconsistent header fields.
    Malformed,
}

impl Skip {
    /// A short stable name, for counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NotIp => "not_ip",
            Skip::NotTcp => "not_tcp",
            Skip::Fragment => "fragment",
            Skip::Truncated => "truncated",
            Skip::UnsupportedLinktype(_) => "unsupported_linktype",
            Skip::Malformed => "malformed",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::UnsupportedLinktype(l) => write!(f, "unsupported link type {l}"),
            s => f.write_str(s.as_str()),
        }
    }
}

#[inline]
fn be16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

#[derive(Clone, Copy)]
enum Net {
    V4,
    V6,
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const MAX_VLAN_TAGS: usize = 8;

/// Map an EtherType to IPv4/IPv6, skipping 802.1Q/802.1ad/QinQ tags.
fn ethertype(mut et: u16, mut rest: &[u8]) -> Result<(Net, &[u8]), Skip> {
    for _ in 0..=MAX_VLAN_TAGS {
        match et {
            ETH_IPV4 => return Ok((Net::V4, rest)),
            ETH_IPV6 => return Ok((Net::V6, rest)),
            0x8100 | 0x88a8 | 0x9100 | 0x9200 => {
                et = be16(rest, 2).ok_or(Skip::Truncated)?;
                rest = rest.get(4..).ok_or(Skip::Truncated)?;
            }
            _ => return Err(Skip::NotIp),
        }
    }
    Err(Skip::Malformed)
}

/// Raw IP: the version nibble decides.
fn raw_ip(d: &[u8]) -> Result<(Net, &[u8]), Skip> {
    match d.first().map(|b| b >> 4) {
        Some(4) => Ok((Net::V4, d)),
        Some(6) => Ok((Net::V6, d)),
        Some(_) => Err(Skip::NotIp),
        None => Err(Skip::Truncated),
    }
}

/// BSD NULL/LOOP: a 4-byte address family in either byte order.
fn bsd_family(d: &[u8]) -> Result<(Net, &[u8]), Skip> {
    let fam = d.get(..4).ok_or(Skip::Truncated)?;
    let rest = &d[4..];
    let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
    let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
    let is = |v: &[u32]| v.contains(&be) || v.contains(&le);
    if is(&[2]) {
        Ok((Net::V4, rest))
    } else if is(&[10, 24, 28, 30]) {
        Ok((Net::V6, rest))
    } else {
        Err(Skip::NotIp)
    }
}

/// Strip the link layer.
fn link(linktype: Linktype, d: &[u8]) -> Result<(Net, &[u8]), Skip> {
    match linktype.0 {
        1 => {
            let et = be16(d, 12).ok_or(Skip::Truncated)?;
            ethertype(et, &d[14..])
        }
        113 => {
            // pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
            let proto = be16(d, 14).ok_or(Skip::Truncated)?;
            if be16(d, 2) == Some(824) {
                return Err(Skip::NotIp); // ARPHRD_NETLINK: protocol is a netlink family
            }
            ethertype(proto, &d[16..])
        }
        276 => {
            // protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
            let proto = be16(d, 0).ok_or(Skip::Truncated)?;
            let rest = d.get(20..).ok_or(Skip::Truncated)?;
            if be16(d, 8) == Some(824) {
                return Err(Skip::NotIp);
            }
            ethertype(proto, rest)
        }
        0 | 108 => bsd_family(d),
        12 | 14 | 101 => raw_ip(d),
        228 => match raw_ip(d)? {
            (Net::V4, r) => Ok((Net::V4, r)),
            _ => Err(Skip::Malformed),
        },
        229 => match raw_ip(d)? {
            (Net::V6, r) => Ok((Net::V6, r)),
            _ => Err(Skip::Malformed),
        },
        other => Err(Skip::UnsupportedLinktype(other)),
    }
}

/// Addresses, the TCP bytes present (excluding link trailers) and the TCP
/// length the IP header announces (`None` if unknown).
type L3<'a> = (IpAddr, IpAddr, &'a [u8], Option<usize>);

/// IPv4 header.
fn ipv4(d: &[u8]) -> Result<L3<'_>, Skip> {
    let h = d.get(..20).ok_or(Skip::Truncated)?;
    if h[0] >> 4 != 4 {
        return Err(Skip::Malformed);
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(Skip::Malformed);
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let frag = u16::from_be_bytes([h[6], h[7]]);
    if frag & 0x3fff != 0 {
        return Err(Skip::Fragment); // MF set or non-zero offset
    }
    if h[9] != 6 {
        return Err(Skip::NotTcp);
    }
    if d.len() < ihl {
        return Err(Skip::Truncated);
    }
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    // total == 0: TCP segmentation offload on the capturing host; trust the capture.
    let (l4, announced) = if total == 0 {
        (&d[ihl..], None)
    } else {
        if total < ihl {
            return Err(Skip::Malformed);
        }
        (&d[ihl..total.min(d.len())], Some(total - ihl))
    };
    Ok((src, dst, l4, announced))
}

/// IPv6 header plus extension headers, same result as [`ipv4`].
fn ipv6(d: &[u8]) -> Result<L3<'_>, Skip> {
    let h = d.get(..40).ok_or(Skip::Truncated)?;
    if h[0] >> 4 != 6 {
        return Err(Skip::Malformed);
    }
    let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut next = h[6];
    let mut a = [0u8; 16];
    a.copy_from_slice(&h[8..24]);
    let src = IpAddr::V6(Ipv6Addr::from(a));
    a.copy_from_slice(&h[24..40]);
    let dst = IpAddr::V6(Ipv6Addr::from(a));
    // plen == 0: jumbogram or segmentation offload; trust the capture.
    let body = if plen == 0 {
        &d[40..]
    } else {
        &d[40..(40 + plen).min(d.len())]
    };
    let mut off = 0usize;
    for _ in 0..16 {
        let ext_len = match next {
            6 => {
                let l4 = body.get(off..).ok_or(Skip::Truncated)?;
                let announced = match plen {
                    0 => None,
                    p => Some(p.checked_sub(off).ok_or(Skip::Malformed)?),
                };
                return Ok((src, dst, l4, announced));
            }
            // hop-by-hop, routing, destination options, mobility, HIP, shim6
            0 | 43 | 60 | 135 | 139 | 140 => {
                let e = body.get(off..off + 2).ok_or(Skip::Truncated)?;
                next = e[0];
                (usize::from(e[1]) + 1) * 8
            }
            44 => {
                let e = body.get(off..off + 8).ok_or(Skip::Truncated)?;
                let fo = u16::from_be_bytes([e[2], e[3]]);
                if fo & 0xfff9 != 0 {
                    return Err(Skip::Fragment); // offset or M flag set
                }
                next = e[0];
                8
            }
            51 => {
                let e = body.get(off..off + 2).ok_or(Skip::Truncated)?;
                next = e[0];
                (usize::from(e[1]) + 2) * 4
            }
            _ => return Err(Skip::NotTcp), // ESP, no next header, UDP, ...
        };
        off += ext_len;
    }
    Err(Skip::Malformed)
}

/// Decode a frame down to its TCP segment.
///
/// Handles the link types listed on [`Linktype`], 802.1Q/QinQ tags, IPv4 with
/// options and IPv6 with extension headers. The payload is cut to the IP
/// length (dropping Ethernet padding); [`TcpSegment::missing`] counts the
/// payload bytes lost to the snap length.
pub fn parse_tcp<'a>(pkt: &RawPacket<'a>) -> Result<TcpSegment<'a>, Skip> {
    let (net, l3) = link(pkt.linktype, pkt.data)?;
    let (sip, dip, l4, announced) = match net {
        Net::V4 => ipv4(l3)?,
        Net::V6 => ipv6(l3)?,
    };
    if let Some(a) = announced {
        if a < 20 {
            return Err(Skip::Malformed);
        }
    }
    let t = l4.get(..20).ok_or(Skip::Truncated)?;
    let sport = u16::from_be_bytes([t[0], t[1]]);
    let dport = u16::from_be_bytes([t[2], t[3]]);
    let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
    let ack = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
    let doff = usize::from(t[12] >> 4) * 4;
    if doff < 20 || announced.is_some_and(|a| doff > a) {
        return Err(Skip::Malformed);
    }
    let payload = l4.get(doff..).ok_or(Skip::Truncated)?;
    let cut = (pkt.orig_len as usize).saturating_sub(pkt.data.len());
    let missing = if cut == 0 {
        0
    } else {
        match announced {
            Some(a) => (a - doff).saturating_sub(payload.len()).min(cut),
            None => cut,
        }
    };
    Ok(TcpSegment {
        src: SocketAddr::new(sip, sport),
        dst: SocketAddr::new(dip, dport),
        seq,
        ack,
        flags: TcpFlags::from_bits(t[13]),
        payload,
        missing: u32::try_from(missing).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const PAYLOAD: &[u8] = b"\x00\x00\x00\x05hello";

    fn pkt(linktype: i32, data: &[u8]) -> RawPacket<'_> {
        RawPacket {
            ts: Timestamp(0),
            linktype: Linktype(linktype),
            data,
            orig_len: data.len() as u32,
        }
    }

    /// An IPv4 + TCP (with options) packet, no link header.
    fn ip4_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 2181, 1000, 512)
            .ack(77)
            .psh()
            .options(&[
                etherparse::TcpOptionElement::Noop,
                etherparse::TcpOptionElement::Noop,
                etherparse::TcpOptionElement::Timestamp(1, 2),
            ])
            .unwrap();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    fn ip6_tcp(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .tcp(40000, 2181, 1000, 512)
            .syn();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    fn check4(seg: &TcpSegment<'_>) {
        assert_eq!(seg.src, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(seg.dst, "10.0.0.2:2181".parse().unwrap());
        assert_eq!(seg.seq, 1000);
        assert_eq!(seg.ack, 77);
        assert!(seg.flags.ack && seg.flags.psh && !seg.flags.syn);
        assert_eq!(seg.payload, PAYLOAD);
        assert_eq!(seg.missing, 0);
    }

    #[test]
    fn ethernet_ipv4() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 2181, 1000, 512)
            .ack(77)
            .psh();
        let mut v = Vec::new();
        b.write(&mut v, PAYLOAD).unwrap();
        // Ethernet padding must not leak into the payload.
        v.extend_from_slice(&[0xee; 6]);
        check4(&parse_tcp(&pkt(1, &v)).unwrap());
    }

    #[test]
    fn ethernet_vlan_and_qinq() {
        for tags in [&[0x8100u16][..], &[0x88a8, 0x8100]] {
            // MACs, then per tag TPID + TCI, then the inner EtherType.
            let mut frame = vec![1u8; 12];
            for t in tags {
                frame.extend_from_slice(&t.to_be_bytes());
                frame.extend_from_slice(&[0x00, 0x2a]);
            }
            frame.extend_from_slice(&ETH_IPV4.to_be_bytes());
            frame.extend_from_slice(&ip4_tcp(PAYLOAD));
            check4(&parse_tcp(&pkt(1, &frame)).unwrap());
        }
    }

    #[test]
    fn ethernet_not_ip() {
        let mut v = vec![1u8; 12];
        v.extend_from_slice(&0x0806u16.to_be_bytes());
        v.extend_from_slice(&[0; 28]);
        assert_eq!(parse_tcp(&pkt(1, &v)), Err(Skip::NotIp));
        let mut v = vec![1u8; 12];
        v.extend_from_slice(&0x0030u16.to_be_bytes()); // 802.3 length
        assert_eq!(parse_tcp(&pkt(1, &v)), Err(Skip::NotIp));
    }

    #[test]
    fn linux_sll() {
        let mut v = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
        v.extend_from_slice(&ETH_IPV4.to_be_bytes());
        v.extend_from_slice(&ip4_tcp(PAYLOAD));
        check4(&parse_tcp(&pkt(113, &v)).unwrap());
    }

    #[test]
    fn linux_sll2() {
        let mut v = Vec::new();
        v.extend_from_slice(&ETH_IPV6.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
        assert_eq!(v.len(), 20);
        v.extend_from_slice(&ip6_tcp(PAYLOAD));
        let s = parse_tcp(&pkt(276, &v)).unwrap();
        assert_eq!(s.payload, PAYLOAD);
        assert!(s.flags.syn);
        assert_eq!(s.dst.port(), 2181);
        assert_eq!(parse_tcp(&pkt(276, &v[..19])), Err(Skip::Truncated));
    }

    #[test]
    fn bsd_null_and_loop_both_byte_orders() {
        for lt in [0, 108] {
            for fam in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
                let mut v = fam.to_vec();
                v.extend_from_slice(&ip4_tcp(PAYLOAD));
                check4(&parse_tcp(&pkt(lt, &v)).unwrap());
            }
            for f in [10u32, 24, 28, 30] {
                for fam in [f.to_le_bytes(), f.to_be_bytes()] {
                    let mut v = fam.to_vec();
                    v.extend_from_slice(&ip6_tcp(PAYLOAD));
                    assert_eq!(parse_tcp(&pkt(lt, &v)).unwrap().payload, PAYLOAD);
                }
            }
            let mut v = 7u32.to_le_bytes().to_vec();
            v.extend_from_slice(&ip4_tcp(PAYLOAD));
            assert_eq!(parse_tcp(&pkt(lt, &v)), Err(Skip::NotIp));
        }
    }

    #[test]
    fn raw_ip_linktypes() {
        let v4 = ip4_tcp(PAYLOAD);
        let v6 = ip6_tcp(PAYLOAD);
        for lt in [101, 12, 14, 228] {
            check4(&parse_tcp(&pkt(lt, &v4)).unwrap());
        }
        for lt in [101, 12, 14, 229] {
            assert_eq!(parse_tcp(&pkt(lt, &v6)).unwrap().payload, PAYLOAD);
        }
        assert_eq!(parse_tcp(&pkt(228, &v6)), Err(Skip::Malformed));
        assert_eq!(parse_tcp(&pkt(229, &v4)), Err(Skip::Malformed));
        assert_eq!(
            parse_tcp(&pkt(147, &v4)),
            Err(Skip::UnsupportedLinktype(147))
        );
    }

    #[test]
    fn ipv6_extension_headers() {
        // Hop-by-hop (8 bytes) then a destination-options header (16 bytes) before TCP.
        let plain = ip6_tcp(PAYLOAD);
        let tcp = &plain[40..];
        let mut v = plain[..40].to_vec();
        v[6] = 0; // next = hop-by-hop
        let ext_len = 8 + 16;
        let plen = (tcp.len() + ext_len) as u16;
        v[4..6].copy_from_slice(&plen.to_be_bytes());
        v.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]); // HBH -> dest opts
        v.extend_from_slice(&[6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // -> TCP
        v.extend_from_slice(tcp);
        let s = parse_tcp(&pkt(101, &v)).unwrap();
        assert_eq!(s.payload, PAYLOAD);
        assert_eq!(
            s.src,
            "[101:101:101:101:101:101:101:101]:40000".parse().unwrap()
        );
        // Atomic fragment header (offset 0, M=0) passes; a real fragment does not.
        let mut f = plain[..40].to_vec();
        f[6] = 44;
        f[4..6].copy_from_slice(&((tcp.len() + 8) as u16).to_be_bytes());
        f.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(tcp);
        assert_eq!(parse_tcp(&pkt(101, &f)).unwrap().payload, PAYLOAD);
        f[43] = 1; // M flag
        assert_eq!(parse_tcp(&pkt(101, &f)), Err(Skip::Fragment));
        // ESP hides the transport header.
        let mut e = plain.clone();
        e[6] = 50;
        assert_eq!(parse_tcp(&pkt(101, &e)), Err(Skip::NotTcp));
        // Truncated inside the extension header.
        assert_eq!(parse_tcp(&pkt(101, &v[..44])), Err(Skip::Truncated));
    }

    #[test]
    fn ipv4_options_fragments_and_other_protocols() {
        let base = ip4_tcp(PAYLOAD);
        // Insert 8 bytes of IPv4 options (NOPs).
        let mut v = base[..20].to_vec();
        v[0] = 0x47;
        let total = (base.len() + 8) as u16;
        v[2..4].copy_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&[1; 8]);
        v.extend_from_slice(&base[20..]);
        check4(&parse_tcp(&pkt(101, &v)).unwrap());
        let mut f = base.clone();
        f[6] = 0x20; // MF
        assert_eq!(parse_tcp(&pkt(101, &f)), Err(Skip::Fragment));
        let mut f = base.clone();
        f[7] = 0x10; // offset
        assert_eq!(parse_tcp(&pkt(101, &f)), Err(Skip::Fragment));
        let mut u = base.clone();
        u[9] = 17;
        assert_eq!(parse_tcp(&pkt(101, &u)), Err(Skip::NotTcp));
        let mut m = base.clone();
        m[0] = 0x43; // IHL 12 bytes
        assert_eq!(parse_tcp(&pkt(101, &m)), Err(Skip::Malformed));
        let mut m = base.clone();
        m[32] = 0x10; // TCP data offset 4 bytes
        assert_eq!(parse_tcp(&pkt(101, &m)), Err(Skip::Malformed));
    }

    #[test]
    fn truncated_headers_and_snaplen() {
        let v = ip4_tcp(PAYLOAD);
        // Every cut inside the headers is Truncated (never a panic).
        let hdr = 20 + 32;
        for cut in 0..hdr {
            let p = RawPacket {
                orig_len: v.len() as u32,
                ..pkt(101, &v[..cut])
            };
            assert_eq!(parse_tcp(&p), Err(Skip::Truncated), "cut {cut}");
        }
        // Cut inside the payload: captured part + missing.
        let p = RawPacket {
            orig_len: v.len() as u32,
            ..pkt(101, &v[..hdr + 3])
        };
        let s = parse_tcp(&p).unwrap();
        assert_eq!(s.payload, &PAYLOAD[..3]);
        assert_eq!(s.missing as usize, PAYLOAD.len() - 3);
        // TSO: IP total length 0, frame longer than the capture.
        let mut t = v.clone();
        t[2] = 0;
        t[3] = 0;
        let p = RawPacket {
            orig_len: v.len() as u32 + 100,
            ..pkt(101, &t)
        };
        let s = parse_tcp(&p).unwrap();
        assert_eq!(s.payload, PAYLOAD);
        assert_eq!(s.missing, 100);
    }

    #[test]
    fn timestamp_helpers() {
        let t = Timestamp::from_parts(3, 500_000_000);
        assert_eq!(t.0, 3_500_000_000);
        assert_eq!(t.micros(), 3_500_000);
        assert_eq!(t.as_secs_f64(), 3.5);
        assert_eq!(t.to_string(), "3.500000000");
        assert_eq!(Timestamp(-1).secs(), -1);
        assert_eq!(Timestamp(-1).subsec_nanos(), 999_999_999);
        assert_eq!(t.saturating_sub(Timestamp(0)), Duration::from_millis(3500));
        assert_eq!(Timestamp(0).saturating_sub(t), Duration::ZERO);
        assert_eq!(
            Timestamp(i64::MAX)
                .saturating_sub(Timestamp(i64::MIN))
                .as_nanos(),
            u64::MAX as u128
        );
        assert_eq!(Timestamp::from_parts(i64::MAX, 5).0, i64::MAX);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(lt in proptest::sample::select(vec![0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9]),
                        data in proptest::collection::vec(proptest::num::u8::ANY, 0..120),
                        extra in 0u32..2000) {
            let p = RawPacket { ts: Timestamp(0), linktype: Linktype(lt), data: &data, orig_len: data.len() as u32 + extra };
            if let Ok(s) = parse_tcp(&p) {
                proptest::prop_assert!(s.missing <= extra);
            }
        }

        /// Agrees with etherparse on well-formed packets.
        #[test]
        fn matches_etherparse(payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                              seq in proptest::num::u32::ANY, v6 in proptest::bool::ANY) {
            let v = if v6 { ip6_tcp(&payload) } else { ip4_tcp(&payload) };
            let s = parse_tcp(&pkt(101, &v)).unwrap();
            let e = etherparse::SlicedPacket::from_ip(&v).unwrap();
            let Some(etherparse::TransportSlice::Tcp(t)) = e.transport else { panic!() };
            proptest::prop_assert_eq!(s.payload, t.payload());
            proptest::prop_assert_eq!(s.seq, t.sequence_number());
            proptest::prop_assert_eq!(s.src.port(), t.source_port());
            let _ = seq;
        }
    }
}

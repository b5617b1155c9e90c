#!/usr/bin/env python3
"""Rewrite a classic pcap the way real captures go wrong, keeping the TCP streams intact.

    mangle_pcap.py IN OUT --seed S [--reorder P] [--duplicate P] [--retransmit-overlap P]
                          [--drop N] [--seq-offset N | --isn N [--isn-jitter J]]

Operations (all deterministic for a given --seed; each applies to every TCP flow):

  --reorder P             out-of-order delivery: a data segment is swapped with the next
                          packet of the same flow when that packet is a data segment of the
                          same direction (so no acknowledgement from the peer can arrive
                          between them: the peer never acknowledges bytes not yet seen).
                          The timestamps stay in place, only the frames move.
  --duplicate P           after a TCP packet, an exact copy of it (what `tcpdump -i any` shows
                          on loopback, where every packet is seen twice).
  --retransmit-overlap P  after (or, half of the time, before) a data segment, an extra
                          segment re-sending a partial byte range that straddles the start of
                          that segment: bytes of earlier segments plus a prefix of this one
                          (or, for a direction's first data, a strict sub-range of it), with
                          the same bytes the stream carries there. Placed before the segment,
                          it brings new data first and the segment becomes a partial overlap.
  --drop N                delete N data segments (chosen at random among the input's data
                          segments, not SYN/FIN/RST): the only operation that loses bytes.
  --drop-share P          delete each data segment with probability P (loses bytes).
  --drop-connect          delete the first data segment the SYN's sender sends in each flow
                          whose SYN is in the capture (a client-port handshake; loses bytes).
  --drop-burst-from PORT  delete one segment: the middle one of the first run of >= 5 data
                          segments sent from PORT in a row in one flow (e.g. one reply of a
                          pipelined batch; loses bytes).
  --ack-first P           a data segment is moved (with probability P) after the first later
                          packet of the peer that acknowledges all of it, as captures on `any`
                          and on multi-queue NICs record them; no byte is lost. Timestamps
                          stay in place, only the frames move.
  --seq-offset N          add N (mod 2^32) to every sequence number of each direction (and to
                          the acknowledgement numbers and SACK blocks referring to it).
  --isn N                 rebase each direction so that its initial sequence number (that of
                          its SYN, or of its first packet) becomes N (mod 2^32), e.g.
                          4294967000: every stream longer than ~300 bytes then wraps past
                          2^32. --isn-jitter J subtracts a random 0..J per direction, so the
                          streams wrap at different offsets.

Apart from --drop, every byte of every TCP stream is still present at least once, and
every retransmitted byte equals the original, so a correct reassembler recovers the exact
streams. Duplicate/retransmitted/reordered packets are inserted only for frames captured
whole (caplen covers the IP packet); IPv4 and TCP checksums of rewritten packets are
recomputed. Link types: Ethernet (802.1Q tags), Linux cooked v1/v2, raw IP, BSD loopback.
IPv4 fragments and non-TCP packets pass through unchanged. Only classic pcap input
(convert pcapng with `editcap -F pcap`); the output keeps the input's header.

A JSON line with counters is printed on stderr ("mangle_pcap: {...}"): packets in/out,
segments reordered/duplicated/overlapping/dropped/moved after their ACK, bytes dropped,
the dropped segments (`dropped_segments`: [time in µs, "src", "dst"]), the gaps a reassembler
must report for them (`dropped_runs`: runs of dropped segments adjacent in sequence space),
directions whose
sequence numbers wrapped past 2^32 in the output (`wrapped_directions`).

Only the Python standard library is used.
"""

import argparse
import array
import json
import random
import struct
import sys

M32 = 0xFFFFFFFF
FIN, SYN, RST = 0x01, 0x02, 0x04

LINK_NULL, LINK_ETHERNET, LINK_RAW, LINK_SLL, LINK_SLL2 = 0, 1, 101, 113, 276
LINK_RAW_OTHER = (12, 14, 228, 229)


class Pkt(object):
    __slots__ = ("ts1", "ts2", "data", "orig_len", "tcp")

    def __init__(self, ts1, ts2, data, orig_len):
        self.ts1, self.ts2, self.data, self.orig_len = ts1, ts2, data, orig_len
        self.tcp = None


class Tcp(object):
    """Where the headers of a TCP/IP frame are, and what they say."""
    __slots__ = ("l3", "v6", "l4", "pay", "pay_len", "ip_end", "src", "dst", "seq", "ack",
                 "flags", "whole", "dir")

    def copy(self):
        t = Tcp()
        for k in Tcp.__slots__:
            setattr(t, k, getattr(self, k))
        return t


def l3_offset(linktype, d):
    """(offset of the IP header, 4 or 6) or None."""
    if linktype == LINK_ETHERNET:
        off, et = 12, None
        while off + 2 <= len(d):
            et = struct.unpack_from(">H", d, off)[0]
            if et in (0x8100, 0x88A8, 0x9100):
                off += 4
                continue
            off += 2
            break
        else:
            return None
        return {0x0800: (off, 4), 0x86DD: (off, 6)}.get(et)
    if linktype == LINK_SLL:
        if len(d) < 16:
            return None
        et = struct.unpack_from(">H", d, 14)[0]
        return {0x0800: (16, 4), 0x86DD: (16, 6)}.get(et)
    if linktype == LINK_SLL2:
        if len(d) < 20:
            return None
        et = struct.unpack_from(">H", d, 0)[0]
        return {0x0800: (20, 4), 0x86DD: (20, 6)}.get(et)
    if linktype == LINK_NULL:
        if len(d) < 5:
            return None
        v = d[4] >> 4
        return (4, v) if v in (4, 6) else None
    if linktype == LINK_RAW or linktype in LINK_RAW_OTHER:
        if not d:
            return None
        v = d[0] >> 4
        return (0, v) if v in (4, 6) else None
    return None


def parse_tcp(linktype, d):
    l = l3_offset(linktype, d)
    if l is None:
        return None
    l3, ver = l
    t = Tcp()
    t.l3 = l3
    if ver == 4:
        if len(d) < l3 + 20 or d[l3] >> 4 != 4:
            return None
        ihl = (d[l3] & 15) * 4
        total = struct.unpack_from(">H", d, l3 + 2)[0]
        frag = struct.unpack_from(">H", d, l3 + 6)[0]
        if d[l3 + 9] != 6 or ihl < 20 or frag & 0x3FFF or total < ihl:
            return None
        t.v6 = False
        t.l4 = l3 + ihl
        t.ip_end = l3 + total
        t.src, t.dst = bytes(d[l3 + 12:l3 + 16]), bytes(d[l3 + 16:l3 + 20])
    elif ver == 6:
        if len(d) < l3 + 40 or d[l3] >> 4 != 6:
            return None
        nh = d[l3 + 6]
        plen = struct.unpack_from(">H", d, l3 + 4)[0]
        off = l3 + 40
        while nh in (0, 43, 60):          # hop-by-hop, routing, destination options
            if len(d) < off + 8:
                return None
            nh, off = d[off], off + (d[off + 1] + 1) * 8
        if nh != 6:
            return None                    # not TCP, or a fragment (44)
        t.v6 = True
        t.l4 = off
        t.ip_end = l3 + 40 + plen
        t.src, t.dst = bytes(d[l3 + 8:l3 + 24]), bytes(d[l3 + 24:l3 + 40])
    else:
        return None
    if len(d) < t.l4 + 20:
        return None
    sport, dport, t.seq, t.ack, off_flags = struct.unpack_from(">HHIIH", d, t.l4)
    thl = (off_flags >> 12) * 4
    t.flags = off_flags & 0xFF          # CWR ECE URG ACK PSH RST SYN FIN
    if thl < 20 or len(d) < t.l4 + thl or t.ip_end < t.l4 + thl:
        return None
    t.pay = t.l4 + thl
    t.pay_len = t.ip_end - t.pay
    t.whole = len(d) >= t.ip_end
    t.src, t.dst = (t.src, sport), (t.dst, dport)
    t.dir = (t.src, t.dst)
    return t


def csum(data):
    if len(data) & 1:
        data = data + b"\x00"
    s = sum(array.array("H", bytes(data)))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def fix_checksums(d, t):
    """Recompute the IPv4 header and TCP checksums of a whole frame in place."""
    if not t.whole:
        return
    if not t.v6:
        ihl = t.l4 - t.l3
        d[t.l3 + 10:t.l3 + 12] = b"\x00\x00"
        d[t.l3 + 10:t.l3 + 12] = struct.pack("=H", csum(d[t.l3:t.l3 + ihl]))
        pseudo = d[t.l3 + 12:t.l3 + 20] + struct.pack(">BBH", 0, 6, t.ip_end - t.l4)
    else:
        pseudo = d[t.l3 + 8:t.l3 + 40] + struct.pack(">IHBB", t.ip_end - t.l4, 0, 0, 6)
    d[t.l4 + 16:t.l4 + 18] = b"\x00\x00"
    d[t.l4 + 16:t.l4 + 18] = struct.pack("=H", csum(bytes(pseudo) + bytes(d[t.l4:t.ip_end])))


def with_payload(p, seq, payload):
    """A copy of whole-frame packet `p` carrying `payload` at `seq` (same ack/options/flags
    except FIN)."""
    t = p.tcp.copy()
    d = bytearray(p.data[:t.pay]) + payload
    t.ip_end = len(d)
    t.pay_len = len(payload)
    if t.v6:
        struct.pack_into(">H", d, t.l3 + 4, t.ip_end - t.l3 - 40)
    else:
        struct.pack_into(">H", d, t.l3 + 2, t.ip_end - t.l3)
    struct.pack_into(">I", d, t.l4 + 4, seq & M32)
    t.seq = seq & M32
    d[t.l4 + 13] &= ~FIN & 0xFF       # the FIN (if any) stays with the original segment only
    t.flags = d[t.l4 + 13]
    fix_checksums(d, t)
    q = Pkt(p.ts1, p.ts2, d, len(d))
    q.tcp = t
    return q


def dup(p):
    q = Pkt(p.ts1, p.ts2, bytearray(p.data), p.orig_len)
    q.tcp = p.tcp
    return q


def read_pcap(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 24:
        sys.exit("mangle_pcap: %s: not a classic pcap file (too short)" % path)
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    elif magic == b"\x0a\x0d\x0d\x0a":
        sys.exit("mangle_pcap: %s is pcapng: convert it with `editcap -F pcap`" % path)
    else:
        sys.exit("mangle_pcap: %s: not a classic pcap file" % path)
    linktype = struct.unpack_from(e + "I", raw, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(e + "IIII")
    pkts, off = [], 24
    while off + 16 <= len(raw):
        ts1, ts2, incl, orig = rec.unpack_from(raw, off)
        off += 16
        if off + incl > len(raw):
            sys.exit("mangle_pcap: %s: truncated record at byte %d" % (path, off - 16))
        pkts.append(Pkt(ts1, ts2, bytearray(raw[off:off + incl]), orig))
        off += incl
    return raw[:24], e, linktype, pkts


def write_pcap(path, header, e, pkts):
    rec = struct.Struct(e + "IIII")
    with open(path, "wb") as f:
        f.write(header)
        for p in pkts:
            f.write(rec.pack(p.ts1, p.ts2, len(p.data), max(p.orig_len, len(p.data))))
            f.write(p.data)


def endpoint(addr):
    ip, port = addr
    if len(ip) == 4:
        return "%s:%d" % (".".join(str(b) for b in ip), port)
    import ipaddress
    return "[%s]:%d" % (ipaddress.IPv6Address(ip), port)


def rev(direction):
    return (direction[1], direction[0])


def flow_of(t):
    return tuple(sorted(t.dir))


def rebase(pkts, args, rng, stats):
    """--seq-offset / --isn: rewrite seq, ack and SACK blocks of every TCP packet."""
    base = {}        # direction -> sequence number its offsets count from
    for p in pkts:
        t = p.tcp
        if t is None:
            continue
        base.setdefault(t.dir, t.seq)
        if t.flags & 0x10:
            base.setdefault(rev(t.dir), (t.ack - 1) & M32)
    delta = {}
    for d in sorted(base):
        if args.isn is not None:
            target = args.isn - (rng.randint(0, args.isn_jitter) if args.isn_jitter else 0)
            delta[d] = (target - base[d]) & M32
        else:
            delta[d] = args.seq_offset & M32
    top = {}         # direction -> highest end offset relative to base
    for p in pkts:
        t = p.tcp
        if t is None:
            continue
        d = p.data
        end = ((t.seq - base[t.dir]) & M32) + t.pay_len + (1 if t.flags & (SYN | FIN) else 0)
        top[t.dir] = max(top.get(t.dir, 0), end)
        t.seq = (t.seq + delta[t.dir]) & M32
        struct.pack_into(">I", d, t.l4 + 4, t.seq)
        if t.flags & 0x10:
            r = rev(t.dir)
            t.ack = (t.ack + delta[r]) & M32
            struct.pack_into(">I", d, t.l4 + 8, t.ack)
            # SACK blocks (option 5) hold sequence numbers of the peer's direction.
            o = t.l4 + 20
            while o < t.pay and o < len(d):
                kind = d[o]
                if kind == 0:
                    break
                if kind == 1:
                    o += 1
                    continue
                if o + 1 >= t.pay or d[o + 1] < 2:
                    break
                ln = d[o + 1]
                if kind == 5:
                    for b in range(o + 2, min(o + ln, t.pay) - 3, 4):
                        v = struct.unpack_from(">I", d, b)[0]
                        struct.pack_into(">I", d, b, (v + delta[r]) & M32)
                o += ln
        fix_checksums(d, t)
    stats["directions"] = len(base)
    stats["wrapped_directions"] = sum(
        1 for d, n in top.items() if ((base[d] + delta[d]) & M32) + n > M32 + 1)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (head -40 %s) for details." % sys.argv[0])
    ap.add_argument("input", metavar="IN", help="classic pcap file")
    ap.add_argument("output", metavar="OUT", help="pcap file to write")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--reorder", type=float, default=0.0, metavar="P",
                    help="swap a data segment with the next one of its direction")
    ap.add_argument("--duplicate", type=float, default=0.0, metavar="P",
                    help="emit an exact copy of a TCP packet after it")
    ap.add_argument("--retransmit-overlap", type=float, default=0.0, metavar="P",
                    help="add a segment re-sending a byte range straddling a segment's start")
    ap.add_argument("--drop", type=int, default=0, metavar="N",
                    help="delete N random data segments (loses bytes)")
    ap.add_argument("--drop-share", type=float, default=0.0, metavar="P",
                    help="delete each data segment with probability P (loses bytes)")
    ap.add_argument("--drop-connect", action="store_true",
                    help="delete the first data segment of each SYN's sender")
    ap.add_argument("--drop-burst-from", type=int, default=None, metavar="PORT",
                    help="delete the middle segment of the first run of 5 data segments from PORT")
    ap.add_argument("--ack-first", type=float, default=0.0, metavar="P",
                    help="move a data segment after the peer's packet acknowledging it")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--seq-offset", type=int, default=None, metavar="N",
                   help="add N to all sequence numbers (mod 2^32)")
    g.add_argument("--isn", type=int, default=None, metavar="N",
                   help="rebase every direction's initial sequence number to N")
    ap.add_argument("--isn-jitter", type=int, default=0, metavar="J",
                    help="with --isn: subtract a random 0..J per direction")
    a = ap.parse_args(argv)
    for name in ("reorder", "duplicate", "retransmit_overlap"):
        if not 0.0 <= getattr(a, name) <= 1.0:
            ap.error("--%s must be a probability in [0, 1]" % name.replace("_", "-"))
    if not 0.0 <= a.drop_share <= 1.0 or not 0.0 <= a.ack_first <= 1.0:
        ap.error("--drop-share and --ack-first must be probabilities in [0, 1]")
    if a.drop < 0 or a.isn_jitter < 0:
        ap.error("--drop and --isn-jitter must be >= 0")

    rng = random.Random(a.seed)
    header, e, linktype, pkts = read_pcap(a.input)
    stats = {"packets_in": len(pkts), "tcp_packets": 0, "dropped": 0, "dropped_bytes": 0,
             "duplicated": 0, "overlaps": 0, "overlaps_before": 0, "reordered": 0,
             "directions": 0, "wrapped_directions": 0, "acked_first": 0}
    for p in pkts:
        p.tcp = parse_tcp(linktype, p.data)
        if p.tcp is not None:
            stats["tcp_packets"] += 1

    # The deletions: chosen among the input's data segments.
    def is_data(p):
        return p.tcp is not None and p.tcp.pay_len > 0 and not p.tcp.flags & (SYN | FIN | RST)

    cands = [i for i, p in enumerate(pkts) if is_data(p)]
    gone = set()
    if a.drop:
        gone |= set(rng.sample(cands, min(a.drop, len(cands))))
    if a.drop_share:
        gone |= {i for i in cands if rng.random() < a.drop_share}
    if a.drop_connect:
        syn_from, done = {}, set()
        for i, p in enumerate(pkts):
            t = p.tcp
            if t is None:
                continue
            if t.flags & SYN and not t.flags & 0x10:
                syn_from[flow_of(t)] = t.dir
                done.discard(flow_of(t))
            elif is_data(p) and syn_from.get(flow_of(t)) == t.dir and flow_of(t) not in done:
                gone.add(i)
                done.add(flow_of(t))
    if a.drop_burst_from is not None:
        run = {}
        for i, p in enumerate(pkts):
            t = p.tcp
            if not is_data(p):
                continue
            f = flow_of(t)
            if t.src[1] != a.drop_burst_from:
                run[f] = []
                continue
            run.setdefault(f, []).append(i)
            if len(run[f]) == 5:
                gone.add(run[f][2])
                break
    stats["dropped"] = len(gone)
    stats["dropped_bytes"] = sum(pkts[i].tcp.pay_len for i in gone)
    stats["dropped_segments"] = [
        [pkts[i].ts1 * 1000000 + pkts[i].ts2, endpoint(pkts[i].tcp.src),
         endpoint(pkts[i].tcp.dst)] for i in sorted(gone)]
    ends = {}
    for i in sorted(gone, key=lambda i: (pkts[i].tcp.dir, pkts[i].tcp.seq)):
        t = pkts[i].tcp
        ends.setdefault(t.dir, []).append((t.seq, (t.seq + t.pay_len) & M32))
    runs = 0
    for segs in ends.values():
        prev_end = None
        for seq, end in segs:
            if seq != prev_end:
                runs += 1
            prev_end = end
    stats["dropped_runs"] = runs
    pkts = [p for i, p in enumerate(pkts) if i not in gone]

    # Sequence rebasing first: the packets added below copy the rewritten headers.
    if a.seq_offset is not None or a.isn is not None:
        rebase(pkts, a, rng, stats)

    # --retransmit-overlap and --duplicate, in one pass in input order.
    out = []
    hist = {}        # direction -> (seq of first byte, bytearray of contiguous recent bytes)
    for p in pkts:
        t = p.tcp
        if t is None:
            out.append(p)
            continue
        before, after = [], []
        if t.whole and t.pay_len > 0 and not t.flags & (SYN | RST):
            payload = bytes(p.data[t.pay:t.ip_end])
            h = hist.get(t.dir)
            if h is not None and (h[0] + len(h[1])) & M32 == t.seq:
                h[1].extend(payload)
                if len(h[1]) > 16384:
                    drop = len(h[1]) - 8192
                    del h[1][:drop]
                    h = (h[0] + drop) & M32, h[1]
            elif h is not None and ((t.seq - h[0]) & M32) < len(h[1]):
                h = None     # already-seen data (a retransmission in the input): leave it
            else:
                h = (t.seq, bytearray(payload))
            if h is not None:
                hist[t.dir] = h
            if h is not None and rng.random() < a.retransmit_overlap:
                seg_at = len(h[1]) - len(payload)          # offset of this segment in h
                if seg_at > 0:
                    lo = rng.randint(max(0, seg_at - 2 * len(payload) - 16), seg_at - 1)
                    hi = rng.randint(seg_at + 1, len(h[1]))
                elif len(payload) >= 2:
                    lo = rng.randint(0, len(payload) - 1)
                    hi = rng.randint(lo + 1, len(payload))
                    if (lo, hi) == (0, len(payload)):
                        hi -= 1
                else:
                    lo = hi = 0
                if hi > lo:
                    q = with_payload(p, h[0] + lo, bytes(h[1][lo:hi]))
                    stats["overlaps"] += 1
                    if seg_at > 0 and rng.random() < 0.5:
                        before.append(q)
                        stats["overlaps_before"] += 1
                    else:
                        after.append(q)
        if t.whole and rng.random() < a.duplicate:
            after.insert(0, dup(p))
            stats["duplicated"] += 1
        out.extend(before)
        out.append(p)
        out.extend(after)

    # --reorder: swap frames (not timestamps) of adjacent same-direction data segments.
    if a.reorder > 0:
        last_of_flow = {}
        nxt = [None] * len(out)
        for i in range(len(out) - 1, -1, -1):
            t = out[i].tcp
            if t is not None:
                f = flow_of(t)
                nxt[i] = last_of_flow.get(f)
                last_of_flow[f] = i

        def data(t):
            return (t is not None and t.whole and t.pay_len > 0
                    and not t.flags & (SYN | FIN | RST))

        swapped = set()
        for i, p in enumerate(out):
            j = nxt[i]
            if i in swapped or j is None or not data(p.tcp):
                continue
            q = out[j]
            if not data(q.tcp) or q.tcp.dir != p.tcp.dir or q.data == p.data:
                continue
            if rng.random() < a.reorder:
                p.data, q.data = q.data, p.data
                p.orig_len, q.orig_len = q.orig_len, p.orig_len
                p.tcp, q.tcp = q.tcp, p.tcp
                swapped.add(j)
                stats["reordered"] += 1

    # --ack-first: move a data segment after the peer's packet that acknowledges it.
    if a.ack_first > 0:
        stamps = [(p.ts1, p.ts2) for p in out]
        moved = {}       # index of the acknowledging packet -> segments to put after it
        skip = set()
        for i, p in enumerate(out):
            t = p.tcp
            if (t is None or i in skip or not t.whole or t.pay_len == 0
                    or t.flags & (SYN | FIN | RST) or rng.random() >= a.ack_first):
                continue
            end = (t.seq + t.pay_len) & M32
            for j in range(i + 1, len(out)):
                q = out[j].tcp
                if q is None or flow_of(q) != flow_of(t):
                    continue
                if q.dir == t.dir:
                    if q.flags & (SYN | FIN | RST):
                        break
                    continue
                if q.flags & 0x10 and ((q.ack - end) & M32) < 0x80000000:
                    moved.setdefault(j, []).append(p)
                    skip.add(i)
                    skip.add(j)
                    stats["acked_first"] += 1
                    break
        new = []
        for i, p in enumerate(out):
            if i in skip and i not in moved:
                continue
            new.append(p)
            new.extend(moved.get(i, []))
        for p, (t1, t2) in zip(new, stamps):
            p.ts1, p.ts2 = t1, t2
        out = new

    write_pcap(a.output, header, e, out)
    stats["packets_out"] = len(out)
    sys.stderr.write("mangle_pcap: %s\n" % json.dumps(stats, sort_keys=True))


if __name__ == "__main__":
    main()

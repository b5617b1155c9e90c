#!/usr/bin/env python3
"""A flood capture for `zkscope serve` memory checks: N client connections (distinct client
addresses), each a handshake then K getData requests on paths never repeated, answered
NONODE, then FIN. Usage: serve_flood.py OUT.pcap N K (100000 10 = 1,000,000 distinct paths);
OUT.pcap `-` writes to standard output (crates/zkscope/tests/serve.rs pipes it into the daemon).

Then: zkscope serve -r OUT.pcap --http-port 7070 and read memory_rss_bytes in /json/info,
VmHWM in /proc/PID/status."""
import struct, sys
N, K = int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout.buffer if sys.argv[1] == "-" else open(sys.argv[1], "wb", buffering=1 << 20)
out.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
SRV = bytes([10, 0, 0, 1])
ts = [1_700_000_000_000_000]
def pkt(src, dst, sport, dport, seq, ack, flags, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff, 5 << 4, flags, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    frame = b"\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload
    ts[0] += 5
    t = ts[0]
    out.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)))
    out.write(frame)
def frame(b):
    return struct.pack("!i", len(b)) + b
for c in range(N):
    cli = bytes([10, 1 + (c >> 16) % 200, (c >> 8) & 255, c & 255])
    sport = 10000 + c % 50000
    cs, ss = 1000, 5000
    pkt(cli, SRV, sport, 2181, cs, 0, 0x02); cs += 1
    pkt(SRV, cli, 2181, sport, ss, cs, 0x12); ss += 1
    creq = frame(struct.pack("!iqiq", 0, 0, 30000, 0) + struct.pack("!i", 16) + b"\0" * 16 + b"\0")
    pkt(cli, SRV, sport, 2181, cs, ss, 0x18, creq); cs += len(creq)
    cresp = frame(struct.pack("!iiq", 0, 30000, 0x100000000 + c) + struct.pack("!i", 16) + b"\0" * 16 + b"\0")
    pkt(SRV, cli, 2181, sport, ss, cs, 0x18, cresp); ss += len(cresp)
    for k in range(K):
        path = b"/ns%d/node-%d-%d" % (c % 1000, c, k)
        req = frame(struct.pack("!ii", k + 1, 4) + struct.pack("!i", len(path)) + path + b"\0")
        pkt(cli, SRV, sport, 2181, cs, ss, 0x18, req); cs += len(req)
        rep = frame(struct.pack("!iqi", k + 1, 5, -101))
        pkt(SRV, cli, 2181, sport, ss, cs, 0x18, rep); ss += len(rep)
    pkt(cli, SRV, sport, 2181, cs, ss, 0x11); cs += 1
    pkt(SRV, cli, 2181, sport, ss, cs, 0x11); ss += 1
out.close()

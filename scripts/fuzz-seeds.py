#!/usr/bin/env python3
"""Seed corpora for the cargo-fuzz targets in fuzz/, made from the repo's fixtures.

    scripts/fuzz-seeds.py [OUT_DIR]      (default: fuzz/seeds)

Writes OUT_DIR/<target>/<name> for every target:

  client          frame bodies (after the length prefix) of the client-port captures
  election        1 KiB windows of the election/quorum streams (initial messages, votes)
  quorum          1 KiB windows of the quorum streams (packets, snapshots)
  stream          segment lists in fuzz/harness/stream.rs's encoding, from every capture
  pcap            every capture cut to its first 12 records (pcapng: first blocks)
  monitor_config  the YAML examples of crates/monitor (README, doc, unit tests)

The seeds only start the fuzzers; the committed corpora (fuzz/corpus) are what
`cargo fuzz cmin` kept of seeds plus findings. Only the Python standard library is used.
"""

import hashlib
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "fixtures")
CLIENT_FILES = ["real/zk38-session.pcap", "real/zk38-ipv6.pcap", "real/zk38-any-sll2.pcap"] + [
    "zktraffic/" + f for f in sorted(os.listdir(os.path.join(FIX, "zktraffic")))
    if f.endswith(".pcap") and not f.startswith("zab_") and f != "omni.pcap"]
SERVER_FILES = ["zktraffic/omni.pcap"] + [
    "zktraffic/" + f for f in sorted(os.listdir(os.path.join(FIX, "zktraffic")))
    if f.startswith("zab_")]
# Harness constants (fuzz/harness/stream.rs).
PORT_INDEX = {2181: 0, 3888: 1, 2888: 2}


def read_pcap(path):
    """(linktype, header bytes, [(ts_float, record bytes, data, orig_len)])."""
    with open(path, "rb") as f:
        raw = f.read()
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", raw[20:24])[0] & 0xFFFF
    recs, off = [], 24
    while off + 16 <= len(raw):
        s, frac, cap, orig = struct.unpack(e + "IIII", raw[off:off + 16])
        data = raw[off + 16:off + 16 + cap]
        recs.append((s + frac / (1e9 if nano else 1e6), raw[off:off + 16 + cap], data, orig))
        off += 16 + cap
    return linktype, raw[:24], recs


def l3(linktype, d):
    """(ethertype-ish 4/6, l3 bytes) or None."""
    if linktype == 1:
        et, p = struct.unpack(">H", d[12:14])[0], 14
        while et in (0x8100, 0x88A8) and len(d) >= p + 4:
            et, p = struct.unpack(">H", d[p + 2:p + 4])[0], p + 4
    elif linktype == 113:
        et, p = struct.unpack(">H", d[14:16])[0], 16
    elif linktype == 276:
        et, p = struct.unpack(">H", d[0:2])[0], 20
    elif linktype == 0:
        fam = struct.unpack("<I", d[:4])[0]
        et, p = (0x0800 if fam == 2 else 0x86DD), 4
    elif linktype in (101, 12, 14, 228, 229):
        et, p = (0x0800 if d[:1] and d[0] >> 4 == 4 else 0x86DD), 0
    else:
        return None
    return {0x0800: 4, 0x86DD: 6}.get(et), d[p:]


def tcp(linktype, data, orig_len):
    """(src, dst, seq, ack, flags, payload, missing) of a TCP packet, or None."""
    r = l3(linktype, data)
    if not r or not r[0]:
        return None
    v, ip = r
    if v == 4:
        if len(ip) < 20 or ip[9] != 6:
            return None
        ihl, total = (ip[0] & 15) * 4, struct.unpack(">H", ip[2:4])[0]
        src, dst, seg, seglen = ip[12:16], ip[16:20], ip[ihl:], total - ihl
    else:
        if len(ip) < 40 or ip[6] != 6:
            return None
        src, dst, seg = ip[8:24], ip[24:40], ip[40:]
        seglen = struct.unpack(">H", ip[4:6])[0]
    if len(seg) < 20:
        return None
    sp, dp, seq, ack = struct.unpack(">HHII", seg[:12])
    doff, flags = (seg[12] >> 4) * 4, seg[13]
    payload = seg[doff:seglen]
    missing = max(0, seglen - doff - len(payload))
    return (src, sp), (dst, dp), seq, ack, flags, payload, missing


def streams(path, server_port=None):
    """{(client, server): {"up": bytes, "down": bytes}} reassembled by sequence number."""
    lt, _, recs = read_pcap(path)
    flows = {}
    for _, _, data, orig in recs:
        t = tcp(lt, data, orig)
        if not t:
            continue
        src, dst, seq, _, flags, payload, _ = t
        if server_port is not None and server_port not in (src[1], dst[1]):
            continue
        to_server = dst[1] == server_port if server_port else dst[1] < src[1]
        key = (src, dst) if to_server else (dst, src)
        d = flows.setdefault(key, {"up": {}, "down": {}})["up" if to_server else "down"]
        if flags & 2:
            d["isn"] = seq + 1
        if payload:
            d.setdefault(seq, payload)
    out = {}
    for key, dirs in flows.items():
        o = {}
        for name, segs in dirs.items():
            segs = dict(segs)
            start = segs.pop("isn", None)
            if not segs:
                o[name] = b""
                continue
            if start is None:
                start = min(segs)
            buf, at = bytearray(), start
            for s in sorted(segs, key=lambda s: (s - start) & 0xFFFFFFFF):
                p = segs[s]
                rel = (s - at) & 0xFFFFFFFF
                if rel > 0x7FFFFFFF:  # overlap
                    skip = (at - s) & 0xFFFFFFFF
                    p = p[skip:]
                elif rel:
                    break  # hole
                buf += p
                at = (at + len(p)) & 0xFFFFFFFF
            o[name] = bytes(buf)
        out[key] = o
    return out


def frames(stream):
    """Frame bodies of a length-prefixed stream, until something is not a frame."""
    out, off = [], 0
    while off + 4 <= len(stream):
        n = struct.unpack(">i", stream[off:off + 4])[0]
        if n < 0 or off + 4 + n > len(stream) or n > 1 << 20:
            break
        out.append(stream[off + 4:off + 4 + n])
        off += 4 + n
    return out


def encode_segments(lt, recs, server_port, port_index):
    """fuzz/harness/stream.rs's encoding of the packets of up to 4 connections."""
    conns, expected, delta = {}, {}, {}
    out = bytearray([port_index])
    last_ts = None
    for ts, _, data, orig in recs:
        t = tcp(lt, data, orig)
        if not t:
            continue
        src, dst, seq, ack, flags, payload, missing = t
        if server_port not in (src[1], dst[1]):
            continue
        to_client = src[1] == server_port
        client = dst if to_client else src
        if client not in conns:
            if len(conns) == 4:
                continue
            conns[client] = len(conns)
        c = conns[client]
        d = 1 if to_client else 0
        for dd in (0, 1):
            if (c, dd) not in expected:
                expected[(c, dd)] = (1000 + c * 7919) if dd == 0 else (4294960000 + c * 104729) & 0xFFFFFFFF
        if (c, d) not in delta:
            delta[(c, d)] = (expected[(c, d)] - seq) & 0xFFFFFFFF
        hseq = (seq + delta[(c, d)]) & 0xFFFFFFFF
        off = (hseq - expected[(c, d)]) & 0xFFFFFFFF
        ctrl = d | (c << 1)
        ctrl |= (0x08 if flags & 2 else 0) | (0x10 if flags & 1 else 0) | (0x20 if flags & 4 else 0)
        ctrl |= 0x40 if flags & 0x10 else 0
        if off:
            ctrl |= 0x80
        out.append(ctrl)
        if off:
            out += struct.pack(">I", off)
        ack_back = 0
        if (c, 1 - d) in delta and flags & 0x10:
            hack = (ack + delta[(c, 1 - d)]) & 0xFFFFFFFF
            diff = (expected[(c, 1 - d)] - hack) & 0xFFFFFFFF
            if diff < 15500:
                ack_back = (diff + 500) // 1000
        miss = min(15, missing // 16)
        out.append(ack_back | (miss << 4))
        step = 0 if last_ts is None else min(254, int((ts - last_ts) * 100))
        last_ts = ts
        out.append(step)
        out += struct.pack(">H", len(payload)) + payload
        end = (hseq + len(payload) + miss * 16 + (1 if flags & 2 else 0) + (1 if flags & 1 else 0)) & 0xFFFFFFFF
        if 0 < ((end - expected[(c, d)]) & 0xFFFFFFFF) < 0x80000000:
            expected[(c, d)] = end
    return bytes(out)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "seeds")
    seen = set()

    def put(target, name, data, limit=None):
        h = hashlib.sha1(data).hexdigest()[:16]
        if (target, h) in seen:
            return
        seen.add((target, h))
        d = os.path.join(out_dir, target)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "%s-%s" % (name, h)), "wb") as f:
            f.write(data)

    for rel in CLIENT_FILES:
        name = os.path.basename(rel).rsplit(".", 1)[0]
        for (_, _), s in streams(os.path.join(FIX, rel), 2181).items():
            for dirn in ("up", "down"):
                for body in frames(s[dirn])[:60]:
                    put("client", name, body)
    for rel in SERVER_FILES:
        name = os.path.basename(rel).rsplit(".", 1)[0]
        for (_, srv), s in streams(os.path.join(FIX, rel)).items():
            if srv[1] == 2181:
                continue
            for dirn in ("up", "down"):
                b = s[dirn]
                for off in range(0, min(len(b), 8 * 1024), 1024):
                    if rel.endswith("omni.pcap"):
                        put("election", name, b[off:off + 1024])
                    put("quorum", name, b[off:off + 1024])
                # Each notification frame of an election stream, as a body.
                for body in frames(b[8:] if len(b) > 8 else b)[:20]:
                    put("election", name + "-frame", body)

    for rel in CLIENT_FILES + SERVER_FILES:
        name = os.path.basename(rel).rsplit(".", 1)[0]
        lt, hdr, recs = read_pcap(os.path.join(FIX, rel))
        ports = {}
        for _, _, data, orig in recs:
            t = tcp(lt, data, orig)
            if t:
                ports[min(t[0][1], t[1][1])] = ports.get(min(t[0][1], t[1][1]), 0) + 1
        for port in sorted(ports, key=lambda p: -ports[p])[:3]:
            for idx in sorted({PORT_INDEX.get(port, 3), 3}):
                for i in range(0, len(recs), 40):
                    seg = encode_segments(lt, recs[i:i + 40], port, idx)
                    if len(seg) > 1:
                        put("stream", "%s-%d-%d" % (name, port, idx), seg)
        put("pcap", name, hdr + b"".join(r[1] for r in recs[:12]))
    # pcapng: whole blocks up to about 6 KiB.
    with open(os.path.join(FIX, "real/zk38-session.pcapng"), "rb") as f:
        ng = f.read()
    off = 0
    while off + 12 <= len(ng) and off < 6000:
        off += struct.unpack("<I", ng[off + 4:off + 8])[0]
    put("pcap", "zk38-session-ng", ng[:off])

    texts = []
    for md in ("crates/monitor/README.md",):
        with open(os.path.join(ROOT, md)) as f:
            texts += re.findall(r"```yaml\n(.*?)```", f.read(), re.S)
    with open(os.path.join(ROOT, "crates/monitor/src/config.rs")) as f:
        src = f.read()
    doc = "\n".join(l[4:] for l in src.splitlines() if l.startswith("//! ") or l == "//!")
    texts += re.findall(r"```yaml\n(.*?)```", doc, re.S)
    texts += re.findall(r'r#"(.*?)"#', src, re.S)
    for lit in re.findall(r'(?:ok|errs|parse_str|cfg)\(\s*"((?:[^"\\]|\\.)*)"', src):
        texts.append(lit.encode().decode("unicode_escape"))
    for i, t in enumerate(texts):
        put("monitor_config", "example%02d" % i, t.encode())

    for t in sorted(os.listdir(out_dir)):
        print(t, len(os.listdir(os.path.join(out_dir, t))))


if __name__ == "__main__":
    main()

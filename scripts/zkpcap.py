#!/usr/bin/env python3
"""Minimal, independent ZooKeeper client-protocol decoder for pcap files.

This is a *test oracle*, not a product: it exists so that the test harness,
the workload manifests and the shipped fixtures can be checked without the
zkscope binary, and so that fixtures/README.md can quote counts that anyone
can re-derive.  It reads classic pcap (not pcapng; use `editcap -F pcap`),
link types Ethernet, Linux SLL, Linux SLL2, BSD loopback and raw IP, IPv4 and
IPv6, reassembles each TCP direction in sequence order and prints one JSON
object per decoded message, using (a subset of) the field names of
`zkscope dump --format json`:

    ts dir type op opcode xid zxid err err_name path watch size client server
    session session_id latency_us data_len ops event_type state command
    reply_len data_watches exist_watches child_watches persistent_watches
    persistent_recursive_watches scheme mode

Usage:
    zkpcap.py FILE.pcap [--port 2181 ...]         # JSON lines
    zkpcap.py FILE.pcap --summary [--port ...]    # counts, for READMEs

Without --port, any TCP port that receives a ConnectRequest or a 4lw is
treated as a ZooKeeper client port (heuristic); give --port to be exact.
"""
import argparse
import collections
import json
import struct
import sys

ERR_NAMES = {
    0: "OK", -1: "SYSTEMERROR", -2: "RUNTIMEINCONSISTENCY", -3: "DATAINCONSISTENCY",
    -4: "CONNECTIONLOSS", -5: "MARSHALLINGERROR", -6: "UNIMPLEMENTED",
    -7: "OPERATIONTIMEOUT", -8: "BADARGUMENTS", -12: "UNKNOWNSESSION",
    -13: "NEWCONFIGNOQUORUM", -14: "RECONFIGINPROGRESS", -100: "APIERROR",
    -101: "NONODE", -102: "NOAUTH", -103: "BADVERSION", -108: "NOCHILDRENFOREPHEMERALS",
    -110: "NODEEXISTS", -111: "NOTEMPTY", -112: "SESSIONEXPIRED", -113: "INVALIDCALLBACK",
    -114: "INVALIDACL", -115: "AUTHFAILED", -118: "SESSIONMOVED", -119: "NOTREADONLY",
    -120: "EPHEMERALONLOCALSESSION", -121: "NOWATCHER", -122: "REQUESTTIMEOUT",
    -123: "RECONFIGDISABLED", -124: "SESSIONCLOSEDREQUIRESASLAUTH", -125: "QUOTAEXCEEDED",
    -127: "THROTTLEDOP",
}
OP_NAMES = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData",
    6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2",
    13: "check", 14: "multi", 15: "create2", 16: "reconfig", 17: "checkWatches",
    18: "removeWatches", 19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl", 103: "getEphemerals",
    104: "getAllChildrenNumber", 105: "setWatches2", 106: "addWatch", 107: "whoAmI",
    -10: "createSession", -11: "closeSession", -1: "error",
}
EVENT_TYPES = {-1: "None", 1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
               4: "NodeChildrenChanged", 5: "DataWatchRemoved", 6: "ChildWatchRemoved",
               7: "PersistentWatchRemoved"}
STATES = {-1: "Unknown", 0: "Disconnected", 1: "NoSyncConnected", 3: "SyncConnected",
          4: "AuthFailed", 5: "ConnectedReadOnly", 6: "SaslAuthenticated", -112: "Expired",
          7: "Closed"}
FOUR_LETTER = {"conf", "cons", "crst", "dump", "envi", "ruok", "srst", "srvr", "stat",
               "wchs", "wchc", "wchp", "mntr", "isro", "gtmk", "stmk", "hash", "dirs"}
# opcodes whose request body starts with a path
PATH_OPS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 17, 18, 19, 20, 21, 103, 104, 106}
WATCH_OPS = {3, 4, 8, 12}


def type_name(op, suffix):
    special = {1: "Create", 2: "Delete", 3: "Exists", 4: "GetData", 5: "SetData",
               6: "GetACL", 7: "SetACL", 8: "GetChildren", 9: "Sync", 11: "Ping",
               12: "GetChildren2", 13: "Check", 14: "Multi", 15: "Create2",
               16: "Reconfig", 17: "CheckWatches", 18: "RemoveWatches",
               19: "CreateContainer", 20: "DeleteContainer", 21: "CreateTTL",
               22: "MultiRead", 100: "SetAuth", 101: "SetWatches", 102: "SetSASL",
               103: "GetEphemerals", 104: "GetAllChildrenNumber", 105: "SetWatches2",
               106: "AddWatch", 107: "WhoAmI", -11: "CloseSession", -1: "Error"}
    return special.get(op, "Op%d" % op) + suffix


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def int(self):
        v = struct.unpack_from(">i", self.b, self.o)[0]
        self.o += 4
        return v

    def long(self):
        v = struct.unpack_from(">q", self.b, self.o)[0]
        self.o += 8
        return v

    def bool(self):
        v = self.b[self.o] != 0
        self.o += 1
        return v

    def buffer(self):
        n = self.int()
        if n < 0:
            return None
        v = self.b[self.o:self.o + n]
        if len(v) != n:
            raise ValueError("short buffer")
        self.o += n
        return v

    def ustring(self):
        v = self.buffer()
        return None if v is None else v.decode("utf-8", "replace")

    def strings(self):
        n = self.int()
        return [self.ustring() for _ in range(max(n, 0))]

    def acls(self):
        n = self.int()
        out = []
        for _ in range(max(n, 0)):
            perms = self.int()
            out.append({"perms": perms, "scheme": self.ustring(), "id": self.ustring()})
        return out

    def stat(self):
        # czxid mzxid ctime mtime version cversion aversion ephemeralOwner
        # dataLength numChildren pzxid
        self.o += 8 + 8 + 8 + 8 + 4 + 4 + 4 + 8 + 4 + 4 + 8
        return None

    def left(self):
        return len(self.b) - self.o


# ---------------------------------------------------------------- pcap input
def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian, nano = "<", False
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian, nano = ">", False
    elif magic == b"\x4d\x3c\xb2\xa1":
        endian, nano = "<", True
    elif magic == b"\xa1\xb2\x3c\x4d":
        endian, nano = ">", True
    else:
        raise SystemExit("%s: not a classic pcap file (pcapng? convert with editcap -F pcap)" % path)
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", data, off)
        off += 16
        pkt = data[off:off + incl]
        off += incl
        yield sec + frac / (1e9 if nano else 1e6), linktype, pkt


def ip_payload(linktype, pkt):
    """-> (version, src, dst, proto, payload) or None"""
    if linktype == 1:  # Ethernet
        et, o = struct.unpack_from(">H", pkt, 12)[0], 14
        while et in (0x8100, 0x88A8):
            et, o = struct.unpack_from(">H", pkt, o + 2)[0], o + 4
    elif linktype == 113:  # Linux SLL
        et, o = struct.unpack_from(">H", pkt, 14)[0], 16
    elif linktype == 276:  # Linux SLL2
        et, o = struct.unpack_from(">H", pkt, 0)[0], 20
    elif linktype == 0:  # BSD loopback
        fam = struct.unpack_from("<I", pkt, 0)[0]
        if fam > 0xFFFF:
            fam = struct.unpack_from(">I", pkt, 0)[0]
        et, o = (0x0800 if fam == 2 else 0x86DD), 4
    elif linktype in (12, 101, 228, 229):
        et = 0x0800 if pkt[0] >> 4 == 4 else 0x86DD
        o = 0
    else:
        raise SystemExit("unsupported link type %d" % linktype)
    if et == 0x0800:
        ihl = (pkt[o] & 0x0F) * 4
        total = struct.unpack_from(">H", pkt, o + 2)[0]
        proto = pkt[o + 9]
        src = ".".join(str(x) for x in pkt[o + 12:o + 16])
        dst = ".".join(str(x) for x in pkt[o + 16:o + 20])
        return 4, src, dst, proto, pkt[o + ihl:o + total]
    if et == 0x86DD:
        plen = struct.unpack_from(">H", pkt, o + 4)[0]
        proto = pkt[o + 6]
        src = fmt6(pkt[o + 8:o + 24])
        dst = fmt6(pkt[o + 24:o + 40])
        return 6, src, dst, proto, pkt[o + 40:o + 40 + plen]
    return None


def fmt6(b):
    import ipaddress
    return str(ipaddress.IPv6Address(bytes(b)))


def endpoint(ver, addr, port):
    return ("[%s]:%d" if ver == 6 else "%s:%d") % (addr, port)


# ------------------------------------------------------------ ZK decoding
class Conn:
    def __init__(self, client, server):
        self.client, self.server = client, server
        self.buf = {"c": bytearray(), "s": bytearray()}
        self.next_seq = {"c": None, "s": None}
        self.ooo = {"c": {}, "s": {}}
        self.connected = {"c": False, "s": False}
        self.fourlw = None
        self.reply_len = 0
        self.session = None
        self.pending = {}
        self.done = False


class Decoder:
    def __init__(self, ports):
        self.ports = set(ports)
        self.conns = {}
        self.out = []

    def emit(self, conn, ts, **kw):
        m = {"ts": round(ts, 6), "proto": "client"}
        m.update(kw)
        m["client"], m["server"] = conn.client, conn.server
        if conn.session is not None:
            m["session"] = "0x%x" % (conn.session & 0xFFFFFFFFFFFFFFFF)
        self.out.append(m)

    def packet(self, ts, linktype, pkt):
        ipp = ip_payload(linktype, pkt)
        if not ipp or ipp[3] != 6:
            return
        ver, src, dst, _, tcp = ipp
        sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        payload = bytes(tcp[doff:])
        syn, fin, rst = flags & 2, flags & 1, flags & 4
        if self.ports:
            if dport in self.ports:
                key, d = (src, sport, dst, dport), "c"
            elif sport in self.ports:
                key, d = (dst, dport, src, sport), "s"
            else:
                return
        else:
            # heuristic: lower port is the server port when unknown
            if dport < sport:
                key, d = (src, sport, dst, dport), "c"
            else:
                key, d = (dst, dport, src, sport), "s"
        conn = self.conns.get(key)
        if conn is None or (syn and d == "c" and conn.done):
            conn = Conn(endpoint(ver, key[0], key[1]), endpoint(ver, key[2], key[3]))
            self.conns[key] = conn
        if syn:
            conn.next_seq[d] = (seq + 1) & 0xFFFFFFFF
            return
        if conn.next_seq[d] is None:
            conn.next_seq[d] = seq  # capture started mid-stream
        if payload:
            self.add(conn, d, seq, payload, ts)
        if (fin or rst) and d == "s" and conn.fourlw:
            self.finish_4lw(conn, ts)
        if fin or rst:
            conn.done = True

    def add(self, conn, d, seq, payload, ts):
        exp = conn.next_seq[d]
        delta = (seq - exp) & 0xFFFFFFFF
        if delta >= 0x80000000:  # old data (retransmission / overlap)
            skip = (exp - seq) & 0xFFFFFFFF
            if skip >= len(payload):
                return
            payload, seq = payload[skip:], exp
        elif delta > 0:
            conn.ooo[d][seq] = payload
            return
        conn.buf[d] += payload
        conn.next_seq[d] = (seq + len(payload)) & 0xFFFFFFFF
        while conn.next_seq[d] in conn.ooo[d]:
            p = conn.ooo[d].pop(conn.next_seq[d])
            conn.buf[d] += p
            conn.next_seq[d] = (conn.next_seq[d] + len(p)) & 0xFFFFFFFF
        self.drain(conn, d, ts)

    def finish_4lw(self, conn, ts):
        if conn.fourlw and conn.fourlw is not True:
            self.emit(conn, ts, dir="4lw", type="FourLetterWord", op=None,
                      command=conn.fourlw, reply_len=conn.reply_len)
            conn.fourlw = True

    def drain(self, conn, d, ts):
        buf = conn.buf[d]
        if d == "c" and not conn.connected["c"] and conn.fourlw is None and len(buf) >= 4:
            word = bytes(buf[:4]).decode("latin-1")
            if word in FOUR_LETTER:
                conn.fourlw = word
                del buf[:4]
                return
            conn.fourlw = False
        if conn.fourlw:
            if d == "s":
                conn.reply_len += len(buf)
            buf.clear()
            return
        while len(buf) >= 4:
            n = struct.unpack_from(">i", buf, 0)[0]
            if n < 0 or n > 64 * 1024 * 1024:
                buf.clear()
                return
            if len(buf) < 4 + n:
                return
            frame = bytes(buf[4:4 + n])
            del buf[:4 + n]
            try:
                if d == "c":
                    self.client_frame(conn, frame, ts)
                else:
                    self.server_frame(conn, frame, ts)
            except (struct.error, ValueError, IndexError) as e:
                self.emit(conn, ts, dir="error", type="DecodeError", error=str(e), size=n + 4)

    def client_frame(self, conn, frame, ts):
        r = Reader(frame)
        if not conn.connected["c"]:
            conn.connected["c"] = True
            proto_ver, last_zxid, timeout, sid = r.int(), r.long(), r.int(), r.long()
            r.buffer()
            ro = r.bool() if r.left() >= 1 else None
            self.emit(conn, ts, dir="request", type="ConnectRequest", op="connect", opcode=None,
                      protocol_version=proto_ver, last_zxid_seen=last_zxid, timeout=timeout,
                      session_id="0x%x" % (sid & 0xFFFFFFFFFFFFFFFF), read_only=ro,
                      size=len(frame) + 4)
            return
        xid, op = r.int(), r.int()
        m = {"dir": "request", "type": type_name(op, "Request"), "op": OP_NAMES.get(op, str(op)),
             "opcode": op, "xid": xid, "size": len(frame) + 4}
        if op in PATH_OPS:
            m["path"] = r.ustring()
            if op in WATCH_OPS:
                m["watch"] = r.bool()
            elif op in (1, 15, 19, 21):
                m["data_len"] = len(r.buffer() or b"")
                r.acls()
                m["flags"] = r.int()
                if op == 21:
                    m["ttl"] = r.long()
            elif op == 5:
                m["data_len"] = len(r.buffer() or b"")
                m["version"] = r.int()
            elif op in (2, 13):
                m["version"] = r.int()
            elif op == 106:
                m["mode"] = r.int()
        elif op in (14, 22):
            m["ops"] = self.multi_request(r, op)
        elif op in (101, 105):
            m["relative_zxid"] = r.long()
            m["data_watches"] = r.strings()
            m["exist_watches"] = r.strings()
            m["child_watches"] = r.strings()
            if op == 105:
                m["persistent_watches"] = r.strings()
                m["persistent_recursive_watches"] = r.strings()
        elif op == 100:
            r.int()
            m["scheme"] = r.ustring()
        conn.pending[xid] = (op, m.get("path"), ts, m.get("ops"))
        self.emit(conn, ts, **m)

    def multi_request(self, r, mop):
        ops = []
        while True:
            t, done, _err = r.int(), r.bool(), r.int()
            if done:
                break
            o = {"op": OP_NAMES.get(t, str(t)), "type": type_name(t, "Request")}
            if t in (1, 15, 19, 21):
                o["path"] = r.ustring()
                r.buffer()
                r.acls()
                o["flags"] = r.int()
                if t == 21:
                    o["ttl"] = r.long()
            elif t in (2, 13):
                o["path"], o["version"] = r.ustring(), r.int()
            elif t == 5:
                o["path"] = r.ustring()
                r.buffer()
                o["version"] = r.int()
            elif t in (4, 8, 12):  # multiRead: GetDataRequest / GetChildrenRequest
                o["path"] = r.ustring()
                o["watch"] = r.bool()
            else:
                raise ValueError("unknown multi sub-op %d" % t)
            ops.append(o)
        return ops

    def multi_reply(self, r):
        ops = []
        while True:
            t, done, err = r.int(), r.bool(), r.int()
            if done:
                break
            o = {"op": OP_NAMES.get(t, str(t)), "type": type_name(t, "Response")}
            if t == -1:
                e = r.int()
                o["err"], o["err_name"] = e, ERR_NAMES.get(e, str(e))
            else:
                o["err"], o["err_name"] = 0, "OK"
                if t in (1, 19):
                    o["path"] = r.ustring()
                elif t in (15, 21):
                    o["path"] = r.ustring()
                    r.stat()
                elif t == 5:
                    r.stat()
                elif t == 4:
                    o["data_len"] = len(r.buffer() or b"")
                    r.stat()
                elif t in (8, 12):
                    o["children"] = r.strings()
            ops.append(o)
        return ops

    def server_frame(self, conn, frame, ts):
        r = Reader(frame)
        if not conn.connected["s"]:
            conn.connected["s"] = True
            proto_ver, timeout, sid = r.int(), r.int(), r.long()
            r.buffer()
            if sid != 0:
                conn.session = sid
            self.emit(conn, ts, dir="reply", type="ConnectReply", op="connect", opcode=None,
                      protocol_version=proto_ver, timeout=timeout,
                      session_id="0x%x" % (sid & 0xFFFFFFFFFFFFFFFF), size=len(frame) + 4)
            return
        xid, zxid, err = r.int(), r.long(), r.int()
        base = {"xid": xid, "zxid": zxid, "size": len(frame) + 4}
        if xid == -1:
            et, st, path = r.int(), r.int(), r.ustring()
            self.emit(conn, ts, dir="event", type="WatchEvent", op="notification", opcode=0,
                      event_type=EVENT_TYPES.get(et, str(et)), state=STATES.get(st, str(st)),
                      path=path, **base)
            return
        op, path, t0, _ = conn.pending.pop(xid, (None, None, None, None))
        if op is None:
            op = {-2: 11, -4: 100, -8: 101}.get(xid)
        m = {"dir": "reply", "type": type_name(op, "Reply") if op is not None else "UnknownReply",
             "op": OP_NAMES.get(op) if op is not None else None, "opcode": op,
             "err": err, "err_name": ERR_NAMES.get(err, str(err))}
        m.update(base)
        if path is not None:
            m["path"] = path
        if t0 is not None:
            m["latency_us"] = int(round((ts - t0) * 1e6))
        if op == 4 and err == 0 and r.left() >= 4:
            m["data_len"] = len(r.buffer() or b"")
        if op in (14, 22) and r.left() >= 9:
            m["ops"] = self.multi_reply(r)
        self.emit(conn, ts, **m)

    def finish(self):
        for conn in self.conns.values():
            if conn.fourlw and conn.fourlw is not True:
                self.finish_4lw(conn, 0.0)


def decode(path, ports):
    dec = Decoder(ports)
    for ts, lt, pkt in read_pcap(path):
        dec.packet(ts, lt, pkt)
    dec.finish()
    return dec.out


def summary(msgs):
    c = collections.Counter()
    sessions = set()
    for m in msgs:
        if m["dir"] == "4lw":
            c["4lw %s" % m["command"]] += 1
        else:
            c["%s %s" % (m["dir"], m.get("type"))] += 1
        if m.get("session"):
            sessions.add(m["session"])
    errs = collections.Counter(m["err_name"] for m in msgs
                               if m["dir"] == "reply" and m.get("err_name") not in (None, "OK"))
    clients = sorted({m["client"] for m in msgs})
    return {"messages": len(msgs), "sessions": sorted(sessions), "connections": len(clients),
            "by_type": dict(sorted(c.items())), "error_replies": dict(sorted(errs.items()))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--port", type=int, action="append", default=[])
    ap.add_argument("--summary", action="store_true")
    a = ap.parse_args()
    msgs = decode(a.pcap, a.port)
    if a.summary:
        json.dump(summary(msgs), sys.stdout, indent=2)
        print()
    else:
        for m in msgs:
            print(json.dumps(m))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""200 pipelined async requests on one session: 100 x (create, getData)
issued back to back without waiting, then all results collected.

kazoo's connection thread writes the queued requests one at a time, so how
many are on the wire before ZooKeeper answers the first one depends on
scheduling (a loaded machine may let ZooKeeper answer after only a few).
The manifest promises that they were in flight together (support::check
wants >= 10 sent before the first reply): the first HOLD requests are held
back and written to the socket in one go, the rest as kazoo sends them.
Usage: pipeline.py HOST PORT [--prefix /pipe] [--count 200] [--hold 20]
"""
import struct
import threading

from kazoo.exceptions import ZookeeperError

import zkwl


def extra(ap):
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--hold", type=int, default=20)


a = zkwl.args(extra)
p = a.prefix or "/pipe"
m = zkwl.Manifest("pipeline")
s = m.session(a.host, a.port)
c = s.client
s.call("create", p, lambda: c.create(p, b""))

# Hold back the first `hold` requests written by kazoo's connection thread
# (ConnectionHandler._write(msg, timeout), msg = length + xid + ...) and write
# them together once the last of them comes: one send on the socket. Pings
# (xid -2) are never held, so the session stays healthy whatever happens.
conn = c._connection
real_write = conn._write
PING = struct.pack("!i", -2)
hold = {"left": 0, "msgs": []}
hold_lock = threading.Lock()
flushed = threading.Event()


def held_write(msg, timeout):
    msg = bytes(msg)
    with hold_lock:
        if hold["left"] > 0 and msg[4:8] != PING:
            hold["msgs"].append(msg)
            hold["left"] -= 1
            if hold["left"] > 0:
                return
            msg, hold["msgs"] = b"".join(hold["msgs"]), []
            flushed.set()
    real_write(msg, timeout)


hold["left"] = min(a.hold, a.count)
conn._write = held_write

pending = []
for i in range(a.count // 2):
    path = "%s/n%03d" % (p, i)
    pending.append((s.record("create", path, "OK", pipelined=True),
                    c.create_async(path, b"%d" % i)))
    pending.append((s.record("getData", path, "OK", pipelined=True, watch=False),
                    c.get_async(path)))
for entry, res in pending:
    try:
        res.get(timeout=zkwl.WAIT_TIMEOUT)
        got = "OK"
    except ZookeeperError as e:
        got = zkwl.err_name(e)
    entry["observed_err"] = got
    if got != entry["expect_err"]:
        m.mismatch("%s %s: %s" % (entry["op"], entry["path"], got))
if not flushed.is_set():
    m.mismatch("the first %d pipelined requests were not written together" % a.hold)
conn._write = real_write

# clean up, also pipelined
dels = []
for i in range(a.count // 2):
    path = "%s/n%03d" % (p, i)
    dels.append((s.record("delete", path, "OK"), c.delete_async(path)))
for entry, res in dels:
    res.get(timeout=zkwl.WAIT_TIMEOUT)
    entry["observed_err"] = "OK"
s.call("delete", p, lambda: c.delete(p))
s.close()
m.extra["pipelined"] = a.count // 2 * 2
m.done()

#!/usr/bin/env python3
"""200 pipelined async requests on one session: 100 x (create, getData)
issued back to back without waiting, then all results collected.
Usage: pipeline.py HOST PORT [--prefix /pipe] [--count 200]
"""
from kazoo.exceptions import ZookeeperError

import zkwl

a = zkwl.args(lambda ap: ap.add_argument("--count", type=int, default=200))
p = a.prefix or "/pipe"
m = zkwl.Manifest("pipeline")
s = m.session(a.host, a.port)
c = s.client
s.call("create", p, lambda: c.create(p, b""))

pending = []
for i in range(a.count // 2):
    path = "%s/n%03d" % (p, i)
    pending.append((s.record("create", path, "OK", pipelined=True),
                    c.create_async(path, b"%d" % i)))
    pending.append((s.record("getData", path, "OK", pipelined=True, watch=False),
                    c.get_async(path)))
for entry, res in pending:
    try:
        res.get(timeout=30)
        got = "OK"
    except ZookeeperError as e:
        got = zkwl.err_name(e)
    entry["observed_err"] = got
    if got != entry["expect_err"]:
        m.mismatch("%s %s: %s" % (entry["op"], entry["path"], got))

# clean up, also pipelined
dels = []
for i in range(a.count // 2):
    path = "%s/n%03d" % (p, i)
    dels.append((s.record("delete", path, "OK"), c.delete_async(path)))
for entry, res in dels:
    res.get(timeout=30)
    entry["observed_err"] = "OK"
s.call("delete", p, lambda: c.delete(p))
s.close()
m.extra["pipelined"] = a.count // 2 * 2
m.done()

#!/usr/bin/env python3
"""A 900 KiB znode: create, read back, delete.
Usage: big.py HOST PORT [--prefix /big]
"""
import zkwl

SIZE = 900 * 1024
a = zkwl.args()
p = a.prefix or "/big"
m = zkwl.Manifest("big")
s = m.session(a.host, a.port)
c = s.client
data = bytes(i % 251 for i in range(SIZE))
s.call("create", p, lambda: c.create(p, data), data_len=SIZE)
got = s.call("getData", p, lambda: c.get(p), watch=False, data_len=SIZE)
if got is None or got[0] != data:
    m.mismatch("read back data differs")
s.call("delete", p, lambda: c.delete(p))
s.close()
m.extra["data_len"] = SIZE
m.done()

#!/usr/bin/env python3
"""Watches set by one session (`watcher`) and fired by another (`firer`).

Expected events on the watcher session: NodeDataChanged, NodeChildrenChanged,
NodeCreated, NodeDeleted.
Usage: watches.py HOST PORT [--prefix /w]
"""
import zkwl

a = zkwl.args()
p = a.prefix or "/w"
m = zkwl.Manifest("watches")
w = m.session(a.host, a.port, label="watcher")
f = m.session(a.host, a.port, label="firer")
wc, fc = w.client, f.client

f.call("create", p, lambda: fc.create(p, b""))
f.call("create", p + "/data", lambda: fc.create(p + "/data", b"v0"))
f.call("create", p + "/gone", lambda: fc.create(p + "/gone", b""))

w.call("getData", p + "/data", lambda: wc.get(p + "/data", watch=w.watcher), watch=True)
w.call("getChildren", p, lambda: wc.get_children(p, watch=w.watcher), watch=True)
w.call("exists", p + "/gone", lambda: wc.exists(p + "/gone", watch=w.watcher), watch=True)
w.call("exists", p + "/later", lambda: wc.exists(p + "/later", watch=w.watcher),
       expect="NONODE", watch=True)

f.call("setData", p + "/data", lambda: fc.set(p + "/data", b"v1"))
w.expect_event(p + "/data", "NodeDataChanged")
f.call("create", p + "/later", lambda: fc.create(p + "/later", b""))
w.expect_event(p + "/later", "NodeCreated")
w.expect_event(p, "NodeChildrenChanged")
f.call("delete", p + "/gone", lambda: fc.delete(p + "/gone"))
w.expect_event(p + "/gone", "NodeDeleted")
w.wait_events()

for child in ("data", "later"):
    f.call("delete", p + "/" + child, lambda: fc.delete(p + "/" + child))
f.call("delete", p, lambda: fc.delete(p))
w.close()
f.close()
m.done()

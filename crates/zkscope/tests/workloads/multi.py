#!/usr/bin/env python3
"""Multi (transaction): one that succeeds and one whose second op fails.

Each multi op in the manifest has "sub_ops" listing the sub-requests with
their expected per-op result ("expect_err"). Observed on ZooKeeper 3.8: the
reply header of a failed multi still carries err 0 (OK); every sub-result is
then an ErrorResult (type -1): ops before the failing one carry err 0
("rolled back", kazoo RolledBackError), the failing op its own error, later
ops RUNTIMEINCONSISTENCY. Sub-ops of a failed multi have "expect_type":
"error".
Usage: multi.py HOST PORT [--prefix /m]
"""
import zkwl

a = zkwl.args()
p = a.prefix or "/m"
m = zkwl.Manifest("multi")
s = m.session(a.host, a.port)
c = s.client

s.call("create", p, lambda: c.create(p, b""))


def commit(t, subs, expect):
    entry = s.record("multi", None, expect, sub_ops=subs)
    results = t.commit()
    got = []
    for r in results:
        if isinstance(r, Exception):
            got.append(zkwl.err_name(r))
        else:
            got.append("OK")
    want = [x["expect_err"] for x in subs]
    entry["observed_sub_errs"] = got
    if got != want:
        m.mismatch("multi sub results %s != %s" % (got, want))


t = c.transaction()
t.create(p + "/a", b"a")
t.create(p + "/b", b"b")
t.set_data(p + "/a", b"a2", version=0)
t.check(p, 0)
commit(t, [
    {"op": "create", "path": p + "/a", "expect_err": "OK"},
    {"op": "create", "path": p + "/b", "expect_err": "OK"},
    {"op": "setData", "path": p + "/a", "expect_err": "OK"},
    {"op": "check", "path": p, "expect_err": "OK"},
], "OK")

t = c.transaction()
t.create(p + "/c", b"c")
t.delete(p + "/missing")
t.set_data(p + "/a", b"a3")
commit(t, [
    {"op": "create", "path": p + "/c", "expect_err": "OK", "expect_type": "error",
     "rolled_back": True},
    {"op": "delete", "path": p + "/missing", "expect_err": "NONODE", "expect_type": "error"},
    {"op": "setData", "path": p + "/a", "expect_err": "RUNTIMEINCONSISTENCY",
     "expect_type": "error"},
], "OK")

s.call("exists", p + "/c", lambda: c.exists(p + "/c"), expect="NONODE", watch=False)
for child in ("a", "b"):
    s.call("delete", p + "/" + child, lambda: c.delete(p + "/" + child))
s.call("delete", p, lambda: c.delete(p))
s.close()
m.done()

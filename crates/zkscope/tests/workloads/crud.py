#!/usr/bin/env python3
"""CRUD with the common errors: NODEEXISTS, NONODE, BADVERSION, NOTEMPTY.

Usage: crud.py HOST PORT [--prefix /crud]   (HOST may be ::1)
"""
from kazoo.security import OPEN_ACL_UNSAFE

import zkwl

a = zkwl.args()
p = a.prefix or "/crud"
m = zkwl.Manifest("crud")
s = m.session(a.host, a.port)
c = s.client

s.call("create", p, lambda: c.create(p, b"root"))
s.call("create", p, lambda: c.create(p, b"again"), expect="NODEEXISTS")
s.call("create", p + "/c1", lambda: c.create(p + "/c1", b"child-1"))
s.call("create2", p + "/c2", lambda: c.create(p + "/c2", b"child-2", include_data=True))
s.call("create", p + "/e-", lambda: c.create(p + "/e-", b"", ephemeral=True, sequence=True))
s.call("getData", p, lambda: c.get(p), watch=False)
s.call("getData", p + "/missing", lambda: c.get(p + "/missing"), expect="NONODE", watch=False)
s.call("exists", p, lambda: c.exists(p), watch=False)
# kazoo turns NONODE on exists into None, the wire reply still carries NONODE
s.call("exists", p + "/missing", lambda: c.exists(p + "/missing"), expect="NONODE", watch=False)
s.call("setData", p, lambda: c.set(p, b"v1", version=7), expect="BADVERSION")
s.call("setData", p, lambda: c.set(p, b"v1", version=0))
s.call("setData", p + "/missing", lambda: c.set(p + "/missing", b"x"), expect="NONODE")
s.call("getChildren", p, lambda: c.get_children(p), watch=False)
s.call("getChildren2", p, lambda: c.get_children(p, include_data=True), watch=False)
s.call("getACL", p, lambda: c.get_acls(p))
s.call("setACL", p + "/c2", lambda: c.set_acls(p + "/c2", OPEN_ACL_UNSAFE, version=5),
       expect="BADVERSION")
s.call("sync", p, lambda: c.sync(p))
s.call("delete", p, lambda: c.delete(p), expect="NOTEMPTY")
s.call("delete", p + "/c1", lambda: c.delete(p + "/c1", version=3), expect="BADVERSION")
s.call("delete", p + "/c1", lambda: c.delete(p + "/c1"))
s.call("delete", p + "/c2", lambda: c.delete(p + "/c2"))
s.close()  # ephemeral p/e-000... goes away with the session

# second session cleans up the now empty parent
s2 = m.session(a.host, a.port, label="cleanup")
s2.call("delete", p, lambda: s2.client.delete(p))
s2.call("delete", p, lambda: s2.client.delete(p), expect="NONODE")
s2.close()
m.done()

#!/usr/bin/env python3
"""Digest auth: session `authed` adds digest credentials and creates a node
with a digest ACL; session `anon` (no credentials) gets NOAUTH on it.
Usage: auth.py HOST PORT [--prefix /auth]
"""
from kazoo.security import make_digest_acl

import zkwl

a = zkwl.args()
p = a.prefix or "/auth"
m = zkwl.Manifest("auth")
s = m.session(a.host, a.port, label="authed")
c = s.client
s.call("auth", None, lambda: c.add_auth("digest", "user:pass"), scheme="digest")
acl = [make_digest_acl("user", "pass", all=True)]
s.call("create", p, lambda: c.create(p, b"secret", acl=acl))
s.call("getData", p, lambda: c.get(p), watch=False)
s.call("getACL", p, lambda: c.get_acls(p))

n = m.session(a.host, a.port, label="anon")
n.call("getData", p, lambda: n.client.get(p), expect="NOAUTH", watch=False)
n.call("setData", p, lambda: n.client.set(p, b"x"), expect="NOAUTH")
n.close()

s.call("delete", p, lambda: c.delete(p))
s.close()
m.extra["digest_user"] = "user"
m.done()

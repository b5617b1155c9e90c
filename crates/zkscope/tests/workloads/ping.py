#!/usr/bin/env python3
"""An idle session that lives long enough to send pings (kazoo pings after
about a third of the negotiated timeout of idleness; timeout 4 s is the
minimum with tickTime=2000).
Usage: ping.py HOST PORT [--seconds 4]
Manifest extra: "min_pings": 1 (ping requests with replies on the session).
"""
import time

import zkwl

a = zkwl.args(lambda ap: ap.add_argument("--seconds", type=float, default=4.0))
m = zkwl.Manifest("ping")
s = m.session(a.host, a.port, timeout=4.0)
s.call("exists", "/", lambda: s.client.exists("/"), watch=False)
time.sleep(a.seconds)
s.call("exists", "/", lambda: s.client.exists("/"), watch=False)
s.close()
m.extra["min_pings"] = 1
m.done()

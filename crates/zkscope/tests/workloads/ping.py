#!/usr/bin/env python3
"""An idle session that lives long enough to send pings (kazoo pings after
about a third of the negotiated timeout of idleness). The timeout is 10 s
so that a stalled JVM or Python on a loaded machine does not drop the
session; the idle time is past the first ping (≈ 3.3 s).
Usage: ping.py HOST PORT [--seconds 5]
Manifest extra: "min_pings": 1 (ping requests with replies on the session).
"""
import time

import zkwl

a = zkwl.args(lambda ap: ap.add_argument("--seconds", type=float, default=5.0))
m = zkwl.Manifest("ping")
s = m.session(a.host, a.port, timeout=10.0)
s.call("exists", "/", lambda: s.client.exists("/"), watch=False)
time.sleep(a.seconds)
s.call("exists", "/", lambda: s.client.exists("/"), watch=False)
s.close()
m.extra["min_pings"] = 1
m.done()

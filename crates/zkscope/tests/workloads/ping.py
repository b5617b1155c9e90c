#!/usr/bin/env python3
"""An idle session that lives until it has pinged: kazoo pings after about a
third of the negotiated timeout of idleness (timeout 10 s here: ≈ 3.3 s).
The script waits until kazoo has *read* `--pings` ping replies (so the pings
and their replies are on the wire, whatever the machine's load), then makes
one more request and closes. `--seconds` is a minimum idle time (default 0).
Usage: ping.py HOST PORT [--pings 1] [--seconds 0] [--timeout 120]
Manifest extra: "min_pings": PINGS (ping requests with replies on the session).
"""
import logging
import sys
import threading
import time

import zkwl

BLATHER = 5  # kazoo.loggingsupport.BLATHER: kazoo logs "Received Ping" at this level


class PingReplies(logging.Handler):
    """Counts the ping replies kazoo's connection thread reads."""

    def __init__(self):
        super().__init__(level=BLATHER)
        self.count = 0
        self.cond = threading.Condition()

    def emit(self, record):
        if record.getMessage() == "Received Ping":
            with self.cond:
                self.count += 1
                self.cond.notify_all()


def extra(ap):
    ap.add_argument("--pings", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=0.0, help="minimum idle time")
    ap.add_argument("--timeout", type=float, default=120.0, help="budget for the pings")


a = zkwl.args(extra)
replies = PingReplies()
# a private logger for this client: BLATHER records go to `replies` only, warnings to stderr
log = logging.getLogger("ping-workload.kazoo")
log.setLevel(BLATHER)
log.propagate = False
log.addHandler(replies)
warn = logging.StreamHandler(sys.stderr)
warn.setLevel(logging.WARNING)
log.addHandler(warn)

m = zkwl.Manifest("ping")
s = m.session(a.host, a.port, timeout=10.0, logger=log)
s.call("exists", "/", lambda: s.client.exists("/"), watch=False)
start = time.monotonic()
with replies.cond:
    ok = replies.cond.wait_for(lambda: replies.count >= a.pings, a.timeout)
if not ok:
    m.mismatch("%d ping replies after %.0f s, want %d" % (replies.count, a.timeout, a.pings))
idle = a.seconds - (time.monotonic() - start)
if idle > 0:
    time.sleep(idle)
s.call("exists", "/", lambda: s.client.exists("/"), watch=False)
s.close()
m.extra["min_pings"] = a.pings
m.done()

"""Shared helpers for the kazoo workload scripts.

Every workload prints exactly one JSON manifest on stdout (logs go to
stderr). Format (see README.md in this directory):

    {
      "workload": "crud",
      "session": "0x...",            # first session (convenience copy)
      "ops": [...],                  # first session's ops (convenience copy)
      "sessions": [
        {"label": "main", "session": "0x...", "host": "127.0.0.1",
         "ops": [{"op": "create", "path": "/x", "expect_err": "OK", ...}],
         "events": [{"path": "/x", "event_type": "NodeDataChanged"}]}
      ],
      ...workload specific extras
    }

`ops` lists every request the script made, in order; `op` is the canonical
ZooKeeper opcode name, `expect_err` the reply's error name. The script
checks each expectation against what kazoo saw and exits 1 (after printing
the manifest, with "mismatches") if any differs, so a manifest from a
successful run is truthful.
"""
import argparse
import json
import logging
import sys
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import ZookeeperError

ERR_NAMES = {
    0: "OK", -1: "SYSTEMERROR", -2: "RUNTIMEINCONSISTENCY", -3: "DATAINCONSISTENCY",
    -4: "CONNECTIONLOSS", -5: "MARSHALLINGERROR", -6: "UNIMPLEMENTED",
    -7: "OPERATIONTIMEOUT", -8: "BADARGUMENTS", -12: "UNKNOWNSESSION",
    -13: "NEWCONFIGNOQUORUM", -14: "RECONFIGINPROGRESS", -100: "APIERROR",
    -101: "NONODE", -102: "NOAUTH", -103: "BADVERSION", -108: "NOCHILDRENFOREPHEMERALS",
    -110: "NODEEXISTS", -111: "NOTEMPTY", -112: "SESSIONEXPIRED", -113: "INVALIDCALLBACK",
    -114: "INVALIDACL", -115: "AUTHFAILED", -118: "SESSIONMOVED", -119: "NOTREADONLY",
    -120: "EPHEMERALONLOCALSESSION", -121: "NOWATCHER", -122: "REQUESTTIMEOUT",
    -123: "RECONFIGDISABLED", -124: "SESSIONCLOSEDREQUIRESASLAUTH", -125: "QUOTAEXCEEDED",
    -127: "THROTTLEDOP",
}

KAZOO_EVENTS = {"CREATED": "NodeCreated", "DELETED": "NodeDeleted",
                "CHANGED": "NodeDataChanged", "CHILD": "NodeChildrenChanged"}


def err_name(exc):
    """kazoo exception (or None) -> ZooKeeper error name."""
    if exc is None:
        return "OK"
    code = getattr(exc, "code", None)
    if isinstance(exc, ZookeeperError) and code in ERR_NAMES:
        return ERR_NAMES[code]
    raise exc


def args(extra=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--prefix", default=None, help="root znode for this run")
    if extra:
        extra(ap)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return a


def hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


# Session timeout (s). kazoo drops the connection when a ping is not answered within about a
# third of it (and fails the requests in flight with CONNECTIONLOSS), and a loaded machine can
# hold ZooKeeper's replies, pings included, behind a slow fsync for seconds: keep it generous.
SESSION_TIMEOUT = 30.0
# Budgets (s) for waits on the server; they cost nothing when all goes well.
START_TIMEOUT = 60.0
WAIT_TIMEOUT = 60.0


class Session:
    def __init__(self, manifest, host, port, label, timeout=SESSION_TIMEOUT, **kw):
        self.manifest = manifest
        self.host = host
        self.label = label
        self.client = KazooClient(hosts=hostport(host, port), timeout=timeout, **kw)
        self.client.start(timeout=START_TIMEOUT)
        self.ops = []
        self.events = []
        self._lock = threading.Lock()
        self.fired = []
        self.cond = threading.Condition()
        manifest.sessions.append(self)

    @property
    def sid(self):
        return "0x%x" % self.client.client_id[0]

    def record(self, op, path, expect="OK", **extra):
        entry = {"op": op, "path": path, "expect_err": expect}
        entry.update(extra)
        with self._lock:
            self.ops.append(entry)
        return entry

    def call(self, op, path, fn, expect="OK", **extra):
        """Run fn() (one ZooKeeper request) and record it."""
        entry = self.record(op, path, expect, **extra)
        try:
            res, exc = fn(), None
        except ZookeeperError as e:
            res, exc = None, e
        got = err_name(exc)
        if op == "exists" and exc is None and res is None:
            got = "NONODE"  # kazoo maps the NONODE reply of exists to None
        if got != expect:
            self.manifest.mismatch("%s %s %s: expected %s, got %s"
                                   % (self.label, op, path, expect, got))
        entry["observed_err"] = got
        return res

    # ---- watches
    def watcher(self, event):
        with self.cond:
            self.fired.append({"path": event.path,
                               "event_type": KAZOO_EVENTS.get(event.type, event.type)})
            self.cond.notify_all()

    def expect_event(self, path, event_type):
        self.events.append({"path": path, "event_type": event_type})

    def wait_events(self, timeout=WAIT_TIMEOUT):
        want = [(e["path"], e["event_type"]) for e in self.events]
        with self.cond:
            ok = self.cond.wait_for(
                lambda: all(w in [(f["path"], f["event_type"]) for f in self.fired] for w in want),
                timeout)
        if not ok:
            self.manifest.mismatch("%s: events %s, fired %s" % (self.label, want, self.fired))

    def close(self):
        self.record("closeSession", None, "OK")
        self.client.stop()
        self.client.close()

    def to_json(self):
        return {"label": self.label, "session": self.sid_cached, "host": self.host,
                "ops": self.ops, "events": self.events}


class Manifest:
    def __init__(self, workload):
        self.workload = workload
        self.sessions = []
        self.extra = {}
        self.mismatches = []

    def mismatch(self, msg):
        print("MISMATCH: " + msg, file=sys.stderr)
        self.mismatches.append(msg)

    def session(self, host, port, label="main", **kw):
        s = Session(self, host, port, label, **kw)
        s.sid_cached = s.sid
        return s

    def done(self):
        out = {"workload": self.workload,
               "sessions": [s.to_json() for s in self.sessions]}
        if self.sessions:
            out["session"] = out["sessions"][0]["session"]
            out["ops"] = out["sessions"][0]["ops"]
        out.update(self.extra)
        if self.mismatches:
            out["mismatches"] = self.mismatches
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()
        sys.exit(1 if self.mismatches else 0)

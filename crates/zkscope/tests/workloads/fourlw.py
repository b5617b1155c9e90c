#!/usr/bin/env python3
"""Four-letter words over plain sockets (one connection per command).
Usage: fourlw.py HOST PORT [--commands ruok,srvr,stat,conf,mntr]
Manifest: {"workload": "fourlw", "fourlw": [{"command": "ruok", "reply_len": 4,
           "client": "127.0.0.1:PORT"}, ...]}
"""
import json
import socket
import sys

import zkwl

a = zkwl.args(lambda ap: ap.add_argument("--commands", default="ruok,srvr,stat,conf,mntr"))
out = []
for cmd in a.commands.split(","):
    fam = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect((a.host, a.port))
        local = sock.getsockname()
        sock.sendall(cmd.encode())
        reply = b""
        while True:
            d = sock.recv(65536)
            if not d:
                break
            reply += d
    client = ("[%s]:%d" % local[:2]) if fam == socket.AF_INET6 else "%s:%d" % local
    out.append({"command": cmd, "reply_len": len(reply), "client": client,
                "reply_head": reply[:40].decode("latin-1")})
ok = all(e["reply_len"] > 0 for e in out)
json.dump({"workload": "fourlw", "sessions": [], "fourlw": out}, sys.stdout)
print()
sys.exit(0 if ok else 1)

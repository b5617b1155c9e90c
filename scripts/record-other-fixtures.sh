#!/usr/bin/env bash
# Records fixtures/other/*.pcap: short conversations of real servers and clients of protocols
# that are not ZooKeeper, captured on lo, for the `--protocol auto` recognition tests
# (crates/zkscope/tests/other_protocols.rs). Run as root once; the captures are committed.
#
#   memcached.pcap  memcached 1.6 (Debian) on 11211: text protocol (stats, set, get, version,
#                   quit) from a Python socket client, one command set per connection
#   redis.pcap      redis-server 7 (Debian) on 6379, driven by redis-cli (PING, SET, GET, INFO)
#   http.pcap       python3 -m http.server on 8000, GET / and GET /missing with urllib
#   smtp.pcap       aiosmtpd (Debian python3-aiosmtpd) on 8025, a mail sent with smtplib
#   dnp3.pcap       DNP3 on 20000: well-formed link-layer frames (request link status, a read
#                   of class 0 data, their answers) between two Python sockets
#                   (scripts/dnp3_frames.py; no DNP3 server is packaged in Debian)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$PWD/fixtures/other
mkdir -p "$OUT"
PY=/usr/bin/python3

need=()
for p in memcached redis-server redis-tools python3-aiosmtpd tcpdump; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The packages' own services are not wanted (they would hold the ports).
for s in memcached redis-server; do service "$s" stop >/dev/null 2>&1 || true; done

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# wait_port PORT: until something listens on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 100); do
        $PY -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return
        sleep 0.1
    done
    echo "nothing listens on $1" >&2; exit 1
}

# capture NAME PORT COMMAND...: tcpdump on lo for tcp port PORT while COMMAND runs.
capture() {
    local name=$1 port=$2; shift 2
    tcpdump -i lo -U --immediate-mode -s 0 -Z root -n -w "$OUT/$name.pcap" "tcp port $port" 2>"$TMP/td.err" &
    local td=$!
    for _ in $(seq 100); do grep -q "listening on" "$TMP/td.err" && break; sleep 0.1; done
    "$@"
    sleep 1
    kill -INT "$td"; wait "$td" || true
    echo "$name: $(tcpdump -r "$OUT/$name.pcap" 2>/dev/null | wc -l) packets"
}

memcached -u root -l 127.0.0.1 -p 11211 -U 0 &
srv=$!
wait_port 11211
cat >"$TMP/mc.py" <<'PY'
import socket
def talk(*cmds):
    s = socket.create_connection(("127.0.0.1", 11211))
    s.settimeout(0.3)
    for c in cmds:
        s.sendall(c)
        try:
            while s.recv(65536):
                pass
        except socket.timeout:
            pass
    s.close()
talk(b"stats\r\n")
talk(b"set k 0 0 5\r\nhello\r\n", b"get k\r\n", b"version\r\n", b"quit\r\n")
talk(b"stats slabs\r\n", b"quit\r\n")
PY
capture memcached 11211 $PY "$TMP/mc.py"
kill "$srv"; wait "$srv" 2>/dev/null || true

redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
srv=$!
wait_port 6379
capture redis 6379 bash -c 'redis-cli -p 6379 PING && redis-cli -p 6379 SET k v &&
    redis-cli -p 6379 GET k && redis-cli -p 6379 INFO server >/dev/null' >/dev/null
kill "$srv"; wait "$srv" 2>/dev/null || true

mkdir -p "$TMP/www" && echo hello >"$TMP/www/index.html"
(cd "$TMP/www" && exec $PY -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1) &
srv=$!
wait_port 8000
capture http 8000 $PY -c '
import urllib.request, urllib.error
urllib.request.urlopen("http://127.0.0.1:8000/").read()
try:
    urllib.request.urlopen("http://127.0.0.1:8000/missing")
except urllib.error.HTTPError:
    pass'
kill "$srv"; wait "$srv" 2>/dev/null || true

$PY -m aiosmtpd -n -l 127.0.0.1:8025 >/dev/null 2>&1 &
srv=$!
wait_port 8025
capture smtp 8025 $PY -c '
import smtplib
with smtplib.SMTP("127.0.0.1", 8025) as s:
    s.sendmail("a@example.org", ["b@example.org"], "Subject: hi\r\n\r\nhello\r\n")'
kill "$srv"; wait "$srv" 2>/dev/null || true

$PY scripts/dnp3_frames.py serve 20000 &
srv=$!
wait_port 20000
capture dnp3 20000 $PY scripts/dnp3_frames.py client 20000
kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true
